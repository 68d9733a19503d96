/* Unit tests for acme/backoff.c, with a fixed clock. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/backoff.h"

#define T0 1700000000

static void test_schedule(void **state) {
  (void)state;
  assert_int_equal(px_acme_backoff_next(0), 0);
  assert_int_equal(px_acme_backoff_next(1), 60);
  assert_int_equal(px_acme_backoff_next(2), 600);
  assert_int_equal(px_acme_backoff_next(3), 6000);
  assert_int_equal(px_acme_backoff_next(4), 86400);
  assert_int_equal(px_acme_backoff_next(5), 86400);
  assert_int_equal(px_acme_backoff_next(UINT32_MAX), 86400);
}

static void test_record(void **state) {
  px_acme_backoff b;
  (void)state;
  px_acme_backoff_init(&b, "example.com");
  assert_true(px_acme_backoff_ready(&b, T0));

  px_acme_backoff_fail(&b, T0, "dns (HTTP 400): NXDOMAIN");
  assert_int_equal(b.failures, 1);
  assert_int_equal(b.next_attempt, T0 + 60);
  assert_false(px_acme_backoff_ready(&b, T0 + 59));
  assert_true(px_acme_backoff_ready(&b, T0 + 60));

  px_acme_backoff_fail(&b, T0 + 60, "again");
  assert_int_equal(b.next_attempt, T0 + 60 + 600);
  px_acme_backoff_fail(&b, T0 + 660, "again");
  assert_int_equal(b.next_attempt, T0 + 660 + 6000);
  px_acme_backoff_fail(&b, T0 + 6660, "again");
  assert_int_equal(b.next_attempt, T0 + 6660 + 86400);
  assert_string_equal(b.last_error, "again");
  assert_int_equal(b.last_failure, T0 + 6660);

  /* Operator "retry now" (or a success) clears it. */
  px_acme_backoff_reset(&b);
  assert_true(px_acme_backoff_ready(&b, T0 + 6661));
  assert_int_equal(b.failures, 0);
  px_acme_backoff_fail(&b, T0 + 7000, "x");
  assert_int_equal(b.next_attempt, T0 + 7060);
}

static void test_json_round_trip(void **state) {
  px_acme_backoff b, c;
  char *json;
  (void)state;
  px_acme_backoff_init(&b, "_wildcard.example.com");
  px_acme_backoff_fail(&b, T0, "caa (HTTP 403): \"quoted\"");
  px_acme_backoff_fail(&b, T0 + 100, "caa (HTTP 403): \"quoted\"");
  json = px_acme_backoff_to_json(&b);
  assert_non_null(json);
  assert_int_equal(px_acme_backoff_from_json(json, strlen(json), &c), 0);
  assert_string_equal(c.name, b.name);
  assert_int_equal(c.failures, 2);
  assert_int_equal(c.last_failure, T0 + 100);
  assert_int_equal(c.next_attempt, T0 + 700);
  assert_string_equal(c.last_error, b.last_error);
  free(json);

  assert_int_equal(px_acme_backoff_from_json("{}", 2, &c), -EINVAL);
  assert_int_equal(px_acme_backoff_from_json("nope", 4, &c), -EINVAL);
  json = "{\"name\":\"a.b\",\"failures\":-1,\"last_failure\":0,\"next_attempt\":0}";
  assert_int_equal(px_acme_backoff_from_json(json, strlen(json), &c), -EINVAL);
}

static void test_long_strings_truncated(void **state) {
  char longs[2000];
  px_acme_backoff b;
  (void)state;
  memset(longs, 'e', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = '\0';
  px_acme_backoff_init(&b, longs);
  assert_int_equal(strlen(b.name), PX_ACME_BACKOFF_NAME_MAX - 1);
  px_acme_backoff_fail(&b, T0, longs);
  assert_int_equal(strlen(b.last_error), PX_ACME_BACKOFF_ERROR_MAX - 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_schedule),
      cmocka_unit_test(test_record),
      cmocka_unit_test(test_json_round_trip),
      cmocka_unit_test(test_long_strings_truncated),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
