#include "proxy/h1.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/manager.h"
#include "proxy/conn.h"
#include "proxy/exchange.h"
#include "proxy/h1_http01.h"
#include "proxy/http/route.h"
#include "proxy/metrics.h"
#include "proxy/site_prefs.h"
#include "proxy/util/access.h"
#include "tls/log.h"

/* Upper bound on a chunk extension (name + value) before we answer 400:
 * llhttp 8.1 enforces none (docs/dependencies.md). */
#define PX_MAX_CHUNK_EXT 256

static const llhttp_settings_t *h1_settings(void);

static void free_head(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  px_http_head_free(h1->head);
  h1->head = NULL;
}

static void drop_stash(px_conn *c);

/* Writes one of portico's own responses, without logging it. */
static void send_simple(px_conn *c, int status, const char *extra, int close, uint64_t *bytes) {
  char buf[2048];
  long n = px_http_simple_response(status, extra, close, buf, sizeof(buf));
  if (n < 0) {
    px_conn_close(c);
    return;
  }
  *bytes = (uint64_t)n;
  if (px_conn_write(c, buf, (size_t)n) != 0) return;
  if (close) px_conn_close_after_flush(c);
}

/* The request line's target when this request's own bytes hold a complete
 * one, else NULL: a head comes from a per-thread cache, and the arena past
 * what this request wrote still holds an earlier request's bytes. */
static const char *own_target(const px_http_head *h) {
  if (h == NULL || h->target_len == 0 || h->target[h->target_len] != '\0') return NULL;
  return h->target;
}

void px_h1_respond(px_conn *c, int status, const char *extra, int close) {
  px_h1 *h1 = px_h1_of(c);
  px_access_entry e = {0};
  px_conn_access_fields(c, &e);
  if (h1->head_done) px_access_set_head(&e, h1->head, 0);
  e.status = status;
  e.host = h1->req_host[0] ? h1->req_host : c->sni;
  e.method = h1->head ? h1->head->method : NULL;
  e.path = own_target(h1->head);
  send_simple(c, status, extra, close, &e.bytes);
  px_access_log(&e);
  px_metrics_local(c->w->metrics, 0, status);
}

void px_h1_respond_unlogged(px_conn *c, int status) {
  uint64_t bytes = 0;
  send_simple(c, status, NULL, 1, &bytes);
}

/* Answers an error found while parsing and stops reading: after a framing
 * error the rest of the stream cannot be trusted (RFC 9112 §11.2). */
static int fail(px_conn *c, int status, const char *why) {
  px_h1 *h1 = px_h1_of(c);
  px_log(PX_LOG_DEBUG, "client %s: %d: %s", c->peer_ip, status, why);
  if (h1->ex) { /* mid-body: never write an answer over a running exchange */
    px_exchange_refuse(h1->ex, status);
    return HPE_USER;
  }
  px_h1_respond(c, status, NULL, 1);
  return HPE_USER;
}

static void on_header_timeout(px_conn *c) {
  px_log(PX_LOG_DEBUG, "client %s: request head timed out", c->peer_ip);
  px_h1_respond(c, 408, NULL, 1);
}

/* Counts head bytes against limits.max_header_bytes (431 past it). */
static int count_head_bytes(px_conn *c, size_t len) {
  px_h1 *h1 = px_h1_of(c);
  h1->head_bytes += len;
  return h1->head_bytes > c->wg->cfg->limits.max_header_bytes ? -1 : 0;
}

static int on_message_begin(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  free_head(c);
  h1->head = px_http_head_new(c->wg->cfg->limits.max_header_bytes + 64);
  if (h1->head == NULL) return HPE_USER;
  h1->head_bytes = 0;
  h1->head_error = 0;
  h1->start_pending = 0;
  h1->head_done = 0;
  h1->req_host[0] = '\0';
  h1->in_field = 0;
  if (c->state != PX_CONN_HEADERS) {
    c->state = PX_CONN_HEADERS;
    px_conn_set_timer(c, c->wg->cfg->limits.header_timeout_ms);
  }
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (count_head_bytes(c, len) != 0 || px_http_head_append(h1->head, at, len) != 0)
    return fail(c, 431, "request line too long");
  h1->head->target_len += len;
  return 0;
}

static int on_url_complete(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  return px_http_head_field_done(h1->head, &h1->in_field) == 0
             ? 0
             : fail(c, 431, "request line too long");
}

