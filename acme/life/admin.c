#include "acme/life/admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "acme/names.h"
#include "tls/ipname.h"
#include "tls/log.h"

struct px_admin {
  uv_loop_t *loop;
  uv_pipe_t server;
  px_admin_ops ops;
  px_admin_options o;
  char *path;
  ino_t ino; /* the socket file this server bound */
  dev_t dev;
  struct conn *conns;
  size_t nconns;
  int closing;
  int closes; /* handles whose close callback is pending, the server's included */
};

/* A deferred answer (admin.h). `c` is NULL once the connection closed or
 * was answered otherwise; the owner still frees it with
 * px_admin_reply_send. */
struct px_admin_reply {
  struct conn *c;
  char pending[2 * PX_ACME_NAME_MAX + 160];  /* the answer when the wait passes */
  char stopping[2 * PX_ACME_NAME_MAX + 160]; /* ...when the server closes first */
};

typedef struct conn {
  struct conn *next;
  px_admin *a;
  uv_pipe_t pipe;
  uv_timer_t timer;
  uv_write_t write;
  char *out; /* the response being written */
  size_t len;
  int closes;
  int answered;
  px_admin_reply *reply; /* a deferred answer the connection waits for */
  int deferred;          /* it waited for one (its timer was the wait) */
  char in[];             /* max_request + 1 bytes */
} conn;

static const char *const reasons[] = {"unspecified", "keyCompromise",
                                      NULL,          "affiliationChanged",
                                      "superseded",  "cessationOfOperation"};

int px_admin_reason_parse(const char *s) {
  for (int i = 0; i < (int)(sizeof(reasons) / sizeof(reasons[0])); i++)
    if (reasons[i] && strcmp(reasons[i], s) == 0) return i;
  return -1;
}

static void maybe_free(px_admin *a) {
  if (a->closing && a->closes == 0 && a->conns == NULL) {
    free(a->path);
    free(a);
  }
}

