/*
 * ACME Renewal Information (ARI, RFC 9773): the certificate identifier, the
 * renewalInfo response, and the facts about a leaf certificate that the
 * renewal schedule needs.
 *
 * Times are int64_t seconds since the Unix epoch (UTC). A Retry-After on a
 * renewalInfo response is parsed with px_acme_retry_after (acme/proto/problem.h).
 *
 * Error convention: 0 on success, -1 when the input is refused (too long,
 * malformed, or lacking what RFC 9773 requires). Nothing here logs.
 */
#ifndef PX_ACME_PROTO_ARI_H
#define PX_ACME_PROTO_ARI_H

#include <stddef.h>
#include <stdint.h>

struct x509_st;

/** Room for a certificate ID: base64url of a key identifier (at most 64
 *  bytes accepted) "." base64url of a serial (RFC 5280 §4.1.2.2: at most 20
 *  octets, 21 with a leading zero; 32 accepted), and a NUL. */
#define PX_ARI_CERT_ID_MAX 136
/** Largest renewalInfo body parsed (a window and a URL fit in far less). */
#define PX_ARI_BODY_MAX 16384
/** Longest explanationURL kept. */
#define PX_ARI_URL_MAX 1024

/** What the lifecycle needs to know about a leaf certificate. */
typedef struct px_ari_cert_info {
  char cert_id[PX_ARI_CERT_ID_MAX]; /**< the ARI certificate ID, "" without an AKI */
  int64_t not_before;               /**< notBefore */
  int64_t not_after;                /**< notAfter */
} px_ari_cert_info;

/** A parsed renewalInfo response (RFC 9773 §4.2). */
typedef struct px_ari_info {
  int64_t window_start;                 /**< suggestedWindow.start */
  int64_t window_end;                   /**< suggestedWindow.end (> start) */
  char explanation_url[PX_ARI_URL_MAX]; /**< explanationURL, or "" */
} px_ari_info;

/**
 * The certificate ID (RFC 9773 §4.1) from its two parts: base64url of the
 * Authority Key Identifier's keyIdentifier, ".", base64url of the serial
 * number's DER INTEGER content octets (without tag and length, so with the
 * leading zero when the high bit is set). Writes it NUL-terminated to `out`.
 */
int px_ari_cert_id_from_parts(const uint8_t *key_id, size_t key_id_len, const uint8_t *serial,
                              size_t serial_len, char *out, size_t cap);

/** The certificate ID of a leaf; -1 when it has no AKI keyIdentifier (then
 *  ARI cannot be used for it). */
int px_ari_cert_id(struct x509_st *leaf, char *out, size_t cap);

/** The certificate ID and validity of a leaf. A missing AKI leaves cert_id
 *  empty and is not an error; unreadable validity is. */
int px_ari_cert_info_from_x509(struct x509_st *leaf, px_ari_cert_info *out);

/** Like px_ari_cert_info_from_x509 for the first certificate of a PEM
 *  chain (cert.pem as the store holds it). */
int px_ari_cert_info_from_pem(const char *pem, size_t len, px_ari_cert_info *out);

/**
 * Parses a renewalInfo response body: a JSON object with suggestedWindow
 * {start, end} as RFC 3339 date-times, end after start, and an optional
 * explanationURL (printable ASCII, at most PX_ARI_URL_MAX - 1 characters;
 * longer or unprintable ones are dropped, not fatal). Unknown members are
 * ignored. Refuses bodies over PX_ARI_BODY_MAX bytes.
 */
int px_ari_parse(const char *body, size_t len, px_ari_info *out);

/**
 * Parses an RFC 3339 date-time ("2025-01-02T04:00:00Z", optional fraction
 * of a second, "Z" or a +hh:mm/-hh:mm offset, 't'/'z' accepted per §5.6)
 * into seconds since the epoch; fractions are truncated. Leap second 60 is
 * accepted as 59.
 */
int px_ari_parse_time(const char *s, size_t len, int64_t *out);

/** The renewalInfo URL for a certificate: `base` "/" `cert_id`, malloc'd;
 *  NULL when out of memory. */
char *px_ari_url(const char *base, const char *cert_id);

#endif
