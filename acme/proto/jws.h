/*
 * JOSE for ACME: the account key as a JWK (RFC 7517/7518 §6.2), its
 * thumbprint (RFC 7638), key authorizations (RFC 8555 §8.1), ES256 JWS in
 * the flattened JSON serialisation (RFC 8555 §6.2, RFC 7515 §7.2.2) and the
 * HS256 external account binding (RFC 8555 §7.3.4).
 *
 * Error convention (acme/errors.h): NULL or a negative errno on failure,
 * except the verifiers, which return 1 for a valid signature and 0
 * otherwise.
 * Nothing here logs: key authorizations, EAB keys and payloads are secret
 * enough to stay out of logs.
 */
#ifndef PX_ACME_JWS_H
#define PX_ACME_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "acme/proto/key.h"

/** Length of a SHA-256 thumbprint in base64url, without the NUL. */
#define PX_ACME_THUMBPRINT_LEN 43

/** Generates an account key: always P-256, so that it signs ES256. */
px_acme_key *px_acme_account_key_generate(void);

/** The public JWK of a P-256 key, {"crv","kty","x","y"} (new reference);
 *  NULL for any other key type. */
json_t *px_acme_jwk(const px_acme_key *key);

/** Writes the RFC 7638 thumbprint (base64url of SHA-256 over the JWK's
 *  required members in lexicographic order, no whitespace) to `out`. */
int px_acme_jwk_thumbprint(const px_acme_key *key, char out[PX_ACME_THUMBPRINT_LEN + 1]);

/** token || "." || thumbprint (RFC 8555 §8.1), malloc'd; NULL when the
 *  token is not base64url of 1..128 characters. */
char *px_acme_key_authorization(const char *token, const px_acme_key *account);

/**
 * Builds a flattened JWS (RFC 8555 §6.2) signed ES256 with `account`.
 * The protected header carries alg, nonce, url and `kid` when it is not
 * NULL, else the account's jwk (newAccount, revokeCert by certificate key).
 * `payload` is the JSON text to sign; pass "" for POST-as-GET (§6.3).
 * Returns the malloc'd compact JSON text.
 */
char *px_acme_jws_sign(const px_acme_key *account, const char *url, const char *nonce,
                       const char *kid, const char *payload);

/**
 * The externalAccountBinding object for a newAccount payload (RFC 8555
 * §7.3.4): an HS256 JWS over the account JWK, with {alg, kid, url} in its
 * protected header. `hmac_b64url` is the key as the CA hands it out
 * (base64url). Returns a new reference, or NULL (also for a bad key).
 */
json_t *px_acme_jws_eab(const px_acme_key *account, const char *eab_kid, const char *hmac_b64url,
                        const char *url);

/** HMAC-SHA-256 of `len` bytes with `key` (RFC 7518 §3.2). */
int px_acme_hs256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                  uint8_t out[32]);

/** Verifies an ES256 signature (R||S in base64url, RFC 7518 §3.4) over
 *  `len` bytes with the P-256 public JWK `jwk`. 1 when valid, else 0. */
int px_acme_es256_verify(const json_t *jwk, const void *input, size_t len, const char *sig_b64url);

/** Verifies a flattened ES256 JWS with `jwk`; on success (1) and when
 *  `protected_out` is not NULL, stores the decoded protected header there
 *  (new reference). Returns 0 when anything is wrong. */
int px_acme_jws_verify(const char *jws, const json_t *jwk, json_t **protected_out);

#endif
