/*
 * Connections to backends over TCP or Unix sockets, and the per-worker
 * keep-alive pool of idle ones (one pool per upstream address, capped).
 *
 * Error convention: libuv's negative errno values.
 */
#ifndef PX_UPSTREAM_H
#define PX_UPSTREAM_H

#include <stdint.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/util/lazy_timer.h"

typedef struct px_upstream_conn px_upstream_conn;
typedef struct px_upstream_pool px_upstream_pool;

/** Called once a connect finished: status 0 or a negative errno. */
typedef void (*px_upstream_connect_cb)(px_upstream_conn *uc, int status);
/** Called for each read: nread > 0 bytes in buf, or a negative errno/UV_EOF. */
typedef void (*px_upstream_read_cb)(px_upstream_conn *uc, ssize_t nread, const char *buf);
/** Called when queued writes have drained below the pool's low-water mark. */
typedef void (*px_upstream_drain_cb)(px_upstream_conn *uc);

struct px_upstream_conn {
  union {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_stream_t stream;
    uv_handle_t handle;
  } h;
  uv_connect_t connect_req;
  px_lazy_timer timer; /**< connect / read timeouts, owned by the user */
  px_upstream_pool *pool;
  px_upstream_conn *next, *prev; /**< idle list */
  int pending_closes;
  int closing;
  int reused; /**< taken from the pool rather than freshly connected */
  int reading;
  int local_error;      /**< the negative errno of a connect that failed on this
                             host (descriptors, memory, ports), else 0 */
  size_t write_pending; /**< bytes handed to uv_write and not yet written */
  void *data;           /**< the user (an exchange) */
  px_upstream_connect_cb on_connect;
  px_upstream_read_cb on_read;
  px_upstream_drain_cb on_drain;
};

struct px_upstream_pool {
  uv_loop_t *loop;
  const px_upstream_addr *addr;
  char *read_slab; /**< the worker's read slab */
  size_t slab_size;
  px_upstream_conn *idle; /**< most recently used first */
  size_t nidle;
  size_t cap;               /**< limits.upstream_pool */
  uint64_t idle_timeout_ms; /**< timeouts.upstream_idle */
  size_t low_water;         /**< on_drain fires when write_pending falls to this */
  uint64_t down_until;      /**< passive health (balancer.c): skipped until this uv_now() */
  unsigned failures;        /**< consecutive connect failures or timeouts (balancer.c) */
};

/** Prepares a pool (no allocation). */
void px_upstream_pool_init(px_upstream_pool *p, uv_loop_t *loop, const px_upstream_addr *addr,
                           char *read_slab, size_t slab_size, size_t cap, uint64_t idle_timeout_ms,
                           size_t low_water);

/** Closes every idle connection (shutdown). */
void px_upstream_pool_dispose(px_upstream_pool *p);

/**
 * Returns an idle pooled connection (reused = 1), ready at once, or NULL when
 * the pool is empty.
 */
px_upstream_conn *px_upstream_take_idle(px_upstream_pool *p);

/**
 * Starts a new connection. `cb` is called later from the loop (never from
 * inside this call) with 0 or a negative errno, also when the socket could
 * not even be opened (then uc->local_error is set). Returns NULL only when
 * the connection itself cannot be allocated.
 */
px_upstream_conn *px_upstream_connect(px_upstream_pool *p, px_upstream_connect_cb cb, void *data);

/** Starts delivering reads to uc->on_read. */
int px_upstream_read_start(px_upstream_conn *uc);

/** Stops reading (backpressure). */
void px_upstream_read_stop(px_upstream_conn *uc);

/** Queues `len` bytes (copied). 0 or a negative errno. */
int px_upstream_write(px_upstream_conn *uc, const void *data, size_t len);

/**
 * Hands a connection back to the pool after a complete exchange. If the pool
 * is full or the connection cannot be reused, it is closed instead.
 */
void px_upstream_release(px_upstream_conn *uc);

/** Closes and frees the connection (asynchronously). */
void px_upstream_close(px_upstream_conn *uc);

#endif
