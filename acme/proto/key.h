/*
 * Private keys for accounts and certificates, held opaquely so that callers
 * outside acme/ never see a BoringSSL type.
 *
 * Error convention (acme/errors.h): constructors return NULL on failure;
 * px_acme_key_type_parse returns a type or -EINVAL; px_acme_key_equal is a
 * yes/no answer.
 */
#ifndef PX_ACME_KEY_H
#define PX_ACME_KEY_H

#include <stddef.h>
#include <stdint.h>

/** The key types Let's Encrypt accepts for certificates (its integration
 *  guide); accounts always use P-256 (ES256). */
typedef enum px_acme_key_type {
  PX_ACME_KEY_P256 = 0,
  PX_ACME_KEY_P384,
  PX_ACME_KEY_RSA2048,
  PX_ACME_KEY_RSA3072,
  PX_ACME_KEY_RSA4096,
} px_acme_key_type;

typedef struct px_acme_key px_acme_key;

/** Generates a fresh key of `type`. */
px_acme_key *px_acme_key_generate(px_acme_key_type type);

/** Parses a PEM "PRIVATE KEY" (PKCS#8, RFC 5958) of `len` bytes; NULL when it
 *  is not a P-256, P-384 or RSA 2048/3072/4096 key. */
px_acme_key *px_acme_key_from_pem(const char *pem, size_t len);

/** Parses a DER PKCS#8 PrivateKeyInfo; same key types as _from_pem. */
px_acme_key *px_acme_key_from_der(const uint8_t *der, size_t len);

/** Serialises to PEM PKCS#8: a malloc'd NUL-terminated string (free it with
 *  px_acme_key_pem_free, which wipes it), length in `*len`. */
char *px_acme_key_to_pem(const px_acme_key *key, size_t *len);

/** Wipes and frees a string from px_acme_key_to_pem. */
void px_acme_key_pem_free(char *pem, size_t len);

/** The key's type. */
px_acme_key_type px_acme_key_get_type(const px_acme_key *key);

/** Parses "p256|p384|rsa2048|rsa3072|rsa4096"; -EINVAL for anything else. */
int px_acme_key_type_parse(const char *s);

/** The configuration name of a key type ("p256", ...). */
const char *px_acme_key_type_name(px_acme_key_type type);

/** True when both keys have the same public key. */
int px_acme_key_equal(const px_acme_key *a, const px_acme_key *b);

/** Frees a key (NULL is fine). */
void px_acme_key_free(px_acme_key *key);

/** For acme/ internals only: the underlying EVP_PKEY (borrowed). */
struct evp_pkey_st *px__acme_key_evp(const px_acme_key *key);

#endif
