/*
 * Client connection transport: accept, read (through TLS when on HTTPS),
 * write with backpressure accounting, timers and closing. The session on
 * top (h1.c, h2.c) is reached only through c->session_ops.
 */
#include "proxy/conn.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/metrics.h"
#include "proxy/proxy_protocol.h"
#include "proxy/util/access.h"
#include "proxy/util/stream_write.h"
#include "tls/log.h"

static void on_closed(uv_handle_t *h) {
  px_conn *c = h->data;
  if (--c->pending_closes > 0) return;
  px_worker *w = c->w;
  px_wgen *wg = c->wg;
  if (c->session) c->session_ops->free(c);
  free(c->pp_buf);
  free(c);
  px_worker_conn_closed(w, wg);
}

void px_conn_close(px_conn *c) {
  if (c->closed) return;
  c->closed = 1;
  if (c->tls && (c->state == PX_CONN_HANDSHAKE || c->state == PX_CONN_CERT_WAIT))
    px_metrics_tls_failed(c->w->metrics, PX_METRICS_TLS_CLOSED);
  if (c->metrics_kind) px_metrics_conn_close(c->w->metrics, c->metrics_kind - 1);
  c->state = PX_CONN_CLOSING;
  if (c->session) c->session_ops->close(c); /* freed in on_closed: callers may still hold it */
  if (c->tls) px_tls_conn_free(c->tls);
  c->tls = NULL;
  /* unlink from the worker's list */
  if (c->prev)
    c->prev->next = c->next;
  else
    c->w->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  c->pending_closes = 2;
  uv_close((uv_handle_t *)&c->tcp, on_closed);
  uv_close(px_lazy_timer_handle(&c->timer), on_closed);
}

static void linger(px_conn *c);

static void on_write(uv_write_t *req, int status) {
  px_conn *c = req->handle->data;
  size_t done = px_stream_write_done(req);
  c->write_pending -= done;
  c->moved += done;
  if (c->closed) return;
  if (status != 0) {
    px_conn_close(c);
    return;
  }
  if (c->write_pending == 0 && c->close_after_flush) {
    linger(c);
    return;
  }
  c->session_ops->drain(c);
}

static int socket_write(px_conn *c, const char *data, size_t len) {
  return px_stream_write((uv_stream_t *)&c->tcp, data, len, &c->write_pending, on_write);
}

/* Moves pending TLS ciphertext to the socket. */
static int flush_tls(px_conn *c) {
  if (c->tls == NULL) return 0;
  size_t n;
  const char *p = px_tls_conn_output(c->tls, &n);
  if (p == NULL) return UV_EPROTO; /* sealing gathered writes failed */
  if (n == 0) return 0;
  /* Written in place; what the socket does not take is copied into the
   * write queue, so the TLS queue empties either way. */
  int r = socket_write(c, p, n);
  px_tls_conn_consume_output(c->tls, n);
  return r;
}

int px_conn_write(px_conn *c, const void *data, size_t len) {
  if (c->closed) return UV_ECANCELED;
  int r;
  if (c->tls) {
    if (px_tls_conn_write(c->tls, data, len) != PX_TLS_OK) {
      px_conn_close(c);
      return UV_EPROTO;
    }
    /* Encrypted now, sent once the event is handled: a response head and
     * its body leave in one write (px_conn_mark_dirty). */
    if (!c->dirty) px_conn_mark_dirty(c);
    r = 0;
  } else {
    r = socket_write(c, data, len);
  }
  if (r != 0) px_conn_close(c);
  return r;
}

/* Sends the TLS output an event queued. */
static void flush(px_conn *c) {
  /* dirty stays set while HTTP/2 frames are produced, so their writes do
   * not put the connection on the list again. */
  if (!c->closed && c->session_ops->flush) c->session_ops->flush(c);
  c->dirty = 0;
  if (c->closed || c->tls == NULL) return;
  if (flush_tls(c) != 0) px_conn_close(c);
}