/* A request's trailer section (after a chunked body) is not forwarded:
 * RFC 9110 §6.5.1 lets a recipient drop trailers, and the body has already
 * gone upstream, so a 431 here would answer a request the backend ran. Its
 * bytes still count against max_header_bytes; past that the connection is
 * cut, as no clean answer is possible any more. */
static int trailer_span(px_conn *c, size_t len) {
  px_h1 *h1 = px_h1_of(c);
  h1->head_bytes += len;
  if (h1->head_bytes <= c->wg->cfg->limits.max_header_bytes) return 0;
  px_log(PX_LOG_INFO, "client %s: request trailers over limits.max_header_bytes", c->peer_ip);
  px_conn_close(c);
  return HPE_USER;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->head_done) return trailer_span(c, len);
  if (h1->in_field != 1 && h1->head->nheaders >= c->wg->cfg->limits.max_headers)
    return fail(c, 431, "too many header fields");
  if (count_head_bytes(c, len) != 0 || px_http_head_field_name(h1->head, &h1->in_field, at, len,
                                                               c->wg->cfg->limits.max_headers) != 0)
    return fail(c, 431, "header block too large");
  h1->name_end = at + len;
  h1->name_gen = h1->feed_gen;
  h1->gap_crlf = 0;
  return 0;
}

/* Where the gap after the last field name starts within the current run. */
static const char *gap_start(const px_conn *c) {
  const px_h1 *h1 = px_h1_of(c);
  return h1->name_gen == h1->feed_gen ? h1->name_end : h1->feed_start;
}

/* llhttp 8.1 accepts obs-fold even before the first byte of a value
 * ("Name:\r\n value"); a line break between the colon and the value is
 * that fold (RFC 9112 §5.2). */
static int gap_has_line_break(const char *from, const char *to) {
  for (const char *p = from; p < to; p++)
    if (*p == '\r' || *p == '\n') return 1;
  return 0;
}

static int on_header_field_complete(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->head_done) return 0;
  if (px_http_head_field_done(h1->head, &h1->in_field) != 0)
    return fail(c, 431, "header block too large");
  h1->in_field = 1; /* still this field: its value follows */
  h1->gap_open = 1;
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->head_done) return trailer_span(c, len);
  /* llhttp reports an empty value ("X-Empty:") as a span of length 0 that
   * starts past the line end: nothing to add, and no gap to judge. */
  if (len == 0) return 0;
  if (h1->in_field != 2) {
    if (h1->gap_crlf || gap_has_line_break(gap_start(c), at))
      return fail(c, 400, "obs-fold before a header value");
    h1->gap_open = 0;
  } else if (at != h1->feed_start || h1->feed_prev_last == '\n') {
    /* llhttp 8.1 splits a value only at a buffer boundary, or where it
     * accepted obs-fold ("\r\n " inside the value): RFC 9112 §5.2 lets a
     * server reject folding, and a proxy must not pass it on. */
    return fail(c, 400, "obs-fold in a header value");
  }
  if (count_head_bytes(c, len) != 0 ||
      px_http_head_field_value(h1->head, &h1->in_field, at, len) != 0)
    return fail(c, 431, "header block too large");
  return 0;
}

static int on_header_value_complete(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->head_done) return 0; /* a trailer field: dropped */
  /* An empty value ("X-Empty:") ends here with no value span: the gap
   * after its name closes without being obs-fold. */
  h1->gap_open = 0;
  h1->gap_crlf = 0;
  if (px_http_head_field_done(h1->head, &h1->in_field) != 0)
    return fail(c, 431, "header block too large");
  return 0;
}

/* Port 80: answers what routing left to portico itself (http-01, 404,
 * the redirect to HTTPS). Returns 1 when the request was answered here, or
 * waits for an http-01 answer (h1->http01_wait; only without a body). */
