/*
 * Issuance of one certificate, on the manager thread: the cache first,
 * then the job's backoff, then an order with the ACME client; a new
 * certificate is saved (key, chain, meta.json, the job) and published to
 * the workers by pointer swap. Every path of px__acme_obtain ends in
 * px__acme_publish or px__acme_refuse.
 *
 * The job (acme/life/job.h) is the record: failures are counted in it
 * (with the CA's problem document and Retry-After), except when the CA
 * could not be reached at all, which the scheduler handles as a CA outage.
 */
#ifndef PX_ACME_LIFE_ISSUE_H
#define PX_ACME_LIFE_ISSUE_H

#include "acme/manager_internal.h"

/** Obtains a certificate for the attempt's names: the cache (an expired
 *  one is still served when nothing valid exists), then the backoff, then
 *  an order (counted against on_demand.rate for on-demand names), then
 *  save and publish. Takes the attempt. Manager thread only. */
void px__acme_obtain(px_acme_manager *m, px__acme_attempt *a);

/** Renews a job now (the scheduler decided it is due): adopts a newer
 *  certificate from the cache if another instance renewed it, else orders
 *  a new one (with `replaces` when the CA has ARI). A failure keeps the
 *  current certificate served. */
void px__acme_renew_job(px_acme_manager *m, px_job_entry *e);

/** Looks a job's names up again for the handshakes waiting on them (the
 *  cache, else an order), as a handshake's lookup would: used when what ran
 *  for the job (an ARI fetch) resolved nothing. Manager thread only. */
void px__acme_resolve_entry(px_acme_manager *m, px_job_entry *e);

/** Another instance (or an operator) put a newer certificate in the cache:
 *  serves it (and brings the job in line) instead of ordering. 1 when
 *  adopted, 0 when the cache holds nothing newer. */
int px__acme_adopt_cached(px_acme_manager *m, px_job_entry *e, int64_t now);

#endif
