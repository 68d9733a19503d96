/*
 * Issuance and renewal (acme/life/issue.h): cache, job, order, save,
 * publish.
 */
#include "acme/life/issue.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/cache_load.h"
#include "acme/life/control.h"
#include "acme/life/fleet_lock.h"
#include "acme/life/scheduler.h"
#include "acme/life/watch.h"
#include "acme/proto/ari.h"
#include "tls/log.h"

static int64_t now_s(void) { return px__acme_now_ms() / 1000; }

/* A cached certificate (expired or not) with its ARI facts. The checks of
 * docs/cache.md "Loading" come first (the chain parses, the key matches,
 * the leaf covers the name; anything else is quarantined and re-issued);
 * then the validity and which of the job's names it covers. */
static px_tls_cert *load_cached(px_acme_manager *m, const char *name, px_ari_cert_info *info,
                                const px_job *job, char **names_ok) {
  px_tls_cert *c = px_acme_cache_load_cert(m->store, name);
  if (c == NULL) return NULL;
  /* The facts come from the pair just checked, not from a second read of
   * cert.pem, which another instance may have replaced meanwhile. */
  X509 *leaf = px_tls_cert_leaf(c);
  if (leaf == NULL || px_ari_cert_info_from_x509(leaf, info) != 0) {
    px_log(PX_LOG_WARN, "cache: certificate for %s set aside: its validity cannot be read", name);
    m->store->ops->quarantine(m->store, PX_STORE_CERTS, name, PX_STORE_CERT_PEM);
    m->store->ops->quarantine(m->store, PX_STORE_CERTS, name, PX_STORE_KEY_PEM);
    px_tls_cert_unref(c);
    c = NULL;
  }
  X509_free(leaf);
  for (size_t i = 0; c && job && names_ok && i < job->nnames; i++)
    names_ok[i] = px_tls_cert_covers(c, job->names[i]) ? job->names[i] : NULL;
  return c;
}

/* Serves `c` for the job's names it covers (all of them, unless the
 * site's hosts changed). */
static void publish_covered(px_acme_manager *m, px_job_entry *e, px_tls_cert *c, char **ok) {
  char *names[PX_JOB_NAMES_MAX];
  size_t n = 0;
  for (size_t i = 0; i < e->job.nnames; i++)
    if (!e->names_changed || ok[i]) names[n++] = e->job.names[i];
  px__acme_publish_prefs(m, &e->job); /* before a paused handshake resumes */
  px__acme_publish(m, names, n, c);
  if (e->names_changed)
    for (size_t i = 0; i < e->job.nnames; i++)
      if (!ok[i]) {
        char *nm = e->job.names[i];
        px__acme_refuse(m, &nm, 1, px__acme_now_ms() + 1000); /* until the new one is ready */
      }
}

/* Brings the job in line with a cached certificate; 1 when it changed. */
static int sync_job(px_acme_manager *m, px_job_entry *e, const px_ari_cert_info *info,
                    int64_t now) {
  if (e->job.not_after == info->not_after && e->job.not_before == info->not_before &&
      e->job.next_run != 0)
    return 0;
  int had = e->job.not_after != 0;
  px_job_set_certificate(&e->job, info->not_before, info->not_after, info->cert_id);
  px_job_schedule(&e->job, now, &m->rnd);
  px_job_add_event(&e->job, now, had ? "loaded" : "migrated", "certificate read from the cache");
  return 1;
}

static void log_expired(px_job_entry *e, int64_t now) {
  if (e->job.not_after > now || e->expired_logged + 3600 > now) return;
  e->expired_logged = now;
  px_log(PX_LOG_ERROR,
         "acme: the certificate for %s expired %lld s ago; it is still served because no valid one "
         "exists, and a new one is being obtained",
         e->job.names[0], (long long)(now - e->job.not_after));
}

/* ---- order, save, publish ----------------------------------------------- */

/* meta.json: what the certificate covers, when it was issued and expires,
 * and the CA's alternate chains (RFC 8555 §7.4.2), kept for operators. */
