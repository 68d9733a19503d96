/* Re-serialisation of heads, the forwarded headers, and portico's own
 * small responses. A request is never forwarded as the bytes received. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "proxy/http.h"

/* A bounded output cursor: writes past `cap` set `overflow` and stop. */
typedef struct out_buf {
  char *p;
  size_t len, cap;
  int overflow;
} out_buf;

static void put(out_buf *o, const char *s, size_t n) {
  if (o->overflow || o->len + n > o->cap) {
    o->overflow = 1;
    return;
  }
  memcpy(o->p + o->len, s, n);
  o->len += n;
}

static void puts_(out_buf *o, const char *s) { put(o, s, strlen(s)); }

/* put() for a string literal: no strlen per call on the per-request path. */
#define PUT_LIT(o, lit) put((o), (lit), sizeof(lit) - 1)

static void putf(out_buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out_buf *o, const char *fmt, ...) {
  if (o->overflow) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= o->cap - o->len) {
    o->overflow = 1;
    return;
  }
  o->len += (size_t)n;
}

/* Decimal without printf: heads are built per request (printf showed as
 * 3-4% of an HTTP/2 profile). */
size_t px_http_format_u64(char out[20], uint64_t v) {
  char digits[20];
  size_t n = 0;
  do {
    digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  memcpy(out, digits + sizeof(digits) - n, n);
  return n;
}

static void put_u64(out_buf *o, uint64_t v) {
  char digits[20];
  put(o, digits, px_http_format_u64(digits, v));
}

static void put_field(out_buf *o, const char *name, size_t nlen, const char *value, size_t vlen) {
  put(o, name, nlen);
  put(o, ": ", 2);
  put(o, value, vlen);
  put(o, "\r\n", 2);
}

/* Case-insensitive match with a string literal, by length first. */
#define EQ_LIT(a, alen, lit)                                                                       \
  ((alen) == sizeof(lit) - 1 && strncasecmp((a), (lit), sizeof(lit) - 1) == 0)

/* True when `name` is one of the comma-separated tokens in `list`. */
static int in_token_list(const char *list, size_t llen, const char *name, size_t nlen) {
  size_t i = 0;
  while (i < llen) {
    while (i < llen && (list[i] == ' ' || list[i] == '\t' || list[i] == ','))
      i++;
    size_t start = i;
    while (i < llen && list[i] != ',')
      i++;
    size_t end = i;
    while (end > start && (list[end - 1] == ' ' || list[end - 1] == '\t'))
      end--;
    if (end > start && end - start == nlen && strncasecmp(list + start, name, nlen) == 0) return 1;
  }
  return 0;
}

int px_http_is_hop_by_hop(const char *name, size_t len, const char *connection_value,
                          size_t connection_len) {
  /* RFC 9110 §7.6.1, by length first: this runs for every field. */
  switch (len) {
  case 2:
    if (EQ_LIT(name, len, "te")) return 1;
    break;
  case 7:
    if (EQ_LIT(name, len, "upgrade") || EQ_LIT(name, len, "trailer")) return 1;
    break;
  case 10:
    if (EQ_LIT(name, len, "connection") || EQ_LIT(name, len, "keep-alive")) return 1;
    break;
  case 16:
    if (EQ_LIT(name, len, "proxy-connection")) return 1;
    break;
  case 17:
    if (EQ_LIT(name, len, "transfer-encoding")) return 1;
    break;
  case 18:
    if (EQ_LIT(name, len, "proxy-authenticate")) return 1;
    break;
  case 19:
    if (EQ_LIT(name, len, "proxy-authorization")) return 1;
    break;
  default:
    break;
  }
  return connection_value && in_token_list(connection_value, connection_len, name, len);
}

/* A field name to leave out, with its length (compared first). */
typedef struct skip_name {
  const char *name;
  size_t len;
} skip_name;
#define SKIP(lit)                                                                                  \
  { (lit), sizeof(lit) - 1 }

/* Copies the end-to-end fields, leaving out hop-by-hop ones, framing, and
 * any name in `skip` (ended by a NULL name). */
static void put_end_to_end(out_buf *o, const px_http_head *h, const skip_name *skip) {
  const px_header *conn = px_http_find(h, "connection");
  for (size_t i = 0; i < h->nheaders; i++) {
    const px_header *f = &h->headers[i];
    if (px_http_is_hop_by_hop(f->name, f->name_len, conn ? conn->value : NULL,
                              conn ? conn->value_len : 0))
      continue;
    if (EQ_LIT(f->name, f->name_len, "content-length")) continue;
    int skipped = 0;
    for (const skip_name *s = skip; s->name && !skipped; s++)
      skipped = f->name_len == s->len && strncasecmp(f->name, s->name, s->len) == 0;
    if (!skipped) put_field(o, f->name, f->name_len, f->value, f->value_len);
  }
}

const char *px_http_date(void) {
  /* Formatted once a second per thread: strftime per response would show
   * in profiles, and the value only changes each second. */
  static __thread char buf[32];
  static __thread time_t at = -1;
  time_t now = time(NULL);
  if (now != at) {
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm); /* IMF-fixdate, RFC 9110 §5.6.7 */
    at = now;
  }
  return buf;
}

