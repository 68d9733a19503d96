/* px_route_request: the one routing path of HTTP/1.1 and HTTP/2 (Host or
 * :authority normalised, the site, the handshake's name, port-80 answers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http/route.h"

static char *s_plain[] = {"plain.test"};
static char *s_tls[] = {"a.test", "*.w.test"};
static char *s_keep[] = {"keep.test"};

static px_site sites[3] = {
    {.hosts = s_plain, .nhosts = 1, .tls_mode = PX_SITE_TLS_NONE, .redirect_http = 1},
    {.hosts = s_tls, .nhosts = 2, .tls_mode = PX_SITE_TLS_FILES, .redirect_http = 1},
    {.hosts = s_keep, .nhosts = 1, .tls_mode = PX_SITE_TLS_FILES, .redirect_http = 0},
};
static px_config cfg = {.sites = sites, .nsites = 3};

static px_route route(const char *authority, const char *sni, const char *target, int https_port) {
  px_route r;
  px_route_request(&cfg, authority, authority ? strlen(authority) : 0, sni, target, https_port, &r);
  return r;
}

static void test_tls(void **state) {
  px_route r = route("A.test:8443", "a.test", "/", 443);
  assert_int_equal(r.action, PX_ROUTE_PROXY);
  assert_ptr_equal(r.site, &sites[1]);
  assert_string_equal(r.host, "a.test");
  assert_int_equal(r.host_len, 6);
  /* Another name than the handshake's, or one no site serves: 421. */
  assert_int_equal(route("x.w.test", "a.test", "/", 443).action, PX_ROUTE_MISDIRECTED);
  assert_int_equal(route("none.test", "none.test", "/", 443).action, PX_ROUTE_MISDIRECTED);
  assert_int_equal(route("a.test", "", "/", 443).action, PX_ROUTE_MISDIRECTED);
  /* Invalid or empty authority: 400, as is HTTP/2's present-but-empty one. */
  assert_int_equal(route("a test", "a.test", "/", 443).action, PX_ROUTE_BAD_HOST);
  assert_int_equal(route("", "a.test", "/", 443).action, PX_ROUTE_BAD_HOST);
  /* No Host at all (HTTP/1.0): the handshake's name stands in. */
  r = route(NULL, "a.test", "/", 443);
  assert_int_equal(r.action, PX_ROUTE_PROXY);
  assert_string_equal(r.host, "a.test");
  assert_int_equal(route(NULL, "", "/", 443).action, PX_ROUTE_BAD_HOST);
  /* Port-80 answers never come from a TLS connection. */
  assert_int_equal(route("a.test", "a.test", "/.well-known/acme-challenge/t", 443).action,
                   PX_ROUTE_PROXY);
}

static void test_port_80(void **state) {
  px_route r = route("a.test", NULL, "/.well-known/acme-challenge/tok", 443);
  assert_int_equal(r.action, PX_ROUTE_HTTP01);
  assert_string_equal(r.token, "tok");
  /* http-01 comes before the 404 of an unknown name. */
  assert_int_equal(route("none.test", NULL, "/.well-known/acme-challenge/t", 443).action,
                   PX_ROUTE_HTTP01);
  assert_int_equal(route("none.test", NULL, "/", 443).action, PX_ROUTE_NOT_FOUND);
  assert_int_equal(route("a.test", NULL, "/x", 443).action, PX_ROUTE_REDIRECT);
  /* No HTTPS listener, no certificate, or redirect_http: false: proxied. */
  assert_int_equal(route("a.test", NULL, "/x", 0).action, PX_ROUTE_PROXY);
  assert_int_equal(route("plain.test", NULL, "/x", 443).action, PX_ROUTE_PROXY);
  assert_int_equal(route("keep.test", NULL, "/x", 443).action, PX_ROUTE_PROXY);
  assert_int_equal(route(NULL, NULL, "/", 443).action, PX_ROUTE_BAD_HOST);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_tls), cmocka_unit_test(test_port_80)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
