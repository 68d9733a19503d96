/*
 * The cross-instance issuance lock (acme/life/fleet_lock.h).
 */
#include "acme/life/fleet_lock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme/life/issue.h"
#include "acme/life/scheduler.h"
#include "tls/log.h"

/* A renewal (or a site's first order) that waited this long past the
 * stale age for another instance's certificate is scheduled again. */
#define RENEWAL_WAIT_EXTRA_MS (120 * 1000)
/* A store that cannot be reached: the names are refused this long and the
 * job tried again after FLEET_STORE_RETRY_S (not counted as a failure). */
#define STORE_REFUSAL_MS 5000
#define STORE_RETRY_S 30

static int64_t stale_ms(const px_acme_manager *m) {
  int64_t s =
      m->o.store.lock_stale_after > 0 ? m->o.store.lock_stale_after : PX_STORE_LOCK_STALE_DEFAULT;
  return s * 1000;
}

/* A third of the stale age, at most a second: a holder refreshes well
 * within it even when its loop is busy. */
static int64_t refresh_ms(const px_acme_manager *m) {
  int64_t r = stale_ms(m) / 3;
  return r > 1000 ? 1000 : r < 100 ? 100 : r;
}

static const char *lock_name(const px__acme_attempt *a) { return a->entry->job.names[0]; }

static int track(px_acme_manager *m, px__acme_attempt *a) {
  if (m->nfleet == m->fleet_cap) {
    size_t cap = m->fleet_cap ? m->fleet_cap * 2 : 16;
    px__acme_attempt **p = realloc(m->fleet, cap * sizeof(*p));
    if (p == NULL) return -ENOMEM;
    m->fleet = p;
    m->fleet_cap = cap;
  }
  m->fleet[m->nfleet++] = a;
  return 0;
}

static void untrack(px_acme_manager *m, px__acme_attempt *a) {
  for (size_t i = 0; i < m->nfleet; i++)
    if (m->fleet[i] == a) {
      m->fleet[i] = m->fleet[--m->nfleet];
      return;
    }
}

static void on_fleet_tick(uv_timer_t *t);

static void arm(px_acme_manager *m) {
  if (!m->fleet_open || m->nfleet == 0 || uv_is_active((uv_handle_t *)&m->fleet_timer)) return;
  uint64_t p = (uint64_t)refresh_ms(m);
  if (p > PX_FLEET_POLL_MS) p = PX_FLEET_POLL_MS;
  uv_timer_start(&m->fleet_timer, on_fleet_tick, p, p);
}

/* Ends an attempt that did not order: its names stay refused briefly and
 * its job is looked at again in `retry_s`. */
static void give_up(px_acme_manager *m, px__acme_attempt *a, int64_t refuse_ms, int64_t retry_s) {
  px_job_entry *e = a->entry;
  e->running = 0;
  e->job.next_run = px__acme_now_ms() / 1000 + retry_s;
  px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + refuse_ms);
  px__sched_update(m, e);
  px__acme_attempt_free(a);
}

/* Another instance's attempt for this name failed since we last looked:
 * its job in the store counts more failures. Share its backoff, so a fleet
 * of N instances does not order a failing name N times per period. 1 when
 * the attempt waits for that backoff (ended here). */
static int shared_backoff(px_acme_manager *m, px__acme_attempt *a, int64_t now) {
  px_job_entry *e = a->entry;
  char *data = NULL;
  size_t len = 0;
  if (m->store->ops->load(m->store, PX_STORE_JOBS, lock_name(a), NULL, &data, &len) != 0) return 0;
  px_job theirs;
  px_job_init(&theirs);
  int parsed = px_job_from_json(data, len, &theirs) == 0;
  px_store_data_free(data, len);
  int wait = 0;
  if (parsed && theirs.failures > e->job.failures && theirs.last_failure > e->job.last_failure &&
      theirs.not_after == e->job.not_after) {
    e->job.failures = theirs.failures;
    e->job.last_failure = theirs.last_failure;
    if (theirs.retry_after > e->job.retry_after) e->job.retry_after = theirs.retry_after;
    int64_t next = px_job_schedule(&e->job, now, &m->rnd);
    if (next > now) {
      px_log(PX_LOG_INFO,
             "acme: another instance's attempt for %s failed (%u in a row); next attempt in %lld s",
             lock_name(a), e->job.failures, (long long)(next - now));
      wait = 1;
    }
  }
  px_job_dispose(&theirs);
  if (!wait) return 0;
  e->running = 0;
  px__acme_refuse(m, a->names, a->nnames, e->job.next_run * 1000);
  px__sched_update(m, e);
  px__acme_attempt_free(a); /* releases the lock */
  return 1;
}

