/* Unit tests for acme/store_fs.c: layout, atomicity, permissions, locks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "acme/store.h"
#include "acme/store_internal.h"

typedef struct fixture {
  char root[64];
  px_store *store;
  int64_t clock;
  const char *fail_step; /* fault injection: the step that fails, or NULL */
} fixture;

static int64_t on_now(void *arg) { return ((fixture *)arg)->clock; }

static int on_fault(void *arg, const char *step) {
  fixture *f = arg;
  return f->fail_step != NULL && strcmp(f->fail_step, step) == 0;
}

static int open_store(fixture *f, const char *host, px_store **out) {
  px_store_fs_options opt = {0};
  opt.root = f->root;
  opt.lock_stale_after = 300;
  opt.host = host;
  opt.now = on_now;
  opt.now_arg = f;
  opt.fault = on_fault;
  opt.fault_arg = f;
  return px_store_fs_open(&opt, out);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  assert_non_null(f);
  snprintf(f->root, sizeof(f->root), "/tmp/px-store-XXXXXX");
  assert_non_null(mkdtemp(f->root));
  /* The store creates its root below an existing directory. */
  strncat(f->root, "/cache", sizeof(f->root) - strlen(f->root) - 1);
  f->clock = 1700000000;
  assert_int_equal(open_store(f, "host-a", &f->store), 0);
  *state = f;
  return 0;
}

static int on_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  fixture *f = *state;
  char *slash;
  px_store_close(f->store);
  slash = strrchr(f->root, '/');
  *slash = '\0';
  nftw(f->root, on_rm, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

static mode_t mode_of(const fixture *f, const char *rel) {
  char path[512];
  struct stat st;
  snprintf(path, sizeof(path), "%s/%s", f->root, rel);
  if (lstat(path, &st) != 0) return (mode_t)-1;
  return st.st_mode & 07777;
}

static int exists_rel(const fixture *f, const char *rel) { return mode_of(f, rel) != (mode_t)-1; }

/* Counts every entry below the root, to prove nothing was created. */
static int entries;
static int on_count(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)path;
  (void)st;
  (void)flag;
  (void)ftw;
  entries++;
  return 0;
}

static int count_entries(const fixture *f) {
  entries = 0;
  nftw(f->root, on_count, 16, FTW_PHYS);
  return entries;
}

/* Entries of ROOT/reldir whose name starts with prefix. */
static int count_prefix(const fixture *f, const char *reldir, const char *prefix) {
  char path[512];
  struct dirent *de;
  DIR *d;
  int n = 0;
  snprintf(path, sizeof(path), "%s/%s", f->root, reldir);
  d = opendir(path);
  if (d == NULL) return 0;
  while ((de = readdir(d)) != NULL)
    n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
  closedir(d);
  return n;
}

static void write_rel(const fixture *f, const char *rel, const char *text) {
  char path[512];
  FILE *fp;
  snprintf(path, sizeof(path), "%s/%s", f->root, rel);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fputs(text, fp);
  fclose(fp);
}

static void load_equals(px_store *s, px_store_group g, const char *name, const char *aspect,
                        const char *want) {
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(s->ops->load(s, g, name, aspect, &data, &len), 0);
  assert_int_equal(len, strlen(want));
  assert_string_equal(data, want);
  px_store_data_free(data, len);
}

static void test_open_and_version(void **state) {
  fixture *f = *state;
  px_store *again = NULL;
  assert_int_equal(mode_of(f, ""), 0700);
  assert_int_equal(mode_of(f, "version"), 0600);
  assert_int_equal(open_store(f, "host-b", &again), 0);
  px_store_close(again);
  write_rel(f, "version", "2\n");
  assert_int_equal(open_store(f, "host-b", &again), -EPROTO);
  assert_null(again);
}

