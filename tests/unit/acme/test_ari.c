/* Unit tests for acme/proto/ari.c: RFC 9773's certificate ID example, a
 * real X509's ID and validity, and the renewalInfo parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/proto/ari.h"

/* RFC 9773 §4.1's example. */
static const uint8_t rfc_aki[] = {0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                                  0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};
static const uint8_t rfc_serial[] = {0x00, 0x87, 0x65, 0x43, 0x21};
#define RFC_ID "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"

static void test_cert_id_rfc_example(void **state) {
  char id[PX_ARI_CERT_ID_MAX];
  (void)state;
  assert_int_equal(px_ari_cert_id_from_parts(rfc_aki, sizeof(rfc_aki), rfc_serial,
                                             sizeof(rfc_serial), id, sizeof(id)),
                   0);
  assert_string_equal(id, RFC_ID);
  /* Too small a buffer, empty or oversized parts are refused. */
  assert_int_equal(px_ari_cert_id_from_parts(rfc_aki, sizeof(rfc_aki), rfc_serial,
                                             sizeof(rfc_serial), id, strlen(RFC_ID)),
                   -1);
  assert_int_equal(px_ari_cert_id_from_parts(rfc_aki, 0, rfc_serial, 5, id, sizeof(id)), -1);
  assert_int_equal(px_ari_cert_id_from_parts(rfc_aki, 20, rfc_serial, 0, id, sizeof(id)), -1);
  uint8_t big[65] = {0};
  assert_int_equal(px_ari_cert_id_from_parts(big, sizeof(big), rfc_serial, 5, id, sizeof(id)), -1);
  assert_int_equal(px_ari_cert_id_from_parts(rfc_aki, 20, big, 33, id, sizeof(id)), -1);
  assert_int_equal(px_ari_cert_id_from_parts(big, 64, big, 32, id, sizeof(id)), 0);
}

/* A signed certificate with the RFC's AKI and serial 0x87654321 (whose DER
 * content needs a leading zero), valid from `nb` to `na`. */
static X509 *make_cert(int with_aki, int64_t nb, int64_t na) {
  X509 *x = X509_new();
  EVP_PKEY *pkey = EVP_PKEY_new();
  EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  ASN1_INTEGER *serial = ASN1_INTEGER_new();
  assert_non_null(x);
  assert_true(EC_KEY_generate_key(ec) && EVP_PKEY_assign_EC_KEY(pkey, ec));
  assert_true(ASN1_INTEGER_set_uint64(serial, 0x87654321u) && X509_set_serialNumber(x, serial));
  ASN1_INTEGER_free(serial);
  assert_true(X509_set_version(x, X509_VERSION_3));
  assert_non_null(ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb));
  assert_non_null(ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na));
  assert_true(X509_set_pubkey(x, pkey));
  if (with_aki) {
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    assert_true(ASN1_OCTET_STRING_set(akid->keyid, rfc_aki, sizeof(rfc_aki)));
    assert_true(X509_add1_ext_i2d(x, NID_authority_key_identifier, akid, 0, 0));
    AUTHORITY_KEYID_free(akid);
  }
  assert_true(X509_sign(x, pkey, EVP_sha256()));
  EVP_PKEY_free(pkey);
  return x;
}

static void test_cert_id_from_x509(void **state) {
  char id[PX_ARI_CERT_ID_MAX];
  px_ari_cert_info info;
  X509 *x = make_cert(1, 1700000000, 1700000000 + 90 * 86400);
  (void)state;
  assert_int_equal(px_ari_cert_id(x, id, sizeof(id)), 0);
  assert_string_equal(id, RFC_ID);
  assert_int_equal(px_ari_cert_info_from_x509(x, &info), 0);
  assert_string_equal(info.cert_id, RFC_ID);
  assert_int_equal(info.not_before, 1700000000);
  assert_int_equal(info.not_after, 1700000000 + 90 * 86400);

  /* Through PEM, as cert.pem holds it. */
  BIO *bio = BIO_new(BIO_s_mem());
  const uint8_t *pem;
  size_t pem_len;
  assert_true(PEM_write_bio_X509(bio, x));
  assert_true(BIO_mem_contents(bio, &pem, &pem_len));
  memset(&info, 0, sizeof(info));
  assert_int_equal(px_ari_cert_info_from_pem((const char *)pem, pem_len, &info), 0);
  assert_string_equal(info.cert_id, RFC_ID);
  assert_int_equal(info.not_after, 1700000000 + 90 * 86400);
  /* A cut PEM is refused. */
  assert_int_equal(px_ari_cert_info_from_pem((const char *)pem, pem_len / 2, &info), -1);
  assert_int_equal(px_ari_cert_info_from_pem("garbage", 7, &info), -1);
  BIO_free(bio);
  X509_free(x);

  /* No AKI: no ID, but the validity is still read. */
  x = make_cert(0, 1600000000, 1600000090);
  assert_int_equal(px_ari_cert_id(x, id, sizeof(id)), -1);
  assert_int_equal(px_ari_cert_info_from_x509(x, &info), 0);
  assert_string_equal(info.cert_id, "");
  assert_int_equal(info.not_before, 1600000000);
  assert_int_equal(info.not_after, 1600000090);
  X509_free(x);
}

