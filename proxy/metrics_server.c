/*
 * The metrics listener (proxy/metrics_server.h).
 */
#include "proxy/metrics_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "tls/log.h"

typedef struct mconn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  struct px_metrics_server *srv;
  struct mconn *prev, *next;
  int pending_closes;
  int closed;
  uv_write_t wr;
  px_mtext out;
  size_t len;
  char buf[PX_METRICS_REQUEST_MAX];
} mconn;

struct px_metrics_server {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t stop;
  uv_thread_t thread;
  px_metrics *m;
  px_acme_manager *acme;
  mconn *conns;
  size_t nconns;
};

static void on_conn_closed(uv_handle_t *h) {
  mconn *c = h->data;
  if (--c->pending_closes > 0) return;
  px_mtext_dispose(&c->out);
  free(c);
}

static void conn_close(mconn *c) {
  if (c->closed) return;
  c->closed = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    c->srv->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->srv->nconns--;
  c->pending_closes = 2;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_written(uv_write_t *req, int status) {
  (void)status;
  conn_close(req->data);
}

/* Sends the whole answer (head, and the body unless `head_only`) from one
 * buffer kept in c->out, then closes: one request per connection. */
static void answer(mconn *c, int status, const char *reason, const char *type, const char *body,
                   size_t blen, int head_only) {
  char head[512];
  int n = snprintf(head, sizeof(head),
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                   status, reason, type, blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
  size_t total = (size_t)n + (head_only ? 0 : blen);
  char *all = malloc(total);
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (all == NULL) {
    conn_close(c);
    return;
  }
  memcpy(all, head, (size_t)n);
  if (!head_only) memcpy(all + n, body, blen); /* body may be c->out's: copied first */
  px_mtext_dispose(&c->out);
  c->out.buf = all;
  c->out.len = total;
  c->wr.data = c;
  uv_buf_t b = uv_buf_init(all, (unsigned)total);
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0) conn_close(c);
}

static void answer_text(mconn *c, int status, const char *reason, int head_only) {
  answer(c, status, reason, "text/plain; charset=utf-8", reason, strlen(reason), head_only);
}

/* The request line of a complete head: GET or HEAD of /metrics (a query
 * is ignored). */
static void handle(mconn *c) {
  const char *line = c->buf;
  const char *sp1 = memchr(line, ' ', c->len);
  const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', c->len - (size_t)(sp1 + 1 - line)) : NULL;
  if (sp1 == NULL || sp2 == NULL || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
    answer_text(c, 400, "Bad Request", 0);
    return;
  }
  size_t mlen = (size_t)(sp1 - line), tlen = (size_t)(sp2 - sp1 - 1);
  int head_only = mlen == 4 && memcmp(line, "HEAD", 4) == 0;
  if (!head_only && !(mlen == 3 && memcmp(line, "GET", 3) == 0)) {
    answer_text(c, 405, "Method Not Allowed", 0);
    return;
  }
  const char *target = sp1 + 1;
  if (!(tlen >= 8 && memcmp(target, "/metrics", 8) == 0 && (tlen == 8 || target[8] == '?'))) {
    answer_text(c, 404, "Not Found", head_only);
    return;
  }
  px_mtext_init(&c->out, PX_METRICS_BODY_MAX);
  px_metrics_render(c->srv->m, c->srv->acme, PX_METRICS_ACME_WAIT_MS, &c->out);
  if (c->out.failed) {
    px_log(PX_LOG_ERROR, "metrics: the answer exceeds %u bytes or memory ran out",
           PX_METRICS_BODY_MAX);
    answer_text(c, 500, "Internal Server Error", head_only);
    return;
  }
  answer(c, 200, "OK", PX_MTEXT_CONTENT_TYPE, c->out.buf ? c->out.buf : "", c->out.len, head_only);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  mconn *c = h->data;
  buf->base = c->buf + c->len;
  buf->len = sizeof(c->buf) - 1 - c->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  mconn *c = s->data;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  c->len += (size_t)nread;
  c->buf[c->len] = '\0';
  if (strstr(c->buf, "\r\n\r\n") || strstr(c->buf, "\n\n")) {
    handle(c);
    return;
  }
  if (c->len >= sizeof(c->buf) - 1) answer_text(c, 431, "Request Header Fields Too Large", 0);
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_accept(uv_stream_t *l, int status) {
  px_metrics_server *srv = l->data;
  if (status != 0) return;
  mconn *c = calloc(1, sizeof(*c));
  if (c == NULL) return;
  c->srv = srv;
  uv_tcp_init(&srv->loop, &c->tcp);
  uv_timer_init(&srv->loop, &c->timer);
  c->tcp.data = c->timer.data = c;
  c->next = srv->conns;
  if (srv->conns) srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || srv->nconns > PX_METRICS_CONNS_MAX ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    conn_close(c);
    return;
  }
  uv_timer_start(&c->timer, on_timeout, PX_METRICS_TIMEOUT_MS, 0);
}

static void on_stop(uv_async_t *a) {
  px_metrics_server *srv = a->data;
  while (srv->conns)
    conn_close(srv->conns);
  uv_close((uv_handle_t *)&srv->listener, NULL);
  uv_close((uv_handle_t *)&srv->stop, NULL);
}

static void run(void *arg) {
  px_metrics_server *srv = arg;
  uv_run(&srv->loop, UV_RUN_DEFAULT);
}

px_metrics_server *px_metrics_server_start(const px_listen_addr *addr, px_metrics *m,
                                           px_acme_manager *acme) {
  px_metrics_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL) {
    px_log(PX_LOG_ERROR, "metrics: out of memory");
    return NULL;
  }
  srv->m = m;
  srv->acme = acme;
  uv_loop_init(&srv->loop);
  uv_tcp_init(&srv->loop, &srv->listener);
  uv_async_init(&srv->loop, &srv->stop, on_stop);
  srv->listener.data = srv->stop.data = srv;
  int r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr->ss, 0);
  if (r == 0) r = uv_listen((uv_stream_t *)&srv->listener, 64, on_accept);
  if (r == 0) r = uv_thread_create(&srv->thread, run, srv);
  if (r != 0) {
    px_log(PX_LOG_ERROR, "admin.metrics: cannot listen on %s: %s", addr->text, uv_strerror(r));
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->stop, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    free(srv);
    return NULL;
  }
  px_log(PX_LOG_INFO, "metrics: serving http://%s/metrics", addr->text);
  return srv;
}

void px_metrics_server_stop(px_metrics_server *srv) {
  if (srv == NULL) return;
  uv_async_send(&srv->stop);
  uv_thread_join(&srv->thread);
  uv_loop_close(&srv->loop);
  free(srv);
}