static void test_cert_round_trip_and_modes(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  assert_int_equal(px_store_cert_exists(s, "example.com"), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "CERT", 4), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, "KEY", 3), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_META_JSON, "{}", 2), 0);
  assert_int_equal(px_store_cert_exists(s, "example.com"), 1);
  /* Names are normalised on the way in. */
  assert_int_equal(px_store_cert_exists(s, "EXAMPLE.com."), 1);
  load_equals(s, PX_STORE_CERTS, "example.com", PX_STORE_KEY_PEM, "KEY");
  assert_int_equal(mode_of(f, "certs"), 0700);
  assert_int_equal(mode_of(f, "certs/example.com"), 0700);
  assert_int_equal(mode_of(f, "certs/example.com/key.pem"), 0600);
  assert_int_equal(mode_of(f, "certs/example.com/cert.pem"), 0600);
  /* Overwrite replaces. */
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "CERT2", 5), 0);
  load_equals(s, PX_STORE_CERTS, "example.com", PX_STORE_CERT_PEM, "CERT2");
  assert_int_equal(count_prefix(f, "certs/example.com", ".tmp"), 0);

  /* Wildcards live under _wildcard.<name>. */
  assert_int_equal(px_store_cert_save(s, "*.example.com", PX_STORE_CERT_PEM, "W", 1), 0);
  assert_true(exists_rel(f, "certs/_wildcard.example.com/cert.pem"));
  assert_int_equal(px_store_cert_exists(s, "*.example.com"), 1);

  assert_int_equal(s->ops->remove(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON), 0);
  assert_int_equal(s->ops->exists(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON), 0);
  assert_int_equal(s->ops->remove(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON), -ENOENT);
}

static void test_other_groups(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char id[128];
  const char *url = "https://localhost:14000/dir";

  assert_int_equal(px_store_ca_id(url, id, sizeof(id)), 0);
  assert_int_equal(strncmp(id, "localhost_14000-", 16), 0);
  assert_int_equal(strlen(id), 16 + 16);
  assert_int_equal(px_store_ca_id("https://user:pw@ca.example/d", id, sizeof(id)), 0);
  assert_null(strstr(id, "pw"));
  assert_int_equal(px_store_ca_id("no-scheme", id, sizeof(id)), -EINVAL);

  assert_int_equal(s->ops->save(s, PX_STORE_ACCOUNTS, url, PX_STORE_ACCOUNT_KEY, "K", 1), 0);
  assert_int_equal(px_store_ca_id(url, id, sizeof(id)), 0);
  {
    char rel[256];
    snprintf(rel, sizeof(rel), "accounts/%s/account.key", id);
    assert_int_equal(mode_of(f, rel), 0600);
  }
  load_equals(s, PX_STORE_ACCOUNTS, url, PX_STORE_ACCOUNT_KEY, "K");

  assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, "*.example.com", NULL, "{}", 2), 0);
  assert_true(exists_rel(f, "failures/_wildcard.example.com.json"));
  load_equals(s, PX_STORE_FAILURES, "*.example.com", NULL, "{}");

  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, "tok-EN_123", NULL, "tok-EN_123.tp", 13),
                   0);
  assert_true(exists_rel(f, "challenges/tok-EN_123"));
  load_equals(s, PX_STORE_CHALLENGES, "tok-EN_123", NULL, "tok-EN_123.tp");
  assert_int_equal(s->ops->remove(s, PX_STORE_CHALLENGES, "tok-EN_123", NULL), 0);

  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "*.example.com", NULL, "{}", 2), 0);
  assert_true(exists_rel(f, "jobs/_wildcard.example.com.json"));
  assert_int_equal(mode_of(f, "jobs/_wildcard.example.com.json"), 0600);
  load_equals(s, PX_STORE_JOBS, "*.example.com", NULL, "{}");
  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "../x", NULL, "{}", 2), -EINVAL);
  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "a.test", "cert.pem", "{}", 2), -EINVAL);
}

typedef struct listed {
  char names[8][64];
  int n;
} listed;

static int on_listed(void *arg, const char *name) {
  listed *l = arg;
  if (l->n < 8) snprintf(l->names[l->n++], sizeof(l->names[0]), "%s", name);
  return 0;
}

static int has(const listed *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (strcmp(l->names[i], name) == 0) return 1;
  return 0;
}

static void test_list(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  listed l = {0};
  assert_int_equal(s->ops->list(s, PX_STORE_JOBS, on_listed, &l), 0); /* none yet */
  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "a.example.com", NULL, "{}", 2), 0);
  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "*.example.com", NULL, "{}", 2), 0);
  assert_int_equal(px_store_cert_save(s, "b.example.com", PX_STORE_CERT_PEM, "C", 1), 0);
  /* Not names the store could have written: skipped. */
  char path[256];
  snprintf(path, sizeof(path), "%s/jobs/UPPER.test.json", f->root);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
  snprintf(path, sizeof(path), "%s/jobs/notjson.test", f->root);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(s->ops->list(s, PX_STORE_JOBS, on_listed, &l), 2); /* names visited */
  assert_int_equal(l.n, 2);
  assert_true(has(&l, "a.example.com"));
  assert_true(has(&l, "*.example.com"));
  memset(&l, 0, sizeof(l));
  assert_int_equal(s->ops->list(s, PX_STORE_CERTS, on_listed, &l), 1);
  assert_int_equal(l.n, 1);
  assert_true(has(&l, "b.example.com"));
}

