/*
 * ACME problem documents (RFC 8555 §6.7, RFC 7807) and the one table that
 * says what to do about each: retry at once with the fresh nonce, retry
 * after a delay, or give up.
 *
 * Error convention: acme/errors.h (-EINVAL when the input is not what was
 * expected).
 */
#ifndef PX_ACME_PROBLEM_H
#define PX_ACME_PROBLEM_H

#include <stddef.h>
#include <stdint.h>

/** What to do after a failed ACME request. */
typedef enum px_acme_retry {
  PX_ACME_PERMANENT = 0,   /**< give up; tell the operator; backoff applies */
  PX_ACME_RETRY_NONCE = 1, /**< badNonce: resend at once with the new nonce */
  PX_ACME_RETRY_AFTER = 2, /**< wait (Retry-After) and resend */
} px_acme_retry;

/* How many times a request is resent after badNonce: PX__ACME_MAX_NONCE_RETRIES
 * in acme/proto/order_internal.h (RFC 8555 §6.5). */
/** Delay when a retryable answer carries no usable Retry-After, seconds. */
#define PX_ACME_RETRY_AFTER_DEFAULT 60
/** Longest delay honoured from Retry-After, seconds: the daily backoff
 *  takes over beyond it. */
#define PX_ACME_RETRY_AFTER_MAX 86400

#define PX_ACME_PROBLEM_TYPE_MAX 128
#define PX_ACME_PROBLEM_DETAIL_MAX 512
#define PX_ACME_PROBLEM_INSTANCE_MAX 256

/** A parsed problem document. The strings are truncated to their buffers
 *  and escaped with px_log_escape, so they are safe to log as they are. */
typedef struct px_acme_problem {
  char type[PX_ACME_PROBLEM_TYPE_MAX];         /**< full URN, or "" */
  char detail[PX_ACME_PROBLEM_DETAIL_MAX];     /**< human-readable detail */
  char instance[PX_ACME_PROBLEM_INSTANCE_MAX]; /**< URL for userActionRequired */
  int status;                                  /**< HTTP status */
  size_t subproblems;                          /**< entries in "subproblems" */
  px_acme_retry retry;                         /**< the classification */
} px_acme_problem;

/** Classifies a problem type (full URN or NULL) with the HTTP status. */
px_acme_retry px_acme_problem_classify(const char *type, int http_status);

/**
 * Parses `len` bytes of an application/problem+json body received with
 * `http_status` into `out` and classifies it. Returns 0, or -1 when the body
 * is not a JSON object (then `out` still holds the status and the
 * classification by status alone).
 */
int px_acme_problem_parse(const char *body, size_t len, int http_status, px_acme_problem *out);

/**
 * Seconds to wait according to a Retry-After value (RFC 9110 §10.2.3):
 * delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime form,
 * §5.6.7) relative to `now`. NULL or unparseable gives
 * PX_ACME_RETRY_AFTER_DEFAULT; a date in the past gives 0; the result is at
 * most PX_ACME_RETRY_AFTER_MAX.
 */
int64_t px_acme_retry_after(const char *value, size_t len, int64_t now);

/** The part of an ACME error URN after "urn:ietf:params:acme:error:", or
 *  the whole string when it has another prefix. */
const char *px_acme_problem_short_type(const char *type);

/**
 * Writes a one-line, log-safe message for an operator, such as
 *   rateLimited (HTTP 429): too many certificates
 * For userActionRequired it includes the instance URL the operator must
 * visit (RFC 8555 §7.3.3). Returns the length written (truncated to cap).
 */
size_t px_acme_problem_message(const px_acme_problem *p, char *out, size_t cap);

#endif
