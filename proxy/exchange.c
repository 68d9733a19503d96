#include "proxy/exchange.h"

#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/balancer.h"
#include "proxy/conn.h"
#include "proxy/front.h"
#include "proxy/metrics.h"
#include "proxy/site_prefs.h"
#include "proxy/util/access.h"
#include "proxy/util/obj_cache.h"
#include "proxy/util/request_id.h"
#include "proxy/worker.h"
#include "tls/log.h"

/* Bound on an upstream response head; larger answers are a 502. */
#define PX_MAX_RESPONSE_HEAD 65536
/* Room for the serialised request head beyond what the client sent:
 * the forwarded headers and framing. */
#define PX_FORWARD_HEADROOM 2048

/* Body bytes read from the client before the upstream connection is up. */
typedef struct pending_chunk {
  struct pending_chunk *next;
  size_t len;
  char data[];
} pending_chunk;

struct px_exchange {
  px_front *f;
  px_worker *w;
  px_wgen *wg; /* the client connection's generation: site and pools are in it */
  const px_site *site;
  size_t site_idx;
  size_t up_idx;
  px_upstream_conn *up;
  int connected;
  int start_deferred; /* a pooled connection is sent to from the check phase */
  int tries;
  uint64_t start_ns;
  char host[256];
  char *method;
  char *path;
  char *user_agent, *referer, *request_id; /* for the access log; share method's allocation */
  const char *http_version;
  uint64_t resp_head_ns; /* uv_hrtime when the upstream's final response head arrived */

  /* request */
  char *req_head; /* serialised head, kept until the first write for a retry */
  size_t req_head_len;
  int req_chunked;
  int req_done;
  uint64_t req_body_bytes;
  pending_chunk *pend, *pend_tail;
  size_t pend_bytes;
  /* Small body pieces (1-byte chunks, tiny DATA frames) framed here and
   * sent in one write at the end of the loop iteration: one write each
   * cost a syscall and a TCP segment per byte (hardening item 9). */
  char *obuf;
  size_t olen, ocap;
  size_t defer_slot;      /* 1 + index in the worker's deferred list, 0 if not in it */
  uint64_t body_timer_at; /* uv_now when the body timer was last armed */

  /* response */
  llhttp_t rp;
  px_http_head *rhead;
  px_http_head *rtrailers; /* trailer fields after a chunked body */
  int r_in_field;
  int resp_started;   /* first response byte arrived */
  int resp_head_sent; /* head written to the client */
  int resp_done;
  int resp_until_eof; /* no framing: body ends when upstream closes */
  int resp_broken;    /* the upstream's head was refused: 502 */
  int req_paused;     /* we asked the front to stop the request body */
  int client_keep_alive;
  int interim; /* parsing a 1xx response */
  int status;
  uint64_t resp_bytes;
  int ws;             /* the client asked for a WebSocket upgrade */
  int tunnel_pending; /* the upstream answered 101: switch after its head */
  int tunnel;         /* bytes flow both ways unparsed */
  int busy;           /* inside our response parser: abort must not free */
  int aborted;
};

static const llhttp_settings_t *resp_settings(void);
static void send_to_upstream(px_exchange *ex);

static int is_idempotent_without_body(const px_exchange *ex) {
  const char *m = ex->method;
  return ex->req_body_bytes == 0 && !ex->req_chunked &&
         (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0 ||
          strcmp(m, "DELETE") == 0 || strcmp(m, "PUT") == 0 || strcmp(m, "TRACE") == 0);
}

static void free_rhead(px_exchange *ex) {
  px_http_head_free(ex->rhead);
  ex->rhead = NULL;
}

/* Where header fields go: the head, or after the body the trailers
 * (RFC 9112 §7.1.2), which are passed on rather than dropped. */
static px_http_head *field_target(px_exchange *ex) {
  if (!ex->resp_head_sent || ex->interim) return ex->rhead;
  if (ex->rtrailers == NULL) ex->rtrailers = px_http_head_new(16384);
  return ex->rtrailers;
}

static void free_exchange(px_exchange *ex) {
  while (ex->pend) {
    pending_chunk *p = ex->pend;
    ex->pend = p->next;
    free(p);
  }
  if (ex->defer_slot) ex->w->deferred[ex->defer_slot - 1] = NULL;
  if (ex->tunnel) px_metrics_conn_close(ex->w->metrics, PX_METRICS_CONN_WEBSOCKET);
  free(ex->obuf);
  free_rhead(ex);
  px_http_head_free(ex->rtrailers);
  px_obj_free(ex->req_head);
  px_obj_free(ex->method); /* the path shares this allocation */
  px_obj_free(ex);
}