static void on_linger_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  px_conn *c = h->data;
  buf->base = c->w->read_slab;
  buf->len = PX_READ_SLAB;
}

/* Input after our last response is read and dropped, up to the linger
 * bound, so the client is not reset before it has read that response. */
static void on_linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  px_conn *c = s->data;
  if (nread < 0 || (c->linger_bytes += (size_t)nread) > PX_LINGER_MAX_BYTES) px_conn_close(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  px_conn *c = req->data;
  free(req);
  if (status != 0 && !c->closed) px_conn_close(c);
}

/* Everything is written: half-close, then drain the client's remaining
 * input for a moment before closing (like nginx's lingering close). */
static void linger(px_conn *c) {
  if (c->closed) return;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL || c->peer_eof) {
    free(req);
    px_conn_close(c);
    return;
  }
  req->data = c;
  if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    free(req);
    px_conn_close(c);
    return;
  }
  if (c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = uv_read_start((uv_stream_t *)&c->tcp, on_linger_alloc, on_linger_read) == 0;
  px_conn_set_timer(c, PX_LINGER_MS);
}

void px_conn_close_after_flush(px_conn *c) {
  if (c->closed || c->close_after_flush) return;
  c->state = PX_CONN_CLOSING;
  px_conn_pause_read(c);
  if (c->tls) {
    px_tls_conn_shutdown(c->tls);
    if (flush_tls(c) != 0) {
      px_conn_close(c);
      return;
    }
  }
  c->close_after_flush = 1;
  if (c->write_pending == 0) {
    linger(c);
    return;
  }
  /* Bound the flush: a client that never reads must not hold us forever. */
  px_conn_set_timer(c, c->wg->cfg->limits.send_timeout_ms);
}

static void on_timer(void *data) {
  px_conn *c = data;
  switch (c->state) {
  case PX_CONN_IDLE:
  case PX_CONN_HEADERS:
  case PX_CONN_ACTIVE:
    c->session_ops->timer(c); /* what the deadline meant is the session's */
    break;
  default:
    if (c->state == PX_CONN_HANDSHAKE || c->state == PX_CONN_CERT_WAIT) {
      px_metrics_tls_failed(c->w->metrics, c->state == PX_CONN_HANDSHAKE
                                               ? PX_METRICS_TLS_TIMEOUT
                                               : PX_METRICS_TLS_CERT_WAIT_TIMEOUT);
      c->state = PX_CONN_CLOSING; /* counted: not again as "closed" */
    }
    px_conn_close(c);
    break;
  }
}

/* True while the proxy waits on the client rather than on itself or an
 * upstream: response bytes queued that the client does not take, or a
 * request body that is due and not held back by our own backpressure. */
static int awaits_client(const px_conn *c) {
  if (c->closed || c->session_ops->phase(c) == PX_SESSION_TUNNEL) return 0;
  if (c->write_pending > 0) return 1;
  return c->session_ops->awaits_client(c);
}

static void check_rate(px_conn *c, uint64_t now) {
  const px_limits *l = &c->wg->cfg->limits;
  if (l->min_rate == 0 || !awaits_client(c)) {
    c->rate_mark_at = now;
    c->rate_mark_moved = c->moved;
    return;
  }
  if (now - c->rate_mark_at < l->min_rate_window_ms) return;
  /* Each byte used to reset the body and send timers, so a client that
   * trickled one byte at a time held its connection (and a backend
   * connection) forever; a rate over a window cannot be gamed that way. */
  uint64_t want = (uint64_t)l->min_rate * l->min_rate_window_ms / 1000;
  uint64_t got = c->moved - c->rate_mark_moved;
  if (got < want) {
    px_log(PX_LOG_INFO,
           "client %s: moved %llu bytes in %llu ms, under timeouts.min_rate (%zu/s): closing",
           c->peer_ip, (unsigned long long)got, (unsigned long long)(now - c->rate_mark_at),
           l->min_rate);
    px_conn_close(c);
    return;
  }
  c->rate_mark_at = now;
  c->rate_mark_moved = c->moved;
}

