/*
 * The certificate manager's figures for monitoring (acme/life/metrics.h).
 *
 * Every counter and histogram sits behind one small mutex: the events
 * counted (an order, a refusal, a renewal start, a wait resolved) are rare
 * next to the work each one stands for, so a lock costs nothing that
 * matters, and a scrape copies a consistent set. The job part is built on
 * the manager thread, which owns the job table: a scrape raises `want`,
 * wakes that thread and waits on `cond` for the generation to move.
 */
#include "acme/life/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme/life/metrics_internal.h"
#include "acme/manager_internal.h"

const double px_acme_wait_bounds[PX_ACME_WAIT_BUCKETS] = {0.1, 0.25, 0.5, 1,  2.5,
                                                          5,   10,   20,  30, 60};
/* A renewal starts late when renew_rate holds it in the backlog: minutes
 * to hours are what an operator needs to tell apart. */
const double px_acme_lateness_bounds[PX_ACME_LATENESS_BUCKETS] = {1,    10,    60,    300,  900,
                                                                  3600, 14400, 43200, 86400};
/* Days matter for expiry: 1 h, 6 h, 1 d, 2 d, 7 d, 14 d, 30 d, 60 d, 90 d, 1 y. */
const double px_acme_expiry_bounds[PX_ACME_EXPIRY_BUCKETS] = {
    3600, 21600, 86400, 172800, 604800, 1209600, 2592000, 5184000, 7776000, 31536000};

struct px__acme_metrics {
  uv_mutex_t lock;
  uv_cond_t cond;
  uint64_t refusals[PX_ACME_REFUSED_NREASONS];
  uint64_t orders[PX_ACME_ORDER_NRESULTS];
  px_acme_histogram waits, lateness;
  uint64_t renewals_started;
  int want;                      /* a scrape waits for the job part */
  uint64_t gen;                  /* bumped each time the job part is rebuilt */
  px_acme_metrics_snapshot jobs; /* the job part, as last built */
};

static void observe(px_acme_histogram *h, const double *bounds, size_t nbounds, double v) {
  size_t i = 0;
  while (i < nbounds && v > bounds[i])
    i++;
  h->bucket[i]++;
  h->sum += v;
  h->count++;
}

int px__metrics_init(px_acme_manager *m) {
  m->metrics = calloc(1, sizeof(*m->metrics));
  if (m->metrics == NULL) return -ENOMEM;
  uv_mutex_init(&m->metrics->lock);
  uv_cond_init(&m->metrics->cond);
  return 0;
}

void px__metrics_dispose(px_acme_manager *m) {
  if (m->metrics == NULL) return;
  free(m->metrics->jobs.certs);
  uv_cond_destroy(&m->metrics->cond);
  uv_mutex_destroy(&m->metrics->lock);
  free(m->metrics);
  m->metrics = NULL;
}

void px__metrics_refused(px_acme_manager *m, px_acme_refusal why) {
  if (m->metrics == NULL || (unsigned)why >= PX_ACME_REFUSED_NREASONS) return;
  uv_mutex_lock(&m->metrics->lock);
  m->metrics->refusals[why]++;
  uv_mutex_unlock(&m->metrics->lock);
}

void px__metrics_order(px_acme_manager *m, px_acme_order_result r) {
  if (m->metrics == NULL || (unsigned)r >= PX_ACME_ORDER_NRESULTS) return;
  uv_mutex_lock(&m->metrics->lock);
  m->metrics->orders[r]++;
  uv_mutex_unlock(&m->metrics->lock);
}

void px__metrics_waited(px_acme_manager *m, int64_t ms) {
  if (m->metrics == NULL) return;
  uv_mutex_lock(&m->metrics->lock);
  observe(&m->metrics->waits, px_acme_wait_bounds, PX_ACME_WAIT_BUCKETS,
          (double)(ms > 0 ? ms : 0) / 1000.0);
  uv_mutex_unlock(&m->metrics->lock);
}

void px__metrics_renewal_started(px_acme_manager *m, int64_t late_s) {
  if (m->metrics == NULL) return;
  uv_mutex_lock(&m->metrics->lock);
  m->metrics->renewals_started++;
  observe(&m->metrics->lateness, px_acme_lateness_bounds, PX_ACME_LATENESS_BUCKETS,
          (double)(late_s > 0 ? late_s : 0));
  uv_mutex_unlock(&m->metrics->lock);
}

