/*
 * TSIG (RFC 8945): signing a request and checking the server's signed
 * answer with a shared HMAC key (hmac-sha256, hmac-sha512, hmac-sha1).
 *
 * Error convention (acme/errors.h): 0 on success, a negative errno on
 * failure; px_dns_tsig_key_load writes a sentence for the user.
 */
#ifndef PX_ACME_DNS_TSIG_H
#define PX_ACME_DNS_TSIG_H

#include <stddef.h>
#include <stdint.h>

#include "acme/dns/wire.h"

/** Longest secret accepted, in bytes after base64 decoding. */
#define PX_DNS_TSIG_SECRET_MAX 128
/** Largest MAC (HMAC-SHA512). */
#define PX_DNS_TSIG_MAC_MAX 64
/** Seconds of clock difference allowed (RFC 8945 §10: 300 recommended). */
#define PX_DNS_TSIG_FUDGE 300

/** The algorithms (RFC 8945 §6). */
typedef enum px_dns_tsig_alg {
  PX_DNS_HMAC_SHA256 = 1,
  PX_DNS_HMAC_SHA1,
  PX_DNS_HMAC_SHA512,
} px_dns_tsig_alg;

/** A key: its name, algorithm and secret (wiped by px_dns_tsig_key_wipe). */
typedef struct px_dns_tsig_key {
  char name[PX_DNS_NAME_MAX + 1];
  px_dns_tsig_alg alg;
  uint8_t secret[PX_DNS_TSIG_SECRET_MAX];
  size_t secret_len;
} px_dns_tsig_key;

/** "hmac-sha256", "hmac-sha512" or "hmac-sha1" to its value; -1 for any
 *  other string. */
int px_dns_tsig_alg_parse(const char *s);

/** The algorithm's name as it goes on the wire ("hmac-sha256"). */
const char *px_dns_tsig_alg_name(px_dns_tsig_alg alg);

/**
 * Reads the secret from `path`: either a BIND key file (`key "NAME" {
 * algorithm ...; secret "BASE64"; };`) or the base64 secret alone. Fills
 * k->secret; name and algorithm are the caller's. 0, or -1 with a sentence
 * in `err`.
 */
int px_dns_tsig_key_load(const char *path, px_dns_tsig_key *k, char *err, size_t errlen);

/** Decodes a base64 secret (`text`, `len` bytes) into k->secret; 0 or -EINVAL. */
int px_dns_tsig_secret_decode(const char *text, size_t len, px_dns_tsig_key *k);

/** Zeroes the secret. */
void px_dns_tsig_key_wipe(px_dns_tsig_key *k);

/**
 * Signs `m` (RFC 8945 §5.1): appends the TSIG record with `now` as the time
 * signed and raises ARCOUNT. The MAC is copied to `mac` (capacity
 * PX_DNS_TSIG_MAC_MAX) for checking the answer. 0, -ENOSPC or -EINVAL.
 */
int px_dns_tsig_sign(px_dns_msg *m, const px_dns_tsig_key *k, int64_t now, uint8_t *mac,
                     size_t *mac_len);

/**
 * Checks the TSIG record of an answer to a request signed with `req_mac`
 * (RFC 8945 §5.3): 0 when the MAC is right; -ENOENT when the answer has no
 * TSIG; -EPERM when the MAC is wrong; -EBADMSG when the record is malformed.
 * The TSIG error field (BADSIG, BADKEY, BADTIME, or 0) goes to *tsig_error
 * whenever the record could be read.
 */
int px_dns_tsig_verify(const uint8_t *msg, size_t len, const px_dns_answer *a,
                       const px_dns_tsig_key *k, const uint8_t *req_mac, size_t req_mac_len,
                       int *tsig_error);

#endif
