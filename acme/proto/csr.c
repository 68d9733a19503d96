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

/* RFC 5280 Appendix A.1: ub-common-name INTEGER ::= 64 */
#define CN_MAX 64

px_acme_key *px_acme_cert_key_generate(px_acme_key_type type) { return px_acme_key_generate(type); }

int px_acme_csr_name_ok(const char *name) {
  char norm[PX_ACME_NAME_MAX + 1];
  const char *base = name;
  int n;

  if (name == NULL) return 0;
  if (strncmp(name, "*.", 2) == 0) base = name + 2;
  n = px_acme_name_normalize(base, strlen(base), norm, sizeof(norm));
  /* Must already be in normal form: the CSR names what the order names. */
  return n > 0 && strcmp(norm, base) == 0;
}

static STACK_OF(X509_EXTENSION) * san_extensions(const char *const *names, size_t n) {
  GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
  STACK_OF(X509_EXTENSION) *exts = NULL;
  size_t i;

  if (gens == NULL) return NULL;
  for (i = 0; i < n; i++) {
    GENERAL_NAME *g = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (g == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))) {
      GENERAL_NAME_free(g);
      ASN1_IA5STRING_free(ia5);
      goto fail;
    }
    GENERAL_NAME_set0_value(g, GEN_DNS, ia5);
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
  if (with_cn && strlen(names[0]) <= CN_MAX &&
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
