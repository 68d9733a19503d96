/*
 * The access log line: one per request, logfmt-style, with client-chosen
 * strings escaped so they cannot forge lines. Never includes headers
 * (Authorization, Cookie) or bodies.
 */
#ifndef PX_ACCESS_H
#define PX_ACCESS_H

#include <stdint.h>

typedef struct px_access_entry {
  const char *peer_ip;
  int is_https;
  const char *host;   /**< routed host, or NULL */
  const char *method; /**< NULL when the head never completed */
  const char *path;
  int status;
  uint64_t bytes;       /**< response bytes sent, head included */
  uint64_t start_ns;    /**< uv_hrtime at the start, or 0 */
  const char *upstream; /**< the upstream address text, or NULL */
} px_access_entry;

/** Writes the entry when access logging is on. */
void px_access_log(const px_access_entry *e);

#endif
