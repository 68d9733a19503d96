#include "proxy/h2.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/conn.h"
#include "proxy/exchange.h"
#include "proxy/http/route.h"
#include "proxy/metrics.h"
#include "proxy/util/access.h"
#include "proxy/util/obj_cache.h"
#include "tls/log.h"
#include "tls/unconst.h"

/* SETTINGS we state ourselves (never nghttp2's unlimited defaults). */
#define H2_MAX_STREAMS 100
#define H2_STREAM_WINDOW 65536
#define H2_CONN_WINDOW (1 << 20)
/* Misbehaviour a connection may show before GOAWAY (docs/http2.md). */
#define H2_GLITCH_LIMIT 200

typedef struct out_chunk {
  struct out_chunk *next;
  size_t len, off;
  char data[];
} out_chunk;

typedef struct h2_stream {
  px_front front; /* first: the exchange calls us through it */
  px_h2 *h2;
  int32_t id;
  px_http_head *head;
  int in_field;
  size_t head_bytes;
  int too_large;
  char authority[256];
  size_t authority_len;
  int authority_bad; /* longer than any host name: answered with 400 */
  int has_method, has_path;
  px_exchange *ex;
  int head_sent;
  int end_seen;      /* END_STREAM from the client */
  int paused;        /* the upstream is behind: hold back WINDOW_UPDATE */
  size_t unconsumed; /* request bytes received while paused */
  out_chunk *out, *out_tail;
  size_t out_bytes;
  int out_eof;
  int deferred;
  int queued;             /* a bodiless request waiting for a backend slot */
  uint64_t due;           /* loop time of this stream's deadline (st_set_timer); 0 = none */
  px_http_head *trailers; /* sent in a HEADERS frame after the DATA */
  struct h2_stream *next, *prev;
} h2_stream;

struct px_h2 {
  px_conn *c;
  nghttp2_session *session;
  h2_stream *streams;
  size_t nstreams;
  unsigned glitches;
  uint64_t streams_opened;  /* request streams ever begun on this connection */
  uint64_t data_frames_out; /* DATA frames sent: what may earn a WINDOW_UPDATE */
  uint64_t window_updates;  /* WINDOW_UPDATE frames received */
  size_t out_total;         /* response bytes buffered across this connection's streams */
  int over_budget;          /* a stream was told the connection is full: wake them on drain */
  size_t nqueued;           /* streams waiting for a backend slot (upstreams_per_connection) */
  int closing;
  int in_send; /* inside nghttp2_session_mem_send */
};

static const px_front_ops stream_ops;

/* nghttp2 allocates several small objects per stream: through the
 * per-thread block cache (proxy/util/obj_cache.h). */
static void *mem_malloc(size_t size, void *ud) { return px_obj_alloc(size); }
static void mem_free(void *ptr, void *ud) { px_obj_free(ptr); }
static void *mem_calloc(size_t nmemb, size_t size, void *ud) { return px_obj_calloc(nmemb, size); }
static void *mem_realloc(void *ptr, size_t size, void *ud) { return px_obj_realloc(ptr, size); }
static nghttp2_mem h2_mem = {NULL, mem_malloc, mem_free, mem_calloc, mem_realloc};

static h2_stream *stream_of(px_front *f) { return (h2_stream *)f; }

