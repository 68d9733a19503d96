/*
 * tls-alpn-01 challenge certificates (RFC 8737 §3).
 *
 * The interface is BoringSSL-free: the certificate and its key come back as
 * DER in malloc'd buffers, so the ACME side can hand them to the TLS side
 * (or store them) without seeing a BoringSSL type.
 *
 * Error convention: 0 on success or a negative errno (-EINVAL, -ENOMEM).
 */
#ifndef PX_TLS_CHALLENGE_CERT_H
#define PX_TLS_CHALLENGE_CERT_H

#include <stddef.h>
#include <stdint.h>

/** The OID of id-pe-acmeIdentifier (RFC 8737 §6.1). */
#define PX_TLS_ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

/** How long a challenge certificate is valid for, in seconds. Validators
 *  do not check it (RFC 8737 §3); it is short so a leaked one is useless. */
#define PX_TLS_CHALLENGE_CERT_LIFETIME (7 * 24 * 3600)

typedef struct px_tls_challenge_cert {
  uint8_t *cert_der; /**< self-signed X.509 certificate, DER */
  size_t cert_len;
  uint8_t *key_der; /**< its fresh P-256 key, PKCS#8 PrivateKeyInfo DER */
  size_t key_len;
} px_tls_challenge_cert;

/**
 * Builds the RFC 8737 §3 certificate for `name` (a normalised DNS name, no
 * wildcard): subjectAltName dNSName = name, and a critical acmeIdentifier
 * extension whose value is the DER OCTET STRING of SHA-256(key
 * authorization). `now` is the current Unix time (notBefore is an hour
 * earlier to absorb clock skew). On success `out` owns two malloc'd buffers;
 * release them with px_tls_challenge_cert_dispose().
 */
int px_tls_challenge_cert_new(const char *name, const char *key_authorization, size_t ka_len,
                              int64_t now, px_tls_challenge_cert *out);

/** Frees (and wipes the key of) a certificate from _new; safe to call twice. */
void px_tls_challenge_cert_dispose(px_tls_challenge_cert *cert);

#endif
