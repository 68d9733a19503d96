#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "tls/cert_internal.h"
#include "tls/ipname.h"

/* Files bigger than this are not certificates. */
#define PX_CERT_FILE_MAX (1024 * 1024)

static px_tls_cert *cert_alloc(void) {
  px_tls_cert *c = calloc(1, sizeof(*c));
  if (c) atomic_init(&c->refs, 1);
  return c;
}

static void cert_free(px_tls_cert *c) {
  for (size_t i = 0; i < c->nchain; i++)
    CRYPTO_BUFFER_free(c->chain[i]);
  free(c->chain);
  EVP_PKEY_free(c->key);
  free(c);
}

static int add_der(px_tls_cert *c, const uint8_t *der, size_t len) {
  CRYPTO_BUFFER **n = realloc(c->chain, (c->nchain + 1) * sizeof(*n));
  if (n == NULL) return -1;
  c->chain = n;
  c->chain[c->nchain] = CRYPTO_BUFFER_new(der, len, NULL);
  return c->chain[c->nchain++] ? 0 : -1;
}

/* Reads notAfter and the serial of the leaf, and checks the key matches. */
static int finish(px_tls_cert *c, char *err, size_t errlen) {
  const uint8_t *p = CRYPTO_BUFFER_data(c->chain[0]);
  X509 *leaf = d2i_X509(NULL, &p, (long)CRYPTO_BUFFER_len(c->chain[0]));
  if (leaf == NULL) {
    snprintf(err, errlen, "the certificate does not parse");
    return -1;
  }
  int ok = X509_check_private_key(leaf, c->key);
  if (ok) {
    /* notAfter as "now + difference": this BoringSSL has ASN1_TIME_diff. */
    int days = 0, secs = 0;
    const ASN1_TIME *na = X509_get0_notAfter(leaf);
    if (na && ASN1_TIME_diff(&days, &secs, NULL, na))
      c->not_after = (int64_t)time(NULL) + (int64_t)days * 86400 + secs;
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if (hex) snprintf(c->serial, sizeof(c->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
  }
  X509_free(leaf);
  ERR_clear_error();
  if (!ok) {
    snprintf(err, errlen, "the private key does not match the certificate");
    return -1;
  }
  return 0;
}

px_tls_cert *px_tls_cert_from_pem(const char *chain_pem, size_t chain_len, const char *key_pem,
                                  size_t key_len, char *err, size_t errlen) {
  px_tls_cert *c = cert_alloc();
  if (c == NULL) return NULL;
  BIO *b = BIO_new_mem_buf(chain_pem, (int)chain_len);
  X509 *x;
  int failed = b == NULL;
  while (b && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
    uint8_t *der = NULL;
    int len = i2d_X509(x, &der);
    X509_free(x);
    int r = len > 0 ? add_der(c, der, (size_t)len) : -1;
    OPENSSL_free(der);
    if (r != 0) {
      failed = 1;
      break;
    }
  }
  BIO_free(b);
  /* The end of the PEM stream reads as PEM_R_NO_START_LINE; any other error
   * (a certificate cut short, bad base64, bad DER) means the chain is broken,
   * and serving what came before it would send an incomplete chain. */
  uint32_t e = ERR_peek_last_error();
  if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
    failed = 1;
  ERR_clear_error();
  if (failed || c->nchain == 0) {
    if (failed)
      snprintf(err, errlen, "certificate %zu of the chain does not parse", c->nchain + 1);
    else
      snprintf(err, errlen, "no PEM certificate found");
    cert_free(c);
    return NULL;
  }
  b = BIO_new_mem_buf(key_pem, (int)key_len);
  c->key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  ERR_clear_error();
  if (c->key == NULL) {
    snprintf(err, errlen, "no PEM private key found");
    cert_free(c);
    return NULL;
  }
  if (finish(c, err, errlen) != 0) {
    cert_free(c);
    return NULL;
  }
  return c;
}

px_tls_cert *px_tls_cert_from_der(const uint8_t *cert_der, size_t cert_len, const uint8_t *key_der,
                                  size_t key_len) {
  px_tls_cert *c = cert_alloc();
  if (c == NULL) return NULL;
  CBS cbs;
  CBS_init(&cbs, key_der, key_len);
  char err[64];
  if (add_der(c, cert_der, cert_len) != 0 || (c->key = EVP_parse_private_key(&cbs)) == NULL ||
      finish(c, err, sizeof(err)) != 0) {
    ERR_clear_error();
    cert_free(c);
    return NULL;
  }
  return c;
}

/* Reads a whole file (bounded) into a malloc'd buffer. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
    snprintf(err, errlen, "%s: is not a regular file", path);
    fclose(f);
    return NULL;
  }
  char *buf = malloc(PX_CERT_FILE_MAX);
  size_t n = buf ? fread(buf, 1, PX_CERT_FILE_MAX, f) : 0;
  int bad = buf == NULL || ferror(f) || n == PX_CERT_FILE_MAX;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "%s: cannot read (or larger than 1 MiB)", path);
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

px_tls_cert *px_tls_cert_load_files(const char *cert_file, const char *key_file, char *err,
                                    size_t errlen) {
  size_t clen, klen;
  char *chain = read_file(cert_file, &clen, err, errlen);
  if (chain == NULL) return NULL;
  char *key = read_file(key_file, &klen, err, errlen);
  if (key == NULL) {
    free(chain);
    return NULL;
  }
  char why[160];
  px_tls_cert *c = px_tls_cert_from_pem(chain, clen, key, klen, why, sizeof(why));
  OPENSSL_cleanse(key, klen);
  free(key);
  free(chain);
  if (c == NULL) {
    if (strstr(why, "key"))
      snprintf(err, errlen, "%s: %s in %s", cert_file, why, key_file);
    else
      snprintf(err, errlen, "%s: %s", cert_file, why);
  }
  return c;
}

/* One SAN dNSName against a name (RFC 6125 §6.4.3). */
static int dns_entry_covers(const char *entry, size_t elen, const char *name) {
  size_t nlen = strlen(name);
  if (memchr(entry, '\0', elen) != NULL) return 0; /* an embedded NUL is a forgery */
  if (elen == nlen && strncasecmp(entry, name, nlen) == 0) return 1;
  /* "*.example.com": the "*" is the whole first label and stands for one
   * non-empty label of `name`, never for a wildcard the client sent. */
  if (elen < 3 || entry[0] != '*' || entry[1] != '.' || name[0] == '*') return 0;
  const char *dot = strchr(name, '.');
  if (dot == NULL || dot == name) return 0;
  size_t rest = nlen - (size_t)(dot - name);
  return rest == elen - 1 && strncasecmp(entry + 1, dot, rest) == 0;
}

X509 *px_tls_cert_leaf(const px_tls_cert *c) {
  const uint8_t *p = CRYPTO_BUFFER_data(c->chain[0]);
  return d2i_X509(NULL, &p, (long)CRYPTO_BUFFER_len(c->chain[0]));
}

int px_tls_cert_covers(const px_tls_cert *c, const char *name) {
  X509 *leaf = px_tls_cert_leaf(c);
  if (leaf == NULL) {
    ERR_clear_error();
    return 0;
  }
  GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
  int covers = 0;
  uint8_t ip[16];
  int iplen = px_ip_name_bytes(name, ip);
  for (size_t i = 0; gens && !covers && i < sk_GENERAL_NAME_num(gens); i++) {
    const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
    if (iplen > 0) { /* an address only by an iPAddress of its bytes (RFC 8738 §3) */
      covers = g->type == GEN_IPADD && ASN1_STRING_length(g->d.iPAddress) == iplen &&
               memcmp(ASN1_STRING_get0_data(g->d.iPAddress), ip, (size_t)iplen) == 0;
      continue;
    }
    if (g->type != GEN_DNS) continue;
    covers = dns_entry_covers((const char *)ASN1_STRING_get0_data(g->d.dNSName),
                              (size_t)ASN1_STRING_length(g->d.dNSName), name);
  }
  GENERAL_NAMES_free(gens);
  X509_free(leaf);
  ERR_clear_error();
  return covers;
}

int64_t px_tls_cert_not_after(const px_tls_cert *c) { return c->not_after; }

const char *px_tls_cert_serial(const px_tls_cert *c) { return c->serial; }

px_tls_cert *px_tls_cert_ref(px_tls_cert *c) {
  atomic_fetch_add(&c->refs, 1);
  return c;
}

void px_tls_cert_unref(px_tls_cert *c) {
  if (c && atomic_fetch_sub(&c->refs, 1) == 1) cert_free(c);
}

int px__tls_cert_install(const px_tls_cert *c, SSL *ssl) {
  return SSL_set_chain_and_key(ssl, c->chain, c->nchain, c->key, NULL);
}