static void on_conn_closed(uv_handle_t *h) {
  conn *c = h->data;
  if (--c->closes > 0) return;
  px_admin *a = c->a;
  for (conn **p = &a->conns; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  a->nconns--;
  free(c->out);
  free(c);
  maybe_free(a);
}

/* The connection no longer waits for its deferred answer. */
static void detach_reply(conn *c) {
  if (c->reply) c->reply->c = NULL;
  c->reply = NULL;
}

static void conn_close(conn *c) {
  detach_reply(c);
  if (c->closes) return;
  c->closes = 2;
  uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_written(uv_write_t *w, int status) { conn_close(w->data); }

static void on_timeout(uv_timer_t *t);

/* Sends `body` (consumed) as the one response line, then closes. */
static void respond(conn *c, json_t *body) {
  if (c->answered) {
    json_decref(body);
    return;
  }
  c->answered = 1;
  detach_reply(c);
  if (c->deferred) /* the wait is over: the write gets the usual bound */
    uv_timer_start(&c->timer, on_timeout, c->a->o.timeout_ms, 0);
  uv_read_stop((uv_stream_t *)&c->pipe);
  char *s = body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(body);
  size_t len = s ? strlen(s) : 0;
  c->out = s ? realloc(s, len + 2) : NULL;
  if (c->out == NULL) {
    free(s);
    conn_close(c);
    return;
  }
  c->out[len] = '\n';
  c->out[len + 1] = '\0';
  c->write.data = c;
  uv_buf_t b = uv_buf_init(c->out, (unsigned)(len + 1));
  if (uv_write(&c->write, (uv_stream_t *)&c->pipe, &b, 1, on_written) != 0) conn_close(c);
}

static void respond_error(conn *c, const char *msg) {
  respond(c, json_pack("{s:s}", "error", msg));
}

static void respond_result(conn *c, int r, const char *err) {
  if (r == 0)
    respond(c, json_pack("{s:b}", "ok", 1));
  else
    respond_error(c, err[0] ? err : "failed");
}

/* Normalises the request's "name" into `out`; on failure answers. A leading
 * "*." (a wildcard certificate's name) is kept. */
static int request_name(conn *c, json_t *req, char *out, size_t cap) {
  const char *name = json_string_value(json_object_get(req, "name"));
  if (name == NULL) {
    respond_error(c, "this command needs a \"name\"");
    return -1;
  }
  /* A `tls: acme` site may name an IP address (RFC 8738): its job is
   * under the address's canonical text. */
  if (px_ip_name_normalize(name, strlen(name), out, cap) > 0) return 0;
  size_t skip = strncmp(name, "*.", 2) == 0 ? 2 : 0;
  int n = px_acme_name_normalize(name + skip, strlen(name + skip), out + skip, cap - skip);
  if (n < 0) {
    char msg[128];
    snprintf(msg, sizeof(msg), "invalid name: %s", px_acme_name_strerror(n));
    respond_error(c, msg);
    return -1;
  }
  if (skip) memcpy(out, "*.", 2);
  return 0;
}

/* Answers with the job (or jobs) an operation returned, or its error. */
static void respond_json(conn *c, json_t *r, const char *err) {
  if (r)
    respond(c, r);
  else
    respond_error(c, err[0] ? err : "failed");
}

/* A pending answer with its two fallbacks: the wait passes first, or the
 * server closes first. `what` is "revoke NAME". */
static px_admin_reply *reply_new(conn *c, const char *what, const char *name, uint64_t wait_ms) {
  px_admin_reply *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  r->c = c;
  snprintf(r->pending, sizeof(r->pending),
           "%s: still in progress after %llu s; see `portico ctl show %s`", what,
           (unsigned long long)((wait_ms + 999) / 1000), name);
  snprintf(r->stopping, sizeof(r->stopping),
           "%s: portico is stopping before the outcome is known; see `portico ctl show %s` "
           "once it runs again",
           what, name);
  return r;
}

void px_admin_reply_send(px_admin_reply *r, json_t *body) {
  if (r == NULL) {
    json_decref(body);
    return;
  }
  conn *c = r->c;
  if (c) detach_reply(c);
  free(r);
  if (c == NULL) {
    json_decref(body);
    return;
  }
  respond(c, body);
}

/* The wait a request asks for ("wait", seconds), within max_wait_ms. */
static uint64_t wait_of(const conn *c, json_t *req) {
  uint64_t max = c->a->o.max_wait_ms;
  json_t *w = json_object_get(req, "wait");
  if (!json_is_integer(w) || json_integer_value(w) <= 0) return max;
  if ((uint64_t)json_integer_value(w) >= max / 1000) return max;
  return (uint64_t)json_integer_value(w) * 1000;
}

enum { CMD_STATUS, CMD_SHOW, CMD_RETRY, CMD_RENEW, CMD_REVOKE, CMD_REOPEN, CMD_RELOAD, NCMDS };
static const char *const commands[NCMDS] = {"status", "show",   "retry", "renew",
                                            "revoke", "reopen", "reload"};

/* A reload's answer: every configuration error, one per line, is bounded
 * by this (the rest is cut). */
#define RELOAD_MESSAGE_MAX 16384

static int supported(const px_admin_ops *ops, int cmd) {
  switch (cmd) {
  case CMD_STATUS:
    return ops->status != NULL;
  case CMD_SHOW:
    return ops->show != NULL;
  case CMD_RETRY:
    return ops->retry != NULL;
  case CMD_RENEW:
    return ops->renew != NULL;
  case CMD_REOPEN:
    return ops->reopen != NULL;
  case CMD_RELOAD:
    return ops->reload != NULL;
  default:
    return ops->revoke != NULL;
  }
}

/* revoke keeps the connection open for its outcome, at most its wait. */
static void defer_revoke(conn *c, json_t *req, const char *name, int reason) {
  const px_admin_ops *ops = &c->a->ops;
  char what[PX_ACME_NAME_MAX + 16], err[512] = "";
  snprintf(what, sizeof(what), "revoke %s", name);
  uint64_t wait_ms = wait_of(c, req);
  px_admin_reply *r = reply_new(c, what, name, wait_ms);
  if (r == NULL) {
    respond_error(c, "out of memory");
    return;
  }
  c->reply = r;
  c->deferred = 1;
  if (ops->revoke(ops->ctx, name, reason, r, err, sizeof(err)) != 0) {
    c->reply = NULL;
    free(r);
    respond_error(c, err[0] ? err : "failed");
    return;
  }
  if (c->reply) /* not answered at once */
    uv_timer_start(&c->timer, on_timeout, wait_ms, 0);
}

static void dispatch(conn *c, json_t *req) {
  const px_admin_ops *ops = &c->a->ops;
  const char *name_of_cmd = json_string_value(json_object_get(req, "cmd"));
  int cmd = 0;
  while (name_of_cmd && cmd < NCMDS && strcmp(commands[cmd], name_of_cmd) != 0)
    cmd++;
  if (name_of_cmd == NULL || cmd == NCMDS) {
    respond_error(c, "unknown command (status, show, retry, renew, revoke, reopen, reload)");
    return;
  }
  if (!supported(ops, cmd)) {
    respond_error(c, "not supported");
    return;
  }
  if (cmd == CMD_RELOAD) {
    char *msg = calloc(1, RELOAD_MESSAGE_MAX);
    if (msg == NULL) {
      respond_error(c, "out of memory");
      return;
    }
    if (ops->reload(ops->ctx, msg, RELOAD_MESSAGE_MAX) == 0)
      respond(c, json_pack("{s:b,s:s}", "ok", 1, "message", msg));
    else
      respond_error(c, msg[0] ? msg : "reload failed");
    free(msg);
    return;
  }
  char name[PX_ACME_NAME_MAX + 3], err[512] = "";
  if (cmd == CMD_STATUS) {
    respond_json(c, ops->status(ops->ctx, err, sizeof(err)), err);
    return;
  }
  if (cmd == CMD_REOPEN) {
    respond_result(c, ops->reopen(ops->ctx, err, sizeof(err)), err);
    return;
  }
  if (cmd == CMD_RETRY && json_is_true(json_object_get(req, "all"))) {
    respond_result(c, ops->retry(ops->ctx, NULL, err, sizeof(err)), err);
    return;
  }
  if (request_name(c, req, name, sizeof(name)) != 0) return;
  if (cmd == CMD_SHOW) {
    respond_json(c, ops->show(ops->ctx, name, err, sizeof(err)), err);
  } else if (cmd == CMD_RETRY) {
    respond_result(c, ops->retry(ops->ctx, name, err, sizeof(err)), err);
  } else if (cmd == CMD_RENEW) {
    respond_result(c, ops->renew(ops->ctx, name, err, sizeof(err)), err);
  } else {
    const char *why = json_string_value(json_object_get(req, "reason"));
    int reason = why ? px_admin_reason_parse(why) : 0;
    if (reason < 0) {
      respond_error(c, "unknown reason (use unspecified, keyCompromise, affiliationChanged, "
                       "superseded or cessationOfOperation)");
      return;
    }
    defer_revoke(c, req, name, reason);
  }
}

static void handle_request(conn *c) {
  json_error_t je;
  uv_read_stop((uv_stream_t *)&c->pipe); /* one request per connection */
  json_t *req = json_loadb(c->in, c->len, 0, &je);
  if (!json_is_object(req))
    respond_error(c, "the request is not a JSON object");
  else
    dispatch(c, req);
  json_decref(req);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  conn *c = h->data;
  b->base = c->in + c->len;
  b->len = c->a->o.max_request + 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  if (n == UV_EOF && c->len > 0) {
    handle_request(c); /* a request without its newline */
    return;
  }
  if (n < 0) {
    conn_close(c);
    return;
  }
  char *nl = memchr(c->in + c->len, '\n', (size_t)n);
  c->len += (size_t)n;
  if (nl) {
    c->len = (size_t)(nl - c->in);
    handle_request(c);
  } else if (c->len > c->a->o.max_request) {
    respond_error(c, "request too large");
  }
}

/* A connection's life is over; one waiting for an outcome is told it is
 * still in progress. */
static void on_timeout(uv_timer_t *t) {
  conn *c = t->data;
  if (c->reply && !c->answered) {
    respond(c, json_pack("{s:s,s:b}", "error", c->reply->pending, "pending", 1));
    return;
  }
  conn_close(c);
}

/* Only our own user (or root) may drive the manager, whatever the socket
 * file's mode has become. */
static int peer_allowed(uv_pipe_t *p) {
  uv_os_fd_t fd;
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
      getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return 0;
  return cred.uid == 0 || cred.uid == geteuid();
}

static void on_connection(uv_stream_t *server, int status) {
  px_admin *a = server->data;
  if (status != 0 || a->closing) return;
  conn *c = calloc(1, sizeof(*c) + a->o.max_request + 1);
  if (c == NULL) return;
  c->a = a;
  uv_pipe_init(a->loop, &c->pipe, 0);
  uv_timer_init(a->loop, &c->timer);
  c->pipe.data = c;
  c->timer.data = c;
  c->next = a->conns;
  a->conns = c;
  a->nconns++;
  if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
    conn_close(c);
    return;
  }
  if (a->nconns > a->o.max_connections) {
    px_log(PX_LOG_WARN, "admin socket: %zu connections open; closing a new one",
           a->o.max_connections);
    conn_close(c);
    return;
  }
  if (!peer_allowed(&c->pipe)) {
    px_log(PX_LOG_WARN, "admin socket: refused a peer running as another user");
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, a->o.timeout_ms, 0);
  uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

/* Refuses a path that is not a socket or where a server answers; removes a
 * socket file nothing listens on (left by a crash). */
static int clear_path(const char *path, char *err, size_t errlen) {
  struct stat st;
  if (lstat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "admin socket %s: %s", path, strerror(errno));
    return -1;
  }
  if (!S_ISSOCK(st.st_mode)) {
    snprintf(err, errlen, "admin socket %s: the path exists and is not a socket", path);
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "admin socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
  int e = errno;
  close(fd);
  if (r == 0 || e == EAGAIN || e == EINPROGRESS) {
    snprintf(err, errlen, "admin socket %s: another portico is running and answers there", path);
    return -1;
  }
  if (e != ECONNREFUSED) {
    snprintf(err, errlen, "admin socket %s: %s", path, strerror(e));
    return -1;
  }
  if (unlink(path) != 0 && errno != ENOENT) {
    snprintf(err, errlen, "admin socket %s: cannot remove the stale socket: %s", path,
             strerror(errno));
    return -1;
  }
  px_log(PX_LOG_INFO, "admin socket %s: removed a stale socket file", path);
  return 0;
}

/* A bound, listening-ready socket whose file is 0600 from the moment it
 * exists: Linux creates the file with the socket inode's mode, which
 * fchmod sets before bind (then chmod makes sure on other kernels). */
static int bind_socket(px_admin *a, char *err, size_t errlen) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errlen, "admin socket: %s", strerror(errno));
    return -1;
  }
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", a->path);
  struct stat st;
  if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
      chmod(a->path, 0600) != 0 || lstat(a->path, &st) != 0) {
    snprintf(err, errlen, "admin socket %s: %s", a->path, strerror(errno));
    close(fd);
    return -1;
  }
  a->ino = st.st_ino;
  a->dev = st.st_dev;
  return fd;
}

