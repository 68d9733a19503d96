/*
 * Failure backoff per name (docs/lifecycle.md, "Failures and retries"; Let's Encrypt's integration
 * guide): 1 min, 10 min, 100 min, then once a day. The record is persisted in the cache
 * (ROOT/failures/<name>.json) so a restart does not reset it.
 *
 * Times are Unix seconds passed in by the caller; nothing here reads a clock.
 * Error convention: acme/errors.h.
 */
#ifndef PX_ACME_BACKOFF_H
#define PX_ACME_BACKOFF_H

#include <stddef.h>
#include <stdint.h>

#define PX_ACME_BACKOFF_NAME_MAX 256
#define PX_ACME_BACKOFF_ERROR_MAX 512
/** The delay once the fixed steps are used up: once a day. */
#define PX_ACME_BACKOFF_DAILY 86400

typedef struct px_acme_backoff {
  char name[PX_ACME_BACKOFF_NAME_MAX];        /**< the certificate name */
  unsigned failures;                          /**< consecutive failures */
  int64_t last_failure;                       /**< when the last one happened */
  int64_t next_attempt;                       /**< no attempt before this */
  char last_error[PX_ACME_BACKOFF_ERROR_MAX]; /**< log-safe message */
} px_acme_backoff;

/** Delay after the `failures`-th consecutive failure: 0 for none, then
 *  60, 600, 6000 and 86400 seconds for every later one. */
int64_t px_acme_backoff_next(unsigned failures);

/** A clean record for `name` (truncated to fit). */
void px_acme_backoff_init(px_acme_backoff *b, const char *name);

/** Records a failure at `now` with a log-safe `error` message. */
void px_acme_backoff_fail(px_acme_backoff *b, int64_t now, const char *error);

/** True when an attempt is allowed at `now`. */
int px_acme_backoff_ready(const px_acme_backoff *b, int64_t now);

/** Clears the record: after a success, or when an operator asks to retry
 *  now. The name stays; the last error is kept for the operator to see. */
void px_acme_backoff_reset(px_acme_backoff *b);

/** Serialises the record as JSON (malloc'd, NUL-terminated). */
char *px_acme_backoff_to_json(const px_acme_backoff *b);

/** Parses a record written by px_acme_backoff_to_json; -EINVAL when malformed. */
int px_acme_backoff_from_json(const char *json, size_t len, px_acme_backoff *b);

#endif
