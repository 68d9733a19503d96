/*
 * A worker: one thread, one uv loop, its own SO_REUSEPORT listeners, its own
 * upstream pools. Nothing on the hot path is shared with other workers.
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <uv.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/upstream.h"
#include "tls/tls.h"

/** Size of the per-loop read slab: one socket read at a time lands here. */
#define PX_READ_SLAB 65536

typedef struct px_conn px_conn;
typedef struct px_worker px_worker;
typedef struct px_listener px_listener;
struct px_exchange;

/**
 * Starts the session of a connection: at accept with `alpn` NULL (HTTP/1.1,
 * the default until TLS says otherwise), and after a TLS handshake with the
 * protocol ALPN chose (or NULL). It may replace the session it finds. 0, or
 * -1 when out of memory. The worker gives its listeners px_session_start
 * (session.c), so the transport (conn.c) names no protocol.
 */
typedef int (*px_session_start_fn)(px_conn *c, const char *alpn);

/**
 * What the worker calls in the layers above it (conn.c, exchange.c). The
 * server fills these in (server.c), so the worker's loop names no
 * connection or exchange code and the includes run one way.
 */
typedef struct px_worker_hooks {
  /** Accepts one connection from `l` (px_conn_accept). */
  void (*accept)(px_listener *l);
  /** The check phase: send what connections marked dirty queued. */
  void (*flush_dirty)(px_worker *w);
  /** The check phase: what exchanges deferred (px_exchange_flush_deferred). */
  void (*flush_deferred)(px_worker *w);
  /** The once-a-second timeouts.min_rate sweep over the connections. */
  void (*check_rates)(px_worker *w, uint64_t now);
  /** Draining: idle connections close now, busy ones finish. */
  void (*drain)(px_worker *w);
  /** The drain timeout passed: every connection closes. */
  void (*close_all)(px_worker *w);
  /** `name` got its certificate: handshakes that wait on it go on. */
  void (*retry_handshakes)(px_worker *w, const char *name);
  /** Given to each listener (px_session_start). */
  px_session_start_fn start_session;
} px_worker_hooks;

/** What a worker gets from the server, read-only. */
typedef struct px_worker_env {
  const px_config *cfg;
  px_tls_server *tls;    /**< NULL when nothing listens for HTTPS */
  px_acme_manager *acme; /**< NULL when no site uses ACME */
  int https_port;        /**< port of the first HTTPS listener, for redirects */
  size_t conn_limit;     /**< this worker's share of limits.max_connections */
  const px_worker_hooks *hooks;
} px_worker_env;

struct px_listener {
  uv_tcp_t tcp;
  px_worker *w;
  px_session_start_fn start_session;
  int is_https;
  int proxy_protocol; /**< connections start with a PROXY protocol header */
  int paused;         /**< a connection waits in the kernel because we are at the limit */
};

struct px_worker {
  int id;
  px_worker_env env;
  const px_config *cfg; /**< env.cfg */
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t stop_async;
  uv_timer_t drain_timer;
  uv_timer_t rate_timer;     /**< once a second: timeouts.min_rate over every connection */
  uv_async_t resolved_async; /**< the certificate manager resolved names */
  uv_check_t flush_check;    /**< after each poll: send what TLS connections queued */
  px_conn **dirty;           /**< connections with ciphertext to send */
  size_t ndirty, dirty_cap;
  struct px_exchange **deferred; /**< exchanges with coalesced body bytes to send */
  size_t ndeferred, deferred_cap;
  uv_mutex_t resolved_lock;
  struct px_resolved_name *resolved; /**< names to retry handshakes for */
  px_listener *listeners;
  size_t nlisteners;
  int draining;
  int start_error;         /**< set when binding failed at start */
  uv_sem_t started;        /**< posted once listeners are bound (or failed) */
  size_t nconns;           /**< open client connections */
  px_conn *conns;          /**< intrusive doubly linked list of them */
  px_upstream_pool *pools; /**< one per upstream of every site */
  size_t npools;
  size_t *pool_base; /**< index of each site's first pool */
  size_t *rr;        /**< round-robin position per site */
  char read_slab[PX_READ_SLAB];
  char plain_slab[PX_READ_SLAB];
  size_t h2_buffered;                /**< response bytes held in this worker's HTTP/2 streams */
  struct px_metrics_worker *metrics; /**< its counters (proxy/metrics.h); NULL: metrics off */
};

/** Creates worker `id` with what `env` gives (copied); its thread is
 *  started by px_worker_start. */
px_worker *px_worker_new(const px_worker_env *env, int id);

/** Starts the thread and waits until its listeners are bound. 0 or -1. */
int px_worker_start(px_worker *w);

/** Asks the worker to stop accepting and drain (any thread). */
void px_worker_stop(px_worker *w);

/** Waits for the worker thread to finish (its memory stays valid until
 *  px_worker_join_free). */
void px_worker_join(px_worker *w);

/** Waits for the worker thread and frees it. */
void px_worker_join_free(px_worker *w);

/**
 * Tells the worker that `name` is resolved (any thread): its connections
 * whose handshake waits on that name retry it.
 */
void px_worker_name_resolved(px_worker *w, const char *name);

/** Called by a connection as it closes: may resume a paused listener. */
void px_worker_conn_closed(px_worker *w);

/** Lists an exchange whose coalesced request body goes out in this loop
 *  iteration's check phase; `*slot` gets 1 + its index (cleared when the
 *  exchange is freed). 0, or -1 when the list cannot grow (send now). */
int px_worker_defer(px_worker *w, struct px_exchange *ex, size_t *slot);

/** The pool of upstream `upstream` of site `site`. */
static inline px_upstream_pool *px_worker_pool(px_worker *w, size_t site, size_t upstream) {
  return &w->pools[w->pool_base[site] + upstream];
}

#endif
