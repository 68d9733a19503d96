/*
 * The HTTP/1.1 request head path: llhttp (strict) builds the head as h1.c
 * does, then what on_headers_complete runs on it: px_http_check_request,
 * Host normalisation, routing, the WebSocket test, the port-80 redirect
 * Location, and the upstream head (px_http_serialize_request).
 *
 * Oracle beyond the sanitizers: a head portico accepted and serialised must
 * parse again, as a whole request head, with the same method and target, and
 * must pass px_http_check_request itself: portico never sends a backend a
 * head it would refuse from a client (the framing it re-declares included).
 *
 * Not reached (static in h1.c, tied to a connection): the obs-fold gap check
 * and the limit counters of h1.c's own callbacks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/config.h"
#include "proxy/http.h"
#include "tests/fuzz/support/head_parser.h"
#include "tests/fuzz/support/sites.h"

#define MAX_HEADER_BYTES 32768 /* limits.max_header_bytes default */
#define MAX_HEADERS 100        /* limits.max_headers default */

static const px_config *cfg;

static void check_forwarded(const char *out, size_t len, const px_http_head *sent, int chunked) {
  fuzz_head again;
  fuzz_head_parse(&again, HTTP_REQUEST, out, len, MAX_HEADER_BYTES + 4096, 256, 0);
  /* The head alone: llhttp waits for a body or has seen a whole message. */
  if ((again.err != HPE_OK && again.err != HPE_PAUSED && again.err != HPE_PAUSED_UPGRADE) ||
      !again.headers_done) {
    fprintf(stderr, "portico's upstream head does not parse: %s\n%.*s\n",
            llhttp_errno_name(again.err), (int)len, out);
    abort();
  }
  px_http_head *h = again.head;
  if (strcmp(h->method, sent->method) != 0 || h->target_len != sent->target_len ||
      memcmp(h->target, sent->target, h->target_len) != 0 || again.chunked != chunked) {
    fprintf(stderr, "the upstream head says another request:\n%.*s\n", (int)len, out);
    abort();
  }
  const char *why = px_http_check_request(h);
  if (why) {
    fprintf(stderr, "portico's upstream head fails its own check (%s):\n%.*s\n", why, (int)len,
            out);
    abort();
  }
  fuzz_head_dispose(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  cfg = fuzz_sites(1);
  fuzz_head fh;
  fuzz_head_parse(&fh, HTTP_REQUEST, (const char *)data, size, MAX_HEADER_BYTES + 64, MAX_HEADERS,
                  1);
  px_http_head *h = fh.head;
  if (!fh.headers_done || h == NULL || fh.parser.http_major != 1) goto out;
  if (px_http_check_request(h) != NULL) goto out;
  if (h->target[0] != '/' && !(fh.parser.method == HTTP_OPTIONS && strcmp(h->target, "*") == 0))
    goto out;
  if (fh.parser.method == HTTP_CONNECT) goto out;
  const px_header *hh = px_http_find(h, "host");
  char host[256];
  int hlen = hh ? px_http_normalize_host(hh->value, hh->value_len, host, sizeof(host)) : -1;
  if (hlen < 0) goto out;
  if ((size_t)hlen != strlen(host)) abort();
  const px_site *site = px_http_route(cfg, host);
  if (site == NULL) abort(); /* the config has a "*" site */
  char loc[8192 + 300];
  int n = px_http_redirect_location(host, h->target, h->target_len, 8443, loc, sizeof(loc));
  if (n >= 0 && (strncmp(loc, "https://", 8) != 0 || (size_t)n != strlen(loc))) abort();
  /* As h1.c decides it: a GET on HTTP/1.1 without a body. */
  int websocket = px_http_is_websocket_upgrade(h) && fh.parser.method == HTTP_GET &&
                  h->version_minor >= 1 && !fh.chunked && fh.content_length <= 0;
  /* As exchange.c sizes and fills it. */
  size_t cap = h->arena_len + 2048 + h->nheaders * 4;
  char *out = malloc(cap);
  if (out == NULL) goto out;
  /* Trusted or not by the input's length: both ways of writing the
   * forwarded fields, and a request id replacing any received one. */
  px_forward_info fwd = {.client_ip = "192.0.2.1",
                         .proto = "https",
                         .host = host,
                         .trusted = (int)(size & 1),
                         .request_id_name = "X-Request-Id",
                         .request_id = "0123456789abcdef0123456789abcdef"};
  int64_t cl = fh.chunked ? -1 : fh.content_length;
  long len =
      px_http_serialize_request(h, &fwd, cl, fh.chunked, websocket ? PX_HTTP_UPGRADE : 1, out, cap);
  if (len > (long)cap) abort();
  if (len >= 0) check_forwarded(out, (size_t)len, h, fh.chunked);
  free(out);
out:
  fuzz_head_dispose(&fh);
  return 0;
}
