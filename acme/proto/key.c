/*
 * Account and certificate private keys (PKCS#8, RFC 5958).
 */
#include "acme/proto/key.h"
#include "tls/keygen.h"
#include "tls/unconst.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

struct px_acme_key {
  EVP_PKEY *pkey;
  px_acme_key_type type;
};

static const char *const type_names[] = {"p256", "p384", "rsa2048", "rsa3072", "rsa4096"};

static px_acme_key *wrap(EVP_PKEY *pkey, px_acme_key_type type) {
  px_acme_key *k = malloc(sizeof(*k));
  if (k == NULL) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  k->pkey = pkey;
  k->type = type;
  return k;
}

static EVP_PKEY *gen_rsa(unsigned bits) {
  RSA *rsa = RSA_new();
  BIGNUM *e = BN_new();
  EVP_PKEY *pkey = EVP_PKEY_new();
  if (rsa == NULL || e == NULL || pkey == NULL || !BN_set_word(e, RSA_F4) ||
      !RSA_generate_key_ex(rsa, (int)bits, e, NULL) || !EVP_PKEY_assign_RSA(pkey, rsa)) {
    RSA_free(rsa);
    BN_free(e);
    EVP_PKEY_free(pkey);
    return NULL;
  }
  BN_free(e);
  return pkey;
}

px_acme_key *px_acme_key_generate(px_acme_key_type type) {
  EVP_PKEY *pkey = NULL;
  switch (type) {
  case PX_ACME_KEY_P256:
    pkey = px_tls_ec_key_new(NID_X9_62_prime256v1);
    break;
  case PX_ACME_KEY_P384:
    pkey = px_tls_ec_key_new(NID_secp384r1);
    break;
  case PX_ACME_KEY_RSA2048:
    pkey = gen_rsa(2048);
    break;
  case PX_ACME_KEY_RSA3072:
    pkey = gen_rsa(3072);
    break;
  case PX_ACME_KEY_RSA4096:
    pkey = gen_rsa(4096);
    break;
  }
  return pkey == NULL ? NULL : wrap(pkey, type);
}

/* Accepts only the key types we issue with, so a tampered cache file cannot
 * hand us, say, a 512-bit RSA key. */
static px_acme_key *wrap_checked(EVP_PKEY *pkey) {
  int t = -1;
  if (pkey == NULL) return NULL;
  if (EVP_PKEY_id(pkey) == EVP_PKEY_EC) {
    const EC_GROUP *g = EC_KEY_get0_group(EVP_PKEY_get0_EC_KEY(pkey));
    int nid = g == NULL ? NID_undef : EC_GROUP_get_curve_name(g);
    t = nid == NID_X9_62_prime256v1 ? PX_ACME_KEY_P256
        : nid == NID_secp384r1      ? PX_ACME_KEY_P384
                                    : -1;
  } else if (EVP_PKEY_id(pkey) == EVP_PKEY_RSA) {
    unsigned bits = EVP_PKEY_bits(pkey);
    t = bits == 2048   ? PX_ACME_KEY_RSA2048
        : bits == 3072 ? PX_ACME_KEY_RSA3072
        : bits == 4096 ? PX_ACME_KEY_RSA4096
                       : -1;
  }
  if (t < 0) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  return wrap(pkey, (px_acme_key_type)t);
}

px_acme_key *px_acme_key_from_der(const uint8_t *der, size_t len) {
  CBS cbs;
  EVP_PKEY *pkey;
  CBS_init(&cbs, der, len);
  pkey = EVP_parse_private_key(&cbs);
  if (pkey != NULL && CBS_len(&cbs) != 0) {
    EVP_PKEY_free(pkey);
    return NULL;
  }
  return wrap_checked(pkey);
}

px_acme_key *px_acme_key_from_pem(const char *pem, size_t len) {
  BIO *bio;
  EVP_PKEY *pkey;
  if (len > INT32_MAX) return NULL;
  bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return NULL;
  pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
  BIO_free(bio);
  return wrap_checked(pkey);
}

char *px_acme_key_to_pem(const px_acme_key *key, size_t *len) {
  BIO *bio = BIO_new(BIO_s_mem());
  const uint8_t *data;
  size_t n;
  char *out = NULL;

  if (bio == NULL) return NULL;
  if (PEM_write_bio_PKCS8PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) &&
      BIO_mem_contents(bio, &data, &n) && (out = malloc(n + 1)) != NULL) {
    memcpy(out, data, n);
    out[n] = '\0';
    *len = n;
  }
  /* The memory BIO held the key in clear: wipe it before freeing. */
  if (BIO_mem_contents(bio, &data, &n)) OPENSSL_cleanse(px_unconst(data), n);
  BIO_free(bio);
  return out;
}

void px_acme_key_pem_free(char *pem, size_t len) {
  if (pem == NULL) return;
  OPENSSL_cleanse(pem, len);
  free(pem);
}

px_acme_key_type px_acme_key_get_type(const px_acme_key *key) { return key->type; }

int px_acme_key_type_parse(const char *s) {
  size_t i;
  for (i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++) {
    if (strcmp(s, type_names[i]) == 0) return (int)i;
  }
  return -EINVAL;
}

const char *px_acme_key_type_name(px_acme_key_type type) {
  return (unsigned)type < sizeof(type_names) / sizeof(type_names[0]) ? type_names[type] : "?";
}

int px_acme_key_equal(const px_acme_key *a, const px_acme_key *b) {
  return EVP_PKEY_cmp(a->pkey, b->pkey) == 1;
}

void px_acme_key_free(px_acme_key *key) {
  if (key == NULL) return;
  EVP_PKEY_free(key->pkey);
  free(key);
}

struct evp_pkey_st *px__acme_key_evp(const px_acme_key *key) {
  return key->pkey;
}
