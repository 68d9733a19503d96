/*
 * ES256 JWS and friends for RFC 8555. The signature is R||S, 32 bytes each,
 * not DER (RFC 7518 §3.4): ACME servers reject a DER signature.
 */
#include "acme/proto/jws.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/sha.h>

#include "acme/proto/b64url.h"

#define COORD_LEN 32
/* An EAB HMAC key is 32 to 64 bytes in practice; allow generous room. */
#define EAB_KEY_MAX 256
#define TOKEN_MAX 128

px_acme_key *px_acme_account_key_generate(void) { return px_acme_key_generate(PX_ACME_KEY_P256); }

static const EC_KEY *p256_of(const px_acme_key *key) {
  EVP_PKEY *pkey = px__acme_key_evp(key);
  if (px_acme_key_get_type(key) != PX_ACME_KEY_P256 || EVP_PKEY_id(pkey) != EVP_PKEY_EC)
    return NULL;
  return EVP_PKEY_get0_EC_KEY(pkey);
}

json_t *px_acme_jwk(const px_acme_key *key) {
  const EC_KEY *ec = p256_of(key);
  uint8_t pt[1 + 2 * COORD_LEN];
  char x[48], y[48];

  if (ec == NULL ||
      EC_POINT_point2oct(EC_KEY_get0_group(ec), EC_KEY_get0_public_key(ec),
                         POINT_CONVERSION_UNCOMPRESSED, pt, sizeof(pt), NULL) != sizeof(pt))
    return NULL;
  /* Fixed-width coordinates (RFC 7518 §6.2.1.2), straight from X9.62. */
  px_b64url_encode(pt + 1, COORD_LEN, x, sizeof(x));
  px_b64url_encode(pt + 1 + COORD_LEN, COORD_LEN, y, sizeof(y));
  return json_pack("{s:s, s:s, s:s, s:s}", "crv", "P-256", "kty", "EC", "x", x, "y", y);
}

/* Compact, sorted keys: the canonical form RFC 7638 §3 asks for, and a
 * deterministic protected header. */
static char *dump_canonical(const json_t *j) {
  return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
}

int px_acme_jwk_thumbprint(const px_acme_key *key, char out[PX_ACME_THUMBPRINT_LEN + 1]) {
  json_t *jwk = px_acme_jwk(key);
  char *text = jwk == NULL ? NULL : dump_canonical(jwk);
  uint8_t digest[SHA256_DIGEST_LENGTH];

  json_decref(jwk);
  if (text == NULL) return -ENOMEM;
  SHA256((const uint8_t *)text, strlen(text), digest);
  free(text);
  px_b64url_encode(digest, sizeof(digest), out, PX_ACME_THUMBPRINT_LEN + 1);
  return 0;
}

/* left "." right, malloc'd: the shape of both a key authorization and a
 * JWS signing input. */
static char *dot_join(const char *left, const char *right) {
  size_t a = strlen(left), b = strlen(right);
  char *s = malloc(a + 1 + b + 1);
  if (s == NULL) return NULL;
  memcpy(s, left, a);
  s[a] = '.';
  memcpy(s + a + 1, right, b + 1);
  return s;
}

