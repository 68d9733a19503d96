/*
 * Counters for monitoring (admin.metrics, docs/metrics.md): each worker
 * counts into its own px_metrics_worker, and a scrape sums the workers'
 * (px_metrics_render). Nothing on the request path is shared between
 * threads, locked, or a read-modify-write instruction.
 *
 * Why px_metric_add is a relaxed atomic load and store rather than a plain
 * `+=`: the scrape reads the counters from the metrics thread while the
 * worker writes them. Each counter has one writer (its worker), so the
 * load-add-store cannot lose an update; the relaxed atomics compile to the
 * same plain moves as `+=` on x86-64 and arm64 (no lock prefix, no
 * barrier) but make the cross-thread read defined (C11 §5.1.2.4) and whole
 * (no torn 64-bit value), and keep TSan quiet. Each worker's block starts
 * on its own cache line so workers never write a shared line.
 *
 * When admin.metrics is off, a worker's `metrics` is NULL and every call
 * below returns at its first test.
 */
#ifndef PX_METRICS_H
#define PX_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/metrics_text.h"

/** Status classes counted: [0] anything outside 100-599 (a request that
 *  got no status), then 1xx .. 5xx. */
#define PX_METRICS_CLASSES 6
/** Client protocols: HTTP/1.x, HTTP/2. */
#define PX_METRICS_PROTOS 2
/** Upper bounds (seconds) of the request duration histogram; +Inf follows. */
#define PX_METRICS_DURATION_BUCKETS 14

/** Connections counted as open. */
typedef enum px_metrics_conn {
  PX_METRICS_CONN_H1 = 0,   /**< HTTP/1.x (plain, or TLS with ALPN http/1.1 or none) */
  PX_METRICS_CONN_H2,       /**< HTTP/2 */
  PX_METRICS_CONN_WEBSOCKET /**< WebSocket tunnels (on HTTP/1.1 connections) */
} px_metrics_conn;
#define PX_METRICS_NCONN 3

/** Why a TLS handshake failed. */
typedef enum px_metrics_tls_failure {
  PX_METRICS_TLS_UNKNOWN_NAME = 0, /**< no certificate for the SNI (unrecognized_name) */
  PX_METRICS_TLS_PROTOCOL,         /**< bad bytes, no shared version or cipher, a fatal alert */
  PX_METRICS_TLS_CLOSED,           /**< the client closed or reset mid-handshake */
  PX_METRICS_TLS_TIMEOUT,          /**< timeouts.handshake */
  PX_METRICS_TLS_CERT_WAIT_TIMEOUT /**< timeouts.on_demand: the certificate did not come */
} px_metrics_tls_failure;
#define PX_METRICS_TLS_NFAILURES 5

/** What happened on the way to an upstream. */
typedef enum px_metrics_upstream_event {
  PX_METRICS_UP_CONNECT_FAILURE = 0, /**< refused, unreachable, or no local resources */
  PX_METRICS_UP_CONNECT_TIMEOUT,     /**< timeouts.upstream_connect */
  PX_METRICS_UP_READ_TIMEOUT,        /**< timeouts.upstream_read */
  PX_METRICS_UP_RETRY                /**< the request was tried again (on another upstream) */
} px_metrics_upstream_event;
#define PX_METRICS_UP_NEVENTS 4

typedef struct px_metrics_site {
  uint64_t requests[PX_METRICS_PROTOS][PX_METRICS_CLASSES];
  uint64_t duration[PX_METRICS_DURATION_BUCKETS + 1]; /**< not cumulative */
  uint64_t duration_us;                               /**< sum */
  uint64_t bytes_in, bytes_out;
} px_metrics_site;

typedef struct px_metrics_upstream {
  uint64_t requests[PX_METRICS_CLASSES];
  uint64_t events[PX_METRICS_UP_NEVENTS];
  uint64_t down_until_ms; /**< its worker's uv_now while marked down, else 0 */
} px_metrics_upstream;

/** One worker's counters. Written by that worker only. */
typedef struct px_metrics_worker {
  _Alignas(64) uint64_t conn_opened[PX_METRICS_NCONN];
  uint64_t conn_closed[PX_METRICS_NCONN];
  uint64_t tls_full, tls_resumed;
  uint64_t tls_failed[PX_METRICS_TLS_NFAILURES];
  uint64_t local[PX_METRICS_PROTOS][PX_METRICS_CLASSES]; /**< portico's own answers */
  px_metrics_site *sites;                                /**< one per site slot of the registry */
  px_metrics_upstream *ups; /**< one per upstream slot of the registry */
} px_metrics_worker;

typedef struct px_metrics px_metrics;

