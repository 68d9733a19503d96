/*
 * The client side of the connection filter (tls/tls_client.h).
 */
#include "tls/tls_client.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_internal.h"

/* The trust store Debian's ca-certificates installs. It may be absent in a
 * minimal container; ca_file then must carry the trust. */
#define SYSTEM_ROOTS "/etc/ssl/certs/ca-certificates.crt"

struct px_tls_client {
  SSL_CTX *ctx;
};

px_tls_client *px_tls_client_new(const char *ca_file, char *err, size_t errlen) {
  px_tls_client *t = calloc(1, sizeof(*t));
  if (t == NULL || (t->ctx = SSL_CTX_new(TLS_method())) == NULL) {
    snprintf(err, errlen, "out of memory");
    free(t);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_load_verify_locations(t->ctx, SYSTEM_ROOTS, NULL);
  ERR_clear_error();
  if (ca_file && !SSL_CTX_load_verify_locations(t->ctx, ca_file, NULL)) {
    snprintf(err, errlen, "%s: no usable PEM certificates", ca_file);
    ERR_clear_error();
    px_tls_client_free(t);
    return NULL;
  }
  return t;
}

void px_tls_client_free(px_tls_client *t) {
  if (t == NULL) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

px_tls_conn *px_tls_client_conn_new(px_tls_client *t, const char *host) {
  px_tls_conn *c = px__tls_conn_new(t->ctx, NULL);
  if (c == NULL) return NULL;
  SSL_set_connect_state(c->ssl);
  /* Verify the name the URL gives (RFC 6125): a DNS name or an IP. */
  X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
  struct in6_addr a6;
  struct in_addr a4;
  int ok;
  if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
    ok = X509_VERIFY_PARAM_set1_ip_asc(param, host);
  else
    ok = SSL_set_tlsext_host_name(c->ssl, host) &&
         X509_VERIFY_PARAM_set1_host(param, host, strlen(host)); /* 0 is refused */
  if (!ok) {
    ERR_clear_error();
    px_tls_conn_free(c);
    return NULL;
  }
  return c;
}

const char *px_tls_conn_verify_error(const px_tls_conn *c) {
  long r = SSL_get_verify_result(c->ssl);
  return r == X509_V_OK ? NULL : X509_verify_cert_error_string(r);
}