static int answer_plain_http(px_conn *c, const px_route *r, int with_body) {
  px_h1 *h1 = px_h1_of(c);
  px_http_head *h = h1->head;
  switch (r->action) {
  case PX_ROUTE_HTTP01:
    px_h1_http01_answer(c, r->host, r->token, !with_body);
    return 1;
  case PX_ROUTE_NOT_FOUND:
    px_h1_respond(c, 404, NULL, 0);
    return 1;
  case PX_ROUTE_REDIRECT: {
    char loc[8192 + 300];
    char line[sizeof(loc) + 16];
    int n = px_http_redirect_location(r->host, h->target, h->target_len, c->wg->gen->https_port,
                                      loc, sizeof(loc));
    if (n < 0) {
      px_h1_respond(c, 400, NULL, 1);
      return 1;
    }
    snprintf(line, sizeof(line), "Location: %s\r\n", loc);
    /* 301 keeps GET/HEAD working with every client; 308 keeps the method
     * and body of anything else (RFC 9110 §15.4.9). */
    int get_or_head = h1->parser.method == HTTP_GET || h1->parser.method == HTTP_HEAD;
    px_h1_respond(c, get_or_head ? 301 : 308, line, 0);
    return 1;
  }
  default:
    return 0;
  }
}

static int request_has_body(const llhttp_t *p) {
  return (p->flags & F_CHUNKED) || ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0);
}

static int on_headers_complete(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  px_http_head *h = h1->head;
  h1->head_done = 1;
  h1->chunk_ext_bytes = 0;
  h1->head_bytes = 0; /* from here on it counts trailer bytes */
  h1->gap_open = 0;
  if (h1->head_error) return fail(c, h1->head_error, "head over limits");
  h->method = llhttp_method_name((llhttp_method_t)p->method);
  h->version_minor = p->http_minor;
  if (p->http_major != 1) return fail(c, 505, "HTTP version");
  const char *why = px_http_check_request(h);
  if (why) return fail(c, 400, why);
  /* Origin-form only (RFC 9112 §3.2.1); OPTIONS * is the one exception. */
  if (h->target[0] != '/' && !(p->method == HTTP_OPTIONS && strcmp(h->target, "*") == 0))
    return fail(c, 400, "request-target is not origin-form");
  if (p->method == HTTP_CONNECT) return fail(c, 405, "CONNECT");

  const px_header *hh = px_http_find(h, "host");
  px_route r;
  px_route_request(c->wg->cfg, hh ? hh->value : NULL, hh ? hh->value_len : 0,
                   c->is_https ? c->sni : NULL, h->target, c->wg->gen->https_port, &r);
  if (r.action == PX_ROUTE_BAD_HOST) return fail(c, 400, "missing or invalid Host");
  px_acme_site_prefs prefs;
  if ((r.action == PX_ROUTE_REDIRECT || r.action == PX_ROUTE_PROXY) && !c->is_https &&
      px_site_prefs_get(c->w->env.acme, r.site, r.host, &prefs) && prefs.redirect_http >= 0)
    r.action =
        prefs.redirect_http && c->wg->gen->https_port > 0 ? PX_ROUTE_REDIRECT : PX_ROUTE_PROXY;
  memcpy(h1->req_host, r.host, r.host_len + 1);
  /* Upstream gets the Host as received (with its port); a request without
   * one (HTTP/1.0) gets the name it was routed by. */
  if (hh && hh->value_len < sizeof(h1->req_authority)) {
    memcpy(h1->req_authority, hh->value, hh->value_len);
    h1->req_authority[hh->value_len] = '\0';
  } else {
    memcpy(h1->req_authority, r.host, r.host_len + 1);
  }

  int with_body = request_has_body(p);
  if (r.action == PX_ROUTE_MISDIRECTED) {
    px_h1_respond(c, 421, NULL, with_body);
    return with_body ? HPE_USER : 1;
  }
  if (r.action != PX_ROUTE_PROXY && answer_plain_http(c, &r, with_body)) {
    if (with_body) {
      px_conn_close_after_flush(c);
      return HPE_USER;
    }
    return 1;
  }
  const px_site *site = r.site;
  c->state = PX_CONN_ACTIVE;
  px_conn_set_timer(c, c->wg->cfg->limits.body_timeout_ms);
  px_front_request *req = &h1->pending_req;
  memset(req, 0, sizeof(*req));
  req->head = h;
  req->authority = h1->req_authority;
  req->chunked = (p->flags & F_CHUNKED) != 0;
  req->content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
  /* WebSocket (RFC 6455 §4.1): a GET on HTTP/1.1 without a body. Another
   * protocol switch (h2c, ...) is refused by dropping its Upgrade; llhttp
   * has left HTTP/1.1 parsing by then, so the connection ends after it. */
  req->websocket = px_http_is_websocket_upgrade(h) && p->method == HTTP_GET &&
                   h->version_minor >= 1 && !req->chunked && req->content_length <= 0;
  req->keep_alive = llhttp_should_keep_alive(p) && !(p->upgrade && !req->websocket);
  h1->resp_head_sent = 0;
  h1->pending_site = site;
  h1->start_pending = 1;
  return 0;
}

