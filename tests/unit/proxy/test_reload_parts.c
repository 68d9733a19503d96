/* The pieces a reload is made of that need no running server: listen
 * addresses compared, the listen-address locks taken for new addresses and
 * released for removed ones, and the settings a reload cannot change. The
 * reload itself is tested end to end in tests/integration/test_reload.py. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/config.h"
#include "proxy/generation.h"
#include "proxy/listen_lock.h"

static char run_dir[64];

static px_config *load(const char *listen, const char *extra) {
  char text[1024];
  snprintf(text, sizeof(text),
           "listen: {http: [%s]}\nruntime_dir: \"%s\"\nstorage: \"%s/cache\"\n%s"
           "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:8080\"]\n",
           listen, run_dir, run_dir, extra);
  int n = 0;
  px_config *cfg = px_config_load_buffer("t.yaml", text, strlen(text), stderr, &n);
  assert_non_null(cfg);
  return cfg;
}

/* 1 when this process could take the lock of `addr` through a new open file
 * (flock locks belong to open files, so a lock we hold refuses it too). */
static int lock_free(const char *addr) {
  char name[160], path[256];
  px_listen_file_name("listen-", addr, ".lock", name, sizeof(name));
  snprintf(path, sizeof(path), "%s/%s", run_dir, name);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  assert_true(fd >= 0);
  int ok = flock(fd, LOCK_EX | LOCK_NB) == 0;
  close(fd);
  return ok;
}

static void listen_addresses_compare_by_address_and_port(void **state) {
  (void)state;
  px_config *a = load("\"127.0.0.1:8001\", \"127.0.0.1:8002\", \"[::1]:8001\"", "");
  assert_true(px_listen_addr_equal(&a->http[0], &a->http[0]));
  assert_false(px_listen_addr_equal(&a->http[0], &a->http[1])); /* port */
  assert_false(px_listen_addr_equal(&a->http[0], &a->http[2])); /* family */
  assert_int_equal(px_listen_addr_port(&a->http[2]), 8001);
  px_config *b = load("\"127.0.0.1:8001\"", "");
  assert_true(px_listen_addr_equal(&a->http[0], &b->http[0])); /* another load, same address */
  px_config_free(a);
  px_config_free(b);
}

static void locks_follow_the_listen_addresses(void **state) {
  (void)state;
  char err[768];
  px_config *first = load("\"127.0.0.1:8101\", \"127.0.0.1:8102\"", "");
  assert_int_equal(px_listen_lock_all(first, err, sizeof(err)), 0);
  assert_false(lock_free("127.0.0.1:8101"));
  assert_false(lock_free("127.0.0.1:8102"));
  /* A reload adds one address and removes another. */
  px_config *next = load("\"127.0.0.1:8102\", \"127.0.0.1:8103\"", "");
  assert_int_equal(px_listen_lock_add(next, err, sizeof(err)), 0);
  assert_false(lock_free("127.0.0.1:8103"));
  px_listen_lock_keep_only(next);
  assert_true(lock_free("127.0.0.1:8101"));
  assert_false(lock_free("127.0.0.1:8102"));
  assert_false(lock_free("127.0.0.1:8103"));
  px_listen_lock_keep_only(first); /* as a failed reload gives back what it took */
  assert_true(lock_free("127.0.0.1:8103"));
  assert_false(lock_free("127.0.0.1:8102"));
  px_config_free(first);
  px_config_free(next);
}

static void settings_read_at_start_are_named(void **state) {
  (void)state;
  px_config *a = load("\"127.0.0.1:8201\"", "acme: {email: a@example.com}\n");
  px_config *same = load("\"127.0.0.1:8201\"", "acme: {email: a@example.com}\n");
  px_config *b = load("\"127.0.0.1:8201\"", "acme: {email: b@example.com}\nadmin: {socket: off}\n"
                                            "events: {webhook: \"http://127.0.0.1:9/hook\"}\n");
  const char *keys[8];
  assert_int_equal(px_acme_config_changed_keys(&a->acme, &a->on_demand, &a->control, &same->acme,
                                               &same->on_demand, &same->control, keys, 8),
                   0);
  size_t n = px_acme_config_changed_keys(&a->acme, &a->on_demand, &a->control, &b->acme,
                                         &b->on_demand, &b->control, keys, 8);
  assert_int_equal(n, 3);
  assert_string_equal(keys[0], "acme.email");
  assert_string_equal(keys[1], "admin.socket");
  assert_string_equal(keys[2], "events.webhook");
  /* More than fit: counted, not written past the end. */
  assert_int_equal(px_acme_config_changed_keys(&a->acme, &a->on_demand, &a->control, &b->acme,
                                               &b->on_demand, &b->control, keys, 1),
                   3);
  px_config_free(a);
  px_config_free(same);
  px_config_free(b);
}

int main(void) {
  snprintf(run_dir, sizeof(run_dir), "/tmp/px-reload-XXXXXX");
  if (mkdtemp(run_dir) == NULL) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(listen_addresses_compare_by_address_and_port),
      cmocka_unit_test(locks_follow_the_listen_addresses),
      cmocka_unit_test(settings_read_at_start_are_named),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