static void log_access(px_exchange *ex, int status) {
  px_access_entry e = {0};
  px_conn_access_fields(ex->f->conn, &e);
  e.http_version = ex->http_version;
  e.user_agent = ex->user_agent;
  e.referer = ex->referer;
  e.request_id = ex->request_id;
  e.bytes_in = ex->req_body_bytes;
  e.upstream_ns = ex->resp_head_ns;
  e.site = ex->site->hosts[0];
  e.host = ex->host;
  e.method = ex->method;
  e.path = ex->path;
  e.status = status;
  e.bytes = ex->resp_bytes;
  e.start_ns = ex->start_ns;
  e.upstream = ex->site->upstreams[ex->up_idx].text;
  px_access_log(&e);
  px_metrics_request(ex->w->metrics, ex->wg->gen->metrics_map, ex->site_idx, ex->up_idx,
                     ex->f->proto[5] == '2', status, ex->req_body_bytes, ex->resp_bytes,
                     ex->start_ns);
}

/* Drops the upstream connection (not reusable). */
static void drop_upstream(px_exchange *ex) {
  if (ex->up) {
    px_upstream_close(ex->up);
    ex->up = NULL;
  }
}

/* Hands the upstream connection back to the pool, or closes it. */
static void end_upstream(px_exchange *ex, int reuse) {
  if (ex->up == NULL) return;
  px_lazy_timer_set(&ex->up->timer, 0, NULL);
  if (reuse)
    px_upstream_release(ex->up);
  else
    px_upstream_close(ex->up);
  ex->up = NULL;
}

/* Ends the exchange; the connection goes on (keep-alive) or closes. Never
 * called from inside a parser callback. */
static void finish(px_exchange *ex, int reuse_upstream) {
  px_front *f = ex->f;
  end_upstream(ex, reuse_upstream);
  log_access(ex, ex->status);
  int keep = ex->client_keep_alive && ex->req_done;
  free_exchange(ex);
  f->ops->done(f, keep);
}

/* Fails the exchange: the front answers `status` when no response head went
 * out yet, else cuts the response short (a truncated body is better than a
 * wrong one). */
static void fail_with(px_exchange *ex, int status) {
  px_front *f = ex->f;
  drop_upstream(ex);
  if (!ex->resp_head_sent) ex->status = status;
  log_access(ex, ex->status);
  free_exchange(ex);
  f->ops->failed(f, status);
}

/* ---- upstream selection and connection ---------------------------------- */

static void on_up_read(px_upstream_conn *uc, ssize_t nread, const char *buf);
static void on_up_drain(px_upstream_conn *uc);

static int connect_upstream(px_exchange *ex);

/* Tries the next upstream after a failure that happened before the request
 * could have reached the backend (connect refused or timed out): safe for
 * any method. Returns 1 when a new attempt started. */
static int retry_elsewhere(px_exchange *ex) {
  if (!px_balancer_may_retry(ex->wg, ex->site_idx, ex->tries) || ex->resp_started) return 0;
  px_metrics_upstream_count(ex->w->metrics, ex->wg->gen->metrics_map, ex->site_idx, ex->up_idx,
                            PX_METRICS_UP_RETRY);
  ex->tries++;
  drop_upstream(ex);
  if (connect_upstream(ex) != 0) fail_with(ex, 502);
  return 1;
}

static void complete(px_exchange *ex, int upstream_reusable);

/* Passive health: the upstream refused or timed out (balancer.c). */
static void mark_failed(px_exchange *ex) { px_balancer_failed(ex->wg, ex->site_idx, ex->up_idx); }

static void on_up_timeout(void *data) {
  px_upstream_conn *uc = data;
  px_exchange *ex = uc->data;
  if (ex == NULL) return;
  if (ex->tunnel) {
    px_log(PX_LOG_DEBUG, "websocket %s: idle timeout", ex->host);
    complete(ex, 0);
    return;
  }
  px_log(PX_LOG_WARN, "upstream %s: %s timed out", ex->site->upstreams[ex->up_idx].text,
         ex->connected ? "read" : "connect");
  px_metrics_upstream_count(ex->w->metrics, ex->wg->gen->metrics_map, ex->site_idx, ex->up_idx,
                            ex->connected ? PX_METRICS_UP_READ_TIMEOUT
                                          : PX_METRICS_UP_CONNECT_TIMEOUT);
  mark_failed(ex);
  if (!ex->connected && retry_elsewhere(ex)) return;
  fail_with(ex, 504);
}

static void arm_up_timer(px_exchange *ex, uint64_t ms) {
  px_lazy_timer_set(&ex->up->timer, ms, on_up_timeout);
}

static void on_up_connect(px_upstream_conn *uc, int status) {
  px_exchange *ex = uc->data;
  if (status != 0)
    px_metrics_upstream_count(ex->w->metrics, ex->wg->gen->metrics_map, ex->site_idx, ex->up_idx,
                              PX_METRICS_UP_CONNECT_FAILURE);
  if (status != 0 && uc->local_error) {
    /* Out of descriptors, memory or ports here (upstream.c warned): not the
     * backend's fault, so it is neither marked down nor retried. */
    fail_with(ex, 502);
    return;
  }
  if (status != 0) {
    px_log(PX_LOG_WARN, "upstream %s: connect failed: %s", ex->site->upstreams[ex->up_idx].text,
           uv_strerror(status));
    mark_failed(ex);
    if (retry_elsewhere(ex)) return;
    fail_with(ex, 502);
    return;
  }
  ex->connected = 1;
  send_to_upstream(ex);
}