int px_http_trailer_allowed(const char *name, size_t len) {
  /* Fields that frame, route or authenticate a message cannot be trailers
   * (RFC 9110 §6.5.1); hop-by-hop ones never pass a proxy. */
  switch (len) {
  case 4:
    if (EQ_LIT(name, len, "host")) return 0;
    break;
  case 13:
    if (EQ_LIT(name, len, "authorization")) return 0;
    break;
  case 14:
    if (EQ_LIT(name, len, "content-length")) return 0;
    break;
  case 16:
    if (EQ_LIT(name, len, "content-encoding")) return 0;
    break;
  default:
    break;
  }
  return !px_http_is_hop_by_hop(name, len, NULL, 0) && !(len && name[0] == ':');
}

/* PX_HTTP_UPGRADE writes the WebSocket upgrade lines instead of framing
 * (they are hop-by-hop, so they are written anew, RFC 9110 §7.8). */
static void put_framing(out_buf *o, int64_t content_length, int chunked, px_http_conn_mode mode) {
  if (mode == PX_HTTP_UPGRADE) {
    PUT_LIT(o, "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    return;
  }
  if (chunked) {
    PUT_LIT(o, "Transfer-Encoding: chunked\r\n");
  } else if (content_length >= 0) {
    PUT_LIT(o, "Content-Length: ");
    put_u64(o, (uint64_t)content_length);
    PUT_LIT(o, "\r\n");
  }
  if (mode == PX_HTTP_CLOSE) PUT_LIT(o, "Connection: close\r\n");
  put(o, "\r\n", 2);
}

/* Writes the values of every `name` field joined with ", " (RFC 9110
 * §5.3); 1 when something was written. */
static int put_joined(out_buf *o, const px_http_head *h, const char *name, size_t nlen) {
  int any = 0;
  for (size_t i = 0; i < h->nheaders; i++) {
    const px_header *f = &h->headers[i];
    if (f->name_len != nlen || strncasecmp(f->name, name, nlen) != 0 || f->value_len == 0) continue;
    if (any) PUT_LIT(o, ", ");
    put(o, f->value, f->value_len);
    any = 1;
  }
  return any;
}

/* The received value of `name` when `trusted` and present, else `ours`. */
static void put_received_or(out_buf *o, const px_http_head *h, int trusted, const char *name,
                            const char *ours) {
  const px_header *f = trusted ? px_http_find(h, name) : NULL;
  if (f && f->value_len)
    put(o, f->value, f->value_len);
  else
    puts_(o, ours);
}

/* The forwarded fields (RFC 7239 and the X-Forwarded-* conventions). */
static void put_forwarded(out_buf *o, const px_http_head *h, const px_forward_info *fwd) {
  /* X-Forwarded-For and Forwarded append this hop to what a trusted proxy
   * sent (RFC 7239 §4); from anyone else a received list is a forgery
   * waiting to happen and is replaced. */
  PUT_LIT(o, "X-Forwarded-For: ");
  if (fwd->trusted && put_joined(o, h, "x-forwarded-for", 15)) PUT_LIT(o, ", ");
  puts_(o, fwd->client_ip);
  PUT_LIT(o, "\r\nX-Forwarded-Proto: ");
  put_received_or(o, h, fwd->trusted, "x-forwarded-proto", fwd->proto);
  PUT_LIT(o, "\r\nX-Forwarded-Host: ");
  put_received_or(o, h, fwd->trusted, "x-forwarded-host", fwd->host);
  PUT_LIT(o, "\r\nForwarded: ");
  if (fwd->trusted && put_joined(o, h, "forwarded", 9)) PUT_LIT(o, ", ");
  /* An IPv6 node must be quoted and bracketed (RFC 7239 §6). */
  int v6 = strchr(fwd->client_ip, ':') != NULL;
  puts_(o, v6 ? "for=\"[" : "for=");
  puts_(o, fwd->client_ip);
  if (v6) PUT_LIT(o, "]\"");
  PUT_LIT(o, ";proto=");
  puts_(o, fwd->proto);
  /* host= is the Host as received (RFC 7239 §5.3); with a port or an IPv6
   * literal it is no token and must be a quoted-string (§4). */
  PUT_LIT(o, ";host=");
  int quote = strpbrk(fwd->host, ":[]") != NULL;
  if (quote) put(o, "\"", 1);
  puts_(o, fwd->host);
  if (quote) put(o, "\"", 1);
  PUT_LIT(o, "\r\n");
}

long px_http_serialize_request(const px_http_head *h, const px_forward_info *fwd,
                               int64_t content_length, int chunked, px_http_conn_mode mode,
                               char *out, size_t cap) {
  /* The request id field is replaced too: it is the last entry, or the
   * list ends before it when there is none. */
  skip_name skip[] = {SKIP("host"),
                      SKIP("x-forwarded-for"),
                      SKIP("x-forwarded-proto"),
                      SKIP("x-forwarded-host"),
                      SKIP("forwarded"),
                      SKIP("expect"),
                      {NULL, 0},
                      {NULL, 0}};
  int with_id = fwd->request_id_name != NULL && fwd->request_id != NULL;
  if (with_id) skip[6] = (skip_name){fwd->request_id_name, strlen(fwd->request_id_name)};
  out_buf o = {out, 0, cap, 0};
  puts_(&o, h->method);
  put(&o, " ", 1);
  put(&o, h->target, h->target_len);
  /* Host is written here, first (RFC 9112 §3.2 asks for it first), from
   * what the request was routed by: a `Connection: host` cannot remove it,
   * and an HTTP/1.0 request without one still carries it upstream. */
  PUT_LIT(&o, " HTTP/1.1\r\nHost: ");
  puts_(&o, fwd->host);
  PUT_LIT(&o, "\r\n");
  put_end_to_end(&o, h, skip);
  if (with_id) put_field(&o, skip[6].name, skip[6].len, fwd->request_id, strlen(fwd->request_id));
  put_forwarded(&o, h, fwd);
  put_framing(&o, content_length, chunked, mode);
  return o.overflow ? -1 : (long)o.len;
}

int px_http_is_websocket_upgrade(const px_http_head *h) {
  const px_header *up = px_http_find(h, "upgrade");
  const px_header *conn = px_http_find(h, "connection");
  return up && conn && EQ_LIT(up->value, up->value_len, "websocket") &&
         in_token_list(conn->value, conn->value_len, "upgrade", 7);
}

long px_http_serialize_response(const px_http_head *h, const char *extra, int64_t content_length,
                                int chunked, px_http_conn_mode mode, char *out, size_t cap) {
  static const skip_name skip[] = {SKIP("strict-transport-security"), {NULL, 0}};
  out_buf o = {out, 0, cap, 0};
  PUT_LIT(&o, "HTTP/1.1 ");
  put_u64(&o, (uint64_t)(h->status > 0 ? h->status : 0));
  put(&o, " ", 1);
  puts_(&o, h->reason && h->reason[0] ? h->reason : px_http_reason(h->status));
  put(&o, "\r\n", 2);
  /* portico owns Strict-Transport-Security on sites that set it. */
  put_end_to_end(&o, h, extra ? skip : skip + 1);
  /* An origin with a clock sends Date (RFC 9110 §6.6.1); a backend that
   * did not gets the proxy's, as nginx and HAProxy do. */
  if (px_http_find(h, "date") == NULL) {
    PUT_LIT(&o, "Date: ");
    puts_(&o, px_http_date());
    PUT_LIT(&o, "\r\n");
  }
  if (extra) puts_(&o, extra);
  put_framing(&o, content_length, chunked, mode);
  return o.overflow ? -1 : (long)o.len;
}

long px_http_serialize_last_chunk(const px_http_head *trailers, char *out, size_t cap) {
  out_buf o = {out, 0, cap, 0};
  PUT_LIT(&o, "0\r\n");
  for (size_t i = 0; trailers && i < trailers->nheaders; i++) {
    const px_header *f = &trailers->headers[i];
    if (px_http_trailer_allowed(f->name, f->name_len))
      put_field(&o, f->name, f->name_len, f->value, f->value_len);
  }
  PUT_LIT(&o, "\r\n");
  return o.overflow ? -1 : (long)o.len;
}

/* The value's directives (RFC 6797 §6.1). */
static void put_hsts_value(out_buf *o, const px_hsts *hsts) {
  putf(o, "max-age=%" PRId64, hsts->max_age);
  if (hsts->include_subdomains) PUT_LIT(o, "; includeSubDomains");
  if (hsts->preload) PUT_LIT(o, "; preload");
}

size_t px_http_hsts_line(const px_hsts *hsts, char *out, size_t cap) {
  if (!hsts->enabled) return 0;
  out_buf o = {out, 0, cap, 0};
  PUT_LIT(&o, "Strict-Transport-Security: ");
  put_hsts_value(&o, hsts);
  PUT_LIT(&o, "\r\n");
  if (o.overflow) return 0;
  if (o.len < cap) out[o.len] = '\0';
  return o.len;
}

size_t px_http_hsts_value(const px_hsts *hsts, char *out, size_t cap) {
  if (!hsts->enabled) return 0;
  out_buf o = {out, 0, cap, 0};
  put_hsts_value(&o, hsts);
  if (o.overflow) return 0;
  if (o.len < cap) out[o.len] = '\0';
  return o.len;
}

int px_http_redirect_location(const char *host, const char *target, size_t target_len,
                              int https_port, char *out, size_t cap) {
  /* Origin-form only; "//x" would be read as a scheme-relative URL. */
  if (target_len == 0 || target[0] != '/' || (target_len > 1 && target[1] == '/')) return -1;
  for (size_t i = 0; i < target_len; i++) {
    unsigned char c = (unsigned char)target[i];
    if (c <= 0x20 || c == 0x7f || c == '\\') return -1;
  }
  out_buf o = {out, 0, cap, 0};
  putf(&o, "https://%s", host);
  if (https_port != 443) putf(&o, ":%d", https_port);
  put(&o, target, target_len);
  put(&o, "", 1);
  if (o.overflow) return -1;
  return (int)o.len - 1;
}

const char *px_http_reason(int status) {
  switch (status) {
  case 100:
    return "Continue";
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 204:
    return "No Content";
  case 301:
    return "Moved Permanently";
  case 302:
    return "Found";
  case 304:
    return "Not Modified";
  case 308:
    return "Permanent Redirect";
  case 400:
    return "Bad Request";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Content Too Large";
  case 421:
    return "Misdirected Request";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 502:
    return "Bad Gateway";
  case 503:
    return "Service Unavailable";
  case 504:
    return "Gateway Timeout";
  case 505:
    return "HTTP Version Not Supported";
  default:
    return "Unknown";
  }
}

long px_http_simple_response(int status, const char *extra, int close, char *out, size_t cap) {
  const char *reason = px_http_reason(status);
  out_buf o = {out, 0, cap, 0};
  putf(&o,
       "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
       "%zu\r\n",
       status, reason, px_http_date(), strlen(reason) + 1);
  if (extra) puts_(&o, extra);
  if (close) PUT_LIT(&o, "Connection: close\r\n");
  putf(&o, "\r\n%s\n", reason);
  return o.overflow ? -1 : (long)o.len;
}