static void glitch(px_h2 *h2, unsigned weight, const char *what) {
  h2->glitches += weight;
  if (h2->glitches > H2_GLITCH_LIMIT && !h2->closing) {
    px_log(PX_LOG_WARN, "client %s: HTTP/2 misbehaviour (%s): GOAWAY", h2->c->peer_ip, what);
    h2->closing = 1;
    nghttp2_session_terminate_session(h2->session, NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

/* ---- output ------------------------------------------------------------------ */

/* HTTP/2 frames gathered into one TLS record: one buffer per worker thread,
 * as only one connection flushes at a time. */
static __thread char h2_out[16384];
/* Response bytes held in this worker's HTTP/2 streams (the per-worker
 * share of limits.total_buffer). */
static __thread size_t worker_buffered;

static void flush(px_h2 *h2) {
  px_conn *c = h2->c;
  if (h2->in_send || c->closed) return;
  h2->in_send = 1;
  /* Frames are gathered into one buffer so that many small ones (a HEADERS
   * and a DATA per response) leave as one TLS record, not one each: fewer
   * seals here, fewer opens at the client. */
  char *buf = h2_out;
  size_t used = 0;
  /* Stop producing while the socket is behind: nghttp2 keeps the rest. */
  while (!c->closed && c->write_pending < c->wg->cfg->limits.buffer_size) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(h2->session, &data);
    if (n <= 0) break;
    if (used + (size_t)n > sizeof(h2_out)) {
      if (px_conn_write(c, buf, used) != 0) break;
      used = 0;
    }
    if ((size_t)n >= sizeof(h2_out)) {
      if (px_conn_write(c, data, (size_t)n) != 0) break;
      continue;
    }
    memcpy(buf + used, data, (size_t)n);
    used += (size_t)n;
  }
  if (used && !c->closed) px_conn_write(c, buf, used);
  h2->in_send = 0;
  if (c->closed) return;
  if (!nghttp2_session_want_read(h2->session) && !nghttp2_session_want_write(h2->session))
    px_conn_close_after_flush(c);
  else if (h2->nstreams == 0 && h2->streams_opened > 0)
    /* Until its first request a connection has timeouts.request_header,
     * set at the handshake: one that never sends the preface (or never a
     * request) must not hold a slot for the keep-alive time. */
    px_conn_set_timer(c, c->wg->cfg->limits.keepalive_timeout_ms);
}

/* Exchanges running on this connection (each holds a backend connection). */
static size_t running(const px_h2 *h2) {
  size_t n = 0;
  for (const h2_stream *st = h2->streams; st; st = st->next)
    n += st->ex != NULL;
  return n;
}

static void start_request(h2_stream *st, int end_stream);

/* Starts queued requests, oldest first, while backend slots are free. */
static void start_queued(px_h2 *h2) {
  size_t limit = h2->c->wg->cfg->limits.upstreams_per_connection;
  while (h2->nqueued && !h2->c->closed && running(h2) < limit) {
    h2_stream *oldest = NULL;
    for (h2_stream *st = h2->streams; st; st = st->next)
      if (st->queued && (oldest == NULL || st->id < oldest->id)) oldest = st;
    if (oldest == NULL) break;
    oldest->queued = 0;
    h2->nqueued--;
    start_request(oldest, 1);
  }
}

/* Sends what the session has queued: from the worker's check phase for
 * connections marked dirty, and when the connection's output drained. */
static void flush_session(px_h2 *h2) {
  if (h2->nqueued) start_queued(h2);
  flush(h2);
}

/* Responses produced while handling one event are sent together from the
 * worker's check phase (px_conn_flush), so frames of many streams share TLS
 * records and writes. */
static void schedule(px_h2 *h2) {
  px_conn *c = h2->c;
  if (!c->closed && !c->dirty) px_conn_mark_dirty(c);
}

static int add_nv(nghttp2_nv *nv, size_t *n, size_t cap, const char *name, size_t nlen,
                  const char *value, size_t vlen);

/* Trailers end the stream (RFC 9113 §8.1); names lowercased in place. */
static int submit_trailers(h2_stream *st) {
  px_http_head *t = st->trailers;
  nghttp2_nv *nv = calloc(t->nheaders + 1, sizeof(*nv));
  size_t n = 0;
  if (nv == NULL) return -1;
  for (size_t i = 0; i < t->nheaders; i++) {
    px_header *f = &t->headers[i];
    char *name = t->arena + (f->name - t->arena); /* the head owns its arena */
    for (size_t k = 0; k < f->name_len; k++)
      if (name[k] >= 'A' && name[k] <= 'Z') name[k] = (char)(name[k] + 32);
    if (px_http_trailer_allowed(f->name, f->name_len))
      add_nv(nv, &n, t->nheaders + 1, f->name, f->name_len, f->value, f->value_len);
  }
  int r = nghttp2_submit_trailer(st->h2->session, st->id, nv, n);
  free(nv);
  return r;
}

/* Response bytes left the stream's buffer (sent or dropped). */
static void out_taken(h2_stream *st, size_t n) {
  st->out_bytes -= n;
  st->h2->out_total -= n;
  worker_buffered -= n;
}

/* The connection was over its buffer budget and has drained to half of
 * it: streams that held their upstreams may read again. */
static void wake_held(px_h2 *h2) {
  if (!h2->over_budget || h2->out_total > h2->c->wg->cfg->limits.connection_buffer / 2) return;
  h2->over_budget = 0;
  for (h2_stream *st = h2->streams; st; st = st->next)
    if (st->ex && st->out_bytes <= h2->c->wg->cfg->limits.buffer_size / 2)
      px_exchange_on_client_drain(st->ex);
}

static ssize_t on_read_data(nghttp2_session *s, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user) {
  h2_stream *st = src->ptr;
  size_t n = 0;
  while (st->out && n < length) {
    out_chunk *o = st->out;
    size_t take = o->len - o->off;
    if (take > length - n) take = length - n;
    memcpy(buf + n, o->data + o->off, take);
    o->off += take;
    n += take;
    if (o->off == o->len) {
      st->out = o->next;
      if (st->out == NULL) st->out_tail = NULL;
      px_obj_free(o);
    }
  }
  out_taken(st, n);
  if (st->out == NULL && st->out_eof) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailers && submit_trailers(st) == 0) *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
  } else if (n == 0) {
    st->deferred = 1;
    return NGHTTP2_ERR_DEFERRED;
  }
  /* Room again: let the exchange read its upstream. */
  if (st->ex && st->out_bytes <= st->h2->c->wg->cfg->limits.buffer_size / 2)
    px_exchange_on_client_drain(st->ex);
  wake_held(st->h2);
  return (ssize_t)n;
}

