/*
 * The certificate manager's figures for monitoring (docs/metrics.md): what
 * the proxy's metrics listener exposes for acme/. Counters are bumped where
 * things happen (on the manager thread, and the on-demand refusals also on
 * workers' threads inside px_acme_manager_lookup), as relaxed atomics: a
 * scrape reads them from another thread and only needs each value whole.
 * The per-certificate part (state, expiry, next renewal) belongs to the
 * manager thread's job table, so a scrape asks that thread for a copy
 * (px_acme_manager_metrics) and waits a bounded time for it.
 *
 * acme/ knows nothing of the text format: the proxy formats the snapshot.
 * Error convention: acme/errors.h.
 */
#ifndef PX_ACME_LIFE_METRICS_H
#define PX_ACME_LIFE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "acme/life/events.h"

typedef struct px_acme_manager px_acme_manager;

/** Why a handshake's name got no certificate from the on-demand policy. */
typedef enum px_acme_refusal {
  PX_ACME_REFUSED_INVALID_NAME = 0, /**< not a valid, normalised DNS name */
  PX_ACME_REFUSED_NOT_ALLOWED,      /**< from a `tls: acme` site, yet none of its names */
  PX_ACME_REFUSED_RECENTLY,         /**< refused less than a minute ago (remembered) */
  PX_ACME_REFUSED_MAX_PENDING,      /**< on_demand.max_pending names already wait */
  PX_ACME_REFUSED_ASK,              /**< the ask endpoint said no (or could not be asked) */
  PX_ACME_REFUSED_RATE,             /**< on_demand.rate reached */
  PX_ACME_REFUSED_NREASONS
} px_acme_refusal;

/** How an order attempt ended. */
typedef enum px_acme_order_result {
  PX_ACME_ORDER_OBTAINED = 0, /**< a first certificate for the names */
  PX_ACME_ORDER_RENEWED,      /**< a replacement for one that was serving */
  PX_ACME_ORDER_FAILED,       /**< failed (the CA's problem, a challenge, a save) */
  PX_ACME_ORDER_RATE_LIMITED, /**< failed with the CA's rateLimited problem */
  PX_ACME_ORDER_NRESULTS
} px_acme_order_result;

/** Job states reported, in px_job_state order, then "forgotten". */
#define PX_ACME_METRIC_STATES 6

/** Upper bounds (seconds) of the histograms' buckets; +Inf follows. */
#define PX_ACME_WAIT_BUCKETS 10
#define PX_ACME_LATENESS_BUCKETS 9
#define PX_ACME_EXPIRY_BUCKETS 10
extern const double px_acme_wait_bounds[PX_ACME_WAIT_BUCKETS];
extern const double px_acme_lateness_bounds[PX_ACME_LATENESS_BUCKETS];
extern const double px_acme_expiry_bounds[PX_ACME_EXPIRY_BUCKETS];

/** Certificates given a gauge of their own; past this, the expiry of the
 *  rest is a histogram (bounded label cardinality). */
#define PX_ACME_METRICS_NAMES_MAX 1000

/** A histogram: counts per bucket (not cumulative; the last is +Inf), the
 *  sum of observed values and their count. */
typedef struct px_acme_histogram {
  uint64_t bucket[PX_ACME_EXPIRY_BUCKETS + 1];
  double sum;
  uint64_t count;
} px_acme_histogram;

/** One certificate. */
typedef struct px_acme_metric_cert {
  char name[256]; /**< its first name: configured or issued, never raw client input */
  int state;      /**< 0 .. PX_ACME_METRIC_STATES-1 */
  int64_t not_after;
  int64_t next_run; /**< when the scheduler acts on it next; 0 none */
} px_acme_metric_cert;

/** What a scrape gets. */
typedef struct px_acme_metrics_snapshot {
  uint64_t refusals[PX_ACME_REFUSED_NREASONS];
  uint64_t orders[PX_ACME_ORDER_NRESULTS];
  px_acme_histogram waits;    /**< seconds a handshake's name waited on issuance */
  uint64_t renewals_started;  /**< renewals the scheduler started */
  px_acme_histogram lateness; /**< seconds a renewal started after its planned time */
  int have_jobs;              /**< the manager thread answered: the fields below are set */
  int64_t now;                /**< Unix seconds the job fields were read at */
  uint64_t states[PX_ACME_METRIC_STATES];
  uint64_t renewals_scheduled; /**< certificates with a renewal planned */
  px_acme_metric_cert *certs;  /**< up to PX_ACME_METRICS_NAMES_MAX, malloc'd */
  size_t ncerts;
  px_acme_histogram expiry_rest; /**< seconds to expiry of the certificates past the bound */
  px_events_counters events;     /**< the notifications (life/events.h) */
} px_acme_metrics_snapshot;

/**
 * Fills `out` (any thread but the manager's): the counters at once, the
 * certificates from the manager thread, waited for at most `wait_ms`
 * (have_jobs stays 0 when it did not answer, or is not running). Free
 * with px_acme_metrics_snapshot_dispose. 0 or -ENOMEM.
 */
int px_acme_manager_metrics(px_acme_manager *m, px_acme_metrics_snapshot *out, uint64_t wait_ms);

/** Frees what a snapshot holds. */
void px_acme_metrics_snapshot_dispose(px_acme_metrics_snapshot *s);

/** "invalid_name", "not_allowed", ... for a label; "?" out of range. */
const char *px_acme_refusal_name(px_acme_refusal r);
/** "obtained", "renewed", "failed", "rate_limited"; "?" out of range. */
const char *px_acme_order_result_name(px_acme_order_result r);
/** "pending", "valid", "renewing", "failed", "expired", "forgotten". */
const char *px_acme_metric_state_name(int state);

#endif
