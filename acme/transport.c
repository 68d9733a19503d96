#include "acme/transport.h"

#include <errno.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/log.h"

#define MAX_HEAD 16384

typedef struct request {
  uv_loop_t *loop;
  uv_getaddrinfo_t gai;
  uv_connect_t connect;
  uv_tcp_t tcp;
  uv_timer_t timer;
  px_acme_response_cb cb;
  void *arg;
  px_tls_conn *tls; /* NULL for plain http:// */
  int handshaken;
  char host[256];
  char port[8];
  char *out; /* the request bytes */
  size_t out_len;
  int sent;
  llhttp_t parser;
  llhttp_settings_t settings;
  px_acme_response *resp;
  size_t head_bytes;
  char field[64]; /* current header name (lowercased, truncated) */
  size_t field_len;
  int in_value;
  char **value; /* header being filled, or NULL */
  int complete;
  int is_head;
  int done;
  int tcp_open;
  int gai_pending;
  int closes;
  /* Who errors name: "the ACME server at https://ca/dir", or the bare URL
   * (without its query) of a plain http:// request. */
  char server[320];
  char err[512];               /* the sentence handed to the callback */
  struct request *prev, *next; /* the requests in flight (live, below) */
  uint64_t seq;
} request;

/* Every request in flight, of every loop, so that a loop about to stop can
 * end its own at once (px_acme_requests_abort) instead of waiting for their
 * timeouts. Guarded by live_lock. */
static uv_once_t live_once = UV_ONCE_INIT;
static uv_mutex_t live_lock;
static request *live;
static uint64_t live_seq;

static void live_init(void) { uv_mutex_init(&live_lock); }

static void live_add(request *q) {
  uv_once(&live_once, live_init);
  uv_mutex_lock(&live_lock);
  q->seq = ++live_seq;
  q->prev = NULL;
  q->next = live;
  if (live) live->prev = q;
  live = q;
  uv_mutex_unlock(&live_lock);
}

static void live_remove(request *q) {
  uv_mutex_lock(&live_lock);
  if (q->prev)
    q->prev->next = q->next;
  else
    live = q->next;
  if (q->next) q->next->prev = q->prev;
  uv_mutex_unlock(&live_lock);
}

void px_acme_response_free(px_acme_response *r) {
  if (r == NULL) return;
  free(r->body);
  free(r->location);
  free(r->replay_nonce);
  free(r->retry_after);
  free(r->content_type);
  for (size_t i = 0; i < r->nlinks; i++)
    free(r->links[i]);
  free(r);
}

static void on_closed(uv_handle_t *h) {
  request *q = h->data;
  if (--q->closes > 0) return;
  live_remove(q);
  px_tls_conn_free(q->tls);
  free(q->out);
  px_acme_response_free(q->resp);
  free(q);
}

static void close_all(request *q) {
  q->closes = 1 + q->tcp_open;
  uv_close((uv_handle_t *)&q->timer, on_closed);
  if (q->tcp_open) uv_close((uv_handle_t *)&q->tcp, on_closed);
}

/* Reports once; the response (on success) passes to the callback. */
static void finish(request *q, const char *err) {
  if (q->done) return;
  q->done = 1;
  uv_timer_stop(&q->timer);
  px_acme_response *r = NULL;
  if (err == NULL) {
    r = q->resp;
    q->resp = NULL;
  }
  q->cb(q->arg, err, r);
  if (!q->gai_pending) close_all(q);
}

/* Reports a failure naming the server; `sys` is a libuv error (0: none)
 * whose text is appended, and the hint says what to check. */
static void fail(request *q, const char *what, int sys) {
  const char *hint = q->tls ? "; check acme.directory and that this host can reach the CA" : "";
  if (sys != 0)
    snprintf(q->err, sizeof(q->err), "%s %s: %s%s", what, q->server, uv_strerror(sys), hint);
  else
    snprintf(q->err, sizeof(q->err), "%s %s%s", what, q->server, hint);
  finish(q, q->err);
}

static void on_timeout(uv_timer_t *t) {
  request *q = t->data;
  fail(q, "no answer in time from", 0);
}