/* An address names a certificate as a site lists it: IPv4 as it is, IPv6
 * as "_ip6." and its text with ':' written '-', and list maps both back. */
static void test_ip_names(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char id[PX_STORE_ID_MAX], name[PX_STORE_ID_MAX];
  assert_int_equal(
      px_store_item_id(PX_STORE_CERTS, "[2001:db8::1]", PX_STORE_CERT_PEM, id, sizeof(id)), 0);
  assert_string_equal(id, "_ip6.2001-db8--1");
  assert_int_equal(px_store_name_of_id(PX_STORE_CERTS, id, name, sizeof(name)), 0);
  assert_string_equal(name, "[2001:db8::1]");
  assert_int_equal(px_store_name_of_id(PX_STORE_JOBS, "_ip6.--ffff-192.0.2.1", name, sizeof(name)),
                   0);
  assert_string_equal(name, "[::ffff:192.0.2.1]");
  /* Only the canonical spelling maps back: "0--1" is not how ::1 is written. */
  assert_int_equal(px_store_name_of_id(PX_STORE_JOBS, "_ip6.0--1", name, sizeof(name)), -EINVAL);
  assert_int_equal(px_store_name_of_id(PX_STORE_JOBS, "_ip6.x", name, sizeof(name)), -EINVAL);
  assert_int_equal(px_store_cert_save(s, "[::1]", PX_STORE_CERT_PEM, "C", 1), 0);
  assert_int_equal(px_store_cert_save(s, "127.0.0.1", PX_STORE_CERT_PEM, "C", 1), 0);
  assert_true(exists_rel(f, "certs/_ip6.--1/cert.pem"));
  assert_true(exists_rel(f, "certs/127.0.0.1/cert.pem"));
  assert_int_equal(s->ops->save(s, PX_STORE_JOBS, "[::1]", NULL, "{}", 2), 0);
  assert_true(exists_rel(f, "jobs/_ip6.--1.json"));
  listed l = {0};
  assert_int_equal(s->ops->list(s, PX_STORE_CERTS, on_listed, &l), 2);
  assert_true(has(&l, "[::1]"));
  assert_true(has(&l, "127.0.0.1"));
}

static void test_bad_names_touch_nothing(void **state) {
  static const char *const bad_names[] = {
      "../etc.com",      "a/b.com",         "a\\b.com", "_wildcard.example.com",
      "*.*.example.com", "a.*.example.com", "*",        "",
      "localhost",       "127.1",           "::1",      "[0::1]",
      "_ip6.--1",        "[::1%lo]",        "..",       ".",
      "a..b.com"};
  static const char *const bad_tokens[] = {"", "..", "../x", "a.b", "a/b", "tok%2e", "a b"};
  fixture *f = *state;
  px_store *s = f->store;
  char long_token[200];
  char *data = NULL;
  size_t len = 0, i;
  int before = count_entries(f);

  for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
    const char *n = bad_names[i];
    if (px_store_cert_save(s, n, PX_STORE_CERT_PEM, "x", 1) != -EINVAL)
      fail_msg("cert name '%s' accepted", n);
    assert_int_equal(px_store_cert_exists(s, n), -EINVAL);
    assert_int_equal(px_store_cert_load(s, n, PX_STORE_CERT_PEM, &data, &len), -EINVAL);
    assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, n, NULL, "x", 1), -EINVAL);
    assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, n, PX_STORE_CERT_PEM), -EINVAL);
    assert_int_equal(s->ops->lock_acquire(s, n, "me"), -EINVAL);
  }
  for (i = 0; i < sizeof(bad_tokens) / sizeof(bad_tokens[0]); i++) {
    if (s->ops->save(s, PX_STORE_CHALLENGES, bad_tokens[i], NULL, "x", 1) != -EINVAL)
      fail_msg("token '%s' accepted", bad_tokens[i]);
  }
  memset(long_token, 'a', 129);
  long_token[129] = '\0';
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, long_token, NULL, "x", 1), -EINVAL);
  long_token[128] = '\0';
  /* Aspects are fixed per group. */
  assert_int_equal(px_store_cert_save(s, "example.com", "../../version", "x", 1), -EINVAL);
  assert_int_equal(px_store_cert_save(s, "example.com", NULL, "x", 1), -EINVAL);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_ACCOUNT_KEY, "x", 1), -EINVAL);
  assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, "example.com", "x", "x", 1), -EINVAL);
  assert_int_equal(s->ops->save(s, PX_STORE_ACCOUNTS, "nourl", PX_STORE_ACCOUNT_KEY, "x", 1),
                   -EINVAL);
  assert_int_equal(s->ops->lock_acquire(s, "example.com", ""), -EINVAL);
  assert_int_equal(count_entries(f), before);
  /* A 128-character token is fine. */
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, long_token, NULL, "x", 1), 0);
}

