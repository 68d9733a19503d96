/*
 * Unit tests for acme/life/events.c against real parts: a shell script
 * written here (it runs under /bin/sh as its own interpreter; portico
 * itself spawns it directly, with no shell) and a small HTTP receiver on a
 * free loopback port, served from the same libuv loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "acme/life/events.h"

/* ---- the HTTP receiver ----------------------------------------------------- */

#define MAX_REQS 16

typedef struct receiver {
  uv_tcp_t server;
  int port;
  int statuses[MAX_REQS]; /* answer per request; 0 = never answer */
  int default_status;
  char *reqs[MAX_REQS]; /* raw request bytes received */
  int nreqs;
  struct rconn *conns[MAX_REQS]; /* open connections, closed at the end */
  int started;
} receiver;

typedef struct rconn {
  uv_tcp_t tcp;
  receiver *rx;
  char buf[16384];
  size_t len;
  int answered;
} rconn;

static void on_rconn_closed(uv_handle_t *h) {
  rconn *c = h->data;
  for (int i = 0; i < MAX_REQS; i++)
    if (c->rx->conns[i] == c) c->rx->conns[i] = NULL;
  free(c);
}

static void on_rx_alloc(uv_handle_t *h, size_t s, uv_buf_t *b) {
  rconn *c = h->data;
  b->base = c->buf + c->len;
  b->len = sizeof(c->buf) - c->len - 1;
}

static void on_rx_written(uv_write_t *w, int status) {
  rconn *c = w->data;
  free(w);
  uv_close((uv_handle_t *)&c->tcp, on_rconn_closed);
}

/* A request is whole when its head is in and Content-Length bytes follow. */
static int request_complete(const char *s, size_t len) {
  const char *end = strstr(s, "\r\n\r\n");
  if (end == NULL) return 0;
  const char *cl = strstr(s, "Content-Length: ");
  size_t body = cl ? strtoul(cl + 16, NULL, 10) : 0;
  return len >= (size_t)(end + 4 - s) + body;
}

static void on_rx_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  rconn *c = s->data;
  if (n < 0) {
    if (!uv_is_closing((uv_handle_t *)s)) uv_close((uv_handle_t *)s, on_rconn_closed);
    return;
  }
  c->len += (size_t)n;
  c->buf[c->len] = '\0';
  if (c->answered || !request_complete(c->buf, c->len)) return;
  c->answered = 1;
  receiver *rx = c->rx;
  int i = rx->nreqs;
  assert_true(i < MAX_REQS);
  rx->reqs[rx->nreqs++] = strdup(c->buf);
  int status = rx->statuses[i] ? rx->statuses[i] : rx->default_status;
  if (status == 0) return; /* hold the connection, answer nothing */
  static char resp[128];
  snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
           status);
  uv_write_t *w = malloc(sizeof(*w));
  w->data = c;
  uv_buf_t out = uv_buf_init(resp, (unsigned)strlen(resp));
  uv_write(w, s, &out, 1, on_rx_written);
}

static void on_rx_connection(uv_stream_t *server, int status) {
  receiver *rx = server->data;
  rconn *c = calloc(1, sizeof(*c));
  c->rx = rx;
  for (int i = 0; i < MAX_REQS; i++) {
    if (rx->conns[i] == NULL) {
      rx->conns[i] = c;
      break;
    }
  }
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
  uv_read_start((uv_stream_t *)&c->tcp, on_rx_alloc, on_rx_read);
}

static void receiver_start(uv_loop_t *loop, receiver *rx) {
  struct sockaddr_in a;
  uv_ip4_addr("127.0.0.1", 0, &a); /* port 0: the kernel picks a free one */
  uv_tcp_init(loop, &rx->server);
  rx->server.data = rx;
  assert_int_equal(uv_tcp_bind(&rx->server, (struct sockaddr *)&a, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)&rx->server, 16, on_rx_connection), 0);
  struct sockaddr_in got;
  int len = sizeof(got);
  uv_tcp_getsockname(&rx->server, (struct sockaddr *)&got, &len);
  rx->port = ntohs(got.sin_port);
  rx->started = 1;
}

