/*
 * Operator control and notifications (acme/life/control.h): the admin
 * socket's operations over the job table, and the events emitted when a
 * certificate is obtained, renewed, fails, is expiring or is revoked.
 */
#include "acme/life/control.h"

#include <jansson.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/life/admin.h"
#include "acme/life/scheduler.h"
#include "tls/log.h"

static int64_t now_s(void) { return px__acme_now_ms() / 1000; }

/* How much longer than one request to the CA `ctl revoke` waits: a nonce
 * fetch, a badNonce retry, the loop's other work. */
#define PX_REVOKE_WAIT_MARGIN_MS 15000

/* ---- events ------------------------------------------------------------- */

/* The event for the job's current state. */
static void emit(px_acme_manager *m, px_job_entry *e, px_event_type type, const char *error,
                 const char *error_type) {
  if (m->events == NULL) return;
  px_event ev = {.type = type,
                 .names = (const char *const *)e->job.names,
                 .nnames = e->job.nnames,
                 .not_after = e->job.not_after,
                 .error = error,
                 .error_type = error_type};
  if (type == PX_EVENT_FAILED || type == PX_EVENT_EXPIRING) {
    ev.attempt = e->job.failures;
    ev.next_attempt = e->job.next_run;
  }
  px_events_emit(m->events, &ev);
}

void px__control_issued(px_acme_manager *m, px_job_entry *e, int renewed) {
  e->expiring_sent = 0;
  px__metrics_order(m, renewed ? PX_ACME_ORDER_RENEWED : PX_ACME_ORDER_OBTAINED);
  emit(m, e, renewed ? PX_EVENT_RENEWED : PX_EVENT_OBTAINED, NULL, NULL);
}

void px__control_failed(px_acme_manager *m, px_job_entry *e) {
  const px_job_error *le = &e->job.last_error;
  px__metrics_order(m, le->rate_limited ? PX_ACME_ORDER_RATE_LIMITED : PX_ACME_ORDER_FAILED);
  emit(m, e, PX_EVENT_FAILED, le->detail, le->type);
  /* The integration guide: tell the operator before the certificate
   * expires, while renewal keeps failing. */
  int64_t now = now_s(), life = e->job.not_after - e->job.not_before;
  if (e->job.not_after <= now || life <= 0) return;
  if ((e->job.not_after - now) * PX_EXPIRING_FRACTION >= life) return;
  if (e->expiring_sent && e->expiring_sent + PX_EXPIRING_INTERVAL_S > now) return;
  e->expiring_sent = now;
  emit(m, e, PX_EVENT_EXPIRING, le->detail, le->type);
}

/* ---- the admin socket's operations ----------------------------------------- */

/* RFC 3339 (UTC) for a Unix time; NULL (JSON null) for 0. */
static json_t *time_json(int64_t t) {
  if (t <= 0) return json_null();
  char buf[32];
  time_t tt = (time_t)t;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return json_string(buf);
}

/* "type: detail", one line for `ctl status`; NULL without an error. */
static json_t *error_json(const px_job_error *le) {
  if (le->type == NULL && le->detail == NULL) return json_null();
  char buf[PX_JOB_TYPE_MAX + PX_JOB_DETAIL_MAX + 4];
  snprintf(buf, sizeof(buf), "%s%s%s", le->type ? le->type : "", le->type && le->detail ? ": " : "",
           le->detail ? le->detail : "");
  return json_string(buf);
}

/* When the scheduler acts next and why, as `ctl status` shows them. */
static void put_next(json_t *o, const px_job_entry *e) {
  const char *why = px_renew_reason_name(e->job.next_reason);
  if (e->running)
    why = "running now";
  else if (e->waiting_ca)
    why = "waiting for the CA";
  else if (e->forgotten)
    why = "forgotten (on_demand.forget_after)";
  else if (e->force)
    why = "operator";
  json_object_set_new(o, "next_run", time_json(e->running ? 0 : e->job.next_run));
  json_object_set_new(o, "next_reason", json_string(why));
}

