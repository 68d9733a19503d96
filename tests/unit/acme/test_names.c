/* Unit tests for acme/names.c: the name gate before disk and network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "acme/names.h"

static int norm(const char *in, size_t len, char *out, size_t cap) {
  return px_acme_name_normalize(in, len, out, cap);
}

static void expect_ok(const char *in, const char *want) {
  char out[PX_ACME_NAME_MAX + 1];
  int n = norm(in, strlen(in), out, sizeof(out));
  if (n < 0) fail_msg("'%s' refused: %s", in, px_acme_name_strerror(n));
  assert_int_equal(n, (int)strlen(want));
  assert_string_equal(out, want);
}

static void expect_err(const char *in, size_t len, int err) {
  char out[PX_ACME_NAME_MAX + 1];
  int n = norm(in, len, out, sizeof(out));
  if (n != err)
    fail_msg("'%.*s': got %d (%s), want %d", (int)len, in, n, px_acme_name_strerror(n), err);
  assert_string_equal(out, "");
}

static void test_accepts_and_lowercases(void **state) {
  (void)state;
  expect_ok("example.com", "example.com");
  expect_ok("WWW.Example.COM", "www.example.com");
  expect_ok("example.com.", "example.com");
  expect_ok("a-b.c0.example", "a-b.c0.example");
  expect_ok("xn--bcher-kva.example", "xn--bcher-kva.example");
  expect_ok("1.2.3.example", "1.2.3.example");
  expect_ok("123.com", "123.com");
}

static void test_length_limits(void **state) {
  char name[300], out[PX_ACME_NAME_MAX + 1];
  (void)state;
  /* 63-char label ok, 64 refused. */
  memset(name, 'a', 63);
  memcpy(name + 63, ".com", 5);
  assert_int_equal(norm(name, strlen(name), out, sizeof(out)), 67);
  memset(name, 'a', 64);
  memcpy(name + 64, ".com", 5);
  expect_err(name, strlen(name), PX_ACME_NAME_ELABEL);
  /* 253 bytes in total (labels of 49) are accepted, 254 are not. */
  for (size_t i = 0; i < 253; i++)
    name[i] = (i % 50 == 49) ? '.' : 'a';
  name[253] = '\0';
  assert_int_equal(norm(name, 253, out, sizeof(out)), 253);
  name[253] = '.'; /* trailing dot does not count */
  assert_int_equal(norm(name, 254, out, sizeof(out)), 253);
  name[253] = 'a';
  expect_err(name, 254, PX_ACME_NAME_ETOOLONG);
  /* output buffer too small */
  assert_int_equal(norm("example.com", 11, out, 11), PX_ACME_NAME_ECAP);
  assert_int_equal(norm("example.com", 11, out, 12), 11);
}

static void test_refusals(void **state) {
  (void)state;
  expect_err("", 0, PX_ACME_NAME_EEMPTY);
  expect_err(".", 1, PX_ACME_NAME_EEMPTY);
  expect_err("localhost", 9, PX_ACME_NAME_ENODOT);
  expect_err("example.com..", 13, PX_ACME_NAME_EEMPTYLABEL);
  expect_err("a..example.com", 14, PX_ACME_NAME_EEMPTYLABEL);
  expect_err(".example.com", 12, PX_ACME_NAME_EEMPTYLABEL);
  expect_err("-a.example.com", 14, PX_ACME_NAME_EHYPHEN);
  expect_err("a-.example.com", 14, PX_ACME_NAME_EHYPHEN);
  expect_err("example.com-", 12, PX_ACME_NAME_EHYPHEN);
  expect_err("a_b.example.com", 15, PX_ACME_NAME_ECHAR);
  expect_err("*.example.com", 13, PX_ACME_NAME_ECHAR);
  expect_err("../etc/passwd.com", 17, PX_ACME_NAME_EEMPTYLABEL);
  expect_err("a/b.example.com", 15, PX_ACME_NAME_ECHAR);
  expect_err("a\\b.example.com", 15, PX_ACME_NAME_ECHAR);
  expect_err("a b.example.com", 15, PX_ACME_NAME_ECHAR);
  expect_err("example.com\0.evil", 17, PX_ACME_NAME_ECHAR);
  expect_err("b\xc3\xbc"
             "cher.example",
             13, PX_ACME_NAME_ENONASCII);
  expect_err("\x80.example.com", 13, PX_ACME_NAME_ENONASCII);
}

static void test_ip_literals(void **state) {
  (void)state;
  expect_err("127.0.0.1", 9, PX_ACME_NAME_EIP);
  expect_err("127.0.0.1.", 10, PX_ACME_NAME_EIP);
  expect_err("10.1", 4, PX_ACME_NAME_EIP);
  expect_err("0x7f.1", 6, PX_ACME_NAME_EIP);
  expect_err("1.0x7f", 6, PX_ACME_NAME_EIP);
  expect_err("::1", 3, PX_ACME_NAME_EIP);
  expect_err("[::1]", 5, PX_ACME_NAME_EIP);
  expect_err("2001:db8::1", 11, PX_ACME_NAME_EIP);
  expect_err("example.com:443", 15, PX_ACME_NAME_EIP);
}

/* A `tls: acme` site may list an address (RFC 8738); names a client sends
 * still may not be one (test_ip_literals). */
static void test_addresses_in_orders(void **state) {
  (void)state;
  assert_null(px_acme_order_name_problem("203.0.113.5", 0));
  assert_null(px_acme_order_name_problem("[2001:db8::1]", 0));
  assert_non_null(px_acme_order_name_problem("127.1", 0));
  assert_true(px_acme_cert_name_ok("203.0.113.5"));
  assert_true(px_acme_cert_name_ok("[::1]"));
  assert_true(px_acme_cert_name_ok("*.example.com"));
  assert_false(px_acme_cert_name_ok("::1"));
  assert_false(px_acme_cert_name_ok("[0::1]"));
  assert_false(px_acme_cert_name_ok("Example.com"));
}

static void test_strerror(void **state) {
  (void)state;
  assert_string_equal(px_acme_name_strerror(PX_ACME_NAME_EIP), "IP address literal");
  assert_string_equal(px_acme_name_strerror(-1000), "unknown name error");
  assert_non_null(px_acme_name_strerror(PX_ACME_NAME_ECAP));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accepts_and_lowercases),
      cmocka_unit_test(test_length_limits),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_ip_literals),
      cmocka_unit_test(test_addresses_in_orders),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