/* ---- the px_front of a stream ------------------------------------------------- */

static int add_nv(nghttp2_nv *nv, size_t *n, size_t cap, const char *name, size_t nlen,
                  const char *value, size_t vlen) {
  if (*n >= cap) return -1;
  nv[*n].name = px_unconst(name); /* nghttp2 copies; it never writes */
  nv[*n].namelen = nlen;
  nv[*n].value = px_unconst(value);
  nv[*n].valuelen = vlen;
  nv[*n].flags = NGHTTP2_NV_FLAG_NONE;
  (*n)++;
  return 0;
}

static int st_response_head(px_front *f, const px_http_head *h, const px_hsts *hsts,
                            int64_t content_length, int no_body, int upgrade) {
  h2_stream *st = stream_of(f);
  px_h2 *h2 = st->h2;
  if (upgrade) return -1; /* no WebSocket over HTTP/2 (docs/architecture.md) */
  size_t cap = h->nheaders + 5, n = 0;
  /* Typical heads fit on the stack; no allocation per response then. */
  nghttp2_nv nv_stack[64];
  char lower_stack[4096];
  nghttp2_nv *nv = cap <= 64 ? nv_stack : calloc(cap, sizeof(*nv));
  /* Field names must be lowercase in HTTP/2 (RFC 9113 §8.2.1). */
  char *lower = h->arena_len + 1 <= sizeof(lower_stack) ? lower_stack : malloc(h->arena_len + 1);
  if (nv == NULL || lower == NULL) {
    if (nv != nv_stack) free(nv);
    if (lower != lower_stack) free(lower);
    return -1;
  }
  char status[20], len_buf[20];
  int code = h->status >= 100 && h->status <= 999 ? h->status : 502;
  add_nv(nv, &n, cap, ":status", 7, status, px_http_format_u64(status, (uint64_t)code));
  const px_header *conn = px_http_find(h, "connection");
  size_t off = 0;
  for (size_t i = 0; i < h->nheaders; i++) {
    const px_header *fld = &h->headers[i];
    if (px_http_is_hop_by_hop(fld->name, fld->name_len, conn ? conn->value : NULL,
                              conn ? conn->value_len : 0))
      continue;
    if (fld->name_len == 14 && strncasecmp(fld->name, "content-length", 14) == 0) continue;
    if (hsts && fld->name_len == 25 && strncasecmp(fld->name, "strict-transport-security", 25) == 0)
      continue;
    for (size_t k = 0; k < fld->name_len; k++) {
      char ch = fld->name[k];
      lower[off + k] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    add_nv(nv, &n, cap, lower + off, fld->name_len, fld->value, fld->value_len);
    off += fld->name_len;
  }
  /* Date where the backend sent none (RFC 9110 §6.6.1), as on HTTP/1.1. */
  if (px_http_find(h, "date") == NULL) add_nv(nv, &n, cap, "date", 4, px_http_date(), 29);
  if (content_length >= 0 && !(no_body && h->status != 200 && h->status != 204)) {
    size_t l = px_http_format_u64(len_buf, (uint64_t)content_length);
    add_nv(nv, &n, cap, "content-length", 14, len_buf, l);
  }
  char hsts_value[128];
  size_t hsts_len = hsts ? px_http_hsts_value(hsts, hsts_value, sizeof(hsts_value)) : 0;
  if (hsts_len) add_nv(nv, &n, cap, "strict-transport-security", 25, hsts_value, hsts_len);
  nghttp2_data_provider prd = {.source.ptr = st, .read_callback = on_read_data};
  int r = nghttp2_submit_response(h2->session, st->id, nv, n, no_body ? NULL : &prd);
  if (nv != nv_stack) free(nv);
  if (lower != lower_stack) free(lower);
  st->head_sent = 1;
  schedule(h2);
  return r == 0 && !h2->c->closed ? 0 : -1;
}

/* More of the response (body or its end) is queued on the stream: a data
 * source nghttp2 set aside for lack of data is resumed, and the connection
 * flushes in the check phase. */
static int output_added(h2_stream *st) {
  if (st->deferred) {
    st->deferred = 0;
    nghttp2_session_resume_data(st->h2->session, st->id);
  }
  px_h2 *h2 = st->h2;
  schedule(h2);
  return h2->c->closed ? -1 : 0;
}

static int st_response_body(px_front *f, const char *data, size_t len) {
  h2_stream *st = stream_of(f);
  out_chunk *o = px_obj_alloc(sizeof(*o) + len);
  if (o == NULL) return -1;
  o->next = NULL;
  o->len = len;
  o->off = 0;
  memcpy(o->data, data, len);
  if (st->out_tail)
    st->out_tail->next = o;
  else
    st->out = o;
  st->out_tail = o;
  st->out_bytes += len;
  st->h2->out_total += len;
  worker_buffered += len;
  return output_added(st);
}

static int st_response_end(px_front *f, const px_http_head *trailers) {
  h2_stream *st = stream_of(f);
  st->out_eof = 1;
  if (trailers && trailers->nheaders && st->trailers == NULL) {
    /* Copied: the exchange frees its head when it ends. */
    st->trailers = px_http_head_new(trailers->arena_cap); /* a size the head cache reuses */
    if (st->trailers) {
      memcpy(st->trailers->arena, trailers->arena, trailers->arena_len);
      st->trailers->arena_len = trailers->arena_len;
      st->trailers->nheaders = trailers->nheaders;
      for (size_t i = 0; i < trailers->nheaders; i++) {
        px_header *d = &st->trailers->headers[i];
        const px_header *o = &trailers->headers[i];
        d->name = st->trailers->arena + (o->name - trailers->arena);
        d->name_len = o->name_len;
        d->value = st->trailers->arena + (o->value - trailers->arena);
        d->value_len = o->value_len;
      }
    }
  }
  return output_added(st);
}

/* What the exchange weighs against limits.buffer_size before reading more
 * of its upstream. Past the connection's budget (limits.connection_buffer)
 * or the worker's share of limits.total_buffer, every stream reports full,
 * so a client that opens no window cannot make portico buffer 100 streams'
 * worth of responses; wake_held lets them go on once output drains. */
static size_t st_pending(px_front *f) {
  h2_stream *st = stream_of(f);
  px_h2 *h2 = st->h2;
  const px_limits *l = &h2->c->wg->cfg->limits;
  size_t worker_share = l->total_buffer / (size_t)h2->c->wg->cfg->workers;
  if (h2->out_total >= l->connection_buffer || worker_buffered >= worker_share) {
    h2->over_budget = 1;
    return SIZE_MAX / 2;
  }
  return st->out_bytes;
}

static void st_pause(px_front *f) { stream_of(f)->paused = 1; }

static void st_resume(px_front *f) {
  h2_stream *st = stream_of(f);
  st->paused = 0;
  if (st->unconsumed) {
    /* The upstream took the body: open the client's window again. */
    nghttp2_session_consume(st->h2->session, st->id, st->unconsumed);
    st->unconsumed = 0;
    schedule(st->h2);
  }
}

/* A stream's deadline: timeouts.request_body while its request body is
 * awaited, timeouts.send while its client holds the response back (no
 * window). All of a connection's streams share the connection's timer, set
 * for the earliest deadline; on_timer finds the ones that passed.
 * Clearing a deadline leaves the timer as is: it may fire early, and then
 * finds nothing due and re-arms for the next one. */
static void st_set_timer(px_front *f, uint64_t ms) {
  h2_stream *st = stream_of(f);
  px_conn *c = st->h2->c;
  if (c->closed) return;
  if (ms == 0) {
    st->due = 0;
    return;
  }
  uint64_t now = uv_now(&c->w->loop);
  st->due = now + ms;
  if (c->timer.due == 0 || st->due < c->timer.due) px_conn_set_timer(c, ms);
}

/* The connection timer fired with streams open: those past their deadline
 * are failed (408 while the request body is awaited, reset while the
 * client holds the response back) and the timer is set for the next one.
 * 0 when no stream is open (the keep-alive timeout, the caller closes). */
static int on_timer(px_h2 *h2) {
  px_conn *c = h2->c;
  if (h2->nstreams == 0) return 0; /* the keep-alive timeout: the caller closes */
  uint64_t now = uv_now(&c->w->loop), next = 0;
  for (h2_stream *st = h2->streams, *nx; st && !c->closed; st = nx) {
    nx = st->next; /* an expired stream is reset, not freed, here */
    if (st->due == 0) continue;
    if (st->due <= now) {
      st->due = 0;
      if (st->ex) {
        px_log(PX_LOG_DEBUG, "client %s: HTTP/2 stream %d timed out", c->peer_ip, st->id);
        px_exchange_on_client_timeout(st->ex);
      }
    } else if (next == 0 || st->due < next) {
      next = st->due;
    }
  }
  if (c->closed) return 1;
  if (next) px_conn_set_timer(c, next - now);
  schedule(h2);
  return 1;
}

static void st_done(px_front *f, int keep) {
  h2_stream *st = stream_of(f);
  st->ex = NULL;
  if (st->h2->nqueued) schedule(st->h2); /* a backend slot is free */
}

static void st_failed(px_front *f, int status) {
  h2_stream *st = stream_of(f);
  px_h2 *h2 = st->h2;
  st->ex = NULL;
  if (status && !st->head_sent) {
    px_http_head h = {0};
    h.status = status;
    const char *reason = px_http_reason(status);
    if (st_response_head(f, &h, NULL, (int64_t)strlen(reason) + 1, 0, 0) == 0 &&
        st_response_body(f, reason, strlen(reason)) == 0 && st_response_body(f, "\n", 1) == 0)
      st_response_end(f, NULL);
    return;
  }
  nghttp2_submit_rst_stream(h2->session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
  schedule(h2);
}

static void st_tunnel(px_front *f) {}

static const px_front_ops stream_ops = {
    .response_head = st_response_head,
    .response_body = st_response_body,
    .response_end = st_response_end,
    .pending = st_pending,
    .pause_request = st_pause,
    .resume_request = st_resume,
    .set_timer = st_set_timer,
    .done = st_done,
    .failed = st_failed,
    .tunnel = st_tunnel,
};

/* ---- streams ------------------------------------------------------------------ */

static void stream_free(h2_stream *st) {
  px_h2 *h2 = st->h2;
  nghttp2_session_set_stream_user_data(h2->session, st->id, NULL);
  if (st->ex) px_exchange_abort(st->ex);
  if (st->prev)
    st->prev->next = st->next;
  else
    h2->streams = st->next;
  if (st->next) st->next->prev = st->prev;
  h2->nstreams--;
  out_taken(st, st->out_bytes);
  if (st->queued) h2->nqueued--;
  while (st->out) {
    out_chunk *o = st->out;
    st->out = o->next;
    px_obj_free(o);
  }
  px_http_head_free(st->head);
  px_http_head_free(st->trailers);
  px_obj_free(st);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  px_h2 *h2 = user;
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  h2_stream *st = px_obj_calloc(1, sizeof(*st));
  if (st == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
  const px_config *cfg = h2->c->wg->cfg;
  st->head = px_http_head_new(cfg->limits.max_header_bytes + 512);
  if (st->head == NULL) {
    px_obj_free(st);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  st->h2 = h2;
  st->id = frame->hd.stream_id;
  h2->streams_opened++;
  st->front.ops = &stream_ops;
  st->front.w = h2->c->w;
  st->front.wg = h2->c->wg;
  st->front.peer_ip = h2->c->peer_ip;
  st->front.is_https = 1;
  st->front.proto = "HTTP/2";
  st->front.conn = h2->c;
  st->next = h2->streams;
  if (h2->streams) h2->streams->prev = st;
  h2->streams = st;
  /* The first stream ends the keep-alive wait; with streams open the timer
   * carries their deadlines instead (st_set_timer). */
  if (h2->nstreams++ == 0) px_conn_set_timer(h2->c, 0);
  nghttp2_session_set_stream_user_data(s, st->id, st);
  return 0;
}

/* Stores a string in the head's arena and returns it NUL-terminated. */
static const char *arena_str(px_http_head *h, const uint8_t *v, size_t len) {
  const char *start = h->arena + h->arena_len;
  if (px_http_head_append(h, (const char *)v, len) != 0) return NULL;
  h->arena[h->arena_len++] = '\0';
  return start;
}

/* Keeps :authority (or Host) for routing; one longer than the buffer can
 * be no valid host name, so it is marked rather than cut short. */
static void copy_authority(h2_stream *st, const uint8_t *value, size_t vlen) {
  st->authority_bad = vlen >= sizeof(st->authority);
  st->authority_len = st->authority_bad ? 0 : vlen;
  memcpy(st->authority, value, st->authority_len);
  st->authority[st->authority_len] = '\0';
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
  px_h2 *h2 = user;
  h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (st == NULL || frame->hd.type != NGHTTP2_HEADERS) return 0;
  if (st->ex || st->head == NULL) return 0; /* trailers of the request: dropped */
  /* The header list limit counts decoded bytes, so an HPACK bomb (a small
   * block that expands) stops here (RFC 9113 §10.5.1). */
  st->head_bytes += nlen + vlen + 32;
  if (st->head_bytes > h2->c->wg->cfg->limits.max_header_bytes) {
    if (!st->too_large) glitch(h2, 20, "header list over the limit");
    st->too_large = 1;
    return 0;
  }
  px_http_head *h = st->head;
  if (nlen && name[0] == ':') {
    if (nlen == 7 && memcmp(name, ":method", 7) == 0) {
      h->method = arena_str(h, value, vlen);
      st->has_method = h->method != NULL;
    } else if (nlen == 5 && memcmp(name, ":path", 5) == 0) {
      h->target = arena_str(h, value, vlen);
      h->target_len = vlen;
      st->has_path = h->target != NULL;
    } else if (nlen == 10 && memcmp(name, ":authority", 10) == 0) {
      copy_authority(st, value, vlen);
    }
    return 0;
  }
  /* :authority wins over host (RFC 9113 §8.3.1); either way the one Host
   * line is added from it in start_request, never copied from here. */
  if (nlen == 4 && memcmp(name, "host", 4) == 0) {
    if (!st->authority_len && !st->authority_bad) copy_authority(st, value, vlen);
    return 0;
  }
  if (px_http_head_field_name(h, &st->in_field, (const char *)name, nlen, PX_MAX_HEADERS_HARD) !=
          0 ||
      px_http_head_field_done(h, &st->in_field) != 0 ||
      px_http_head_field_value(h, &st->in_field, (const char *)value, vlen) != 0 ||
      px_http_head_field_done(h, &st->in_field) != 0)
    st->too_large = 1;
  return 0;
}

/* A response portico gives itself on a stream (400, 421, 431...). */
static void stream_respond(h2_stream *st, int status) {
  px_access_entry e = {.host = st->authority,
                       .method = st->head && st->has_method ? st->head->method : NULL,
                       .path = st->head && st->has_path ? st->head->target : NULL,
                       .status = status};
  px_conn_access_fields(st->h2->c, &e);
  e.http_version = "HTTP/2";
  px_access_log(&e);
  px_metrics_local(st->h2->c->w->metrics, 1, status);
  st_failed(&st->front, status);
}

static void start_request(h2_stream *st, int end_stream) {
  px_h2 *h2 = st->h2;
  px_conn *c = h2->c;
  px_http_head *h = st->head;
  if (st->too_large) {
    stream_respond(st, 431);
    return;
  }
  if (!st->has_method || !st->has_path || h->target[0] != '/' || st->authority_bad) {
    stream_respond(st, 400);
    return;
  }
  /* The authority is never NULL here: without one the request is a 400,
   * not routed by the handshake's name as an HTTP/1.0 request is. */
  px_route r;
  px_route_request(c->wg->cfg, st->authority, st->authority_len, c->sni, h->target, 0, &r);
  if (r.action != PX_ROUTE_PROXY) {
    stream_respond(st, r.action == PX_ROUTE_BAD_HOST ? 400 : 421);
    return;
  }
  /* One Host field, so the request checks see what goes upstream (the
   * serializer writes Host from req.authority). */
  int dummy = 0;
  px_http_head_field_name(h, &dummy, "host", 4, PX_MAX_HEADERS_HARD);
  px_http_head_field_done(h, &dummy);
  px_http_head_field_value(h, &dummy, st->authority, st->authority_len);
  px_http_head_field_done(h, &dummy);
  h->version_minor = 1;
  const char *why = px_http_check_request(h);
  if (why) {
    stream_respond(st, 400);
    return;
  }
  px_front_request req = {0};
  req.head = h;
  req.authority = st->authority;
  const px_header *cl = px_http_find(h, "content-length");
  /* A request that ended with its HEADERS has no body. Methods that define
   * a body still say Content-Length: 0 upstream (some backends answer 411
   * without it); the others get no framing header (RFC 9110 §8.6). */
  int body_method = strcmp(h->method, "POST") == 0 || strcmp(h->method, "PUT") == 0 ||
                    strcmp(h->method, "PATCH") == 0;
  req.content_length =
      end_stream ? (body_method ? 0 : -1) : (cl ? strtoll(cl->value, NULL, 10) : -1);
  req.chunked = !end_stream && cl == NULL;
  req.keep_alive = 1;
  int status = px_exchange_start(&st->front, r.site, r.host, &req, &st->ex);
  if (status != 0) {
    stream_respond(st, status > 0 ? status : 500);
    return;
  }
  /* The exchange serialised what it needs: the head goes back to the
   * per-thread cache now, not when the stream closes (with hundreds of
   * streams open the cache would be empty and every head a malloc). */
  px_http_head_free(st->head);
  st->head = NULL;
  if (end_stream)
    px_exchange_body_end(st->ex);
  else /* the body is awaited: its first DATA frame is due as any next one */
    st_set_timer(&st->front, c->wg->cfg->limits.body_timeout_ms);
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  px_h2 *h2 = user;
  h2_stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
  case NGHTTP2_HEADERS:
    if (st == NULL) break;
    if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      st->end_seen = end;
      if (running(h2) < h2->c->wg->cfg->limits.upstreams_per_connection) {
        start_request(st, end);
      } else if (end) {
        /* limits.upstreams_per_connection: a bodiless request waits for a
         * backend slot (started from flush_session as exchanges end). */
        st->queued = 1;
        h2->nqueued++;
      } else {
        /* One with a body would have to be buffered meanwhile: refused
         * instead, which a client may retry (RFC 9113 §8.7). */
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
        schedule(h2);
      }
    } else if (end && st->ex && !st->end_seen) { /* trailers end the request */
      st->end_seen = 1;
      px_exchange_body_end(st->ex);
    }
    break;
  case NGHTTP2_DATA:
    if (frame->hd.length == 0 && !end) glitch(h2, 1, "empty DATA frames");
    if (st && end && !st->end_seen) {
      st->end_seen = 1;
      if (st->ex) px_exchange_body_end(st->ex);
    }
    break;
  case NGHTTP2_SETTINGS:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) glitch(h2, 2, "SETTINGS flood");
    break;
  case NGHTTP2_PING:
    if (!(frame->hd.flags & NGHTTP2_FLAG_ACK)) glitch(h2, 2, "PING flood");
    break;
  case NGHTTP2_PRIORITY:
    glitch(h2, 1, "PRIORITY flood");
    break;
  case NGHTTP2_WINDOW_UPDATE:
    /* A client opens window as it reads our DATA: at most one update per
     * frame for the stream and one for the connection. Updates beyond that
     * (and a slack for clients that open windows early) cost us work and
     * earn nothing: counted like the other control-frame floods. */
    if (++h2->window_updates > 2 * h2->data_frames_out + 64) glitch(h2, 1, "WINDOW_UPDATE flood");
    break;
  case NGHTTP2_RST_STREAM:
    /* Rapid reset (CVE-2023-44487): streams opened and cancelled. */
    glitch(h2, 2, "rapid reset");
    break;
  default:
    break;
  }
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user) {
  h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (st == NULL || st->ex == NULL) {
    nghttp2_session_consume(s, id, len); /* nobody wants it: keep the window open */
    return 0;
  }
  if (px_exchange_body(st->ex, (const char *)data, len) != 0) return 0;
  if (st->paused)
    st->unconsumed += len;
  else
    nghttp2_session_consume(s, id, len);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user) {
  px_h2 *h2 = user;
  h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
  /* Streams we had to reset for the peer's errors count too (MadeYouReset,
   * CVE-2025-8671). */
  if (error_code != NGHTTP2_NO_ERROR && error_code != NGHTTP2_CANCEL)
    glitch(h2, 2, "stream errors");
  if (st) stream_free(st);
  if (h2->nstreams == 0 && !h2->c->closed)
    px_conn_set_timer(h2->c, h2->c->wg->cfg->limits.keepalive_timeout_ms);
  return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  px_h2 *h2 = user;
  if (frame->hd.type == NGHTTP2_DATA) h2->data_frames_out++;
  return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *frame, int lib_error,
                            void *user) {
  glitch(user, 5, nghttp2_strerror(lib_error));
  return 0;
}

/* ---- session ------------------------------------------------------------------ */

static px_h2 *h2_new(px_conn *c) {
  px_h2 *h2 = calloc(1, sizeof(*h2));
  if (h2 == NULL) return NULL;
  h2->c = c;
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt;
  if (nghttp2_session_callbacks_new(&cb) != 0) {
    free(h2);
    return NULL;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  nghttp2_option_new(&opt);
  /* WINDOW_UPDATE only as the upstream consumes (nghttp2_session_consume). */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_stream_reset_rate_limit(opt, 200, 50);
  nghttp2_option_set_max_settings(opt, 16);
  nghttp2_option_set_max_outbound_ack(opt, 100);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  /* Closed streams are kept for priority bookkeeping by default: about
   * 43 KiB per long-lived connection after 100 requests. portico ignores
   * priorities, so nothing is lost by dropping them at once. */
  nghttp2_option_set_no_closed_streams(opt, 1);
  int r = nghttp2_session_server_new3(&h2->session, cb, h2, opt, &h2_mem);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (r != 0) {
    free(h2);
    return NULL;
  }
  const px_limits *l = &c->wg->cfg->limits;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, H2_MAX_STREAMS},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, H2_STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)l->max_header_bytes},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(h2->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
  nghttp2_session_set_local_window_size(h2->session, NGHTTP2_FLAG_NONE, 0, H2_CONN_WINDOW);
  flush(h2);
  return h2;
}