/* Connects to the upstream the balancer picks (or reuses a pooled
 * connection to it). -1 when every upstream is down: 502 at once rather
 * than a connect to a backend known to be gone. */
static int connect_upstream(px_exchange *ex) {
  px_worker *w = ex->w;
  px_upstream_pool *pool = px_balancer_pick(ex->wg, ex->site_idx, &ex->up_idx);
  if (pool == NULL) {
    px_log(PX_LOG_DEBUG, "site %s: every upstream is down", ex->site->hosts[0]);
    return -1;
  }
  px_upstream_conn *uc = px_upstream_take_idle(pool);
  if (uc) {
    /* Written to in this loop iteration's check phase, not from here: the
     * caller (px_exchange_start, a retry) never sees the exchange fail
     * inside its own call. Until then `connected` stays 0, so body bytes
     * wait in `pend` behind the head. */
    if (ex->defer_slot == 0 && px_worker_defer(w, ex, &ex->defer_slot) != 0) {
      px_upstream_release(uc);
      return -1;
    }
    uc->data = ex;
    ex->up = uc;
    ex->connected = 0;
    ex->start_deferred = 1;
    return 0;
  }
  uc = px_upstream_connect(pool, on_up_connect, ex);
  if (uc == NULL) return -1;
  ex->up = uc;
  ex->connected = 0;
  arm_up_timer(ex, ex->wg->cfg->limits.upstream_connect_timeout_ms);
  return 0;
}

/* The request was sent but the connection failed before any response byte:
 * a pooled connection the backend had just closed, or a backend that died.
 * Only a request without a body whose method is idempotent may be sent
 * again (RFC 9110 §9.2.2); POST and PATCH never are. */
static int maybe_retry(px_exchange *ex) {
  if (ex->resp_started || !ex->up || !is_idempotent_without_body(ex) || ex->req_head == NULL)
    return 0;
  int reused = ex->up->reused;
  if (!reused) mark_failed(ex);
  /* A stale pooled connection may be retried once even with one upstream. */
  if (reused && ex->tries == 0 && ex->site->nupstreams == 1) {
    px_metrics_upstream_count(ex->w->metrics, ex->wg->gen->metrics_map, ex->site_idx, ex->up_idx,
                              PX_METRICS_UP_RETRY);
    ex->tries++;
    drop_upstream(ex);
    if (connect_upstream(ex) != 0) fail_with(ex, 502);
    return 1;
  }
  return retry_elsewhere(ex);
}

static int write_up(px_exchange *ex, const void *data, size_t len) {
  if (px_upstream_write(ex->up, data, len) != 0) {
    if (!maybe_retry(ex)) fail_with(ex, 502);
    return -1;
  }
  return 0;
}

/* Room kept before the coalesced bytes for the chunk-size line, so that
 * what was gathered goes out as one chunk without moving it. */
#define OBUF_PREFIX 18
/* Room kept after them: the chunk's CRLF and a last-chunk "0\r\n\r\n". */
#define OBUF_SUFFIX 8

/* Sends the coalesced body bytes (one chunk when the request is chunked),
 * followed by the last chunk when `last`. 0, or -1 when the exchange
 * failed (and may be freed). */
static int flush_body(px_exchange *ex, int last) {
  if (ex->olen == 0) return last && ex->req_chunked ? write_up(ex, "0\r\n\r\n", 5) : 0;
  char *start = ex->obuf + OBUF_PREFIX;
  size_t len = ex->olen;
  ex->olen = 0;
  if (ex->req_chunked) {
    char line[OBUF_PREFIX];
    int n = snprintf(line, sizeof(line), "%zx\r\n", len);
    start -= n;
    memcpy(start, line, (size_t)n);
    len += (size_t)n;
    memcpy(start + len, last ? "\r\n0\r\n\r\n" : "\r\n", last ? 7 : 2);
    len += last ? 7 : 2;
  }
  return write_up(ex, start, len);
}

void px_exchange_flush_deferred(px_worker *w) {
  for (size_t i = 0; i < w->ndeferred; i++) {
    px_exchange *ex = w->deferred[i];
    if (ex == NULL) continue;
    ex->defer_slot = 0;
    w->deferred[i] = NULL;
    if (ex->start_deferred) {
      ex->start_deferred = 0;
      ex->connected = 1;
      send_to_upstream(ex);
    } else {
      flush_body(ex, 0);
    }
  }
  w->ndeferred = 0;
}

/* Adds `len` body bytes to what this loop iteration sends in one write:
 * a client's 1-byte chunks or tiny DATA frames become one upstream chunk
 * and one syscall, so the work per byte received stays bounded. Sent at
 * once when limits.buffer_size is gathered or the worker's list has no
 * room. */
