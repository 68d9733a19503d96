#include "tls/keygen.h"

#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>

EVP_PKEY *px_tls_ec_key_new(int nid) {
  EC_KEY *ec = EC_KEY_new_by_curve_name(nid);
  EVP_PKEY *pkey = EVP_PKEY_new();
  if (ec == NULL || pkey == NULL || !EC_KEY_generate_key(ec) || !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
    EC_KEY_free(ec);
    EVP_PKEY_free(pkey);
    return NULL;
  }
  return pkey; /* owns ec now */
}
