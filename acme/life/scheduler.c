/*
 * The renewal scheduler (acme/life/scheduler.h).
 */
#include "acme/life/scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme/life/issue.h"
#include "tls/log.h"

/* The timer wakes at least this often, so a clock step is noticed. */
#define TICK_MAX_S 3600
/* How long to wait before polling renewalInfo again after a failed poll. */
#define ARI_RETRY_S 3600

static int64_t now_s(void) { return px__acme_now_ms() / 1000; }

static int ari_wanted(const px_acme_manager *m, const px_job_entry *e) {
  return !m->ari_unsupported && e->job.cert_id && e->job.not_after > 0 && !e->forgotten;
}

static int saves_pending(const px_job_entry *e) { return e->job_dirty || e->pending_cert; }

/* When the job next needs attention. */
static int64_t action_time(const px_acme_manager *m, const px_job_entry *e) {
  int64_t t = e->force ? 0 : e->job.next_run;
  if (ari_wanted(m, e) && e->job.ari_next_poll < t) t = e->job.ari_next_poll;
  if (saves_pending(e) && e->save_retry_at < t) t = e->save_retry_at;
  return t;
}

static void arm(px_acme_manager *m) {
  if (!m->timers_open) return;
  int64_t now = now_s(), t = INT64_MAX;
  const px_schedq_entry *top = px_schedq_peek(&m->waiting);
  if (top) t = top->key;
  if (px_schedq_len(&m->backlog) > 0) {
    int64_t nm = px_rate_next_minute(now);
    if (nm < t) t = nm;
  }
  if (t == INT64_MAX) {
    uv_timer_stop(&m->sched_timer);
    m->sched_armed_at = 0;
    return;
  }
  int64_t d = t > now ? t - now : 0;
  if (d > TICK_MAX_S) d = TICK_MAX_S;
  m->sched_armed_at = now + d;
}

static void on_tick(uv_timer_t *t);

static void arm_timer(px_acme_manager *m) {
  arm(m);
  if (m->sched_armed_at == 0) return;
  int64_t d = m->sched_armed_at - now_s();
  uv_timer_start(&m->sched_timer, on_tick, d > 0 ? (uint64_t)d * 1000 : 0, 0);
}

static void unqueue(px_acme_manager *m, px_job_entry *e) {
  if (e->_slot != PX_SCHEDQ_NONE) px_schedq_remove(&m->waiting, e->_slot);
  if (e->_bslot != PX_SCHEDQ_NONE) px_schedq_remove(&m->backlog, e->_bslot);
}

static void queue_at(px_acme_manager *m, px_job_entry *e, int64_t key) {
  if (e->_slot != PX_SCHEDQ_NONE)
    px_schedq_update(&m->waiting, e->_slot, key);
  else if (px_schedq_push(&m->waiting, key, e, &e->_slot) != 0)
    px_log(PX_LOG_ERROR, "acme: cannot schedule %s (out of memory)", e->job.names[0]);
}

void px__sched_update(px_acme_manager *m, px_job_entry *e) {
  e->owner = m;
  if (e->running || e->waiting_ca || (e->forgotten && !saves_pending(e))) {
    unqueue(m, e);
    arm_timer(m);
    return;
  }
  if (e->_bslot != PX_SCHEDQ_NONE) px_schedq_remove(&m->backlog, e->_bslot);
  queue_at(m, e, action_time(m, e));
  arm_timer(m);
}

/* ---- ARI (RFC 9773) ------------------------------------------------------ */

