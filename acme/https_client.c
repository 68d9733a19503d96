/*
 * The HTTPS/1.1 client of acme/https_client.h.
 *
 * A request owns one timer handle, which first defers the start (so no
 * callback runs inside px_https_request) and then carries the connect
 * timeout and the overall timeout. A connection owns its TCP handle, its
 * idle timer and its SSL object; it outlives the request when it is parked
 * for keep-alive. Both free themselves in their last close callback, and the
 * client is freed when the last of them is gone.
 */
#include "acme/https_client.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <llhttp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/https_parse.h"
#include "tls/log.h"

const char px_https_err_url[] = "not an https:// URL that can be requested";
const char px_https_err_resolve[] = "the server's name does not resolve";
const char px_https_err_connect[] = "cannot connect to the server";
const char px_https_err_connect_timeout[] = "connecting to the server timed out";
const char px_https_err_timeout[] = "the server did not answer in time";
const char px_https_err_untrusted[] =
    "the server's certificate is not trusted or not valid for its name (see acme.ca_file)";
const char px_https_err_tls[] = "the TLS handshake with the server failed";
const char px_https_err_io[] = "the connection to the server failed or closed early";
const char px_https_err_protocol[] = "the server sent an invalid HTTP response";
const char px_https_err_headers_too_large[] = "the server's response headers are too large";
const char px_https_err_body_too_large[] = "the server's response body exceeds 1 MiB";
const char px_https_err_nomem[] = "out of memory";

#define SYSTEM_ROOTS "/etc/ssl/certs/ca-certificates.crt"
#define MAX_HOST 255
#define MAX_METHOD 16
#define KEY_LEN (MAX_HOST + 8) /* "host:port" */

typedef struct conn conn;

struct px_https_client {
  uv_loop_t *loop;
  SSL_CTX *ctx;
  uint64_t connect_timeout_ms, request_timeout_ms;
  int no_keepalive;
  conn *idle;        /* the one kept-alive connection, or NULL */
  px_https_req *reqs; /* running requests, for px_https_client_free */
  size_t refs;       /* live requests and connections */
  int freeing;
};

struct conn {
  px_https_client *client;
  uv_tcp_t tcp;
  uv_timer_t idle_timer;
  uv_connect_t connect;
  SSL *ssl;
  BIO *wbio; /* owned by ssl; what TLS wants sent */
  char key[KEY_LEN];
  px_https_req *req; /* the request using it, or NULL when idle */
  int handles;
  int closing;
  char rbuf[16384];
};

typedef enum req_state { ST_START, ST_RESOLVE, ST_CONNECT, ST_EXCHANGE, ST_DONE } req_state;

struct px_https_req {
  px_https_client *client;
  px_https_req *prev, *next;
  uv_timer_t timer;
  uv_getaddrinfo_t gai;
  struct addrinfo *addrs, *next_addr;
  conn *conn;
  px_https_cb cb;
  void *arg;
  req_state st;
  const char *early_err; /* known at the start, reported from the loop */
  char host[MAX_HOST + 1];
  char port[6];
  char key[KEY_LEN];
  int ip_literal;
  char *out; /* the request bytes */
  size_t out_len;
  uint64_t deadline;
  int sent, reused, retried, timer_closed, gai_pending;
  px_https_parse parse;
};

/* ---- small helpers ------------------------------------------------------ */

static void client_unref(px_https_client *c) {
  if (--c->refs > 0 || !c->freeing) return;
  SSL_CTX_free(c->ctx);
  free(c);
}

static uint64_t remaining(px_https_req *r) {
  uint64_t now = uv_now(r->client->loop);
  return r->deadline > now ? r->deadline - now : 0;
}

static void on_req_timer(uv_timer_t *t);

static void arm(px_https_req *r, uint64_t ms) { uv_timer_start(&r->timer, on_req_timer, ms, 0); }