/* The lock is ours: read the cache again (another instance may have
 * finished between our look and the lock), else order. */
static void locked(px_acme_manager *m, px__acme_attempt *a) {
  px_job_entry *e = a->entry;
  a->fleet_state = 1;
  if (px__acme_adopt_cached(m, e, px__acme_now_ms() / 1000)) {
    px_log(PX_LOG_INFO, "acme: %s was obtained by another instance; using its certificate",
           lock_name(a));
    px__acme_attempt_free(a); /* releases the lock */
    return;
  }
  if (shared_backoff(m, a, px__acme_now_ms() / 1000)) return;
  if (track(m, a) != 0) {
    px_log(PX_LOG_ERROR, "acme: out of memory holding the lock for %s", lock_name(a));
    give_up(m, a, PX__ACME_REFUSAL_TTL_MS, 60);
    return;
  }
  a->fleet_refresh_ms = px__acme_now_ms() + refresh_ms(m);
  arm(m);
  char *replaces = a->fleet_replaces;
  a->fleet_replaces = NULL;
  a->fleet_go(m, a, replaces);
  free(replaces);
}

/* Tries the lock: 1 when the attempt went on (locked or ended), 0 while
 * another instance holds it. */
static int try_lock(px_acme_manager *m, px__acme_attempt *a) {
  int rc = m->store->ops->lock_acquire(m->store, lock_name(a), PX_FLEET_LOCK_OWNER);
  if (rc == -EBUSY) return 0;
  if (rc != 0) {
    px_log(PX_LOG_ERROR,
           "acme: cannot take the issuance lock for %s: %s; certificates in memory are still "
           "served, and issuance is tried again in %d s",
           lock_name(a), strerror(-rc), STORE_RETRY_S);
    give_up(m, a, STORE_REFUSAL_MS, STORE_RETRY_S);
    return 1;
  }
  locked(m, a);
  return 1;
}