static int queue_body(px_exchange *ex, const char *data, size_t len) {
  size_t need = OBUF_PREFIX + ex->olen + len + OBUF_SUFFIX;
  if (need > ex->ocap) {
    size_t cap = ex->ocap ? ex->ocap * 2 : 4096;
    while (cap < need)
      cap *= 2;
    char *n = realloc(ex->obuf, cap);
    if (n == NULL) {
      fail_with(ex, 500);
      return -1;
    }
    ex->obuf = n;
    ex->ocap = cap;
  }
  memcpy(ex->obuf + OBUF_PREFIX + ex->olen, data, len);
  ex->olen += len;
  if (ex->olen >= ex->wg->cfg->limits.buffer_size) return flush_body(ex, 0);
  if (ex->defer_slot == 0 && px_worker_defer(ex->w, ex, &ex->defer_slot) != 0)
    return flush_body(ex, 0);
  return 0;
}

static void pause_request(px_exchange *ex) {
  ex->req_paused = 1;
  ex->f->ops->pause_request(ex->f);
}

static void resume_request(px_exchange *ex) {
  ex->req_paused = 0;
  ex->f->ops->resume_request(ex->f);
}

static void check_request_backpressure(px_exchange *ex) {
  size_t inflight = ex->pend_bytes + ex->olen + (ex->up ? ex->up->write_pending : 0);
  if (inflight > ex->wg->cfg->limits.buffer_size) pause_request(ex);
}

/* The connection is up: send the head, what is buffered, and listen. */
static void send_to_upstream(px_exchange *ex) {
  px_upstream_conn *uc = ex->up;
  uc->on_read = on_up_read;
  uc->on_drain = on_up_drain;
  if (write_up(ex, ex->req_head, ex->req_head_len) != 0) return;
  /* The head stays for a retry only while the request has no body. */
  while (ex->pend) {
    pending_chunk *p = ex->pend;
    ex->pend = p->next;
    ex->pend_bytes -= p->len;
    int r = queue_body(ex, p->data, p->len);
    free(p);
    if (r != 0) return;
  }
  ex->pend_tail = NULL;
  if (flush_body(ex, ex->req_done) != 0) return;
  if (px_upstream_read_start(uc) != 0) {
    fail_with(ex, 502);
    return;
  }
  arm_up_timer(ex, ex->wg->cfg->limits.upstream_read_timeout_ms);
  if (!ex->req_paused || ex->req_done) return;
  if (uc->write_pending <= ex->wg->cfg->limits.buffer_size / 2) resume_request(ex);
}

static void on_up_drain(px_upstream_conn *uc) {
  px_exchange *ex = uc->data;
  if (ex && (!ex->req_done || ex->tunnel) && ex->req_paused && ex->pend_bytes == 0)
    resume_request(ex);
}

/* ---- request side, called by the fronts ---------------------------------- */