static json_t *summary(const px_job_entry *e) {
  json_t *names = json_array(), *o = json_object();
  if (names == NULL || o == NULL) {
    json_decref(names);
    json_decref(o);
    return NULL;
  }
  for (size_t i = 0; i < e->job.nnames; i++)
    json_array_append_new(names, json_string(e->job.names[i]));
  json_object_set_new(o, "names", names);
  json_object_set_new(o, "not_after", time_json(e->job.not_after));
  put_next(o, e);
  json_object_set_new(o, "state", json_string(px_job_state_name(e->job.state)));
  json_object_set_new(o, "failures", json_integer(e->job.failures));
  json_object_set_new(o, "last_error", error_json(&e->job.last_error));
  return o;
}

static json_t *op_status(void *ctx, char *err, size_t errlen) {
  px_acme_manager *m = ctx;
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < px_job_table_count(&m->jobs); i++) {
    json_t *s = summary(px_job_table_at(&m->jobs, i));
    if (s == NULL || json_array_append_new(arr, s) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  if (arr == NULL) snprintf(err, errlen, "out of memory");
  return arr;
}

static px_job_entry *find(px_acme_manager *m, const char *name, char *err, size_t errlen) {
  px_job_entry *e = px_job_table_find(&m->jobs, name);
  if (e == NULL) snprintf(err, errlen, "unknown name %s", name);
  return e;
}

/* The persisted job (acme/life/job.h) with times as RFC 3339 and the
 * members `ctl` reads: last_error as one line (the CA's document stays in
 * "problem"), events as {time, event, detail}. */
static json_t *op_show(void *ctx, const char *name, char *err, size_t errlen) {
  px_acme_manager *m = ctx;
  px_job_entry *e = find(m, name, err, errlen);
  if (e == NULL) return NULL;
  char *text = px_job_to_json(&e->job);
  json_t *o = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  json_t *s = o ? summary(e) : NULL, *events = json_array();
  if (s == NULL || events == NULL) {
    json_decref(o);
    json_decref(s);
    json_decref(events);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  json_t *problem = json_object_get(o, "last_error");
  if (problem) json_object_set(o, "problem", problem);
  json_object_update(o, s); /* names, not_after, next_run, next_reason, state, last_error */
  json_decref(s);
  static const char *const times[] = {"not_before", "last_failure", "retry_after", "last_seen"};
  for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
    json_t *v = json_object_get(o, times[i]);
    if (json_is_integer(v)) json_object_set_new(o, times[i], time_json(json_integer_value(v)));
  }
  json_t *ari = json_object_get(o, "ari");
  static const char *const ari_times[] = {"start", "end", "fetched", "next_poll"};
  for (size_t i = 0; json_is_object(ari) && i < sizeof(ari_times) / sizeof(ari_times[0]); i++) {
    json_t *v = json_object_get(ari, ari_times[i]);
    if (json_is_integer(v))
      json_object_set_new(ari, ari_times[i], time_json(json_integer_value(v)));
  }
  json_object_del(o, "version");
  for (size_t i = 0; i < px_job_event_count(&e->job); i++) {
    const px_job_event *ev = px_job_event_at(&e->job, i);
    json_array_append_new(events, json_pack("{s:o,s:s,s:s?}", "time", time_json(ev->at), "event",
                                            ev->kind, "detail", ev->detail));
  }
  json_object_set_new(o, "events", events);
  return o;
}

/* An operator's retry of one job: whatever held it back is cleared. */
static void retry_one(px_acme_manager *m, px_job_entry *e) {
  if (e->running) return; /* an attempt is running now */
  e->waiting_ca = 0;
  e->forgotten = 0;
  e->force = 1; /* an attempt, not an ARI poll that would reschedule it */
  px__sched_retry_now(m, e);
}

static int op_retry(void *ctx, const char *name, char *err, size_t errlen) {
  px_acme_manager *m = ctx;
  if (name) {
    px_job_entry *e = find(m, name, err, errlen);
    if (e == NULL) return -1;
    px_log(PX_LOG_INFO, "acme: the operator retries %s now", e->job.names[0]);
    retry_one(m, e);
    return 0;
  }
  /* Every job that waits on a failure or on the CA; valid ones are left
   * to their schedule. */
  size_t n = 0;
  for (size_t i = 0; i < px_job_table_count(&m->jobs); i++) {
    px_job_entry *e = px_job_table_at(&m->jobs, i);
    if (e->job.failures == 0 && !e->waiting_ca && e->job.state != PX_JOB_PENDING &&
        e->job.state != PX_JOB_EXPIRED)
      continue;
    retry_one(m, e);
    n++;
  }
  px_log(PX_LOG_INFO, "acme: the operator retries every failing certificate now (%zu)", n);
  return 0;
}

static int op_renew(void *ctx, const char *name, char *err, size_t errlen) {
  px_acme_manager *m = ctx;
  px_job_entry *e = find(m, name, err, errlen);
  if (e == NULL) return -1;
  px_log(PX_LOG_INFO, "acme: the operator renews %s now", e->job.names[0]);
  e->waiting_ca = 0;
  px__sched_renew_now(m, e);
  return 0;
}

/* ---- revocation ------------------------------------------------------------ */

/* A revocation waiting for the CA's answer: on the manager's list, so that
 * a shutdown that abandons the order (px_acme_client_free calls nobody
 * back) frees it too. */
typedef struct px__revoke {
  struct px__revoke *next;
  px_acme_manager *m;
  px_admin_reply *reply; /* the `ctl revoke` waiting for the outcome */
  int reason;
  char serial[80];
  char name[];
} revoke_ctx;

static const char *reason_name(int code) {
  static const char *const names[] = {"unspecified",  "keyCompromise",
                                      "cACompromise", "affiliationChanged",
                                      "superseded",   "cessationOfOperation"};
  return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "other";
}

/* Takes `r` off the manager's list, answers its ctl with `body` (consumed)
 * and frees it. */
static void revoke_end(revoke_ctx *r, json_t *body) {
  for (revoke_ctx **p = &r->m->revokes; *p; p = &(*p)->next)
    if (*p == r) {
      *p = r->next;
      break;
    }
  px_admin_reply_send(r->reply, body);
  free(r);
}

static void on_revoked(void *arg, const char *err, px_acme_result *res, const px_acme_failure *f) {
  (void)res;
  (void)f;
  revoke_ctx *r = arg;
  px_acme_manager *m = r->m;
  px_job_entry *e = px_job_table_find(&m->jobs, r->name);
  int64_t now = now_s();
  char line[PX_JOB_DETAIL_MAX + 1], msg[PX_JOB_DETAIL_MAX + 256];
  if (err) {
    snprintf(line, sizeof(line), "serial %s: %s", r->serial, err);
    px_log(PX_LOG_ERROR, "acme: revoking the certificate for %s failed: %s; it is still served",
           r->name, err);
    if (e) {
      px_job_add_event(&e->job, now, "revoke-failed", line);
      px_job_table_save(m->store, e, now);
    }
    snprintf(msg, sizeof(msg),
             "the CA did not revoke the certificate for %s (serial %s): %s; it is still served",
             r->name, r->serial, err);
    revoke_end(r, json_pack("{s:s,s:s}", "error", msg, "serial", r->serial));
    return;
  }
  snprintf(line, sizeof(line), "serial %s, reason %s", r->serial, reason_name(r->reason));
  if (e == NULL) { /* the job went away meanwhile: nothing to replace */
    revoke_end(r, json_pack("{s:b,s:s,s:s,s:b}", "ok", 1, "serial", r->serial, "reason",
                            reason_name(r->reason), "replacement", 0));
    return;
  }
  px_log(PX_LOG_WARN, "acme: the certificate for %s is revoked (%s); ordering a replacement now",
         e->job.names[0], line);
  px_job_add_event(&e->job, now, "revoked", line);
  px_job_table_save(m->store, e, now);
  emit(m, e, PX_EVENT_REVOKED, NULL, NULL);
  e->waiting_ca = 0;
  px__sched_renew_now(m, e); /* the revoked certificate is served until then */
  revoke_end(r, json_pack("{s:b,s:s,s:s,s:b}", "ok", 1, "serial", r->serial, "reason",
                          reason_name(r->reason), "replacement", 1));
}

/* The leaf of the job's cached chain as DER (OPENSSL_free), and its serial. */
static uint8_t *leaf_der(px_acme_manager *m, const char *name, int *len, char *serial, size_t cap) {
  char *pem = NULL;
  size_t plen = 0;
  uint8_t *der = NULL;
  *len = 0;
  if (px_store_cert_load(m->store, name, PX_STORE_CERT_PEM, &pem, &plen) != 0) return NULL;
  BIO *b = BIO_new_mem_buf(pem, (long)plen);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  if (x) {
    *len = i2d_X509(x, &der);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    snprintf(serial, cap, "%s", hex ? hex : "?");
    OPENSSL_free(hex);
    BN_free(bn);
  }
  X509_free(x);
  BIO_free(b);
  px_store_data_free(pem, plen);
  return *len > 0 ? der : NULL;
}

static int op_revoke(void *ctx, const char *name, int reason, px_admin_reply *reply, char *err,
                     size_t errlen) {
  px_acme_manager *m = ctx;
  px_job_entry *e = find(m, name, err, errlen);
  if (e == NULL) return -1;
  revoke_ctx *r = calloc(1, sizeof(*r) + strlen(e->job.names[0]) + 1);
  if (r == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  r->m = m;
  r->reason = reason;
  strcpy(r->name, e->job.names[0]);
  int len = 0;
  uint8_t *der = leaf_der(m, e->job.names[0], &len, r->serial, sizeof(r->serial));
  if (der == NULL) {
    snprintf(err, errlen, "%s has no certificate in the cache to revoke", name);
    free(r);
    return -1;
  }
  int rc = px_acme_revoke(m->client, (const char *const *)e->job.names, e->job.nnames, der,
                          (size_t)len, reason, on_revoked, r);
  OPENSSL_free(der);
  if (rc != 0) {
    snprintf(err, errlen, "cannot start the revocation of %s", name);
    free(r);
    return -1;
  }
  r->reply = reply;
  r->next = m->revokes;
  m->revokes = r;
  px_log(PX_LOG_INFO, "acme: the operator revokes the certificate for %s (serial %s, reason %s)",
         e->job.names[0], r->serial, reason_name(reason));
  return 0;
}

/* ---- proxy commands ---------------------------------------------------------- */

/* The proxy registered its reload (px_acme_manager_opts.reload): the
 * socket is the manager's, the command is the proxy's. */
static int op_reload(void *ctx, char *msg, size_t cap) {
  px_acme_manager *m = ctx;
  return m->o.reload(m->o.arg, msg, cap);
}

/* ---- lifetime ----------------------------------------------------------------- */

int px__control_start(px_acme_manager *m, char *err, size_t errlen) {
  m->events = px_events_new(&m->loop, &m->o.events, err, errlen);
  if (m->events == NULL) return -1;
  if (m->o.admin_socket == NULL) return 0;
  px_admin_ops ops = {.ctx = m,
                      .status = op_status,
                      .show = op_show,
                      .retry = op_retry,
                      .renew = op_renew,
                      .revoke = op_revoke,
                      .reopen = px_admin_reopen_logs,
                      .reload = m->o.reload ? op_reload : NULL};
  /* revoke waits for the CA's answer to one request (the directory and the
   * account are known once a certificate was issued), plus a margin. */
  px_admin_options ao = {.path = m->o.admin_socket,
                         .max_wait_ms = PX_ACME_REQUEST_TIMEOUT_MS + PX_REVOKE_WAIT_MARGIN_MS};
  m->admin = px_admin_start(&m->loop, &ao, &ops, err, errlen);
  if (m->admin == NULL) return -1;
  px_log(PX_LOG_INFO, "admin socket listening at %s (portico ctl)", m->o.admin_socket);
  return 0;
}

void px__control_close(px_acme_manager *m) {
  /* The admin socket first: it tells a waiting `ctl revoke` that portico
   * is stopping. Then the revocations still waiting for the CA: their
   * orders are abandoned with the client, which calls nobody back. */
  if (m->admin) px_admin_close(m->admin);
  m->admin = NULL;
  while (m->revokes)
    revoke_end(m->revokes, NULL);
  if (m->events) px_events_close(m->events);
  m->events = NULL;
}
