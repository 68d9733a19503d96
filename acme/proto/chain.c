/*
 * The topmost issuer of a chain (acme/proto/chain.h).
 */
#include "acme/proto/chain.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

int px_acme_chain_top_issuer(const char *pem, size_t len, char *out, size_t cap) {
  BIO *b = BIO_new_mem_buf(pem, (int)len);
  X509 *last = NULL, *x;
  while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    X509_free(last);
    last = x;
  }
  ERR_clear_error(); /* the end of the stream reads as an error */
  BIO_free(b);
  if (last == NULL) return -EINVAL;
  char cn[PX_ACME_CHAIN_CN_MAX + 1];
  int n = X509_NAME_get_text_by_NID(X509_get_issuer_name(last), NID_commonName, cn, sizeof(cn));
  X509_free(last);
  if (n <= 0) return -EINVAL;
  if ((size_t)n >= cap) return -ENOSPC;
  memcpy(out, cn, (size_t)n + 1);
  return 0;
}