/* ---- connections ------------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
  conn *cn = h->data;
  if (--cn->handles > 0) return;
  if (cn->ssl) SSL_free(cn->ssl);
  px_https_client *c = cn->client;
  free(cn);
  client_unref(c);
}

static void conn_close(conn *cn) {
  if (cn->closing) return;
  cn->closing = 1;
  if (cn->client->idle == cn) cn->client->idle = NULL;
  if (cn->req) {
    cn->req->conn = NULL;
    cn->req = NULL;
  }
  uv_close((uv_handle_t *)&cn->tcp, on_conn_closed);
  uv_close((uv_handle_t *)&cn->idle_timer, on_conn_closed);
}

static conn *conn_new(px_https_client *c, const char *key) {
  conn *cn = calloc(1, sizeof(*cn));
  if (cn == NULL) return NULL;
  if (uv_tcp_init(c->loop, &cn->tcp) != 0) {
    free(cn);
    return NULL;
  }
  uv_timer_init(c->loop, &cn->idle_timer);
  cn->client = c;
  cn->handles = 2;
  cn->tcp.data = cn->idle_timer.data = cn->connect.data = cn;
  snprintf(cn->key, sizeof(cn->key), "%s", key);
  c->refs++;
  return cn;
}

static void on_idle_timeout(uv_timer_t *t) { conn_close(t->data); }

/* Keeps a connection whose response ended cleanly for the next request to
 * the same host:port (RFC 9112 §9.3); one is enough for an ACME flow, whose
 * requests to the CA follow one another. */
static void conn_park(conn *cn) {
  px_https_client *c = cn->client;
  if (c->idle) conn_close(c->idle);
  c->idle = cn;
  uv_timer_start(&cn->idle_timer, on_idle_timeout, PX_HTTPS_IDLE_TIMEOUT_MS, 0);
}

static void req_conn_lost(px_https_req *r, const char *err);
static void finish(px_https_req *r, const char *err);
static void drive(px_https_req *r);

static void on_write(uv_write_t *w, int status) {
  conn *cn = w->data;
  free(w);
  if (status < 0 && !cn->closing && cn->req) req_conn_lost(cn->req, px_https_err_io);
}

/* Sends what TLS has queued. The queue is bounded by what we write: one
 * request and the handshake. */
