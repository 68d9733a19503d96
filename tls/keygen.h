/*
 * Fresh private keys, for the ACME account and certificate keys (acme/) and
 * the tls-alpn-01 challenge certificates (tls/challenge_cert.c).
 */
#ifndef PX_TLS_KEYGEN_H
#define PX_TLS_KEYGEN_H

#include <openssl/base.h>

/** A new EC key on curve `nid` (NID_X9_62_prime256v1, NID_secp384r1), or
 *  NULL when the curve is unknown or generation fails. */
EVP_PKEY *px_tls_ec_key_new(int nid);

#endif
