/*
 * One process per listen address on this machine. Listeners are bound with
 * SO_REUSEPORT (one socket per worker), so a second portico started on the
 * same addresses would bind them too and silently take part of the traffic;
 * a lock file per address in a local runtime directory makes it refuse to
 * start instead. The locks are flock()s: the kernel drops them when the
 * process exits, however it exits.
 */
#ifndef PX_LISTEN_LOCK_H
#define PX_LISTEN_LOCK_H

#include <stddef.h>

#include "proxy/config.h"

/**
 * Locks every listen address of `cfg` for this process (held until exit).
 * 0, or -1 with a sentence in `err` naming the address, the process that
 * holds it and the lock file.
 */
int px_listen_lock_all(const px_config *cfg, char *err, size_t errlen);

/**
 * After a reload: locks the addresses of `cfg` this process does not hold
 * yet. 0, or -1 with `err` as px_listen_lock_all says (the locks taken by
 * this call are released again). Not thread-safe: the server's reload
 * calls it under its lock.
 */
int px_listen_lock_add(const px_config *cfg, char *err, size_t errlen);

/** Releases the locks of addresses `cfg` no longer has (after a reload
 *  closed their listeners, or one that failed). */
void px_listen_lock_keep_only(const px_config *cfg);

/** A file name for `addr` in the runtime directory: prefix + the address
 *  with anything but [A-Za-z0-9.-] made '_' + suffix ("listen-", "127.0.0.1:443",
 *  ".lock" -> "listen-127.0.0.1_443.lock"). */
void px_listen_file_name(const char *prefix, const char *addr, const char *suffix, char *out,
                         size_t cap);

/** The directory the locks live in (see docs/config.md, `runtime_dir`). */
const char *px_listen_lock_dir(const px_config *cfg, char *buf, size_t cap);

#endif
