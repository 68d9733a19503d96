/*
 * The cross-instance issuance lock (docs/fleet.md), taken around every
 * order, on-demand and renewal alike, so that instances sharing a store
 * order a name once:
 *
 *  - the lock is the store's (lock_acquire: an O_EXCL file on a directory,
 *    SET NX PX on Redis), named after the job's first name;
 *  - once it is held, the cache is read again: another instance may have
 *    finished meanwhile, and its certificate is served instead of ordering;
 *  - while the order runs, the lock is refreshed (a heartbeat every third
 *    of acme.lock_stale_after, at most every second), so a holder that dies
 *    leaves a lock that goes stale and a waiter takes over;
 *  - while another instance holds it, nothing is ordered: the cache is
 *    polled every second (and at once when the store watch reports the
 *    name) and the certificate is published as soon as it appears. A
 *    handshake's wait ends after timeouts.on_demand; a renewal's after the
 *    stale age plus the order timeout, when it is scheduled again.
 *
 * Lock calls are blocking store I/O: manager thread only.
 */
#ifndef PX_ACME_LIFE_FLEET_LOCK_H
#define PX_ACME_LIFE_FLEET_LOCK_H

#include "acme/manager_internal.h"

/** The owner recorded in issuance locks (with host and pid, or a token). */
#define PX_FLEET_LOCK_OWNER "portico"
/** How often a waiter polls the cache and the lock, milliseconds. */
#define PX_FLEET_POLL_MS 1000

/** Sets up the timer on the manager loop; 0 or -ENOMEM. */
int px__fleet_init(px_acme_manager *m);
/** Releases the locks held, drops the waiters, closes the timer (the loop
 *  is stopping). */
void px__fleet_close(px_acme_manager *m);

/**
 * Takes the issuance lock for the attempt's job, reads the cache again,
 * then calls `go(m, a, replaces)` to place the order; or, while another
 * instance holds the lock, waits for its certificate. Takes the attempt.
 */
void px__fleet_order(px_acme_manager *m, px__acme_attempt *a, const char *replaces,
                     void (*go)(px_acme_manager *m, px__acme_attempt *a, const char *replaces));

/** Releases the attempt's lock, if it holds one (called when it is freed). */
void px__fleet_release(px_acme_manager *m, px__acme_attempt *a);

/** The store says `name` changed (life/watch.c): a waiter for it looks at
 *  the cache now instead of at its next poll. */
void px__fleet_changed(px_acme_manager *m, const char *name);

#endif
