/*
 * TLS termination for portico: the server context with its certificate table
 * (chosen by SNI in BoringSSL's early ClientHello callback) and a per-
 * connection filter that turns ciphertext into plaintext and back.
 *
 * Nothing outside tls/ calls BoringSSL's SSL_* API; the proxy sees bytes.
 * Error convention: functions return PX_TLS_* codes (negative on failure) and,
 * where noted, fill a caller-supplied error buffer with a human sentence.
 *
 * Threading: a px_tls_server is immutable after creation and is shared by
 * every worker (one SSL_CTX, so session tickets resume across workers). A
 * px_tls_conn belongs to one worker thread.
 */
#ifndef PX_TLS_H
#define PX_TLS_H

#include <stddef.h>
#include <stdint.h>

/** Results of the connection filter. */
enum {
  PX_TLS_OK = 0,         /**< done (handshake complete / write queued) */
  PX_TLS_WANT_READ = -1, /**< needs more ciphertext from the peer */
  PX_TLS_CLOSED = -2,    /**< the peer sent close_notify */
  PX_TLS_ERROR = -3,     /**< fatal: send pending output (the alert), then close */
  PX_TLS_PENDING = -4,   /**< handshake paused waiting for a certificate (on demand) */
};

#include "tls/cert.h"

/** One certificate and the host patterns it serves. */
typedef struct px_tls_cert_spec {
  const char *cert_file;    /**< PEM chain, leaf first; NULL for a dynamic site */
  const char *key_file;     /**< PEM private key */
  int dynamic;              /**< certificates come from px_tls_dynamic (ACME, on demand) */
  const char *const *hosts; /**< "a.example", "*.example" (one label) or "*" */
  size_t nhosts;
} px_tls_cert_spec;

/**
 * Where certificates of dynamic sites come from. Both functions run on a
 * worker thread inside the ClientHello callback and must not block.
 */
typedef struct px_tls_dynamic {
  /**
   * For a name that matched a dynamic site: `spec` is the index (into the
   * spec array given to px_tls_server_new) of the site whose host pattern
   * matched, so the caller applies that site's policy. Returns 1 with a new
   * reference in *out when the certificate is ready, 0 when the handshake
   * must wait (px_tls_conn_handshake returns PX_TLS_PENDING; retry it once
   * told the name is resolved), or -1 to refuse with unrecognized_name.
   */
  int (*lookup)(void *arg, const char *name, size_t spec, px_tls_cert **out);
  /** The tls-alpn-01 challenge certificate for `name` (RFC 8737 §3): 1 with
   *  a new reference in *out, 0 when the handshake must wait (as for
   *  `lookup`: retry once told the name is resolved), -1 when there is
   *  none (unrecognized_name). */
  int (*challenge)(void *arg, const char *name, px_tls_cert **out);
  void *arg;
} px_tls_dynamic;

/** Server-wide TLS settings. */
typedef struct px_tls_server_opts {
  const char *const *alpn; /**< protocols offered, in server preference order */
  size_t nalpn;
  px_tls_dynamic dynamic; /**< may be all NULL when no site is dynamic */
} px_tls_server_opts;

/** px_tls_server_lookup's answer for a name served by a dynamic site. */
#define PX_TLS_LOOKUP_DYNAMIC (-2)

typedef struct px_tls_server px_tls_server;
typedef struct px_tls_conn px_tls_conn;

/**
 * Builds the server context: loads every certificate and key (checking that
 * each key matches its certificate) and indexes the host patterns. On failure
 * returns NULL and writes a sentence naming the file into `err`.
 */
px_tls_server *px_tls_server_new(const px_tls_cert_spec *certs, size_t ncerts,
                                 const px_tls_server_opts *opts, char *err, size_t errlen);

/** Frees the server context. No connection may still use it. */
void px_tls_server_free(px_tls_server *srv);