static void receiver_stop(uv_loop_t *loop, receiver *rx) {
  if (rx->started) uv_close((uv_handle_t *)&rx->server, NULL);
  for (int i = 0; i < MAX_REQS; i++)
    if (rx->conns[i] && !uv_is_closing((uv_handle_t *)&rx->conns[i]->tcp))
      uv_close((uv_handle_t *)&rx->conns[i]->tcp, on_rconn_closed);
  uv_run(loop, UV_RUN_DEFAULT);
  for (int i = 0; i < rx->nreqs; i++)
    free(rx->reqs[i]);
}

static json_t *request_body(const receiver *rx, int i) {
  const char *body = strstr(rx->reqs[i], "\r\n\r\n");
  assert_non_null(body);
  json_error_t e;
  json_t *j = json_loads(body + 4, 0, &e);
  assert_non_null(j);
  return j;
}

/* ---- fixture --------------------------------------------------------------- */

typedef struct fixture {
  uv_loop_t loop;
  char dir[64];
  char script[128];
  char out[128];
  receiver rx;
  uint64_t clock_ms;
  px_events *ev;
  uv_timer_t poll;
  int expired;
} fixture;

static uint64_t fake_now(void *arg) { return ((fixture *)arg)->clock_ms; }

static void write_script(fixture *f, const char *body) {
  FILE *s = fopen(f->script, "w");
  assert_non_null(s);
  fprintf(s, "#!/bin/sh\n%s\n", body);
  fclose(s);
  assert_int_equal(chmod(f->script, 0700), 0);
}

