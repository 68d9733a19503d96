/* The Prometheus text exposition format (proxy/metrics_text.h): escaping
 * of label values and HELP texts, sample lines, histograms, the bound. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/metrics_text.h"

static void test_escape_label(void **state) {
  (void)state;
  char out[64];
  assert_int_equal(px_mtext_escape_label(out, sizeof(out), "plain.example"), 13);
  assert_string_equal(out, "plain.example");
  size_t n = px_mtext_escape_label(out, sizeof(out), "a\\b\"c\nd");
  assert_string_equal(out, "a\\\\b\\\"c\\nd");
  assert_int_equal(n, strlen("a\\\\b\\\"c\\nd"));
  /* Truncation never leaves half an escape. */
  n = px_mtext_escape_label(out, 3, "a\"b");
  assert_string_equal(out, "a");
  assert_int_equal(n, 4);
}

static void test_family_and_samples(void **state) {
  (void)state;
  px_mtext t;
  px_mtext_init(&t, 1 << 20);
  px_mtext_family(&t, "portico_x_total", "counter", "Line one\nback\\slash \"quoted\"");
  const char *l[] = {"site", "we\"ird\\name\n", "code", "2xx"};
  px_mtext_sample_u64(&t, "portico_x_total", "", l, 2, 18446744073709551615ull);
  px_mtext_sample_u64(&t, "portico_y", "", NULL, 0, 0);
  px_mtext_sample_f64(&t, "portico_z", "", NULL, 0, -3.5);
  px_mtext_sample_f64(&t, "portico_z", "", NULL, 0, 0.1);
  px_mtext_sample_f64(&t, "portico_z", "", NULL, 0, INFINITY);
  px_mtext_sample_f64(&t, "portico_z", "", NULL, 0, NAN);
  assert_false(t.failed);
  assert_string_equal(t.buf, "# HELP portico_x_total Line one\\nback\\\\slash \"quoted\"\n"
                             "# TYPE portico_x_total counter\n"
                             "portico_x_total{site=\"we\\\"ird\\\\name\\n\",code=\"2xx\"} "
                             "18446744073709551615\n"
                             "portico_y 0\n"
                             "portico_z -3.5\n"
                             "portico_z 0.1\n"
                             "portico_z +Inf\n"
                             "portico_z NaN\n");
  px_mtext_dispose(&t);
}

static void test_histogram(void **state) {
  (void)state;
  px_mtext t;
  px_mtext_init(&t, 1 << 20);
  const double bounds[] = {0.005, 1, 2.5};
  const uint64_t buckets[] = {1, 0, 2, 3}; /* not cumulative; the last is above 2.5 */
  const char *l[] = {"site", "a.test"};
  px_mtext_histogram(&t, "portico_d_seconds", l, 1, bounds, 3, buckets, 12.25);
  px_mtext_histogram(&t, "portico_e_seconds", NULL, 0, bounds, 3, buckets, 1);
  assert_false(t.failed);
  assert_string_equal(t.buf, "portico_d_seconds_bucket{site=\"a.test\",le=\"0.005\"} 1\n"
                             "portico_d_seconds_bucket{site=\"a.test\",le=\"1\"} 1\n"
                             "portico_d_seconds_bucket{site=\"a.test\",le=\"2.5\"} 3\n"
                             "portico_d_seconds_bucket{site=\"a.test\",le=\"+Inf\"} 6\n"
                             "portico_d_seconds_sum{site=\"a.test\"} 12.25\n"
                             "portico_d_seconds_count{site=\"a.test\"} 6\n"
                             "portico_e_seconds_bucket{le=\"0.005\"} 1\n"
                             "portico_e_seconds_bucket{le=\"1\"} 1\n"
                             "portico_e_seconds_bucket{le=\"2.5\"} 3\n"
                             "portico_e_seconds_bucket{le=\"+Inf\"} 6\n"
                             "portico_e_seconds_sum 1\n"
                             "portico_e_seconds_count 6\n");
  px_mtext_dispose(&t);
}

static void test_bound(void **state) {
  (void)state;
  px_mtext t;
  px_mtext_init(&t, 64);
  for (int i = 0; i < 10; i++)
    px_mtext_sample_u64(&t, "portico_long_metric_name", "", NULL, 0, (uint64_t)i);
  assert_true(t.failed);
  assert_true(t.len < 64);
  px_mtext_dispose(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escape_label),
      cmocka_unit_test(test_family_and_samples),
      cmocka_unit_test(test_histogram),
      cmocka_unit_test(test_bound),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