/* Feeds plaintext from the client. 0, or -1 when the connection must close. */
static int h2_feed(px_h2 *h2, const char *data, size_t len) {
  ssize_t n = nghttp2_session_mem_recv(h2->session, (const uint8_t *)data, len);
  if (n < 0) {
    /* A fatal error (CONTINUATION flood, bad preface...): say GOAWAY before
     * closing, so the client learns why (RFC 9113 §5.4.1). */
    px_log(PX_LOG_INFO, "client %s: HTTP/2: %s: GOAWAY", h2->c->peer_ip, nghttp2_strerror((int)n));
    int code = n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || n == NGHTTP2_ERR_FLOODED
                   ? NGHTTP2_ENHANCE_YOUR_CALM
                   : NGHTTP2_PROTOCOL_ERROR;
    nghttp2_session_terminate_session(h2->session, (uint32_t)code);
    flush(h2);
    if (!h2->c->closed) px_conn_close_after_flush(h2->c);
    return -1;
  }
  schedule(h2);
  return h2->c->closed ? -1 : 0;
}

/* Graceful shutdown: GOAWAY, open streams finish. */
static void h2_shutdown(px_h2 *h2) {
  /* RFC 9113 §6.8: say which streams will still be answered. */
  nghttp2_submit_goaway(h2->session, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(h2->session), NGHTTP2_NO_ERROR,
                        NULL, 0);
  flush(h2);
}

