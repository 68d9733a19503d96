/*
 * HTTP/2 frames from a client: an nghttp2 server session with the options
 * and SETTINGS portico's h2.c uses (CONTINUATION, reset, SETTINGS and ACK
 * limits, no automatic WINDOW_UPDATE, a 4 KiB HPACK table), fed the client
 * preface plus the input. Each request's fields go into a px_http_head the way
 * h2.c's on_header does (pseudo-headers into the arena, :authority over
 * host), then through what start_request runs before an exchange starts:
 * Host normalisation, routing, the Host line for HTTP/1.1, px_http_check_request
 * and px_http_serialize_request. The session's output is drained after every
 * chunk and a response is submitted to each complete request, so the send
 * side (flow control, RST_STREAM, GOAWAY) runs too.
 *
 * Not reached (h2.c's callbacks are static and its session belongs to a
 * px_conn with a socket): portico's glitch counting, timers and the
 * exchange's streaming. The field handling and checks copied here follow
 * h2.c as of this driver; keep them in step.
 */
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/http.h"
#include "tests/fuzz/support/sites.h"

#define MAX_HEADER_BYTES 32768
#define MAX_STREAMS 100
#define STREAM_WINDOW 65536
#define CONN_WINDOW (1 << 20)

typedef struct stream {
  px_http_head *head;
  int in_field;
  size_t head_bytes;
  int too_large;
  char authority[256];
  size_t authority_len;
  int authority_bad;
  int has_method, has_path;
  int answered;
  struct stream *next; /* every stream of the session, freed at its end */
} stream;

static stream *streams;

static const px_config *cfg;

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  stream *st = calloc(1, sizeof(*st));
  if (st == NULL) return NGHTTP2_ERR_CALLBACK_FAILURE;
  st->head = px_http_head_new(MAX_HEADER_BYTES + 512);
  if (st->head == NULL) {
    free(st);
    return NGHTTP2_ERR_CALLBACK_FAILURE;
  }
  st->next = streams;
  streams = st;
  nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
  return 0;
}

static const char *arena_str(px_http_head *h, const uint8_t *v, size_t len) {
  const char *start = h->arena + h->arena_len;
  if (px_http_head_append(h, (const char *)v, len) != 0) return NULL;
  h->arena[h->arena_len++] = '\0';
  return start;
}

static void copy_authority(stream *st, const uint8_t *value, size_t vlen) {
  st->authority_bad = vlen >= sizeof(st->authority);
  st->authority_len = st->authority_bad ? 0 : vlen;
  memcpy(st->authority, value, st->authority_len);
  st->authority[st->authority_len] = '\0';
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user) {
  stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (st == NULL || frame->hd.type != NGHTTP2_HEADERS || st->head == NULL) return 0;
  st->head_bytes += nlen + vlen + 32;
  if (st->head_bytes > MAX_HEADER_BYTES) {
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
  int is_host = nlen == 4 && memcmp(name, "host", 4) == 0;
  if (is_host && (st->authority_len || st->authority_bad)) return 0;
  if (is_host) copy_authority(st, value, vlen);
  if (px_http_head_field_name(h, &st->in_field, (const char *)name, nlen, PX_MAX_HEADERS_HARD) !=
          0 ||
      px_http_head_field_done(h, &st->in_field) != 0 ||
      px_http_head_field_value(h, &st->in_field, (const char *)value, vlen) != 0 ||
      px_http_head_field_done(h, &st->in_field) != 0)
    st->too_large = 1;
  return 0;
}

/* What start_request does before px_exchange_start; returns the status
 * portico would answer itself, or 0 when the request would go upstream. */
static int start_request(stream *st) {
  px_http_head *h = st->head;
  if (st->too_large) return 431;
  if (!st->has_method || !st->has_path || h->target[0] != '/' || st->authority_bad) return 400;
  char host[256];
  int hlen = px_http_normalize_host(st->authority, st->authority_len, host, sizeof(host));
  const px_site *site = hlen > 0 ? px_http_route(cfg, host) : NULL;
  if (hlen <= 0 || site == NULL) return hlen <= 0 ? 400 : 421;
  int dummy = 0;
  px_http_head_field_name(h, &dummy, "host", 4, PX_MAX_HEADERS_HARD);
  px_http_head_field_done(h, &dummy);
  px_http_head_field_value(h, &dummy, st->authority, st->authority_len);
  px_http_head_field_done(h, &dummy);
  h->version_minor = 1;
  if (px_http_check_request(h) != NULL) return 400;
  size_t cap = h->arena_len + 2048 + h->nheaders * 4;
  char *out = malloc(cap);
  if (out == NULL) return 500;
  px_forward_info fwd = {.client_ip = "2001:db8::1", .proto = "https", .host = host};
  long n = px_http_serialize_request(h, &fwd, -1, 1, 1, out, cap);
  if (n > (long)cap) abort();
  free(out);
  return n < 0 ? 431 : 200;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *user) {
  stream *st = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST ||
      st == NULL || st->answered)
    return 0;
  st->answered = 1;
  uint8_t name[] = ":status", status[4];
  snprintf((char *)status, sizeof(status), "%d", start_request(st));
  px_http_head_free(st->head);
  st->head = NULL;
  nghttp2_nv nv[] = {{name, status, 7, 3, NGHTTP2_NV_FLAG_NONE}};
  nghttp2_submit_response(s, frame->hd.stream_id, nv, 1, NULL);
  return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user) {
  nghttp2_session_consume(s, id, len);
  return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *user) {
  stream *st = nghttp2_session_get_stream_user_data(s, id);
  if (st) {
    px_http_head_free(st->head);
    st->head = NULL;
  }
  return 0;
}

static void drain(nghttp2_session *s) {
  const uint8_t *out;
  while (nghttp2_session_mem_send(s, &out) > 0) {
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfg = fuzz_sites(0);
  nghttp2_session_callbacks *cb;
  nghttp2_option *opt;
  nghttp2_session *s;
  if (nghttp2_session_callbacks_new(&cb) != 0) return 0;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_stream_reset_rate_limit(opt, 200, 50);
  nghttp2_option_set_max_settings(opt, 16);
  nghttp2_option_set_max_outbound_ack(opt, 100);
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
  int r = nghttp2_session_server_new2(&s, cb, NULL, opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (r != 0) return 0;
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_BYTES},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
  nghttp2_session_set_local_window_size(s, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
  drain(s);
  static const char preface[] = NGHTTP2_CLIENT_MAGIC;
  if (nghttp2_session_mem_recv(s, (const uint8_t *)preface, sizeof(preface) - 1) < 0) abort();
  /* Fed in pieces, as reads arrive: the first byte sets the piece size. */
  size_t piece = size ? (size_t)data[0] * 16 + 1 : 1, off = size ? 1 : 0;
  while (off < size) {
    size_t n = size - off < piece ? size - off : piece;
    if (nghttp2_session_mem_recv(s, data + off, n) < 0) break;
    drain(s);
    off += n;
  }
  nghttp2_session_del(s);
  while (streams) {
    stream *st = streams;
    streams = st->next;
    px_http_head_free(st->head);
    free(st);
  }
  return 0;
}