void px_conn_set_timer(px_conn *c, uint64_t ms) {
  if (c->closed) return;
  px_lazy_timer_set(&c->timer, ms, on_timer);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  px_conn *c = h->data;
  buf->base = c->w->read_slab;
  buf->len = PX_READ_SLAB;
}

/* Decrypts and parses as much as the session will take. */
static void pump(px_conn *c) {
  const px_session_ops *ops = c->session_ops;
  if (!ops->resume(c)) return;
  if (c->tls == NULL) return;
  while (!c->closed && !ops->paused(c) && c->state != PX_CONN_CLOSING) {
    int n = px_tls_conn_read(c->tls, c->w->plain_slab, PX_READ_SLAB);
    if (n > 0) {
      if (!ops->feed(c, c->w->plain_slab, (size_t)n)) return;
      continue;
    }
    if (n == PX_TLS_WANT_READ) break;
    /* close_notify or a fatal alert: nothing more will come. */
    px_session_phase phase = ops->phase(c);
    if (phase == PX_SESSION_TUNNEL)
      px_conn_close(c);
    else if (c->tls && flush_tls(c) == 0 && phase == PX_SESSION_IDLE && c->write_pending > 0)
      px_conn_close_after_flush(c);
    else if (phase == PX_SESSION_IDLE)
      px_conn_close(c);
    else
      c->peer_eof = 1;
    return;
  }
  if (!c->closed && c->tls && flush_tls(c) != 0) px_conn_close(c);
}

/* Counts the connection as open under the protocol its session speaks. */
static void count_open(px_conn *c, const char *alpn) {
  if (c->w->metrics == NULL) return;
  px_metrics_conn kind = alpn && strcmp(alpn, "h2") == 0 ? PX_METRICS_CONN_H2 : PX_METRICS_CONN_H1;
  c->metrics_kind = 1 + (int)kind;
  px_metrics_conn_open(c->w->metrics, kind);
}

static void handshake(px_conn *c) {
  int r = px_tls_conn_handshake(c->tls);
  if (r == PX_TLS_WANT_READ) {
    if (flush_tls(c) != 0) px_conn_close(c);
    return;
  }
  if (r == PX_TLS_PENDING) {
    /* The certificate manager is fetching this name: wait without reading
     * (nothing else can happen before the ServerHello). */
    if (c->state != PX_CONN_CERT_WAIT) {
      const char *sni = px_tls_conn_sni(c->tls);
      snprintf(c->sni, sizeof(c->sni), "%s", sni ? sni : "");
      c->state = PX_CONN_CERT_WAIT;
      px_conn_stop_reading(c);
      px_conn_set_timer(c, c->wg->cfg->limits.on_demand_timeout_ms);
    }
    return;
  }
  if (r != PX_TLS_OK) {
    px_metrics_tls_failed(c->w->metrics, r == PX_TLS_CLOSED ? PX_METRICS_TLS_CLOSED
                                         : px_tls_conn_unknown_name(c->tls)
                                             ? PX_METRICS_TLS_UNKNOWN_NAME
                                             : PX_METRICS_TLS_PROTOCOL);
    c->state = PX_CONN_CLOSING; /* counted: not again as "closed" */
    /* The alert (e.g. unrecognized_name) is in the output: send it, close. */
    flush_tls(c);
    if (!c->closed) px_conn_close_after_flush(c);
    return;
  }
  px_metrics_tls_done(c->w->metrics, px_tls_conn_resumed(c->tls));
  const char *sni = px_tls_conn_sni(c->tls);
  snprintf(c->sni, sizeof(c->sni), "%s", sni ? sni : "");
  if (px_tls_conn_is_acme_challenge(c->tls)) {
    /* tls-alpn-01: the CA only needed the handshake (RFC 8737 §3). */
    px_log(PX_LOG_INFO, "acme: answered tls-alpn-01 for %s", c->sni);
    px_conn_close_after_flush(c);
    return;
  }
  c->state = PX_CONN_IDLE;
  c->tls_done = 1;
  /* The first request must arrive as promptly as any request head. */
  px_conn_set_timer(c, c->wg->cfg->limits.header_timeout_ms);
  if (c->start_session(c, px_tls_conn_alpn(c->tls)) != 0) {
    px_conn_close(c);
    return;
  }
  count_open(c, px_tls_conn_alpn(c->tls));
  if (flush_tls(c) != 0) {
    px_conn_close(c);
    return;
  }
  pump(c);
}

