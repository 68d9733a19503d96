/*
 * A worker: one thread, one uv loop, its own SO_REUSEPORT listeners, its own
 * upstream pools. Nothing on the hot path is shared with other workers.
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <uv.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/generation.h"
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
  px_gen *gen;           /**< the generation it starts with (the worker takes a reference) */
  px_acme_manager *acme; /**< NULL when no site uses ACME */
  int nworkers;          /**< limits.max_connections is split across this many */
  const px_worker_hooks *hooks;
} px_worker_env;

/**
 * A worker's view of one configuration generation (proxy/generation.h): its
 * config, and the upstream pools and round-robin positions of its sites.
 * Worker thread only. Held by the worker while it is current and by every
 * connection accepted under it (px_conn.wg); freed, its idle upstream
 * connections closed and its generation released, when the last holder
 * lets go. A connection thus finishes on the configuration it was accepted
 * under (docs/reload.md).
 */
typedef struct px_wgen {
  px_gen *gen;
  struct px_worker *w;  /**< the worker this view belongs to */
  const px_config *cfg; /**< gen->cfg */
  size_t holders;
  size_t conn_limit;       /**< this worker's share of limits.max_connections */
  px_upstream_pool *pools; /**< one per upstream of every site */
  size_t npools;
  size_t *pool_base; /**< index of each site's first pool */
  size_t *rr;        /**< round-robin position per site */
} px_wgen;

struct px_listener {
  uv_tcp_t tcp;
  px_worker *w;
  px_session_start_fn start_session;
  int is_https;
  int proxy_protocol;  /**< connections start with a PROXY protocol header */
  int paused;          /**< a connection waits in the kernel because we are at the limit */
  px_listen_addr addr; /**< what it is bound to (addr.text is not kept) */
};

/** One listener a reload asks a worker to have: kept when `fd` is -1 (it
 *  has it already), else opened from `fd`, a bound listening socket. */
typedef struct px_listen_want {
  px_listen_addr addr; /**< addr.text is not used */
  int is_https;
  int fd;
} px_listen_want;

struct px_update_msg;

struct px_worker {
  int id;
  px_worker_env env;
  px_wgen *cur; /**< the current generation: new connections get it */
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
  uv_async_t update_async;           /**< a reload handed over a generation */
  struct px_update_msg *updates;     /**< under update_lock, oldest first */
  uv_mutex_t update_lock;
  px_listener **listeners;
  size_t nlisteners;
  int draining;
  int start_error;  /**< set when binding failed at start */
  uv_sem_t started; /**< posted once listeners are bound (or failed) */
  size_t nconns;    /**< open client connections */
  px_conn *conns;   /**< intrusive doubly linked list of them */
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

/** A new connection's generation: the current one, held once more. */
px_wgen *px_worker_hold(px_worker *w);

/** Called by a connection as it closes, with the generation it held:
 *  releases it and may resume a paused listener. */
void px_worker_conn_closed(px_worker *w, px_wgen *wg);

/**
 * A worker's view of `gen` (any thread: allocates, calls nothing of libuv),
 * with its own reference to `gen`; NULL when out of memory. Handed to
 * px_worker_update, or freed with px_wgen_free.
 */
px_wgen *px_wgen_new(px_worker *w, px_gen *gen);

/** Frees a view that was never handed over (its pools are empty). */
void px_wgen_free(px_wgen *wg);

/**
 * Hands the worker a new generation and the listeners it should have
 * (any thread; `want` is copied, its descriptors are the worker's from now
 * on). On its own loop the worker makes `wg` current, closes listeners not
 * in `want` (connections they accepted go on), and opens those with a
 * descriptor. 0, or -1 when out of memory (nothing was taken).
 */
int px_worker_update(px_worker *w, px_wgen *wg, const px_listen_want *want, size_t nwant);

/** Opens a listening socket for `a` with SO_REUSEPORT (one per worker).
 *  The descriptor, or a negative errno. */
int px_listen_socket_open(const px_listen_addr *a);

/** Lists an exchange whose coalesced request body goes out in this loop
 *  iteration's check phase; `*slot` gets 1 + its index (cleared when the
 *  exchange is freed). 0, or -1 when the list cannot grow (send now). */
int px_worker_defer(px_worker *w, struct px_exchange *ex, size_t *slot);

/** The pool of upstream `upstream` of site `site` in generation `wg`. */
static inline px_upstream_pool *px_wgen_pool(px_wgen *wg, size_t site, size_t upstream) {
  return &wg->pools[wg->pool_base[site] + upstream];
}

#endif