/* Starts the exchange for the head llhttp has now accepted (see
 * start_pending in conn.h). Nothing reaches a backend before this point.
 * 0, or -1 when the request was answered here and parsing must stop. */
static int start_exchange(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  h1->start_pending = 0;
  px_http_head *h = h1->head;
  int status =
      px_exchange_start(&h1->front, h1->pending_site, h1->req_host, &h1->pending_req, &h1->ex);
  if (status != 0) {
    if (status > 0)
      px_h1_respond(c, status, NULL, 1);
    else
      px_conn_close(c);
    return -1;
  }
  /* "Expect: 100-continue" is answered here: the body goes to the upstream
   * as it arrives anyway (RFC 9110 §10.1.1). */
  const px_header *expect = px_http_find(h, "expect");
  if (expect && expect->value_len == 12 && strncasecmp(expect->value, "100-continue", 12) == 0 &&
      h->version_minor >= 1) {
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    if (px_conn_write(c, cont, sizeof(cont) - 1) != 0) return -1;
  }
  return 0;
}

/* Small body pieces (a client's tiny chunks) are gathered in the thread's
 * (the worker's) stage and handed to the exchange once per parser run: one
 * call per read instead of one per chunk keeps the cost per byte received
 * bounded. Only one connection parses at a time on a worker, and the stage
 * is always emptied before the parser run ends. */
static __thread char stage[16384];
static __thread size_t stage_len;

/* 0, or -1 when the exchange failed. */
static int flush_stage(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  if (stage_len == 0) return 0;
  size_t n = stage_len;
  stage_len = 0;
  return h1->ex && px_exchange_body(h1->ex, stage, n) != 0 ? -1 : 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->start_pending && start_exchange(c) != 0) return HPE_USER;
  if (h1->ex == NULL) return 0;
  h1->chunk_ext_bytes = 0; /* this chunk's extensions are behind us */
  if (len < 256) {
    if (stage_len + len > sizeof(stage) && flush_stage(c) != 0) return HPE_USER;
    if (len == 1)
      stage[stage_len] = *at;
    else
      memcpy(stage + stage_len, at, len);
    stage_len += len;
    return 0;
  }
  if (flush_stage(c) != 0 || px_exchange_body(h1->ex, at, len) != 0) return HPE_USER;
  return 0;
}

/* llhttp reports a chunk's extensions before its data; on_body resets the
 * count for the next chunk, so the limit holds for every chunk, the first
 * included. (No on_chunk_header callback: with 1-byte chunks each callback
 * is a measurable share of the work per byte.) */
static int on_chunk_ext(llhttp_t *p, const char *at, size_t len) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  h1->chunk_ext_bytes += len;
  if (h1->chunk_ext_bytes > PX_MAX_CHUNK_EXT) return fail(c, 400, "chunk extension too long");
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  px_conn *c = p->data;
  px_h1 *h1 = px_h1_of(c);
  if (h1->start_pending && start_exchange(c) != 0) return HPE_USER;
  if (flush_stage(c) != 0) return HPE_USER;
  if (h1->ex) px_exchange_body_end(h1->ex);
  /* Pause until the response is out: no pipelined request runs before the
   * previous one is answered (RFC 9112 §9.3.2). */
  return HPE_PAUSED;
}

/* Initialised at compile time: every worker thread reads it, and a lazy
 * first-use initialisation was a data race (found by TSan). */
static const llhttp_settings_t h1_settings_table = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_url_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_extension_name = on_chunk_ext,
    .on_chunk_extension_value = on_chunk_ext,
    .on_message_complete = on_message_complete,
};

static const llhttp_settings_t *h1_settings(void) { return &h1_settings_table; }

/* Keeps the unparsed rest of `data` for after the pause (appended to any
 * stash left, bounded by one read slab beyond what is already there). */
