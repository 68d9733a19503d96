/* Unit tests for acme/life/renew.c and acme/life/rand.c: every branch of
 * px_renew_at with an injected clock and random source. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/life/renew.h"

#define T0 INT64_C(1700000000)
#define DAY INT64_C(86400)

/* A source that returns `value` every time. */
static uint64_t fixed_next(void *arg) { return *(uint64_t *)arg; }

/* xorshift64*: a reproducible sequence for the many-draw tests. */
static uint64_t seeded_next(void *arg) {
  uint64_t *s = arg;
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C(2685821657736338717);
}

static px_renew_input cert(int64_t not_before, int64_t lifetime, int64_t now) {
  px_renew_input in;
  memset(&in, 0, sizeof(in));
  in.not_before = not_before;
  in.not_after = not_before + lifetime;
  in.now = now;
  return in;
}

static void test_rand_range(void **state) {
  uint64_t v = 0, seed = 42;
  px_life_rand lo = {fixed_next, &v}, r = {seeded_next, &seed};
  (void)state;
  assert_int_equal(px_life_rand_range(&lo, -5, 5), -5);
  v = 10; /* span 11: value 10 is the top */
  assert_int_equal(px_life_rand_range(&lo, -5, 5), 5);
  assert_int_equal(px_life_rand_range(&lo, 7, 7), 7);
  assert_int_equal(px_life_rand_range(&lo, 7, 3), 7);
  /* Every value of a small range comes up, and nothing outside it. */
  int seen[7] = {0};
  for (int i = 0; i < 7000; i++) {
    int64_t x = px_life_rand_range(&r, 0, 6);
    assert_in_range(x, 0, 6);
    seen[x]++;
  }
  for (int i = 0; i < 7; i++)
    assert_in_range(seen[i], 800, 1200);
  px_life_rand sys = px_life_rand_system();
  assert_in_range(px_life_rand_range(&sys, 1, 3), 1, 3);
}

/* 90 days: a third left is day 60, jitter at most 1 day (5% would be 4.5). */
static void test_one_third_and_jitter_bounds(void **state) {
  uint64_t v = 0, seed = 7;
  px_life_rand lo = {fixed_next, &v}, r = {seeded_next, &seed};
  px_renew_input in = cert(T0, 90 * DAY, T0);
  px_renew_plan p;
  int64_t min = INT64_MAX, max = INT64_MIN;
  (void)state;

  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_ONE_THIRD);
  assert_int_equal(p.at, T0 + 60 * DAY - DAY);
  v = (uint64_t)(2 * DAY); /* the top of [-DAY, DAY] */
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, T0 + 60 * DAY + DAY);

  for (int i = 0; i < 100000; i++) {
    p = px_renew_at(&in, &r);
    assert_int_equal(p.reason, PX_RENEW_ONE_THIRD);
    if (p.at < min) min = p.at;
    if (p.at > max) max = p.at;
  }
  assert_true(min >= T0 + 59 * DAY && max <= T0 + 61 * DAY);
  /* The draws fill the range: the extremes are within an hour of its ends. */
  assert_true(min < T0 + 59 * DAY + 3600 && max > T0 + 61 * DAY - 3600);

  /* 12 days (not short): a third is day 8, jitter 5% = 0.6 days. */
  in = cert(T0, 12 * DAY, T0);
  v = 0;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_ONE_THIRD);
  assert_int_equal(p.at, T0 + 8 * DAY - 12 * DAY / 20);
  for (int i = 0; i < 10000; i++) {
    p = px_renew_at(&in, &r);
    assert_in_range(p.at, T0 + 8 * DAY - 12 * DAY / 20, T0 + 8 * DAY + 12 * DAY / 20);
  }
}

/* Under 10 days: renew at half, jitter 5% of the lifetime. */
static void test_half_rule_short_lifetime(void **state) {
  uint64_t v = 0, seed = 9;
  px_life_rand lo = {fixed_next, &v}, r = {seeded_next, &seed};
  px_renew_input in = cert(T0, 6 * DAY, T0);
  px_renew_plan p;
  int64_t j = 6 * DAY / 20;
  (void)state;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_HALF);
  assert_int_equal(p.at, T0 + 3 * DAY - j);
  for (int i = 0; i < 100000; i++) {
    p = px_renew_at(&in, &r);
    assert_int_equal(p.reason, PX_RENEW_HALF);
    assert_in_range(p.at, T0 + 3 * DAY - j, T0 + 3 * DAY + j);
  }
  /* Exactly 10 days is not short. */
  in = cert(T0, 10 * DAY, T0);
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_ONE_THIRD);
  in = cert(T0, 10 * DAY - 1, T0);
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_HALF);
  /* A 90-second certificate (Pebble's short test lifetimes): at half, +/- 4 s. */
  in = cert(T0, 90, T0);
  for (int i = 0; i < 1000; i++)
    assert_in_range(px_renew_at(&in, &r).at, T0 + 45 - 4, T0 + 45 + 4);
}

