/*
 * An immutable, refcounted certificate: the chain as CRYPTO_BUFFERs (leaf
 * first) and its private key. Shared between threads; published to workers
 * by pointer, freed when the last reference goes.
 */
#ifndef PX_TLS_CERT_H
#define PX_TLS_CERT_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_tls_cert px_tls_cert;

/**
 * Builds a certificate from PEM text (chain, leaf first) and a PEM key,
 * checking that the key matches the leaf. NULL on failure, with a sentence
 * in `err` ("no PEM certificate", "the key does not match").
 */
px_tls_cert *px_tls_cert_from_pem(const char *chain_pem, size_t chain_len, const char *key_pem,
                                  size_t key_len, char *err, size_t errlen);

/** Builds a certificate from one DER certificate and a DER PKCS#8 key. */
px_tls_cert *px_tls_cert_from_der(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
                                  size_t key_len);

/** Loads PEM files; errors name the file. */
px_tls_cert *px_tls_cert_load_files(const char *cert_file, const char *key_file, char *err,
                                    size_t errlen);

/**
 * True (1) when the leaf's subjectAltName has a dNSName that covers `name`
 * (lowercase, no trailing dot): an equal entry (ASCII case-insensitive), or
 * a "*." entry whose "*" stands for exactly the first label of `name`
 * (RFC 6125 §6.4.3; no partial-label wildcards, no CN fallback). A name
 * that is itself "*.example.com" is covered only by that same entry.
 * A canonical IP name (tls/ipname.h) is covered only by an iPAddress entry
 * of the same address.
 */
int px_tls_cert_covers(const px_tls_cert *c, const char *name);

/** The leaf certificate parsed anew: the caller frees it (X509_free). NULL
 *  when out of memory. */
struct x509_st *px_tls_cert_leaf(const px_tls_cert *c);

/** The leaf's notAfter as seconds since the epoch (0 if unknown). */
int64_t px_tls_cert_not_after(const px_tls_cert *c);

/** The leaf's serial number in hex (for logs and tests), or "". */
const char *px_tls_cert_serial(const px_tls_cert *c);

/** Takes a reference. */
px_tls_cert *px_tls_cert_ref(px_tls_cert *c);

/** Drops a reference (NULL is fine). */
void px_tls_cert_unref(px_tls_cert *c);

#endif