static void save_meta(px_acme_manager *m, px_job_entry *e, const px_acme_result *res,
                      const px_tls_cert *c) {
  json_t *names = json_array(), *alts = json_array();
  for (size_t i = 0; names && i < e->job.nnames; i++)
    json_array_append_new(names, json_string(e->job.names[i]));
  for (size_t i = 0; alts && i < res->nalternates; i++)
    json_array_append_new(alts, json_string(res->alternates[i]));
  json_t *meta = json_pack("{s:o,s:s,s:I,s:I,s:o}", "names", names, "serial", px_tls_cert_serial(c),
                           "issued_at", (json_int_t)time(NULL), "not_after",
                           (json_int_t)px_tls_cert_not_after(c), "alternates", alts);
  char *text = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  int rc =
      text ? px_store_cert_save(m->store, e->job.names[0], PX_STORE_META_JSON, text, strlen(text))
           : -ENOMEM;
  if (rc != 0)
    px_log(PX_LOG_ERROR,
           "cache: cannot save meta.json for %s: %s (it is informational; the job "
           "holds the schedule)",
           e->job.names[0], strerror(-rc));
  free(text);
  json_decref(meta);
}

/* Saves the new certificate and serves it; NULL, or why it cannot be used. */
static const char *save_and_publish(px_acme_manager *m, px__acme_attempt *a, px_acme_result *res) {
  px_job_entry *e = a->entry;
  int64_t now = now_s();
  char why[160];
  px_ari_cert_info info;
  px_tls_cert *c = px_tls_cert_from_pem(res->cert_pem, res->cert_len, res->key_pem, res->key_len,
                                        why, sizeof(why));
  if (c == NULL) return "the CA's certificate does not match our key";
  if (px_ari_cert_info_from_pem(res->cert_pem, res->cert_len, &info) != 0) {
    px_tls_cert_unref(c);
    return "the CA's certificate has no readable validity";
  }
  /* A failed save is logged and retried; the certificate is served from
   * memory meanwhile. */
  px_job_table_save_cert(m->store, e, res->cert_pem, res->cert_len, res->key_pem, res->key_len,
                         now);
  save_meta(m, e, res, c);
  int renewed = e->job.not_after != 0;
  e->job.key_type = m->o.client.key_type;
  px_job_set_profile(&e->job, m->o.client.profile);
  px_job_set_certificate(&e->job, info.not_before, info.not_after, info.cert_id);
  e->job.obtained_at = now;
  px_job_schedule(&e->job, now, &m->rnd);
  if (e->job.next_reason != PX_RENEW_ARI_WINDOW &&
      e->job.next_run - now <= (info.not_after - info.not_before) / 3 &&
      e->job.next_run <= now + PX_RENEW_EMERGENCY_INTERVAL)
    px_log(PX_LOG_WARN,
           "acme: the new certificate for %s is already due for renewal (not after %lld, %lld s "
           "from now by this machine's clock); check the clock (it may be ahead of the CA's) and "
           "the CA's lifetime; not renewing it again before %lld s",
           e->job.names[0], (long long)info.not_after, (long long)(info.not_after - now),
           (long long)(e->job.next_run - now));
  char line[160];
  snprintf(line, sizeof(line), "serial %s, not after %lld", px_tls_cert_serial(c),
           (long long)info.not_after);
  px_job_add_event(&e->job, now, renewed ? "renewed" : "obtained", line);
  e->names_changed = 0;
  e->expired_logged = 0;
  px_job_table_save(m->store, e, now);
  px_log(PX_LOG_INFO, "acme: certificate for %s%s %s (serial %s); next renewal in %lld s (%s)",
         e->job.names[0], e->job.nnames > 1 ? " and others" : "", renewed ? "renewed" : "ready",
         px_tls_cert_serial(c), (long long)(e->job.next_run - now),
         px_renew_reason_name(e->job.next_reason));
  px__acme_publish_prefs(m, &e->job);
  px__acme_publish(m, e->job.names, e->job.nnames, c);
  px_tls_cert_unref(c);
  px__control_issued(m, e, renewed);
  px__watch_cert_saved(m, e->job.names[0]);
  return NULL;
}