int px_exchange_start(px_front *f, const px_site *site, const char *host,
                      const px_front_request *req, px_exchange **out) {
  const px_config *cfg = f->wg->cfg;
  *out = NULL;
  uint64_t max_body = cfg->limits.max_body_bytes;
  if (max_body && req->content_length > 0 && (uint64_t)req->content_length > max_body) return 413;
  px_exchange *ex = px_obj_calloc(1, sizeof(*ex));
  if (ex == NULL) return -1;
  ex->f = f;
  ex->w = f->w;
  ex->wg = f->wg;
  ex->site = site;
  ex->site_idx = (size_t)(site - cfg->sites);
  ex->start_ns = uv_hrtime();
  ex->status = 502;
  size_t hlen = strnlen(host, sizeof(ex->host) - 1);
  memcpy(ex->host, host, hlen);
  ex->host[hlen] = '\0';
  const px_http_head *h = req->head;
  /* What the access log keeps of the request, in one allocation: method,
   * path, user agent, referer and request id, each cut to its bound. */
  char rid[PX_REQUEST_ID_MAX + 1];
  size_t rlen = cfg->request_id_header ? px_request_id_take(h, cfg->request_id_header, rid) : 0;
  const px_header *ua = px_http_find(h, "user-agent"), *ref = px_http_find(h, "referer");
  size_t mlen = strlen(h->method), plen = h->target_len > 1024 ? 1024 : h->target_len;
  size_t ulen = ua ? (ua->value_len > 256 ? 256 : ua->value_len) : 0;
  size_t flen = ref ? (ref->value_len > 512 ? 512 : ref->value_len) : 0;
  ex->method = px_obj_alloc(mlen + plen + ulen + flen + rlen + 5);
  if (ex->method) {
    memcpy(ex->method, h->method, mlen + 1);
    char *p = ex->method + mlen + 1;
    const char *src[4] = {h->target, ua ? ua->value : NULL, ref ? ref->value : NULL, rid};
    size_t lens[4] = {plen, ulen, flen, rlen};
    char **dst[4] = {&ex->path, &ex->user_agent, &ex->referer, &ex->request_id};
    for (int i = 0; i < 4; i++) {
      if (i > 0 && src[i] == NULL) continue;
      if (i == 3 && rlen == 0) continue;
      memcpy(p, src[i], lens[i]);
      p[lens[i]] = '\0';
      *dst[i] = p;
      p += lens[i] + 1;
    }
  }
  ex->http_version = strcmp(f->proto, "HTTP/2") == 0 ? "HTTP/2"
                     : h->version_minor == 0         ? "HTTP/1.0"
                                                     : "HTTP/1.1";
  ex->req_chunked = req->chunked;
  ex->client_keep_alive = req->keep_alive && !f->w->draining;
  ex->ws = req->websocket;
  /* The head is built in scratch space sized for the worst case, then kept
   * at its real size (a few hundred bytes, from the small-block cache). */
  size_t cap = h->arena_len + PX_FORWARD_HEADROOM + h->nheaders * 4;
  char stack_scratch[8192];
  char *scratch = cap <= sizeof(stack_scratch) ? stack_scratch : malloc(cap);
  if (ex->method == NULL || scratch == NULL) {
    free_exchange(ex);
    return -1;
  }
  px_forward_info fwd = {f->peer_ip,
                         f->is_https ? "https" : "http",
                         req->authority ? req->authority : host,
                         f->conn->trusted,
                         ex->request_id ? cfg->request_id_header : NULL,
                         ex->request_id};
  /* Upstream connections stay open between requests (pool), so the head
   * always asks for keep-alive; framing is re-declared (RFC 9112 §6). */
  long n = px_http_serialize_request(h, &fwd, req->chunked ? -1 : req->content_length, req->chunked,
                                     ex->ws ? PX_HTTP_UPGRADE : PX_HTTP_KEEP_ALIVE, scratch, cap);
  if (n >= 0 && (ex->req_head = px_obj_alloc((size_t)n)) != NULL)
    memcpy(ex->req_head, scratch, (size_t)n);
  if (scratch != stack_scratch) free(scratch);
  if (n < 0 || ex->req_head == NULL) {
    free_exchange(ex);
    return n < 0 ? 431 : -1;
  }
  ex->req_head_len = (size_t)n;
  if (connect_upstream(ex) != 0) {
    free_exchange(ex); /* the front answers and logs the 502: one line per request */
    return 502;
  }
  /* Nothing was written yet (connect_upstream defers even a pooled
   * connection's first write), so nothing has failed: every end of this
   * exchange reaches the front later, from the loop. */
  *out = ex;
  return 0;
}

int px_exchange_body(px_exchange *ex, const char *data, size_t len) {
  uint64_t max_body = ex->wg->cfg->limits.max_body_bytes;
  ex->req_body_bytes += len;
  if (max_body && ex->req_body_bytes > max_body) {
    px_log(PX_LOG_INFO, "client %s: request body over limits.max_body", ex->f->peer_ip);
    fail_with(ex, 413);
    return -1;
  }
  /* The body timer is re-armed once per loop iteration, not per piece:
   * its deadline only moves when the clock does. */
  uint64_t now = uv_now(&ex->w->loop);
  if (now != ex->body_timer_at) {
    ex->body_timer_at = now;
    ex->f->ops->set_timer(ex->f, ex->wg->cfg->limits.body_timeout_ms);
  }
  if (ex->up && ex->connected && ex->pend == NULL) {
    /* Large pieces of a Content-Length body go straight out (no copy) when
     * nothing is queued before them; the rest is coalesced, so a chunked
     * body costs one write per loop iteration, not three per chunk. */
    int r = ex->olen == 0 && len >= 4096 && !ex->req_chunked ? write_up(ex, data, len)
                                                             : queue_body(ex, data, len);
    if (r != 0) return -1;
  } else {
    pending_chunk *p = malloc(sizeof(*p) + len);
    if (p == NULL) {
      fail_with(ex, 500);
      return -1;
    }
    p->next = NULL;
    p->len = len;
    memcpy(p->data, data, len);
    if (ex->pend_tail)
      ex->pend_tail->next = p;
    else
      ex->pend = p;
    ex->pend_tail = p;
    ex->pend_bytes += len;
  }
  check_request_backpressure(ex);
  return 0;
}

void px_exchange_body_end(px_exchange *ex) {
  ex->req_done = 1;
  /* The client is now waiting on us; its timer guards our writes only. */
  ex->f->ops->set_timer(ex->f, 0);
  if (!ex->up || !ex->connected || ex->pend != NULL) return; /* send_to_upstream does it */
  flush_body(ex, 1); /* the last chunk rides with what is gathered */
}

int px_exchange_request_done(const px_exchange *ex) { return ex->req_done; }

void px_exchange_refuse(px_exchange *ex, int status) { fail_with(ex, status); }

void px_exchange_on_client_timeout(px_exchange *ex) {
  if (!ex->req_done) {
    px_log(PX_LOG_DEBUG, "client %s: request body timed out", ex->f->peer_ip);
    fail_with(ex, 408);
    return;
  }
  /* The client stopped reading the response. */
  ex->resp_head_sent = 1;
  fail_with(ex, 0);
}

