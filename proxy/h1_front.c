/*
 * The HTTP/1.1 side of an exchange (proxy/front.h): response framing toward
 * the client (Content-Length, chunked, or until close), backpressure on the
 * connection, and the end of the exchange.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"
#include "proxy/exchange.h"
#include "proxy/h1.h"

static px_conn *conn_of(px_front *f) {
  return ((px_h1 *)(void *)((char *)f - offsetof(px_h1, front)))->c;
}

static int h1_response_head(px_front *f, const px_http_head *h, const px_hsts *hsts,
                            int64_t content_length, int no_body, int upgrade) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  int keep = 1;
  h1->resp_chunked = 0;
  h1->resp_close = 0;
  if (!no_body && !upgrade && content_length < 0) {
    /* Unknown length: chunked for HTTP/1.1, the end of the connection for
     * HTTP/1.0 (RFC 9112 §6.3). */
    if (h1->parser.http_minor >= 1)
      h1->resp_chunked = 1;
    else
      h1->resp_close = 1;
  }
  if (h1->resp_close || !llhttp_should_keep_alive(&h1->parser) || c->w->draining) keep = 0;
  char extra[256];
  size_t extra_len = hsts ? px_http_hsts_line(hsts, extra, sizeof(extra)) : 0;
  size_t cap = h->arena_len + extra_len + 256;
  /* px_conn_write copies, so the head is built on the stack when it fits. */
  char stack_out[8192];
  char *out = cap <= sizeof(stack_out) ? stack_out : malloc(cap);
  px_http_conn_mode mode = upgrade ? PX_HTTP_UPGRADE : keep ? PX_HTTP_KEEP_ALIVE : PX_HTTP_CLOSE;
  long n = out ? px_http_serialize_response(h, extra_len ? extra : NULL, content_length,
                                            h1->resp_chunked, mode, out, cap)
               : -1;
  int r = n < 0 ? -1 : px_conn_write(c, out, (size_t)n);
  if (out != stack_out) free(out);
  h1->resp_head_sent = 1;
  return r;
}

static int h1_response_body(px_front *f, const char *data, size_t len) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  if (!h1->resp_chunked) return px_conn_write(c, data, len);
  /* One write (one TLS record) per chunk when it is small. */
  char buf[16384 + 32];
  int n = snprintf(buf, sizeof(buf), "%zx\r\n", len);
  if (len <= sizeof(buf) - (size_t)n - 2) {
    memcpy(buf + n, data, len);
    memcpy(buf + n + len, "\r\n", 2);
    return px_conn_write(c, buf, (size_t)n + len + 2);
  }
  if (px_conn_write(c, buf, (size_t)n) != 0 || px_conn_write(c, data, len) != 0) return -1;
  return px_conn_write(c, "\r\n", 2);
}

static int h1_response_end(px_front *f, const px_http_head *trailers) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  if (!h1->resp_chunked) return 0;
  char buf[16384 + 16];
  long n = px_http_serialize_last_chunk(trailers, buf, sizeof(buf));
  if (n < 0) n = px_http_serialize_last_chunk(NULL, buf, sizeof(buf)); /* oversized: drop them */
  return px_conn_write(c, buf, (size_t)n);
}

static size_t h1_pending(px_front *f) { return conn_of(f)->write_pending; }

static void h1_pause(px_front *f) { px_conn_pause_read(conn_of(f)); }

static void h1_resume(px_front *f) { px_conn_resume_read(conn_of(f)); }

static void h1_set_timer(px_front *f, uint64_t ms) { px_conn_set_timer(conn_of(f), ms); }

static void h1_done(px_front *f, int keep) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  h1->ex = NULL;
  px_h1_exchange_done(c, keep && !h1->resp_close);
}

static void h1_failed(px_front *f, int status) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  h1->ex = NULL;
  h1->tunnel = 0;
  if (status == 0 || h1->resp_head_sent) {
    px_conn_close(c);
    return;
  }
  px_h1_respond_unlogged(c, status); /* the exchange logged this request */
}

static void h1_tunnel(px_front *f) {
  px_conn *c = conn_of(f);
  px_h1 *h1 = px_h1_of(c);
  h1->tunnel = 1;
  /* Frames the client sent right behind its request were stashed. */
  if (h1->stash) {
    char *stash = h1->stash;
    size_t off = h1->stash_off, len = h1->stash_len;
    h1->stash = NULL;
    h1->stash_len = h1->stash_off = 0;
    int r = px_exchange_tunnel_write(h1->ex, stash + off, len - off);
    free(stash);
    if (r != 0) return;
  }
  px_conn_resume_read(c);
}

static const px_front_ops h1_ops = {
    .response_head = h1_response_head,
    .response_body = h1_response_body,
    .response_end = h1_response_end,
    .pending = h1_pending,
    .pause_request = h1_pause,
    .resume_request = h1_resume,
    .set_timer = h1_set_timer,
    .done = h1_done,
    .failed = h1_failed,
    .tunnel = h1_tunnel,
};

void px_h1_front_init(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  h1->front.ops = &h1_ops;
  h1->front.w = c->w;
  h1->front.wg = c->wg;
  h1->front.peer_ip = c->peer_ip;
  h1->front.is_https = c->is_https;
  h1->front.proto = "HTTP/1.1";
  h1->front.conn = c;
}