static int conn_flush(conn *cn) {
  size_t n = BIO_pending(cn->wbio);
  if (n == 0) return 0;
  uv_write_t *w = malloc(sizeof(*w) + n);
  if (w == NULL) return -1;
  char *buf = (char *)(w + 1);
  if (BIO_read(cn->wbio, buf, (int)n) != (int)n) {
    free(w);
    return -1;
  }
  w->data = cn;
  uv_buf_t b = uv_buf_init(buf, (unsigned)n);
  if (uv_write(w, (uv_stream_t *)&cn->tcp, &b, 1, on_write) != 0) {
    free(w);
    return -1;
  }
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  conn *cn = h->data;
  buf->base = cn->rbuf;
  buf->len = sizeof(cn->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  conn *cn = s->data;
  if (cn->closing || n == 0) return;
  px_https_req *r = cn->req;
  if (r == NULL) {
    /* Idle: the server closed it, or sent what nobody asked for. */
    conn_close(cn);
    return;
  }
  if (n < 0) {
    req_conn_lost(r, px_https_err_io);
    return;
  }
  BIO *rbio = SSL_get_rbio(cn->ssl);
  if (BIO_write(rbio, buf->base, (int)n) != (int)n) {
    finish(r, px_https_err_nomem);
    return;
  }
  drive(r);
}

/* Sets up the TLS client for a new connection: SNI for DNS names only
 * (RFC 6066 §3 forbids IP literals there), and the name or address the
 * certificate must carry (RFC 6125; RFC 8555 §6.1 requires HTTPS). */
static int conn_tls(conn *cn, px_https_req *r) {
  cn->ssl = SSL_new(r->client->ctx);
  BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
  if (cn->ssl == NULL || rbio == NULL || wbio == NULL) {
    BIO_free(rbio);
    BIO_free(wbio);
    return -1;
  }
  SSL_set_bio(cn->ssl, rbio, wbio);
  cn->wbio = wbio;
  SSL_set_connect_state(cn->ssl);
  X509_VERIFY_PARAM *param = SSL_get0_param(cn->ssl);
  if (r->ip_literal) return X509_VERIFY_PARAM_set1_ip_asc(param, r->host) == 1 ? 0 : -1;
  if (!SSL_set_tlsext_host_name(cn->ssl, r->host)) return -1;
  return X509_VERIFY_PARAM_set1_host(param, r->host, strlen(r->host)) == 1 ? 0 : -1;
}

/* ---- requests ------------------------------------------------------------ */

static void req_release(px_https_req *r) {
  if (!r->timer_closed || r->gai_pending) return;
  px_https_client *c = r->client;
  px_https_parse_dispose(&r->parse);
  free(r->out);
  free(r);
  client_unref(c);
}

static void on_req_closed(uv_handle_t *h) {
  px_https_req *r = h->data;
  r->timer_closed = 1;
  req_release(r);
}

/* Reports once; hands the response (on success) to the callback. */
static void finish(px_https_req *r, const char *err) {
  if (r->st == ST_DONE) return;
  r->st = ST_DONE;
  px_https_client *c = r->client;
  if (r->prev) r->prev->next = r->next;
  else c->reqs = r->next;
  if (r->next) r->next->prev = r->prev;
  conn *cn = r->conn;
  if (cn) {
    r->conn = NULL;
    cn->req = NULL;
    if (err == NULL && r->parse.keep_alive && !c->no_keepalive && !c->freeing &&
        BIO_pending(SSL_get_rbio(cn->ssl)) == 0 && SSL_pending(cn->ssl) == 0)
      conn_park(cn);
    else
      conn_close(cn);
  }
  if (r->addrs) uv_freeaddrinfo(r->addrs);
  r->addrs = r->next_addr = NULL;
  if (r->gai_pending) uv_cancel((uv_req_t *)&r->gai);
  px_https_response *resp = NULL;
  if (err == NULL) resp = px_https_parse_take(&r->parse, r->reused);
  if (err == NULL && resp == NULL) err = px_https_err_nomem;
  px_https_cb cb = r->cb;
  void *arg = r->arg;
  uv_timer_stop(&r->timer);
  uv_close((uv_handle_t *)&r->timer, on_req_closed);
  if (cb) cb(arg, err, resp);
  else px_https_response_free(resp);
}

static const char *tls_failure(px_https_req *r, SSL *ssl) {
  long v = SSL_get_verify_result(ssl);
  uint32_t e = ERR_peek_error();
  ERR_clear_error();
  if (v != X509_V_OK) {
    px_log(PX_LOG_WARN, "https %s: certificate verification failed: %s", r->key,
           X509_verify_cert_error_string(v));
    return px_https_err_untrusted;
  }
  px_log(PX_LOG_WARN, "https %s: TLS failed: %s", r->key, ERR_reason_error_string(e));
  return px_https_err_tls;
}

/* Runs TLS and HTTP as far as the bytes received allow. */
static void drive(px_https_req *r) {
  conn *cn = r->conn;
  SSL *ssl = cn->ssl;
  if (!SSL_is_init_finished(ssl)) {
    int rc = SSL_do_handshake(ssl);
    if (rc != 1) {
      int e = SSL_get_error(ssl, rc);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        conn_flush(cn); /* the alert, as a courtesy */
        finish(r, tls_failure(r, ssl));
      } else if (conn_flush(cn) != 0) {
        finish(r, px_https_err_nomem);
      }
      return;
    }
  }
  if (!r->sent) {
    r->sent = 1;
    /* Memory BIOs take the whole request in one call. */
    if (SSL_write(ssl, r->out, (int)r->out_len) != (int)r->out_len) {
      finish(r, tls_failure(r, ssl));
      return;
    }
  }
  char buf[16384];
  while (!r->parse.complete) {
    int n = SSL_read(ssl, buf, sizeof(buf));
    if (n > 0) {
      const char *perr = px_https_parse_feed(&r->parse, buf, (size_t)n);
      if (perr) {
        finish(r, perr);
        return;
      }
      continue;
    }
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_ZERO_RETURN) {
      /* close_notify: a body delimited by the close is complete (RFC 9112 §6.3). */
      if (px_https_parse_eof(&r->parse) == 0) break;
      req_conn_lost(r, px_https_err_io);
      return;
    }
    finish(r, tls_failure(r, ssl));
    return;
  }
  if (conn_flush(cn) != 0) {
    finish(r, px_https_err_nomem);
    return;
  }
  if (r->parse.complete) finish(r, NULL);
}

