/* The pure HTTP pieces: field checks, request checks, host normalisation,
 * routing, hop-by-hop removal, re-serialisation, redirects, HSTS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http.h"

/* Builds a head from "Name: value" strings (NULL-terminated). */
static px_http_head *make_head(const char *method, const char *target, int minor,
                               const char *const *fields) {
  px_http_head *h = calloc(1, sizeof(*h));
  h->arena_cap = 8192;
  h->arena = malloc(h->arena_cap);
  h->method = method;
  h->target = target;
  h->target_len = strlen(target);
  h->version_minor = minor;
  for (size_t i = 0; fields && fields[i]; i++) {
    const char *colon = strchr(fields[i], ':');
    px_header *f = &h->headers[h->nheaders++];
    f->name = fields[i];
    f->name_len = (size_t)(colon - fields[i]);
    f->value = colon + 2;
    f->value_len = strlen(colon + 2);
  }
  return h;
}

static void free_head(px_http_head *h) {
  free(h->arena);
  free(h);
}

static void test_field_names(void **state) {
  assert_null(px_http_check_field_name("X-Good_1!#$%&'*+.^`|~", 21));
  const char *bad[] = {"",  "Bad Name", "a:b",   "x\x01", "x\"y", "x(y)",
                       "é", "a@b",      "x\x7f", "x[",    "x{"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_non_null(px_http_check_field_name(bad[i], strlen(bad[i])));
}

static void test_field_values(void **state) {
  assert_null(px_http_check_field_value("text\twith tab", 13));
  assert_null(px_http_check_field_value("", 0));
  assert_non_null(px_http_check_field_value("a\r\n b", 5)); /* obs-fold */
  assert_non_null(px_http_check_field_value("a\nb", 3));    /* bare LF */
  assert_non_null(px_http_check_field_value("a\rb", 3));    /* bare CR */
  assert_non_null(px_http_check_field_value("a\0b", 3));    /* NUL */
  assert_non_null(px_http_check_field_value("a\x7f", 2));   /* DEL */
  assert_non_null(px_http_check_field_value("a\x1b", 2));
  /* The check goes a word at a time: every byte position of a long value,
   * in the word loop and in the tail, must still be seen. */
  char v[29];
  for (size_t at = 0; at < sizeof(v); at++) {
    const unsigned char bad[] = {'\0', '\n', '\r', 0x1f, 0x7f};
    for (size_t b = 0; b < sizeof(bad); b++) {
      memset(v, 'x', sizeof(v));
      v[at] = (char)bad[b];
      assert_non_null(px_http_check_field_value(v, sizeof(v)));
    }
    memset(v, 0xc3, sizeof(v)); /* UTF-8 and other high bytes pass */
    v[at] = '\t';
    assert_null(px_http_check_field_value(v, sizeof(v)));
  }
  /* Bytes just around the control range are fine. */
  static const char edge[] = " ~\x80\xff !x~~~~ ~ ~~~~~~~~~";
  assert_null(px_http_check_field_value(edge, sizeof(edge) - 1));
}

static void expect_request(const char *reason, int minor, const char *const *fields) {
  px_http_head *h = make_head("POST", "/", minor, fields);
  const char *why = px_http_check_request(h);
  if (reason == NULL)
    assert_null(why);
  else {
    assert_non_null(why);
    assert_string_equal(why, reason);
  }
  free_head(h);
}

static void test_request_checks(void **state) {
  expect_request(NULL, 1, (const char *[]){"Host: a.test", "Content-Length: 5", NULL});
  expect_request(NULL, 1, (const char *[]){"Host: a.test", "Transfer-Encoding: Chunked", NULL});
  expect_request(NULL, 0, (const char *[]){"X: y", NULL}); /* HTTP/1.0 may omit Host */
  expect_request(NULL, 1,
                 (const char *[]){"Host: a.test", "Content-Length: 5", "Content-Length: 5", NULL});
  expect_request("two Host headers", 1, (const char *[]){"Host: a.test", "host: a.test", NULL});
  expect_request("HTTP/1.1 request without Host", 1, (const char *[]){"X: y", NULL});
  expect_request(
      "Content-Length with Transfer-Encoding", 1,
      (const char *[]){"Host: a", "Content-Length: 1", "Transfer-Encoding: chunked", NULL});
  expect_request("unsupported Transfer-Encoding", 1,
                 (const char *[]){"Host: a", "Transfer-Encoding: chunked, identity", NULL});
  expect_request("unsupported Transfer-Encoding", 1,
                 (const char *[]){"Host: a", "Transfer-Encoding: xchunked", NULL});
  expect_request("unsupported Transfer-Encoding", 1,
                 (const char *[]){"Host: a", "Transfer-Encoding: chunked",
                                  "Transfer-Encoding: chunked", NULL});
  expect_request("conflicting Content-Length", 1,
                 (const char *[]){"Host: a", "Content-Length: 1", "Content-Length: 2", NULL});
  expect_request("invalid Content-Length", 1,
                 (const char *[]){"Host: a", "Content-Length: 1x", NULL});
  expect_request("invalid Content-Length", 1,
                 (const char *[]){"Host: a", "Content-Length: 1, 1", NULL});
  expect_request("invalid Content-Length", 1,
                 (const char *[]){"Host: a", "Content-Length: 99999999999999999999", NULL});
  expect_request("invalid Host", 1, (const char *[]){"Host: a/b", NULL});
  expect_request("invalid character in field name", 1,
                 (const char *[]){"Host: a", "Bad Name: x", NULL});
}

static void expect_host(const char *in, const char *out) {
  char buf[300];
  int n = px_http_normalize_host(in, strlen(in), buf, sizeof(buf));
  if (out == NULL) {
    assert_int_equal(n, -1);
  } else {
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(buf, out);
  }
}

static void test_normalize_host(void **state) {
  expect_host("Example.COM", "example.com");
  expect_host("example.com:8443", "example.com");
  expect_host("example.com.", "example.com");
  expect_host(" a.test ", "a.test");
  expect_host("[::1]:8443", "[::1]");
  expect_host("[2001:DB8::1]", "[2001:db8::1]");
  expect_host("[0:0::1]", "[::1]"); /* one address, one name (RFC 5952) */
  expect_host("[2001:db8:0:0:0:0:0:1]:443", "[2001:db8::1]");
  expect_host("[::ffff:127.0.0.1]", "[::ffff:127.0.0.1]");
  expect_host("[1:2:3]", NULL);
  expect_host("[::1]:", NULL);
  expect_host("[::1]x", NULL);
  expect_host("127.0.0.1:80", "127.0.0.1");
  expect_host("", NULL);
  expect_host("a.test:", NULL);
  expect_host("a.test:123456", NULL);
  expect_host("a.test:8x", NULL);
  expect_host("a_b.test", NULL);
  expect_host("a.test/x", NULL);
  expect_host("a.test@evil", NULL);
  expect_host("a..test", NULL);
  expect_host(".a.test", NULL);
  expect_host("[::1", NULL);
  expect_host("[::g]", NULL);
  char big[300];
  memset(big, 'a', 254);
  big[254] = '\0';
  expect_host(big, NULL);
}

static void test_route(void **state) {
  char *s0[] = {"a.test", "*.w.test"};
  char *s1[] = {"b.w.test"};
  char *s2[] = {"*"};
  px_site sites[3] = {
      {.hosts = s0, .nhosts = 2}, {.hosts = s1, .nhosts = 1}, {.hosts = s2, .nhosts = 1}};
  px_config cfg = {.sites = sites, .nsites = 3};
  assert_ptr_equal(px_http_route(&cfg, "a.test"), &sites[0]);
  assert_ptr_equal(px_http_route(&cfg, "x.w.test"), &sites[0]);
  assert_ptr_equal(px_http_route(&cfg, "b.w.test"), &sites[1]); /* exact beats wildcard */
  assert_ptr_equal(px_http_route(&cfg, "w.test"), &sites[2]);
  assert_ptr_equal(px_http_route(&cfg, "a.b.w.test"), &sites[2]); /* one label only */
  assert_ptr_equal(px_http_route(&cfg, "[::1]"), &sites[2]);
  cfg.nsites = 2;
  assert_null(px_http_route(&cfg, "other.test"));
}

static void test_hop_by_hop(void **state) {
  const char *hop[] = {
      "Connection", "keep-alive",         "Proxy-Connection",    "TE",     "Transfer-Encoding",
      "Upgrade",    "Proxy-Authenticate", "Proxy-Authorization", "Trailer"};
  for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
    assert_true(px_http_is_hop_by_hop(hop[i], strlen(hop[i]), NULL, 0));
  assert_false(px_http_is_hop_by_hop("Cookie", 6, NULL, 0));
  const char *conn = "close, X-Secret ,x-other";
  assert_true(px_http_is_hop_by_hop("x-secret", 8, conn, strlen(conn)));
  assert_true(px_http_is_hop_by_hop("X-Other", 7, conn, strlen(conn)));
  assert_false(px_http_is_hop_by_hop("X-Sec", 5, conn, strlen(conn)));
}

static void test_serialize_request(void **state) {
  px_http_head *h =
      make_head("GET", "/p?q=1", 1,
                (const char *[]){"Host: a.test", "Connection: X-Hop", "X-Hop: 1", "Keep-Alive: 5",
                                 "X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: http",
                                 "Forwarded: for=203.0.113.7", "Expect: 100-continue",
                                 "Content-Length: 3", "Cookie: a=1", NULL});
  /* From a trusted proxy the received chain is kept and extended. */
  px_forward_info fwd = {
      .client_ip = "2001:db8::1", .proto = "https", .host = "a.test", .trusted = 1};
  char out[1024];
  long n = px_http_serialize_request(h, &fwd, 3, 0, 1, out, sizeof(out));
  assert_true(n > 0);
  out[n] = '\0';
  assert_string_equal(
      out, "GET /p?q=1 HTTP/1.1\r\n"
           "Host: a.test\r\n"
           "Cookie: a=1\r\n"
           "X-Forwarded-For: 203.0.113.7, 2001:db8::1\r\n"
           "X-Forwarded-Proto: http\r\n"
           "X-Forwarded-Host: a.test\r\n"
           "Forwarded: for=203.0.113.7, for=\"[2001:db8::1]\";proto=https;host=a.test\r\n"
           "Content-Length: 3\r\n"
           "\r\n");
  /* From anyone else it is replaced; a request id replaces a received one. */
  fwd.trusted = 0;
  fwd.request_id_name = "x-request-id";
  fwd.request_id = "r1";
  n = px_http_serialize_request(h, &fwd, 3, 0, 1, out, sizeof(out));
  assert_true(n > 0);
  out[n] = '\0';
  assert_string_equal(out, "GET /p?q=1 HTTP/1.1\r\n"
                           "Host: a.test\r\n"
                           "Cookie: a=1\r\n"
                           "x-request-id: r1\r\n"
                           "X-Forwarded-For: 2001:db8::1\r\n"
                           "X-Forwarded-Proto: https\r\n"
                           "X-Forwarded-Host: a.test\r\n"
                           "Forwarded: for=\"[2001:db8::1]\";proto=https;host=a.test\r\n"
                           "Content-Length: 3\r\n"
                           "\r\n");
  fwd.trusted = 1;
  fwd.request_id_name = NULL;
  /* Chunked framing and no room. */
  n = px_http_serialize_request(h, &fwd, -1, 1, 0, out, sizeof(out));
  out[n] = '\0';
  assert_non_null(strstr(out, "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));
  assert_int_equal(px_http_serialize_request(h, &fwd, 3, 0, 1, out, 40), -1);
  free_head(h);
}

/* Removes the one "Date: <IMF-fixdate>\r\n" line from `out`, checking its
 * shape, so the rest compares as a fixed string. */
static void strip_date(char *out) {
  char *d = strstr(out, "\r\nDate: ");
  assert_non_null(d);
  d += 2;
  char *end = strstr(d, "\r\n");
  assert_non_null(end);
  assert_int_equal(end - d, 6 + 29); /* "Sun, 06 Nov 1994 08:49:37 GMT" */
  assert_memory_equal(end - 4, " GMT", 4);
  memmove(d, end + 2, strlen(end + 2) + 1);
  assert_null(strstr(out, "\r\nDate: "));
}

static void test_serialize_response(void **state) {
  px_http_head *h = make_head(NULL, "", 1,
                              (const char *[]){"Set-Cookie: a=1", "Transfer-Encoding: chunked",
                                               "Strict-Transport-Security: max-age=1",
                                               "Set-Cookie: b=2", "Connection: close", NULL});
  h->status = 200;
  h->reason = "OK";
  char out[1024];
  long n = px_http_serialize_response(h, "Strict-Transport-Security: max-age=5184000\r\n", -1, 1, 1,
                                      out, sizeof(out));
  out[n] = '\0';
  strip_date(out);
  assert_string_equal(out, "HTTP/1.1 200 OK\r\n"
                           "Set-Cookie: a=1\r\n"
                           "Set-Cookie: b=2\r\n"
                           "Strict-Transport-Security: max-age=5184000\r\n"
                           "Transfer-Encoding: chunked\r\n"
                           "\r\n");
  h->status = 204;
  h->reason = "";
  n = px_http_serialize_response(h, NULL, -1, 0, 0, out, sizeof(out));
  out[n] = '\0';
  strip_date(out);
  assert_string_equal(out, "HTTP/1.1 204 No Content\r\nSet-Cookie: a=1\r\n"
                           "Strict-Transport-Security: max-age=1\r\nSet-Cookie: b=2\r\n"
                           "Connection: close\r\n\r\n");
  free_head(h);
}

static void test_hsts_line(void **state) {
  char out[128];
  px_hsts h = {1, 5184000, 0, 0};
  assert_int_equal(px_http_hsts_line(&h, out, sizeof(out)),
                   strlen("Strict-Transport-Security: max-age=5184000\r\n"));
  assert_string_equal(out, "Strict-Transport-Security: max-age=5184000\r\n");
  h = (px_hsts){1, 100, 1, 1};
  px_http_hsts_line(&h, out, sizeof(out));
  assert_string_equal(out,
                      "Strict-Transport-Security: max-age=100; includeSubDomains; preload\r\n");
  h.enabled = 0;
  assert_int_equal(px_http_hsts_line(&h, out, sizeof(out)), 0);
}

static void test_redirect(void **state) {
  char out[256];
  assert_int_equal(px_http_redirect_location("a.test", "/x?y=1", 6, 443, out, sizeof(out)), 20);
  assert_string_equal(out, "https://a.test/x?y=1");
  px_http_redirect_location("a.test", "/", 1, 8443, out, sizeof(out));
  assert_string_equal(out, "https://a.test:8443/");
  assert_int_equal(
      px_http_redirect_location("a.test", "//evil.example/", 15, 443, out, sizeof(out)), -1);
  assert_int_equal(px_http_redirect_location("a.test", "http://evil/", 12, 443, out, sizeof(out)),
                   -1);
  assert_int_equal(
      px_http_redirect_location("a.test", "/a\r\nSet-Cookie: x", 18, 443, out, sizeof(out)), -1);
  assert_int_equal(px_http_redirect_location("a.test", "/a b", 4, 443, out, sizeof(out)), -1);
  assert_int_equal(px_http_redirect_location("a.test", "/\\evil", 6, 443, out, sizeof(out)), -1);
  assert_int_equal(px_http_redirect_location("a.test", "/long", 5, 443, out, 10), -1);
}

static void test_simple_response(void **state) {
  char out[256];
  long n = px_http_simple_response(502, NULL, 1, out, sizeof(out));
  out[n] = '\0';
  strip_date(out);
  assert_string_equal(out, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\n"
                           "Content-Length: 12\r\nConnection: close\r\n\r\nBad Gateway\n");
  assert_int_equal(px_http_simple_response(502, NULL, 1, out, 50), -1);
  assert_string_equal(px_http_reason(421), "Misdirected Request");
  assert_string_equal(px_http_reason(999), "Unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_field_names),
      cmocka_unit_test(test_field_values),
      cmocka_unit_test(test_request_checks),
      cmocka_unit_test(test_normalize_host),
      cmocka_unit_test(test_route),
      cmocka_unit_test(test_hop_by_hop),
      cmocka_unit_test(test_serialize_request),
      cmocka_unit_test(test_serialize_response),
      cmocka_unit_test(test_hsts_line),
      cmocka_unit_test(test_redirect),
      cmocka_unit_test(test_simple_response),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