static void on_issued(void *arg, const char *err, px_acme_result *res, const px_acme_failure *f) {
  px__acme_attempt *a = arg;
  px_acme_manager *m = a->m;
  px_job_entry *e = a->entry;
  e->running = 0;
  if (err == NULL) {
    err = save_and_publish(m, a, res);
    px_acme_result_dispose(res);
  }
  if (err && f->ca_unreachable) {
    int64_t until = px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS;
    px__sched_wait_for_ca(m, e, err);
    px__sched_ca_down(m, &until);
    px__acme_refuse(m, e->job.names, e->job.nnames, until);
  } else if (err) {
    int64_t now = now_s();
    px_job_record_failure(&e->job, now, f->has_problem ? &f->problem : NULL, err,
                          f->retry_after > 0 ? now + f->retry_after : 0);
    int64_t next = px_job_schedule(&e->job, now, &m->rnd);
    if (e->job.last_error.rate_limited)
      px_log(PX_LOG_ERROR, "acme: the CA rate-limits %s: %s", e->job.names[0],
             e->job.last_error.detail ? e->job.last_error.detail : err);
    px_log(PX_LOG_ERROR,
           "acme: issuance for %s failed (%u in a row): %s; next attempt in %lld s "
           "(%s)%s",
           e->job.names[0], e->job.failures, err, (long long)(next - now),
           px_renew_reason_name(e->job.next_reason),
           e->job.not_after > now ? "; the current certificate is still served" : "");
    px_job_table_save(m->store, e, now);
    px__sched_update(m, e);
    px__control_failed(m, e);
    px__acme_refuse(m, e->job.names, e->job.nnames, next * 1000);
  } else {
    px__sched_update(m, e);
  }
  px__acme_attempt_free(a);
}

/* Places the order when the rate allows it (the issuance lock is held). */
static void order_now(px_acme_manager *m, px__acme_attempt *a, const char *replaces) {
  px_job_entry *e = a->entry;
  if (a->handshake && px__acme_ondemand_rate_take(m, a) != 0) {
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    return;
  }
  e->running = 1;
  if (e->job.not_after > 0) e->job.state = PX_JOB_RENEWING;
  if (px_acme_renew(m->client, (const char *const *)e->job.names, e->job.nnames, replaces,
                    on_issued, a) != 0) {
    e->running = 0;
    px_log(PX_LOG_ERROR, "acme: could not start an order for %s (out of memory)", a->names[0]);
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    px__sched_update(m, e);
  }
}

/* Orders under the fleet's issuance lock (life/fleet_lock.h). */
static void order(px_acme_manager *m, px__acme_attempt *a, const char *replaces) {
  px__fleet_order(m, a, replaces, order_now);
}

static void after_caa(px_acme_manager *m, px__acme_attempt *a, int allowed) {
  if (allowed) {
    order(m, a, NULL);
    return;
  }
  px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
  px__acme_attempt_free(a);
}

void px__acme_obtain(px_acme_manager *m, px__acme_attempt *a) {
  int64_t now = now_s();
  px_job_entry *e = a->entry;
  if (e == NULL)
    e = px_job_table_get(&m->jobs, m->store, (const char *const *)a->names, a->nnames, a->group,
                         now);
  if (e == NULL) {
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    return;
  }
  a->entry = e;
  e->owner = m;
  int prefs_changed = 0;
  if (a->handshake && e->group < 0) {
    e->job.last_seen = now; /* a handshake asked for it */
    e->seen_saved = now;
    e->forgotten = 0;
    if (a->asked) { /* the ask endpoint's answer is the name's settings now */
      prefs_changed =
          e->job.redirect_http != a->prefs.redirect_http || e->job.hsts != a->prefs.hsts;
      e->job.redirect_http = a->prefs.redirect_http;
      e->job.hsts = a->prefs.hsts;
    }
  }
  if (e->running) { /* its resolution answers these names too */
    /* An ARI fetch resolves nothing: it looks the names up when it ends. */
    if (e->ari_fetching) {
      e->resolve_after_ari = 1;
      px_log(PX_LOG_DEBUG, "acme: %s waits for its renewalInfo fetch to end", a->names[0]);
    }
    px__acme_attempt_free(a);
    return;
  }
  px_ari_cert_info info;
  char *ok[PX_JOB_NAMES_MAX];
  px_tls_cert *c = load_cached(m, e->job.names[0], &info, &e->job, ok);
  if (c) {
    int changed = sync_job(m, e, &info, now);
    px_log(PX_LOG_INFO, "cache: loaded certificate for %s (serial %s)", e->job.names[0],
           px_tls_cert_serial(c));
    log_expired(e, now);
    publish_covered(m, e, c, ok);
    px_tls_cert_unref(c);
    if (e->names_changed) {
      px_log(PX_LOG_INFO, "acme: the names of %s changed; ordering a certificate for the new set",
             e->job.names[0]);
      e->job.next_run = now;
    }
    if (changed || prefs_changed || e->names_changed || a->handshake)
      px_job_table_save(m->store, e, now);
    px__sched_update(m, e);
    px__acme_attempt_free(a);
    return;
  }
  if (e->job.not_after != 0) { /* the files are gone: start over */
    px_job_set_certificate(&e->job, 0, 0, NULL);
    e->job.state = PX_JOB_PENDING;
  }
  int64_t until;
  if (px__sched_ca_down(m, &until)) {
    e->waiting_ca = e->group >= 0; /* a site is retried when the CA answers */
    px__acme_refuse(m, a->names, a->nnames, until);
    px__acme_attempt_free(a);
    return;
  }
  if (e->job.failures > 0 && px_job_schedule(&e->job, now, &m->rnd) > now) {
    px_log(PX_LOG_INFO, "acme: %s failed %u time(s); next attempt in %lld s", e->job.names[0],
           e->job.failures, (long long)(e->job.next_run - now));
    px__acme_refuse(m, a->names, a->nnames, e->job.next_run * 1000);
    px__sched_update(m, e);
    px__acme_attempt_free(a);
    return;
  }
  /* An on-demand name whose CAA forbids this CA would only burn the CA's
   * failed-validation limit (docs/dns-01.md). */
  if (a->handshake && px__acme_caa_start(m, a, after_caa) == 0) return;
  order(m, a, NULL);
}

