/*
 * Running an operator's program (acme/life/command.h).
 */
#include "acme/life/command.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "tls/unconst.h"

/* How long stderr is still read after the program exited (a child it left
 * behind may hold the pipe open). */
#define DRAIN_MS 1000

struct px_command {
  uv_process_t proc;
  uv_timer_t timer;
  uv_pipe_t out;
  int capture;
  int handles;
  int exited;
  int cancelled;
  int reading; /* the pipe is still open for reading */
  px_command_result res;
  const char *spawn_err;
  px_command_cb cb;
  void *arg;
  size_t have;
  char buf[PX_COMMAND_OUTPUT_MAX + 1];
  char scratch[256];
};

static void on_closed(uv_handle_t *h) {
  px_command *c = h->data;
  if (--c->handles == 0) free(c);
}

static void close_handle(px_command *c, uv_handle_t *h) {
  if (h->data == c && !uv_is_closing(h)) uv_close(h, on_closed);
}

/* Reports once the process has exited and its output is read to the end. */
static void maybe_report(px_command *c) {
  if (!c->exited || c->reading) return;
  if (!c->cancelled) {
    c->buf[c->have] = '\0';
    /* Trailing newlines make poor log lines. */
    while (c->have > 0 && (c->buf[c->have - 1] == '\n' || c->buf[c->have - 1] == '\r'))
      c->buf[--c->have] = '\0';
    c->res.output = c->buf;
    c->res.spawn_err = c->spawn_err;
    c->cancelled = 1;
    c->cb(c->arg, &c->res);
  }
  close_handle(c, (uv_handle_t *)&c->proc);
  close_handle(c, (uv_handle_t *)&c->timer);
  close_handle(c, (uv_handle_t *)&c->out);
}

/* The program exited but something it started still holds its stderr:
 * what was read is enough. */
static void on_drain_timeout(uv_timer_t *t) {
  px_command *c = t->data;
  if (!c->reading) return;
  c->reading = 0;
  uv_read_stop((uv_stream_t *)&c->out);
  maybe_report(c);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig) {
  px_command *c = p->data;
  uv_timer_stop(&c->timer);
  c->res.status = status;
  c->res.signal = sig;
  c->exited = 1;
  if (c->reading) uv_timer_start(&c->timer, on_drain_timeout, DRAIN_MS, 0);
  maybe_report(c);
}

static void on_timeout(uv_timer_t *t) {
  px_command *c = t->data;
  c->res.timed_out = 1;
  /* Its own session: the whole group goes, a script's children too. */
  if (kill(-c->proc.pid, SIGKILL) != 0) uv_process_kill(&c->proc, SIGKILL);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  (void)hint;
  px_command *c = h->data;
  if (c->have < PX_COMMAND_OUTPUT_MAX) {
    b->base = c->buf + c->have;
    b->len = PX_COMMAND_OUTPUT_MAX - c->have;
  } else { /* full: read on and drop, so the program never blocks on us */
    b->base = c->scratch;
    b->len = sizeof(c->scratch);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  px_command *c = s->data;
  if (n > 0 && b->base != c->scratch) c->have += (size_t)n;
  if (n < 0) {
    c->reading = 0;
    uv_read_stop(s);
    maybe_report(c);
  }
}

static void on_spawn_failed(uv_timer_t *t) {
  px_command *c = t->data;
  c->exited = 1;
  c->reading = 0;
  c->res.status = -1;
  maybe_report(c);
}

px_command *px_command_run(uv_loop_t *loop, char *const *argv, char *const *env,
                           uint64_t timeout_ms, int capture, px_command_cb cb, void *arg) {
  px_command *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->cb = cb;
  c->arg = arg;
  c->capture = capture;
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  c->handles++;
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  if (capture) {
    uv_pipe_init(loop, &c->out, 0);
    c->out.data = c;
    c->handles++;
    /* stderr is read; stdout is dropped (one pipe cannot serve both). */
    stdio[1].flags = UV_IGNORE;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&c->out;
  } else {
    stdio[1].flags = UV_INHERIT_FD; /* joins portico's stderr, where the log goes */
    stdio[1].data.fd = 2;
    stdio[2] = stdio[1];
  }
  uv_process_options_t po = {0};
  po.exit_cb = on_exit_cb;
  po.file = argv[0];
  po.args = px_unconst(argv);
  po.env = px_unconst(env);
  po.stdio = stdio;
  po.stdio_count = 3;
  po.flags = UV_PROCESS_DETACHED; /* setsid(): its own process group to kill */
  c->proc.data = c;
  int r = uv_spawn(loop, &c->proc, &po);
  c->handles++; /* uv_spawn initialises the handle even when it fails */
  if (r != 0) {
    c->spawn_err = uv_strerror(r);
    uv_timer_start(&c->timer, on_spawn_failed, 0, 0);
    return c;
  }
  if (capture && uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read) == 0) c->reading = 1;
  uv_timer_start(&c->timer, on_timeout, timeout_ms ? timeout_ms : 30000, 0);
  return c;
}

void px_command_kill(px_command *c) {
  if (c == NULL || c->cancelled) return;
  c->cancelled = 1;
  if (!c->exited && c->spawn_err == NULL && kill(-c->proc.pid, SIGKILL) != 0)
    uv_process_kill(&c->proc, SIGKILL);
  if (c->exited) {
    close_handle(c, (uv_handle_t *)&c->proc);
    close_handle(c, (uv_handle_t *)&c->timer);
    close_handle(c, (uv_handle_t *)&c->out);
  }
  /* else on_exit_cb closes them once the kill lands */
  else if (c->spawn_err) {
    close_handle(c, (uv_handle_t *)&c->proc);
    close_handle(c, (uv_handle_t *)&c->timer);
    close_handle(c, (uv_handle_t *)&c->out);
  } else {
    c->reading = 0;
    if (c->capture) uv_read_stop((uv_stream_t *)&c->out);
  }
}

void px_command_expire(px_command *c) {
  if (c == NULL || c->cancelled || c->exited || c->spawn_err) return;
  uv_timer_stop(&c->timer);
  on_timeout(&c->timer);
}

int px_command_pid(const px_command *c) { return c && !c->exited ? c->proc.pid : 0; }