static int setup(void **state) {
  fixture *f = calloc(1, sizeof(*f));
  uv_loop_init(&f->loop);
  snprintf(f->dir, sizeof(f->dir), "/tmp/px-events-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  snprintf(f->script, sizeof(f->script), "%s/hook.sh", f->dir);
  snprintf(f->out, sizeof(f->out), "%s/env.txt", f->dir);
  f->clock_ms = 1780000000000ull;
  f->rx.default_status = 200;
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture *f = *state;
  if (f->ev) px_events_close(f->ev);
  receiver_stop(&f->loop, &f->rx);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
  assert_int_equal(system(cmd), 0);
  free(f);
  return 0;
}

static void on_poll(uv_timer_t *t) { (void)t; }
static void on_deadline(uv_timer_t *t) { ((fixture *)t->data)->expired = 1; }

/* Runs the loop until the notifier is idle (and the receiver has `nreqs`),
 * or fails after `ms`. A 5 ms tick re-checks the condition. */
static void run_until_idle(fixture *f, int nreqs, uint64_t ms) {
  uv_timer_t deadline;
  uv_timer_init(&f->loop, &deadline);
  deadline.data = f;
  f->expired = 0;
  uv_timer_start(&deadline, on_deadline, ms, 0);
  uv_timer_init(&f->loop, &f->poll);
  uv_timer_start(&f->poll, on_poll, 5, 5);
  while (!f->expired && (px_events_pending(f->ev) > 0 || f->rx.nreqs < nreqs))
    uv_run(&f->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&deadline, NULL);
  uv_close((uv_handle_t *)&f->poll, NULL);
  uv_run(&f->loop, UV_RUN_NOWAIT);
  assert_false(f->expired);
}

static char *slurp(const char *path) {
  FILE *fp = fopen(path, "r");
  if (fp == NULL) return NULL;
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

/* Starts the receiver and points a webhook at it. */
static void use_receiver(fixture *f, px_events_options *o, char *url, size_t cap) {
  receiver_start(&f->loop, &f->rx);
  snprintf(url, cap, "http://127.0.0.1:%d/", f->rx.port);
  o->webhook = url;
}

static void open_events(fixture *f, const px_events_options *o) {
  char err[128];
  f->ev = px_events_new(&f->loop, o, err, sizeof(err));
  assert_non_null(f->ev);
}

/* Emits `e`, runs until idle, and returns how long that took in ms. */
static uint64_t emit_timed(fixture *f, const px_event *e, int nreqs, px_events_counters *c) {
  uv_update_time(&f->loop); /* timers start from the loop's clock */
  uint64_t t0 = uv_hrtime();
  px_events_emit(f->ev, e);
  run_until_idle(f, nreqs, 10000);
  px_events_get_counters(f->ev, c);
  return (uv_hrtime() - t0) / 1000000;
}

static const char *names2[] = {"a.example.com", "b.example.com"};

/* ---- tests ----------------------------------------------------------------- */

static void command_gets_the_event_in_its_environment(void **state) {
  fixture *f = *state;
  write_script(f, "env > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"");
  setenv("PORTICO_STALE", "from-outside", 1);
  const char *argv[] = {f->script, f->out, NULL};
  px_events_options o = {0};
  o.command = argv;
  open_events(f, &o);
  px_event e = {PX_EVENT_FAILED,
                names2,
                2,
                1780003600,
                "Error creating new order :: too many",
                "urn:ietf:params:acme:error:rateLimited",
                3,
                1780007200};
  px_events_emit(f->ev, &e);
  run_until_idle(f, 0, 10000);
  char *env = slurp(f->out);
  assert_non_null(env);
  assert_non_null(strstr(env, "\nPORTICO_EVENT=failed\n"));
  assert_non_null(strstr(env, "\nPORTICO_NAMES=a.example.com b.example.com\n"));
  assert_non_null(strstr(env, "\nPORTICO_NOT_AFTER=2026-05-28T21:26:40Z\n"));
  assert_non_null(strstr(env, "\nPORTICO_ERROR=Error creating new order :: too many\n"));
  assert_non_null(strstr(env, "\nPORTICO_ERROR_TYPE=urn:ietf:params:acme:error:rateLimited\n"));
  assert_non_null(strstr(env, "\nPORTICO_ATTEMPT=3\n"));
  assert_non_null(strstr(env, "\nPORTICO_NEXT_ATTEMPT=2026-05-28T22:26:40Z\n"));
  assert_non_null(strstr(env, "\nPORTICO_SUPPRESSED=0\n"));
  assert_non_null(strstr(env, "\nPATH=")); /* the rest of the environment is kept */
  assert_null(strstr(env, "PORTICO_STALE"));
  unsetenv("PORTICO_STALE");
  px_events_counters c;
  px_events_get_counters(f->ev, &c);
  assert_int_equal(c.emitted[PX_EVENT_FAILED], 1);
  assert_int_equal(c.command_failed, 0);
}

static void failing_and_missing_commands_are_counted(void **state) {
  fixture *f = *state;
  write_script(f, "exit 3");
  const char *argv[] = {f->script, NULL};
  px_events_options o = {0};
  o.command = argv;
  open_events(f, &o);
  px_event e = {PX_EVENT_OBTAINED, names2, 1, 1780003600, NULL, NULL, 0, 0};
  px_events_emit(f->ev, &e);
  run_until_idle(f, 0, 10000);
  px_events_counters c;
  px_events_get_counters(f->ev, &c);
  assert_int_equal(c.command_failed, 1);
  px_events_close(f->ev);
  /* No shell: a command line with spaces is one program name, not found. */
  const char *bad[] = {"/bin/echo hello", NULL};
  o.command = bad;
  open_events(f, &o);
  px_events_emit(f->ev, &e);
  run_until_idle(f, 0, 10000);
  px_events_get_counters(f->ev, &c);
  assert_int_equal(c.command_failed, 1);
  const char *empty[] = {NULL};
  o.command = empty;
  char err[128];
  assert_null(px_events_new(&f->loop, &o, err, sizeof(err)));
}

/* True when `pid` is gone or a zombie waiting for its reaper. */
static int process_dead(pid_t pid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  char *stat = slurp(path);
  if (stat == NULL) return 1;
  char *paren = strrchr(stat, ')');
  return paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static void command_is_killed_with_its_children_after_the_timeout(void **state) {
  fixture *f = *state;
  /* The script starts a child and waits: the whole group must go. */
  write_script(f, "sleep 60 & echo $! > \"$1.tmp\" && mv \"$1.tmp\" \"$1\"; wait");
  const char *argv[] = {f->script, f->out, NULL};
  px_events_options o = {0};
  o.command = argv;
  o.command_timeout_ms = 300;
  open_events(f, &o);
  px_event e = {PX_EVENT_EXPIRING, names2, 1, 1780003600, "renewal failing", NULL, 4, 0};
  px_events_counters c;
  uint64_t elapsed_ms = emit_timed(f, &e, 0, &c);
  assert_true(elapsed_ms >= 290 && elapsed_ms < 5000);
  assert_int_equal(c.command_failed, 1);
  char *pidtext = slurp(f->out);
  assert_non_null(pidtext);
  pid_t child = (pid_t)atoi(pidtext);
  assert_true(child > 0);
  int dead = 0;
  for (int i = 0; i < 400 && !(dead = process_dead(child)); i++)
    usleep(5000);
  assert_true(dead);
}

static void queue_is_bounded_and_close_kills_what_runs(void **state) {
  fixture *f = *state;
  write_script(f, "exec sleep 60");
  const char *argv[] = {f->script, NULL};
  px_events_options o = {0};
  o.command = argv;
  o.command_max_running = 1;
  o.queue_max = 1;
  open_events(f, &o);
  const char *n1[] = {"one.example"}, *n2[] = {"two.example"}, *n3[] = {"three.example"};
  px_event e = {PX_EVENT_RENEWED, n1, 1, 1780003600, NULL, NULL, 0, 0};
  px_events_emit(f->ev, &e);
  e.names = n2;
  px_events_emit(f->ev, &e);
  e.names = n3;
  px_events_emit(f->ev, &e);
  px_events_counters c;
  px_events_get_counters(f->ev, &c);
  assert_int_equal(c.dropped[PX_EVENT_RENEWED], 1);
  assert_int_equal(px_events_pending(f->ev), 2);
  uint64_t t0 = uv_hrtime();
  px_events_close(f->ev);
  f->ev = NULL;
  uv_run(&f->loop, UV_RUN_DEFAULT); /* ends when the killed command is reaped */
  assert_true((uv_hrtime() - t0) / 1000000 < 5000);
}

static void webhook_posts_the_event_as_json(void **state) {
  fixture *f = *state;
  receiver_start(&f->loop, &f->rx);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook?token=t", f->rx.port);
  px_events_options o = {0};
  o.webhook = url;
  o.now_ms = fake_now;
  o.now_arg = f;
  open_events(f, &o);
  px_event e = {PX_EVENT_REVOKED, names2, 2, 1780003600, NULL, NULL, 0, 0};
  px_events_emit(f->ev, &e);
  run_until_idle(f, 1, 10000);
  assert_int_equal(f->rx.nreqs, 1);
  assert_memory_equal(f->rx.reqs[0], "POST /hook?token=t HTTP/1.1\r\n", 29);
  assert_non_null(strstr(f->rx.reqs[0], "Content-Type: application/json\r\n"));
  json_t *j = request_body(&f->rx, 0);
  assert_string_equal(json_string_value(json_object_get(j, "event")), "revoked");
  json_t *names = json_object_get(j, "names");
  assert_int_equal(json_array_size(names), 2);
  assert_string_equal(json_string_value(json_array_get(names, 1)), "b.example.com");
  assert_string_equal(json_string_value(json_object_get(j, "not_after")), "2026-05-28T21:26:40Z");
  assert_string_equal(json_string_value(json_object_get(j, "time")), "2026-05-28T20:26:40Z");
  assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 0);
  assert_null(json_object_get(j, "error"));
  json_decref(j);
  o.webhook = "https://127.0.0.1/"; /* refused: the webhook client is plain HTTP */
  char err[128];
  assert_null(px_events_new(&f->loop, &o, err, sizeof(err)));
  assert_non_null(strstr(err, "http://"));
}

static void webhook_retries_with_backoff_then_gives_up(void **state) {
  fixture *f = *state;
  f->rx.statuses[0] = 500;
  f->rx.statuses[1] = 503;
  f->rx.statuses[2] = 204; /* the third attempt succeeds */
  f->rx.default_status = 500;
  char url[64];
  px_events_options o = {0};
  use_receiver(f, &o, url, sizeof(url));
  o.webhook_backoff_ms = 20;
  open_events(f, &o);
  const char *n1[] = {"one.example"}, *n2[] = {"two.example"};
  px_event e = {PX_EVENT_FAILED, n1, 1, 0, "boom", NULL, 1, 0};
  px_events_emit(f->ev, &e);
  run_until_idle(f, 3, 10000);
  px_events_counters c;
  px_events_get_counters(f->ev, &c);
  assert_int_equal(f->rx.nreqs, 3);
  assert_int_equal(c.webhook_failed, 0);
  e.names = n2; /* every answer is 500 now: 1 + 2 retries, then give up */
  px_events_emit(f->ev, &e);
  run_until_idle(f, 6, 10000);
  px_events_get_counters(f->ev, &c);
  assert_int_equal(f->rx.nreqs, 6);
  assert_int_equal(c.webhook_failed, 1);
  json_t *j = request_body(&f->rx, 5);
  assert_string_equal(json_string_value(json_object_get(j, "error")), "boom");
  assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 1);
  json_decref(j);
}

static void webhook_times_out(void **state) {
  fixture *f = *state;
  f->rx.default_status = 0; /* the receiver reads the request and never answers */
  char url[64];
  px_events_options o = {0};
  use_receiver(f, &o, url, sizeof(url));
  o.webhook_timeout_ms = 150;
  o.webhook_retries = (unsigned)-1; /* none */
  open_events(f, &o);
  px_event e = {PX_EVENT_EXPIRING, names2, 2, 1780003600, NULL, NULL, 0, 0};
  px_events_counters c;
  uint64_t elapsed_ms = emit_timed(f, &e, 1, &c);
  assert_true(elapsed_ms >= 140 && elapsed_ms < 5000);
  assert_int_equal(f->rx.nreqs, 1);
  assert_int_equal(c.webhook_failed, 1);
}

static void repeated_events_are_suppressed_and_counted(void **state) {
  fixture *f = *state;
  char url[64];
  px_events_options o = {0};
  use_receiver(f, &o, url, sizeof(url));
  o.min_interval_ms = 300000;
  o.now_ms = fake_now;
  o.now_arg = f;
  open_events(f, &o);
  const char *n1[] = {"one.example"}, *n2[] = {"two.example"};
  px_event e = {PX_EVENT_FAILED, n1, 1, 0, "boom", NULL, 1, 0};
  px_events_emit(f->ev, &e); /* sent */
  run_until_idle(f, 1, 10000);
  f->clock_ms += 1000;
  e.attempt = 2;
  px_events_emit(f->ev, &e); /* within the interval: held back */
  f->clock_ms += 3600 * 1000;
  e.attempt = 1;
  px_events_emit(f->ev, &e); /* an attempt already reported: held back */
  e.attempt = 2;
  e.type = PX_EVENT_EXPIRING;
  px_events_emit(f->ev, &e); /* another type: sent */
  e.type = PX_EVENT_FAILED;
  e.names = n2;
  px_events_emit(f->ev, &e); /* another name: sent */
  run_until_idle(f, 3, 10000);
  f->clock_ms += 1000;
  e.names = n1;
  e.attempt = 3;
  px_events_emit(f->ev, &e); /* a new attempt after the interval: sent, with the count */
  run_until_idle(f, 4, 10000);
  assert_int_equal(f->rx.nreqs, 4);
  json_t *j = request_body(&f->rx, 3);
  assert_string_equal(json_string_value(json_object_get(j, "event")), "failed");
  assert_int_equal(json_integer_value(json_object_get(j, "attempt")), 3);
  assert_int_equal(json_integer_value(json_object_get(j, "suppressed")), 2);
  json_decref(j);
  px_events_counters c;
  px_events_get_counters(f->ev, &c);
  assert_int_equal(c.emitted[PX_EVENT_FAILED], 5);
  assert_int_equal(c.suppressed[PX_EVENT_FAILED], 2);
  assert_int_equal(c.emitted[PX_EVENT_EXPIRING], 1);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(command_gets_the_event_in_its_environment, setup, teardown),
      cmocka_unit_test_setup_teardown(failing_and_missing_commands_are_counted, setup, teardown),
      cmocka_unit_test_setup_teardown(command_is_killed_with_its_children_after_the_timeout, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(queue_is_bounded_and_close_kills_what_runs, setup, teardown),
      cmocka_unit_test_setup_teardown(webhook_posts_the_event_as_json, setup, teardown),
      cmocka_unit_test_setup_teardown(webhook_retries_with_backoff_then_gives_up, setup, teardown),
      cmocka_unit_test_setup_teardown(webhook_times_out, setup, teardown),
      cmocka_unit_test_setup_teardown(repeated_events_are_suppressed_and_counted, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
