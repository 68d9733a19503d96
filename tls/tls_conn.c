/*
 * The per-connection TLS filter: ciphertext in through a byte queue
 * (tls/tls_buf.c) behind a custom BIO, plaintext out; plaintext in,
 * ciphertext queued in a second such queue for the caller to send. No I/O
 * happens here.
 */
#include <limits.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/log.h"
#include "tls/tls_internal.h"

px_tls_conn *px__tls_conn_new(SSL_CTX *ctx, px_tls_server *srv) {
  px_tls_conn *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->srv = srv;
  c->fd = -1;
  c->ssl = SSL_new(ctx);
  BIO *rbio = px__tls_buf_bio(&c->in), *wbio = px__tls_buf_bio(&c->out);
  if (c->ssl == NULL || rbio == NULL || wbio == NULL) {
    if (c->ssl) SSL_free(c->ssl);
    BIO_free(rbio);
    BIO_free(wbio);
    free(c);
    return NULL;
  }
  SSL_set_ex_data(c->ssl, px__tls_conn_index(), c);
  SSL_set_bio(c->ssl, rbio, wbio); /* the SSL owns both now */
  return c;
}

px_tls_conn *px_tls_conn_new(px_tls_server *srv) {
  px_tls_conn *c = px__tls_conn_new(srv->ctx, srv);
  if (c) SSL_set_accept_state(c->ssl);
  return c;
}

void px_tls_conn_set_socket(px_tls_conn *c, int fd) { c->fd = fd; }

void px_tls_conn_free(px_tls_conn *c) {
  if (c == NULL) return;
  SSL_free(c->ssl);
  px__tls_buf_release(&c->in);
  px__tls_buf_release(&c->out);
  px__tls_buf_release(&c->plain);
  free(c);
}

int px_tls_conn_feed(px_tls_conn *c, const void *data, size_t len) {
  return px__tls_buf_append(&c->in, data, len) == 0 ? PX_TLS_OK : PX_TLS_ERROR;
}

size_t px_tls_conn_input_len(const px_tls_conn *c) { return c->in.len; }

/* Handshake and record failures are the client's business, so they are
 * logged at debug level only: the SNI (escaped, it is client-chosen) and
 * BoringSSL's reason, never key material. */
static void log_failure(px_tls_conn *c) {
  char sni[2 * sizeof(c->sni)], why[160];
  px_log_escape(sni, sizeof(sni), c->sni, strlen(c->sni));
  if (c->unknown_name)
    snprintf(why, sizeof(why), "no certificate for this name (unrecognized_name)");
  else
    ERR_error_string_n(ERR_peek_last_error(), why, sizeof(why));
  px_log(PX_LOG_DEBUG, "tls: sni=\"%s\": %s", sni, why);
}

static int map_error(px_tls_conn *c, int r) {
  switch (SSL_get_error(c->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return PX_TLS_WANT_READ;
  case SSL_ERROR_PENDING_CERTIFICATE:
    return PX_TLS_PENDING;
  case SSL_ERROR_ZERO_RETURN:
    return PX_TLS_CLOSED;
  default:
    if (px_log_enabled(PX_LOG_DEBUG)) log_failure(c);
    ERR_clear_error();
    return PX_TLS_ERROR;
  }
}

int px_tls_conn_handshake(px_tls_conn *c) {
  int r = SSL_do_handshake(c->ssl);
  if (r != 1) return map_error(c, r);
  /* BoringSSL holds the TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1) until
   * the first write. Sent now, it also ACKs the client's Finished at once:
   * a client without TCP_NODELAY otherwise holds its first request (Nagle)
   * until our delayed ACK, 40 ms later. A zero-byte write flushes it; the
   * output is an in-memory queue, so this never waits on the client. */
  if (c->srv && SSL_version(c->ssl) == TLS1_3_VERSION && SSL_write(c->ssl, "", 0) < 0)
    return map_error(c, -1);
  return PX_TLS_OK;
}

int px_tls_conn_read(px_tls_conn *c, void *buf, size_t cap) {
  /* Nothing queued and no decrypted bytes held: SSL_read could only fail
   * with WANT_READ (BoringSSL takes from the queue one record at a time, so
   * a complete record is never hidden inside it). Skipping that call saves
   * an error path per event. */
  if (c->in.len == 0 && SSL_pending(c->ssl) == 0 && SSL_is_init_finished(c->ssl))
    return PX_TLS_WANT_READ;
  int r = SSL_read(c->ssl, buf, (int)(cap > 0x7fffffff ? 0x7fffffff : cap));
  return r > 0 ? r : map_error(c, r);
}

/* The output is a queue, so SSL_write never waits for the socket: it takes
 * everything, record by record. */
static int seal(px_tls_conn *c, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    int n = SSL_write(c->ssl, p, (int)(len > 0x40000000 ? 0x40000000 : len));
    if (n <= 0) {
      map_error(c, n); /* logs the reason at debug level */
      return PX_TLS_ERROR;
    }
    p += n;
    len -= (size_t)n;
  }
  return PX_TLS_OK;
}

