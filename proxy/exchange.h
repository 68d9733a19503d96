/*
 * One proxied request/response: picks an upstream, sends the re-serialised
 * request head and streams the body, parses the response with llhttp and
 * streams it back, with backpressure both ways (a slow side pauses the
 * other once `limits.buffer` bytes are in flight).
 */
#ifndef PX_EXCHANGE_H
#define PX_EXCHANGE_H

#include <stddef.h>

#include "proxy/config.h"
#include "proxy/front.h"

typedef struct px_exchange px_exchange;

/**
 * Starts proxying `req` from the front `f` to `site`. Returns 0 with the
 * exchange in *out, a status for the front to answer (413 body too large,
 * 431 head too large, 502 no upstream), or -1 when out of memory. After 0
 * the exchange reports its end through f->ops->done or f->ops->failed
 * (which must clear *out), always later from the loop, never from inside
 * this call: nothing is written upstream before it returns.
 */
int px_exchange_start(px_front *f, const px_site *site, const char *host,
                      const px_front_request *req, px_exchange **out);

/** Streams request body bytes toward the upstream. 0 or -1 (closing). */
int px_exchange_body(px_exchange *ex, const char *data, size_t len);

/** The request message is complete. */
void px_exchange_body_end(px_exchange *ex);

/** True once the whole request has been read from the client. */
int px_exchange_request_done(const px_exchange *ex);

/** The client's output drained: resume reading the upstream. */
void px_exchange_on_client_drain(px_exchange *ex);

/** The client connection's timer fired while this exchange ran. */
void px_exchange_on_client_timeout(px_exchange *ex);

/** Tunnel mode (WebSocket after 101): client bytes for the upstream.
 *  0, or -1 when the tunnel is closing. */
int px_exchange_tunnel_write(px_exchange *ex, const char *data, size_t len);

/** The client side is gone: drop the upstream, free everything, call
 *  nothing back. */
void px_exchange_abort(px_exchange *ex);

/** The front found the request broken after the exchange started (a bad
 *  chunk, a body over limits): the exchange ends, logged once, and the front
 *  answers `status` (or cuts the connection if a response head went out). */
void px_exchange_refuse(px_exchange *ex, int status);

/** Sends the request body bytes each exchange of `w` coalesced during
 *  this loop iteration (the worker's check phase). */
void px_exchange_flush_deferred(px_worker *w);

#endif
