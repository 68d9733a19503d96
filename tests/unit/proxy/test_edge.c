/* The pure pieces behind trusted_proxies, the PROXY protocol, request ids
 * and JSON log lines: CIDR parsing and matching, px_proxy_parse, request
 * id validation and JSON escaping (the config keys are in test_config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "proxy/proxy_protocol.h"
#include "proxy/util/cidr.h"
#include "proxy/util/request_id.h"
#include "tls/log.h"

static void test_cidr(void **state) {
  px_cidr c[3];
  assert_null(px_cidr_parse("10.0.0.0/8", &c[0]));
  assert_null(px_cidr_parse("2001:db8::/32", &c[1]));
  assert_null(px_cidr_parse("::1", &c[2]));
  assert_int_equal(c[2].prefix, 128);
  uint8_t a[16];
  inet_pton(AF_INET, "10.200.1.2", a);
  assert_true(px_cidr_match(c, 3, AF_INET, a));
  inet_pton(AF_INET, "11.0.0.1", a);
  assert_false(px_cidr_match(c, 3, AF_INET, a));
  inet_pton(AF_INET6, "::ffff:10.9.9.9", a); /* a dual-stack socket's IPv4 peer */
  assert_true(px_cidr_match(c, 3, AF_INET6, a));
  inet_pton(AF_INET6, "2001:db8:ffff::1", a);
  assert_true(px_cidr_match(c, 3, AF_INET6, a));
  inet_pton(AF_INET6, "2001:db9::1", a);
  assert_false(px_cidr_match(c, 3, AF_INET6, a));
  inet_pton(AF_INET6, "::1", a);
  assert_true(px_cidr_match(c, 3, AF_INET6, a));
  /* An odd prefix, and /0. */
  assert_null(px_cidr_parse("192.168.0.0/23", &c[0]));
  inet_pton(AF_INET, "192.168.1.255", a);
  assert_true(px_cidr_match(c, 1, AF_INET, a));
  inet_pton(AF_INET, "192.168.2.0", a);
  assert_false(px_cidr_match(c, 1, AF_INET, a));
  assert_null(px_cidr_parse("0.0.0.0/0", &c[0]));
  assert_true(px_cidr_match(c, 1, AF_INET, a));
  /* Errors. */
  assert_non_null(px_cidr_parse("10.0.0.1/8", &c[0]));
  assert_non_null(px_cidr_parse("10.0.0.0/33", &c[0]));
  assert_non_null(px_cidr_parse("10.0.0.0/", &c[0]));
  assert_non_null(px_cidr_parse("10.0.0.0/8x", &c[0]));
  assert_non_null(px_cidr_parse("example.com", &c[0]));
  assert_non_null(px_cidr_parse("", &c[0]));
}

static void test_proxy_v1(void **state) {
  px_proxy_header h;
  const char *ok = "PROXY TCP4 192.0.2.1 198.51.100.2 40000 443\r\nGET";
  size_t hlen = strlen(ok) - 3;
  assert_int_equal(px_proxy_parse((const uint8_t *)ok, strlen(ok), &h), (long)hlen);
  assert_int_equal(h.version, 1);
  assert_int_equal(h.family, AF_INET);
  assert_int_equal(h.src_port, 40000);
  assert_memory_equal(h.src, "\xc0\x00\x02\x01", 4);
  for (size_t i = 0; i < hlen; i++) /* any prefix: more is needed */
    assert_int_equal(px_proxy_parse((const uint8_t *)ok, i, &h), 0);
  const char *six = "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n";
  assert_int_equal(px_proxy_parse((const uint8_t *)six, strlen(six), &h), (long)strlen(six));
  assert_int_equal(h.family, AF_INET6);
  const char *unknown = "PROXY UNKNOWN whatever\r\n";
  assert_true(px_proxy_parse((const uint8_t *)unknown, strlen(unknown), &h) > 0);
  assert_true(h.local);
  static const char *const bad[] = {"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n",
                                    "PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n",
                                    "PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n",
                                    "PROXY TCP4 1.2.3.4 1.2.3.4 1 -2\r\n",
                                    "PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n",
                                    "proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n",
                                    "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n",
                                    "\x16\x03\x01",
                                    NULL};
  for (const char *const *b = bad; *b; b++)
    assert_int_equal(px_proxy_parse((const uint8_t *)*b, strlen(*b), &h), -1);
  /* No line end within 107 bytes. */
  char longline[200];
  memset(longline, 'A', sizeof(longline));
  memcpy(longline, "PROXY ", 6);
  assert_int_equal(px_proxy_parse((const uint8_t *)longline, sizeof(longline), &h), -1);
  assert_int_equal(px_proxy_parse((const uint8_t *)longline, 106, &h), 0);
}

