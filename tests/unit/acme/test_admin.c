/*
 * Unit tests for acme/life/admin.c: the real Unix socket server on a libuv
 * loop, driven by a blocking client on a second thread, with a fake table
 * of operations standing in for the certificate manager.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "acme/life/admin.h"
#include "tests/unit/run_beside_loop.h"

typedef struct fixture {
  uv_loop_t loop;
  char dir[64];
  char path[96];
  px_admin *admin;
  /* what the fake operations saw */
  char last_cmd[16];
  char last_name[300];
  int last_all;
  int last_reason;
  px_admin_reply *reply; /* a revoke not answered yet */
  uv_timer_t answer;
  int answer_open;
  /* the client thread's job */
  void (*client)(struct fixture *f);
  const char *request;
  char *response;
  uint64_t client_ms[3];
} fixture;

/* ---- the fake manager -------------------------------------------------------- */

static int known(const char *name) { return strcmp(name, "example.com") == 0; }

static void seen(fixture *f, const char *cmd, const char *name) {
  snprintf(f->last_cmd, sizeof(f->last_cmd), "%s", cmd);
  snprintf(f->last_name, sizeof(f->last_name), "%s", name ? name : "(all)");
  f->last_all = name == NULL;
}

static json_t *job(const char *name) {
  return json_pack("{s:[s],s:s,s:s,s:i}", "names", name, "state", "valid", "not_after",
                   "2026-12-30T00:00:00Z", "failures", 0);
}

static json_t *fake_status(void *ctx, char *err, size_t errlen) {
  seen(ctx, "status", "");
  json_t *a = json_array();
  json_array_append_new(a, job("example.com"));
  return a;
}

static json_t *fake_show(void *ctx, const char *name, char *err, size_t errlen) {
  seen(ctx, "show", name);
  if (known(name)) return job(name);
  snprintf(err, errlen, "unknown name %s", name);
  return NULL;
}

static int fake_named(void *ctx, const char *cmd, const char *name, char *err, size_t errlen) {
  seen(ctx, cmd, name);
  if (name == NULL || known(name)) return 0;
  snprintf(err, errlen, "unknown name %s", name);
  return -1;
}

static int fake_retry(void *ctx, const char *name, char *err, size_t errlen) {
  return fake_named(ctx, "retry", name, err, errlen);
}

static int fake_renew(void *ctx, const char *name, char *err, size_t errlen) {
  return fake_named(ctx, "renew", name, err, errlen);
}

/* revoke answers later, from a timer, as the manager answers when the CA
 * has: "example.com" after 50 ms, "slow.example" never (the test ends it). */
static void on_revoke_answer(uv_timer_t *t) {
  fixture *f = t->data;
  px_admin_reply_send(f->reply, json_pack("{s:b,s:s}", "ok", 1, "serial", "0A1B"));
  f->reply = NULL;
}

static int fake_revoke(void *ctx, const char *name, int reason, px_admin_reply *reply, char *err,
                       size_t errlen) {
  fixture *f = ctx;
  f->last_reason = reason;
  int slow = strcmp(name, "slow.example") == 0;
  if (!slow && fake_named(ctx, "revoke", name, err, errlen) != 0) return -1;
  seen(f, "revoke", name);
  f->reply = reply;
  if (!slow) {
    uv_timer_init(&f->loop, &f->answer);
    f->answer.data = f;
    uv_timer_start(&f->answer, on_revoke_answer, 50, 0);
    f->answer_open = 1;
  }
  return 0;
}

/* ---- a blocking client on its own thread --------------------------------------- */

static int dial(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads to EOF; returns a malloc'd string. */
static char *read_all(int fd) {
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap + 1);
  ssize_t n;
  while ((n = read(fd, buf + len, cap - len)) > 0)
    len += (size_t)n;
  buf[len] = '\0';
  return buf;
}

static void one_request(fixture *f) {
  int fd = dial(f->path);
  if (fd < 0) return;
  size_t len = strlen(f->request);
  if (write(fd, f->request, len) != (ssize_t)len) abort();
  if (len == 0 || f->request[len - 1] != '\n') shutdown(fd, SHUT_WR);
  f->response = read_all(fd);
  close(fd);
}