static int token_ok(const char *t) {
  size_t n = strlen(t), i;
  if (n == 0 || n > TOKEN_MAX) return 0;
  for (i = 0; i < n; i++) {
    char c = t[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return 0;
  }
  return 1;
}

char *px_acme_key_authorization(const char *token, const px_acme_key *account) {
  char tp[PX_ACME_THUMBPRINT_LEN + 1];

  if (!token_ok(token) || px_acme_jwk_thumbprint(account, tp) != 0) return NULL;
  return dot_join(token, tp);
}

/* The encoded halves of a JWS and its signing input,
 * BASE64URL(protected) "." BASE64URL(payload) (RFC 7515 §5.1 step 5). */
typedef struct jws_parts {
  char *p64;
  char *pl64;
  char *input;
} jws_parts;

static void parts_free(jws_parts *jp) {
  free(jp->p64);
  free(jp->pl64);
  free(jp->input);
}

/* Encodes the header (canonical JSON) and the payload text. */
static int parts_encode(jws_parts *jp, const json_t *hdr, const char *payload) {
  char *hdr_text = dump_canonical(hdr);
  memset(jp, 0, sizeof(*jp));
  if (hdr_text == NULL) return -1;
  jp->p64 = px_b64url_encode_alloc(hdr_text, strlen(hdr_text));
  free(hdr_text);
  jp->pl64 = px_b64url_encode_alloc(payload, strlen(payload));
  if (jp->p64 == NULL || jp->pl64 == NULL) return -1;
  jp->input = dot_join(jp->p64, jp->pl64);
  return jp->input == NULL ? -1 : 0;
}

static int es256_sign(const EC_KEY *ec, const char *input, char *out, size_t cap) {
  uint8_t digest[SHA256_DIGEST_LENGTH], raw[2 * COORD_LEN];
  ECDSA_SIG *sig;
  int ok;

  SHA256((const uint8_t *)input, strlen(input), digest);
  sig = ECDSA_do_sign(digest, sizeof(digest), ec);
  if (sig == NULL) return -1;
  ok = BN_bn2bin_padded(raw, COORD_LEN, ECDSA_SIG_get0_r(sig)) &&
       BN_bn2bin_padded(raw + COORD_LEN, COORD_LEN, ECDSA_SIG_get0_s(sig));
  ECDSA_SIG_free(sig);
  if (!ok || px_b64url_encode(raw, sizeof(raw), out, cap) == (size_t)-1) return -1;
  return 0;
}

/* Assembles {"payload","protected","signature"} from the encoded parts. */
static json_t *flattened(const char *p64, const char *pl64, const char *s64) {
  return json_pack("{s:s, s:s, s:s}", "payload", pl64, "protected", p64, "signature", s64);
}

char *px_acme_jws_sign(const px_acme_key *account, const char *url, const char *nonce,
                       const char *kid, const char *payload) {
  const EC_KEY *ec = p256_of(account);
  json_t *hdr = NULL, *jws = NULL;
  jws_parts jp = {0};
  char *out = NULL;
  char s64[100];

  if (ec == NULL || url == NULL || nonce == NULL || payload == NULL) return NULL;
  hdr = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "nonce", nonce, "url", url);
  if (hdr == NULL) goto done;
  /* RFC 8555 §6.2: exactly one of jwk and kid. */
  if (kid != NULL ? json_object_set_new(hdr, "kid", json_string(kid)) != 0
                  : json_object_set_new(hdr, "jwk", px_acme_jwk(account)) != 0)
    goto done;
  /* POST-as-GET (RFC 8555 §6.3) signs an empty payload, encoded as "". */
  if (parts_encode(&jp, hdr, payload) != 0 || es256_sign(ec, jp.input, s64, sizeof(s64)) != 0)
    goto done;
  jws = flattened(jp.p64, jp.pl64, s64);
  if (jws != NULL) out = dump_canonical(jws);
done:
  json_decref(hdr);
  json_decref(jws);
  parts_free(&jp);
  return out;
}

int px_acme_hs256(const uint8_t *key, size_t key_len, const void *data, size_t len,
                  uint8_t out[32]) {
  unsigned out_len = 0;
  if (HMAC(EVP_sha256(), key, key_len, data, len, out, &out_len) == NULL || out_len != 32)
    return -EINVAL;
  return 0;
}

json_t *px_acme_jws_eab(const px_acme_key *account, const char *eab_kid, const char *hmac_b64url,
                        const char *url) {
  uint8_t key[EAB_KEY_MAX], mac[32];
  size_t key_len = 0;
  json_t *hdr = NULL, *jwk = NULL, *out = NULL;
  jws_parts jp = {0};
  char *jwk_text = NULL;
  char s64[48];

  if (eab_kid == NULL || hmac_b64url == NULL || url == NULL ||
      px_b64url_decode(hmac_b64url, strlen(hmac_b64url), key, sizeof(key), &key_len) != 0 ||
      key_len == 0)
    goto done;
  /* RFC 8555 §7.3.4: the payload is the account JWK, no nonce in the header. */
  jwk = px_acme_jwk(account);
  hdr = json_pack("{s:s, s:s, s:s}", "alg", "HS256", "kid", eab_kid, "url", url);
  jwk_text = jwk == NULL ? NULL : dump_canonical(jwk);
  if (hdr == NULL || jwk_text == NULL || parts_encode(&jp, hdr, jwk_text) != 0 ||
      px_acme_hs256(key, key_len, jp.input, strlen(jp.input), mac) != 0)
    goto done;
  px_b64url_encode(mac, sizeof(mac), s64, sizeof(s64));
  out = flattened(jp.p64, jp.pl64, s64);
done:
  OPENSSL_cleanse(key, sizeof(key));
  json_decref(hdr);
  json_decref(jwk);
  free(jwk_text);
  parts_free(&jp);
  return out;
}

