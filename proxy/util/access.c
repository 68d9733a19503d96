#include "proxy/util/access.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "tls/log.h"

/* Client-chosen strings are cut before escaping: enough to recognise,
 * bounded for the log (docs/limits.md). */
#define PATH_MAX_LOGGED 1024
#define UA_MAX_LOGGED 256
#define REFERER_MAX_LOGGED 512

void px_access_set_head(px_access_entry *e, const px_http_head *h, int http2) {
  if (h == NULL) return;
  e->http_version = http2 ? "HTTP/2" : h->version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  const px_header *ua = px_http_find(h, "user-agent");
  const px_header *ref = px_http_find(h, "referer");
  e->user_agent = ua ? ua->value : NULL;
  e->referer = ref ? ref->value : NULL;
}

/* A bounded line being built; `full` once something did not fit. */
typedef struct line {
  char buf[PX_ACCESS_LINE_MAX];
  size_t len;
} line;

static void add(line *l, const char *s, size_t n) {
  if (n > sizeof(l->buf) - l->len) n = sizeof(l->buf) - l->len;
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void addf(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(line *l, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  l->len += (size_t)n < sizeof(l->buf) - l->len ? (size_t)n : sizeof(l->buf) - l->len - 1;
}

static size_t cut(const char *s, size_t max) { return s ? strnlen(s, max) : 0; }

/* ,"key":"escaped" or ,"key":null */
static void json_str(line *l, const char *key, const char *v, size_t max) {
  addf(l, ",\"%s\":", key);
  if (v == NULL) {
    add(l, "null", 4);
    return;
  }
  char esc[PATH_MAX_LOGGED * 6 + 1];
  size_t n = px_log_json_escape(esc, sizeof(esc), v, cut(v, max));
  add(l, "\"", 1);
  add(l, esc, n);
  add(l, "\"", 1);
}

/* key="escaped" (text), "-" for none. */
static void text_str(line *l, const char *key, const char *v, size_t max) {
  char esc[PATH_MAX_LOGGED * 4 + 1];
  size_t n = px_log_escape(esc, sizeof(esc), v ? v : "-", v ? cut(v, max) : 1);
  addf(l, " %s=\"", key);
  add(l, esc, n);
  add(l, "\"", 1);
}

static void json_line(line *l, const px_access_entry *e, const char *ts, double total_ms,
                      double up_ms) {
  addf(l, "{\"time\":\"%s\"", ts);
  json_str(l, "client", e->peer_ip, 64);
  addf(l, ",\"scheme\":\"%s\"", e->is_https ? "https" : "http");
  json_str(l, "host", e->host, 256);
  json_str(l, "method", e->method, 32);
  json_str(l, "target", e->path, PATH_MAX_LOGGED);
  json_str(l, "version", e->http_version, 16);
  addf(l, ",\"status\":%d,\"bytes_in\":%llu,\"bytes_out\":%llu", e->status,
       (unsigned long long)e->bytes_in, (unsigned long long)e->bytes);
  json_str(l, "user_agent", e->user_agent, UA_MAX_LOGGED);
  json_str(l, "referer", e->referer, REFERER_MAX_LOGGED);
  json_str(l, "tls_version", e->tls_version, 16);
  json_str(l, "alpn", e->alpn, 32);
  json_str(l, "sni", e->sni, 256);
  json_str(l, "request_id", e->request_id, 64);
  json_str(l, "site", e->site, 256);
  json_str(l, "upstream", e->upstream, 256);
  if (up_ms >= 0)
    addf(l, ",\"upstream_ms\":%.3f", up_ms);
  else
    add(l, ",\"upstream_ms\":null", 18);
  addf(l, ",\"total_ms\":%.3f}", total_ms);
}

static void text_line(line *l, const px_access_entry *e, const char *ts, double total_ms,
                      double up_ms) {
  /* The first fields keep their order and names from before log.format
   * existed; the ones after upstream were added with it. */
  addf(l, "%s client=%s proto=%s", ts, e->peer_ip, e->is_https ? "https" : "http");
  text_str(l, "host", e->host ? e->host : "", 256);
  char method[40];
  px_log_escape(method, sizeof(method), e->method ? e->method : "-",
                cut(e->method ? e->method : "-", 32));
  addf(l, " method=%s", method);
  text_str(l, "path", e->path, PATH_MAX_LOGGED);
  addf(l, " status=%d bytes=%llu dur_ms=%.3f", e->status, (unsigned long long)e->bytes, total_ms);
  text_str(l, "upstream", e->upstream, 256);
  addf(l, " version=%s", e->http_version ? e->http_version : "-");
  text_str(l, "ua", e->user_agent, UA_MAX_LOGGED);
  addf(l, " id=%s bytes_in=%llu", e->request_id ? e->request_id : "-",
       (unsigned long long)e->bytes_in);
  if (up_ms >= 0) addf(l, " upstream_ms=%.3f", up_ms);
}

void px_access_log(const px_access_entry *e) {
  if (!px_access_log_enabled()) return;
  char ts[40];
  px_log_time(ts, sizeof(ts));
  uint64_t now = e->start_ns ? uv_hrtime() : 0;
  double total_ms = e->start_ns ? (double)(now - e->start_ns) / 1e6 : 0.0;
  double up_ms = e->start_ns && e->upstream_ns ? (double)(e->upstream_ns - e->start_ns) / 1e6 : -1;
  static __thread line l;
  l.len = 0;
  if (px_log_json())
    json_line(&l, e, ts, total_ms, up_ms);
  else
    text_line(&l, e, ts, total_ms, up_ms);
  px_access_log_write(l.buf, l.len);
}
