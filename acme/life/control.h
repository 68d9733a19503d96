/*
 * Operator control and notifications on the certificate manager's loop:
 * the admin socket behind `portico ctl` (acme/life/admin.h), whose
 * operations work on the job table and the scheduler, and the certificate
 * events (acme/life/events.h), emitted where issuance succeeds or fails.
 *
 * Manager thread only (px__control_start runs before the thread starts).
 * Error convention: acme/errors.h.
 */
#ifndef PX_ACME_LIFE_CONTROL_H
#define PX_ACME_LIFE_CONTROL_H

#include "acme/life/events.h"
#include "acme/manager_internal.h"

/** A certificate with less than this share of its lifetime left, whose
 *  renewal fails, is `expiring`; reported at most once a day per name. */
#define PX_EXPIRING_FRACTION 3
#define PX_EXPIRING_INTERVAL_S 86400

/** Starts the events emitter and, when m->o.admin_socket is set, the admin
 *  socket, on the manager's loop. -1 with a sentence naming the socket's
 *  path in `err`. */
int px__control_start(px_acme_manager *m, char *err, size_t errlen);

/** Closes the admin socket (a waiting `ctl revoke` is told portico is
 *  stopping), frees the revocations still waiting for the CA, and closes
 *  the emitter (keep running the loop: they free themselves from close
 *  callbacks). Call it in the same loop turn as px_acme_client_free,
 *  which abandons those revocations' orders without calling back. Safe to
 *  call twice. */
void px__control_close(px_acme_manager *m);

/** A new certificate was published for the job: `obtained` for the first
 *  one, `renewed` when one was served before. */
void px__control_issued(px_acme_manager *m, px_job_entry *e, int renewed);

/** An attempt for the job failed (its job records the failure): `failed`
 *  with the CA's problem, and `expiring` when under a third of the
 *  lifetime is left (at most once a day per name). */
void px__control_failed(px_acme_manager *m, px_job_entry *e);

#endif
