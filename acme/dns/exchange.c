/*
 * One DNS request and its answer (acme/dns/exchange.h).
 */
#include "acme/dns/exchange.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/dns/wire.h"
#include "tls/log.h"

/* UDP sends per exchange: the timeout is split between them. */
#define UDP_TRIES 3
/* Largest UDP answer read; without EDNS servers send at most 512 bytes
 * (RFC 1035 §4.2.1) and set TC for more. */
#define UDP_ANSWER_MAX 4096

struct px_dns_exchange {
  uv_loop_t *loop;
  struct sockaddr_storage server;
  uint8_t *req;
  size_t req_len;
  uint64_t timeout_ms;
  px_dns_exchange_cb cb;
  void *arg;
  uv_udp_t udp;
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_connect_t connect;
  uv_udp_send_t usend;
  uv_write_t wreq;
  uint8_t tcp_len[2];
  int tries;
  int use_tcp;
  int done;         /* cb called or cancelled */
  int handles;      /* open handles */
  int pending;      /* requests (send, connect, write) libuv still holds */
  const char *fail; /* a failure to report from the timer (never from start) */
  uint8_t udp_buf[UDP_ANSWER_MAX];
  uint8_t *tcp_buf;
  size_t tcp_have;
};

int px_dns_addr_parse(const char *s, struct sockaddr_storage *out) {
  char host[64];
  unsigned port = 53;
  memset(out, 0, sizeof(*out));
  if (s == NULL || s[0] == '\0' || strlen(s) >= sizeof(host)) return -EINVAL;
  const char *colon = strrchr(s, ':');
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (rb == NULL) return -EINVAL;
    memcpy(host, s + 1, (size_t)(rb - s - 1));
    host[rb - s - 1] = '\0';
    if (rb[1] == ':')
      colon = rb + 1;
    else if (rb[1] != '\0')
      return -EINVAL;
    else
      colon = NULL;
  } else if (colon && strchr(s, ':') == colon) {
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
  } else {
    snprintf(host, sizeof(host), "%s", s); /* bare IPv4, or IPv6 without brackets */
    colon = NULL;
  }
  if (colon) {
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p == 0 || p > 65535) return -EINVAL;
    port = (unsigned)p;
  }
  struct sockaddr_in *v4 = (struct sockaddr_in *)out;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    return 0;
  }
  if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    return 0;
  }
  return -EINVAL;
}

void px_dns_addr_str(const struct sockaddr_storage *a, char *out, size_t cap) {
  char ip[INET6_ADDRSTRLEN] = "?";
  if (a->ss_family == AF_INET6) {
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)a;
    inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
    snprintf(out, cap, "[%s]:%u", ip, ntohs(v6->sin6_port));
  } else {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)a;
    inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
    snprintf(out, cap, "%s:%u", ip, ntohs(v4->sin_port));
  }
}

static void maybe_free(px_dns_exchange *x) {
  if (x->handles > 0 || x->pending > 0) return;
  free(x->req);
  free(x->tcp_buf);
  free(x);
}

static void on_closed(uv_handle_t *h) {
  px_dns_exchange *x = h->data;
  x->handles--;
  maybe_free(x);
}

static void close_all(px_dns_exchange *x) {
  uv_handle_t *hs[3] = {(uv_handle_t *)&x->udp, (uv_handle_t *)&x->tcp, (uv_handle_t *)&x->timer};
  for (int i = 0; i < 3; i++)
    if (hs[i]->data == x && !uv_is_closing(hs[i])) uv_close(hs[i], on_closed);
}

static void finish(px_dns_exchange *x, const char *err, const uint8_t *msg, size_t len) {
  if (x->done) return;
  x->done = 1;
  x->cb(x->arg, err, msg, len);
  close_all(x);
}

void px_dns_exchange_cancel(px_dns_exchange *x) {
  if (x == NULL || x->done) return;
  x->done = 1;
  close_all(x);
}

