/*
 * Internal to acme/: where the manager's parts count what happens, for
 * acme/life/metrics.h. Any thread may count; px__metrics_serve runs on the
 * manager thread (its wake-up) and answers a waiting scrape.
 */
#ifndef PX_ACME_LIFE_METRICS_INTERNAL_H
#define PX_ACME_LIFE_METRICS_INTERNAL_H

#include <stdint.h>

#include "acme/life/metrics.h"

struct px__acme_metrics;

/** Allocates m->metrics; 0 or -ENOMEM. */
int px__metrics_init(px_acme_manager *m);
/** Frees m->metrics (after the thread ended). */
void px__metrics_dispose(px_acme_manager *m);

/** A handshake's name was refused by the on-demand policy. */
void px__metrics_refused(px_acme_manager *m, px_acme_refusal why);
/** An order attempt ended. */
void px__metrics_order(px_acme_manager *m, px_acme_order_result r);
/** A handshake's name waited `ms` for issuance before it was resolved. */
void px__metrics_waited(px_acme_manager *m, int64_t ms);
/** The scheduler started a renewal `late_s` seconds after it was planned. */
void px__metrics_renewal_started(px_acme_manager *m, int64_t late_s);

/** Manager thread: rebuilds the job part when a scrape asked for it. */
void px__metrics_serve(px_acme_manager *m);

#endif
