/* Unit tests for acme/b64url.c, acme/key.c and acme/jws.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/proto/b64url.h"
#include "acme/proto/jws.h"
#include "acme/proto/key.h"

/* RFC 7515 Appendix A.3: the P-256 public key and the ES256 JWS. */
#define A3_X "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"
#define A3_Y "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"
#define A3_INPUT                                                                                   \
  "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNv"  \
  "bS9pc19yb290Ijp0cnVlfQ"
#define A3_SIG                                                                                     \
  "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"

/* RFC 7515 Appendix A.1: the HS256 key, signing input and MAC. */
#define A1_KEY                                                                                     \
  "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"
#define A1_INPUT                                                                                   \
  "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0"  \
  "dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define A1_MAC "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

static json_t *a3_jwk(void) {
  return json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", A3_X, "y", A3_Y);
}

static void test_b64url_vectors(void **state) {
  /* RFC 4648 §10, translated to the URL alphabet without padding. */
  static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  static const char *const enc[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
  char out[32];
  uint8_t dec[32];
  size_t n;
  (void)state;
  for (size_t i = 0; i < 7; i++) {
    assert_int_equal(px_b64url_encode(plain[i], strlen(plain[i]), out, sizeof(out)),
                     strlen(enc[i]));
    assert_string_equal(out, enc[i]);
    assert_int_equal(px_b64url_decode(enc[i], strlen(enc[i]), dec, sizeof(dec), &n), 0);
    assert_int_equal(n, strlen(plain[i]));
    assert_memory_equal(dec, plain[i], n);
  }
  /* The URL alphabet: 0xfb 0xff -> "-_8" */
  assert_int_equal(px_b64url_encode("\xfb\xff", 2, out, sizeof(out)), 3);
  assert_string_equal(out, "-_8");
  /* Too small an output buffer. */
  assert_int_equal(px_b64url_encode("foo", 3, out, 4), (size_t)-1);
  assert_int_equal(px_b64url_decode("Zm9v", 4, dec, 2, &n), -ENOSPC);
  /* Padding, the standard alphabet, impossible length, non-zero tail bits. */
  assert_int_equal(px_b64url_decode("Zg==", 4, dec, sizeof(dec), &n), -EINVAL);
  assert_int_equal(px_b64url_decode("+/8", 3, dec, sizeof(dec), &n), -EINVAL);
  assert_int_equal(px_b64url_decode("Zm9vY", 5, dec, sizeof(dec), &n), -EINVAL);
  assert_int_equal(px_b64url_decode("Zh", 2, dec, sizeof(dec), &n), -EINVAL);
}

static void test_rfc7515_a3_verify(void **state) {
  json_t *jwk = a3_jwk();
  char bad[] = A3_SIG;
  (void)state;
  assert_int_equal(px_acme_es256_verify(jwk, A3_INPUT, strlen(A3_INPUT), A3_SIG), 1);
  bad[10] = bad[10] == 'A' ? 'B' : 'A';
  assert_int_equal(px_acme_es256_verify(jwk, A3_INPUT, strlen(A3_INPUT), bad), 0);
  assert_int_equal(px_acme_es256_verify(jwk, A3_INPUT, strlen(A3_INPUT) - 1, A3_SIG), 0);
  json_decref(jwk);
}

static void test_rfc7515_a1_hs256(void **state) {
  uint8_t key[128], mac[32];
  size_t key_len;
  char out[64];
  (void)state;
  assert_int_equal(px_b64url_decode(A1_KEY, strlen(A1_KEY), key, sizeof(key), &key_len), 0);
  assert_int_equal(px_acme_hs256(key, key_len, A1_INPUT, strlen(A1_INPUT), mac), 0);
  px_b64url_encode(mac, sizeof(mac), out, sizeof(out));
  assert_string_equal(out, A1_MAC);
}

/* The RFC 7515 A.3 private key (d, x, y) as PKCS#8 PEM: DER written by hand
 * with python3 from the RFC's values and checked with `openssl pkey`. */
static const char a3_pem[] = "-----BEGIN PRIVATE KEY-----\n"
                             "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgjpsQnnGQmL+YBIff\n"
                             "H1136cspYG6+0iY7X1fCE9+E9LKhRANCAAR/zc4ncPbEXUGDy+5v20t7WAczNXvp\n"
                             "7xO6z248e9FURcfxRM0bvZt+hyzf7bnuufSzaV1uqQskrYpGIyiFiOWt\n"
                             "-----END PRIVATE KEY-----\n";

static void test_thumbprint_known_answer(void **state) {
  px_acme_key *k = px_acme_key_from_pem(a3_pem, strlen(a3_pem));
  char tp[PX_ACME_THUMBPRINT_LEN + 1];
  json_t *jwk;
  char *text, *ka;
  (void)state;
  assert_non_null(k);
  jwk = px_acme_jwk(k);
  assert_non_null(jwk);
  text = json_dumps(jwk, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(text,
                      "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"" A3_X "\",\"y\":\"" A3_Y "\"}");
  free(text);
  json_decref(jwk);
  assert_int_equal(px_acme_jwk_thumbprint(k, tp), 0);
  /* Derived independently: python3 -c 'import hashlib,base64;
   * print(base64.urlsafe_b64encode(hashlib.sha256(b"{\"crv\":\"P-256\",
   * \"kty\":\"EC\",\"x\":\"<A3_X>\",\"y\":\"<A3_Y>\"}").digest()).rstrip(b"="))' */
  assert_string_equal(tp, "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
  ka = px_acme_key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", k);
  assert_string_equal(ka, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                          "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
  free(ka);
  assert_null(px_acme_key_authorization("bad/token", k));
  assert_null(px_acme_key_authorization("", k));
  px_acme_key_free(k);
}

static void test_pem_round_trip(void **state) {
  px_acme_key *k = px_acme_account_key_generate(), *k2;
  char tp1[PX_ACME_THUMBPRINT_LEN + 1], tp2[PX_ACME_THUMBPRINT_LEN + 1];
  size_t len;
  char *pem;
  (void)state;
  assert_non_null(k);
  pem = px_acme_key_to_pem(k, &len);
  assert_non_null(pem);
  assert_int_equal(strncmp(pem, "-----BEGIN PRIVATE KEY-----\n", 28), 0);
  k2 = px_acme_key_from_pem(pem, len);
  assert_non_null(k2);
  assert_true(px_acme_key_equal(k, k2));
  assert_int_equal(px_acme_jwk_thumbprint(k, tp1), 0);
  assert_int_equal(px_acme_jwk_thumbprint(k2, tp2), 0);
  assert_string_equal(tp1, tp2);
  px_acme_key_pem_free(pem, len);
  assert_null(px_acme_key_from_pem("garbage", 7));
  px_acme_key_free(k);
  px_acme_key_free(k2);
}

static void check_header(json_t *hdr, const char *kid) {
  assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
  assert_string_equal(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
  assert_string_equal(json_string_value(json_object_get(hdr, "url")), "https://ca/acme/new-order");
  if (kid != NULL) {
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid);
    assert_null(json_object_get(hdr, "jwk"));
  } else {
    assert_non_null(json_object_get(hdr, "jwk"));
    assert_null(json_object_get(hdr, "kid"));
  }
}

static void test_sign_verify(void **state) {
  px_acme_key *k = px_acme_account_key_generate(), *other = px_acme_account_key_generate();
  json_t *jwk = px_acme_jwk(k), *jwk_other = px_acme_jwk(other), *hdr = NULL, *root;
  char *jws;
  (void)state;

  /* With jwk (newAccount). */
  jws = px_acme_jws_sign(k, "https://ca/acme/new-order", "nonce-1", NULL, "{\"a\":1}");
  assert_non_null(jws);
  assert_int_equal(px_acme_jws_verify(jws, jwk, &hdr), 1);
  check_header(hdr, NULL);
  assert_true(json_equal(json_object_get(hdr, "jwk"), jwk));
  json_decref(hdr);
  assert_int_equal(px_acme_jws_verify(jws, jwk_other, NULL), 0);
  root = json_loads(jws, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(root, "payload")), "eyJhIjoxfQ");
  /* Raw R||S, not DER: 64 bytes are 86 base64url characters. */
  assert_int_equal(strlen(json_string_value(json_object_get(root, "signature"))), 86);
  json_decref(root);
  free(jws);

  /* With kid, POST-as-GET: payload is the empty string. */
  jws = px_acme_jws_sign(k, "https://ca/acme/new-order", "nonce-1", "https://ca/acct/1", "");
  assert_non_null(jws);
  assert_int_equal(px_acme_jws_verify(jws, jwk, &hdr), 1);
  check_header(hdr, "https://ca/acct/1");
  json_decref(hdr);
  root = json_loads(jws, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(root, "payload")), "");
  json_decref(root);
  free(jws);

  /* Only P-256 keys sign ES256. */
  {
    px_acme_key *p384 = px_acme_key_generate(PX_ACME_KEY_P384);
    assert_null(px_acme_jws_sign(p384, "u", "n", NULL, ""));
    assert_null(px_acme_jwk(p384));
    px_acme_key_free(p384);
  }
  json_decref(jwk);
  json_decref(jwk_other);
  px_acme_key_free(k);
  px_acme_key_free(other);
}

static void test_eab(void **state) {
  px_acme_key *k = px_acme_account_key_generate();
  json_t *eab = px_acme_jws_eab(k, "kid-1", A1_KEY, "https://ca/acme/new-acct"), *hdr, *jwk;
  const char *p64, *pl64, *s64;
  uint8_t buf[1024], key[128], mac[32];
  size_t n, key_len;
  char input[2048], want[64];
  (void)state;
  assert_non_null(eab);
  p64 = json_string_value(json_object_get(eab, "protected"));
  pl64 = json_string_value(json_object_get(eab, "payload"));
  s64 = json_string_value(json_object_get(eab, "signature"));
  assert_non_null(p64);
  assert_non_null(pl64);
  assert_non_null(s64);

  assert_int_equal(px_b64url_decode(p64, strlen(p64), buf, sizeof(buf), &n), 0);
  hdr = json_loadb((const char *)buf, n, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
  assert_string_equal(json_string_value(json_object_get(hdr, "kid")), "kid-1");
  assert_string_equal(json_string_value(json_object_get(hdr, "url")), "https://ca/acme/new-acct");
  assert_null(json_object_get(hdr, "nonce")); /* RFC 8555 §7.3.4: no nonce */
  json_decref(hdr);

  assert_int_equal(px_b64url_decode(pl64, strlen(pl64), buf, sizeof(buf), &n), 0);
  hdr = json_loadb((const char *)buf, n, 0, NULL);
  jwk = px_acme_jwk(k);
  assert_true(json_equal(hdr, jwk));
  json_decref(hdr);
  json_decref(jwk);

  /* Recompute the MAC with the RFC 7515 A.1 key (HS256 checked above). */
  snprintf(input, sizeof(input), "%s.%s", p64, pl64);
  assert_int_equal(px_b64url_decode(A1_KEY, strlen(A1_KEY), key, sizeof(key), &key_len), 0);
  assert_int_equal(px_acme_hs256(key, key_len, input, strlen(input), mac), 0);
  px_b64url_encode(mac, sizeof(mac), want, sizeof(want));
  assert_string_equal(s64, want);
  json_decref(eab);

  assert_null(px_acme_jws_eab(k, "kid-1", "not base64!", "u"));
  assert_null(px_acme_jws_eab(k, "kid-1", "", "u"));
  px_acme_key_free(k);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_b64url_vectors),
      cmocka_unit_test(test_rfc7515_a3_verify),
      cmocka_unit_test(test_rfc7515_a1_hs256),
      cmocka_unit_test(test_thumbprint_known_answer),
      cmocka_unit_test(test_pem_round_trip),
      cmocka_unit_test(test_sign_verify),
      cmocka_unit_test(test_eab),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