static int coord(const json_t *jwk, const char *name, uint8_t out[COORD_LEN]) {
  const char *s = json_string_value(json_object_get(jwk, name));
  size_t n = 0;
  return s != NULL && px_b64url_decode(s, strlen(s), out, COORD_LEN, &n) == 0 && n == COORD_LEN;
}

int px_acme_es256_verify(const json_t *jwk, const void *input, size_t len, const char *sig_b64url) {
  uint8_t pt[1 + 2 * COORD_LEN], raw[2 * COORD_LEN], digest[SHA256_DIGEST_LENGTH];
  const char *kty = json_string_value(json_object_get(jwk, "kty"));
  const char *crv = json_string_value(json_object_get(jwk, "crv"));
  size_t raw_len = 0;
  EC_KEY *ec = NULL;
  EC_POINT *pub = NULL;
  ECDSA_SIG *sig = NULL;
  BIGNUM *r = NULL, *s = NULL;
  int ok = 0;

  if (kty == NULL || crv == NULL || strcmp(kty, "EC") != 0 || strcmp(crv, "P-256") != 0 ||
      !coord(jwk, "x", pt + 1) || !coord(jwk, "y", pt + 1 + COORD_LEN) || sig_b64url == NULL ||
      px_b64url_decode(sig_b64url, strlen(sig_b64url), raw, sizeof(raw), &raw_len) != 0 ||
      raw_len != sizeof(raw))
    return 0;
  pt[0] = POINT_CONVERSION_UNCOMPRESSED;
  ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  sig = ECDSA_SIG_new();
  r = BN_bin2bn(raw, COORD_LEN, NULL);
  s = BN_bin2bn(raw + COORD_LEN, COORD_LEN, NULL);
  pub = ec == NULL ? NULL : EC_POINT_new(EC_KEY_get0_group(ec));
  /* oct2point checks that the point is on the curve. */
  if (pub == NULL || sig == NULL || r == NULL || s == NULL ||
      !EC_POINT_oct2point(EC_KEY_get0_group(ec), pub, pt, sizeof(pt), NULL) ||
      !EC_KEY_set_public_key(ec, pub) || !ECDSA_SIG_set0(sig, r, s))
    goto done;
  r = s = NULL; /* owned by sig now */
  SHA256(input, len, digest);
  ok = ECDSA_do_verify(digest, sizeof(digest), sig, ec) == 1;
done:
  BN_free(r);
  BN_free(s);
  ECDSA_SIG_free(sig);
  EC_POINT_free(pub);
  EC_KEY_free(ec);
  return ok;
}

int px_acme_jws_verify(const char *jws, const json_t *jwk, json_t **protected_out) {
  json_t *root = json_loads(jws, 0, NULL), *hdr = NULL;
  const char *p64 = json_string_value(json_object_get(root, "protected"));
  const char *pl64 = json_string_value(json_object_get(root, "payload"));
  const char *s64 = json_string_value(json_object_get(root, "signature"));
  uint8_t hdr_raw[4096];
  size_t hdr_len = 0;
  char *input = NULL;
  int ok = 0;

  if (p64 == NULL || pl64 == NULL || s64 == NULL ||
      px_b64url_decode(p64, strlen(p64), hdr_raw, sizeof(hdr_raw), &hdr_len) != 0)
    goto done;
  hdr = json_loadb((const char *)hdr_raw, hdr_len, 0, NULL);
  if (hdr == NULL || json_string_value(json_object_get(hdr, "alg")) == NULL ||
      strcmp(json_string_value(json_object_get(hdr, "alg")), "ES256") != 0)
    goto done;
  input = dot_join(p64, pl64);
  if (input == NULL || !px_acme_es256_verify(jwk, input, strlen(input), s64)) goto done;
  ok = 1;
  if (protected_out != NULL) {
    *protected_out = hdr;
    hdr = NULL;
  }
done:
  free(input);
  json_decref(hdr);
  json_decref(root);
  return ok;
}
