/*
 * base64url, RFC 4648 §5, no padding (RFC 7515 §2 and Appendix C).
 */
#include "acme/proto/b64url.h"

#include <errno.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t px_b64url_encoded_len(size_t len) { return len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0); }

size_t px_b64url_encode(const void *in, size_t len, char *out, size_t cap) {
  const uint8_t *p = in;
  size_t n = px_b64url_encoded_len(len), o = 0, i;

  if (cap < n + 1 || n < len) /* n < len: the length overflowed */
    return (size_t)-1;
  for (i = 0; i + 2 < len; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = alphabet[v >> 6 & 63];
    out[o++] = alphabet[v & 63];
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)p[i] << 16;
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
    out[o++] = alphabet[v >> 18 & 63];
    out[o++] = alphabet[v >> 12 & 63];
    out[o++] = alphabet[v >> 6 & 63];
  }
  out[o] = '\0';
  return o;
}

char *px_b64url_encode_alloc(const void *in, size_t len) {
  size_t n = px_b64url_encoded_len(len) + 1;
  char *out;

  if (n <= len && len > 0) return NULL;
  out = malloc(n);
  if (out == NULL) return NULL;
  if (px_b64url_encode(in, len, out, n) == (size_t)-1) {
    free(out);
    return NULL;
  }
  return out;
}

static int value_of(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

int px_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len) {
  size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), o = 0, i;
  uint32_t acc = 0;
  int bits = 0;

  if (len % 4 == 1) return -EINVAL;
  if (cap < need) return -ENOSPC;
  for (i = 0; i < len; i++) {
    int v = value_of((unsigned char)in[i]);
    if (v < 0) return -EINVAL;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  /* The leftover bits must be zero (RFC 4648 §3.5), else two strings would
   * decode to the same bytes. */
  if (acc != 0) return -EINVAL;
  *out_len = o;
  return 0;
}