static void start_exchange(px_https_req *r) {
  r->st = ST_EXCHANGE;
  arm(r, remaining(r));
  if (px_https_parse_init(&r->parse, r->parse.is_head) != 0) {
    finish(r, px_https_err_nomem);
    return;
  }
  drive(r);
}

static void connect_next(px_https_req *r);

static void on_connect(uv_connect_t *creq, int status) {
  conn *cn = creq->data;
  px_https_req *r = cn->req;
  if (r == NULL || cn->closing) return;
  if (status != 0) {
    conn_close(cn);
    connect_next(r);
    return;
  }
  uv_freeaddrinfo(r->addrs);
  r->addrs = r->next_addr = NULL;
  if (uv_read_start((uv_stream_t *)&cn->tcp, on_alloc, on_read) != 0) {
    finish(r, px_https_err_io);
    return;
  }
  if (conn_tls(cn, r) != 0) {
    finish(r, px_https_err_nomem);
    return;
  }
  start_exchange(r);
}

/* Tries the resolved addresses in order (localhost may give ::1 first while
 * the server listens on 127.0.0.1 only). The connect timeout covers them all. */
static void connect_next(px_https_req *r) {
  while (r->next_addr) {
    struct addrinfo *a = r->next_addr;
    r->next_addr = a->ai_next;
    conn *cn = conn_new(r->client, r->key);
    if (cn == NULL) {
      finish(r, px_https_err_nomem);
      return;
    }
    cn->req = r;
    r->conn = cn;
    if (uv_tcp_connect(&cn->connect, &cn->tcp, a->ai_addr, on_connect) == 0) return;
    conn_close(cn);
  }
  finish(r, px_https_err_connect);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res) {
  px_https_req *r = g->data;
  r->gai_pending = 0;
  if (r->st == ST_DONE) {
    uv_freeaddrinfo(res);
    req_release(r);
    return;
  }
  if (status != 0 || res == NULL) {
    uv_freeaddrinfo(res);
    finish(r, px_https_err_resolve);
    return;
  }
  r->addrs = r->next_addr = res;
  r->st = ST_CONNECT;
  uint64_t left = remaining(r);
  arm(r, r->client->connect_timeout_ms < left ? r->client->connect_timeout_ms : left);
  connect_next(r);
}

static void resolve(px_https_req *r) {
  r->st = ST_RESOLVE;
  arm(r, remaining(r));
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  r->gai.data = r;
  if (uv_getaddrinfo(r->client->loop, &r->gai, on_resolved, r->host, r->port, &hints) != 0) {
    finish(r, px_https_err_resolve);
    return;
  }
  r->gai_pending = 1;
}

/* A reused connection may have been closed by the server just as we sent
 * on it. Then, and only then, the request goes once more on a new one. */
static void req_conn_lost(px_https_req *r, const char *err) {
  if (r->st != ST_EXCHANGE) return;
  if (!r->reused || r->retried || r->parse.got_bytes) {
    finish(r, err);
    return;
  }
  if (r->conn) conn_close(r->conn);
  r->retried = 1;
  r->reused = 0;
  r->sent = 0;
  resolve(r);
}