/* True while a stream waits on the client: request body due and not held
 * back by the upstream, or response bytes queued that its window holds. */
static int h2_awaits_client(const px_h2 *h2) {
  for (const h2_stream *st = h2->streams; st; st = st->next)
    if (st->ex && ((!st->end_seen && !st->paused) || st->out_bytes > 0)) return 1;
  return 0;
}

/* The connection is closing: abort every stream's exchange. The session
 * itself stays valid (callers up the stack may still hold it) until
 * h2_free from the connection's last close callback. */
static void h2_close_streams(px_h2 *h2) {
  while (h2->streams)
    stream_free(h2->streams);
}

/* ---- the session as the transport sees it (px_session_ops) ------------- */

static px_h2 *h2_of(const px_conn *c) { return (px_h2 *)c->session; }

static int ops_feed(px_conn *c, const char *data, size_t len) {
  return h2_feed(h2_of(c), data, len) == 0;
}

static int ops_resume(px_conn *c) { return 1; }

static int ops_paused(const px_conn *c) { return 0; }

/* Every frame is taken as it comes (flow control bounds what a client may
 * send), so there is nothing unparsed to bound. */
static int ops_input_full(const px_conn *c, size_t transport) { return 0; }

static void ops_flush(px_conn *c) { flush_session(h2_of(c)); }

