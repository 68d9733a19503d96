/*
 * The Redis store: acme/store.h on a Redis server, for instances on several
 * machines (docs/fleet.md). Items are plain string keys under a prefix; a
 * save is one SET, locks are SET NX PX with a random token, challenge
 * material expires, private keys can be encrypted at rest.
 *
 * Every call is blocking (a synchronous hiredis connection with connect and
 * command timeouts): run it on the certificate-manager thread or the
 * threadpool, never on a worker loop. Calls from several threads are
 * serialized on the store's connection.
 */
#ifndef PX_ACME_STORE_REDIS_H
#define PX_ACME_STORE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "acme/store.h"

/** Key prefix used when none is given. */
#define PX_STORE_REDIS_PREFIX "portico:"
/** Default lifetime of http-01 / tls-alpn-01 challenge material, seconds. */
#define PX_STORE_REDIS_CHALLENGE_TTL 3600
/** Default connect and command timeout, milliseconds. */
#define PX_STORE_REDIS_TIMEOUT_MS 2000
/** How long a quarantined item is kept, seconds (7 days). */
#define PX_STORE_REDIS_QUARANTINE_TTL (7 * 86400)

/** Options of the Redis store. Zero / NULL means the default. */
typedef struct px_store_redis_options {
  const char *url;           /**< redis://[user@]host[:port][/db] */
  const char *prefix;        /**< key prefix; default PX_STORE_REDIS_PREFIX */
  const char *password_file; /**< AUTH password (first line); never logged */
  const char *key_file;      /**< 32 raw bytes or 64 hex: encrypt private keys */
  int64_t lock_stale_after;  /**< lock TTL, seconds; default PX_STORE_LOCK_STALE_DEFAULT */
  int64_t challenge_ttl;     /**< seconds; default PX_STORE_REDIS_CHALLENGE_TTL */
  int timeout_ms;            /**< connect and command timeout; default 2000 */
  const char *host;          /**< recorded in lock tokens; default gethostname() */
} px_store_redis_options;

/**
 * Opens a Redis store. The URL, password file and key file are checked
 * here: a bad one fails with a message in `err` (which never holds the
 * password). Redis itself need not be reachable yet: then a warning is
 * logged and the first call connects; a wrong password or a foreign layout
 * version (`<prefix>version`) fails the open when it is reachable.
 */
int px_store_redis_open(const px_store_redis_options *opt, px_store **out, char *err,
                        size_t errlen);

/** True when `s` is a Redis store. */
int px_store_is_redis(const px_store *s);

/**
 * Announces that the certificate for `name` changed, on the channel
 * `<prefix>updates`. Returns the number of subscribers that received it,
 * or a negative errno (-ENOTSUP for a store that is not Redis).
 */
int px_store_redis_publish(px_store *s, const char *name);

/** The payload prefix of a challenge notification on the update channel
 *  (a certificate name never holds a ':'). */
#define PX_STORE_REDIS_CHALLENGE_MSG "challenge:"

/**
 * Announces new challenge material stored under `id` (a challenge item's
 * name, acme/challenge_store.h) on the same channel, as
 * "challenge:<id>", so every instance can answer the CA at once.
 * Subscribers get it from px_store_redis_wait_update with that prefix.
 */
int px_store_redis_publish_challenge(px_store *s, const char *id);

/**
 * Subscribes (on a second connection) to `<prefix>updates`, if not already,
 * and returns that connection's descriptor, to poll for readability before
 * calling px_store_redis_wait_update with a zero timeout. After an error
 * the connection is closed: call this again (a new descriptor). Messages
 * published while no subscription stands are lost, so a caller also checks
 * the store now and then.
 */
int px_store_redis_subscribe(px_store *s);

/**
 * Waits up to `timeout_ms` (0: only what has already arrived) for the next
 * update, subscribing first if needed. Returns 1 with the certificate's
 * name (or "challenge:<id>") in `name`, 0 when none came in time, or a
 * negative errno.
 */
int px_store_redis_wait_update(px_store *s, int timeout_ms, char *name, size_t cap);

#endif