void px_exchange_on_client_drain(px_exchange *ex) {
  if (ex->f->ops->pending(ex->f) > ex->wg->cfg->limits.buffer_size / 2) return;
  ex->f->ops->set_timer(ex->f, ex->req_done ? 0 : ex->wg->cfg->limits.body_timeout_ms);
  if (ex->up && ex->connected && !ex->resp_done && !ex->up->reading) {
    px_upstream_read_start(ex->up);
    arm_up_timer(ex, ex->tunnel ? ex->wg->cfg->limits.websocket_idle_timeout_ms
                                : ex->wg->cfg->limits.upstream_read_timeout_ms);
  }
}

void px_exchange_abort(px_exchange *ex) {
  /* Logged now: the front (and its peer address) is gone after this call. */
  log_access(ex, ex->resp_head_sent ? ex->status : 499);
  if (ex->busy) {
    /* on_up_read frees us once its parser returns. When the response was
     * already complete (the client went away right after it), the upstream
     * connection may still go back to the pool. */
    ex->aborted = 1;
    return;
  }
  drop_upstream(ex);
  free_exchange(ex);
}

/* ---- response side -------------------------------------------------------- */

static int r_on_message_begin(llhttp_t *p) {
  px_exchange *ex = p->data;
  px_http_head_free(ex->rhead);
  ex->rhead = px_http_head_new(PX_MAX_RESPONSE_HEAD);
  ex->r_in_field = 0;
  return ex->rhead ? 0 : HPE_USER;
}

static int r_on_status(llhttp_t *p, const char *at, size_t len) {
  px_exchange *ex = p->data;
  return px_http_head_append(ex->rhead, at, len) == 0 ? 0 : HPE_USER;
}

static int r_on_header_field(llhttp_t *p, const char *at, size_t len) {
  px_exchange *ex = p->data;
  px_http_head *h = field_target(ex);
  int r = h ? px_http_head_field_name(h, &ex->r_in_field, at, len, PX_MAX_HEADERS_HARD) : -1;
  return r == 0 ? 0 : HPE_USER;
}

static int r_on_header_value(llhttp_t *p, const char *at, size_t len) {
  px_exchange *ex = p->data;
  px_http_head *h = field_target(ex);
  return h && px_http_head_field_value(h, &ex->r_in_field, at, len) == 0 ? 0 : HPE_USER;
}

static int r_on_field_complete(llhttp_t *p) {
  px_exchange *ex = p->data;
  px_http_head *h = field_target(ex);
  return h && px_http_head_field_done(h, &ex->r_in_field) == 0 ? 0 : HPE_USER;
}

static int client_write(px_exchange *ex, const void *data, size_t len) {
  if (ex->aborted) return -1; /* the client side is gone: stop the parser */
  ex->resp_bytes += len;
  return ex->f->ops->response_body(ex->f, data, len);
}

/* Marks the response as the upstream's fault: the client gets 502 (no
 * head has gone out yet) and the upstream connection is not reused. */
static int broken_upstream(px_exchange *ex, const char *why) {
  px_log(PX_LOG_WARN, "upstream %s: %s", ex->site->upstreams[ex->up_idx].text, why);
  ex->resp_broken = 1;
  return HPE_USER;
}

static int r_on_headers_complete(llhttp_t *p) {
  px_exchange *ex = p->data;
  if (ex->aborted) return HPE_USER;
  px_http_head *h = ex->rhead;
  h->status = p->status_code;
  h->version_minor = p->http_minor;
  /* A status outside 100-599 has no meaning to pass on (RFC 9110 §15). */
  if (h->status < 100 || h->status > 599) return broken_upstream(ex, "status outside 100-599");
  if (h->status == 101) {
    if (!ex->ws) return HPE_USER; /* a switch nobody asked for */
    const px_header *up = px_http_find(h, "upgrade");
    if (up == NULL || up->value_len != 9 || strncasecmp(up->value, "websocket", 9) != 0)
      return HPE_USER;
    ex->status = 101;
    ex->resp_head_sent = 1;
    ex->tunnel_pending = 1;
    int r = ex->f->ops->response_head(ex->f, h, NULL, -1, 1, 1);
    free_rhead(ex);
    return r == 0 ? 2 : HPE_USER; /* 2: no body, llhttp pauses for the upgrade */
  }
  /* Interim responses are not forwarded: we answered 100-continue already.
   * A 1xx ends with its head (RFC 9110 §15.2): one that declares a body
   * is a broken upstream, and reading that "body" as content would hand
   * the client whatever response it holds. */
  if (h->status >= 100 && h->status < 200) {
    if (p->flags & (F_CONTENT_LENGTH | F_CHUNKED | F_TRANSFER_ENCODING))
      return broken_upstream(ex, "interim response with framing");
    ex->interim = 1;
    return 1; /* no body */
  }
  /* Field syntax needs no second pass here: llhttp in strict mode already
   * refuses every non-token byte in a name, every control byte but HTAB in a
   * value and a bare CR, and replaces obs-fold by a space (RFC 9112 §5.2);
   * test_malformed_upstream_heads_are_502_on_both_protocols goes through
   * every such byte, so a build that relaxed llhttp would fail it. */
  ex->status = h->status;
  ex->resp_head_ns = uv_hrtime();
  int head_req = strcmp(ex->method, "HEAD") == 0;
  int no_body = head_req || h->status == 204 || h->status == 304;
  int64_t cl = -1;
  ex->resp_until_eof = 0;
  if (!no_body) {
    if (p->flags & F_CONTENT_LENGTH)
      cl = (int64_t)p->content_length;
    else if (!(p->flags & F_CHUNKED))
      ex->resp_until_eof = 1; /* RFC 9112 §6.3 rule 8: ends when the upstream closes */
  } else if (head_req && (p->flags & F_CONTENT_LENGTH)) {
    cl = (int64_t)p->content_length; /* HEAD reports the GET length (RFC 9110 §9.3.2) */
  }
  /* HSTS only over TLS (RFC 6797 §7.2). */
  px_hsts own_hsts;
  const px_hsts *hsts =
      ex->f->is_https ? px_site_prefs_hsts(ex->w->env.acme, ex->site, ex->host, &own_hsts) : NULL;
  ex->resp_head_sent = 1;
  int r = ex->f->ops->response_head(ex->f, h, hsts, cl, no_body, 0);
  free_rhead(ex);
  if (r != 0) return HPE_USER;
  return no_body ? 1 : 0;
}