static void client_thread(void *arg) {
  fixture *f = arg;
  f->client(f);
}

/* Runs `client` on a thread while the loop serves; returns when it ends. */
static void run_client(fixture *f, void (*client)(fixture *)) {
  f->client = client;
  px_test_run_beside_loop(&f->loop, client_thread, f);
}

/* Sends `request` and returns the parsed response (NULL on none). */
static json_t *ask(fixture *f, const char *request) {
  free(f->response);
  f->response = NULL;
  f->request = request;
  run_client(f, one_request);
  assert_non_null(f->response);
  size_t len = strlen(f->response);
  assert_true(len > 0 && f->response[len - 1] == '\n'); /* one line */
  json_error_t e;
  json_t *j = json_loads(f->response, 0, &e);
  assert_non_null(j);
  return j;
}

static void assert_error(fixture *f, const char *request, const char *want) {
  json_t *j = ask(f, request);
  const char *got = json_string_value(json_object_get(j, "error"));
  assert_non_null(got);
  assert_non_null(strstr(got, want));
  json_decref(j);
}

static void assert_ok(fixture *f, const char *request) {
  json_t *j = ask(f, request);
  assert_true(json_is_true(json_object_get(j, "ok")));
  json_decref(j);
}

/* The proxy's reload: refused while last_reason is set, with two lines. */
static int fake_reload(void *ctx, char *msg, size_t cap) {
  fixture *f = ctx;
  seen(f, "reload", "");
  if (f->last_reason) {
    snprintf(msg, cap, "p.yaml:3: sites[0].upstreams[0]: bad\np.yaml: 1 error");
    return -1;
  }
  snprintf(msg, cap, "p.yaml: generation 2");
  return 0;
}

/* ---- fixture --------------------------------------------------------------- */

static const px_admin_ops ops_template = {.status = fake_status,
                                          .show = fake_show,
                                          .retry = fake_retry,
                                          .renew = fake_renew,
                                          .revoke = fake_revoke};

