/* The metrics registry across configuration generations (proxy/metrics.h,
 * proxy/metrics_slots.h): series keyed by label keep their counts when a
 * later configuration reorders, removes or adds sites and upstreams; the
 * scrape renders the registry's labels; past the cap a new series is not
 * counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/metrics.h"
#include "proxy/metrics_slots.h"

#define HTTP "listen: {http: \"127.0.0.1:80\"}\nadmin: {metrics: \"127.0.0.1:9180\"}\nsites:\n"

static px_config *load(const char *text) {
  int n = 0;
  px_config *cfg = px_config_load_buffer("t.yaml", text, strlen(text), stderr, &n);
  assert_non_null(cfg);
  return cfg;
}

/* The scrape's text. */
static char *render(px_metrics *m) {
  px_mtext t;
  px_mtext_init(&t, 1 << 20);
  px_metrics_render(m, NULL, 0, &t);
  assert_false(t.failed);
  char *s = strndup(t.buf, t.len);
  px_mtext_dispose(&t);
  return s;
}

/* Asserts that the scrape has `line` (a whole sample line). */
static void has_line(const char *text, const char *line) {
  char want[512];
  snprintf(want, sizeof(want), "\n%s\n", line);
  if (strstr(text, want) == NULL) {
    fprintf(stderr, "missing: %s\n", line);
    fail();
  }
}

static void test_slots_by_label(void **state) {
  (void)state;
  px_mslots *t = px_mslots_new(2, 3);
  assert_non_null(t);
  uint32_t a, b, again, none, ua, ub, ua2, u3, ufull;
  assert_int_equal(px_mslots_site(t, "a.test", &a), 0);
  assert_int_equal(px_mslots_site(t, "b.test", &b), 0);
  assert_int_equal(px_mslots_site(t, "a.test", &again), 0);
  assert_int_equal(px_mslots_site(t, "c.test", &none), 0);
  assert_int_equal(a, 0);
  assert_int_equal(b, 1);
  assert_int_equal(again, 0);
  assert_int_equal(none, PX_MSLOT_NONE);
  /* The same address under two sites: two series. */
  assert_int_equal(px_mslots_upstream(t, a, "127.0.0.1:1", &ua), 0);
  assert_int_equal(px_mslots_upstream(t, b, "127.0.0.1:1", &ub), 0);
  assert_int_equal(px_mslots_upstream(t, a, "127.0.0.1:1", &ua2), 0);
  assert_int_not_equal(ua, ub);
  assert_int_equal(ua, ua2);
  assert_int_equal(px_mslots_upstream(t, none, "127.0.0.1:2", &u3), 0);
  assert_int_equal(u3, PX_MSLOT_NONE);
  assert_int_equal(px_mslots_upstream(t, b, "127.0.0.1:2", &u3), 0);
  assert_int_equal(px_mslots_upstream(t, b, "127.0.0.1:3", &ufull), 0);
  assert_int_equal(ufull, PX_MSLOT_NONE);
  assert_int_equal(px_mslots_nsites(t), 2);
  assert_int_equal(px_mslots_nupstreams(t), 3);
  const char *site, *addr;
  px_mslots_upstream_labels(t, ub, &site, &addr);
  assert_string_equal(site, "b.test");
  assert_string_equal(addr, "127.0.0.1:1");
  px_mslots_free(t);
}

