/*
 * tls-alpn-01 (RFC 8737): a self-signed certificate that proves control of
 * the key authorization for one name, served only on acme-tls/1 handshakes.
 */
#include "tls/challenge_cert.h"
#include "tls/ipname.h"
#include "tls/keygen.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/bytestring.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/obj.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define NAME_MAX_LEN 253
#define SKEW 3600

/* tls/ cannot use acme/names.c (modules depend one way), so this is a
 * coarse re-check of a name the caller has already normalised. */
static int name_ok(const char *name) {
  size_t n = name == NULL ? 0 : strlen(name), i;
  if (n == 0 || n > NAME_MAX_LEN || name[0] == '.' || name[n - 1] == '.' || strstr(name, ".."))
    return 0;
  for (i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return 0;
  }
  return 1;
}

/* RFC 5280 §4.1.2.2: a positive serial of up to 20 octets; 16 random ones
 * with the top bit clear. */
static int set_serial(X509 *x) {
  uint8_t raw[16];
  BIGNUM *bn;
  ASN1_INTEGER *serial;
  int ok;

  RAND_bytes(raw, sizeof(raw));
  raw[0] &= 0x7f;
  raw[0] |= 0x01; /* never zero */
  bn = BN_bin2bn(raw, sizeof(raw), NULL);
  serial = bn == NULL ? NULL : BN_to_ASN1_INTEGER(bn, NULL);
  ok = serial != NULL && X509_set_serialNumber(x, serial);
  ASN1_INTEGER_free(serial);
  BN_free(bn);
  return ok;
}

/* The one subjectAltName: a dNSName, or for an address the iPAddress of
 * its bytes (RFC 8738 §6). */
static int add_san(X509 *x, const char *name) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  GENERAL_NAME *g = GENERAL_NAME_new();
  uint8_t ip[16];
  int iplen = px_ip_name_bytes(name, ip);
  ASN1_STRING *v = iplen > 0 ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
  int ok = 0;

  if (gens == NULL || g == NULL || v == NULL ||
      !(iplen > 0 ? ASN1_OCTET_STRING_set(v, ip, iplen)
                  : ASN1_STRING_set(v, name, (int)strlen(name)))) {
    ASN1_STRING_free(v);
    GENERAL_NAME_free(g);
    goto done;
  }
  GENERAL_NAME_set0_value(g, iplen > 0 ? GEN_IPADD : GEN_DNS, v);
  if (!sk_GENERAL_NAME_push(gens, g)) {
    GENERAL_NAME_free(g);
    goto done;
  }
  ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
done:
  GENERAL_NAMES_free(gens);
  return ok;
}

/* RFC 8737 §3: the extnValue is the DER of
 *   Authorization ::= OCTET STRING (SIZE (32))
 * i.e. 04 20 || SHA-256(key authorization), and the extension is critical. */
static int add_acme_identifier(X509 *x, const char *ka, size_t ka_len) {
  uint8_t value[2 + SHA256_DIGEST_LENGTH];
  ASN1_OBJECT *oid = OBJ_txt2obj(PX_TLS_ACME_IDENTIFIER_OID, 1);
  ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
  X509_EXTENSION *ext = NULL;
  int ok = 0;

  value[0] = 0x04;
  value[1] = SHA256_DIGEST_LENGTH;
  SHA256((const uint8_t *)ka, ka_len, value + 2);
  if (oid == NULL || data == NULL || !ASN1_OCTET_STRING_set(data, value, sizeof(value))) goto done;
  ext = X509_EXTENSION_create_by_OBJ(NULL, oid, 1, data);
  ok = ext != NULL && X509_add_ext(x, ext, -1);
done:
  X509_EXTENSION_free(ext);
  ASN1_OCTET_STRING_free(data);
  ASN1_OBJECT_free(oid);
  return ok;
}

static int set_names_and_validity(X509 *x, const char *name, int64_t now) {
  X509_NAME *subject = X509_NAME_new();
  int ok =
      subject != NULL &&
      X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC, (const uint8_t *)name, -1,
                                 -1, 0) &&
      X509_set_subject_name(x, subject) && X509_set_issuer_name(x, subject) &&
      ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - SKEW)) != NULL &&
      ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + PX_TLS_CHALLENGE_CERT_LIFETIME)) != NULL;
  X509_NAME_free(subject);
  return ok;
}

/* Copies BoringSSL-owned bytes into a plain malloc'd buffer. */
static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *out = malloc(n);
  if (out != NULL) memcpy(out, p, n);
  return out;
}

static int export(X509 *x, EVP_PKEY *pkey, px_tls_challenge_cert *out) {
  uint8_t *cert = NULL, *key = NULL;
  size_t key_len = 0;
  int cert_len;
  CBB cbb;

  cert_len = i2d_X509(x, &cert);
  if (cert_len <= 0) return -ENOMEM;
  if (!CBB_init(&cbb, 256) || !EVP_marshal_private_key(&cbb, pkey) ||
      !CBB_finish(&cbb, &key, &key_len)) {
    CBB_cleanup(&cbb);
    OPENSSL_free(cert);
    return -ENOMEM;
  }
  out->cert_der = dup_bytes(cert, (size_t)cert_len);
  out->cert_len = (size_t)cert_len;
  out->key_der = dup_bytes(key, key_len);
  out->key_len = key_len;
  OPENSSL_free(cert);
  OPENSSL_cleanse(key, key_len);
  OPENSSL_free(key);
  if (out->cert_der == NULL || out->key_der == NULL) {
    px_tls_challenge_cert_dispose(out);
    return -ENOMEM;
  }
  return 0;
}

int px_tls_challenge_cert_new(const char *name, const char *key_authorization, size_t ka_len,
                              int64_t now, px_tls_challenge_cert *out) {
  EVP_PKEY *pkey = NULL;
  X509 *x = NULL;
  int rc = -ENOMEM;

  memset(out, 0, sizeof(*out));
  if (!(name_ok(name) || px_ip_name_is(name)) || key_authorization == NULL || ka_len == 0)
    return -EINVAL;
  pkey = px_tls_ec_key_new(NID_X9_62_prime256v1);
  x = X509_new();
  if (pkey == NULL || x == NULL || !X509_set_version(x, X509_VERSION_3) || !set_serial(x) ||
      !set_names_and_validity(x, name, now) || !X509_set_pubkey(x, pkey) || !add_san(x, name) ||
      !add_acme_identifier(x, key_authorization, ka_len) || !X509_sign(x, pkey, EVP_sha256()))
    goto done;
  rc = export(x, pkey, out);
done:
  X509_free(x);
  EVP_PKEY_free(pkey);
  return rc;
}

void px_tls_challenge_cert_dispose(px_tls_challenge_cert *cert) {
  if (cert == NULL) return;
  free(cert->cert_der);
  if (cert->key_der != NULL) OPENSSL_cleanse(cert->key_der, cert->key_len);
  free(cert->key_der);
  memset(cert, 0, sizeof(*cert));
}