static void begin(px_https_req *r) {
  px_https_client *c = r->client;
  if (r->early_err) {
    finish(r, r->early_err);
    return;
  }
  conn *cn = c->idle;
  if (cn && strcmp(cn->key, r->key) == 0) {
    c->idle = NULL;
    uv_timer_stop(&cn->idle_timer);
    cn->req = r;
    r->conn = cn;
    r->reused = 1;
    start_exchange(r);
    return;
  }
  resolve(r);
}

static void on_req_timer(uv_timer_t *t) {
  px_https_req *r = t->data;
  switch (r->st) {
  case ST_START:
    begin(r);
    break;
  case ST_CONNECT:
    finish(r, remaining(r) == 0 ? px_https_err_timeout : px_https_err_connect_timeout);
    break;
  default:
    finish(r, px_https_err_timeout);
    break;
  }
}

/* Splits https://host[:port]/path. Refuses userinfo, fragments, and any byte
 * that could end the request line or a header (CR, LF, space, controls). */
static int parse_url(px_https_req *r, const char *url, const char **path) {
  size_t len = strlen(url);
  if (len > PX_HTTPS_MAX_URL || strncasecmp(url, "https://", 8) != 0) return -1;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '#') return -1;
  const char *auth = url + 8;
  size_t alen = strcspn(auth, "/?");
  *path = auth + alen;
  if (alen == 0 || memchr(auth, '@', alen)) return -1;
  const char *hend = auth + alen, *pstart = NULL;
  const char *h = auth;
  if (*auth == '[') {
    const char *rb = memchr(auth, ']', alen);
    if (rb == NULL) return -1;
    h = auth + 1;
    hend = rb;
    if (rb + 1 < auth + alen) {
      if (rb[1] != ':') return -1;
      pstart = rb + 2;
    }
  } else {
    const char *colon = memchr(auth, ':', alen);
    if (colon) {
      hend = colon;
      pstart = colon + 1;
    }
  }
  size_t hlen = (size_t)(hend - h);
  if (hlen == 0 || hlen > MAX_HOST) return -1;
  memcpy(r->host, h, hlen);
  r->host[hlen] = '\0';
  unsigned long port = 443;
  if (pstart) {
    size_t plen = (size_t)(auth + alen - pstart);
    if (plen == 0 || plen > 5 || strspn(pstart, "0123456789") < plen) return -1;
    port = strtoul(pstart, NULL, 10);
    if (port == 0 || port > 65535) return -1;
  }
  snprintf(r->port, sizeof(r->port), "%lu", port);
  snprintf(r->key, sizeof(r->key), "%s:%lu", r->host, port);
  struct in6_addr a6;
  r->ip_literal = inet_pton(AF_INET, r->host, &a6) == 1 || inet_pton(AF_INET6, r->host, &a6) == 1;
  if (*auth == '[' && !r->ip_literal) return -1;
  return (int)alen;
}

static int valid_token(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n == 0 || n > max) return 0;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)s[i]) && !strchr("!#$%&'*+-.^_`|~", s[i])) return 0;
  return 1;
}

/* Serialises the request once; it is replayed as is on a retry. */
static const char *build_request(px_https_req *r, const px_https_request_opts *o) {
  const char *path;
  int alen = parse_url(r, o->url, &path);
  if (alen < 0 || !valid_token(o->method, MAX_METHOD)) return px_https_err_url;
  const char *ctype = o->content_type;
  int has_body = o->body_len > 0 || strcmp(o->method, "POST") == 0;
  if (has_body && ctype == NULL) ctype = "application/jose+json";
  if (ctype && strpbrk(ctype, "\r\n")) return px_https_err_url;
  if (o->body_len > PX_HTTPS_MAX_BODY) return px_https_err_body_too_large;
  size_t cap = strlen(o->url) + (ctype ? strlen(ctype) : 0) + o->body_len + 256;
  if ((r->out = malloc(cap)) == NULL) return px_https_err_nomem;
  int n = snprintf(r->out, cap, "%s %s%s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: portico/0.1\r\n",
                   o->method, *path == '/' ? "" : "/", path, alen, o->url + 8);
  if (n > 0 && has_body)
    n += snprintf(r->out + n, cap - (size_t)n, "Content-Type: %s\r\nContent-Length: %zu\r\n",
                  ctype, o->body_len);
  if (n > 0)
    n += snprintf(r->out + n, cap - (size_t)n, "%s\r\n",
                  r->client->no_keepalive ? "Connection: close\r\n" : "");
  if (n < 0 || (size_t)n + o->body_len > cap) return px_https_err_url;
  if (o->body_len) memcpy(r->out + n, o->body, o->body_len);
  r->out_len = (size_t)n + o->body_len;
  r->parse.is_head = strcmp(o->method, "HEAD") == 0;
  return NULL;
}