static void on_ari(void *arg, const char *err, const px_ari_info *info, int64_t retry_after) {
  px_job_entry *e = arg;
  px_acme_manager *m = e->owner;
  int64_t now = now_s();
  e->running = 0;
  e->ari_fetching = 0;
  m->ari_inflight--;
  if (err) {
    px_log(PX_LOG_WARN, "acme: renewalInfo for %s: %s; asking again later", e->job.names[0], err);
    e->job.ari_next_poll =
        px_renew_ari_poll_at(now, retry_after > 0 ? retry_after : ARI_RETRY_S, &m->rnd);
  } else if (info == NULL) {
    if (!m->ari_unsupported)
      px_log(PX_LOG_INFO,
             "acme: the CA at %s has no renewalInfo (ARI); renewing when a third of "
             "the lifetime is left (half under 10 days)",
             m->o.client.directory_url);
    m->ari_unsupported = 1;
  } else {
    px_job_set_window(&e->job, info->window_start, info->window_end, info->explanation_url, now,
                      px_renew_ari_poll_at(now, retry_after, &m->rnd));
    px_job_schedule(&e->job, now, &m->rnd);
    char line[200];
    snprintf(line, sizeof(line), "window %lld..%lld, renewal at %lld",
             (long long)info->window_start, (long long)info->window_end,
             (long long)e->job.next_run);
    px_log(PX_LOG_INFO, "acme: renewalInfo for %s: %s (in %lld s)%s%s", e->job.names[0], line,
           (long long)(e->job.next_run - now),
           info->explanation_url[0] ? "; the CA explains: " : "", info->explanation_url);
    px_job_add_event(&e->job, now, "ari-window", line);
    px_job_table_save(m->store, e, now);
  }
  px__sched_update(m, e);
  if (e->resolve_after_ari) {
    /* A handshake asked for these names while the fetch ran (a restart
     * with the cache full, say): answer it now, from the cache or by an
     * order, or it would wait for on_demand's timeout. */
    e->resolve_after_ari = 0;
    px__acme_resolve_entry(m, e);
  }
}

static void fetch_ari(px_acme_manager *m, px_job_entry *e) {
  e->running = 1;
  e->ari_fetching = 1;
  m->ari_inflight++;
  if (px_acme_renewal_info(m->client, e->job.cert_id, on_ari, e) != 0) {
    e->running = 0;
    e->ari_fetching = 0;
    m->ari_inflight--;
    e->job.ari_next_poll = now_s() + ARI_RETRY_S;
    px__sched_update(m, e);
  }
}

/* ---- acting on a due job --------------------------------------------------- */

/* Less than a day left (a sixth of a short lifetime): renew_at's emergency,
 * which does not wait for renew_rate either. */
static int emergency(const px_job *j, int64_t now) {
  int64_t life = j->not_after - j->not_before, left = j->not_after - now;
  return left < (life < PX_RENEW_SHORT_LIFETIME ? life / 6 : PX_RENEW_EMERGENCY_LEFT);
}

static void act(px_acme_manager *m, px_job_entry *e, int64_t now) {
  if (e->running || e->waiting_ca) return; /* requeued when that ends */
  if (saves_pending(e) && e->save_retry_at <= now) px_job_table_retry_saves(m->store, e, now);
  if (e->group < 0 && !e->forgotten && e->job.not_after > 0 &&
      e->job.last_seen + m->o.on_demand.forget_after_s < now) {
    char line[120];
    snprintf(line, sizeof(line), "not seen in a handshake for %lld s (on_demand.forget_after)",
             (long long)(now - e->job.last_seen));
    px_log(PX_LOG_INFO, "acme: %s is not renewed: %s; its files stay until they expire",
           e->job.names[0], line);
    px_job_add_event(&e->job, now, "forgotten", line);
    e->forgotten = 1;
    px_job_table_save(m->store, e, now);
    px__sched_update(m, e);
    return;
  }
  if (e->forgotten) {
    px__sched_update(m, e);
    return;
  }
  int due = e->force || e->job.next_run <= now;
  if (ari_wanted(m, e) && e->job.ari_next_poll <= now && !e->force) {
    if (m->ari_inflight < PX_ARI_INFLIGHT_MAX) {
      fetch_ari(m, e);
      return;
    }
    queue_at(m, e, now + 1);
    return;
  }
  if (!due) {
    px__sched_update(m, e);
    return;
  }
  /* A renewal. With a certificate served, it waits its turn in the
   * backlog (soonest expiry first, renew_rate per minute); without one,
   * for a changed set of names, or in an emergency, it starts now. */
  int urgent = e->job.not_after == 0 || e->names_changed || e->force || emergency(&e->job, now);
  if (!urgent && !e->granted) {
    if (e->_slot != PX_SCHEDQ_NONE) px_schedq_remove(&m->waiting, e->_slot);
    if (e->_bslot == PX_SCHEDQ_NONE &&
        px_schedq_push(&m->backlog, e->job.not_after, e, &e->_bslot) != 0)
      queue_at(m, e, now + 60);
    return;
  }
  e->granted = 0;
  /* A renewal of a served certificate the scheduler planned (not an
   * operator's): how late it starts is what renew_rate's backlog costs. */
  if (e->job.not_after > 0 && !e->force && e->job.next_run > 0)
    px__metrics_renewal_started(m, now - e->job.next_run);
  e->force = 0;
  if (e->job.not_after > 0 && e->job.not_after <= now && e->expired_logged + 3600 <= now) {
    e->expired_logged = now;
    px_log(PX_LOG_ERROR,
           "acme: the certificate for %s expired %lld s ago and is still served because no valid "
           "one exists; renewing (last error: %s)",
           e->job.names[0], (long long)(now - e->job.not_after),
           e->job.last_error.detail ? e->job.last_error.detail : "none");
  }
  px__acme_renew_job(m, e);
}

