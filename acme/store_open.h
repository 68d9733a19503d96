/*
 * Opening the store named by the `storage` setting: a directory path is the
 * filesystem store (store_fs.c), a redis:// URL the Redis store
 * (store_redis.c). docs/fleet.md describes both.
 */
#ifndef PX_ACME_STORE_OPEN_H
#define PX_ACME_STORE_OPEN_H

#include <stddef.h>
#include <stdint.h>

#include "acme/store.h"

/** Options common to every store, and those of Redis. Zero / NULL means
 *  the default; a Redis-only option set for a directory is an error. */
typedef struct px_store_options {
  int64_t lock_stale_after;  /**< seconds (a Redis lock's TTL) */
  const char *host;          /**< recorded in locks; default gethostname() */
  const char *prefix;        /**< storage_prefix (Redis); default "portico:" */
  const char *password_file; /**< storage_password_file (Redis) */
  const char *key_file;      /**< storage_key_file (Redis): encrypt private keys */
  int64_t challenge_ttl;     /**< seconds (Redis); default 3600 */
  int timeout_ms;            /**< connect and command timeout (Redis); default 2000 */
} px_store_options;

/** True when `storage` names a URL (scheme://...) rather than a directory. */
int px_store_is_url(const char *storage);

/**
 * Opens the store `storage` names: "redis://..." the Redis store, any other
 * URL scheme (rediss:// included) is refused, anything else is a cache
 * directory. `opts` may be NULL. On failure returns a negative errno and a
 * one-line reason in `err` (never a password).
 */
int px_store_open(const char *storage, const px_store_options *opts, px_store **out, char *err,
                  size_t errlen);

#endif
