/*
 * The certificate manager: one thread with its own uv loop that owns the
 * ACME client, the on-disk cache and the on-demand policy. Workers ask it
 * for a name without blocking; it answers by publishing the certificate (or
 * a refusal) in its memory table and calling `on_resolved`, after which the
 * worker retries the paused handshake.
 *
 * Lookup order for a name (docs/architecture.md, "acme/"): memory, then the
 * cache on disk, then issuance if the policy allows (name validation, the
 * site match done by the TLS table, `ask`, `rate`, `max_pending`, the
 * failure backoff), else a refusal that is remembered for a while.
 *
 * Error convention: acme/errors.h.
 */
#ifndef PX_ACME_MANAGER_H
#define PX_ACME_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "acme/ask.h"
#include "acme/config.h"
#include "acme/life/events.h"
#include "acme/proto/client.h"
#include "acme/store_open.h"
#include "tls/cert.h"

typedef struct px_acme_manager px_acme_manager;

/** A `tls: acme` site: one certificate for all its names. */
typedef struct px_acme_group {
  const char *const *names;
  size_t nnames;
} px_acme_group;

typedef struct px_acme_manager_opts {
  const char *storage; /**< cache directory or redis:// URL (px_store_open) */
  /** The store's options: acme.lock_stale_after, and storage_prefix,
   *  storage_password_file and storage_key_file for Redis. */
  px_store_options store;
  /** timeouts.on_demand: how long a handshake's name waits for the
   *  certificate another instance is obtaining (0: only the stale age). */
  uint64_t wait_timeout_ms;
  px_acme_client_opts client; /**< hooks and store are filled in by the manager */
  /** The on_demand: section, defaults applied (acme/config.h owns them);
   *  the strings are borrowed for the manager's lifetime. */
  px_on_demand_settings on_demand;
  const px_acme_group *groups; /**< obtained at start-up */
  size_t ngroups;
  /** acme.renew_rate: renewals started per minute across all names (0: 10). */
  unsigned renew_rate;
  /** Some site is `tls: on_demand`: cached on-demand names are renewed. */
  int on_demand_enabled;
  /** acme.dns (borrowed), or NULL: dns-01 is not set up. */
  const px_acme_dns_settings *dns;
  /** acme.caa_identities (borrowed, NULL-terminated), or NULL: no CAA
   *  check before an on-demand order. */
  char *const *caa_identities;
  /** The admin socket's path (admin.socket), or NULL for none. */
  const char *admin_socket;
  /** Certificate events (events.command, events.webhook, events.timeout);
   *  the strings are borrowed for the manager's lifetime. */
  px_events_options events;
  /** Called on the manager thread once a requested name is resolved (ready
   *  or refused), or the store was read for a challenge (the tls-alpn-01
   *  name, or the http-01 token); must be thread-safe and quick. */
  void (*on_resolved)(void *arg, const char *name);
  void *arg;
  /** `portico ctl reload` on the admin socket: the proxy's reload, called
   *  with `arg` on the manager thread (px_admin_ops.reload); NULL answers
   *  "not supported". */
  int (*reload)(void *arg, char *msg, size_t cap);
} px_acme_manager_opts;

/**
 * Opens the cache and builds the manager; no thread runs yet, but lookups
 * may already be made (they queue). NULL with a sentence in `err`.
 */
px_acme_manager *px_acme_manager_new(const px_acme_manager_opts *opts, char *err, size_t errlen);

/**
 * Starts the manager thread: it obtains the `tls: acme` sites' certificates
 * and answers the queue. Call it once whatever `on_resolved` reaches
 * exists (the workers). Returns once the thread has read the sites' cached
 * certificates (orders for missing ones go on in the background), so the
 * caller can report readiness (sd_notify), and, with acme.profile set, once
 * the CA's directory said whether it offers that profile (or could not be
 * reached). 0; -EINVAL when the CA refuses the configuration
 * (px_acme_manager_start_error says why; stop the manager); or another
 * negative errno.
 */
int px_acme_manager_start(px_acme_manager *m);

/** Why px_acme_manager_start returned -EINVAL, or NULL. */
const char *px_acme_manager_start_error(const px_acme_manager *m);

/**
 * Stops the thread (in-flight orders are abandoned): once it returns,
 * `on_resolved` is never called again and lookups refuse. Safe to call
 * twice, or when the thread never started.
 */
void px_acme_manager_stop(px_acme_manager *m);

/** Stops the thread if needed and frees everything. */
void px_acme_manager_free(px_acme_manager *m);

/**
 * The `tls: acme` sites after a reload (any thread; `groups` is copied).
 * On its thread the manager keeps the jobs and certificates of sites whose
 * names did not change; a site with new or changed names gets its
 * certificate ordered in the background while whatever certificate covers
 * a name meanwhile keeps being served; a removed site's certificate stays
 * in memory and is renewed like an on-demand name. 0, or -ENOMEM.
 */
int px_acme_manager_set_groups(px_acme_manager *m, const px_acme_group *groups, size_t ngroups);

/**
 * For a handshake (any thread, never blocks): 1 with a new reference in *out
 * when a certificate is in memory; 0 when the name was queued (or already
 * is) and `on_resolved` will follow; -1 when refused. `on_demand` says the
 * name matched a `tls: on_demand` site: only then may a name outside every
 * `tls: acme` site be queued for its own order, under the on-demand policy.
 */
int px_acme_manager_lookup(px_acme_manager *m, const char *name, int on_demand, px_tls_cert **out);

/**
 * The tls-alpn-01 certificate for `name`, for a handshake (any thread,
 * never blocks): 1 with a new reference in *out when it is in memory; 0
 * when the manager reads the store for it (another instance may have
 * placed the order) and `on_resolved` follows; -1 when there is none.
 */
int px_acme_manager_challenge_lookup(px_acme_manager *m, const char *name, px_tls_cert **out);

/** px_acme_manager_http01: the manager is reading the store for the token. */
#define PX_ACME_HTTP01_READING (-2)

/**
 * The http-01 answer (RFC 8555 §8.3) for `token` when `host` is the name it
 * was issued for (any thread, never blocks): copies the key authorization
 * into `out` and returns its length; PX_ACME_HTTP01_READING when it is not
 * in memory and the manager reads the store for it (another instance may
 * have placed the order moments ago, before the watch mirrored it), and
 * `on_resolved` follows with the token; -1 when there is none.
 */
int px_acme_manager_http01(px_acme_manager *m, const char *host, const char *token, char *out,
                           size_t cap);

/**
 * The per-name settings the ask endpoint gave an on-demand name (any
 * thread, never blocks): 1 with them in *out, 0 when the name has none (its
 * site's settings apply). Kept for at least as many names as certificates
 * are held in memory (on_demand.cache_size).
 */
int px_acme_manager_site_prefs(px_acme_manager *m, const char *name, px_acme_site_prefs *out);

#endif