/**
 * Per-site and per-upstream series live in slots keyed by their labels
 * (the site's label; the site's label and the upstream's address as
 * written), so they survive reloads that add, remove or reorder sites
 * (docs/metrics.md). The number of slots is fixed at start: this many
 * times the sites (upstreams) of the starting configuration, and at least
 * the minimum below. A series past the cap is not counted.
 */
#define PX_METRICS_SLOT_GROWTH 4
#define PX_METRICS_MIN_SITE_SLOTS 256
#define PX_METRICS_MIN_UPSTREAM_SLOTS 4096

/**
 * A generation's translation from its site and upstream indexes to the
 * registry's slots (px_metrics_map_new). Read-only once built; owned by
 * the generation (px_gen.metrics_map) and freed with it.
 */
typedef struct px_metrics_map px_metrics_map;

/** Counters for `nworkers` workers, with slots sized from `cfg`, the
 *  configuration at start (read here only). NULL when out of memory. */
px_metrics *px_metrics_new(const px_config *cfg, int nworkers);

/**
 * The slots of `cfg`'s sites and upstreams, given a new slot for each
 * label the registry has not seen (a warning is logged the first time the
 * cap is reached). Callers run one at a time (start, then reloads under
 * the reload lock); scrapes may run meanwhile. 0 with `*out` (NULL when
 * `m` is NULL: metrics off), or -1 when out of memory.
 */
int px_metrics_map_new(px_metrics *m, const px_config *cfg, px_metrics_map **out);

/** Frees a map (NULL is fine). */
void px_metrics_map_free(px_metrics_map *map);

/**
 * `map`'s generation is now the current one: the scrape shows the health
 * gauge of its upstreams only (counters of every slot stay). Same callers
 * as px_metrics_map_new; `m` NULL does nothing.
 */
void px_metrics_map_activate(px_metrics *m, const px_metrics_map *map);

/** Worker `id`'s counters (0 <= id < nworkers). */
px_metrics_worker *px_metrics_worker_of(px_metrics *m, int id);

/** Frees the registry (after the workers and the scrapes ended). */
void px_metrics_free(px_metrics *m);

/**
 * Writes every metric into `out` (any thread): the workers' counters
 * summed, and the certificate manager's snapshot when `acme` is not NULL
 * (waiting for it at most `acme_wait_ms`).
 */
void px_metrics_render(px_metrics *m, px_acme_manager *acme, uint64_t acme_wait_ms, px_mtext *out);

/** Adds `n` to a counter only this thread writes (see the top comment). */
static inline void px_metric_add(uint64_t *c, uint64_t n) {
  __atomic_store_n(c, __atomic_load_n(c, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
}

/** Reads a counter another thread writes. */
static inline uint64_t px_metric_get(const uint64_t *c) {
  return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/** A proxied request ended (exchange.c): its site and upstream (indexes
 *  in the configuration of the generation whose `map` is given), protocol
 *  (h2 non-zero for HTTP/2), status, body bytes each way, and start time
 *  (uv_hrtime). */
void px_metrics_request(px_metrics_worker *w, const px_metrics_map *map, size_t site, size_t up,
                        int h2, int status, uint64_t bytes_in, uint64_t bytes_out,
                        uint64_t start_ns);

/** Portico answered a request itself (400, 404, 421, a redirect...). */
static inline void px_metrics_local(px_metrics_worker *w, int h2, int status) {
  if (w == NULL) return;
  px_metric_add(&w->local[h2 ? 1 : 0][status >= 100 && status <= 599 ? status / 100 : 0], 1);
}

/** A connection of `kind` opened / closed. */
static inline void px_metrics_conn_open(px_metrics_worker *w, px_metrics_conn kind) {
  if (w) px_metric_add(&w->conn_opened[kind], 1);
}
static inline void px_metrics_conn_close(px_metrics_worker *w, px_metrics_conn kind) {
  if (w) px_metric_add(&w->conn_closed[kind], 1);
}

/** A TLS handshake completed, resumed (a ticket) or full. */
static inline void px_metrics_tls_done(px_metrics_worker *w, int resumed) {
  if (w) px_metric_add(resumed ? &w->tls_resumed : &w->tls_full, 1);
}

/** A TLS handshake failed. */
static inline void px_metrics_tls_failed(px_metrics_worker *w, px_metrics_tls_failure why) {
  if (w) px_metric_add(&w->tls_failed[why], 1);
}

/** Something happened on the way to upstream `up` of `site` (indexes in
 *  `map`'s generation). */
void px_metrics_upstream_count(px_metrics_worker *w, const px_metrics_map *map, size_t site,
                               size_t up, px_metrics_upstream_event what);

/** Upstream `up` of `site` (indexes in `map`'s generation) is marked down
 *  until `until_ms` (the worker loop's uv_now), or back up (0). */
void px_metrics_upstream_down(px_metrics_worker *w, const px_metrics_map *map, size_t site,
                              size_t up, uint64_t until_ms);

#endif