/* An answer is ours when its ID is the request's (RFC 5452 §9.1). */
static int matches(const px_dns_exchange *x, const uint8_t *msg, size_t len) {
  return len >= 12 && msg[0] == x->req[0] && msg[1] == x->req[1] && (msg[2] & 0x80);
}

/* ---- TCP (after a truncated UDP answer) ---- */

static void on_tcp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  px_dns_exchange *x = h->data;
  size_t cap = 2 + PX_DNS_MSG_MAX;
  buf->base = (char *)x->tcp_buf + x->tcp_have;
  buf->len = cap - x->tcp_have;
}

static void on_tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  px_dns_exchange *x = s->data;
  if (x->done) return;
  if (n < 0) {
    finish(x, "the DNS server closed the TCP connection before answering", NULL, 0);
    return;
  }
  x->tcp_have += (size_t)n;
  if (x->tcp_have < 2) return;
  size_t want = (size_t)x->tcp_buf[0] << 8 | x->tcp_buf[1];
  if (x->tcp_have < 2 + want) {
    if (x->tcp_have >= 2 + PX_DNS_MSG_MAX) finish(x, "the DNS answer is too large", NULL, 0);
    return;
  }
  if (!matches(x, x->tcp_buf + 2, want)) {
    finish(x, "the DNS server's TCP answer does not match the request", NULL, 0);
    return;
  }
  finish(x, NULL, x->tcp_buf + 2, want);
}

static void on_tcp_written(uv_write_t *w, int status) {
  px_dns_exchange *x = w->data;
  x->pending--;
  if (!x->done && status != 0) finish(x, "cannot send the DNS request over TCP", NULL, 0);
  maybe_free(x);
}

static void on_tcp_connect(uv_connect_t *c, int status) {
  px_dns_exchange *x = c->data;
  x->pending--;
  if (x->done) {
    maybe_free(x);
    return;
  }
  if (status != 0) {
    finish(x, "cannot connect to the DNS server over TCP", NULL, 0);
    return;
  }
  x->tcp_len[0] = (uint8_t)(x->req_len >> 8);
  x->tcp_len[1] = (uint8_t)x->req_len;
  uv_buf_t bufs[2] = {uv_buf_init((char *)x->tcp_len, 2),
                      uv_buf_init((char *)x->req, (unsigned)x->req_len)};
  x->wreq.data = x;
  if (uv_write(&x->wreq, (uv_stream_t *)&x->tcp, bufs, 2, on_tcp_written) == 0)
    x->pending++;
  else
    finish(x, "cannot send the DNS request over TCP", NULL, 0);
  if (!x->done) uv_read_start((uv_stream_t *)&x->tcp, on_tcp_alloc, on_tcp_read);
}

static void on_timer(uv_timer_t *t);

static void start_tcp(px_dns_exchange *x) {
  x->use_tcp = 1;
  uv_udp_recv_stop(&x->udp);
  x->tcp_buf = malloc(2 + PX_DNS_MSG_MAX);
  if (x->tcp_buf == NULL || uv_tcp_init(x->loop, &x->tcp) != 0) {
    finish(x, "out of memory", NULL, 0);
    return;
  }
  x->tcp.data = x;
  x->handles++;
  x->connect.data = x;
  if (uv_tcp_connect(&x->connect, &x->tcp, (const struct sockaddr *)&x->server, on_tcp_connect) !=
      0) {
    finish(x, "cannot connect to the DNS server over TCP", NULL, 0);
    return;
  }
  x->pending++;
  uv_timer_start(&x->timer, on_timer, x->timeout_ms, 0);
}

/* ---- UDP ---- */

