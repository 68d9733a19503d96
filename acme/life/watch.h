/*
 * Watching the store for what other instances wrote (docs/fleet.md), on
 * the manager's loop:
 *
 *  - certificates: a certificate another instance obtained or renewed is
 *    served here within seconds, without a restart. On a directory, inotify
 *    on jobs/ (every new certificate rewrites its job file) reports it at
 *    once; a stat of certs/<name>/cert.pem for the names this instance
 *    holds, every 2 s, covers NFS, where inotify sees only local writes.
 *    On Redis, the update channel reports it at once, and the names held
 *    are re-read a few at a time in case a message was missed.
 *  - challenge material (acme/challenge_store.h): the http-01 answers of
 *    other instances are mirrored in memory, so a worker answers the CA
 *    without asking the manager: inotify on
 *    challenges/ (or the update channel) brings each one in as soon as it
 *    is saved, and a listing every second (every 10 s on Redis) catches the
 *    rest. This runs on a thread of its own (the watcher), which does
 *    nothing else: the CA may validate a few milliseconds after the other
 *    instance saved the challenge, and the manager's loop may be busy with
 *    blocking store I/O then. tls-alpn-01 material is mirrored the same
 *    way. The CA can still be quicker than the mirror: a handshake or a
 *    request that finds nothing in memory waits while the manager reads
 *    the store (px__watch_read_alpn, px__watch_read_http01).
 *
 * Functions here run on the manager thread; the watcher thread is
 * internal to watch.c.
 */
#ifndef PX_ACME_LIFE_WATCH_H
#define PX_ACME_LIFE_WATCH_H

#include "acme/manager_internal.h"

/** How long a challenge copied from the store is used, milliseconds (the
 *  owner removes it from the store when its authorization ends). */
#define PX_WATCH_MIRROR_TTL_MS 120000
/** Age after which a directory's challenge item is taken as left behind
 *  by an order that died, and removed (Redis expires them likewise). */
#define PX_WATCH_CHALLENGE_MAX_AGE_S 3600
/** How long challenge material found absent in the store (a tls-alpn-01
 *  name, an http-01 token) stays absent: a burst of junk costs one read. */
#define PX_WATCH_MISS_MS 2000

/** Starts watching (inotify or the update channel, and the poll timer). */
void px__watch_start(px_acme_manager *m);
/** Closes the watch's handles (the loop is stopping); safe twice. */
void px__watch_close(px_acme_manager *m);

/** Frees it, once the loop has run its close callbacks. */
void px__watch_dispose(px_acme_manager *m);

/** A handshake asked for the tls-alpn-01 certificate of `name`: reads the
 *  store, serves what it finds for PX_WATCH_MIRROR_TTL_MS, and resolves
 *  the name either way. */
void px__watch_read_alpn(px_acme_manager *m, const char *name);

/** A worker asked for the http-01 answer of `token`: reads the store,
 *  serves what it finds for PX_WATCH_MIRROR_TTL_MS, and resolves the token
 *  either way. */
void px__watch_read_http01(px_acme_manager *m, const char *token);

/** Our challenge material was saved: announces it (Redis). */
void px__watch_challenge_saved(px_acme_manager *m, px_acme_challenge_type type, const char *name,
                               const char *token);
/** Our new certificate for `name` was saved: announces it (Redis). */
void px__watch_cert_saved(px_acme_manager *m, const char *name);

#endif
