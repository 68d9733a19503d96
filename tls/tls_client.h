/*
 * The client side of the connection filter (tls/tls.h): portico's own
 * HTTPS requests (to the ACME server) use the same px_tls_conn queue
 * filter as the server, with the handshake in the connect state, so only
 * tls/ calls BoringSSL's SSL_* API.
 *
 * The peer is verified against the system roots plus an optional extra PEM
 * file, and its certificate must name the host (RFC 6125: a DNS name, or
 * an IP address given as one).
 *
 * Error convention: as tls/tls.h (PX_TLS_* codes from the filter); the
 * constructor fills a caller-supplied buffer with a sentence.
 */
#ifndef PX_TLS_CLIENT_H
#define PX_TLS_CLIENT_H

#include <stddef.h>

#include "tls/tls.h"

/** Trust settings shared by the connections of one client; immutable
 *  once made, so any thread may create connections from it. */
typedef struct px_tls_client px_tls_client;

/** Loads the system roots and `ca_file` (may be NULL). NULL with a
 *  sentence naming the file in `err`. */
px_tls_client *px_tls_client_new(const char *ca_file, char *err, size_t errlen);

/** Frees the trust settings (no connection may still use them). */
void px_tls_client_free(px_tls_client *t);

/**
 * A client connection to `host` (sends it as SNI unless it is an IP
 * address). Drive it like a server connection: px_tls_conn_handshake,
 * px_tls_conn_write, px_tls_conn_read, px_tls_conn_output; free it with
 * px_tls_conn_free. NULL on allocation failure.
 */
px_tls_conn *px_tls_client_conn_new(px_tls_client *t, const char *host);

/** Why the server's certificate was refused (not trusted, expired, does
 *  not name the host, ...) as BoringSSL's static sentence, or NULL when
 *  certificate verification did not fail. */
const char *px_tls_conn_verify_error(const px_tls_conn *c);

#endif
