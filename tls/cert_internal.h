/* Internal to tls/: the layout of a px_tls_cert. */
#ifndef PX_TLS_CERT_INTERNAL_H
#define PX_TLS_CERT_INTERNAL_H

#include <openssl/ssl.h>
#include <stdatomic.h>

#include "tls/cert.h"

struct px_tls_cert {
  atomic_int refs;
  CRYPTO_BUFFER **chain;
  size_t nchain;
  EVP_PKEY *key;
  int64_t not_after;
  char serial[80];
};

/** Installs the certificate on a handshake in progress. 1 on success. */
int px__tls_cert_install(const px_tls_cert *c, SSL *ssl);

#endif