/* Client bytes after any PROXY header: through TLS, or to the session. */
static void on_bytes(px_conn *c, const char *data, size_t len) {
  if (c->tls) {
    px_tls_conn_feed(c->tls, data, len);
    /* A paused parser leaves records undecrypted: bound them (see h1.c). */
    if (px_conn_input_full(c)) px_conn_stop_reading(c);
    if (c->state == PX_CONN_HANDSHAKE) {
      handshake(c);
      return;
    }
    pump(c);
    return;
  }
  c->session_ops->feed(c, data, len);
}

/* After the PROXY header: the connection starts as accept would have
 * started it, with the header's client address. */
static void proxy_header_done(px_conn *c, const px_proxy_header *h) {
  free(c->pp_buf);
  c->pp_buf = NULL;
  c->pp_len = 0;
  if (!h->local) {
    const px_config *cfg = c->wg->cfg;
    inet_ntop(h->family, h->src, c->peer_ip, sizeof(c->peer_ip));
    /* The header's client is who sent the HTTP fields that follow: they
     * are believed only when that address is itself a trusted proxy. */
    c->trusted = px_cidr_match(cfg->trusted_proxies, cfg->ntrusted_proxies, h->family, h->src);
  }
  c->state = c->tls ? PX_CONN_HANDSHAKE : PX_CONN_IDLE;
  px_conn_set_timer(c, c->tls ? c->wg->cfg->limits.handshake_timeout_ms
                              : c->wg->cfg->limits.header_timeout_ms);
}

/* Reads the PROXY header (proxy/proxy_protocol.h). Most arrive in one
 * read, parsed in place; a header split across reads is gathered in a
 * buffer of the largest size allowed. */
static void on_proxy_bytes(px_conn *c, const char *data, size_t len) {
  px_proxy_header h;
  const uint8_t *p = (const uint8_t *)data;
  size_t have = len, took = 0;
  if (c->pp_len > 0 || c->pp_buf) {
    took = len < PX_PROXY_V2_MAX - c->pp_len ? len : PX_PROXY_V2_MAX - c->pp_len;
    memcpy(c->pp_buf + c->pp_len, data, took);
    c->pp_len += took;
    p = c->pp_buf;
    have = c->pp_len;
  }
  long n = px_proxy_parse(p, have, &h);
  if (n < 0 || (n == 0 && have >= PX_PROXY_V2_MAX)) {
    px_log(PX_LOG_DEBUG, "client %s: malformed PROXY protocol header: closing", c->peer_ip);
    px_conn_close(c);
    return;
  }
  if (n == 0) {
    if (c->pp_buf == NULL) {
      if ((c->pp_buf = malloc(PX_PROXY_V2_MAX)) == NULL) {
        px_conn_close(c);
        return;
      }
      memcpy(c->pp_buf, data, len); /* len < PX_PROXY_V2_MAX: parse asked for more */
      c->pp_len = len;
    }
    return;
  }
  /* What followed the header: the rest of the gathered buffer, then the
   * part of this read that did not fit in it. */
  char rest[PX_PROXY_V2_MAX];
  size_t nrest = have - (size_t)n;
  const char *after = (const char *)p + n, *tail = data + took;
  size_t ntail = p == (const uint8_t *)data ? 0 : len - took;
  if (p != (const uint8_t *)data) {
    memcpy(rest, after, nrest); /* pp_buf is freed below */
    after = rest;
  }
  proxy_header_done(c, &h);
  if (nrest > 0 && !c->closed) on_bytes(c, after, nrest);
  if (ntail > 0 && !c->closed) on_bytes(c, tail, ntail);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  px_conn *c = s->data;
  if (c->closed || nread == 0) return;
  if (nread < 0) {
    c->peer_eof = 1;
    if (nread == UV_EOF && c->state != PX_CONN_PROXY_HEADER &&
        c->session_ops->phase(c) == PX_SESSION_RESPONSE) {
      /* A half-close after a complete request: let the response finish. */
      px_conn_pause_read(c);
      return;
    }
    px_conn_close(c);
    return;
  }
  c->moved += (uint64_t)nread;
  if (c->state == PX_CONN_PROXY_HEADER)
    on_proxy_bytes(c, buf->base, (size_t)nread);
  else
    on_bytes(c, buf->base, (size_t)nread);
}

