/*
 * Loading a cached certificate (acme/cache_load.h). Found by fault
 * injection: a chain cut inside the intermediate, a pair copied from
 * another name and a garbage meta.json used to load silently.
 */
#include "acme/cache_load.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tls/log.h"

int px_acme_cache_check_meta(px_store *s, const char *name) {
  char *data = NULL;
  size_t len = 0;
  int rc = px_store_cert_load(s, name, PX_STORE_META_JSON, &data, &len);
  if (rc != 0) return 0; /* absent, or refused by the store (logged there) */
  json_error_t jerr;
  json_t *meta = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
  px_store_data_free(data, len);
  const char *why = NULL;
  if (meta == NULL)
    why = jerr.text;
  else if (!json_is_object(meta))
    why = "not a JSON object";
  else {
    json_t *names = json_object_get(meta, "names"), *v;
    size_t i;
    if (names != NULL && !json_is_array(names)) why = "\"names\" is not a list";
    json_array_foreach(names, i, v) if (!json_is_string(v)) why = "\"names\" holds a non-string";
  }
  json_decref(meta);
  if (why == NULL) return 1;
  px_log(PX_LOG_WARN,
         "cache: certs/%s/meta.json is not valid (%s); moved to quarantine/ and ignored", name,
         why);
  s->ops->quarantine(s, PX_STORE_CERTS, name, PX_STORE_META_JSON);
  return 0;
}

/* Sets a certificate's files aside so the next attempt re-issues it. */
static void quarantine_cert(px_store *s, const char *name, const char *why) {
  static const char *const aspects[] = {PX_STORE_CERT_PEM, PX_STORE_KEY_PEM, PX_STORE_META_JSON};
  px_log(PX_LOG_WARN,
         "cache: certificate for %s set aside: %s; moved to quarantine/, a new one will be "
         "ordered",
         name, why);
  for (size_t i = 0; i < sizeof(aspects) / sizeof(aspects[0]); i++)
    s->ops->quarantine(s, PX_STORE_CERTS, name, aspects[i]);
}

/* A load error that says the stored bytes themselves are bad (a symlink,
 * not a regular file, too large); any other (the store unreachable, an I/O
 * error, a key that does not decrypt with storage_key_file) says nothing
 * about the certificate, which stays where it is. */
static int load_error_is_the_item(int rc) { return rc == -ELOOP || rc == -EINVAL || rc == -EFBIG; }

/* Reads cert.pem and key.pem and pairs them: 0 with *c (or NULL and the
 * reason in `why`), or the store's error when it could not say. */
static int load_pair(px_store *s, const char *name, px_tls_cert **c, char *why, size_t cap) {
  char *cert = NULL, *key = NULL;
  size_t clen = 0, klen = 0;
  *c = NULL;
  int rc = px_store_cert_load(s, name, PX_STORE_CERT_PEM, &cert, &clen);
  if (rc == 0) rc = px_store_cert_load(s, name, PX_STORE_KEY_PEM, &key, &klen);
  if (rc != 0 && rc != -ENOENT && !load_error_is_the_item(rc)) {
    px_store_data_free(cert, clen);
    px_store_data_free(key, klen);
    return rc;
  }
  if (rc != 0)
    snprintf(why, cap, "cannot read it: %s", strerror(-rc));
  else
    *c = px_tls_cert_from_pem(cert, clen, key, klen, why, cap);
  px_store_data_free(cert, clen);
  px_store_data_free(key, klen);
  return 0;
}

px_tls_cert *px_acme_cache_load_cert(px_store *s, const char *name) {
  /* Negative: the store cannot say; nothing is served from it now. */
  if (px_store_cert_exists(s, name) <= 0) return NULL;
  px_tls_cert *c = NULL;
  char why[200] = "";
  /* Another instance saves key.pem then cert.pem, each atomically: a read
   * between the two sees a pair that does not match. Read again before
   * judging the files corrupt. */
  for (int attempt = 0; attempt < 3; attempt++) {
    if (attempt > 0) {
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
    int rc = load_pair(s, name, &c, why, sizeof(why));
    if (rc != 0) {
      px_log(PX_LOG_WARN, "cache: certificate for %s cannot be read now: %s; left in place", name,
             strerror(-rc));
      return NULL;
    }
    if (c != NULL) break;
    if (px_store_cert_exists(s, name) <= 0) return NULL; /* removed meanwhile */
  }
  if (c != NULL && !px_tls_cert_covers(c, name)) {
    /* A pair copied from another name's directory parses and matches its
     * key, but serving it here would fail every client's name check. */
    snprintf(why, sizeof(why), "the certificate (serial %s) does not cover %s",
             px_tls_cert_serial(c), name);
    px_tls_cert_unref(c);
    c = NULL;
  }
  if (c == NULL) {
    quarantine_cert(s, name, why);
    return NULL;
  }
  px_acme_cache_check_meta(s, name);
  return c;
}

void px_acme_expiry_phrase(int64_t not_after, int64_t now, char *out, size_t cap) {
  if (not_after <= now) {
    snprintf(out, cap, "has expired");
    return;
  }
  int64_t min = (not_after - now) / 60;
  if (min < 1)
    snprintf(out, cap, "expires in less than a minute");
  else if (min < 120)
    snprintf(out, cap, "expires in %lld minute%s", (long long)min, min == 1 ? "" : "s");
  else if (min < 48 * 60)
    snprintf(out, cap, "expires in %lld hours", (long long)(min / 60));
  else
    snprintf(out, cap, "expires in %lld days", (long long)(min / 1440));
}