static px_admin *start(fixture *f, const px_admin_options *o, char *err, size_t errlen) {
  px_admin_ops ops = ops_template;
  ops.ctx = f;
  px_admin_options opt = o ? *o : (px_admin_options){0};
  opt.path = f->path;
  return px_admin_start(&f->loop, &opt, &ops, err, errlen);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  snprintf(f->dir, sizeof(f->dir), "/tmp/px-admin-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/admin.sock", f->dir);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  px_admin_close(f->admin);
  px_admin_reply_send(f->reply, NULL); /* the owner frees an unanswered reply */
  if (f->answer_open) uv_close((uv_handle_t *)&f->answer, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  free(f->response);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void status_and_show(void **state) {
  fixture *f = *state;
  char err[256];
  f->admin = start(f, NULL, err, sizeof(err));
  assert_non_null(f->admin);
  json_t *j = ask(f, "{\"cmd\":\"status\"}\n");
  assert_true(json_is_array(j));
  assert_int_equal(json_array_size(j), 1);
  json_decref(j);
  j = ask(f, "{\"cmd\":\"show\",\"name\":\"Example.COM.\"}\n");
  assert_string_equal(f->last_name, "example.com"); /* normalised before the manager sees it */
  assert_string_equal(json_string_value(json_object_get(j, "state")), "valid");
  json_decref(j);
  assert_error(f, "{\"cmd\":\"show\",\"name\":\"other.example\"}\n", "unknown name other.example");
  assert_error(f, "{\"cmd\":\"show\",\"name\":\"../etc\"}\n", "invalid name");
  assert_error(f, "{\"cmd\":\"show\"}\n", "needs a \"name\"");
  /* A wildcard certificate's name passes with its "*." kept. */
  assert_error(f, "{\"cmd\":\"show\",\"name\":\"*.example.net\"}\n", "unknown name *.example.net");
}

static void retry_renew_revoke(void **state) {
  fixture *f = *state;
  char err[256];
  f->admin = start(f, NULL, err, sizeof(err));
  assert_ok(f, "{\"cmd\":\"retry\",\"all\":true}\n");
  assert_true(f->last_all);
  assert_ok(f, "{\"cmd\":\"retry\",\"name\":\"example.com\"}\n");
  assert_false(f->last_all);
  assert_string_equal(f->last_cmd, "retry");
  assert_error(f, "{\"cmd\":\"renew\",\"name\":\"nope.example\"}\n", "unknown name nope.example");
  assert_string_equal(f->last_cmd, "renew");
  /* revoke's answer is the one the operation sends later. */
  json_t *j =
      ask(f, "{\"cmd\":\"revoke\",\"name\":\"example.com\",\"reason\":\"keyCompromise\"}\n");
  assert_true(json_is_true(json_object_get(j, "ok")));
  assert_string_equal(json_string_value(json_object_get(j, "serial")), "0A1B");
  json_decref(j);
  assert_int_equal(f->last_reason, 1);
  assert_null(f->reply);
  uv_close((uv_handle_t *)&f->answer, NULL);
  f->answer_open = 0;
  assert_error(f, "{\"cmd\":\"revoke\",\"name\":\"nope.example\"}\n", "unknown name nope.example");
  assert_int_equal(f->last_reason, 0);
  f->last_cmd[0] = '\0';
  assert_error(f, "{\"cmd\":\"revoke\",\"name\":\"example.com\",\"reason\":\"whim\"}\n",
               "unknown reason");
  assert_string_equal(f->last_cmd, ""); /* refused before the manager is asked */
  assert_error(f, "{\"cmd\":\"reboot\"}\n", "unknown command");
  assert_error(f, "not json\n", "not a JSON object");
  /* A request without its newline still gets its answer at EOF. */
  assert_ok(f, "{\"cmd\":\"renew\",\"name\":\"example.com\"}");
  assert_int_equal(px_admin_reason_parse("cessationOfOperation"), 5);
  assert_int_equal(px_admin_reason_parse("certificateHold"), -1);
}

static void reload_is_relayed_with_its_message(void **state) {
  fixture *f = *state;
  char err[256];
  /* Without the proxy's reload registered, the command is not supported. */
  f->admin = start(f, NULL, err, sizeof(err));
  assert_error(f, "{\"cmd\":\"reload\"}\n", "not supported");
  px_admin_close(f->admin);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  px_admin_ops ops = ops_template;
  ops.ctx = f;
  ops.reload = fake_reload;
  px_admin_options o = {.path = f->path};
  f->admin = px_admin_start(&f->loop, &o, &ops, err, sizeof(err));
  assert_non_null(f->admin);
  json_t *j = ask(f, "{\"cmd\":\"reload\"}\n");
  assert_true(json_is_true(json_object_get(j, "ok")));
  assert_string_equal(json_string_value(json_object_get(j, "message")), "p.yaml: generation 2");
  json_decref(j);
  assert_string_equal(f->last_cmd, "reload");
  f->last_reason = 1;
  /* Every error line reaches the client (the response is still one line). */
  assert_error(f, "{\"cmd\":\"reload\"}\n",
               "p.yaml:3: sites[0].upstreams[0]: bad\np.yaml: 1 error");
}

/* A revoke whose outcome does not come within its wait is answered "still
 * in progress" (with "pending"), at the request's shorter "wait". */
static void revoke_wait_is_bounded(void **state) {
  fixture *f = *state;
  char err[256];
  px_admin_options o = {.max_wait_ms = 3000};
  f->admin = start(f, &o, err, sizeof(err));
  uint64_t t0 = uv_hrtime() / 1000000;
  json_t *j = ask(f, "{\"cmd\":\"revoke\",\"name\":\"slow.example\",\"wait\":1}\n");
  uint64_t took = uv_hrtime() / 1000000 - t0;
  assert_true(took >= 900 && took < 2900);
  assert_true(json_is_true(json_object_get(j, "pending")));
  assert_string_equal(json_string_value(json_object_get(j, "error")),
                      "revoke slow.example: still in progress after 1 s; see `portico ctl show "
                      "slow.example`");
  json_decref(j);
  /* The operation's late answer is dropped; its reply is still freed. */
  px_admin_reply_send(f->reply, json_pack("{s:b}", "ok", 1));
  f->reply = NULL;
}

/* A server closing while a revoke waits tells the client why. */
static void on_idle_close(uv_idle_t *h) {
  fixture *f = h->data;
  if (f->reply == NULL || f->admin == NULL) return; /* the revoke has not reached the operation */
  px_admin_close(f->admin);
  f->admin = NULL;
}

static void stopping_client(fixture *f) { one_request(f); }

static void revoke_answered_at_close(void **state) {
  fixture *f = *state;
  char err[256];
  f->admin = start(f, NULL, err, sizeof(err));
  f->request = "{\"cmd\":\"revoke\",\"name\":\"slow.example\"}\n";
  /* The loop's thread closes the server once the request is in: an idle
   * check runs on that thread. */
  uv_idle_t idle;
  uv_idle_init(&f->loop, &idle);
  idle.data = f;
  uv_idle_start(&idle, on_idle_close);
  run_client(f, stopping_client);
  uv_close((uv_handle_t *)&idle, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT); /* its close callback, before it goes */
  json_error_t je;
  json_t *j = json_loads(f->response, 0, &je);
  assert_non_null(j);
  assert_true(json_is_true(json_object_get(j, "pending")));
  assert_non_null(strstr(json_string_value(json_object_get(j, "error")),
                         "revoke slow.example: portico is stopping before the outcome is known"));
  json_decref(j);
}

static void oversized_request_is_refused(void **state) {
  fixture *f = *state;
  char err[256];
  px_admin_options o = {.max_request = 64};
  f->admin = start(f, &o, err, sizeof(err));
  char big[256];
  memset(big, 'x', sizeof(big) - 2);
  big[sizeof(big) - 2] = '\n';
  big[sizeof(big) - 1] = '\0';
  assert_error(f, big, "request too large");
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000; }

/* Two idle connections fill the server; a third is closed at once; the
 * idle ones are closed at the timeout. */
static void idle_clients(fixture *f) {
  uint64_t t0 = now_ms();
  /* The server accepts from its backlog in order: a, b, then c. */
  int a = dial(f->path), b = dial(f->path), c = dial(f->path);
  char *s = read_all(c);
  f->client_ms[0] = now_ms() - t0;
  free(s);
  s = read_all(a);
  f->client_ms[1] = now_ms() - t0;
  free(s);
  free(read_all(b));
  close(a);
  close(b);
  close(c);
}

static void connections_are_bounded_and_time_out(void **state) {
  fixture *f = *state;
  char err[256];
  px_admin_options o = {.max_connections = 2, .timeout_ms = 1000};
  f->admin = start(f, &o, err, sizeof(err));
  run_client(f, idle_clients);
  assert_true(f->client_ms[0] < 900);                            /* closed at accept */
  assert_true(f->client_ms[1] >= 900 && f->client_ms[1] < 5000); /* closed at the timeout */
}

static void socket_file_lifecycle(void **state) {
  fixture *f = *state;
  char err[256];
  /* A stale socket file (bound, never unlinked: a crash) is replaced. */
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  close(fd);
  f->admin = start(f, NULL, err, sizeof(err));
  assert_non_null(f->admin);
  struct stat st;
  assert_int_equal(lstat(f->path, &st), 0);
  assert_true(S_ISSOCK(st.st_mode));
  assert_int_equal(st.st_mode & 0777, 0600);
  /* A live server there: refused, and the live one keeps its socket. */
  assert_null(start(f, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "another portico is running"));
  assert_ok(f, "{\"cmd\":\"retry\",\"all\":true}\n");
  px_admin_close(f->admin);
  f->admin = NULL;
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_int_equal(lstat(f->path, &st), -1); /* removed at close */
  /* Something else at the path: refused, left alone. */
  FILE *file = fopen(f->path, "w");
  fclose(file);
  assert_null(start(f, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, "not a socket"));
  assert_int_equal(lstat(f->path, &st), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(status_and_show, setup, teardown),
      cmocka_unit_test_setup_teardown(retry_renew_revoke, setup, teardown),
      cmocka_unit_test_setup_teardown(reload_is_relayed_with_its_message, setup, teardown),
      cmocka_unit_test_setup_teardown(revoke_wait_is_bounded, setup, teardown),
      cmocka_unit_test_setup_teardown(revoke_answered_at_close, setup, teardown),
      cmocka_unit_test_setup_teardown(oversized_request_is_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(connections_are_bounded_and_time_out, setup, teardown),
      cmocka_unit_test_setup_teardown(socket_file_lifecycle, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