static void on_tick(uv_timer_t *t) {
  px_acme_manager *m = t->data;
  if (atomic_load(&m->stopping)) return;
  int64_t now = now_s();
  px_job_entry *e;
  while ((e = px_schedq_pop_until(&m->waiting, now, NULL)) != NULL)
    act(m, e, now);
  while (px_schedq_len(&m->backlog) > 0) {
    int64_t start;
    if (px_rate_try(&m->rate, now, &m->rnd, &start) != 0) break;
    e = px_schedq_pop_until(&m->backlog, INT64_MAX, NULL);
    e->granted = 1;
    if (start <= now)
      act(m, e, now);
    else
      queue_at(m, e, start);
  }
  arm_timer(m);
}

/* ---- the CA's health -------------------------------------------------------- */

static void on_probe_timer(uv_timer_t *t);

static void on_probe(void *arg, const char *err, px_acme_result *res, const px_acme_failure *f) {
  (void)res;
  px_acme_manager *m = arg;
  m->probing = 0;
  px__acme_first_probe_done(m, err, f->config_refused);
  if (err && f->ca_unreachable) {
    /* A probe is already planned (an order noticed the outage first):
     * this answer changes nothing. */
    if (m->ca_down && m->timers_open && uv_is_active((uv_handle_t *)&m->probe_timer)) return;
    m->ca_down = 1;
    if (m->probe_delay_s == 0) /* the first probe that failed */
      m->probe_delay_s = PX_CA_PROBE_FIRST;
    else if ((m->probe_delay_s *= 2) > PX_CA_PROBE_MAX)
      m->probe_delay_s = PX_CA_PROBE_MAX;
    m->probe_next = now_s() + m->probe_delay_s;
    px_log(PX_LOG_ERROR,
           "acme: the CA at %s cannot be reached: %s; certificates in hand keep being served, and "
           "its directory is probed again in %lld s",
           m->o.client.directory_url, err, (long long)m->probe_delay_s);
    if (m->timers_open)
      uv_timer_start(&m->probe_timer, on_probe_timer, (uint64_t)m->probe_delay_s * 1000, 0);
    return;
  }
  if (err) px_log(PX_LOG_ERROR, "acme: %s", err); /* acme.profile, a broken directory */
  if (!m->ca_down) return;
  m->ca_down = 0;
  m->probe_delay_s = 0;
  int64_t now = now_s();
  size_t n = 0;
  for (size_t i = 0; i < px_job_table_count(&m->jobs); i++) {
    px_job_entry *e = px_job_table_at(&m->jobs, i);
    if (!e->waiting_ca) continue;
    e->waiting_ca = 0;
    e->job.next_run = now;
    n++;
    px__sched_update(m, e);
  }
  px_log(PX_LOG_INFO,
         "acme: the CA at %s answers again; %zu certificate(s) that waited are due now",
         m->o.client.directory_url, n);
}

static void probe(px_acme_manager *m) {
  if (m->probing || atomic_load(&m->stopping)) return;
  m->probing = 1;
  if (px_acme_probe(m->client, on_probe, m) != 0) {
    m->probing = 0;
    if (m->timers_open) uv_timer_start(&m->probe_timer, on_probe_timer, 1000, 0);
  }
}

static void on_probe_timer(uv_timer_t *t) { probe(t->data); }