static void test_ari_window(void **state) {
  uint64_t v = 0, seed = 11;
  px_life_rand lo = {fixed_next, &v}, r = {seeded_next, &seed};
  px_renew_input in = cert(T0, 90 * DAY, T0 + 10 * DAY);
  px_renew_plan p;
  int64_t min = INT64_MAX, max = INT64_MIN;
  (void)state;
  in.has_window = 1;
  in.window_start = T0 + 40 * DAY;
  in.window_end = T0 + 42 * DAY;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_ARI_WINDOW);
  assert_int_equal(p.at, T0 + 40 * DAY);
  for (int i = 0; i < 100000; i++) {
    p = px_renew_at(&in, &r);
    assert_int_equal(p.reason, PX_RENEW_ARI_WINDOW);
    if (p.at < min) min = p.at;
    if (p.at > max) max = p.at;
  }
  assert_true(min >= in.window_start && max <= in.window_end);
  assert_true(min < in.window_start + 3600 && max > in.window_end - 3600);

  /* A window in the past means now. */
  in.window_start = T0 + 2 * DAY;
  in.window_end = T0 + 3 * DAY;
  p = px_renew_at(&in, &r);
  assert_int_equal(p.reason, PX_RENEW_ARI_WINDOW);
  assert_int_equal(p.at, in.now);
  /* A window that started already: a draw in the past also means now. */
  in.window_start = in.now - DAY;
  in.window_end = in.now + DAY;
  v = 0;
  assert_int_equal(px_renew_at(&in, &lo).at, in.now);

  /* An inverted window is ignored: the fraction rule applies. */
  in.window_start = T0 + 42 * DAY;
  in.window_end = T0 + 40 * DAY;
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_ONE_THIRD);
  /* An ARI window overrides the fraction rule even when it is later. */
  in.window_start = in.window_end = T0 + 80 * DAY;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_ARI_WINDOW);
  assert_int_equal(p.at, T0 + 80 * DAY);
}

/* Backoff from the last failure: exactly 1 min, 10 min, 100 min, 1 day. */
static void test_backoff_steps(void **state) {
  uint64_t v = 0;
  px_life_rand lo = {fixed_next, &v};
  px_renew_input in = cert(T0, 90 * DAY, T0 + 61 * DAY);
  int64_t fail_at = T0 + 61 * DAY;
  const int64_t steps[] = {60, 600, 6000, DAY, DAY, DAY};
  (void)state;
  in.last_failure = fail_at;
  for (unsigned f = 1; f <= 6; f++) {
    px_renew_plan p;
    in.failures = f;
    p = px_renew_at(&in, &lo);
    assert_int_equal(p.reason, PX_RENEW_BACKOFF);
    assert_int_equal(p.at, fail_at + steps[f - 1]);
  }
  /* The backoff has passed: the ideal time (in the past) means now. */
  in.failures = 2;
  in.now = fail_at + 601;
  px_renew_plan p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, in.now);
  assert_int_equal(p.reason, PX_RENEW_ONE_THIRD);
  /* A failure long before the ideal time does not move it. */
  in = cert(T0, 90 * DAY, T0 + DAY);
  in.failures = 4;
  in.last_failure = T0 + DAY;
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_ONE_THIRD);
}

static void test_emergency(void **state) {
  uint64_t v = 0;
  px_life_rand lo = {fixed_next, &v};
  px_renew_input in = cert(T0, 90 * DAY, T0 + 90 * DAY - 23 * 3600);
  px_renew_plan p;
  (void)state;
  /* 23 h left, daily backoff from a failure 10 min ago: an hour after it. */
  in.failures = 5;
  in.last_failure = in.now - 600;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, in.last_failure + 3600);
  /* The hour has passed: now. */
  in.last_failure = in.now - 7200;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, in.now);
  /* A first failure's 1-minute backoff is sooner than the hour: it stays. */
  in.failures = 1;
  in.last_failure = in.now;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_BACKOFF);
  assert_int_equal(p.at, in.now + 60);
  /* 25 h left is not an emergency: the daily backoff holds. */
  in = cert(T0, 90 * DAY, T0 + 90 * DAY - 25 * 3600);
  in.failures = 4;
  in.last_failure = in.now;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_BACKOFF);
  assert_int_equal(p.at, in.now + DAY);
  /* Short lifetime (6 days): a sixth is 1 day; 0.9 days left is urgent. */
  in = cert(T0, 6 * DAY, T0 + 6 * DAY - 9 * DAY / 10);
  in.failures = 4;
  in.last_failure = in.now - 100;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, in.now - 100 + 3600);
  /* A 90 s certificate with 20 s left (a sixth is 15 s) is not urgent. */
  in = cert(T0, 90, T0 + 70);
  in.failures = 3;
  in.last_failure = T0 + 70;
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_BACKOFF);
  in.now = T0 + 80; /* 10 s left */
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, T0 + 70 + 3600);
  /* Expired, no failure: now. Nonsense validity: now. */
  in = cert(T0, 90 * DAY, T0 + 100 * DAY);
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, in.now);
  in = cert(T0, 0, T0 + 5);
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, T0 + 5);
}

/* No certificate yet: the first order is due now, and its failures keep
 * the guide's backoff (no hourly emergency retries for a name that never
 * validated). */
