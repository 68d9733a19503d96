/* Unit tests for tls/ipname.c: canonical IP names, the RFC 8738 §6 reverse
 * SNI, and socket addresses as names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "tls/ipname.h"

static const char *norm(const char *in) {
  static char out[PX_IP_NAME_MAX];
  return px_ip_name_normalize(in, strlen(in), out, sizeof(out)) < 0 ? NULL : out;
}

static void test_normalize(void **state) {
  (void)state;
  assert_string_equal(norm("127.0.0.1"), "127.0.0.1");
  assert_string_equal(norm("::1"), "[::1]");
  assert_string_equal(norm("[::1]"), "[::1]");
  assert_string_equal(norm("2001:DB8:0:0:0:0:0:1"), "[2001:db8::1]");
  assert_string_equal(norm("::ffff:192.0.2.1"), "[::ffff:192.0.2.1]");
  assert_null(norm("127.1"));
  assert_null(norm("0x7f.0.0.1"));
  assert_null(norm("127.000.0.1"));
  assert_null(norm("[127.0.0.1]"));
  assert_null(norm("example.com"));
  assert_null(norm("fe80::1%eth0"));
  assert_null(norm("[::1"));
  assert_null(norm(""));
  assert_int_equal(px_ip_name_normalize("::1\0x", 5, (char[64]){0}, 64), -1);
}

static void test_bytes_and_bare(void **state) {
  (void)state;
  uint8_t b[16];
  char out[PX_IP_NAME_MAX];
  assert_int_equal(px_ip_name_bytes("203.0.113.5", b), 4);
  assert_memory_equal(b, "\xcb\x00\x71\x05", 4);
  assert_int_equal(px_ip_name_bytes("[::1]", b), 16);
  assert_int_equal(b[15], 1);
  assert_int_equal(px_ip_name_bytes("::1", b), 0); /* not canonical */
  assert_int_equal(px_ip_name_bytes("[0::1]", b), 0);
  assert_int_equal(px_ip_name_bytes("www.example.com", b), 0);
  assert_int_equal(px_ip_name_bare("[2001:db8::1]", out, sizeof(out)), 11);
  assert_string_equal(out, "2001:db8::1");
  assert_int_equal(px_ip_name_bare("192.0.2.1", out, sizeof(out)), 9);
  assert_string_equal(out, "192.0.2.1");
  assert_int_equal(px_ip_name_bare("a.example", out, sizeof(out)), -1);
}

static const char *rev(const char *sni) {
  static char out[PX_IP_NAME_MAX];
  return px_ip_name_from_reverse(sni, out, sizeof(out)) < 0 ? NULL : out;
}

static void test_reverse_sni(void **state) {
  (void)state;
  assert_string_equal(rev("1.0.0.127.in-addr.arpa"), "127.0.0.1");
  assert_string_equal(rev("5.113.0.203.in-addr.arpa."), "203.0.113.5");
  assert_string_equal(
      rev("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"), "[::1]");
  /* RFC 8738 §6's own example: 2001:db8::1. */
  assert_string_equal(
      rev("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"),
      "[2001:db8::1]");
  assert_null(rev("0.127.in-addr.arpa"));       /* three labels */
  assert_null(rev("1.0.0.0.127.in-addr.arpa")); /* five */
  assert_null(rev("01.0.0.127.in-addr.arpa"));  /* a leading zero */
  assert_null(rev("256.0.0.127.in-addr.arpa"));
  assert_null(rev("in-addr.arpa"));
  assert_null(rev("x.0.0.127.in-addr.arpa"));
  assert_null(rev("1.0.0.0.ip6.arpa"));
  assert_null(rev("g.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"));
  assert_null(rev("www.example.com"));
  assert_null(rev("127.0.0.1"));
}

static void test_sockaddr(void **state) {
  (void)state;
  char out[PX_IP_NAME_MAX];
  struct sockaddr_in a4 = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
  assert_true(px_ip_name_from_sockaddr((struct sockaddr *)&a4, out, sizeof(out)) > 0);
  assert_string_equal(out, "127.0.0.1");
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6};
  inet_pton(AF_INET6, "::ffff:192.0.2.7", &a6.sin6_addr);
  assert_true(px_ip_name_from_sockaddr((struct sockaddr *)&a6, out, sizeof(out)) > 0);
  assert_string_equal(out, "192.0.2.7");
  inet_pton(AF_INET6, "::1", &a6.sin6_addr);
  assert_true(px_ip_name_from_sockaddr((struct sockaddr *)&a6, out, sizeof(out)) > 0);
  assert_string_equal(out, "[::1]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize),
      cmocka_unit_test(test_bytes_and_bare),
      cmocka_unit_test(test_reverse_sni),
      cmocka_unit_test(test_sockaddr),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
