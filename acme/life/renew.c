/*
 * renew_at: the integration guide's renewal timing as one pure function.
 */
#include "acme/life/renew.h"

#include "acme/backoff.h"

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* The ideal time with no failure: the ARI window, else the fraction rule. */
static px_renew_plan ideal_time(const px_renew_input *in, const px_life_rand *rnd) {
  px_renew_plan p;
  int64_t lifetime = in->not_after - in->not_before;

  if (in->has_window && in->window_end >= in->window_start) {
    /* RFC 9773 §4.2: a uniformly random time in the window; one that has
     * already passed means renew now. */
    p.reason = PX_RENEW_ARI_WINDOW;
    p.at = px_life_rand_range(rnd, in->window_start, in->window_end);
    return p;
  }
  if (lifetime < PX_RENEW_SHORT_LIFETIME) {
    p.reason = PX_RENEW_HALF;
    p.at = in->not_after - lifetime / 2;
  } else {
    p.reason = PX_RENEW_ONE_THIRD;
    p.at = in->not_after - lifetime / 3;
  }
  /* Jitter so that a fleet issued together does not renew together. */
  int64_t jitter = lifetime / PX_RENEW_JITTER_DIVISOR;
  if (jitter > PX_RENEW_JITTER_MAX) jitter = PX_RENEW_JITTER_MAX;
  p.at += px_life_rand_range(rnd, -jitter, jitter);
  return p;
}

/* Less than a day left (a sixth of a short lifetime) is an emergency. */
static int is_emergency(const px_renew_input *in, int64_t lifetime) {
  int64_t threshold =
      lifetime < PX_RENEW_SHORT_LIFETIME ? lifetime / 6 : (int64_t)PX_RENEW_EMERGENCY_LEFT;
  return in->not_after - in->now < threshold;
}

px_renew_plan px_renew_at(const px_renew_input *in, const px_life_rand *rnd) {
  px_renew_plan p;
  int64_t lifetime = in->not_after - in->not_before;

  int no_cert = in->not_after == 0;

  if (no_cert) {
    p.at = in->now;
    p.reason = PX_RENEW_FIRST;
  } else if (lifetime <= 0) {
    /* Nonsense validity: treat as expired. */
    p.at = in->now;
    p.reason = PX_RENEW_EMERGENCY;
  } else {
    p = ideal_time(in, rnd);
  }
  /* Later rules compare against what will actually happen: a time in the
   * past means now. */
  p.at = max64(p.at, in->now);
  if (in->failures > 0) {
    int64_t retry = in->last_failure + px_acme_backoff_next(in->failures);
    if (retry > p.at) {
      p.at = retry;
      p.reason = PX_RENEW_BACKOFF;
    }
  }
  if (!no_cert && (lifetime <= 0 || is_emergency(in, lifetime))) {
    int64_t urgent =
        in->failures > 0 ? max64(in->now, in->last_failure + PX_RENEW_EMERGENCY_INTERVAL) : in->now;
    /* Also when equal: "emergency" tells the operator more than "now". */
    if (urgent <= p.at) {
      p.at = urgent;
      p.reason = PX_RENEW_EMERGENCY;
    }
  }
  if (in->retry_after > p.at) {
    p.at = in->retry_after;
    p.reason = PX_RENEW_RETRY_AFTER;
  }
  if (!no_cert && in->obtained_at > 0 && lifetime > 0 && p.reason != PX_RENEW_ARI_WINDOW) {
    /* An hour, or a third of a lifetime shorter than three hours. */
    int64_t pause =
        lifetime / 3 < PX_RENEW_EMERGENCY_INTERVAL ? lifetime / 3 : PX_RENEW_EMERGENCY_INTERVAL;
    p.at = max64(p.at, in->obtained_at + pause);
  }
  return p;
}

int64_t px_renew_ari_poll_at(int64_t now, int64_t retry_after_s, const px_life_rand *rnd) {
  if (retry_after_s > 0) {
    if (retry_after_s < PX_ARI_POLL_MIN) retry_after_s = PX_ARI_POLL_MIN;
    if (retry_after_s > PX_ARI_POLL_MAX) retry_after_s = PX_ARI_POLL_MAX;
    return now + retry_after_s;
  }
  return now + PX_ARI_POLL_INTERVAL +
         px_life_rand_range(rnd, -PX_ARI_POLL_JITTER, PX_ARI_POLL_JITTER);
}

const char *px_renew_reason_name(px_renew_reason reason) {
  switch (reason) {
  case PX_RENEW_ARI_WINDOW:
    return "ari-window";
  case PX_RENEW_ONE_THIRD:
    return "one-third";
  case PX_RENEW_HALF:
    return "half";
  case PX_RENEW_BACKOFF:
    return "backoff";
  case PX_RENEW_EMERGENCY:
    return "emergency";
  case PX_RENEW_RETRY_AFTER:
    return "retry-after";
  case PX_RENEW_FIRST:
    return "first";
  }
  return "unknown";
}
