/*
 * PKCS#10 requests (RFC 2986) with the names in subjectAltName
 * (RFC 8555 §7.4: the CA reads the identifiers from there).
 */
#include "acme/proto/csr.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bytestring.h>
#include <openssl/evp.h>
#include <openssl/mem.h>
#include <openssl/nid.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/names.h"
#include "acme/proto/b64url.h"
#include "tls/ipname.h"

/* RFC 5280 Appendix A.1: ub-common-name INTEGER ::= 64 */
#define CN_MAX 64

px_acme_key *px_acme_cert_key_generate(px_acme_key_type type) { return px_acme_key_generate(type); }

/* Must already be in normal form: the CSR names what the order names. */
int px_acme_csr_name_ok(const char *name) { return px_acme_cert_name_ok(name); }

/* A dNSName, or for an address an iPAddress of its 4 or 16 bytes
 * (RFC 8738 §3, RFC 5280 §4.2.1.6). */
static GENERAL_NAME *general_name(const char *name) {
  GENERAL_NAME *g = GENERAL_NAME_new();
  ASN1_STRING *v = NULL;
  uint8_t ip[16];
  int iplen = px_ip_name_bytes(name, ip);
  if (g == NULL) return NULL;
  if (iplen > 0) {
    v = ASN1_OCTET_STRING_new();
    if (v == NULL || !ASN1_OCTET_STRING_set(v, ip, iplen)) goto fail;
    GENERAL_NAME_set0_value(g, GEN_IPADD, v);
  } else {
    v = ASN1_IA5STRING_new();
    if (v == NULL || !ASN1_STRING_set(v, name, (int)strlen(name))) goto fail;
    GENERAL_NAME_set0_value(g, GEN_DNS, v);
  }
  return g;
fail:
  ASN1_STRING_free(v);
  GENERAL_NAME_free(g);
  return NULL;
}

static STACK_OF(X509_EXTENSION) * san_extensions(const char *const *names, size_t n) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  STACK_OF(X509_EXTENSION) *exts = NULL;
  size_t i;

  if (gens == NULL) return NULL;
  for (i = 0; i < n; i++) {
    GENERAL_NAME *g = general_name(names[i]);
    if (g == NULL) goto fail;
    if (!sk_GENERAL_NAME_push(gens, g)) {
      GENERAL_NAME_free(g);
      goto fail;
    }
  }
  if (X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1) goto fail;
  GENERAL_NAMES_free(gens);
  return exts;
fail:
  GENERAL_NAMES_free(gens);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  return NULL;
}

int px_acme_csr_der(const px_acme_key *cert_key, const char *const *names, size_t n_names,
                    int with_cn, const px_acme_key *account, uint8_t **der, size_t *der_len) {
  EVP_PKEY *pkey = px__acme_key_evp(cert_key);
  const EVP_MD *md =
      px_acme_key_get_type(cert_key) == PX_ACME_KEY_P384 ? EVP_sha384() : EVP_sha256();
  X509_REQ *req = NULL;
  X509_NAME *subject = NULL;
  STACK_OF(X509_EXTENSION) *exts = NULL;
  uint8_t *out = NULL;
  size_t i;
  int len, rc = PX_ACME_CSR_ECRYPTO;

  if (n_names == 0 || n_names > PX_ACME_CSR_MAX_NAMES) return PX_ACME_CSR_EINVAL;
  for (i = 0; i < n_names; i++) {
    if (!px_acme_csr_name_ok(names[i])) return PX_ACME_CSR_EINVAL;
  }
  /* Let's Encrypt's integration guide: certificate keys are never the
   * account key. */
  if (account != NULL && px_acme_key_equal(cert_key, account)) return PX_ACME_CSR_EACCOUNT;

  req = X509_REQ_new();
  subject = X509_NAME_new();
  if (req == NULL || subject == NULL || !X509_REQ_set_version(req, X509_REQ_VERSION_1)) goto done;
  /* No common name for an address: RFC 8738 certificates name it in the
   * SAN only, and a CA may refuse a CN that is not a DNS name. */
  if (with_cn && strlen(names[0]) <= CN_MAX && !px_ip_name_is(names[0]) &&
      !X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_ASC, (const uint8_t *)names[0],
                                  -1, -1, 0))
    goto done;
  exts = san_extensions(names, n_names);
  if (exts == NULL || !X509_REQ_set_subject_name(req, subject) || !X509_REQ_set_pubkey(req, pkey) ||
      !X509_REQ_add_extensions(req, exts) || !X509_REQ_sign(req, pkey, md))
    goto done;
  len = i2d_X509_REQ(req, &out);
  if (len <= 0) goto done;
  *der = out;
  *der_len = (size_t)len;
  rc = 0;
done:
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_NAME_free(subject);
  X509_REQ_free(req);
  return rc;
}

char *px_acme_csr_b64url(const px_acme_key *cert_key, const char *const *names, size_t n_names,
                         int with_cn, const px_acme_key *account) {
  uint8_t *der = NULL;
  size_t len = 0;
  char *out;

  if (px_acme_csr_der(cert_key, names, n_names, with_cn, account, &der, &len) != 0) return NULL;
  out = px_b64url_encode_alloc(der, len);
  OPENSSL_free(der);
  return out;
}
