#include "proxy/util/access.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <uv.h>

#include "tls/log.h"

void px_access_log(const px_access_entry *e) {
  if (!px_access_log_enabled()) return;
  char host[300], method[40], path[1100], ts[40];
  const char *h = e->host ? e->host : "";
  px_log_escape(host, sizeof(host), h, strlen(h));
  px_log_escape(method, sizeof(method), e->method ? e->method : "-",
                strlen(e->method ? e->method : "-"));
  /* Paths are cut at 1 KiB: enough to recognise, bounded for the log. */
  const char *p = e->path ? e->path : "-";
  px_log_escape(path, sizeof(path), p, strlen(p));

  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

  double dur_ms = e->start_ns ? (double)(uv_hrtime() - e->start_ns) / 1e6 : 0.0;
  char line[2048];
  int len = snprintf(line, sizeof(line),
                     "%s client=%s proto=%s host=\"%s\" method=%s path=\"%s\" status=%d "
                     "bytes=%llu dur_ms=%.3f upstream=\"%s\"",
                     ts, e->peer_ip, e->is_https ? "https" : "http", host, method, path, e->status,
                     (unsigned long long)e->bytes, dur_ms, e->upstream ? e->upstream : "-");
  if (len < 0) return;
  if ((size_t)len >= sizeof(line)) len = sizeof(line) - 1;
  px_access_log_write(line, (size_t)len);
}