static void test_first_issuance(void **state) {
  uint64_t v = 0;
  px_life_rand lo = {fixed_next, &v};
  px_renew_input in = cert(0, 0, T0);
  px_renew_plan p;
  (void)state;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_FIRST);
  assert_int_equal(p.at, T0);
  in.failures = 4;
  in.last_failure = T0 - 600;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_BACKOFF);
  assert_int_equal(p.at, T0 - 600 + DAY);
  in.failures = 3;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, T0 - 600 + 6000);
  in.retry_after = T0 + DAY;
  assert_int_equal(px_renew_at(&in, &lo).reason, PX_RENEW_RETRY_AFTER);
}

static void test_retry_after(void **state) {
  uint64_t v = 0;
  px_life_rand lo = {fixed_next, &v};
  px_renew_input in = cert(T0, 90 * DAY, T0 + 90 * DAY - 3600);
  px_renew_plan p;
  (void)state;
  /* Even an emergency waits for the CA's Retry-After. */
  in.retry_after = in.now + 7200;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_RETRY_AFTER);
  assert_int_equal(p.at, in.now + 7200);
  in.retry_after = in.now - 1;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, in.now);
}

/* A certificate due the moment it arrives (this clock 89.5 days ahead of
 * the CA's) is not renewed again within the hour: without the rule, every
 * renewal would start the next at once. */
static void test_not_again_within_the_hour(void **state) {
  uint64_t v = 0;
  px_life_rand lo = {fixed_next, &v};
  int64_t now = T0 + 89 * DAY + DAY / 2;
  px_renew_input in = cert(T0, 90 * DAY, now);
  px_renew_plan p;
  (void)state;
  in.obtained_at = now;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_EMERGENCY);
  assert_int_equal(p.at, now + PX_RENEW_EMERGENCY_INTERVAL);
  /* An hour later it is due. */
  in.now = now + PX_RENEW_EMERGENCY_INTERVAL;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, in.now);
  /* A short lifetime pauses a third of it; an ARI window is the CA's word. */
  in = cert(now, 150, now);
  in.not_after = now + 10; /* skewed: due at once */
  in.not_before = now - 140;
  in.obtained_at = now;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.at, now + 50);
  in = cert(T0, 90 * DAY, T0 + DAY);
  in.obtained_at = in.now;
  in.has_window = 1;
  in.window_start = in.now - 7200;
  in.window_end = in.now - 3600;
  p = px_renew_at(&in, &lo);
  assert_int_equal(p.reason, PX_RENEW_ARI_WINDOW);
  assert_int_equal(p.at, in.now);
  /* A certificate obtained long ago keeps its own schedule. */
  in = cert(T0, 90 * DAY, T0 + 30 * DAY);
  in.obtained_at = T0;
  p = px_renew_at(&in, &lo);
  assert_true(p.at > T0 + 50 * DAY);
}

static void test_ari_poll(void **state) {
  uint64_t v = 0, seed = 3;
  px_life_rand lo = {fixed_next, &v}, r = {seeded_next, &seed};
  (void)state;
  assert_int_equal(px_renew_ari_poll_at(T0, 300, &lo), T0 + 300);
  assert_int_equal(px_renew_ari_poll_at(T0, 1, &lo), T0 + PX_ARI_POLL_MIN);
  assert_int_equal(px_renew_ari_poll_at(T0, 10 * DAY, &lo), T0 + PX_ARI_POLL_MAX);
  assert_int_equal(px_renew_ari_poll_at(T0, 0, &lo), T0 + 11 * 3600);
  for (int i = 0; i < 10000; i++)
    assert_in_range(px_renew_ari_poll_at(T0, 0, &r), T0 + 11 * 3600, T0 + 13 * 3600);
}

static void test_reason_names(void **state) {
  (void)state;
  assert_string_equal(px_renew_reason_name(PX_RENEW_ARI_WINDOW), "ari-window");
  assert_string_equal(px_renew_reason_name(PX_RENEW_ONE_THIRD), "one-third");
  assert_string_equal(px_renew_reason_name(PX_RENEW_HALF), "half");
  assert_string_equal(px_renew_reason_name(PX_RENEW_BACKOFF), "backoff");
  assert_string_equal(px_renew_reason_name(PX_RENEW_EMERGENCY), "emergency");
  assert_string_equal(px_renew_reason_name(PX_RENEW_RETRY_AFTER), "retry-after");
  assert_string_equal(px_renew_reason_name(PX_RENEW_FIRST), "first");
  assert_string_equal(px_renew_reason_name((px_renew_reason)99), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rand_range),
      cmocka_unit_test(test_one_third_and_jitter_bounds),
      cmocka_unit_test(test_half_rule_short_lifetime),
      cmocka_unit_test(test_ari_window),
      cmocka_unit_test(test_backoff_steps),
      cmocka_unit_test(test_emergency),
      cmocka_unit_test(test_first_issuance),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_not_again_within_the_hour),
      cmocka_unit_test(test_ari_poll),
      cmocka_unit_test(test_reason_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
