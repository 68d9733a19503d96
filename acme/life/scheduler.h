/*
 * The renewal scheduler, on the manager's loop: one uv timer over a
 * min-heap of the jobs' next action (renewal, ARI poll, a save to retry),
 * so only due jobs are touched. Due renewals wait in a backlog ordered by
 * not_after (soonest expiry first) and start at most acme.renew_rate per
 * minute, at random seconds (acme/life/schedq.h). A job with no
 * certificate yet (or whose site's hosts changed) starts at once: nothing
 * valid is served for it.
 *
 * The CA's health is tracked apart from the names: when the CA cannot be
 * reached, the job waits (no failure is counted) and the directory is
 * probed with its own backoff, 30 s doubling to 10 min; when it answers,
 * every waiting job is due at once (still spread by renew_rate).
 *
 * Manager thread only. Error convention: acme/errors.h.
 */
#ifndef PX_ACME_LIFE_SCHEDULER_H
#define PX_ACME_LIFE_SCHEDULER_H

#include "acme/manager_internal.h"

/** First and longest wait between CA health probes, seconds. */
#define PX_CA_PROBE_FIRST 30
#define PX_CA_PROBE_MAX 600
/** ARI fetches in flight at once (a fleet's first polls are spread). */
#define PX_ARI_INFLIGHT_MAX 8

/** Sets up the timers and heaps on the manager loop; 0 or -ENOMEM. */
int px__sched_init(px_acme_manager *m);
/** Starts: loads the `tls: acme` sites' jobs and every cached job, and
 *  probes the CA once (which checks acme.profile). */
void px__sched_start(px_acme_manager *m);
/** Closes the timers (the loop is stopping). */
void px__sched_close(px_acme_manager *m);
/** Frees the heaps and the table (after the loop ended). */
void px__sched_dispose(px_acme_manager *m);

/** Recomputes when the job next needs attention and (re)queues it. */
void px__sched_update(px_acme_manager *m, px_job_entry *e);
/** The CA did not answer for this job: it waits for the probe (no failure
 *  counted), and the probe starts if it is not running. */
void px__sched_wait_for_ca(px_acme_manager *m, px_job_entry *e, const char *err);
/** 1 while the CA is considered down; *until_ms is the next probe. */
int px__sched_ca_down(px_acme_manager *m, int64_t *until_ms);

/** An operator's retry: clears the backoff and makes the job due now,
 *  outside renew_rate. */
void px__sched_retry_now(px_acme_manager *m, px_job_entry *e);
/** An operator's renewal: renews now even when not due. */
void px__sched_renew_now(px_acme_manager *m, px_job_entry *e);

#endif
