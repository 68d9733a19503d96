/* The manager's LRU name map: get/put/del, replacement, eviction order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/namemap.h"

static int freed;
static void count_free(void *v) {
  freed++;
  free(v);
}

static char *val(const char *s) { return strdup(s); }

static void test_basic(void **state) {
  freed = 0;
  px_namemap *m = px_namemap_new(3, count_free);
  assert_int_equal(px_namemap_put(m, "a.test", val("A"), 7), 0);
  int64_t stamp = 0;
  assert_string_equal(px_namemap_get(m, "a.test", &stamp), "A");
  assert_int_equal(stamp, 7);
  assert_null(px_namemap_get(m, "b.test", NULL));
  assert_int_equal(px_namemap_put(m, "a.test", val("A2"), 8), 0); /* replaces, frees the old */
  assert_int_equal(freed, 1);
  assert_string_equal(px_namemap_get(m, "a.test", NULL), "A2");
  assert_int_equal(px_namemap_size(m), 1);
  assert_int_equal(px_namemap_del(m, "a.test"), 1);
  assert_int_equal(px_namemap_del(m, "a.test"), 0);
  assert_int_equal(freed, 2);
  px_namemap_free(m);
}

static void test_lru_eviction(void **state) {
  freed = 0;
  px_namemap *m = px_namemap_new(3, count_free);
  px_namemap_put(m, "1.test", val("1"), 0);
  px_namemap_put(m, "2.test", val("2"), 0);
  px_namemap_put(m, "3.test", val("3"), 0);
  px_namemap_get(m, "1.test", NULL); /* 1 is now the most recent */
  px_namemap_put(m, "4.test", val("4"), 0);
  assert_null(px_namemap_get(m, "2.test", NULL)); /* the least recent went */
  assert_non_null(px_namemap_get(m, "1.test", NULL));
  assert_non_null(px_namemap_get(m, "3.test", NULL));
  assert_non_null(px_namemap_get(m, "4.test", NULL));
  assert_int_equal(px_namemap_size(m), 3);
  assert_int_equal(freed, 1);
  px_namemap_free(m);
  assert_int_equal(freed, 4);
}

static void test_many(void **state) {
  px_namemap *m = px_namemap_new(1000, free);
  char k[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(k, sizeof(k), "n%d.test", i);
    assert_int_equal(px_namemap_put(m, k, val(k), i), 0);
  }
  assert_int_equal(px_namemap_size(m), 1000);
  assert_null(px_namemap_get(m, "n3999.test", NULL));
  assert_string_equal(px_namemap_get(m, "n4000.test", NULL), "n4000.test");
  px_namemap_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_basic),
                                     cmocka_unit_test(test_lru_eviction),
                                     cmocka_unit_test(test_many)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