static void test_proxy_v2(void **state) {
  px_proxy_header h;
  uint8_t b[64] = "\r\n\r\n\x00\r\nQUIT\n";
  b[12] = 0x21; /* v2, PROXY */
  b[13] = 0x11; /* TCP over IPv4 */
  b[14] = 0;
  b[15] = 12 + 5; /* addresses and one TLV */
  memcpy(b + 16, "\x0a\x01\x02\x03\x7f\x00\x00\x01\x9c\x40\x01\xbb", 12);
  memcpy(b + 28, "\x04\x00\x02hi", 5);
  assert_int_equal(px_proxy_parse(b, 40, &h), 33);
  assert_int_equal(h.version, 2);
  assert_int_equal(h.family, AF_INET);
  assert_memory_equal(h.src, "\x0a\x01\x02\x03", 4);
  assert_int_equal(h.src_port, 40000);
  for (size_t i = 0; i < 33; i++)
    assert_int_equal(px_proxy_parse(b, i, &h), 0);
  b[12] = 0x20; /* LOCAL */
  assert_int_equal(px_proxy_parse(b, 40, &h), 33);
  assert_true(h.local);
  b[12] = 0x31; /* version 3 */
  assert_int_equal(px_proxy_parse(b, 40, &h), -1);
  b[12] = 0x22; /* command 2 */
  assert_int_equal(px_proxy_parse(b, 40, &h), -1);
  b[12] = 0x21;
  b[15] = 4; /* TCP4 with no room for its addresses */
  assert_int_equal(px_proxy_parse(b, 40, &h), -1);
  b[14] = 0x04; /* over PX_PROXY_V2_MAX */
  assert_int_equal(px_proxy_parse(b, 16, &h), -1);
  b[3] = 'X'; /* a broken signature */
  assert_int_equal(px_proxy_parse(b, 8, &h), -1);
}

static void test_request_id(void **state) {
  assert_true(px_request_id_valid("abc-123_X.y", 11));
  assert_false(px_request_id_valid("", 0));
  assert_false(px_request_id_valid("a b", 3));
  assert_false(px_request_id_valid("a\"b", 3));
  char long_id[80];
  memset(long_id, 'a', sizeof(long_id));
  assert_true(px_request_id_valid(long_id, PX_REQUEST_ID_MAX));
  assert_false(px_request_id_valid(long_id, PX_REQUEST_ID_MAX + 1));
  char a[PX_REQUEST_ID_GENERATED + 1], b[PX_REQUEST_ID_GENERATED + 1];
  px_request_id_generate(a);
  px_request_id_generate(b);
  assert_int_equal(strlen(a), 32);
  assert_string_not_equal(a, b);
  assert_int_equal(strspn(a, "0123456789abcdef"), 32);
  assert_null(px_request_id_check_header_name("X-Request-Id"));
  assert_non_null(px_request_id_check_header_name("Host"));
  assert_non_null(px_request_id_check_header_name("X-Forwarded-For"));
  assert_non_null(px_request_id_check_header_name("Bad Name"));
}

static void test_json_escape(void **state) {
  char out[64];
  const char in[] = "a\"b\\c\n\x01\xc3\xa9\x7f";
  size_t n = px_log_json_escape(out, sizeof(out), in, sizeof(in) - 1);
  assert_string_equal(out, "a\\\"b\\\\c\\u000a\\u0001\\u00c3\\u00a9\\u007f");
  assert_int_equal(n, strlen(out));
  /* Cut between escapes, never inside one. */
  n = px_log_json_escape(out, 8, "ab\ncd", 5);
  assert_string_equal(out, "ab");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cidr),        cmocka_unit_test(test_proxy_v1),
      cmocka_unit_test(test_proxy_v2),    cmocka_unit_test(test_request_id),
      cmocka_unit_test(test_json_escape),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