/* An HTTP/2 connection stays "idle" for the transport: its streams keep
 * their own deadlines on the connection's timer. */
static void ops_timer(px_conn *c) {
  if (c->state == PX_CONN_IDLE && on_timer(h2_of(c))) return;
  px_conn_close(c);
}

static px_session_phase ops_phase(const px_conn *c) { return PX_SESSION_IDLE; }

static int ops_awaits_client(const px_conn *c) { return h2_awaits_client(h2_of(c)); }

/* GOAWAY; open streams finish, then the session ends by itself. */
static void ops_shutdown(px_conn *c) {
  px_h2 *h2 = h2_of(c);
  h2_shutdown(h2);
  if (!c->closed && h2->nstreams == 0) px_conn_close_after_flush(c);
}

static void ops_close(px_conn *c) { h2_close_streams(h2_of(c)); }

static void ops_free(px_conn *c) {
  px_h2 *h2 = h2_of(c);
  h2_close_streams(h2);
  nghttp2_session_del(h2->session);
  free(h2);
  c->session = NULL;
}

static const px_session_ops h2_session_ops = {
    .feed = ops_feed,
    .resume = ops_resume,
    .paused = ops_paused,
    .input_full = ops_input_full,
    .drain = ops_flush,
    .flush = ops_flush,
    .timer = ops_timer,
    .phase = ops_phase,
    .awaits_client = ops_awaits_client,
    .shutdown = ops_shutdown,
    .close = ops_close,
    .free = ops_free,
};

int px_h2_start(px_conn *c) {
  px_h2 *h2 = h2_new(c);
  if (h2 == NULL) return -1;
  c->session = h2;
  c->session_ops = &h2_session_ops;
  return 0;
}
