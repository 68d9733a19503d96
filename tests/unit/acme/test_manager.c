/* Unit tests for acme/manager.c's lookup: which handshakes may queue a
 * name. The manager thread is never started, so nothing is ordered; the
 * queue shows what would have been. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/manager_internal.h"

static void on_resolved(void *arg, const char *name) {
  (void)arg;
  (void)name;
}

/* A name that reached the manager through a `tls: acme` site but is none
 * of its names (a wildcard or "*" host) used to be queued as an on-demand
 * name: its own order, and no ask unless on_demand.ask was set. */
static void test_only_on_demand_sites_queue_other_names(void **state) {
  (void)state;
  char root[64] = "/tmp/px-manager-XXXXXX", err[256] = "";
  static const char *const shop[] = {"shop.test", "www.shop.test"};
  px_acme_group group = {shop, 2};
  px_acme_manager_opts o = {0};
  px_tls_cert *c = NULL;
  assert_non_null(mkdtemp(root));
  o.storage = root;
  o.client.directory_url = "https://127.0.0.1:1/dir";
  o.on_demand.max_pending = 10;
  o.on_demand.cache_size = 10;
  o.groups = &group;
  o.ngroups = 1;
  o.on_resolved = on_resolved;
  px_acme_manager *m = px_acme_manager_new(&o, err, sizeof(err));
  assert_non_null(m);
  assert_int_equal(px_acme_manager_lookup(m, "a.shop.test", 0, &c), -1);
  assert_int_equal(m->nqueued, 0);
  assert_int_equal(px_acme_manager_lookup(m, "www.shop.test", 0, &c), 0);
  assert_int_equal(m->nqueued, 1);
  assert_int_equal(px_acme_manager_lookup(m, "a.wild.test", 1, &c), 0);
  assert_int_equal(m->nqueued, 2);
  assert_null(c);
  px_acme_manager_free(m);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
  assert_int_equal(system(cmd), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_only_on_demand_sites_queue_other_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
