/*
 * Certificate signing requests for RFC 8555 §7.4 finalize.
 *
 * Certificate keys are px_acme_key (acme/proto/key.h): p256 (default), p384,
 * rsa2048, rsa3072 or rsa4096, serialised as PEM PKCS#8 with
 * px_acme_key_to_pem()/px_acme_key_from_pem(). A certificate key is never the
 * account key; px_acme_csr_der() refuses to sign with it.
 *
 * Error convention (acme/errors.h): 0 on success, a negative PX_ACME_CSR_E*
 * code otherwise.
 */
#ifndef PX_ACME_CSR_H
#define PX_ACME_CSR_H

#include <stddef.h>
#include <stdint.h>

#include "acme/proto/key.h"

/** Most names in one CSR (Let's Encrypt's limit per certificate). */
#define PX_ACME_CSR_MAX_NAMES 100

enum {
  PX_ACME_CSR_EINVAL = -1,   /* no names, too many, or a bad name */
  PX_ACME_CSR_EACCOUNT = -2, /* the certificate key is the account key */
  PX_ACME_CSR_ECRYPTO = -3,  /* BoringSSL failed (allocation, signing) */
};

/** Generates a certificate key of `type` (a thin alias of
 *  px_acme_key_generate, named for what it is used for). */
px_acme_key *px_acme_cert_key_generate(px_acme_key_type type);

/**
 * Builds a PKCS#10 CSR (RFC 2986) for `names` (each accepted by
 * px_acme_cert_name_ok: a normalised DNS name, "*." and one, or a canonical
 * IP name), as subjectAltName dNSName entries (RFC 8555 §7.4) or iPAddress
 * entries for addresses (RFC 8738 §3). With `with_cn`, the subject is
 * CN=names[0] when it fits (64 bytes, RFC 5280 ub-common-name) and is not an
 * address; else the subject is empty. Signed by `cert_key` (SHA-256, or SHA-384 for P-384).
 * `account` may be NULL; when given, the call fails if it is the same key.
 * The DER is malloc'd into `*der`, length `*der_len`.
 */
int px_acme_csr_der(const px_acme_key *cert_key, const char *const *names, size_t n_names,
                    int with_cn, const px_acme_key *account, uint8_t **der, size_t *der_len);

/** Like px_acme_csr_der, returning the base64url DER the "csr" field of a
 *  finalize request carries (RFC 8555 §7.4), malloc'd; NULL on failure. */
char *px_acme_csr_b64url(const px_acme_key *cert_key, const char *const *names, size_t n_names,
                         int with_cn, const px_acme_key *account);

/** True when `name` is a normalised DNS name or "*." plus one. */
int px_acme_csr_name_ok(const char *name);

#endif