void px__fleet_order(px_acme_manager *m, px__acme_attempt *a, const char *replaces,
                     void (*go)(px_acme_manager *m, px__acme_attempt *a, const char *replaces)) {
  if (atomic_load(&m->stopping)) { /* an `ask` answered during shutdown */
    px__acme_refuse(m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    return;
  }
  a->fleet_go = go;
  free(a->fleet_replaces);
  a->fleet_replaces = replaces && replaces[0] ? strdup(replaces) : NULL;
  if (try_lock(m, a)) return;
  /* Another instance is ordering: wait for its certificate. */
  px_job_entry *e = a->entry;
  e->running = 1; /* no second attempt here meanwhile */
  px__sched_update(m, e);
  int64_t wait = a->handshake ? (int64_t)m->o.wait_timeout_ms : 0;
  if (wait <= 0) wait = stale_ms(m) + RENEWAL_WAIT_EXTRA_MS;
  a->fleet_deadline_ms = px__acme_now_ms() + wait;
  a->fleet_state = 2;
  if (track(m, a) != 0) {
    give_up(m, a, PX__ACME_REFUSAL_TTL_MS, 60);
    return;
  }
  px_log(PX_LOG_INFO, "acme: another instance is obtaining %s; waiting for its certificate",
         lock_name(a));
  arm(m);
}

/* A waiter: the certificate, else the lock (a holder that finished without
 * one, or a stale lock taken over), else keep waiting until the deadline. */
static void poll_waiter(px_acme_manager *m, px__acme_attempt *a, int64_t now_ms) {
  px_job_entry *e = a->entry;
  if (px__acme_adopt_cached(m, e, now_ms / 1000)) {
    untrack(m, a);
    e->running = 0;
    px__sched_update(m, e);
    px__acme_attempt_free(a);
    return;
  }
  untrack(m, a);
  e->running = 0;
  if (try_lock(m, a)) return;
  e->running = 1;
  if (now_ms >= a->fleet_deadline_ms) {
    px_log(PX_LOG_WARN,
           "acme: still waiting for another instance's certificate for %s; giving up "
           "for now",
           lock_name(a));
    give_up(m, a, 1000, 60);
    return;
  }
  if (track(m, a) != 0) give_up(m, a, PX__ACME_REFUSAL_TTL_MS, 60);
}

static void on_fleet_tick(uv_timer_t *t) {
  px_acme_manager *m = t->data;
  if (atomic_load(&m->stopping)) return;
  int64_t now = px__acme_now_ms();
  /* Snapshot: polling changes the array. */
  size_t n = m->nfleet;
  px__acme_attempt **snap = n ? malloc(n * sizeof(*snap)) : NULL;
  if (n && snap == NULL) return;
  if (n) memcpy(snap, m->fleet, n * sizeof(*snap));
  for (size_t i = 0; i < n; i++) {
    px__acme_attempt *a = snap[i];
    if (a->fleet_state == 1 && now >= a->fleet_refresh_ms) {
      int rc = m->store->ops->lock_refresh(m->store, lock_name(a), PX_FLEET_LOCK_OWNER);
      if (rc != 0)
        px_log(PX_LOG_WARN,
               "acme: the issuance lock for %s could not be refreshed (%s); another instance may "
               "take it over",
               lock_name(a), strerror(-rc));
      a->fleet_refresh_ms = now + refresh_ms(m);
    }
  }
  for (size_t i = 0; i < n; i++)
    if (snap[i]->fleet_state == 2) poll_waiter(m, snap[i], now);
  free(snap);
  if (m->nfleet == 0) uv_timer_stop(&m->fleet_timer);
}

void px__fleet_changed(px_acme_manager *m, const char *name) {
  int64_t now = px__acme_now_ms();
  for (size_t i = 0; i < m->nfleet; i++) {
    px__acme_attempt *a = m->fleet[i];
    if (a->fleet_state != 2) continue;
    px_job_entry *e = a->entry;
    for (size_t k = 0; k < e->job.nnames; k++)
      if (strcmp(e->job.names[k], name) == 0) {
        poll_waiter(m, a, now);
        return; /* the array changed */
      }
  }
}

void px__fleet_release(px_acme_manager *m, px__acme_attempt *a) {
  free(a->fleet_replaces);
  a->fleet_replaces = NULL;
  if (a->fleet_state == 0) return;
  untrack(m, a);
  if (a->fleet_state == 1) {
    int rc = m->store->ops->lock_release(m->store, lock_name(a), PX_FLEET_LOCK_OWNER);
    if (rc != 0 && rc != -ENOENT)
      px_log(PX_LOG_WARN, "acme: releasing the issuance lock for %s: %s", lock_name(a),
             strerror(-rc));
  }
  a->fleet_state = 0;
}

int px__fleet_init(px_acme_manager *m) {
  if (uv_timer_init(&m->loop, &m->fleet_timer) != 0) return -ENOMEM;
  m->fleet_timer.data = m;
  m->fleet_open = 1;
  return 0;
}

void px__fleet_close(px_acme_manager *m) {
  while (m->nfleet > 0) {
    px__acme_attempt *a = m->fleet[m->nfleet - 1];
    if (a->fleet_state == 2) {
      untrack(m, a);
      a->fleet_state = 0;
      a->entry->running = 0;
      px__acme_attempt_free(a);
    } else {
      /* Its order is abandoned with the client: let another instance
       * take over at once rather than after the stale age. */
      px__fleet_release(m, a);
    }
  }
  free(m->fleet);
  m->fleet = NULL;
  m->fleet_cap = 0;
  if (m->fleet_open) {
    m->fleet_open = 0;
    uv_close((uv_handle_t *)&m->fleet_timer, NULL);
  }
}
