/* Unit tests for acme/life/schedq.c: heap invariants under random
 * operations, and the renewal spread: 100,000 jobs due at once leave at
 * renew_rate per minute, soonest expiry first, never at :00. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/life/schedq.h"

#define T0 INT64_C(1700000040) /* a minute boundary: 1700000040 % 60 == 0 */
#define DAY INT64_C(86400)

static uint64_t seeded_next(void *arg) {
  uint64_t *s = arg;
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C(2685821657736338717);
}

typedef struct item {
  int64_t next_run, not_after, start;
  size_t slot;
  int started;
} item;

static void test_heap_basics(void **state) {
  px_schedq q;
  item it[5];
  int64_t key;
  (void)state;
  px_schedq_init(&q, 4);
  for (int i = 0; i < 5; i++)
    it[i].slot = PX_SCHEDQ_NONE;
  assert_null(px_schedq_peek(&q));
  assert_null(px_schedq_pop_until(&q, INT64_MAX, NULL));
  assert_int_equal(px_schedq_push(&q, 30, &it[0], &it[0].slot), 0);
  assert_int_equal(px_schedq_push(&q, 10, &it[1], &it[1].slot), 0);
  assert_int_equal(px_schedq_push(&q, 20, &it[2], &it[2].slot), 0);
  assert_int_equal(px_schedq_push(&q, 10, &it[3], &it[3].slot), 0);
  /* The bound, and an item already queued, are refused. */
  assert_int_equal(px_schedq_push(&q, 5, &it[4], &it[4].slot), -1);
  assert_int_equal(px_schedq_push(&q, 5, &it[0], &it[0].slot), -1);
  assert_true(px_schedq_valid(&q));
  assert_ptr_equal(px_schedq_peek(&q)->item, &it[1]);
  /* Nothing is due before 10; equal keys leave in insertion order. */
  assert_null(px_schedq_pop_until(&q, 9, NULL));
  assert_ptr_equal(px_schedq_pop_until(&q, 10, &key), &it[1]);
  assert_int_equal(key, 10);
  assert_int_equal(it[1].slot, PX_SCHEDQ_NONE);
  assert_ptr_equal(px_schedq_pop_until(&q, 10, NULL), &it[3]);
  assert_null(px_schedq_pop_until(&q, 10, NULL));
  /* Update moves an entry both ways. */
  assert_int_equal(px_schedq_update(&q, it[0].slot, 1), 0);
  assert_ptr_equal(px_schedq_peek(&q)->item, &it[0]);
  assert_int_equal(px_schedq_update(&q, it[0].slot, 99), 0);
  assert_ptr_equal(px_schedq_peek(&q)->item, &it[2]);
  assert_int_equal(px_schedq_update(&q, 7, 1), -1);
  assert_null(px_schedq_remove(&q, 7));
  assert_ptr_equal(px_schedq_remove(&q, it[2].slot), &it[2]);
  assert_int_equal(px_schedq_len(&q), 1);
  px_schedq_dispose(&q);
  assert_int_equal(it[0].slot, PX_SCHEDQ_NONE);
  assert_int_equal(px_schedq_len(&q), 0);
}

static void test_heap_random_operations(void **state) {
  enum { N = 20000 };
  item *it = calloc(N, sizeof(*it));
  uint64_t seed = 12345;
  px_life_rand r = {seeded_next, &seed};
  px_schedq q;
  (void)state;
  px_schedq_init(&q, N);
  for (int i = 0; i < N; i++)
    it[i].slot = PX_SCHEDQ_NONE;
  for (int step = 0; step < 200000; step++) {
    item *x = &it[px_life_rand_range(&r, 0, N - 1)];
    int64_t key = px_life_rand_range(&r, 0, 1000000);
    switch (px_life_rand_range(&r, 0, 3)) {
    case 0:
    case 1:
      if (x->slot == PX_SCHEDQ_NONE) {
        assert_int_equal(px_schedq_push(&q, key, x, &x->slot), 0);
      } else {
        assert_int_equal(px_schedq_update(&q, x->slot, key), 0);
      }
      x->next_run = key;
      break;
    case 2:
      if (x->slot != PX_SCHEDQ_NONE) assert_ptr_equal(px_schedq_remove(&q, x->slot), x);
      break;
    default: {
      int64_t k;
      item *y = px_schedq_pop_until(&q, key, &k);
      if (y != NULL) {
        assert_int_equal(k, y->next_run);
        assert_true(k <= key);
      }
    }
    }
    if (step % 5000 == 0) assert_true(px_schedq_valid(&q));
  }
  assert_true(px_schedq_valid(&q));
  /* Everything left comes out in key order, and matches the items' keys. */
  size_t left = px_schedq_len(&q), n = 0;
  int64_t prev = INT64_MIN, k;
  item *y;
  while ((y = px_schedq_pop_until(&q, INT64_MAX, &k)) != NULL) {
    assert_true(k >= prev);
    assert_int_equal(k, y->next_run);
    prev = k;
    n++;
  }
  assert_int_equal(n, left);
  for (int i = 0; i < N; i++)
    assert_int_equal(it[i].slot, PX_SCHEDQ_NONE);
  px_schedq_dispose(&q);
  free(it);
}

