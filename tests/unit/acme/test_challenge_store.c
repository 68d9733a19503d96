/* Unit tests for acme/challenge_store.c: ids, a round trip through the
 * filesystem store, removal, and what is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme/challenge_store.h"

typedef struct fixture {
  char root[64];
  px_store *store;
} fixture;

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->root, sizeof(f->root), "/tmp/px-chal-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  px_store_fs_options opt = {.root = f->root};
  assert_int_equal(px_store_fs_open(&opt, &f->store), 0);
  *state = f;
  return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

static int teardown(void **state) {
  fixture *f = *state;
  px_store_close(f->store);
  nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static void test_ids(void **state) {
  (void)state;
  char id[PX_CHALLENGE_ID_MAX];
  assert_int_equal(px_challenge_id(PX_ACME_HTTP_01, "a.test", "tok_-1", id, sizeof(id)), 0);
  assert_string_equal(id, "tok_-1");
  assert_int_equal(px_challenge_id(PX_ACME_TLS_ALPN_01, "a.test", NULL, id, sizeof(id)), 0);
  assert_int_equal(strlen(id), 5 + 64);
  assert_memory_equal(id, "alpn-", 5);
  char other[PX_CHALLENGE_ID_MAX];
  assert_int_equal(px_challenge_id(PX_ACME_TLS_ALPN_01, "b.test", NULL, other, sizeof(other)), 0);
  assert_string_not_equal(id, other);
  assert_int_equal(px_challenge_id(PX_ACME_TLS_ALPN_01, "a.test", NULL, id, 10), -EINVAL);
}

static void test_round_trip_and_remove(void **state) {
  fixture *f = *state;
  char id[PX_CHALLENGE_ID_MAX];
  px_challenge_item it;
  assert_int_equal(px_challenge_save(f->store, PX_ACME_TLS_ALPN_01, "a.test", "T1", "T1.thumb"), 0);
  assert_int_equal(px_challenge_save(f->store, PX_ACME_HTTP_01, "b.test", "T2", "T2.thumb"), 0);
  px_challenge_id(PX_ACME_TLS_ALPN_01, "a.test", NULL, id, sizeof(id));
  assert_int_equal(px_challenge_load(f->store, id, &it), 0);
  assert_int_equal(it.type, PX_ACME_TLS_ALPN_01);
  assert_string_equal(it.name, "a.test");
  assert_string_equal(it.key_authorization, "T1.thumb");
  px_challenge_item_dispose(&it);
  assert_int_equal(px_challenge_load(f->store, "T2", &it), 0);
  assert_int_equal(it.type, PX_ACME_HTTP_01);
  assert_string_equal(it.name, "b.test");
  assert_string_equal(it.token, "T2");
  px_challenge_item_dispose(&it);
  assert_int_equal(px_challenge_remove(f->store, PX_ACME_HTTP_01, "b.test", "T2"), 0);
  assert_int_equal(px_challenge_load(f->store, "T2", &it), -ENOENT);
  assert_int_equal(px_challenge_remove(f->store, PX_ACME_TLS_ALPN_01, "a.test", NULL), 0);
  assert_int_equal(px_challenge_load(f->store, id, &it), -ENOENT);
}

static void test_refused(void **state) {
  fixture *f = *state;
  px_challenge_item it;
  /* Not a token the store accepts: refused before any I/O. */
  assert_int_equal(px_challenge_save(f->store, PX_ACME_HTTP_01, "a.test", "../x", "k"), -EINVAL);
  /* A raw key authorization (not ours) is not read as material. */
  assert_int_equal(f->store->ops->save(f->store, PX_STORE_CHALLENGES, "raw", NULL, "raw.k", 5), 0);
  assert_int_equal(px_challenge_load(f->store, "raw", &it), -EBADMSG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_ids),
      cmocka_unit_test_setup_teardown(test_round_trip_and_remove, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