static void test_atomic_write_keeps_old_file(void **state) {
  static const char *const steps[] = {"open", "write", "fsync", "rename"};
  fixture *f = *state;
  px_store *s = f->store;
  char big[4096];
  size_t i;

  memset(big, 'N', sizeof(big));
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, "OLD", 3), 0);
  for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    f->fail_step = steps[i];
    assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, big, sizeof(big)),
                     -EIO);
    f->fail_step = NULL;
    load_equals(s, PX_STORE_CERTS, "example.com", PX_STORE_KEY_PEM, "OLD");
    /* No temp file is left behind. */
    assert_int_equal(count_prefix(f, "certs/example.com", ".tmp"), 0);
  }
}

static void test_bounded_reads_and_symlinks(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char *big = malloc(PX_STORE_READ_MAX + 1), *data = NULL, path[512], target[512];
  size_t len = 0;

  assert_non_null(big);
  memset(big, 'x', PX_STORE_READ_MAX + 1);
  assert_int_equal(
      px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, big, PX_STORE_READ_MAX + 1), -EFBIG);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, big, PX_STORE_READ_MAX),
                   0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), 0);
  assert_int_equal(len, PX_STORE_READ_MAX);
  px_store_data_free(data, len);
  /* Grown behind our back past the cap: refused. */
  snprintf(path, sizeof(path), "%s/certs/example.com/cert.pem", f->root);
  {
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    fputs("more", fp);
    fclose(fp);
  }
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), -EFBIG);
  free(big);
  /* A symlink planted in the cache is not followed. */
  snprintf(target, sizeof(target), "%s/version", f->root);
  unlink(path);
  assert_int_equal(symlink(target, path), 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), -ELOOP);
}

static void test_quarantine(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_META_JSON, "{corrupt", 8), 0);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON), 0);
  assert_int_equal(s->ops->exists(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON), 0);
  assert_int_equal(count_prefix(f, "quarantine", "certs.example.com.meta.json."), 1);
  assert_int_equal(mode_of(f, "quarantine"), 0700);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, "example.com", PX_STORE_META_JSON),
                   -ENOENT);
  assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, "example.com", NULL, "?", 1), 0);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_FAILURES, "example.com", NULL), 0);
  assert_int_equal(count_prefix(f, "quarantine", "failures.-.example.com.json."), 1);
}

/* certs/<name> as a symlink to another certificate's directory: refused,
 * and quarantine moves the link itself aside, never the target's files. */
static void test_symlinked_directory_is_refused(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char *data = NULL, link_path[512], file[600];
  size_t len = 0;
  assert_int_equal(px_store_cert_save(s, "other.com", PX_STORE_CERT_PEM, "other", 5), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "mine", 4), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, "k", 1), 0);
  snprintf(link_path, sizeof(link_path), "%s/certs/example.com", f->root);
  snprintf(file, sizeof(file), "%s/cert.pem", link_path);
  assert_int_equal(unlink(file), 0);
  snprintf(file, sizeof(file), "%s/key.pem", link_path);
  assert_int_equal(unlink(file), 0);
  assert_int_equal(rmdir(link_path), 0);
  assert_int_equal(symlink("other.com", link_path), 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), -ELOOP);
  assert_null(data);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, "example.com", PX_STORE_CERT_PEM), 0);
  assert_false(exists_rel(f, "certs/example.com"));
  assert_int_equal(count_prefix(f, "quarantine", "certs.example.com.symlink."), 1);
  load_equals(s, PX_STORE_CERTS, "other.com", PX_STORE_CERT_PEM, "other");
  /* The next save makes a real directory again. */
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "new", 3), 0);
  assert_int_equal(mode_of(f, "certs/example.com"), 0700);
  load_equals(s, PX_STORE_CERTS, "example.com", PX_STORE_CERT_PEM, "new");
}

/* A key readable by others, or a directory open to them, is repaired on
 * load (0600 / 0700) and still read. */
