/* Picks the store the `storage` setting names (acme/store_open.h). */
#include "acme/store_open.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "acme/store_redis.h"

int px_store_is_url(const char *storage) {
  size_t n = strspn(storage, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
  return n > 0 && strncmp(storage + n, "://", 3) == 0;
}

/* A Redis option given for a directory would be silently ignored (and a
 * key file suggest keys on disk are encrypted, which they are not). */
static const char *redis_only_option(const px_store_options *o) {
  if (o->prefix != NULL) return "storage_prefix";
  if (o->password_file != NULL) return "storage_password_file";
  if (o->key_file != NULL) return "storage_key_file";
  return NULL;
}

int px_store_open(const char *storage, const px_store_options *opts, px_store **out, char *err,
                  size_t errlen) {
  static const px_store_options none = {0};
  const px_store_options *o = opts != NULL ? opts : &none;
  int rc;

  *out = NULL;
  if (storage == NULL || storage[0] == '\0') {
    snprintf(err, errlen, "storage is empty");
    return -EINVAL;
  }
  if (strncmp(storage, "redis://", 8) == 0 || strncmp(storage, "rediss://", 9) == 0) {
    px_store_redis_options ro = {0};
    char why[300];
    ro.url = storage;
    ro.prefix = o->prefix;
    ro.password_file = o->password_file;
    ro.key_file = o->key_file;
    ro.lock_stale_after = o->lock_stale_after;
    ro.challenge_ttl = o->challenge_ttl;
    ro.timeout_ms = o->timeout_ms;
    ro.host = o->host;
    rc = px_store_redis_open(&ro, out, why, sizeof(why));
    /* Not the URL itself: one with a password in it is refused, not echoed. */
    if (rc != 0) snprintf(err, errlen, "storage (redis): %s", why);
    return rc;
  }
  if (px_store_is_url(storage)) {
    snprintf(err, errlen, "storage %.*s: unknown scheme (a directory, or redis://host:port/db)",
             (int)strcspn(storage, ":"), storage);
    return -EINVAL;
  }
  if (redis_only_option(o) != NULL) {
    snprintf(err, errlen, "%s applies only to a redis:// storage, not the directory %s",
             redis_only_option(o), storage);
    return -EINVAL;
  }
  px_store_fs_options fo = {0};
  fo.root = storage;
  fo.lock_stale_after = o->lock_stale_after;
  fo.host = o->host;
  rc = px_store_fs_open(&fo, out);
  if (rc != 0) snprintf(err, errlen, "storage %s: %s", storage, strerror(-rc));
  return rc;
}
