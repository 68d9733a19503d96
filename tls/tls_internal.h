/*
 * Internal to tls/: the server context and connection structures shared by
 * tls_server.c and tls_conn.c.
 */
#ifndef PX_TLS_INTERNAL_H
#define PX_TLS_INTERNAL_H

#include <openssl/ssl.h>

#include "tls/cert_internal.h"
#include "tls/tls.h"

/** Name index entry: an exact name or a wildcard suffix (".example.com"). */
typedef struct px__tls_name {
  char *name; /* NULL = empty slot */
  int cert;
} px__tls_name;

struct px_tls_server {
  SSL_CTX *ctx;
  px_tls_cert **certs; /* NULL for dynamic specs */
  int *dynamic;        /* per spec */
  size_t ncerts;
  px_tls_dynamic dyn;
  px__tls_name *exact;    /* open addressing, power-of-two size */
  px__tls_name *wildcard; /* keyed by the suffix after "*" */
  size_t table_size;
  int catch_all;      /* cert index of "*", or -1 */
  int has_ip;         /* some site names an IP address: look up a handshake without SNI */
  uint8_t *alpn_wire; /* server preference, wire format */
  size_t alpn_wire_len;
};

/* A byte queue: bytes data[off, off + len), capacity cap (tls_buf.c). */
typedef struct px__tls_buf {
  char *data;
  size_t off, len, cap;
} px__tls_buf;

/* Appends n bytes; -1 on ENOMEM. */
int px__tls_buf_append(px__tls_buf *b, const void *data, size_t n);
/* Drops n bytes from the front. */
void px__tls_buf_consume(px__tls_buf *b, size_t n);
/* Frees the storage (the queue must be empty or is emptied). */
void px__tls_buf_release(px__tls_buf *b);
/* A BIO reading from / appending to `b` (which must outlive it). */
BIO *px__tls_buf_bio(px__tls_buf *b);

struct px_tls_conn {
  SSL *ssl;
  px__tls_buf in, out; /* ciphertext from and for the socket */
  px__tls_buf plain;   /* small writes not sealed yet (tls_conn.c) */
  px_tls_server *srv;  /* NULL for a client connection (tls_client.c) */
  int unknown_name;    /* set by the select callback: fail with unrecognized_name */
  int acme_challenge;  /* answering tls-alpn-01 with a challenge certificate */
  int fd;              /* the socket, for its local address when SNI is absent; -1 unknown */
  char sni[256];
};

/** A connection filter on `ctx` with its queues and BIOs, in neither the
 *  accept nor the connect state yet; `srv` is NULL for a client. */
px_tls_conn *px__tls_conn_new(SSL_CTX *ctx, px_tls_server *srv);

/** Index of our px_tls_conn in SSL ex_data. */
int px__tls_conn_index(void);

#endif