static void test_loose_modes_are_repaired_on_load(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char path[512];
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, "key", 3), 0);
  snprintf(path, sizeof(path), "%s/certs/example.com/key.pem", f->root);
  assert_int_equal(chmod(path, 0644), 0);
  snprintf(path, sizeof(path), "%s/certs/example.com", f->root);
  assert_int_equal(chmod(path, 0755), 0);
  load_equals(s, PX_STORE_CERTS, "example.com", PX_STORE_KEY_PEM, "key");
  assert_int_equal(mode_of(f, "certs/example.com/key.pem"), 0600);
  assert_int_equal(mode_of(f, "certs/example.com"), 0700);
}

static void check_lock_content(const fixture *f, const char *owner, const char *host, int64_t ts) {
  char path[512];
  json_t *j;
  snprintf(path, sizeof(path), "%s/locks/example.com.lock", f->root);
  j = json_load_file(path, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "owner")), owner);
  assert_string_equal(json_string_value(json_object_get(j, "host")), host);
  assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
  assert_int_equal(json_integer_value(json_object_get(j, "ts")), ts);
  json_decref(j);
}

static void test_locks(void **state) {
  fixture *f = *state;
  px_store *a = f->store, *b = NULL;
  const int64_t t0 = f->clock;

  assert_int_equal(open_store(f, "host-b", &b), 0);
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "inst-a"), 0);
  assert_int_equal(mode_of(f, "locks"), 0700);
  assert_int_equal(mode_of(f, "locks/example.com.lock"), 0600);
  check_lock_content(f, "inst-a", "host-a", t0);
  /* Contended. */
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "inst-b"), -EBUSY);
  assert_int_equal(b->ops->lock_release(b, "example.com", "inst-b"), -EPERM);
  assert_int_equal(b->ops->lock_refresh(b, "example.com", "inst-b"), -EPERM);
  /* Re-acquiring our own lock is fine; refreshing moves the timestamp. */
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "inst-a"), 0);
  f->clock = t0 + 200;
  assert_int_equal(a->ops->lock_refresh(a, "example.com", "inst-a"), 0);
  check_lock_content(f, "inst-a", "host-a", t0 + 200);
  f->clock = t0 + 400; /* 200 s since the refresh: not stale yet */
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "inst-b"), -EBUSY);
  f->clock = t0 + 501; /* 301 s: stale, b takes over */
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "inst-b"), 0);
  check_lock_content(f, "inst-b", "host-b", t0 + 501);
  assert_int_equal(count_prefix(f, "locks", ".stale"), 0);
  /* a lost it: it can neither refresh nor release b's lock. */
  assert_int_equal(a->ops->lock_refresh(a, "example.com", "inst-a"), -EPERM);
  assert_int_equal(a->ops->lock_release(a, "example.com", "inst-a"), -EPERM);
  assert_true(exists_rel(f, "locks/example.com.lock"));
  assert_int_equal(b->ops->lock_release(b, "example.com", "inst-b"), 0);
  assert_false(exists_rel(f, "locks/example.com.lock"));
  assert_int_equal(b->ops->lock_release(b, "example.com", "inst-b"), -ENOENT);
  /* Free again. */
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "inst-a"), 0);
  assert_int_equal(a->ops->lock_release(a, "example.com", "inst-a"), 0);
  px_store_close(b);
}

static void test_lock_being_written_is_not_stale(void **state) {
  fixture *f = *state;
  px_store *s = f->store;
  char path[512];
  int fd;
  /* An empty lock (its creator is between open and write) counts by its
   * mtime, which is the real clock: with the fake clock near it, fresh. */
  assert_int_equal(s->ops->lock_acquire(s, "other.example", "inst-a"), 0);
  assert_int_equal(s->ops->lock_release(s, "other.example", "inst-a"), 0);
  snprintf(path, sizeof(path), "%s/locks/example.com.lock", f->root);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
  assert_true(fd >= 0);
  close(fd);
  f->clock = time(NULL);
  assert_int_equal(s->ops->lock_acquire(s, "example.com", "inst-a"), -EBUSY);
  f->clock = time(NULL) + 1000;
  assert_int_equal(s->ops->lock_acquire(s, "example.com", "inst-a"), 0);
  assert_int_equal(s->ops->lock_release(s, "example.com", "inst-a"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_and_version, setup, teardown),
      cmocka_unit_test_setup_teardown(test_ip_names, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cert_round_trip_and_modes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_groups, setup, teardown),
      cmocka_unit_test_setup_teardown(test_list, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_names_touch_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_atomic_write_keeps_old_file, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bounded_reads_and_symlinks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_quarantine, setup, teardown),
      cmocka_unit_test_setup_teardown(test_symlinked_directory_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_loose_modes_are_repaired_on_load, setup, teardown),
      cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_being_written_is_not_stale, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