void px__acme_resolve_entry(px_acme_manager *m, px_job_entry *e) {
  if (e->group >= 0 && m->group_running[e->group]) return; /* that attempt answers */
  px__acme_attempt *a =
      px__acme_attempt_new(m, (const char *const *)e->job.names, e->job.nnames, e->group);
  if (a == NULL) {
    px__acme_refuse(m, e->job.names, e->job.nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    return;
  }
  if (e->group >= 0) m->group_running[e->group] = 1;
  a->entry = e;
  a->handshake = e->group < 0;
  px__acme_obtain(m, a);
}

int px__acme_adopt_cached(px_acme_manager *m, px_job_entry *e, int64_t now) {
  px_ari_cert_info info;
  char *ok[PX_JOB_NAMES_MAX];
  if (e->pending_cert) return 0; /* ours is newer and not saved yet */
  px_tls_cert *c = load_cached(m, e->job.names[0], &info, &e->job, ok);
  if (c == NULL) return 0;
  /* Newer than ours and still valid: better to serve than ours, whatever
   * its lifetime (the schedule then follows it). */
  int newer = info.not_after > e->job.not_after && info.not_after > now && !e->names_changed;
  if (newer) {
    sync_job(m, e, &info, now);
    px_log(PX_LOG_INFO, "cache: a newer certificate for %s is in the cache (serial %s); serving it",
           e->job.names[0], px_tls_cert_serial(c));
    publish_covered(m, e, c, ok);
    px_job_table_save(m->store, e, now);
    px__sched_update(m, e);
  }
  px_tls_cert_unref(c);
  return newer;
}

void px__acme_renew_job(px_acme_manager *m, px_job_entry *e) {
  int64_t now = now_s();
  e->owner = m;
  if (e->running) return;
  if (e->group >= 0 && m->group_running[e->group]) return;
  if (e->job.not_after > 0 && px__acme_adopt_cached(m, e, now)) return;
  px__acme_attempt *a =
      px__acme_attempt_new(m, (const char *const *)e->job.names, e->job.nnames, e->group);
  if (a == NULL) {
    e->job.next_run = now + 60;
    px__sched_update(m, e);
    return;
  }
  if (e->group >= 0) m->group_running[e->group] = 1;
  a->entry = e;
  if (e->job.not_after > 0)
    px_log(PX_LOG_INFO, "acme: renewing %s (%s; expires in %lld s)", e->job.names[0],
           px_renew_reason_name(e->job.next_reason), (long long)(e->job.not_after - now));
  order(m, a, m->ari_unsupported ? NULL : e->job.cert_id);
}
