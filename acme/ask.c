#include "acme/ask.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ask_req {
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_write_t write;
  px_acme_ask_cb cb;
  void *arg;
  char host[256];
  char port[8];
  char request[1024];
  char response[64]; /* only the status line matters */
  size_t response_len;
  int done;
  int closes;
  int tcp_open;
  int gai_pending; /* the resolver still holds us: close after it returns */
} ask_req;

static void on_closed(uv_handle_t *h) {
  ask_req *r = h->data;
  if (--r->closes == 0) free(r);
}

static void close_all(ask_req *r) {
  r->closes = 1 + r->tcp_open;
  uv_close((uv_handle_t *)&r->timer, on_closed);
  if (r->tcp_open) uv_close((uv_handle_t *)&r->tcp, on_closed);
}

/* Reports once, then closes everything (after the resolver lets go). */
static void finish(ask_req *r, int allowed, const char *why) {
  if (r->done) return;
  r->done = 1;
  r->cb(r->arg, allowed, why);
  if (!r->gai_pending) close_all(r);
}

static void on_timeout(uv_timer_t *t) { finish(t->data, 0, "ask endpoint timed out"); }

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  ask_req *r = h->data;
  buf->base = r->response + r->response_len;
  buf->len = sizeof(r->response) - 1 - r->response_len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  ask_req *r = s->data;
  if (n > 0) r->response_len += (size_t)n;
  r->response[r->response_len] = '\0';
  int status = 0;
  if (strchr(r->response, '\n') || r->response_len >= sizeof(r->response) - 1 || n < 0) {
    if (sscanf(r->response, "HTTP/1.%*d %d", &status) != 1) status = 0;
    char why[64];
    snprintf(why, sizeof(why), status ? "ask endpoint answered %d" : "ask endpoint gave no answer", status);
    finish(r, status >= 200 && status < 300, why);
  }
}

static void on_write(uv_write_t *w, int status) {
  ask_req *r = w->data;
  if (status != 0) finish(r, 0, "ask endpoint: write failed");
}

static void on_connect(uv_connect_t *c, int status) {
  ask_req *r = c->data;
  if (r->done) return;
  if (status != 0) {
    finish(r, 0, "ask endpoint unreachable");
    return;
  }
  uv_buf_t b = uv_buf_init(r->request, (unsigned)strlen(r->request));
  r->write.data = r;
  if (uv_write(&r->write, (uv_stream_t *)&r->tcp, &b, 1, on_write) != 0 ||
      uv_read_start((uv_stream_t *)&r->tcp, on_alloc, on_read) != 0)
    finish(r, 0, "ask endpoint: write failed");
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  ask_req *r = g->data;
  r->gai_pending = 0;
  if (r->done) {
    uv_freeaddrinfo(res);
    close_all(r);
    return;
  }
  if (status != 0 || res == NULL) {
    uv_freeaddrinfo(res);
    finish(r, 0, "ask endpoint does not resolve");
    return;
  }
  uv_tcp_init(r->timer.loop, &r->tcp);
  r->tcp.data = r;
  r->tcp_open = 1;
  r->connect.data = r;
  int e = uv_tcp_connect(&r->connect, &r->tcp, res->ai_addr, on_connect);
  uv_freeaddrinfo(res);
  if (e != 0) finish(r, 0, "ask endpoint unreachable");
}

int px_acme_ask(uv_loop_t *loop, const char *url, const char *name, uint64_t timeout_ms,
                px_acme_ask_cb cb, void *arg) {
  if (strncmp(url, "http://", 7) != 0) return -1;
  const char *hp = url + 7;
  const char *path = strchr(hp, '/');
  size_t hlen = path ? (size_t)(path - hp) : strlen(hp);
  if (path == NULL) path = "/";
  ask_req *r = calloc(1, sizeof(*r));
  if (r == NULL || hlen == 0 || hlen >= sizeof(r->host)) {
    free(r);
    return -1;
  }
  memcpy(r->host, hp, hlen);
  const char *colon = strrchr(r->host, ':');
  snprintf(r->port, sizeof(r->port), "%s", colon && !strchr(r->host, ']') ? colon + 1 : "80");
  if (colon && !strchr(r->host, ']')) r->host[colon - r->host] = '\0';
  int n = snprintf(r->request, sizeof(r->request),
                   "GET %s%sdomain=%s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: portico\r\n"
                   "Connection: close\r\n\r\n",
                   path, strchr(path, '?') ? "&" : "?", name, (int)hlen, hp);
  if (n < 0 || (size_t)n >= sizeof(r->request)) {
    free(r);
    return -1;
  }
  r->cb = cb;
  r->arg = arg;
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(&r->timer, on_timeout, timeout_ms, 0);
  r->gai.data = r;
  struct addrinfo hints = {0};
  hints.ai_socktype = SOCK_STREAM;
  r->gai_pending = 1;
  if (uv_getaddrinfo(loop, &r->gai, on_resolved, r->host, r->port, &hints) != 0) {
    r->gai_pending = 0;
    /* Reported from the loop via the timer path: fail it right away. */
    uv_timer_start(&r->timer, on_timeout, 0, 0);
  }
  return 0;
}
