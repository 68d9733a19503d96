/*
 * The upstream response head path: llhttp (strict) builds the head and any
 * trailers as exchange.c does, then portico's framing decision (exchange.c's
 * r_on_headers_complete) and the head and last chunk an HTTP/1.1 client gets
 * (px_http_serialize_response with an HSTS line, px_http_serialize_last_chunk).
 *
 * Oracle beyond the sanitizers: what portico sends the client parses again as
 * one response with the same status, and a chunked body's last chunk with
 * the filtered trailers ends that response (no bytes left over that a client
 * would read as the next response).
 *
 * Modelled, not reached (exchange.c's callbacks are static and need a live
 * upstream connection): 1xx and statuses outside 100-599 end here, as
 * issue 14 items 3 and 4 make exchange.c treat them (not forwarded).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/http.h"
#include "tests/fuzz/support/head_parser.h"

#define MAX_RESPONSE_HEAD 65536 /* PX_MAX_RESPONSE_HEAD in exchange.c */

static void fail(const char *what, const char *out, size_t len) {
  fprintf(stderr, "%s:\n%.*s\n", what, (int)len, out);
  abort();
}

/* The client's view: the serialised head (plus the last chunk when chunked). */
static void check_client_bytes(const char *out, size_t len, int status, int chunked, int no_body) {
  fuzz_head again;
  fuzz_head_parse(&again, HTTP_RESPONSE, out, len, MAX_RESPONSE_HEAD + 4096, 256, 0);
  if (again.err != HPE_OK && again.err != HPE_PAUSED)
    fail("portico's response does not parse", out, len);
  if (!again.headers_done || again.head->status != status)
    fail("the response says another status", out, len);
  if (chunked && !no_body) {
    if (!again.message_done) fail("the last chunk does not end the response", out, len);
    if (llhttp_get_error_pos(&again.parser) != out + len)
      fail("bytes after the response", out, len);
  }
  fuzz_head_dispose(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The first byte picks the request method's effect (HEAD) and the site's HSTS. */
  if (size < 1) return 0;
  int head_req = data[0] & 1, hsts_on = (data[0] >> 1) & 1;
  fuzz_head fh;
  fuzz_head_parse(&fh, HTTP_RESPONSE, (const char *)data + 1, size - 1, MAX_RESPONSE_HEAD,
                  PX_MAX_HEADERS_HARD, 1);
  px_http_head *h = fh.head;
  if (!fh.headers_done || h == NULL || h->status < 200 || h->status > 599) goto out;
  if (h->nheaders > PX_MAX_HEADERS_HARD - 8) goto out; /* room for what portico adds */
  int no_body = head_req || h->status == 204 || h->status == 304;
  int64_t cl = -1;
  if (!no_body && !fh.chunked)
    cl = fh.content_length; /* -1: until EOF, sent chunked */
  else if (head_req)
    cl = fh.content_length;
  int chunked = !no_body && cl < 0;
  px_hsts hsts = {hsts_on, 31536000, 1, 0};
  char extra[256];
  size_t extra_len = px_http_hsts_line(&hsts, extra, sizeof(extra));
  extra[extra_len] = '\0';
  size_t cap = h->arena_len + (fh.trailers ? fh.trailers->arena_len : 0) + 2048 +
               (h->nheaders + (fh.trailers ? fh.trailers->nheaders : 0)) * 4;
  char *out = malloc(cap);
  if (out == NULL) goto out;
  long n = px_http_serialize_response(h, extra_len ? extra : NULL,
                                      no_body ? cl : (chunked ? -1 : cl), chunked, 1, out, cap);
  if (n > (long)cap) abort();
  if (n >= 0 && chunked) {
    long t =
        px_http_serialize_last_chunk(fh.chunked ? fh.trailers : NULL, out + n, cap - (size_t)n);
    if (t > (long)(cap - (size_t)n)) abort();
    n = t < 0 ? -1 : n + t;
  }
  if (n >= 0) check_client_bytes(out, (size_t)n, h->status, chunked, no_body);
  free(out);
out:
  fuzz_head_dispose(&fh);
  return 0;
}
