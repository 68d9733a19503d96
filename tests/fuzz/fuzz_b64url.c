/*
 * base64url (RFC 4648 §5, unpadded) as ACME uses it: decoding what a CA
 * sends (tokens, JWS parts) and encoding what portico signs.
 *
 * Oracle beyond the sanitizers: decoding is strict (one accepted encoding per
 * byte string), so whatever decodes re-encodes to the same text; and any
 * bytes encode to text that decodes back to them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/proto/b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t cap = size, out_len = 0;
  uint8_t *out = malloc(cap ? cap : 1);
  if (out == NULL) return 0;
  if (px_b64url_decode(in, size, out, cap, &out_len) == 0) {
    if (out_len > cap) abort();
    char *again = px_b64url_encode_alloc(out, out_len);
    if (again == NULL || strlen(again) != size || memcmp(again, in, size) != 0) abort();
    free(again);
    /* One byte short of the decoded length must be refused, not overrun. */
    if (out_len > 0 && px_b64url_decode(in, size, out, out_len - 1, &cap) == 0) abort();
  }
  free(out);

  char *enc = px_b64url_encode_alloc(data, size);
  if (enc == NULL) return 0;
  size_t elen = strlen(enc);
  if (elen != px_b64url_encoded_len(size)) abort();
  uint8_t *dec = malloc(size ? size : 1);
  if (dec == NULL || px_b64url_decode(enc, elen, dec, size, &out_len) != 0 || out_len != size ||
      memcmp(dec, data, size) != 0)
    abort();
  free(dec);
  free(enc);
  return 0;
}