static void test_counts_follow_labels_across_generations(void **state) {
  (void)state;
  px_config *c1 = load(HTTP "  - {hosts: [a.test], upstreams: [\"127.0.0.1:1\"]}\n"
                            "  - {hosts: [b.test], upstreams: [\"127.0.0.1:2\"]}\n");
  /* c.test before a.test, b.test removed, a.test with a second upstream. */
  px_config *c2 =
      load(HTTP "  - {hosts: [c.test], upstreams: [\"127.0.0.1:2\"]}\n"
                "  - {hosts: [a.test], upstreams: [\"127.0.0.1:3\", \"127.0.0.1:1\"]}\n");
  px_metrics *m = px_metrics_new(c1, 2);
  assert_non_null(m);
  px_metrics_map *g1, *g2;
  assert_int_equal(px_metrics_map_new(m, c1, &g1), 0);
  px_metrics_map_activate(m, g1);
  px_metrics_worker *w0 = px_metrics_worker_of(m, 0), *w1 = px_metrics_worker_of(m, 1);
  px_metrics_request(w0, g1, 0, 0, 0, 200, 0, 0, 0); /* a.test */
  px_metrics_request(w1, g1, 1, 0, 0, 200, 0, 0, 0); /* b.test */
  assert_int_equal(px_metrics_map_new(m, c2, &g2), 0);
  px_metrics_map_activate(m, g2);
  px_metrics_request(w0, g2, 0, 0, 0, 200, 0, 0, 0); /* c.test */
  px_metrics_request(w1, g2, 1, 1, 1, 200, 0, 0, 0); /* a.test over :1, HTTP/2 */
  px_metrics_request(w1, g2, 1, 0, 0, 503, 0, 0, 0); /* a.test over :3 */
  px_metrics_request(w0, g1, 0, 0, 0, 200, 0, 0, 0); /* a.test, an old connection */
  px_metrics_upstream_down(w1, g2, 1, 0, UINT64_MAX);
  char *s = render(m);
  has_line(s, "portico_requests_total{site=\"a.test\",protocol=\"h1\",code=\"2xx\"} 2");
  has_line(s, "portico_requests_total{site=\"a.test\",protocol=\"h2\",code=\"2xx\"} 1");
  has_line(s, "portico_requests_total{site=\"a.test\",protocol=\"h1\",code=\"5xx\"} 1");
  has_line(s, "portico_requests_total{site=\"b.test\",protocol=\"h1\",code=\"2xx\"} 1");
  has_line(s, "portico_requests_total{site=\"c.test\",protocol=\"h1\",code=\"2xx\"} 1");
  has_line(s, "portico_request_duration_seconds_count{site=\"a.test\"} 4");
  has_line(s, "portico_upstream_requests_total{site=\"a.test\",upstream=\"127.0.0.1:1\","
              "code=\"2xx\"} 3");
  has_line(s, "portico_upstream_requests_total{site=\"a.test\",upstream=\"127.0.0.1:3\","
              "code=\"5xx\"} 1");
  has_line(s, "portico_upstream_requests_total{site=\"b.test\",upstream=\"127.0.0.1:2\","
              "code=\"2xx\"} 1");
  has_line(s, "portico_upstream_requests_total{site=\"c.test\",upstream=\"127.0.0.1:2\","
              "code=\"2xx\"} 1");
  /* Health: the current generation's upstreams only. */
  has_line(s, "portico_upstream_healthy{site=\"a.test\",upstream=\"127.0.0.1:3\"} 0");
  has_line(s, "portico_upstream_healthy{site=\"a.test\",upstream=\"127.0.0.1:1\"} 1");
  has_line(s, "portico_upstream_healthy{site=\"c.test\",upstream=\"127.0.0.1:2\"} 1");
  assert_null(strstr(s, "portico_upstream_healthy{site=\"b.test\""));
  free(s);
  px_metrics_map_free(g1);
  px_metrics_map_free(g2);
  px_metrics_free(m);
  px_config_free(c1);
  px_config_free(c2);
}

/* A config of `n` sites s0.test .. (one upstream each). */
static px_config *many_sites(size_t n) {
  size_t cap = 256 + n * 64;
  char *text = malloc(cap);
  size_t off = (size_t)snprintf(text, cap, "%s", HTTP);
  for (size_t i = 0; i < n; i++)
    off += (size_t)snprintf(text + off, cap - off,
                            "  - {hosts: [s%zu.test], upstreams: [\"127.0.0.1:1\"]}\n", i);
  px_config *cfg = load(text);
  free(text);
  return cfg;
}

static void test_past_the_cap_is_not_counted(void **state) {
  (void)state;
  px_config *small = many_sites(1);
  px_config *big = many_sites(PX_METRICS_MIN_SITE_SLOTS + 1);
  px_metrics *m = px_metrics_new(small, 1);
  px_metrics_map *g;
  assert_int_equal(px_metrics_map_new(m, big, &g), 0);
  px_metrics_worker *w = px_metrics_worker_of(m, 0);
  for (size_t i = 0; i <= PX_METRICS_MIN_SITE_SLOTS; i++)
    px_metrics_request(w, g, i, 0, 0, 200, 0, 0, 0);
  char *s = render(m);
  char line[128];
  snprintf(line, sizeof(line),
           "portico_requests_total{site=\"s%d.test\",protocol=\"h1\",code=\"2xx\"} 1",
           PX_METRICS_MIN_SITE_SLOTS - 1);
  has_line(s, line);
  snprintf(line, sizeof(line), "{site=\"s%d.test\"", PX_METRICS_MIN_SITE_SLOTS);
  assert_null(strstr(s, line));
  free(s);
  px_metrics_map_free(g);
  px_metrics_free(m);
  px_config_free(small);
  px_config_free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slots_by_label),
      cmocka_unit_test(test_counts_follow_labels_across_generations),
      cmocka_unit_test(test_past_the_cap_is_not_counted),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