/* Manager thread: the job part of a snapshot, read from the job table. */
static void build_jobs(px_acme_manager *m, px_acme_metrics_snapshot *s) {
  memset(s, 0, sizeof(*s));
  s->now = px__acme_now_ms() / 1000;
  size_t n = px_job_table_count(&m->jobs);
  size_t cap = n < PX_ACME_METRICS_NAMES_MAX ? n : PX_ACME_METRICS_NAMES_MAX;
  s->certs = cap ? calloc(cap, sizeof(*s->certs)) : NULL;
  if (cap && s->certs == NULL) return; /* no memory: counts only */
  for (size_t i = 0; i < n; i++) {
    px_job_entry *e = px_job_table_at(&m->jobs, i);
    if (e == NULL || e->job.nnames == 0) continue;
    int state = e->forgotten ? PX_ACME_METRIC_STATES - 1 : (int)e->job.state;
    if (state < 0 || state >= PX_ACME_METRIC_STATES) continue;
    s->states[state]++;
    if (e->job.not_after > 0 && e->job.next_run > 0 && !e->forgotten) s->renewals_scheduled++;
    if (s->ncerts < cap) {
      px_acme_metric_cert *c = &s->certs[s->ncerts++];
      /* Job names are validated DNS names (px_job_set_names). */
      strncpy(c->name, e->job.names[0], sizeof(c->name) - 1);
      c->state = state;
      c->not_after = e->job.not_after;
      c->next_run = e->job.next_run;
    } else if (e->job.not_after > 0) {
      observe(&s->expiry_rest, px_acme_expiry_bounds, PX_ACME_EXPIRY_BUCKETS,
              (double)(e->job.not_after - s->now));
    }
  }
  if (m->events) px_events_get_counters(m->events, &s->events);
  s->have_jobs = 1;
}

void px__metrics_serve(px_acme_manager *m) {
  struct px__acme_metrics *x = m->metrics;
  if (x == NULL) return;
  uv_mutex_lock(&x->lock);
  int want = x->want;
  uv_mutex_unlock(&x->lock);
  if (!want) return;
  px_acme_metrics_snapshot s;
  build_jobs(m, &s);
  uv_mutex_lock(&x->lock);
  free(x->jobs.certs);
  x->jobs = s;
  x->want = 0;
  x->gen++;
  uv_cond_broadcast(&x->cond);
  uv_mutex_unlock(&x->lock);
}

/* Copies the job part `from` into `out` (certificates duplicated). */
static int copy_jobs(const px_acme_metrics_snapshot *from, px_acme_metrics_snapshot *out) {
  out->have_jobs = from->have_jobs;
  out->now = from->now;
  memcpy(out->states, from->states, sizeof(out->states));
  out->renewals_scheduled = from->renewals_scheduled;
  out->expiry_rest = from->expiry_rest;
  out->events = from->events;
  if (from->ncerts == 0) return 0;
  out->certs = malloc(from->ncerts * sizeof(*out->certs));
  if (out->certs == NULL) return -ENOMEM;
  memcpy(out->certs, from->certs, from->ncerts * sizeof(*out->certs));
  out->ncerts = from->ncerts;
  return 0;
}

int px_acme_manager_metrics(px_acme_manager *m, px_acme_metrics_snapshot *out, uint64_t wait_ms) {
  memset(out, 0, sizeof(*out));
  struct px__acme_metrics *x = m->metrics;
  uv_mutex_lock(&x->lock);
  memcpy(out->refusals, x->refusals, sizeof(out->refusals));
  memcpy(out->orders, x->orders, sizeof(out->orders));
  out->waits = x->waits;
  out->lateness = x->lateness;
  out->renewals_started = x->renewals_started;
  x->want = 1;
  uint64_t gen = x->gen;
  uv_mutex_unlock(&x->lock);
  /* Under the manager's lock, as lookups do: px_acme_manager_stop cannot
   * close the handle between the check and the send. */
  int sent = 0;
  uv_mutex_lock(&m->lock);
  if (!atomic_load(&m->stopping)) {
    uv_async_send(&m->wake);
    sent = 1;
  }
  uv_mutex_unlock(&m->lock);
  int r = 0;
  uv_mutex_lock(&x->lock);
  uint64_t deadline = uv_hrtime() + wait_ms * 1000000u;
  while (sent && x->gen == gen) {
    uint64_t now = uv_hrtime();
    if (now >= deadline || uv_cond_timedwait(&x->cond, &x->lock, deadline - now) != 0) break;
  }
  if (x->gen != gen) r = copy_jobs(&x->jobs, out);
  uv_mutex_unlock(&x->lock);
  return r;
}

void px_acme_metrics_snapshot_dispose(px_acme_metrics_snapshot *s) {
  free(s->certs);
  memset(s, 0, sizeof(*s));
}

const char *px_acme_refusal_name(px_acme_refusal r) {
  static const char *const names[] = {"invalid_name", "not_allowed", "refused_recently",
                                      "max_pending",  "ask",         "rate"};
  return (unsigned)r < PX_ACME_REFUSED_NREASONS ? names[r] : "?";
}

const char *px_acme_order_result_name(px_acme_order_result r) {
  static const char *const names[] = {"obtained", "renewed", "failed", "rate_limited"};
  return (unsigned)r < PX_ACME_ORDER_NRESULTS ? names[r] : "?";
}

const char *px_acme_metric_state_name(int state) {
  static const char *const names[] = {"pending", "valid",   "renewing",
                                      "failed",  "expired", "forgotten"};
  return state >= 0 && state < PX_ACME_METRIC_STATES ? names[state] : "?";
}