static void on_udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  (void)hint;
  px_dns_exchange *x = h->data;
  buf->base = (char *)x->udp_buf;
  buf->len = sizeof(x->udp_buf);
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr *b) {
  if (b == NULL || a->ss_family != b->sa_family) return 0;
  if (a->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
  return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

static void on_udp_read(uv_udp_t *u, ssize_t n, const uv_buf_t *buf, const struct sockaddr *from,
                        unsigned flags) {
  (void)buf;
  px_dns_exchange *x = u->data;
  if (x->done || x->use_tcp || n <= 0 || (flags & UV_UDP_PARTIAL)) return;
  /* Anything not from the server, or with another ID, is ignored. */
  if (!same_addr(&x->server, from) || !matches(x, x->udp_buf, (size_t)n)) return;
  if (x->udp_buf[2] & 0x02) { /* TC: the full answer is on TCP */
    char addr[64];
    px_dns_addr_str(&x->server, addr, sizeof(addr));
    px_log(PX_LOG_DEBUG, "dns: the answer from %s is truncated; asking again over TCP", addr);
    start_tcp(x);
    return;
  }
  finish(x, NULL, x->udp_buf, (size_t)n);
}

static void on_udp_sent(uv_udp_send_t *s, int status) {
  (void)status; /* a lost datagram is resent by the timer */
  px_dns_exchange *x = s->data;
  x->pending--;
  maybe_free(x);
}

static void send_udp(px_dns_exchange *x) {
  uv_buf_t b = uv_buf_init((char *)x->req, (unsigned)x->req_len);
  x->usend.data = x;
  x->tries++;
  if (x->pending == 0 &&
      uv_udp_send(&x->usend, &x->udp, &b, 1, (const struct sockaddr *)&x->server, on_udp_sent) == 0)
    x->pending++;
  uv_timer_start(&x->timer, on_timer, x->timeout_ms / UDP_TRIES + 1, 0);
}

static void on_timer(uv_timer_t *t) {
  px_dns_exchange *x = t->data;
  if (x->done) return;
  if (x->fail) {
    finish(x, x->fail, NULL, 0);
  } else if (!x->use_tcp && x->tries < UDP_TRIES) {
    send_udp(x);
  } else {
    char addr[64], err[128];
    px_dns_addr_str(&x->server, addr, sizeof(addr));
    snprintf(err, sizeof(err), "the DNS server %s did not answer within %llu ms", addr,
             (unsigned long long)x->timeout_ms);
    finish(x, err, NULL, 0);
  }
}

px_dns_exchange *px_dns_exchange_start(uv_loop_t *loop, const struct sockaddr_storage *server,
                                       const uint8_t *msg, size_t len, uint64_t timeout_ms,
                                       px_dns_exchange_cb cb, void *arg) {
  px_dns_exchange *x = calloc(1, sizeof(*x));
  if (x == NULL || len < 12 || len > PX_DNS_MSG_MAX || (x->req = malloc(len)) == NULL) {
    free(x);
    return NULL;
  }
  memcpy(x->req, msg, len);
  x->req_len = len;
  x->loop = loop;
  x->server = *server;
  x->timeout_ms = timeout_ms ? timeout_ms : 5000;
  x->cb = cb;
  x->arg = arg;
  uv_timer_init(loop, &x->timer);
  x->timer.data = x;
  x->handles++;
  if (uv_udp_init(loop, &x->udp) != 0) {
    x->fail = "cannot open a UDP socket";
    uv_timer_start(&x->timer, on_timer, 0, 0);
    return x;
  }
  x->udp.data = x;
  x->handles++;
  /* Connected-less socket bound to any port of the server's family. */
  struct sockaddr_storage any;
  memset(&any, 0, sizeof(any));
  any.ss_family = server->ss_family;
  int r = uv_udp_bind(&x->udp, (const struct sockaddr *)&any, 0);
  if (r == 0) r = uv_udp_recv_start(&x->udp, on_udp_alloc, on_udp_read);
  if (r != 0) {
    x->fail = "cannot open a UDP socket";
    uv_timer_start(&x->timer, on_timer, 0, 0);
    return x;
  }
  send_udp(x);
  return x;
}
