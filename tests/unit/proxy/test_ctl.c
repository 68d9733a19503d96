/*
 * Unit test for proxy/ctl.c against the real admin server
 * (acme/life/admin.c) on a libuv loop, with a fake table of operations in
 * place of the certificate manager: the two halves of the protocol agree.
 * The client runs on a second thread, as it would in another process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "acme/life/admin.h"
#include "proxy/ctl.h"
#include "tests/unit/run_beside_loop.h"

typedef struct fixture {
  uv_loop_t loop;
  char dir[64];
  char path[96];
  char **argv;
  int argc;
  int status;
  char *out, *err;
} fixture;

static json_t *fake_status(void *ctx, char *err, size_t errlen) {
  return json_pack("[{s:[s,s],s:s,s:s,s:s,s:s,s:i}]", "names", "example.com", "www.example.com",
                   "not_after", "2026-12-30T10:00:00Z", "next_run", "2026-12-10T04:17:33Z",
                   "next_reason", "ARI window", "state", "valid", "failures", 0);
}

static int fake_renew(void *ctx, const char *name, char *err, size_t errlen) {
  snprintf(err, errlen, "unknown name %s", name);
  return -1;
}

static void client_thread(void *arg) {
  fixture *f = arg;
  size_t olen, elen;
  FILE *out = open_memstream(&f->out, &olen), *err = open_memstream(&f->err, &elen);
  f->status = px_ctl_main(f->argc, f->argv, out, err);
  fclose(out);
  fclose(err);
}

/* Runs `portico ctl --socket PATH <cmd> [name]` while the loop serves. */
static void run_ctl(fixture *f, const char *cmd, const char *name) {
  char *argv[] = {"ctl", "--socket", f->path, (char *)cmd, (char *)name, NULL};
  f->argv = argv;
  f->argc = name ? 5 : 4;
  free(f->out);
  free(f->err);
  px_test_run_beside_loop(&f->loop, client_thread, f);
}

static void ctl_talks_to_the_admin_server(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  snprintf(f->dir, sizeof(f->dir), "/tmp/px-ctl-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/admin.sock", f->dir);
  px_admin_ops ops = {.ctx = f, .status = fake_status, .renew = fake_renew};
  px_admin_options o = {.path = f->path};
  char err[256];
  px_admin *a = px_admin_start(&f->loop, &o, &ops, err, sizeof(err));
  assert_non_null(a);

  run_ctl(f, "status", NULL);
  assert_int_equal(f->status, 0);
  assert_non_null(strstr(f->out, "NAMES                        NOT AFTER"));
  assert_non_null(strstr(f->out, "\nexample.com,www.example.com  2026-12-30T10:00:00Z  "
                                 "2026-12-10T04:17:33Z  ARI window  valid  0         -\n"));
  run_ctl(f, "renew", "Nope.Example");
  assert_int_equal(f->status, 1);
  assert_string_equal(f->err, "portico ctl: unknown name nope.example\n");
  run_ctl(f, "show", "example.com"); /* the fake manager has no show */
  assert_int_equal(f->status, 1);
  assert_string_equal(f->err, "portico ctl: not supported\n");

  px_admin_close(a);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  run_ctl(f, "status", NULL);
  assert_int_equal(f->status, 1);
  assert_non_null(strstr(f->err, "portico is not running (no admin socket at "));

  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  rmdir(f->dir);
  free(f->out);
  free(f->err);
  free(f);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(ctl_talks_to_the_admin_server),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
