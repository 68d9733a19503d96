/*
 * Issuance of one certificate, on the manager thread: the cache first,
 * then the failure backoff, then an order with the ACME client; a new
 * certificate is saved (key, chain, meta.json) and published to the
 * workers. Every path ends in px__acme_publish or px__acme_refuse.
 *
 * The persisted record of a certificate plugs in at three points, all in
 * issue.c: attempt_allowed() (may an order be placed now?),
 * record_failure() and record_success(). Today they read and write the
 * failure records of acme/backoff.h.
 */
#ifndef PX_ACME_LIFE_ISSUE_H
#define PX_ACME_LIFE_ISSUE_H

#include "acme/manager_internal.h"

/** Obtains a certificate for the attempt's names: the cache, then the
 *  failure backoff, then an order (counted against on_demand.rate), then
 *  save and publish. Takes the attempt; every path ends in publish or
 *  refuse, which wake the waiting workers. Manager thread only. */
void px__acme_obtain(px_acme_manager *m, px__acme_attempt *a);

#endif