/* ---- response parsing ------------------------------------------------- */

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  request *q = p->data;
  if ((q->head_bytes += len) > MAX_HEAD) return -1;
  if (q->in_value) {
    q->field_len = 0;
    q->in_value = 0;
  }
  for (size_t i = 0; i < len && q->field_len < sizeof(q->field) - 1; i++)
    q->field[q->field_len++] = (char)((at[i] >= 'A' && at[i] <= 'Z') ? at[i] + 32 : at[i]);
  q->field[q->field_len] = '\0';
  return 0;
}

static char **header_slot(request *q) {
  px_acme_response *r = q->resp;
  if (strcmp(q->field, "location") == 0) return &r->location;
  if (strcmp(q->field, "replay-nonce") == 0) return &r->replay_nonce;
  if (strcmp(q->field, "retry-after") == 0) return &r->retry_after;
  if (strcmp(q->field, "content-type") == 0) return &r->content_type;
  if (strcmp(q->field, "link") == 0 && r->nlinks < PX_ACME_MAX_LINKS) return &r->links[r->nlinks++];
  return NULL;
}

static int append(char **dst, const char *at, size_t len) {
  size_t old = *dst ? strlen(*dst) : 0;
  char *n = realloc(*dst, old + len + 1);
  if (n == NULL) return -1;
  memcpy(n + old, at, len);
  n[old + len] = '\0';
  *dst = n;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  request *q = p->data;
  if ((q->head_bytes += len) > MAX_HEAD) return -1;
  if (!q->in_value) {
    q->in_value = 1;
    q->value = header_slot(q);
  }
  return q->value ? append(q->value, at, len) : 0;
}

static int on_headers_complete(llhttp_t *p) {
  request *q = p->data;
  q->resp->status = p->status_code;
  return q->is_head ? 1 : 0; /* a HEAD response has no body (RFC 9110 §9.3.2) */
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  request *q = p->data;
  px_acme_response *r = q->resp;
  if (r->body_len + len > PX_ACME_MAX_BODY) return -1;
  char *n = realloc(r->body, r->body_len + len + 1);
  if (n == NULL) return -1;
  memcpy(n + r->body_len, at, len);
  r->body = n;
  r->body_len += len;
  n[r->body_len] = '\0';
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  request *q = p->data;
  q->complete = 1;
  return HPE_PAUSED;
}

/* ---- TLS and socket ----------------------------------------------------- */

static void on_write(uv_write_t *w, int status) {
  request *q = w->data;
  free(w);
  if (status != 0) fail(q, "could not send to", status);
}

/* Sends what TLS has queued. */
static int flush(request *q) {
  size_t n;
  const char *out = px_tls_conn_output(q->tls, &n);
  if (out == NULL) return -1;
  if (n == 0) return 0;
  uv_write_t *w = malloc(sizeof(*w) + n);
  if (w == NULL) return -1;
  char *buf = (char *)(w + 1);
  memcpy(buf, out, n);
  px_tls_conn_consume_output(q->tls, n);
  w->data = q;
  uv_buf_t b = uv_buf_init(buf, (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&q->tcp, &b, 1, on_write) != 0) {
    free(w);
    return -1;
  }
  return 0;
}

static void tls_failed(request *q) {
  const char *verify = px_tls_conn_verify_error(q->tls);
  if (verify == NULL) {
    fail(q, "TLS failed with", 0);
    return;
  }
  snprintf(q->err, sizeof(q->err),
           "the certificate of %s is not trusted: %s; add the CA that issued it to acme.ca_file",
           q->server, verify);
  finish(q, q->err);
}