static int r_on_body(llhttp_t *p, const char *at, size_t len) {
  px_exchange *ex = p->data;
  return client_write(ex, at, len) != 0 ? HPE_USER : 0;
}

static int r_on_message_complete(llhttp_t *p) {
  px_exchange *ex = p->data;
  if (ex->aborted) return HPE_USER;
  if (ex->tunnel_pending) return 0; /* llhttp reports HPE_PAUSED_UPGRADE */
  if (ex->interim) {                /* wait for the final response */
    ex->interim = 0;
    return 0;
  }
  ex->resp_done = 1; /* set first: the front may abort us inside response_end */
  if (ex->f->ops->response_end(ex->f, ex->rtrailers) != 0) return HPE_USER;
  return HPE_PAUSED;
}

/* Initialised at compile time: every worker thread reads it, and a lazy
 * first-use initialisation was a data race (found by TSan). */
static const llhttp_settings_t resp_settings_table = {
    .on_message_begin = r_on_message_begin,
    .on_status = r_on_status,
    .on_status_complete = r_on_field_complete,
    .on_header_field = r_on_header_field,
    .on_header_field_complete = r_on_field_complete,
    .on_header_value = r_on_header_value,
    .on_header_value_complete = r_on_field_complete,
    .on_headers_complete = r_on_headers_complete,
    .on_body = r_on_body,
    .on_message_complete = r_on_message_complete,
};

static const llhttp_settings_t *resp_settings(void) { return &resp_settings_table; }

static void complete(px_exchange *ex, int upstream_reusable) {
  /* A tunnel's connection speaks WebSocket, not HTTP: it ends with it. */
  if (ex->tunnel || ex->tunnel_pending) ex->client_keep_alive = 0;
  /* An upstream that answered before the whole request was sent cannot be
   * reused, and neither can the client connection (its body is unread). */
  if (!ex->req_done) {
    ex->client_keep_alive = 0;
    upstream_reusable = 0;
  }
  finish(ex, upstream_reusable);
}

/* The client is behind: stop reading the upstream until it catches up
 * (px_exchange_on_client_drain). The wait is the client's, not the
 * backend's: the upstream read timeout pauses (it would answer 504 and mark
 * a healthy backend down) and timeouts.send runs on the client instead, so
 * a client that never reads is still cut off. */
static void hold_upstream(px_exchange *ex) {
  px_upstream_read_stop(ex->up);
  px_lazy_timer_set(&ex->up->timer, 0, NULL);
  ex->f->ops->set_timer(ex->f, ex->wg->cfg->limits.send_timeout_ms);
}

static void start_tunnel(px_exchange *ex, const char *rest, size_t len);
static void tunnel_read(px_exchange *ex, ssize_t nread, const char *buf);

