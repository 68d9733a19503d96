/*
 * Issuance (acme/life/issue.h): cache, backoff, order, save, publish.
 */
#include "acme/life/issue.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/backoff.h"
#include "acme/cache_load.h"
#include "tls/log.h"

/* A certificate this close to expiry is not served from the cache. */
#define EXPIRY_MARGIN_S 3600

/* Loads a cached certificate; a corrupt one is set aside (quarantine) so
 * the next step re-issues it, once, under the failure backoff. */
static px_tls_cert *load_cached(px_acme_manager *m, const char *name) {
  px_tls_cert *c = px_acme_cache_load_cert(m->store, name);
  if (c == NULL) return NULL;
  int64_t now = (int64_t)time(NULL);
  if (px_tls_cert_not_after(c) < now + EXPIRY_MARGIN_S) {
    char left[64];
    px_acme_expiry_phrase(px_tls_cert_not_after(c), now, left, sizeof(left));
    px_log(PX_LOG_INFO, "cache: certificate for %s %s; obtaining a new one", name, left);
    px_tls_cert_unref(c);
    return NULL;
  }
  return c;
}

/* ---- job hooks: where the persisted record per certificate plugs in ---- */

static void load_backoff(px_acme_manager *m, const char *name, px_acme_backoff *b) {
  char *data = NULL;
  size_t len = 0;
  px_acme_backoff_init(b, name);
  if (m->store->ops->load(m->store, PX_STORE_FAILURES, name, NULL, &data, &len) == 0) {
    if (px_acme_backoff_from_json(data, len, b) != 0) px_acme_backoff_init(b, name);
    px_store_data_free(data, len);
  }
}

/* 0 when an order may be placed now, else -EAGAIN with *next_s (Unix
 * seconds) the earliest time it may. */
static int attempt_allowed(px_acme_manager *m, const px__acme_attempt *a, int64_t *next_s) {
  px_acme_backoff b;
  load_backoff(m, a->names[0], &b);
  if (px_acme_backoff_ready(&b, (int64_t)time(NULL))) return 0;
  px_log(PX_LOG_INFO, "acme: %s failed %u time(s); next attempt in %lld s", a->names[0], b.failures,
         (long long)(b.next_attempt - (int64_t)time(NULL)));
  *next_s = b.next_attempt;
  return -EAGAIN;
}

/* Records a failed attempt; returns when the next may start (Unix s),
 * never sooner than the CA's Retry-After. */
static int64_t record_failure(px_acme_manager *m, const px__acme_attempt *a, const char *err,
                              int64_t retry_after) {
  const char *name = a->names[0];
  int64_t now = (int64_t)time(NULL);
  px_acme_backoff b;
  load_backoff(m, name, &b);
  px_acme_backoff_fail(&b, now, err);
  if (retry_after > 0 && now + retry_after > b.next_attempt) b.next_attempt = now + retry_after;
  char *json = px_acme_backoff_to_json(&b);
  if (json) {
    m->store->ops->save(m->store, PX_STORE_FAILURES, name, NULL, json, strlen(json));
    free(json);
  }
  return b.next_attempt;
}

static void record_success(px_acme_manager *m, const px__acme_attempt *a) {
  m->store->ops->remove(m->store, PX_STORE_FAILURES, a->names[0], NULL);
}

/* ---- order, save, publish ----------------------------------------------- */

/* meta.json: what the certificate covers, when it was issued and expires,
 * and the CA's alternate chains (RFC 8555 §7.4.2), kept for operators and
 * for renewal. */
static void save_meta(px_acme_manager *m, const px__acme_attempt *a, const px_acme_result *res,
                      const px_tls_cert *c) {
  json_t *names = json_array(), *alts = json_array();
  for (size_t i = 0; names && i < a->nnames; i++)
    json_array_append_new(names, json_string(a->names[i]));
  for (size_t i = 0; alts && i < res->nalternates; i++)
    json_array_append_new(alts, json_string(res->alternates[i]));
  json_t *meta = json_pack("{s:o,s:s,s:I,s:I,s:o}", "names", names, "serial", px_tls_cert_serial(c),
                           "issued_at", (json_int_t)time(NULL), "not_after",
                           (json_int_t)px_tls_cert_not_after(c), "alternates", alts);
  char *text = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (text)
    m->store->ops->save(m->store, PX_STORE_CERTS, a->names[0], PX_STORE_META_JSON, text,
                        strlen(text));
  free(text);
  json_decref(meta);
}

/* Saves the new certificate and serves it; NULL, or why it cannot be used. */
static const char *save_and_publish(px_acme_manager *m, px__acme_attempt *a, px_acme_result *res) {
  const char *name = a->names[0];
  char why[160];
  px_tls_cert *c = px_tls_cert_from_pem(res->cert_pem, res->cert_len, res->key_pem, res->key_len,
                                        why, sizeof(why));
  if (c == NULL) return "the CA's certificate does not match our key";
  /* Key first, then the certificate: a reader that sees the new
   * certificate always finds its key (each write is atomic). */
  m->store->ops->save(m->store, PX_STORE_CERTS, name, PX_STORE_KEY_PEM, res->key_pem, res->key_len);
  m->store->ops->save(m->store, PX_STORE_CERTS, name, PX_STORE_CERT_PEM, res->cert_pem,
                      res->cert_len);
  save_meta(m, a, res, c);
  record_success(m, a);
  px_log(PX_LOG_INFO, "acme: certificate for %s%s ready (serial %s)", name,
         a->nnames > 1 ? " and others" : "", px_tls_cert_serial(c));
  px__acme_publish(m, a->names, a->nnames, c);
  px_tls_cert_unref(c);
  return NULL;
}

static void on_issued(void *arg, const char *err, px_acme_result *res, int64_t retry_after) {
  px__acme_attempt *a = arg;
  px_acme_manager *m = a->m;
  if (err == NULL) {
    err = save_and_publish(m, a, res);
    px_acme_result_dispose(res);
  }
  if (err) {
    int64_t next = record_failure(m, a, err, retry_after);
    px_log(PX_LOG_ERROR, "acme: issuance for %s failed: %s; next attempt in %lld s", a->names[0],
           err, (long long)(next - (int64_t)time(NULL)));
    px__acme_refuse(m, a->names, a->nnames, next * 1000);
  }
  px__acme_attempt_free(a);
}

/* Places the order when the rate allows it. */
static void order(px_acme_manager *m, px__acme_attempt *a) {
  if (px__acme_ondemand_rate_take(m, a) != 0) {
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    return;
  }
  if (px_acme_issue(m->client, (const char *const *)a->names, a->nnames, on_issued, a) != 0) {
    px_log(PX_LOG_ERROR, "acme: could not start an order for %s", a->names[0]);
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
  }
}

void px__acme_obtain(px_acme_manager *m, px__acme_attempt *a) {
  px_tls_cert *c = load_cached(m, a->names[0]);
  if (c) {
    px_log(PX_LOG_INFO, "cache: loaded certificate for %s (serial %s)", a->names[0],
           px_tls_cert_serial(c));
    px__acme_publish(m, a->names, a->nnames, c);
    px_tls_cert_unref(c);
    px__acme_attempt_free(a);
    return;
  }
  int64_t next_s = 0;
  if (attempt_allowed(m, a, &next_s) != 0) {
    px__acme_refuse(m, a->names, a->nnames, next_s * 1000);
    px__acme_attempt_free(a);
    return;
  }
  order(m, a);
}
