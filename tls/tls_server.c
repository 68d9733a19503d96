/*
 * The server context: one SSL_CTX for every worker, the certificates loaded
 * once into CRYPTO_BUFFERs, and the SNI index consulted in the early
 * ClientHello callback.
 */
#include <ctype.h>
#include <errno.h>
#include <openssl/bytestring.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "tls/ipname.h"
#include "tls/log.h"
#include "tls/tls_internal.h"

static uint64_t hash_name(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static int table_put(px__tls_name *t, size_t size, const char *name, int cert) {
  for (size_t i = hash_name(name) & (size - 1);; i = (i + 1) & (size - 1)) {
    if (t[i].name == NULL) {
      t[i].name = strdup(name);
      t[i].cert = cert;
      return t[i].name ? 0 : -1;
    }
    if (strcmp(t[i].name, name) == 0) return 0; /* first site wins; config rejects duplicates */
  }
}

static int table_get(const px__tls_name *t, size_t size, const char *name) {
  if (size == 0) return -1;
  for (size_t i = hash_name(name) & (size - 1);; i = (i + 1) & (size - 1)) {
    if (t[i].name == NULL) return -1;
    if (strcmp(t[i].name, name) == 0) return t[i].cert;
  }
}

/* The spec whose pattern matches `name` (static or dynamic), or -1. */
static int spec_of(const px_tls_server *srv, const char *name) {
  int idx = table_get(srv->exact, srv->table_size, name);
  if (idx != -1) return idx;
  /* One-label wildcard: "a.example.com" looks up ".example.com". */
  const char *dot = strchr(name, '.');
  if (dot && dot != name) {
    idx = table_get(srv->wildcard, srv->table_size, dot);
    if (idx != -1) return idx;
  }
  return srv->catch_all;
}

int px_tls_server_lookup(const px_tls_server *srv, const char *name) {
  int idx = spec_of(srv, name);
  return idx >= 0 && srv->dynamic[idx] ? PX_TLS_LOOKUP_DYNAMIC : idx;
}

static int conn_index = -1;
static pthread_once_t conn_index_once = PTHREAD_ONCE_INIT;

static void init_conn_index(void) { conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

int px__tls_conn_index(void) {
  pthread_once(&conn_index_once, init_conn_index);
  return conn_index;
}

/* Reads the SNI from the ClientHello (RFC 6066 §3): the first host_name. */
static int client_hello_sni(const SSL_CLIENT_HELLO *hello, char *out, size_t cap) {
  const uint8_t *data;
  size_t len;
  if (!SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_server_name, &data, &len)) return -1;
  CBS ext, list, name;
  uint8_t type;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return -1;
  while (CBS_len(&list) > 0) {
    if (!CBS_get_u8(&list, &type) || !CBS_get_u16_length_prefixed(&list, &name)) return -1;
    if (type != TLSEXT_NAMETYPE_host_name) continue;
    size_t n = CBS_len(&name);
    if (n == 0 || n >= cap) return -1;
    const uint8_t *p = CBS_data(&name);
    for (size_t i = 0; i < n; i++) {
      unsigned char c = p[i];
      if (c == 0 || c >= 0x80) return -1;
      out[i] = (char)tolower(c);
    }
    if (out[n - 1] == '.') n--; /* a trailing dot names the same host */
    out[n] = '\0';
    return n ? 0 : -1;
  }
  return -1;
}

/* True when the ClientHello offers ALPN "acme-tls/1" (RFC 8737 §3). */
static int offers_acme_tls(const SSL_CLIENT_HELLO *hello) {
  const uint8_t *data;
  size_t len;
  if (!SSL_early_callback_ctx_extension_get(
          hello, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len))
    return 0;
  CBS ext, list, proto;
  CBS_init(&ext, data, len);
  if (!CBS_get_u16_length_prefixed(&ext, &list)) return 0;
  while (CBS_len(&list) > 0) {
    if (!CBS_get_u8_length_prefixed(&list, &proto)) return 0;
    if (CBS_len(&proto) == 10 && memcmp(CBS_data(&proto), "acme-tls/1", 10) == 0) return 1;
  }
  return 0;
}

static enum ssl_select_cert_result_t install(SSL *ssl, px_tls_cert *cert, int owned) {
  int ok = px__tls_cert_install(cert, ssl);
  if (owned) px_tls_cert_unref(cert); /* the SSL holds its own references now */
  return ok ? ssl_select_cert_success : ssl_select_cert_error;
}

/* Early ClientHello callback: choose the certificate by SNI. Failure is
 * reported from the servername callback, which can send unrecognized_name
 * (this callback's error path can only send handshake_failure). */
/* No SNI: the name of the local address the connection arrived on, when a
 * site names that address (a client of https://192.0.2.1/ sends no SNI,
 * RFC 6066 §3). 0 with the name in `out`, else -1. */
static int local_address_name(const px_tls_conn *c, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  if (!c->srv->has_ip || c->fd < 0 || getsockname(c->fd, (struct sockaddr *)&ss, &len) != 0)
    return -1;
  if (px_ip_name_from_sockaddr((const struct sockaddr *)&ss, out, cap) < 0) return -1;
  return table_get(c->srv->exact, c->srv->table_size, out) >= 0 ? 0 : -1;
}

static enum ssl_select_cert_result_t on_select_certificate(const SSL_CLIENT_HELLO *hello) {
  SSL *ssl = hello->ssl;
  px_tls_conn *c = SSL_get_ex_data(ssl, px__tls_conn_index());
  if (c == NULL) return ssl_select_cert_error;
  px_tls_server *srv = c->srv;
  int acme_tls = offers_acme_tls(hello);
  if (client_hello_sni(hello, c->sni, sizeof(c->sni)) != 0) {
    /* The address then stands for the name: routing and the wait for a
     * certificate compare it as they compare an SNI. Only the exact
     * table is consulted, so "*" and on-demand sites never see it. */
    if (acme_tls || local_address_name(c, c->sni, sizeof(c->sni)) != 0) {
      c->sni[0] = '\0';
      c->unknown_name = 1;
      return ssl_select_cert_success;
    }
  } else if (acme_tls && srv->has_ip) {
    /* RFC 8738 §6: for an address the CA sends its reverse-DNS name. */
    char ip[PX_IP_NAME_MAX];
    if (px_ip_name_from_reverse(c->sni, ip, sizeof(ip)) > 0)
      snprintf(c->sni, sizeof(c->sni), "%s", ip);
  }
  if (acme_tls) {
    /* A CA validating tls-alpn-01: only the challenge certificate will do. */
    px_tls_cert *chal = NULL;
    int r = srv->dyn.challenge ? srv->dyn.challenge(srv->dyn.arg, c->sni, &chal) : -1;
    /* Another instance may have started the order: the material comes
     * from the shared store, and the handshake waits as for a name. */
    if (r == 0) return ssl_select_cert_retry;
    if (r < 0 || chal == NULL) {
      c->unknown_name = 1;
      return ssl_select_cert_success;
    }
    c->acme_challenge = 1;
    return install(ssl, chal, 1);
  }
  int idx = spec_of(srv, c->sni);
  if (idx >= 0 && !srv->dynamic[idx]) return install(ssl, srv->certs[idx], 0);
  if (idx >= 0 && srv->dyn.lookup) {
    /* The matching site's index goes along: whether a name may start its
     * own order is that site's policy, not the name's. */
    px_tls_cert *cert = NULL;
    int r = srv->dyn.lookup(srv->dyn.arg, c->sni, (size_t)idx, &cert);
    if (r > 0 && cert) return install(ssl, cert, 1);
    /* Paused: px_tls_conn_handshake reports PX_TLS_PENDING and the caller
     * retries once the name is resolved (ssl_select_cert_retry). */
    if (r == 0) return ssl_select_cert_retry;
  }
  c->unknown_name = 1;
  return ssl_select_cert_success;
}

static int on_servername(SSL *ssl, int *alert, void *arg) {
  px_tls_conn *c = SSL_get_ex_data(ssl, px__tls_conn_index());
  if (c && c->unknown_name) {
    *alert = SSL_AD_UNRECOGNIZED_NAME; /* RFC 6066 §3 */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  return SSL_TLSEXT_ERR_OK;
}

/* ALPN: the first of our protocols that the client offers (server
 * preference). No overlap means no ALPN rather than a failed handshake, so
 * clients that offer only other protocols still get HTTP/1.1. */
static int on_alpn_select(SSL *ssl, const uint8_t **out, uint8_t *out_len, const uint8_t *in,
                          unsigned in_len, void *arg) {
  px_tls_server *srv = arg;
  px_tls_conn *c = SSL_get_ex_data(ssl, px__tls_conn_index());
  if (c && c->acme_challenge) {
    static const uint8_t acme_tls[] = "acme-tls/1";
    *out = acme_tls;
    *out_len = 10;
    return SSL_TLSEXT_ERR_OK;
  }
  for (size_t i = 0; i < srv->alpn_wire_len; i += 1 + srv->alpn_wire[i]) {
    const uint8_t *ours = &srv->alpn_wire[i];
    for (unsigned j = 0; j < in_len; j += 1u + in[j]) {
      if (j + 1u + in[j] > in_len) break;
      if (in[j] == ours[0] && memcmp(&in[j + 1], ours + 1, ours[0]) == 0) {
        *out = ours + 1;
        *out_len = ours[0];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

static size_t next_pow2(size_t n) {
  size_t s = 16;
  while (s < n)
    s <<= 1;
  return s;
}

/* Our ALPN list in wire format (RFC 7301 §3.1): names of 1 to 255 bytes. */
static int build_alpn(px_tls_server *srv, const px_tls_server_opts *opts, char *err,
                      size_t errlen) {
  size_t wl = 0;
  for (size_t i = 0; opts && i < opts->nalpn; i++) {
    size_t n = strlen(opts->alpn[i]);
    if (n == 0 || n > 255) {
      snprintf(err, errlen, "ALPN protocol name must be 1 to 255 bytes");
      return -1;
    }
    wl += 1 + n;
  }
  srv->alpn_wire = malloc(wl ? wl : 1);
  if (srv->alpn_wire == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t i = 0; opts && i < opts->nalpn; i++) {
    size_t n = strlen(opts->alpn[i]);
    srv->alpn_wire[srv->alpn_wire_len++] = (uint8_t)n;
    memcpy(srv->alpn_wire + srv->alpn_wire_len, opts->alpn[i], n);
    srv->alpn_wire_len += n;
  }
  return 0;
}

/* Protocol policy shared by every worker: TLS 1.2 and 1.3 only, TLS 1.2
 * restricted to forward-secret AEAD suites (TLS 1.3 suites are fixed by
 * BoringSSL and all AEAD). */
static int configure_ctx(SSL_CTX *ctx, char *err, size_t errlen) {
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_strict_cipher_list(ctx, "ECDHE-ECDSA-AES128-GCM-SHA256:"
                                           "ECDHE-RSA-AES128-GCM-SHA256:"
                                           "ECDHE-ECDSA-AES256-GCM-SHA384:"
                                           "ECDHE-RSA-AES256-GCM-SHA384:"
                                           "ECDHE-ECDSA-CHACHA20-POLY1305:"
                                           "ECDHE-RSA-CHACHA20-POLY1305")) {
    char why[160];
    ERR_error_string_n(ERR_get_error(), why, sizeof(why));
    ERR_clear_error();
    snprintf(err, errlen, "TLS settings rejected: %s", why);
    return -1;
  }
  /* Resumption by tickets only (RFC 5077, RFC 8446 §4.6.1): the ticket key
   * lives in this one SSL_CTX, so any worker resumes any session and there
   * is no server-side session cache to share or lock. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  /* One TLS 1.3 ticket per handshake, not BoringSSL's default two: a
   * resumed connection gets a fresh one, which is all a client needs, and
   * each ticket costs an encryption and a record on every full handshake.
   * The ticket key is BoringSSL's own, rotated by the library every two
   * days; it is per process, so separate instances do not resume each
   * other's sessions (docs/architecture.md). */
  if (!SSL_CTX_set_num_tickets(ctx, 1)) {
    snprintf(err, errlen, "TLS settings rejected: ticket count");
    return -1;
  }
  /* Idle connections must stay small. This BoringSSL always releases its
   * record buffers when they are empty (the mode is defined as 0); it is set
   * so the intent survives a library that needs it. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  return 0;
}

px_tls_server *px_tls_server_new(const px_tls_cert_spec *certs, size_t ncerts,
                                 const px_tls_server_opts *opts, char *err, size_t errlen) {
  px_tls_server *srv = calloc(1, sizeof(*srv));
  if (srv == NULL) return NULL;
  srv->catch_all = -1;
  size_t nnames = 0;
  for (size_t i = 0; i < ncerts; i++)
    nnames += certs[i].nhosts;
  srv->table_size = next_pow2(nnames * 2 + 1);
  srv->exact = calloc(srv->table_size, sizeof(px__tls_name));
  srv->wildcard = calloc(srv->table_size, sizeof(px__tls_name));
  srv->certs = calloc(ncerts ? ncerts : 1, sizeof(px_tls_cert *));
  srv->dynamic = calloc(ncerts ? ncerts : 1, sizeof(int));
  srv->ctx = SSL_CTX_new(TLS_method());
  if (opts) srv->dyn = opts->dynamic;
  if (!srv->exact || !srv->wildcard || !srv->certs || !srv->dynamic || !srv->ctx) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  srv->ncerts = ncerts;
  for (size_t i = 0; i < ncerts; i++) {
    int target = (int)i;
    if (certs[i].dynamic) {
      srv->dynamic[i] = 1;
    } else if ((srv->certs[i] = px_tls_cert_load_files(certs[i].cert_file, certs[i].key_file, err,
                                                       errlen)) == NULL) {
      goto fail;
    }
    for (size_t j = 0; j < certs[i].nhosts; j++) {
      const char *h = certs[i].hosts[j];
      int r;
      if (px_ip_name_is(h)) srv->has_ip = 1;
      if (strcmp(h, "*") == 0) {
        if (srv->catch_all == -1) srv->catch_all = target;
        r = 0;
      } else if (h[0] == '*' && h[1] == '.') {
        r = table_put(srv->wildcard, srv->table_size, h + 1, target);
      } else {
        r = table_put(srv->exact, srv->table_size, h, target);
      }
      if (r != 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
      }
    }
  }
  if (build_alpn(srv, opts, err, errlen) != 0 || configure_ctx(srv->ctx, err, errlen) != 0)
    goto fail;
  SSL_CTX_set_select_certificate_cb(srv->ctx, on_select_certificate);
  SSL_CTX_set_tlsext_servername_callback(srv->ctx, on_servername);
  SSL_CTX_set_alpn_select_cb(srv->ctx, on_alpn_select, srv);
  return srv;
fail:
  px_tls_server_free(srv);
  return NULL;
}

void px_tls_server_free(px_tls_server *srv) {
  if (srv == NULL) return;
  if (srv->ctx) SSL_CTX_free(srv->ctx);
  for (size_t i = 0; srv->certs && i < srv->ncerts; i++)
    px_tls_cert_unref(srv->certs[i]);
  free(srv->dynamic);
  for (size_t i = 0; srv->exact && i < srv->table_size; i++)
    free(srv->exact[i].name);
  for (size_t i = 0; srv->wildcard && i < srv->table_size; i++)
    free(srv->wildcard[i].name);
  free(srv->exact);
  free(srv->wildcard);
  free(srv->certs);
  free(srv->alpn_wire);
  free(srv);
}
