/* Unit tests for acme/cache_load.c: the expiry phrase of log lines, and
 * meta.json checks against a real store. (The certificate checks need a
 * CA's chain and are tested with Pebble in test_acme.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/cache_load.h"

static void phrase_is(int64_t left, const char *want) {
  char out[64];
  px_acme_expiry_phrase(1700000000 + left, 1700000000, out, sizeof(out));
  assert_string_equal(out, want);
}

/* "has expired" only when it has: 59 minutes left used to read as expired. */
static void test_expiry_phrase(void **state) {
  (void)state;
  phrase_is(59 * 60, "expires in 59 minutes");
  phrase_is(59 * 60 + 59, "expires in 59 minutes");
  phrase_is(61, "expires in 1 minute");
  phrase_is(1, "expires in less than a minute");
  phrase_is(0, "has expired");
  phrase_is(-5, "has expired");
  phrase_is(5 * 3600, "expires in 5 hours");
  phrase_is(10 * 86400, "expires in 10 days");
}

static void test_meta_checks(void **state) {
  (void)state;
  char root[64] = "/tmp/px-cacheload-XXXXXX";
  px_store *s = NULL;
  px_store_fs_options opt = {0};
  assert_non_null(mkdtemp(root));
  opt.root = root;
  assert_int_equal(px_store_fs_open(&opt, &s), 0);
  assert_int_equal(px_acme_cache_check_meta(s, "a.example.com"), 0); /* absent */
  static const char good[] = "{\"names\":[\"a.example.com\"],\"not_after\":1}";
  assert_int_equal(px_store_cert_save(s, "a.example.com", PX_STORE_META_JSON, good, strlen(good)),
                   0);
  assert_int_equal(px_acme_cache_check_meta(s, "a.example.com"), 1);
  static const char *const bad[] = {"{garbage", "[1,2]", "{\"names\":[1]}", "{\"a\":1,\"a\":2}",
                                    "{\"names\":\"x\"}"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    assert_int_equal(
        px_store_cert_save(s, "a.example.com", PX_STORE_META_JSON, bad[i], strlen(bad[i])), 0);
    assert_int_equal(px_acme_cache_check_meta(s, "a.example.com"), 0);
    assert_int_equal(s->ops->exists(s, PX_STORE_CERTS, "a.example.com", PX_STORE_META_JSON), 0);
  }
  px_store_close(s);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expiry_phrase),
      cmocka_unit_test(test_meta_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