static void test_rate_try(void **state) {
  uint64_t seed = 99;
  px_life_rand r = {seeded_next, &seed};
  px_rate rate;
  int64_t start;
  (void)state;
  px_rate_init(&rate, 3);
  for (int i = 0; i < 3; i++) {
    assert_int_equal(px_rate_try(&rate, T0, &r, &start), 0);
    assert_in_range(start, T0 + 1, T0 + 59);
  }
  assert_int_equal(px_rate_try(&rate, T0 + 30, &r, &start), -1);
  assert_int_equal(px_rate_next_minute(T0 + 30), T0 + 60);
  assert_int_equal(px_rate_next_minute(T0), T0 + 60);
  /* A new minute, late in it: not before now. */
  assert_int_equal(px_rate_try(&rate, T0 + 60 + 50, &r, &start), 0);
  assert_in_range(start, T0 + 110, T0 + 119);
  assert_int_equal(px_rate_try(&rate, T0 + 119, &r, &start), 0);
  assert_int_equal(start, T0 + 119);
  /* 0 means the default. */
  px_rate_init(&rate, 0);
  for (int i = 0; i < PX_RATE_DEFAULT; i++)
    assert_int_equal(px_rate_try(&rate, T0, &r, &start), 0);
  assert_int_equal(px_rate_try(&rate, T0, &r, &start), -1);
  /* take() reserves ahead, a minute at a time. */
  px_rate_init(&rate, 2);
  for (int i = 0; i < 10; i++) {
    int64_t s = px_rate_take(&rate, T0 + 5, &r);
    int64_t minute = T0 + 60 * (i / 2);
    assert_in_range(s, i < 2 ? T0 + 5 : minute + 1, minute + 59);
  }
}

static int by_start(const void *a, const void *b) {
  const item *x = *(item *const *)a, *y = *(item *const *)b;
  return (x->start > y->start) - (x->start < y->start);
}

/*
 * The scheduler's loop as schedq.h describes it, on a simulated clock:
 * jobs wait keyed by next_run; due ones join a backlog keyed by not_after;
 * each minute px_rate_try releases the soonest-expiring ones.
 */
static void simulate(item *it, size_t n, unsigned per_minute, uint64_t seed) {
  px_life_rand r = {seeded_next, &seed};
  px_schedq waiting, backlog;
  px_rate rate;
  size_t started = 0;
  int64_t now = INT64_MAX;

  px_schedq_init(&waiting, n);
  px_schedq_init(&backlog, n);
  px_rate_init(&rate, per_minute);
  for (size_t i = 0; i < n; i++) {
    it[i].slot = PX_SCHEDQ_NONE;
    assert_int_equal(px_schedq_push(&waiting, it[i].next_run, &it[i], &it[i].slot), 0);
    if (it[i].next_run < now) now = it[i].next_run;
  }
  while (started < n) {
    item *x;
    int64_t start;
    while ((x = px_schedq_pop_until(&waiting, now, NULL)) != NULL)
      assert_int_equal(px_schedq_push(&backlog, x->not_after, x, &x->slot), 0);
    while (px_schedq_len(&backlog) > 0 && px_rate_try(&rate, now, &r, &start) == 0) {
      x = px_schedq_pop_until(&backlog, INT64_MAX, NULL);
      x->start = start;
      x->started = 1;
      started++;
    }
    /* The one timer: the next due job, or the next minute for a backlog. */
    int64_t next = px_schedq_len(&waiting) ? px_schedq_peek(&waiting)->key : INT64_MAX;
    if (px_schedq_len(&backlog) && px_rate_next_minute(now) < next) next = px_rate_next_minute(now);
    assert_true(next > now || started == n);
    now = next;
  }
  px_schedq_dispose(&waiting);
  px_schedq_dispose(&backlog);
}