px_https_req *px_https_request(px_https_client *c, const px_https_request_opts *o, px_https_cb cb,
                               void *arg) {
  if (c->freeing) return NULL;
  px_https_req *r = calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  r->client = c;
  r->cb = cb;
  r->arg = arg;
  if (o->method == NULL || o->url == NULL) r->early_err = px_https_err_url;
  else r->early_err = build_request(r, o);
  if (uv_timer_init(c->loop, &r->timer) != 0) {
    free(r->out);
    free(r);
    return NULL;
  }
  c->refs++;
  r->timer.data = r;
  r->deadline = uv_now(c->loop) + c->request_timeout_ms;
  r->next = c->reqs;
  if (c->reqs) c->reqs->prev = r;
  c->reqs = r;
  arm(r, 0); /* the start runs from the loop, never inside this call */
  return r;
}

void px_https_cancel(px_https_req *r) {
  if (r == NULL || r->st == ST_DONE) return;
  r->cb = NULL;
  finish(r, px_https_err_timeout);
}

/* ---- the client ---------------------------------------------------------- */

px_https_client *px_https_client_new(uv_loop_t *loop, const px_https_client_opts *opts,
                                     char *err, size_t errlen) {
  px_https_client_opts none = {0};
  if (opts == NULL) opts = &none;
  px_https_client *c = calloc(1, sizeof(*c));
  if (c == NULL || (c->ctx = SSL_CTX_new(TLS_method())) == NULL) {
    snprintf(err, errlen, "out of memory");
    free(c);
    return NULL;
  }
  c->loop = loop;
  c->connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms
                                                   : PX_HTTPS_CONNECT_TIMEOUT_MS;
  c->request_timeout_ms = opts->request_timeout_ms ? opts->request_timeout_ms
                                                   : PX_HTTPS_REQUEST_TIMEOUT_MS;
  c->no_keepalive = opts->no_keepalive;
  SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
  static const uint8_t alpn[] = "\x08http/1.1";
  SSL_CTX_set_alpn_protos(c->ctx, alpn, sizeof(alpn) - 1);
  const char *sys = opts->system_roots ? opts->system_roots : SYSTEM_ROOTS;
  int have_roots = *sys && SSL_CTX_load_verify_locations(c->ctx, sys, NULL) == 1;
  ERR_clear_error();
  if (opts->ca_file && SSL_CTX_load_verify_locations(c->ctx, opts->ca_file, NULL) != 1) {
    snprintf(err, errlen, "ca_file %s: no usable PEM certificates", opts->ca_file);
    have_roots = -1;
  } else if (opts->ca_file) {
    have_roots = 1;
  }
  ERR_clear_error();
  if (have_roots != 1) {
    if (have_roots == 0) snprintf(err, errlen, "no trusted roots: %s unreadable and no ca_file", sys);
    SSL_CTX_free(c->ctx);
    free(c);
    return NULL;
  }
  return c;
}

void px_https_client_free(px_https_client *c) {
  if (c == NULL || c->freeing) return;
  c->freeing = 1;
  c->refs++; /* stay alive while cancelling */
  while (c->reqs) px_https_cancel(c->reqs);
  if (c->idle) conn_close(c->idle);
  client_unref(c);
}

uv_loop_t *px_https_client_loop(const px_https_client *c) { return c->loop; }
