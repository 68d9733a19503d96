/*
 * Choosing among the chains a CA offers (RFC 8555 §7.4.2: the default
 * chain and Link rel="alternate" ones), by the issuer of the topmost
 * certificate, as `acme.preferred_chain` asks.
 *
 * Error convention (acme/errors.h): 0, or a negative errno.
 */
#ifndef PX_ACME_PROTO_CHAIN_H
#define PX_ACME_PROTO_CHAIN_H

#include <stddef.h>

/** Longest issuer common name compared. */
#define PX_ACME_CHAIN_CN_MAX 128

/**
 * Writes the commonName of the issuer of the last certificate in the PEM
 * chain `pem` (`len` bytes) to `out`. 0, -EINVAL when no certificate
 * parses or it has no issuer CN, -ENOSPC when `out` is too small.
 */
int px_acme_chain_top_issuer(const char *pem, size_t len, char *out, size_t cap);

#endif
