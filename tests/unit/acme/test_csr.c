/* Unit tests for acme/csr.c: CSRs parsed back with BoringSSL. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/proto/b64url.h"
#include "acme/proto/csr.h"
#include "acme/proto/jws.h"
#include "acme/proto/key.h"

static const char *const names[] = {"example.com", "www.example.com", "*.example.com"};

static X509_REQ *parse(const uint8_t *der, size_t len) {
  const uint8_t *p = der;
  X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
  assert_non_null(req);
  assert_ptr_equal(p, der + len);
  return req;
}

static void check_csr(X509_REQ *req, const px_acme_key *key, int want_cn) {
  EVP_PKEY *pub = X509_REQ_get_pubkey(req);
  STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
  GENERAL_NAMES *gens;
  X509_NAME *subject = X509_REQ_get_subject_name(req);
  char cn[128];

  assert_non_null(pub);
  assert_int_equal(EVP_PKEY_cmp(pub, px__acme_key_evp(key)), 1);
  assert_int_equal(X509_REQ_verify(req, pub), 1);
  EVP_PKEY_free(pub);

  gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
  assert_non_null(gens);
  assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
  for (size_t i = 0; i < 3; i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    assert_int_equal(g->type, GEN_DNS);
    assert_int_equal(ASN1_STRING_length(g->d.dNSName), (int)strlen(names[i]));
    assert_memory_equal(ASN1_STRING_get0_data(g->d.dNSName), names[i], strlen(names[i]));
  }
  GENERAL_NAMES_free(gens);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

  if (want_cn) {
    assert_int_equal(X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof(cn)), 11);
    assert_string_equal(cn, "example.com");
  } else {
    assert_int_equal(X509_NAME_entry_count(subject), 0);
  }
}

static void csr_for_type(px_acme_key_type type) {
  px_acme_key *key = px_acme_cert_key_generate(type), *back;
  uint8_t *der = NULL;
  size_t len = 0, pem_len = 0;
  char *pem;
  X509_REQ *req;

  assert_non_null(key);
  assert_int_equal(px_acme_key_get_type(key), type);
  /* PEM round trip keeps the type. */
  pem = px_acme_key_to_pem(key, &pem_len);
  assert_non_null(pem);
  back = px_acme_key_from_pem(pem, pem_len);
  assert_non_null(back);
  assert_int_equal(px_acme_key_get_type(back), type);
  assert_true(px_acme_key_equal(key, back));
  px_acme_key_pem_free(pem, pem_len);
  px_acme_key_free(back);

  assert_int_equal(px_acme_csr_der(key, names, 3, 1, NULL, &der, &len), 0);
  req = parse(der, len);
  check_csr(req, key, 1);
  X509_REQ_free(req);
  OPENSSL_free(der);

  assert_int_equal(px_acme_csr_der(key, names, 3, 0, NULL, &der, &len), 0);
  req = parse(der, len);
  check_csr(req, key, 0);
  X509_REQ_free(req);
  OPENSSL_free(der);
  px_acme_key_free(key);
}

static void test_p256(void **state) {
  (void)state;
  csr_for_type(PX_ACME_KEY_P256);
}

static void test_p384(void **state) {
  (void)state;
  csr_for_type(PX_ACME_KEY_P384);
}

static void test_rsa2048(void **state) {
  (void)state;
  csr_for_type(PX_ACME_KEY_RSA2048);
}

static void test_b64url_matches_der(void **state) {
  px_acme_key *key = px_acme_cert_key_generate(PX_ACME_KEY_P256);
  char *b64 = px_acme_csr_b64url(key, names, 1, 1, NULL);
  uint8_t buf[2048];
  size_t n;
  X509_REQ *req;
  (void)state;
  assert_non_null(b64);
  assert_null(strchr(b64, '='));
  assert_int_equal(px_b64url_decode(b64, strlen(b64), buf, sizeof(buf), &n), 0);
  req = parse(buf, n);
  X509_REQ_free(req);
  free(b64);
  px_acme_key_free(key);
}

