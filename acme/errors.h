/*
 * The error convention of acme/, for every file in it (the public headers
 * refer here):
 *
 * 1. A function that can fail returns 0 (or a count, a length or a value
 *    where its comment says so) on success and a negative errno on failure:
 *    -EINVAL for input it cannot use, -ENOMEM, -ENOSPC for a buffer too
 *    small, -EAGAIN for "not now" (a rate or a backoff), -EBUSY for a full
 *    queue, or the errno of the system call that failed. A module whose
 *    reasons are finer than errno (names.h, csr.h) returns its own negative
 *    codes and has a *_strerror for them.
 * 2. A function that returns a pointer returns NULL on failure.
 * 3. A failure a user must read is a sentence, saying what failed and,
 *    where it helps, what to do ("the CA requires agreeing to its terms of
 *    service (URL): set acme.accept_terms: true"): an asynchronous
 *    operation hands it to its completion callback as `const char *err`
 *    (NULL on success), never from inside the call that started it; a
 *    synchronous one writes it into a caller's `char *err, size_t errlen`.
 *    The CA's own words come from its problem document (proto/problem.h).
 * 4. An answer that is not a failure (px_acme_manager_lookup's ready,
 *    queued or refused) is documented where it is returned.
 * 5. Nothing here exits or aborts on bad input from the network, the disk
 *    or the configuration.
 */
#ifndef PX_ACME_ERRORS_H
#define PX_ACME_ERRORS_H

#include <errno.h>

#endif
