/*
 * base64url without padding (RFC 4648 §5, as JOSE uses it: RFC 7515 §2).
 */
#ifndef PX_ACME_B64URL_H
#define PX_ACME_B64URL_H

#include <stddef.h>
#include <stdint.h>

/** Characters needed to encode `len` bytes, without the terminating NUL. */
size_t px_b64url_encoded_len(size_t len);

/**
 * Encodes `len` bytes into `out` (capacity `cap`, at least
 * px_b64url_encoded_len(len) + 1) and NUL-terminates it. Returns the number
 * of characters written, or (size_t)-1 when `cap` is too small.
 */
size_t px_b64url_encode(const void *in, size_t len, char *out, size_t cap);

/** Like px_b64url_encode() into a malloc'd NUL-terminated string; NULL on
 *  allocation failure. */
char *px_b64url_encode_alloc(const void *in, size_t len);

/**
 * Decodes `len` characters of unpadded base64url into `out` (capacity
 * `cap`). Refuses padding, whitespace, characters outside the alphabet, a
 * length of 4k+1 and non-zero unused trailing bits, so each byte string has
 * exactly one accepted encoding. Returns 0 and sets `*out_len`, -EINVAL for
 * input that is not base64url, or -ENOSPC when `cap` is too small.
 */
int px_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len);

#endif
