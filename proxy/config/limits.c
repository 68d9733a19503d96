/*
 * The `timeouts:` and `limits:` sections and their defaults (docs/config.md).
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/config/values.h"

typedef struct limit_key {
  const char *name;
  int kind; /* 0 duration (ms), 1 size, 2 count */
  size_t offset;
  uint64_t min, max;
} limit_key;

#define LIM(f) offsetof(px_limits, f)

static const limit_key timeout_keys[] = {
    {"handshake", 0, LIM(handshake_timeout_ms), 1, 3600000},
    {"request_header", 0, LIM(header_timeout_ms), 1, 3600000},
    {"keepalive", 0, LIM(keepalive_timeout_ms), 1, 86400000},
    {"request_body", 0, LIM(body_timeout_ms), 1, 86400000},
    {"send", 0, LIM(send_timeout_ms), 1, 86400000},
    {"upstream_connect", 0, LIM(upstream_connect_timeout_ms), 1, 3600000},
    {"upstream_read", 0, LIM(upstream_read_timeout_ms), 1, 86400000},
    {"upstream_idle", 0, LIM(upstream_idle_timeout_ms), 1, 86400000},
    {"drain", 0, LIM(drain_timeout_ms), 1, 86400000},
    {"on_demand", 0, LIM(on_demand_timeout_ms), 1, 3600000},
    {"websocket_idle", 0, LIM(websocket_idle_timeout_ms), 1, 86400000},
    {"min_rate", 1, LIM(min_rate), 0, 1u << 30},
    {"min_rate_window", 0, LIM(min_rate_window_ms), 1000, 3600000},
    {"proxy_header", 0, LIM(proxy_header_timeout_ms), 1, 3600000},
    {NULL, 0, 0, 0, 0},
};

static const limit_key limit_keys[] = {
    {"max_connections", 2, LIM(max_connections), 1, 10000000},
    {"max_header_bytes", 1, LIM(max_header_bytes), 1024, 1048576},
    {"max_headers", 2, LIM(max_headers), 1, 256},
    {"max_body", 1, LIM(max_body_bytes), 0, UINT64_MAX},
    {"upstream_pool", 2, LIM(upstream_pool_size), 0, 100000},
    {"buffer", 1, LIM(buffer_size), 4096, 16777216},
    {"upstreams_per_connection", 2, LIM(upstreams_per_connection), 1, 1000},
    {"connection_buffer", 1, LIM(connection_buffer), 65536, 1u << 30},
    {"total_buffer", 1, LIM(total_buffer), 1u << 20, (uint64_t)1 << 40},
    {NULL, 0, 0, 0, 0},
};

static void load_limit_group(loader *L, yaml_node_t *n, const char *group, const limit_key *keys) {
  const char *names[24];
  size_t k = 0;
  for (const limit_key *lk = keys; lk->name; lk++)
    names[k++] = lk->name;
  names[k] = NULL;
  if (px_cfg_check_keys(L, n, group, names) != 0) return;
  for (const limit_key *lk = keys; lk->name; lk++) {
    yaml_node_t *v = px_cfg_get(L, n, lk->name);
    if (v == NULL) continue;
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", group, lk->name);
    const char *s = px_cfg_scalar(v);
    uint64_t val = 0;
    const char *why = s == NULL       ? "expected a value"
                      : lk->kind == 0 ? px_cfg_parse_duration_ms(s, &val)
                      : lk->kind == 1 ? px_cfg_parse_size(s, &val)
                                      : px_cfg_parse_count(s, &val);
    if (why == NULL && (val < lk->min || val > lk->max)) why = "is out of range";
    if (why) {
      px_cfg_error_at(L, v, key, "\"%s\" %s", s ? s : "", why);
      continue;
    }
    /* The field is a uint64_t or a size_t at that offset: copied by bytes,
     * as the char pointer does not carry the field's alignment. */
    char *field = (char *)&L->cfg->limits + lk->offset;
    if (lk->kind == 0 || lk->offset == LIM(max_body_bytes)) {
      memcpy(field, &val, sizeof(val));
    } else {
      size_t narrow = (size_t)val;
      memcpy(field, &narrow, sizeof(narrow));
    }
  }
}

void px_limits_defaults(px_limits *l) {
  l->handshake_timeout_ms = 10000;
  l->header_timeout_ms = 10000;
  l->keepalive_timeout_ms = 75000;
  l->body_timeout_ms = 60000;
  l->send_timeout_ms = 60000;
  l->min_rate = 256;
  l->upstreams_per_connection = 32;
  l->connection_buffer = 1u << 20;
  l->total_buffer = 256u << 20;
  l->min_rate_window_ms = 20000;
  l->proxy_header_timeout_ms = 5000;
  l->upstream_connect_timeout_ms = 5000;
  l->upstream_read_timeout_ms = 60000;
  l->upstream_idle_timeout_ms = 30000;
  l->drain_timeout_ms = 30000;
  l->on_demand_timeout_ms = 60000;
  l->websocket_idle_timeout_ms = 300000;
  l->max_connections = 10000;
  l->max_header_bytes = 32768;
  l->max_headers = 100;
  l->max_body_bytes = 1ULL << 30;
  l->upstream_pool_size = 1024;
  l->buffer_size = 65536;
}

void px_cfg_load_timeouts(loader *L, yaml_node_t *n) {
  load_limit_group(L, n, "timeouts", timeout_keys);
}

void px_cfg_load_limits(loader *L, yaml_node_t *n) { load_limit_group(L, n, "limits", limit_keys); }
