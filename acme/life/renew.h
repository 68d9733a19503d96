/*
 * When to renew a certificate: a pure function of the certificate's
 * validity, the CA's ARI window (RFC 9773), the failure record and the
 * clock, following Let's Encrypt's integration guide.
 *
 * Time unit: every time here is int64_t seconds since the Unix epoch (UTC),
 * and every duration is int64_t seconds. Nothing here reads a clock or a
 * random source of its own: `now` and a px_life_rand are passed in.
 *
 * Error convention: none needed; every input gives an answer (nonsensical
 * validity, such as not_after <= not_before, is treated as expired).
 */
#ifndef PX_ACME_LIFE_RENEW_H
#define PX_ACME_LIFE_RENEW_H

#include <stdint.h>

#include "acme/life/rand.h"

/** Lifetimes shorter than this are "short": renew at half, emergency at a
 *  sixth (integration guide; Let's Encrypt's 6-day certificates). */
#define PX_RENEW_SHORT_LIFETIME (10 * 86400)
/** Jitter is +/- this fraction (1/20 = 5%) of the lifetime ... */
#define PX_RENEW_JITTER_DIVISOR 20
/** ... and at most this many seconds either way. */
#define PX_RENEW_JITTER_MAX 86400
/** Less than this left (or a sixth of a short lifetime) is an emergency. */
#define PX_RENEW_EMERGENCY_LEFT 86400
/** An emergency retries at most this often, even when backoff says later. */
#define PX_RENEW_EMERGENCY_INTERVAL 3600
/** ARI poll interval without Retry-After (RFC 9773 §4.3.3 suggests about
 *  twice a day), and its jitter either way. */
#define PX_ARI_POLL_INTERVAL (12 * 3600)
#define PX_ARI_POLL_JITTER 3600
/** Bounds on a CA's Retry-After for ARI polls (RFC 9773 §4.3.3: clients
 *  set reasonable limits, such as one minute and one day). */
#define PX_ARI_POLL_MIN 60
#define PX_ARI_POLL_MAX 86400

/** Why renew_at chose its time, for logs and `portico ctl status`. */
typedef enum px_renew_reason {
  PX_RENEW_ARI_WINDOW = 0, /**< a random time inside the CA's suggestedWindow */
  PX_RENEW_ONE_THIRD,      /**< a third of the lifetime left (+/- jitter) */
  PX_RENEW_HALF,           /**< half of a short lifetime left (+/- jitter) */
  PX_RENEW_BACKOFF,        /**< waiting out 1 min / 10 min / 100 min / daily */
  PX_RENEW_EMERGENCY,      /**< nearly expired: sooner than backoff allows */
  PX_RENEW_RETRY_AFTER,    /**< the CA's Retry-After is later than all else */
  PX_RENEW_FIRST,          /**< no certificate yet (not_after 0): issue now */
} px_renew_reason;
/** How many reasons there are. */
#define PX_RENEW_REASON_COUNT ((int)PX_RENEW_FIRST + 1)

/** What renew_at needs to know about one certificate. */
typedef struct px_renew_input {
  int64_t not_before;               /**< the certificate's notBefore */
  int64_t not_after;                /**< the certificate's notAfter */
  int has_window;                   /**< non-zero when the CA gave an ARI suggestedWindow */
  int64_t window_start, window_end; /**< the suggestedWindow (RFC 9773 §4.2) */
  unsigned failures;                /**< consecutive failed attempts */
  int64_t last_failure;             /**< when the last of them happened */
  int64_t retry_after; /**< no attempt before this (the CA's Retry-After); 0 for none */
  int64_t obtained_at; /**< when this certificate was obtained, by our clock; 0 unknown */
  int64_t now;
} px_renew_input;

/** The answer: renew at `at` (never before `now`), because of `reason`. */
typedef struct px_renew_plan {
  int64_t at;
  px_renew_reason reason;
} px_renew_plan;

/**
 * When to attempt the next renewal (or retry). In order:
 *  0. Without a certificate (not_after 0) the first order is due now,
 *     subject to 2 and 4 only: the emergency rule does not shorten the
 *     backoff of a name that never got a certificate.
 *  1. The ideal time: with an ARI window, a uniformly random time inside it
 *     (RFC 9773 §4.2), which is `now` when it falls in the past; without
 *     one, when a third of the lifetime remains (half for lifetimes under
 *     10 days), moved by a uniform jitter of +/- 5% of the lifetime, at
 *     most one day.
 *  2. After failures, not before last_failure + 1 min / 10 min / 100 min /
 *     1 day (px_acme_backoff_next).
 *  3. Emergency: with less than 24 h left (a sixth of a short lifetime),
 *     now when there is no failure, else last_failure + 1 h when that is
 *     sooner than the backoff.
 *  4. Never before retry_after.
 *  5. Never within PX_RENEW_EMERGENCY_INTERVAL (or a third of a shorter
 *     lifetime) of obtained_at, unless the CA's ARI window says so: a
 *     certificate that is due the moment it arrives (our clock ahead of the
 *     CA's, or a CA issuing certificates already inside their renewal
 *     window) would otherwise be renewed again and again without pause.
 * Draws from `rnd` once (window or jitter). Call it when something changes
 * (load, issue, failure, new ARI window) and keep the answer: calling it
 * again draws a new random time.
 */
px_renew_plan px_renew_at(const px_renew_input *in, const px_life_rand *rnd);

/**
 * When to fetch the renewalInfo again (RFC 9773 §4.3.3): after the CA's
 * Retry-After of `retry_after_s` seconds when it sent one (> 0), bounded to
 * [PX_ARI_POLL_MIN, PX_ARI_POLL_MAX]; else 12 h +/- 1 h of jitter.
 */
int64_t px_renew_ari_poll_at(int64_t now, int64_t retry_after_s, const px_life_rand *rnd);

/** A short name for a reason ("ari-window", "one-third", "half",
 *  "backoff", "emergency", "retry-after", "first"). */
const char *px_renew_reason_name(px_renew_reason reason);

#endif