/**
 * Finds the certificate for `name` the way a handshake does: exact match,
 * then a one-label wildcard, then "*". Returns the index into the spec array
 * given to px_tls_server_new, PX_TLS_LOOKUP_DYNAMIC for a dynamic site, or
 * -1. `name` must already be lowercase.
 */
int px_tls_server_lookup(const px_tls_server *srv, const char *name);

/** Creates the per-connection filter. Returns NULL on allocation failure. */
px_tls_conn *px_tls_conn_new(px_tls_server *srv);

/**
 * Tells the filter its socket, so a handshake without SNI can be given the
 * certificate of a site whose host is the address the connection arrived
 * on (RFC 6066 §3 forbids an address in SNI). The filter only reads the
 * socket's local address, and only when some site names an address.
 */
void px_tls_conn_set_socket(px_tls_conn *c, int fd);

/** Frees the filter and everything it buffers. */
void px_tls_conn_free(px_tls_conn *c);

/** Hands ciphertext read from the socket to the filter (copied). */
int px_tls_conn_feed(px_tls_conn *c, const void *data, size_t len);

/** Received TLS bytes not yet decrypted (lets the caller bound its reads). */
size_t px_tls_conn_input_len(const px_tls_conn *c);

/**
 * Advances the handshake. PX_TLS_OK once complete; PX_TLS_WANT_READ when more
 * input is needed; PX_TLS_ERROR when it failed (an alert may be pending in the
 * output, so flush it before closing).
 */
int px_tls_conn_handshake(px_tls_conn *c);

/**
 * Reads decrypted application data. Returns the number of bytes (> 0),
 * PX_TLS_WANT_READ when no complete record is buffered, PX_TLS_CLOSED on
 * close_notify, or PX_TLS_ERROR.
 */
int px_tls_conn_read(px_tls_conn *c, void *buf, size_t cap);

/** Encrypts `len` bytes of application data into the output. Small writes
 *  are gathered and sealed as one record when the output is next taken. */
int px_tls_conn_write(px_tls_conn *c, const void *data, size_t len);

/**
 * Releases the filter's buffers while the connection is idle (nothing
 * buffered either way), so an idle connection costs little memory. Safe to
 * call at any time; it does nothing when data is pending.
 */
void px_tls_conn_compact(px_tls_conn *c);

/** Queues a close_notify alert into the output. */
void px_tls_conn_shutdown(px_tls_conn *c);

/** Bytes of ciphertext waiting to be sent (seals gathered writes first). */
size_t px_tls_conn_output_len(px_tls_conn *c);

/** The queued ciphertext in place (`*len` bytes; valid until the next call
 *  on `c`), to hand to the socket without copying it out first. Seals
 *  gathered writes first; NULL when that fails (close the connection). */
const char *px_tls_conn_output(px_tls_conn *c, size_t *len);

/** Drops `n` bytes of queued ciphertext that were sent. */
void px_tls_conn_consume_output(px_tls_conn *c, size_t n);

/** The SNI name the client sent, lowercased, or NULL. Valid after the handshake. */
const char *px_tls_conn_sni(const px_tls_conn *c);

/** True when this handshake answered a tls-alpn-01 challenge ("acme-tls/1"):
 *  close the connection after the handshake, never route it (RFC 8737 §3). */
int px_tls_conn_is_acme_challenge(const px_tls_conn *c);

/** The negotiated ALPN protocol (e.g. "http/1.1"), or NULL if none. */
const char *px_tls_conn_alpn(const px_tls_conn *c);

/** "TLSv1.3" or "TLSv1.2" after the handshake, for logs. */
const char *px_tls_conn_version(const px_tls_conn *c);

/** True when the session was resumed (tickets), for logs and benchmarks. */
int px_tls_conn_resumed(const px_tls_conn *c);

/** True when the handshake failed for want of a certificate for the SNI
 *  (the unrecognized_name alert), for metrics. */
int px_tls_conn_unknown_name(const px_tls_conn *c);

/** Frees the calling thread's cached TLS buffers (call before a thread
 *  that ran connections exits). */
void px_tls_thread_cleanup(void);

#endif