static void on_server_closed(uv_handle_t *h);

px_admin *px_admin_start(uv_loop_t *loop, const px_admin_options *o, const px_admin_ops *ops,
                         char *err, size_t errlen) {
  struct sockaddr_un sa;
  if (o->path == NULL || o->path[0] == '\0' || strlen(o->path) >= sizeof(sa.sun_path)) {
    snprintf(err, errlen, "admin socket: the path is empty or longer than %zu bytes",
             sizeof(sa.sun_path) - 1);
    return NULL;
  }
  if (clear_path(o->path, err, errlen) != 0) return NULL;
  px_admin *a = calloc(1, sizeof(*a));
  if (a == NULL || (a->path = strdup(o->path)) == NULL) {
    free(a);
    snprintf(err, errlen, "admin socket: out of memory");
    return NULL;
  }
  a->loop = loop;
  a->ops = *ops;
  a->o = *o;
  a->o.path = a->path;
  if (!a->o.max_connections) a->o.max_connections = 16;
  if (!a->o.max_request) a->o.max_request = 4096;
  if (!a->o.timeout_ms) a->o.timeout_ms = 5000;
  if (!a->o.max_wait_ms) a->o.max_wait_ms = 45000;
  int fd = bind_socket(a, err, errlen);
  if (fd < 0) {
    free(a->path);
    free(a);
    return NULL;
  }
  uv_pipe_init(loop, &a->server, 0);
  a->server.data = a;
  int r = uv_pipe_open(&a->server, fd);
  if (r != 0) close(fd); /* not adopted by the handle */
  if (r == 0) r = uv_listen((uv_stream_t *)&a->server, 16, on_connection);
  if (r != 0) {
    snprintf(err, errlen, "admin socket %s: %s", a->path, uv_strerror(r));
    unlink(a->path);
    a->closing = 1;
    a->closes = 1;
    uv_close((uv_handle_t *)&a->server, on_server_closed); /* frees `a` */
    return NULL;
  }
  return a;
}

static void on_server_closed(uv_handle_t *h) {
  px_admin *a = h->data;
  a->closes--;
  maybe_free(a);
}

void px_admin_close(px_admin *a) {
  if (a == NULL || a->closing) return;
  a->closing = 1;
  /* Remove the file only while it is still ours: a newer server may have
   * replaced a socket this one no longer answers on. */
  struct stat st;
  if (lstat(a->path, &st) == 0 && st.st_ino == a->ino && st.st_dev == a->dev) unlink(a->path);
  a->closes = 1;
  uv_close((uv_handle_t *)&a->server, on_server_closed);
  for (conn *c = a->conns; c; c = c->next) {
    /* A command waiting for its outcome is told why it ends now. */
    if (c->reply && !c->answered)
      respond(c, json_pack("{s:s,s:b}", "error", c->reply->stopping, "pending", 1));
    conn_close(c);
  }
}

int px_admin_reopen_logs(void *ctx, char *err, size_t errlen) {
  (void)ctx;
  if (px_log_reopen(err, errlen) != 0) return -1;
  px_log(PX_LOG_INFO, "ctl reopen: log files reopened");
  return 0;
}
