/*
 * The access log line: one per request, in the text (logfmt-style) or JSON
 * format (log.format), with every client-chosen string escaped so it cannot
 * forge lines. Never includes other headers (Authorization, Cookie) or
 * bodies. Every field is described in docs/logging.md.
 */
#ifndef PX_ACCESS_H
#define PX_ACCESS_H

#include <stdint.h>

#include "proxy/http.h"

typedef struct px_access_entry {
  const char *peer_ip; /**< the client (from the PROXY header when there was one) */
  int is_https;
  const char *host;   /**< routed host, or NULL */
  const char *method; /**< NULL when the head never completed */
  const char *path;
  const char *http_version; /**< "HTTP/1.0", "HTTP/1.1", "HTTP/2", or NULL */
  int status;
  uint64_t bytes;       /**< response bytes sent, head included */
  uint64_t bytes_in;    /**< request body bytes received */
  uint64_t start_ns;    /**< uv_hrtime at the start, or 0 */
  uint64_t upstream_ns; /**< uv_hrtime when the upstream's response head arrived, or 0 */
  const char *upstream; /**< the upstream address text, or NULL */
  const char *user_agent, *referer;     /**< as received (NUL-terminated), or NULL */
  const char *request_id;               /**< or NULL */
  const char *tls_version, *alpn, *sni; /**< NULL on plain HTTP */
  const char *site;                     /**< the site's first host name, or NULL */
} px_access_entry;

/** Sets http_version, user_agent and referer from a complete request head. */
void px_access_set_head(px_access_entry *e, const px_http_head *h, int http2);

/** Writes the entry when access logging is on. */
void px_access_log(const px_access_entry *e);

#endif
