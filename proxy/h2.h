/*
 * The HTTP/2 front (RFC 9113) on nghttp2: one server session per connection
 * that negotiated "h2", each stream proxied as an HTTP/1.1 exchange over the
 * same upstream pools. Flow control is manual: request DATA is acknowledged
 * (WINDOW_UPDATE) only as the upstream takes it, and a stream's response is
 * read from the upstream only while its own buffer is short. SETTINGS and
 * the abuse accounting are described in docs/http2.md.
 */
#ifndef PX_H2_H
#define PX_H2_H

#include <stddef.h>

typedef struct px_conn px_conn;
typedef struct px_h2 px_h2;

/** Starts the session on a connection whose ALPN is "h2". NULL on ENOMEM. */
px_h2 *px_h2_new(px_conn *c);

/** Feeds plaintext from the client. 0, or -1 when the connection must close. */
int px_h2_feed(px_h2 *h2, const char *data, size_t len);

/** Graceful shutdown: GOAWAY, open streams finish. */
void px_h2_shutdown(px_h2 *h2);

/** True when no stream is open (the connection is idle). */
int px_h2_idle(const px_h2 *h2);

/** The connection is closing: abort every stream's exchange. The session
 *  itself stays valid (callers up the stack may still hold it) until
 *  px_h2_free from the connection's last close callback. */
void px_h2_close_streams(px_h2 *h2);

/** Frees the session; running exchanges are aborted. */
void px_h2_free(px_h2 *h2);

/** Sends what the session has queued: from the worker's check phase for
 *  connections marked dirty, and when the connection's output drained. */
void px_h2_flush(px_h2 *h2);

/**
 * The connection's timer fired while HTTP/2 streams are open: streams past
 * their deadline are failed (408 while the request body is awaited, reset
 * while the client holds the response back) and the timer is set for the
 * next deadline. Returns 0 when no stream is open (the keep-alive timeout,
 * which the caller handles), 1 otherwise.
 */
int px_h2_on_timer(px_h2 *h2);

/** True while a stream waits on the client: request body due and not held
 *  back by the upstream, or response bytes queued that its window holds. */
int px_h2_awaits_client(const px_h2 *h2);

#endif
