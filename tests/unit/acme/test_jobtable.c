/*
 * The manager's job table (acme/life/jobtable.h) over a real filesystem
 * store: jobs found by any name, loaded back, migrated from the failure
 * record and meta.json of older caches, a corrupt job file set aside, and
 * failed saves (fault injection) kept in memory and retried.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "acme/life/jobtable.h"

#define NOW 1700000000

typedef struct fixture {
  char root[64];
  px_store *store;
  px_job_table table;
  const char *fail_step;
} fixture;

static int on_fault(void *arg, const char *step) {
  fixture *f = arg;
  return f->fail_step != NULL && strcmp(f->fail_step, step) == 0;
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->root, sizeof(f->root), "/tmp/px-jobs-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  px_store_fs_options opt = {0};
  opt.root = f->root;
  opt.fault = on_fault;
  opt.fault_arg = f;
  assert_int_equal(px_store_fs_open(&opt, &f->store), 0);
  assert_int_equal(px_job_table_init(&f->table), 0);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  char cmd[128];
  px_job_table_dispose(&f->table);
  px_store_close(f->store);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void test_new_job_found_by_every_name_and_saved(void **state) {
  fixture *f = *state;
  const char *names[] = {"shop.test", "www.shop.test"};
  px_job_entry *e = px_job_table_get(&f->table, f->store, names, 2, 0, NOW);
  assert_non_null(e);
  assert_int_equal(e->job.state, PX_JOB_PENDING);
  assert_int_equal(e->job.last_seen, NOW);
  assert_ptr_equal(px_job_table_find(&f->table, "www.shop.test"), e);
  assert_ptr_equal(px_job_table_get(&f->table, f->store, names, 2, 0, NOW), e);
  assert_int_equal(px_job_table_count(&f->table), 1);
  assert_ptr_equal(px_job_table_at(&f->table, 0), e);
  assert_null(px_job_table_at(&f->table, 1));
  assert_int_equal(px_job_set_certificate(&e->job, NOW, NOW + 90 * 86400, "a.b"), 0);
  assert_int_equal(px_job_table_save(f->store, e, NOW), 0);

  /* A second table (a restart) reads it back. */
  px_job_table t2;
  assert_int_equal(px_job_table_init(&t2), 0);
  px_job_entry *e2 = px_job_table_get(&t2, f->store, names, 2, 0, NOW + 10);
  assert_non_null(e2);
  assert_int_equal(e2->job.state, PX_JOB_VALID);
  assert_int_equal(e2->job.not_after, NOW + 90 * 86400);
  assert_string_equal(e2->job.cert_id, "a.b");
  assert_false(e2->names_changed);
  px_job_table_dispose(&t2);

  /* The site's hosts changed: the job takes the new set and says so. */
  const char *more[] = {"shop.test", "www.shop.test", "api.shop.test"};
  assert_int_equal(px_job_table_init(&t2), 0);
  e2 = px_job_table_get(&t2, f->store, more, 3, 0, NOW + 10);
  assert_non_null(e2);
  assert_true(e2->names_changed);
  assert_int_equal(e2->job.nnames, 3);
  assert_ptr_equal(px_job_table_find(&t2, "api.shop.test"), e2);
  px_job_table_dispose(&t2);
}

static void test_migrated_from_failure_record_and_meta(void **state) {
  fixture *f = *state;
  const char *failure = "{\"name\":\"old.test\",\"failures\":2,\"last_failure\":1699999000,"
                        "\"next_attempt\":1699999600,\"last_error\":\"boom\"}";
  const char *meta = "{\"names\":[\"old.test\"],\"serial\":\"01\",\"issued_at\":1690000000,"
                     "\"not_after\":1707776000,\"alternates\":[]}";
  assert_int_equal(
      f->store->ops->save(f->store, PX_STORE_FAILURES, "old.test", NULL, failure, strlen(failure)),
      0);
  assert_int_equal(px_store_cert_save(f->store, "old.test", PX_STORE_CERT_PEM, "C", 1), 0);
  assert_int_equal(px_store_cert_save(f->store, "old.test", PX_STORE_META_JSON, meta, strlen(meta)),
                   0);
  const char *name = "old.test";
  px_job_entry *e = px_job_table_get(&f->table, f->store, &name, 1, -1, NOW);
  assert_non_null(e);
  assert_int_equal(e->job.failures, 2);
  assert_int_equal(e->job.not_after, 1707776000);
  assert_int_equal(e->job.state, PX_JOB_VALID);
  assert_string_equal(e->job.last_error.detail, "boom");
}

static void test_corrupt_job_file_is_set_aside(void **state) {
  fixture *f = *state;
  assert_int_equal(f->store->ops->save(f->store, PX_STORE_JOBS, "bad.test", NULL, "{nope", 5), 0);
  const char *name = "bad.test";
  px_job_entry *e = px_job_table_get(&f->table, f->store, &name, 1, -1, NOW);
  assert_non_null(e);
  assert_int_equal(e->job.state, PX_JOB_PENDING);
  assert_int_equal(f->store->ops->exists(f->store, PX_STORE_JOBS, "bad.test", NULL), 0);
}

static void test_failed_saves_are_kept_and_retried(void **state) {
  fixture *f = *state;
  const char *name = "disk.test";
  px_job_entry *e = px_job_table_get(&f->table, f->store, &name, 1, -1, NOW);
  assert_non_null(e);
  f->fail_step = "write"; /* a full disk */
  assert_int_equal(px_job_table_save_cert(f->store, e, "CERT", 4, "KEY", 3, NOW), -EIO);
  assert_int_equal(px_job_table_save(f->store, e, NOW), -EIO);
  assert_true(e->job_dirty);
  assert_non_null(e->pending_cert);
  assert_int_equal(e->save_failures, 2);
  assert_int_equal(e->save_retry_at, NOW + 600); /* the backoff: 1 min, 10 min, ... */
  const px_job_event *last = px_job_event_at(&e->job, px_job_event_count(&e->job) - 1);
  assert_string_equal(last->kind, "save-failed");
  assert_false(px_store_cert_exists(f->store, "disk.test"));
  /* Still failing: nothing lost. */
  assert_int_equal(px_job_table_retry_saves(f->store, e, NOW + 600), -EAGAIN);
  assert_non_null(e->pending_cert);
  /* The disk has room again. */
  f->fail_step = NULL;
  assert_int_equal(px_job_table_retry_saves(f->store, e, NOW + 6600), 0);
  assert_null(e->pending_cert);
  assert_false(e->job_dirty);
  assert_int_equal(e->save_failures, 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(px_store_cert_load(f->store, "disk.test", PX_STORE_KEY_PEM, &data, &len), 0);
  assert_memory_equal(data, "KEY", 3);
  px_store_data_free(data, len);
  assert_int_equal(f->store->ops->exists(f->store, PX_STORE_JOBS, "disk.test", NULL), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_new_job_found_by_every_name_and_saved, setup, teardown),
      cmocka_unit_test_setup_teardown(test_migrated_from_failure_record_and_meta, setup, teardown),
      cmocka_unit_test_setup_teardown(test_corrupt_job_file_is_set_aside, setup, teardown),
      cmocka_unit_test_setup_teardown(test_failed_saves_are_kept_and_retried, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