static int stash_rest(px_conn *c, const char *pos, size_t rest) {
  px_h1 *h1 = px_h1_of(c);
  if (rest == 0) return 0;
  size_t keep = h1->stash ? h1->stash_len - h1->stash_off : 0;
  if (keep + rest > 4 * PX_READ_SLAB) return -1;
  char *copy = malloc(keep + rest);
  if (copy == NULL) return -1;
  if (keep) memcpy(copy, h1->stash + h1->stash_off, keep);
  memcpy(copy + keep, pos, rest);
  free(h1->stash);
  h1->stash = copy;
  h1->stash_len = keep + rest;
  h1->stash_off = 0;
  return 0;
}

static void drop_stash(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  free(h1->stash);
  h1->stash = NULL;
  h1->stash_len = h1->stash_off = 0;
}

/* A request answered here is complete: get ready for the next one without
 * re-entering the parser. Returns 1 when parsing may go on. */
static int local_answer_done(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  c->requests++;
  if (!llhttp_should_keep_alive(&h1->parser) || c->w->draining || c->peer_eof) {
    px_conn_close_after_flush(c);
    return 0;
  }
  c->state = PX_CONN_IDLE;
  h1->parser_paused = 0;
  llhttp_resume(&h1->parser);
  px_conn_set_timer(c, c->wg->cfg->limits.keepalive_timeout_ms);
  free_head(c);
  return 1;
}

/* Runs the parser over `data` and handles pause and errors. `from_stash`
 * means `data` lies inside the stash. Returns 1 when more may be parsed. */
static int execute(px_conn *c, const char *data, size_t len, int from_stash) {
  px_h1 *h1 = px_h1_of(c);
  h1->feed_start = data;
  h1->feed_gen++;
  llhttp_errno_t err = llhttp_execute(&h1->parser, data, len);
  if (err == HPE_OK && !c->closed && flush_stage(c) != 0) err = HPE_USER;
  stage_len = 0; /* never carried into another connection's run */
  if (c->closed) return 0;
  if (h1->gap_open && gap_has_line_break(gap_start(c), data + len)) h1->gap_crlf = 1;
  if (len) h1->feed_prev_last = data[len - 1];
  if (c->closed) return 0;
  if (err == HPE_OK) {
    if (from_stash) drop_stash(c);
    /* llhttp ran past the head without refusing it: the request may go. */
    if (h1->start_pending && start_exchange(c) != 0) {
      if (!c->closed && c->state != PX_CONN_CLOSING) px_conn_close_after_flush(c);
      return 0;
    }
    return 1;
  }
  if (err == HPE_PAUSED) {
    const char *pos = llhttp_get_error_pos(&h1->parser);
    if (from_stash) {
      h1->stash_off += (size_t)(pos - data);
      if (h1->stash_off >= h1->stash_len) drop_stash(c);
    } else if (stash_rest(c, pos, len - (size_t)(pos - data)) != 0) {
      px_conn_close(c);
      return 0;
    }
    /* The socket stays readable: stopping and restarting it would cost two
     * epoll_ctl calls per request. What a pipelining client sends meanwhile
     * is kept, and reads stop once a slab of it waits (h1_feed). */
    h1->parser_paused = 1;
    if (h1->ex == NULL && !h1->http01_wait && c->state != PX_CONN_CLOSING)
      return local_answer_done(c);
    return 0;
  }
  if (err != HPE_USER && c->state != PX_CONN_CLOSING) {
    px_log(PX_LOG_DEBUG, "client %s: parse error: %s", c->peer_ip,
           llhttp_get_error_reason(&h1->parser));
    px_h1_respond(c, 400, NULL, 1);
  } else if (c->state != PX_CONN_CLOSING) {
    px_conn_close_after_flush(c);
  }
  return 0;
}

/* Parses stashed bytes after a pause. 1 when more input may follow. */
static int consume_stash(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  while (h1->stash && !h1->parser_paused && !c->closed) {
    if (!execute(c, h1->stash + h1->stash_off, h1->stash_len - h1->stash_off, 1)) break;
  }
  return !c->closed && !h1->parser_paused && c->state != PX_CONN_CLOSING;
}

/* Parses plaintext from the client. 1 when the caller may feed more, 0
 * when parsing paused (a request is being answered; the rest of `data` is
 * stashed) or the connection is closing. */
