/*
 * The HTTP/1.1 server session of a client connection: llhttp parsing, the
 * checks llhttp 8.1 lacks (DESIGN.md), limits, routing, portico's own
 * answers (redirects, 4xx), and handing proxied requests to an exchange.
 */
#ifndef PX_H1_H
#define PX_H1_H

#include <stddef.h>

typedef struct px_conn px_conn;

/** Prepares the parser of a new connection. */
void px_h1_init(px_conn *c);

/** Sets up the connection's px_front (h1_front.c). */
void px_h1_front_init(px_conn *c);

/** Frees what the last request left (its head) once it is answered, so an
 *  idle keep-alive connection holds no request buffers. */
void px_h1_request_done(px_conn *c);

/** Frees the session's buffers (the connection is closing). */
void px_h1_dispose(px_conn *c);

/**
 * Parses plaintext from the client. Returns 1 when the caller may feed more,
 * 0 when parsing paused (a request is being answered; the rest of `data` is
 * stashed) or the connection is closing.
 */
int px_h1_feed(px_conn *c, const char *data, size_t len);

/** Parses stashed bytes after a pause. Returns 1 when more input may follow. */
int px_h1_consume_stash(px_conn *c);

/** The request head did not arrive within timeouts.request_header. */
void px_h1_on_header_timeout(px_conn *c);

/**
 * Sends one of portico's own responses (4xx/5xx/redirect) and logs it.
 * `extra` are preformatted header lines or NULL. With `close` the connection
 * closes after the response.
 */
void px_h1_respond(px_conn *c, int status, const char *extra, int close);

/** px_h1_respond with close, for a failure the exchange already logged. */
void px_h1_respond_unlogged(px_conn *c, int status);

#endif