void px_conn_stop_reading(px_conn *c) {
  if (c->reading && !c->closed) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
  }
}

void px_conn_pause_read(px_conn *c) {
  c->read_paused = 1;
  px_conn_stop_reading(c);
}

int px_conn_input_full(const px_conn *c) {
  return c->session_ops->input_full(c, c->tls ? px_tls_conn_input_len(c->tls) : 0);
}

void px_conn_start_reading(px_conn *c) {
  if (c->closed || c->state == PX_CONN_CLOSING || c->session_ops->paused(c) || c->read_paused)
    return;
  if (px_conn_input_full(c)) return;
  if (c->reading || c->peer_eof) return;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    px_conn_close(c);
    return;
  }
  c->reading = 1;
}

void px_conn_resume_read(px_conn *c) {
  c->read_paused = 0;
  px_conn_start_reading(c);
  if (c->closed || c->session_ops->paused(c)) return;
  pump(c); /* on plain HTTP only what the session held back */
}

static void retry_handshake(px_conn *c) {
  c->state = PX_CONN_HANDSHAKE;
  px_conn_set_timer(c, c->wg->cfg->limits.handshake_timeout_ms);
  handshake(c);
  if (!c->closed && c->state != PX_CONN_CERT_WAIT && !c->reading && c->state != PX_CONN_CLOSING &&
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
}

static void drain(px_conn *c) {
  if (c->state == PX_CONN_PROXY_HEADER)
    px_conn_close(c);
  else if (c->state == PX_CONN_HANDSHAKE || c->state == PX_CONN_CERT_WAIT)
    px_conn_close_after_flush(c);
  else
    c->session_ops->shutdown(c);
}

/* A PROXY protocol listener takes connections from trusted_proxies only:
 * anyone else could claim any address. Logged at most once a second per
 * worker, so a scan cannot flood the log. */
static void refuse_untrusted(px_conn *c) {
  static __thread uint64_t last_logged, suppressed;
  uint64_t now = uv_now(&c->w->loop);
  if (last_logged == 0 || now - last_logged >= 1000) {
    px_log(PX_LOG_WARN,
           "client %s: not in trusted_proxies, refused on a PROXY protocol listener"
           " (%llu more refused since the last such line)",
           c->peer_ip, (unsigned long long)suppressed);
    last_logged = now;
    suppressed = 0;
  } else {
    suppressed++;
  }
  px_conn_close(c);
}

void px_conn_accept(px_listener *l) {
  px_worker *w = l->w;
  px_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return;
  c->w = w;
  c->wg = px_worker_hold(w); /* released in on_closed, whichever way it closes */
  c->is_https = l->is_https;
  c->start_session = l->start_session;
  uv_tcp_init(&w->loop, &c->tcp);
  px_lazy_timer_init(&w->loop, &c->timer, c);
  c->tcp.data = c;
  if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) != 0) {
    c->pending_closes = 2;
    c->closed = 1;
    w->nconns++; /* on_closed decrements through px_worker_conn_closed */
    uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close(px_lazy_timer_handle(&c->timer), on_closed);
    return;
  }
  w->nconns++;
  c->next = w->conns;
  if (w->conns) w->conns->prev = c;
  w->conns = c;
  uv_tcp_nodelay(&c->tcp, 1);

  struct sockaddr_storage ss;
  int len = sizeof(ss);
  c->peer_ip[0] = '\0';
  c->rate_mark_at = uv_now(&l->w->loop);
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer_ip, sizeof(c->peer_ip));
    else
      uv_ip4_name((struct sockaddr_in *)&ss, c->peer_ip, sizeof(c->peer_ip));
    c->trusted = px_cidr_match_sockaddr(c->wg->cfg->trusted_proxies, c->wg->cfg->ntrusted_proxies,
                                        (const struct sockaddr *)&ss);
  }
  if (l->proxy_protocol && !c->trusted) {
    refuse_untrusted(c);
    return;
  }
  if (c->start_session(c, NULL) != 0) {
    px_conn_close(c);
    return;
  }
  if (c->is_https) {
    c->tls = px_tls_conn_new(c->wg->gen->tls);
    if (c->tls == NULL) {
      px_conn_close(c);
      return;
    }
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) px_tls_conn_set_socket(c->tls, fd);
    c->state = PX_CONN_HANDSHAKE;
    px_conn_set_timer(c, c->wg->cfg->limits.handshake_timeout_ms);
  } else {
    c->state = PX_CONN_IDLE;
    px_conn_set_timer(c, c->wg->cfg->limits.header_timeout_ms);
    count_open(c, NULL);
  }
  if (l->proxy_protocol) {
    /* The header comes first, before TLS or HTTP (the PROXY protocol
     * specification, §2): the handshake timer starts once it is read. */
    c->state = PX_CONN_PROXY_HEADER;
    px_conn_set_timer(c, c->wg->cfg->limits.proxy_header_timeout_ms);
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    px_conn_close(c);
    return;
  }
  c->reading = 1;
}

