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

/** Makes HTTP/2 the session of `c`, whose ALPN is "h2" (c->session,
 *  c->session_ops), and sends the server's SETTINGS. 0, or -1 on ENOMEM. */
int px_h2_start(px_conn *c);

#endif
