/* Unit tests for tls/challenge_cert.c (RFC 8737 §3). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/challenge_cert.h"

#define KA "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"

static void test_certificate(void **state) {
  px_tls_challenge_cert c;
  const uint8_t *p;
  X509 *x;
  EVP_PKEY *key, *pub;
  GENERAL_NAMES *gens;
  ASN1_OBJECT *oid = OBJ_txt2obj(PX_TLS_ACME_IDENTIFIER_OID, 1);
  X509_EXTENSION *ext;
  const ASN1_OCTET_STRING *data;
  uint8_t digest[SHA256_DIGEST_LENGTH];
  int64_t now = 1700000000;
  int loc;
  CBS cbs;
  (void)state;

  assert_int_equal(px_tls_challenge_cert_new("www.example.com", KA, strlen(KA), now, &c), 0);
  p = c.cert_der;
  x = d2i_X509(NULL, &p, (long)c.cert_len);
  assert_non_null(x);
  assert_ptr_equal(p, c.cert_der + c.cert_len);

  /* The key matches the certificate and self-signs it. */
  CBS_init(&cbs, c.key_der, c.key_len);
  key = EVP_parse_private_key(&cbs);
  assert_non_null(key);
  assert_int_equal(EVP_PKEY_id(key), EVP_PKEY_EC);
  pub = X509_get_pubkey(x);
  assert_int_equal(EVP_PKEY_cmp(pub, key), 1);
  assert_int_equal(X509_verify(x, pub), 1);
  EVP_PKEY_free(pub);
  EVP_PKEY_free(key);

  /* Validity spans `now` and is short. */
  assert_true(X509_cmp_time(X509_get0_notBefore(x), &(time_t){(time_t)now}) < 0);
  assert_true(X509_cmp_time(X509_get0_notAfter(x), &(time_t){(time_t)now}) > 0);
  assert_true(X509_cmp_time(X509_get0_notAfter(x), &(time_t){(time_t)now + 8 * 86400}) < 0);

  /* SAN: exactly the name. */
  gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
  assert_non_null(gens);
  assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
  assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_DNS);
  assert_memory_equal(ASN1_STRING_get0_data(sk_GENERAL_NAME_value(gens, 0)->d.dNSName),
                      "www.example.com", 15);
  GENERAL_NAMES_free(gens);

  /* acmeIdentifier: critical, extnValue = DER OCTET STRING(SHA-256(KA)). */
  loc = X509_get_ext_by_OBJ(x, oid, -1);
  assert_true(loc >= 0);
  assert_int_equal(X509_get_ext_by_OBJ(x, oid, loc), -1); /* only once */
  ext = X509_get_ext(x, loc);
  assert_int_equal(X509_EXTENSION_get_critical(ext), 1);
  assert_int_equal(OBJ_cmp(X509_EXTENSION_get_object(ext), oid), 0);
  data = X509_EXTENSION_get_data(ext);
  assert_int_equal(ASN1_STRING_length(data), 34);
  SHA256((const uint8_t *)KA, strlen(KA), digest);
  assert_int_equal(ASN1_STRING_get0_data(data)[0], 0x04);
  assert_int_equal(ASN1_STRING_get0_data(data)[1], 32);
  assert_memory_equal(ASN1_STRING_get0_data(data) + 2, digest, 32);

  ASN1_OBJECT_free(oid);
  X509_free(x);
  px_tls_challenge_cert_dispose(&c);
  assert_null(c.cert_der);
  px_tls_challenge_cert_dispose(&c); /* twice is fine */
}

static void test_fresh_key_each_time(void **state) {
  px_tls_challenge_cert a, b;
  (void)state;
  assert_int_equal(px_tls_challenge_cert_new("a.example", KA, strlen(KA), time(NULL), &a), 0);
  assert_int_equal(px_tls_challenge_cert_new("a.example", KA, strlen(KA), time(NULL), &b), 0);
  assert_false(a.key_len == b.key_len && memcmp(a.key_der, b.key_der, a.key_len) == 0);
  px_tls_challenge_cert_dispose(&a);
  px_tls_challenge_cert_dispose(&b);
}

static void test_refusals(void **state) {
  px_tls_challenge_cert c;
  (void)state;
  assert_int_equal(px_tls_challenge_cert_new("", KA, strlen(KA), 0, &c), -EINVAL);
  assert_int_equal(px_tls_challenge_cert_new("*.example.com", KA, strlen(KA), 0, &c), -EINVAL);
  assert_int_equal(px_tls_challenge_cert_new("Example.com", KA, strlen(KA), 0, &c), -EINVAL);
  assert_int_equal(px_tls_challenge_cert_new("example.com", KA, 0, 0, &c), -EINVAL);
  assert_int_equal(px_tls_challenge_cert_new(NULL, KA, strlen(KA), 0, &c), -EINVAL);
  assert_null(c.cert_der);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_certificate),
      cmocka_unit_test(test_fresh_key_each_time),
      cmocka_unit_test(test_refusals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