static void on_up_read(px_upstream_conn *uc, ssize_t nread, const char *buf) {
  px_exchange *ex = uc->data;
  if (ex == NULL) return;
  if (ex->tunnel) {
    tunnel_read(ex, nread, buf);
    return;
  }
  if (nread < 0) {
    if (ex->resp_started) {
      /* Both calls below reach the front, which may abort us. */
      ex->busy++;
      /* For a response that ends with the connection, llhttp_finish runs
       * on_message_complete (which ends the response and pauses): the
       * front must not be told twice, or an HTTP/1.1 client reads a second
       * last-chunk as the start of the next response. */
      llhttp_errno_t e = llhttp_finish(&ex->rp);
      int ended = (e == HPE_OK || e == HPE_PAUSED) && ex->resp_done;
      if (!ended && !ex->resp_done && !ex->aborted && ex->resp_until_eof && ex->resp_head_sent) {
        ex->resp_done = 1;
        ended = ex->f->ops->response_end(ex->f, NULL) == 0;
        if (!ended && !ex->aborted) ended = -1; /* the client is gone */
      }
      ex->busy--;
      if (ex->aborted) {
        end_upstream(ex, 0);
        free_exchange(ex);
        return;
      }
      if (ended > 0) complete(ex, 0);
      if (ended) return;
    }
    if (maybe_retry(ex)) return;
    px_log(PX_LOG_WARN, "upstream %s: closed before a complete response",
           ex->site->upstreams[ex->up_idx].text);
    fail_with(ex, 502);
    return;
  }
  if (!ex->resp_started) {
    ex->resp_started = 1;
    px_balancer_answered(ex->wg, ex->site_idx, ex->up_idx);
    llhttp_init(&ex->rp, HTTP_RESPONSE, resp_settings());
    ex->rp.data = ex;
    px_obj_free(ex->req_head); /* no retry once the upstream has answered */
    ex->req_head = NULL;
  }
  arm_up_timer(ex, ex->wg->cfg->limits.upstream_read_timeout_ms);
  ex->busy++;
  llhttp_errno_t err = llhttp_execute(&ex->rp, buf, (size_t)nread);
  ex->busy--;
  if (ex->aborted) { /* the client side ended under the parser */
    const char *pos = err == HPE_PAUSED ? llhttp_get_error_pos(&ex->rp) : NULL;
    int clean =
        pos == buf + nread && ex->resp_done && ex->req_done && llhttp_should_keep_alive(&ex->rp);
    end_upstream(ex, clean);
    free_exchange(ex);
    return;
  }
  if (ex->tunnel_pending && (err == HPE_PAUSED_UPGRADE || err == HPE_PAUSED || err == HPE_OK)) {
    const char *pos = err == HPE_OK ? buf + nread : llhttp_get_error_pos(&ex->rp);
    start_tunnel(ex, pos, (size_t)(buf + nread - pos));
    return;
  }
  if (err == HPE_PAUSED) {
    /* Bytes after a complete response make the connection unusable. */
    const char *pos = llhttp_get_error_pos(&ex->rp);
    int clean = pos == buf + nread && llhttp_should_keep_alive(&ex->rp);
    complete(ex, clean);
    return;
  }
  if (err != HPE_OK) {
    if (!ex->resp_broken) /* else broken_upstream() said why */
      px_log(PX_LOG_WARN, "upstream %s: invalid response: %s", ex->site->upstreams[ex->up_idx].text,
             llhttp_get_error_reason(&ex->rp));
    fail_with(ex, 502);
    return;
  }
  if (ex->f->ops->pending(ex->f) > ex->wg->cfg->limits.buffer_size) hold_upstream(ex);
}

/* ---- WebSocket tunnel ------------------------------------------------------ */

/* After the 101: both directions are copied unparsed, with the same
 * backpressure as bodies, until either side closes or nothing moves for
 * timeouts.websocket_idle. WebSocket close frames pass through as data, so
 * the closing handshake (RFC 6455 §7) happens end to end. */
static void start_tunnel(px_exchange *ex, const char *rest, size_t len) {
  ex->tunnel_pending = 0;
  ex->tunnel = 1;
  px_metrics_conn_open(ex->w->metrics, PX_METRICS_CONN_WEBSOCKET);
  ex->req_done = 1;
  px_obj_free(ex->req_head);
  ex->req_head = NULL;
  arm_up_timer(ex, ex->wg->cfg->limits.websocket_idle_timeout_ms);
  ex->f->ops->set_timer(ex->f, 0);
  if (len && client_write(ex, rest, len) != 0) return;
  ex->f->ops->tunnel(ex->f);
}

int px_exchange_tunnel_write(px_exchange *ex, const char *data, size_t len) {
  if (ex->up == NULL || px_upstream_write(ex->up, data, len) != 0) {
    fail_with(ex, 0);
    return -1;
  }
  ex->req_body_bytes += len;
  arm_up_timer(ex, ex->wg->cfg->limits.websocket_idle_timeout_ms);
  if (ex->up->write_pending > ex->wg->cfg->limits.buffer_size) pause_request(ex);
  return 0;
}

static void tunnel_read(px_exchange *ex, ssize_t nread, const char *buf) {
  if (nread < 0) { /* the backend closed: let the client read what is queued */
    complete(ex, 0);
    return;
  }
  arm_up_timer(ex, ex->wg->cfg->limits.websocket_idle_timeout_ms);
  if (client_write(ex, buf, (size_t)nread) != 0) return;
  if (ex->f->ops->pending(ex->f) > ex->wg->cfg->limits.buffer_size) hold_upstream(ex);
}