/* Seals the small writes gathered so far, as one record. */
static int seal_pending(px_tls_conn *c) {
  if (c->plain.len == 0) return PX_TLS_OK;
  int r = seal(c, c->plain.data + c->plain.off, c->plain.len);
  px__tls_buf_consume(&c->plain, c->plain.len);
  return r;
}

/* Small writes (a response head, then a short body) are gathered and sealed
 * together when the output is taken: one record instead of one per write,
 * which saves a seal here and an open at the client. Large writes are
 * sealed at once, after what was gathered, without an extra copy. */
#define GATHER_MAX 16384 /* one full TLS record of plaintext */
int px_tls_conn_write(px_tls_conn *c, const void *data, size_t len) {
  if (len < GATHER_MAX / 4 && c->plain.len + len <= GATHER_MAX)
    return px__tls_buf_append(&c->plain, data, len) == 0 ? PX_TLS_OK : PX_TLS_ERROR;
  if (seal_pending(c) != PX_TLS_OK) return PX_TLS_ERROR;
  return seal(c, data, len);
}

void px_tls_conn_compact(px_tls_conn *c) {
  /* Idle connections keep no buffers: they come back on the next use. */
  if (c->in.len == 0) px__tls_buf_release(&c->in);
  if (c->out.len == 0) px__tls_buf_release(&c->out);
  if (c->plain.len == 0) px__tls_buf_release(&c->plain);
}

void px_tls_conn_shutdown(px_tls_conn *c) {
  seal_pending(c); /* application data goes before the close_notify */
  SSL_shutdown(c->ssl);
  ERR_clear_error();
}

size_t px_tls_conn_output_len(px_tls_conn *c) {
  seal_pending(c);
  return c->out.len;
}

const char *px_tls_conn_output(px_tls_conn *c, size_t *len) {
  if (seal_pending(c) != PX_TLS_OK) {
    *len = 0;
    return NULL;
  }
  *len = c->out.len;
  return c->out.data ? c->out.data + c->out.off : "";
}

void px_tls_conn_consume_output(px_tls_conn *c, size_t n) { px__tls_buf_consume(&c->out, n); }

const char *px_tls_conn_sni(const px_tls_conn *c) { return c->sni[0] ? c->sni : NULL; }

int px_tls_conn_is_acme_challenge(const px_tls_conn *c) { return c->acme_challenge; }

const char *px_tls_conn_alpn(const px_tls_conn *c) {
  static __thread char proto[32];
  const uint8_t *p;
  unsigned len;
  SSL_get0_alpn_selected(c->ssl, &p, &len);
  if (len == 0 || len >= sizeof(proto)) return NULL;
  memcpy(proto, p, len);
  proto[len] = '\0';
  return proto;
}

const char *px_tls_conn_version(const px_tls_conn *c) { return SSL_get_version(c->ssl); }

int px_tls_conn_resumed(const px_tls_conn *c) { return SSL_session_reused(c->ssl); }

int px_tls_conn_unknown_name(const px_tls_conn *c) { return c->unknown_name; }
