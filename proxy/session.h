/*
 * Which protocol a client connection speaks: HTTP/1.1 from accept, HTTP/2
 * when TLS negotiated "h2" (ALPN, RFC 7301). The worker hands this to its
 * listeners, so the transport (conn.c) names no protocol.
 */
#ifndef PX_SESSION_H
#define PX_SESSION_H

typedef struct px_conn px_conn;

/** A px_session_start_fn (worker.h): starts HTTP/1.1 when `alpn` is NULL
 *  or names another protocol, HTTP/2 (replacing the HTTP/1.1 session)
 *  when it is "h2". 0, or -1 when out of memory. */
int px_session_start(px_conn *c, const char *alpn);

#endif