static void test_refusals(void **state) {
  px_acme_key *key = px_acme_cert_key_generate(PX_ACME_KEY_P256);
  px_acme_key *account = px_acme_account_key_generate();
  const char *bad1[] = {"Example.com"};
  const char *bad2[] = {"a..b.com"};
  const char *bad3[] = {"*.*.example.com"};
  const char *bad4[] = {"foo.*.example.com"};
  uint8_t *der = NULL;
  size_t len = 0;
  (void)state;
  assert_int_equal(px_acme_csr_der(key, names, 0, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  assert_int_equal(px_acme_csr_der(key, bad1, 1, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  assert_int_equal(px_acme_csr_der(key, bad2, 1, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  assert_int_equal(px_acme_csr_der(key, bad3, 1, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  assert_int_equal(px_acme_csr_der(key, bad4, 1, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  /* The account key never signs a CSR. */
  assert_int_equal(px_acme_csr_der(account, names, 3, 1, account, &der, &len),
                   PX_ACME_CSR_EACCOUNT);
  assert_null(der);
  assert_int_equal(px_acme_csr_der(key, names, 3, 1, account, &der, &len), 0);
  OPENSSL_free(der);
  assert_int_equal(px_acme_key_type_parse("rsa3072"), PX_ACME_KEY_RSA3072);
  assert_int_equal(px_acme_key_type_parse("rsa1024"), -EINVAL);
  assert_string_equal(px_acme_key_type_name(PX_ACME_KEY_P384), "p384");
  px_acme_key_free(key);
  px_acme_key_free(account);
}

static void test_long_first_name_has_no_cn(void **state) {
  char longname[80];
  const char *list[1] = {longname};
  px_acme_key *key = px_acme_cert_key_generate(PX_ACME_KEY_P256);
  uint8_t *der = NULL;
  size_t len = 0;
  X509_REQ *req;
  (void)state;
  memset(longname, 'a', 60);
  memcpy(longname + 60, ".example.com", 13); /* 72 bytes > ub-common-name */
  assert_int_equal(px_acme_csr_der(key, list, 1, 1, NULL, &der, &len), 0);
  req = parse(der, len);
  assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
  X509_REQ_free(req);
  OPENSSL_free(der);
  px_acme_key_free(key);
}

/* RFC 8738 §3: an address is an iPAddress of its bytes, never a dNSName,
 * and is not put in the subject's CN. */
static void test_ip_names_are_ip_addresses(void **state) {
  const char *list[3] = {"192.0.2.1", "[2001:db8::1]", "www.example.com"};
  px_acme_key *key = px_acme_cert_key_generate(PX_ACME_KEY_P256);
  uint8_t *der = NULL;
  size_t len = 0;
  (void)state;
  assert_int_equal(px_acme_csr_der(key, list, 3, 1, NULL, &der, &len), 0);
  X509_REQ *req = parse(der, len);
  assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 0);
  STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
  GENERAL_NAMES *gens = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
  assert_non_null(gens);
  assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
  const GENERAL_NAME *g0 = sk_GENERAL_NAME_value(gens, 0), *g1 = sk_GENERAL_NAME_value(gens, 1);
  assert_int_equal(g0->type, GEN_IPADD);
  assert_int_equal(ASN1_STRING_length(g0->d.iPAddress), 4);
  assert_memory_equal(ASN1_STRING_get0_data(g0->d.iPAddress), "\xc0\x00\x02\x01", 4);
  assert_int_equal(g1->type, GEN_IPADD);
  assert_int_equal(ASN1_STRING_length(g1->d.iPAddress), 16);
  assert_int_equal(ASN1_STRING_get0_data(g1->d.iPAddress)[15], 1);
  assert_int_equal(sk_GENERAL_NAME_value(gens, 2)->type, GEN_DNS);
  GENERAL_NAMES_free(gens);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  OPENSSL_free(der);
  /* Only the canonical form: the order names what the CSR names. */
  const char *loose[1] = {"2001:db8::1"};
  assert_int_equal(px_acme_csr_der(key, loose, 1, 1, NULL, &der, &len), PX_ACME_CSR_EINVAL);
  px_acme_key_free(key);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_p256),
      cmocka_unit_test(test_p384),
      cmocka_unit_test(test_rsa2048),
      cmocka_unit_test(test_b64url_matches_der),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_long_first_name_has_no_cn),
      cmocka_unit_test(test_ip_names_are_ip_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
