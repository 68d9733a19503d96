/*
 * A worker: one thread, one uv loop, its own SO_REUSEPORT listeners, its own
 * upstream pools. Nothing on the hot path is shared with other workers.
 */
#ifndef PX_WORKER_H
#define PX_WORKER_H

#include <uv.h>

#include "proxy/server.h"
#include "proxy/upstream.h"

/** Size of the per-loop read slab: one socket read at a time lands here. */
#define PX_READ_SLAB 65536

typedef struct px_conn px_conn;

/**
 * Starts the session of a connection: at accept with `alpn` NULL (HTTP/1.1,
 * the default until TLS says otherwise), and after a TLS handshake with the
 * protocol ALPN chose (or NULL). It may replace the session it finds. 0, or
 * -1 when out of memory. The worker gives its listeners px_session_start
 * (session.c), so the transport (conn.c) names no protocol.
 */
typedef int (*px_session_start_fn)(px_conn *c, const char *alpn);

typedef struct px_listener {
  uv_tcp_t tcp;
  px_worker *w;
  px_session_start_fn start_session;
  int is_https;
  int paused; /**< a connection waits in the kernel because we are at the limit */
} px_listener;

struct px_worker {
  int id;
  px_server *srv;
  const px_config *cfg;
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t stop_async;
  uv_timer_t drain_timer;
  uv_timer_t rate_timer;  /**< once a second: timeouts.min_rate over every connection */
  uv_async_t resolved_async; /**< the certificate manager resolved names */
  uv_check_t flush_check; /**< after each poll: send what TLS connections queued */
  px_conn **dirty;        /**< connections with ciphertext to send */
  size_t ndirty, dirty_cap;
  struct px_exchange **deferred; /**< exchanges with coalesced body bytes to send */
  size_t ndeferred, deferred_cap;
  uv_mutex_t resolved_lock;
  struct px_resolved_name *resolved; /**< names to retry handshakes for */
  px_listener *listeners;
  size_t nlisteners;
  int draining;
  int start_error;        /**< set when binding failed at start */
  uv_sem_t started;       /**< posted once listeners are bound (or failed) */
  size_t nconns;          /**< open client connections */
  px_conn *conns;         /**< intrusive doubly linked list of them */
  px_upstream_pool *pools; /**< one per upstream of every site */
  size_t npools;
  size_t *pool_base;      /**< index of each site's first pool */
  size_t *rr;             /**< round-robin position per site */
  char read_slab[PX_READ_SLAB];
  char plain_slab[PX_READ_SLAB];
  size_t h2_buffered;  /**< response bytes held in this worker's HTTP/2 streams */
};

/** Creates worker `id`; its thread is started by px_worker_start. */
px_worker *px_worker_new(px_server *srv, int id);

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

/** Marks a connection as having output to send at the end of this loop
 *  iteration (one write for everything an event produced). */
void px_worker_mark_dirty(px_worker *w, px_conn *c);

/** Lists an exchange whose coalesced request body goes out in this loop
 *  iteration's check phase; `*slot` gets 1 + its index (cleared when the
 *  exchange is freed). 0, or -1 when the list cannot grow (send now). */
int px_worker_defer(px_worker *w, struct px_exchange *ex, size_t *slot);

/** The pool of upstream `u` of site `s`. */
px_upstream_pool *px_worker_pool(px_worker *w, size_t site, size_t upstream);

#endif