static void advance(request *q) {
  if (!q->handshaken) {
    int r = px_tls_conn_handshake(q->tls);
    if (r != PX_TLS_OK) {
      if (flush(q) != 0)
        fail(q, "could not send to", 0);
      else if (r != PX_TLS_WANT_READ)
        tls_failed(q);
      return;
    }
    q->handshaken = 1;
  }
  if (!q->sent) {
    q->sent = 1;
    if (px_tls_conn_write(q->tls, q->out, q->out_len) != PX_TLS_OK) {
      fail(q, "TLS failed with", 0);
      return;
    }
  }
  char buf[16384];
  for (;;) {
    int n = px_tls_conn_read(q->tls, buf, sizeof(buf));
    if (n == PX_TLS_WANT_READ) break;
    if (n == PX_TLS_CLOSED) {
      if (llhttp_finish(&q->parser) == HPE_OK && (q->complete || q->resp->status)) {
        q->complete = 1;
        break;
      }
      fail(q, "the connection was closed early by", 0);
      return;
    }
    if (n < 0) {
      tls_failed(q);
      return;
    }
    llhttp_errno_t pe = llhttp_execute(&q->parser, buf, (size_t)n);
    if (pe == HPE_PAUSED || q->complete) break;
    if (pe != HPE_OK) {
      fail(q, "an invalid or oversized response came from", 0);
      return;
    }
  }
  if (flush(q) != 0) {
    fail(q, "could not send to", 0);
    return;
  }
  if (q->complete) finish(q, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static __thread char slab[65536];
  buf->base = slab;
  buf->len = sizeof(slab);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  request *q = s->data;
  if (q->done) return;
  if (n < 0) {
    if (q->resp->status && llhttp_finish(&q->parser) == HPE_OK) {
      finish(q, NULL);
      return;
    }
    fail(q, "the connection was closed early by", n == UV_EOF ? 0 : (int)n);
    return;
  }
  if (q->tls == NULL) {
    llhttp_errno_t pe = llhttp_execute(&q->parser, buf->base, (size_t)n);
    if (pe != HPE_OK && pe != HPE_PAUSED)
      fail(q, "an invalid or oversized response came from", 0);
    else if (q->complete)
      finish(q, NULL);
    return;
  }
  if (px_tls_conn_feed(q->tls, buf->base, (size_t)n) != PX_TLS_OK) {
    finish(q, "out of memory");
    return;
  }
  advance(q);
}

/* Plain HTTP (the on-demand ask endpoint): send the request as it is. */
static void send_plain(request *q) {
  uv_write_t *w = malloc(sizeof(*w));
  if (w == NULL) {
    finish(q, "out of memory");
    return;
  }
  w->data = q;
  uv_buf_t b = uv_buf_init(q->out, (unsigned)q->out_len);
  if (uv_write(w, (uv_stream_t *)&q->tcp, &b, 1, on_write) != 0) {
    free(w);
    fail(q, "could not send to", 0);
  }
}

static void on_connect(uv_connect_t *c, int status) {
  request *q = c->data;
  if (q->done) return;
  if (status != 0) {
    fail(q, "cannot connect to", status);
    return;
  }
  int r = uv_read_start((uv_stream_t *)&q->tcp, on_alloc, on_read);
  if (r != 0) {
    fail(q, "cannot read from", r);
    return;
  }
  if (q->tls == NULL)
    send_plain(q);
  else
    advance(q);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  request *q = g->data;
  q->gai_pending = 0;
  if (q->done) {
    uv_freeaddrinfo(res);
    close_all(q);
    return;
  }
  if (status != 0 || res == NULL) {
    uv_freeaddrinfo(res);
    fail(q, "cannot resolve the host of", status != 0 ? status : UV_EAI_NONAME);
    return;
  }
  uv_tcp_init(q->loop, &q->tcp);
  q->tcp.data = q;
  q->tcp_open = 1;
  q->connect.data = q;
  int r = uv_tcp_connect(&q->connect, &q->tcp, res->ai_addr, on_connect);
  uv_freeaddrinfo(res);
  if (r != 0) fail(q, "cannot connect to", r);
}

static void on_early_failure(uv_timer_t *t) {
  request *q = t->data;
  finish(q, q->err);
}

int px_acme_request(uv_loop_t *loop, px_tls_client *tls, const char *method, const char *url,
                    const char *content_type, const char *body, size_t body_len,
                    uint64_t timeout_ms, px_acme_response_cb cb, void *arg) {
  int plain = tls == NULL;
  if (strncmp(url, plain ? "http://" : "https://", plain ? 7 : 8) != 0) return -EINVAL;
  const char *hp = url + (plain ? 7 : 8);
  const char *path = strchr(hp, '/');
  size_t hlen = path ? (size_t)(path - hp) : strlen(hp);
  if (path == NULL) path = "/";
  request *q = calloc(1, sizeof(*q));
  if (q == NULL || hlen == 0 || hlen >= sizeof(q->host)) {
    free(q);
    return q ? -EINVAL : -ENOMEM;
  }
  memcpy(q->host, hp, hlen);
  snprintf(q->server, sizeof(q->server), "%s%.*s", plain ? "" : "the ACME server at ",
           (int)strcspn(url, "?#"), url);
  const char *colon = strrchr(q->host, ':');
  if (colon && !strchr(colon, ']')) {
    snprintf(q->port, sizeof(q->port), "%s", colon + 1);
    q->host[colon - q->host] = '\0';
  } else {
    snprintf(q->port, sizeof(q->port), "%s", plain ? "80" : "443");
  }
  size_t cap = strlen(path) + hlen + body_len + 512;
  q->out = malloc(cap);
  q->resp = calloc(1, sizeof(px_acme_response));
  if (!plain) q->tls = px_tls_client_conn_new(tls, q->host);
  if (!q->out || !q->resp || (!plain && !q->tls)) {
    px_tls_conn_free(q->tls);
    free(q->out);
    free(q->resp);
    free(q);
    return -ENOMEM;
  }
  int n = snprintf(q->out, cap,
                   "%s %s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: portico/0.1\r\n"
                   "Accept: application/json, application/pem-certificate-chain\r\n"
                   "Connection: close\r\n",
                   method, path, (int)hlen, hp);
  if (content_type)
    n += snprintf(q->out + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                  content_type, body_len);
  n += snprintf(q->out + n, cap - (size_t)n, "\r\n");
  if (body_len) memcpy(q->out + n, body, body_len);
  q->out_len = (size_t)n + body_len;
  llhttp_settings_init(&q->settings);
  q->settings.on_header_field = on_header_field;
  q->settings.on_header_value = on_header_value;
  q->settings.on_headers_complete = on_headers_complete;
  q->settings.on_body = on_body;
  q->settings.on_message_complete = on_message_complete;
  llhttp_init(&q->parser, HTTP_RESPONSE, &q->settings);
  q->parser.data = q;
  q->loop = loop;
  q->is_head = strcmp(method, "HEAD") == 0;
  q->cb = cb;
  q->arg = arg;
  uv_timer_init(loop, &q->timer);
  q->timer.data = q;
  live_add(q);
  uv_timer_start(&q->timer, on_timeout, timeout_ms, 0);
  q->gai.data = q;
  struct addrinfo hints = {0};
  hints.ai_socktype = SOCK_STREAM;
  q->gai_pending = 1;
  int r = uv_getaddrinfo(loop, &q->gai, on_resolved, q->host, q->port, &hints);
  if (r != 0) {
    /* Reported from the loop, as the callback must never run from here. */
    q->gai_pending = 0;
    snprintf(q->err, sizeof(q->err), "cannot resolve the host of %s: %s", q->server,
             uv_strerror(r));
    uv_timer_start(&q->timer, on_early_failure, 0, 0);
  }
  return 0;
}

/* The oldest request of `loop` not yet answered and no newer than `seq`,
 * or NULL. */
static request *next_to_abort(uv_loop_t *loop, uint64_t seq) {
  request *found = NULL;
  uv_mutex_lock(&live_lock);
  for (request *q = live; q; q = q->next)
    if (q->loop == loop && !q->done && q->seq <= seq) found = q;
  uv_mutex_unlock(&live_lock);
  return found;
}

void px_acme_requests_abort(uv_loop_t *loop) {
  uv_once(&live_once, live_init);
  uv_mutex_lock(&live_lock);
  uint64_t seq = live_seq; /* what a callback starts now is not ours to end */
  uv_mutex_unlock(&live_lock);
  request *q;
  while ((q = next_to_abort(loop, seq)) != NULL) {
    if (q->gai_pending) uv_cancel((uv_req_t *)&q->gai);
    snprintf(q->err, sizeof(q->err), "portico is stopping: the request to %s was abandoned",
             q->server);
    px_log(PX_LOG_INFO, "acme: %s", q->err);
    finish(q, q->err);
  }
}