static int parse_time(const char *s, int64_t *t) { return px_ari_parse_time(s, strlen(s), t); }

static void test_parse_time(void **state) {
  int64_t t;
  (void)state;
  assert_int_equal(parse_time("1970-01-01T00:00:00Z", &t), 0);
  assert_int_equal(t, 0);
  assert_int_equal(parse_time("2023-11-14T22:13:20Z", &t), 0);
  assert_int_equal(t, 1700000000);
  assert_int_equal(parse_time("2023-11-14t22:13:20.123456789z", &t), 0);
  assert_int_equal(t, 1700000000);
  assert_int_equal(parse_time("2023-11-15T00:13:20+02:00", &t), 0);
  assert_int_equal(t, 1700000000);
  assert_int_equal(parse_time("2023-11-14T20:13:20-02:00", &t), 0);
  assert_int_equal(t, 1700000000);
  assert_int_equal(parse_time("2024-02-29T00:00:00Z", &t), 0);
  assert_int_equal(t, 1709164800);
  assert_int_equal(parse_time("2016-12-31T23:59:60Z", &t), 0);
  assert_int_equal(t, 1483228799);
  const char *bad[] = {"",
                       "2023-11-14",
                       "2023-11-14T22:13:20",
                       "2023-11-14 22:13:20Z",
                       "2023-13-14T22:13:20Z",
                       "2023-02-29T00:00:00Z",
                       "2023-04-31T00:00:00Z",
                       "2023-11-14T24:00:00Z",
                       "2023-11-14T22:60:00Z",
                       "2023-11-14T22:13:61Z",
                       "2023-11-14T22:13:20.Z",
                       "2023-11-14T22:13:20.1234567890Z",
                       "2023-11-14T22:13:20+0200",
                       "2023-11-14T22:13:20+24:00",
                       "2023-11-14T22:13:20Zjunk",
                       "+023-11-14T22:13:20Z",
                       "2023-11-14T22:13:2Z"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(parse_time(bad[i], &t), -1);
  /* Length is honoured: a trailing NUL-less prefix is not a time. */
  assert_int_equal(px_ari_parse_time("2023-11-14T22:13:20Z", 19, &t), -1);
}

static int parse(const char *body, px_ari_info *info) {
  return px_ari_parse(body, strlen(body), info);
}

static void test_parse_renewal_info(void **state) {
  px_ari_info info;
  (void)state;
  assert_int_equal(parse("{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\","
                         "\"end\":\"2023-11-15T22:13:20Z\"},"
                         "\"explanationURL\":\"https://ca.example/why\",\"future\":[1]}",
                         &info),
                   0);
  assert_int_equal(info.window_start, 1700000000);
  assert_int_equal(info.window_end, 1700086400);
  assert_string_equal(info.explanation_url, "https://ca.example/why");

  /* explanationURL is optional; an unprintable one is dropped. */
  assert_int_equal(parse("{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\","
                         "\"end\":\"2023-11-15T22:13:20Z\"},\"explanationURL\":\"a b\\n\"}",
                         &info),
                   0);
  assert_string_equal(info.explanation_url, "");

  const char *bad[] = {
      "", "[]", "{}", "not json", "{\"suggestedWindow\":{}}", "{\"suggestedWindow\":[]}",
      "{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\"}}",
      "{\"suggestedWindow\":{\"start\":1,\"end\":2}}",
      /* end not after start */
      "{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:20Z\"}}",
      "{\"suggestedWindow\":{\"start\":\"2023-11-15T22:13:20Z\",\"end\":\"2023-11-14T22:13:20Z\"}}",
      "{\"suggestedWindow\":{\"start\":\"yesterday\",\"end\":\"2023-11-14T22:13:20Z\"}}",
      /* duplicate keys */
      "{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-15T22:13:20Z\"},"
      "\"suggestedWindow\":{}}",
      "{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-15T22:13:20Z\""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    info.window_start = 5;
    assert_int_equal(parse(bad[i], &info), -1);
    assert_int_equal(info.window_start, 0);
  }

  /* Oversized bodies are refused before parsing. */
  size_t n = PX_ARI_BODY_MAX + 1;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  static const char small[] =
      "{\"suggestedWindow\":{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-15T22:13:20Z\"}}";
  memcpy(big, small, sizeof(small) - 1);
  big[n] = '\0';
  assert_int_equal(px_ari_parse(big, n, &info), -1);
  assert_int_equal(px_ari_parse(big, PX_ARI_BODY_MAX, &info), 0);
  free(big);
  assert_int_equal(px_ari_parse(NULL, 0, &info), -1);
}

static void test_url(void **state) {
  char *u;
  (void)state;
  u = px_ari_url("https://ca.example/renewalInfo", RFC_ID);
  assert_string_equal(u, "https://ca.example/renewalInfo/" RFC_ID);
  free(u);
  u = px_ari_url("https://ca.example/renewalInfo/", RFC_ID);
  assert_string_equal(u, "https://ca.example/renewalInfo/" RFC_ID);
  free(u);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cert_id_rfc_example),
      cmocka_unit_test(test_cert_id_from_x509),
      cmocka_unit_test(test_parse_time),
      cmocka_unit_test(test_parse_renewal_info),
      cmocka_unit_test(test_url),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