static int h1_feed(px_conn *c, const char *data, size_t len) {
  px_h1 *h1 = px_h1_of(c);
  if (h1->tunnel) return px_exchange_tunnel_write(h1->ex, data, len) == 0;
  if (h1->parser_paused) {
    /* Paused: keep what arrives, and stop reading once a slab waits. */
    if (stash_rest(c, data, len) != 0) {
      px_conn_close(c);
      return 0;
    }
    if (px_conn_input_full(c)) px_conn_stop_reading(c);
    return 0;
  }
  if (!execute(c, data, len, 0)) return 0;
  if (!consume_stash(c)) return 0;
  px_conn_start_reading(c);
  return 1;
}

void px_h1_exchange_done(px_conn *c, int keep_alive) {
  px_h1 *h1 = px_h1_of(c);
  h1->ex = NULL;
  h1->tunnel = 0;
  c->requests++;
  if (!keep_alive || c->w->draining || c->peer_eof) {
    px_conn_close_after_flush(c);
    return;
  }
  c->state = PX_CONN_IDLE;
  h1->parser_paused = 0;
  llhttp_resume(&h1->parser);
  px_conn_set_timer(c, c->wg->cfg->limits.keepalive_timeout_ms);
  free_head(c); /* an idle keep-alive connection holds no request buffers */
  px_conn_resume_read(c);
  if (!c->closed && c->tls && c->state == PX_CONN_IDLE && c->write_pending == 0)
    px_tls_conn_compact(c->tls);
}

/* ---- the session as the transport sees it (px_session_ops) ------------- */

static int h1_resume(px_conn *c) { return px_h1_of(c)->tunnel || consume_stash(c); }

static int h1_paused(const px_conn *c) {
  const px_h1 *h1 = px_h1_of(c);
  return h1->parser_paused && !h1->tunnel;
}

static int h1_input_full(const px_conn *c, size_t transport) {
  const px_h1 *h1 = px_h1_of(c);
  if (h1->tunnel) return 0;
  size_t waiting = transport + (h1->stash ? h1->stash_len - h1->stash_off : 0);
  return waiting > PX_READ_SLAB;
}

static void h1_drain(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  if (h1->ex) px_exchange_on_client_drain(h1->ex);
}

static void h1_timer(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  if (c->state == PX_CONN_HEADERS)
    on_header_timeout(c);
  else if (c->state == PX_CONN_ACTIVE && h1->ex)
    px_exchange_on_client_timeout(h1->ex);
  else if (c->state == PX_CONN_ACTIVE && h1->http01_wait)
    px_h1_http01_timeout(c);
  else
    px_conn_close(c);
}

static px_session_phase h1_phase(const px_conn *c) {
  const px_h1 *h1 = px_h1_of(c);
  if (h1->tunnel) return PX_SESSION_TUNNEL;
  if (h1->http01_wait) return PX_SESSION_RESPONSE; /* read whole; its answer is due */
  if (h1->ex == NULL) return PX_SESSION_IDLE;
  return px_exchange_request_done(h1->ex) ? PX_SESSION_RESPONSE : PX_SESSION_REQUEST;
}

static int h1_awaits_client(const px_conn *c) {
  return c->state == PX_CONN_ACTIVE && !c->read_paused && h1_phase(c) == PX_SESSION_REQUEST;
}

static void h1_shutdown(px_conn *c) {
  if (c->state == PX_CONN_IDLE) px_conn_close_after_flush(c);
}

static void h1_close(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  if (h1->ex) px_exchange_abort(h1->ex);
  h1->ex = NULL;
  free_head(c);
  drop_stash(c);
}

static void h1_free(px_conn *c) {
  free(c->session);
  c->session = NULL;
}

static const px_session_ops h1_session_ops = {
    .feed = h1_feed,
    .resume = h1_resume,
    .paused = h1_paused,
    .input_full = h1_input_full,
    .drain = h1_drain,
    .flush = NULL,
    .timer = h1_timer,
    .phase = h1_phase,
    .awaits_client = h1_awaits_client,
    .shutdown = h1_shutdown,
    .resolved = px_h1_http01_resolved,
    .close = h1_close,
    .free = h1_free,
};

int px_h1_start(px_conn *c) {
  px_h1 *h1 = calloc(1, sizeof(*h1));
  if (h1 == NULL) return -1;
  h1->c = c;
  llhttp_init(&h1->parser, HTTP_REQUEST, h1_settings());
  h1->parser.data = c;
  c->session = h1;
  c->session_ops = &h1_session_ops;
  px_h1_front_init(c);
  return 0;
}