/* Checks the per-minute bound and :00 over the starts; returns the number
 * of minutes with any start. */
static size_t check_spread(item *it, size_t n, unsigned per_minute, item **sorted) {
  size_t minutes = 0, in_minute = 0;
  int64_t cur = INT64_MIN;
  for (size_t i = 0; i < n; i++) {
    sorted[i] = &it[i];
    assert_true(it[i].started);
    assert_true(it[i].start >= it[i].next_run);
    assert_true(it[i].start % 60 != 0);
  }
  qsort(sorted, n, sizeof(*sorted), by_start);
  for (size_t i = 0; i < n; i++) {
    int64_t m = sorted[i]->start / 60;
    if (m != cur) {
      cur = m;
      in_minute = 0;
      minutes++;
    }
    assert_true(++in_minute <= per_minute);
  }
  return minutes;
}

static void test_spread_100000_due_at_once(void **state) {
  enum { N = 100000 };
  item *it = calloc(N, sizeof(*it));
  item **sorted = calloc(N, sizeof(*sorted));
  uint64_t seed = 2024;
  px_life_rand r = {seeded_next, &seed};
  (void)state;
  /* All due in the same second; expiries spread over 30 days. */
  for (size_t i = 0; i < N; i++) {
    it[i].next_run = T0;
    it[i].not_after = T0 + px_life_rand_range(&r, DAY, 30 * DAY);
  }
  simulate(it, N, 10, 7);
  /* Exactly 10 a minute: 10,000 minutes, each full. */
  assert_int_equal(check_spread(it, N, 10, sorted), N / 10);
  assert_true(sorted[N - 1]->start < T0 + (N / 10) * 60);
  /* Soonest expiry first: a later minute never holds an earlier expiry. */
  int64_t max_prev_minute = INT64_MIN, max_cur = INT64_MIN, cur = INT64_MIN;
  for (size_t i = 0; i < N; i++) {
    int64_t m = sorted[i]->start / 60;
    if (m != cur) {
      max_prev_minute = max_cur > max_prev_minute ? max_cur : max_prev_minute;
      cur = m;
    }
    assert_true(sorted[i]->not_after >= max_prev_minute);
    if (sorted[i]->not_after > max_cur) max_cur = sorted[i]->not_after;
  }
  /* Seconds are spread over the minute, :01 to :59. */
  int seconds[60] = {0};
  for (size_t i = 0; i < N; i++)
    seconds[it[i].start % 60]++;
  assert_int_equal(seconds[0], 0);
  for (int s = 1; s < 60; s++)
    assert_in_range(seconds[s], N / 59 / 2, N / 59 * 2);
  free(sorted);
  free(it);
}

static void test_spread_100000_due_in_a_week(void **state) {
  enum { N = 100000 };
  item *it = calloc(N, sizeof(*it));
  item **sorted = calloc(N, sizeof(*sorted));
  uint64_t seed = 77;
  px_life_rand r = {seeded_next, &seed};
  size_t minutes;
  (void)state;
  /* Due at random over one week (10,080 minutes at 10 a minute is room for
   * 100,800): renewals keep up, none waits long, none exceeds the rate. */
  for (size_t i = 0; i < N; i++) {
    it[i].next_run = T0 + px_life_rand_range(&r, 0, 7 * DAY - 1);
    it[i].not_after = it[i].next_run + 30 * DAY;
  }
  simulate(it, N, 10, 8);
  minutes = check_spread(it, N, 10, sorted);
  assert_true(minutes >= N / 10);
  int64_t worst = 0;
  for (size_t i = 0; i < N; i++)
    if (it[i].start - it[i].next_run > worst) worst = it[i].start - it[i].next_run;
  /* Random arrivals queue a little at 99% load; never for days. */
  assert_true(worst < DAY);
  assert_true(sorted[N - 1]->start < T0 + 7 * DAY + DAY);
  free(sorted);
  free(it);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_heap_basics),
      cmocka_unit_test(test_heap_random_operations),
      cmocka_unit_test(test_rate_try),
      cmocka_unit_test(test_spread_100000_due_at_once),
      cmocka_unit_test(test_spread_100000_due_in_a_week),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
