/*
 * Loading a cached certificate for serving (docs/cache.md, "Loading"):
 * what the load path refuses, repairs and quarantines on top of the
 * store's own rules (acme/store_fs.c: no symlinks, loose modes repaired).
 *
 * Error convention (acme/errors.h): a pointer or NULL; every reason for a
 * NULL other than "absent" is logged with the name and what happens next.
 * Blocking file I/O: the certificate-manager thread only.
 */
#ifndef PX_ACME_CACHE_LOAD_H
#define PX_ACME_CACHE_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "acme/store.h"
#include "tls/cert.h"

/**
 * Loads certs/<name>/{cert.pem,key.pem} and checks them: the whole chain
 * parses (px_tls_cert_from_pem refuses any PEM error), the key matches the
 * leaf, and the leaf covers `name` (px_tls_cert_covers). Anything else is
 * quarantined (cert.pem, key.pem and meta.json) with a warning naming the
 * reason, and NULL is returned so the caller orders a new certificate.
 * A meta.json that is not a JSON object is quarantined on its own
 * (px_acme_cache_check_meta). NULL, silently, when nothing is cached.
 */
px_tls_cert *px_acme_cache_load_cert(px_store *s, const char *name);

/**
 * Checks certs/<name>/meta.json: absent or a JSON object (with "names", if
 * present, a list of strings) is fine; anything else is quarantined with
 * a warning, so later readers find it absent. Returns 1 when a usable
 * meta.json remains, else 0.
 */
int px_acme_cache_check_meta(px_store *s, const char *name);

/**
 * Writes how long a certificate has left, for log lines: "has expired"
 * only when not_after <= now, else "expires in N minutes" (or hours, or
 * days, rounded down).
 */
void px_acme_expiry_phrase(int64_t not_after, int64_t now, char *out, size_t cap);

#endif