void px__sched_wait_for_ca(px_acme_manager *m, px_job_entry *e, const char *err) {
  e->waiting_ca = 1;
  px_job_add_event(&e->job, now_s(), "ca-unreachable", err);
  if (!m->ca_down) {
    m->ca_down = 1;
    m->probe_next = now_s() + PX_CA_PROBE_FIRST;
    px_log(PX_LOG_ERROR,
           "acme: the CA at %s cannot be reached: %s; this is not counted against %s; the "
           "directory is probed every %d s (doubling to %d s) and waiting names are retried when "
           "it answers",
           m->o.client.directory_url, err, e->job.names[0], PX_CA_PROBE_FIRST, PX_CA_PROBE_MAX);
    /* A probe in flight plans the next itself when it fails. */
    if (m->timers_open && !m->probing) {
      m->probe_delay_s = PX_CA_PROBE_FIRST;
      uv_timer_start(&m->probe_timer, on_probe_timer, (uint64_t)PX_CA_PROBE_FIRST * 1000, 0);
    }
  }
  /* Saved after the log line, so the file never runs ahead of the log. */
  px_job_table_save(m->store, e, now_s());
  px__sched_update(m, e);
}

int px__sched_ca_down(px_acme_manager *m, int64_t *until_ms) {
  if (!m->ca_down) return 0;
  *until_ms = m->probe_next * 1000;
  return 1;
}

/* ---- operator ---------------------------------------------------------------- */

void px__sched_retry_now(px_acme_manager *m, px_job_entry *e) {
  int64_t now = now_s();
  px_job_clear_backoff(&e->job);
  e->job.next_run = now;
  e->granted = 1;
  px_job_add_event(&e->job, now, "retry", "asked by the operator");
  px_job_table_save(m->store, e, now);
  px__sched_update(m, e);
}

void px__sched_renew_now(px_acme_manager *m, px_job_entry *e) {
  e->force = 1;
  e->forgotten = 0;
  px_job_add_event(&e->job, now_s(), "renew", "asked by the operator");
  px__sched_update(m, e);
}

/* ---- lifetime ------------------------------------------------------------------ */

int px__sched_init(px_acme_manager *m) {
  if (px_job_table_init(&m->jobs) != 0) return -ENOMEM;
  m->rnd = px_life_rand_system();
  px_schedq_init(&m->waiting, PX_JOB_TABLE_MAX);
  px_schedq_init(&m->backlog, PX_JOB_TABLE_MAX);
  px_rate_init(&m->rate, m->o.renew_rate);
  uv_timer_init(&m->loop, &m->sched_timer);
  uv_timer_init(&m->loop, &m->probe_timer);
  m->sched_timer.data = m->probe_timer.data = m;
  m->timers_open = 1;
  return 0;
}

/* A cached job found by listing the cache (an on-demand name). */
static int on_listed(void *arg, const char *name) {
  px_acme_manager *m = arg;
  if (px_job_table_find(&m->jobs, name)) return 0;
  if (!m->o.on_demand_enabled) return 0;
  int64_t now = now_s();
  px_job_entry *e = px_job_table_get(&m->jobs, m->store, &name, 1, -1, now);
  if (e == NULL) return 0;
  if (e->job.nnames != 1 || e->job.not_after == 0) return 0; /* a removed site, or nothing held */
  if (e->job.next_run == 0) px_job_schedule(&e->job, now, &m->rnd);
  if (e->job.last_seen + m->o.on_demand.forget_after_s < now) {
    e->forgotten = 1;
    px_log(PX_LOG_INFO,
           "acme: %s is not renewed: no handshake asked for it in %lld s (on_demand.forget_after)",
           name, (long long)(now - e->job.last_seen));
  }
  px__sched_update(m, e);
  return 0;
}

void px__sched_start(px_acme_manager *m) {
  /* Jobs first, then certificates cached before jobs existed. */
  m->store->ops->list(m->store, PX_STORE_JOBS, on_listed, m);
  m->store->ops->list(m->store, PX_STORE_CERTS, on_listed, m);
  probe(m); /* the CA's health, and acme.profile against its directory */
  arm_timer(m);
}

void px__sched_close(px_acme_manager *m) {
  if (!m->timers_open) return;
  m->timers_open = 0;
  uv_close((uv_handle_t *)&m->sched_timer, NULL);
  uv_close((uv_handle_t *)&m->probe_timer, NULL);
}

void px__sched_dispose(px_acme_manager *m) {
  px_schedq_dispose(&m->waiting);
  px_schedq_dispose(&m->backlog);
  px_job_table_dispose(&m->jobs);
}
