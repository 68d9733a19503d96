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

typedef struct px_conn px_conn;
typedef struct px_exchange px_exchange;

/**
 * Starts proxying the request whose head is in c->head to `site`. Sets
 * c->ex. Returns 0, or -1 when the connection is being closed.
 */
int px_exchange_start(px_conn *c, const px_site *site, const char *host);

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

/** The client connection is closing: drop the upstream, free everything. */
void px_exchange_abort(px_exchange *ex);

#endif
