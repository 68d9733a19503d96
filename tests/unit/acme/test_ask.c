/* Unit tests for acme/ask.c's reading of an ask answer's per-name settings
 * (docs/on-demand.md, "Per-name settings"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "acme/ask.h"

static int parse(const char *body, const char *ctype, px_acme_site_prefs *p, char *err) {
  return px_acme_site_prefs_parse(body, strlen(body), ctype, p, err, 256);
}

static void test_silent_answers(void **state) {
  (void)state;
  px_acme_site_prefs p;
  char err[256];
  /* Ask endpoints written for other servers: nothing to read. */
  const char *bodies[] = {"", "OK", "  \n", "allowed"};
  for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
    assert_int_equal(parse(bodies[i], "text/plain", &p, err), 0);
    assert_int_equal(p.redirect_http, -1);
    assert_int_equal(p.hsts, -1);
  }
  assert_int_equal(parse("{}", NULL, &p, err), 0);
  assert_int_equal(p.redirect_http, -1);
  assert_int_equal(p.hsts, -1);
}

static void test_settings(void **state) {
  (void)state;
  px_acme_site_prefs p;
  char err[256];
  assert_int_equal(parse("{\"redirect_http\": false, \"hsts\": true}", NULL, &p, err), 0);
  assert_int_equal(p.redirect_http, 0);
  assert_int_equal(p.hsts, PX_ACME_HSTS_DEFAULT_MAX_AGE);
  assert_int_equal(parse(" {\"hsts\": 600}", "application/json; charset=utf-8", &p, err), 0);
  assert_int_equal(p.redirect_http, -1);
  assert_int_equal(p.hsts, 600);
  assert_int_equal(parse("{\"hsts\": false, \"redirect_http\": true}", NULL, &p, err), 0);
  assert_int_equal(p.hsts, 0);
  assert_int_equal(p.redirect_http, 1);
}

static void test_refusals(void **state) {
  (void)state;
  px_acme_site_prefs p;
  char err[256];
  const char *bad[] = {
      "{\"hsts\": -1}",             /* out of range */
      "{\"hsts\": 63072001}",       /* longer than two years */
      "{\"hsts\": \"yes\"}",        /* wrong type */
      "{\"redirect_http\": 1}",     /* wrong type */
      "{\"hsts\": 1, \"hsts\": 2}", /* duplicate member */
      "{\"redirect_http\": false",  /* cut short */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    err[0] = '\0';
    assert_int_equal(parse(bad[i], NULL, &p, err), -1);
    assert_true(err[0] != '\0');
    assert_int_equal(p.redirect_http, -1);
    assert_int_equal(p.hsts, -1);
  }
  /* A JSON content type with a non-object body is not silently allowed. */
  assert_int_equal(parse("[1]", "application/json", &p, err), -1);
  assert_int_equal(parse("{\"redirect_http\": \"no\"}", NULL, &p, err), -1);
  assert_non_null(strstr(err, "\"redirect_http\" must be true or false"));
  /* Members of the endpoint's own are ignored. */
  assert_int_equal(parse("{\"status\": 200, \"hsts\": 5}", NULL, &p, err), 0);
  assert_int_equal(p.hsts, 5);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_silent_answers),
      cmocka_unit_test(test_settings),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