void px_conn_access_fields(const px_conn *c, px_access_entry *e) {
  e->peer_ip = c->peer_ip;
  e->is_https = c->is_https;
  if (c->tls && c->tls_done) {
    e->tls_version = px_tls_conn_version(c->tls);
    e->alpn = px_tls_conn_alpn(c->tls);
    e->sni = c->sni[0] ? c->sni : NULL;
  }
}

void px_conn_mark_dirty(px_conn *c) {
  px_worker *w = c->w;
  if (w->ndirty == w->dirty_cap) {
    size_t cap = w->dirty_cap ? w->dirty_cap * 2 : 64;
    px_conn **n = realloc(w->dirty, cap * sizeof(*n));
    if (n == NULL) {
      flush(c); /* no room to defer: send now */
      return;
    }
    w->dirty = n;
    w->dirty_cap = cap;
  }
  c->dirty = 1;
  w->dirty[w->ndirty++] = c;
}

/* Connections closed meanwhile are still allocated: they are freed in the
 * loop's closing phase, after the check phase that calls this. */
void px_conn_flush_dirty(px_worker *w) {
  for (size_t i = 0; i < w->ndirty; i++)
    flush(w->dirty[i]);
  w->ndirty = 0;
}

void px_conn_check_rates(px_worker *w, uint64_t now) {
  for (px_conn *c = w->conns, *next; c; c = next) {
    next = c->next; /* a slow connection is closed (unlinked) here */
    check_rate(c, now);
  }
}

void px_conn_drain_all(px_worker *w) {
  for (px_conn *c = w->conns, *next; c; c = next) {
    next = c->next;
    drain(c);
  }
}

void px_conn_close_all(px_worker *w) {
  while (w->conns)
    px_conn_close(w->conns);
}

void px_conn_retry_handshakes(px_worker *w, const char *name) {
  for (px_conn *c = w->conns, *next; c; c = next) {
    next = c->next; /* the retry may close c */
    if (c->state == PX_CONN_CERT_WAIT && strcmp(c->sni, name) == 0)
      retry_handshake(c);
    else if (c->state == PX_CONN_ACTIVE && c->session_ops && c->session_ops->resolved)
      c->session_ops->resolved(c, name); /* an http-01 request waiting on the store */
  }
}
