/*
 * ARI (RFC 9773): certificate IDs from BoringSSL's X509, and the
 * renewalInfo response.
 */
#include "acme/proto/ari.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "acme/proto/b64url.h"

/* Accepted lengths: a SHA-1 key identifier is 20 bytes, but RFC 5280
 * §4.2.1.2 lets a CA pick any method. */
#define KEY_ID_MAX 64
#define SERIAL_MAX 32

int px_ari_cert_id_from_parts(const uint8_t *key_id, size_t key_id_len, const uint8_t *serial,
                              size_t serial_len, char *out, size_t cap) {
  size_t a, b;
  if (key_id_len == 0 || key_id_len > KEY_ID_MAX || serial_len == 0 || serial_len > SERIAL_MAX)
    return -1;
  a = px_b64url_encoded_len(key_id_len);
  b = px_b64url_encoded_len(serial_len);
  if (cap < a + 1 + b + 1) return -1;
  px_b64url_encode(key_id, key_id_len, out, cap);
  out[a] = '.';
  px_b64url_encode(serial, serial_len, out + a + 1, cap - a - 1);
  return 0;
}

int px_ari_cert_id(X509 *leaf, char *out, size_t cap) {
  const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(leaf);
  const ASN1_INTEGER *serial = X509_get0_serialNumber(leaf);
  uint8_t *der = NULL;
  int der_len, rc = -1;
  CBS cbs, content;

  if (aki == NULL || serial == NULL) return -1;
  /* RFC 9773 §4.1: the serial's DER encoding without tag and length. */
  der_len = i2d_ASN1_INTEGER(serial, &der);
  if (der_len <= 0) return -1;
  CBS_init(&cbs, der, (size_t)der_len);
  if (CBS_get_asn1(&cbs, &content, CBS_ASN1_INTEGER) && CBS_len(&cbs) == 0)
    rc = px_ari_cert_id_from_parts(ASN1_STRING_get0_data(aki), (size_t)ASN1_STRING_length(aki),
                                   CBS_data(&content), CBS_len(&content), out, cap);
  OPENSSL_free(der);
  return rc;
}

/* An ASN1_TIME as seconds since the epoch. */
static int asn1_time_to_unix(const ASN1_TIME *t, int64_t *out) {
  ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
  int days, secs, ok;
  if (epoch == NULL) return -1;
  ok = t != NULL && ASN1_TIME_diff(&days, &secs, epoch, t);
  ASN1_TIME_free(epoch);
  if (!ok) return -1;
  *out = (int64_t)days * 86400 + secs;
  return 0;
}

int px_ari_cert_info_from_x509(X509 *leaf, px_ari_cert_info *out) {
  memset(out, 0, sizeof(*out));
  if (px_ari_cert_id(leaf, out->cert_id, sizeof(out->cert_id)) != 0) out->cert_id[0] = '\0';
  if (asn1_time_to_unix(X509_get0_notBefore(leaf), &out->not_before) != 0 ||
      asn1_time_to_unix(X509_get0_notAfter(leaf), &out->not_after) != 0)
    return -1;
  return 0;
}

int px_ari_cert_info_from_pem(const char *pem, size_t len, px_ari_cert_info *out) {
  BIO *bio;
  X509 *leaf;
  int rc;
  if (len > INT32_MAX) return -1;
  bio = BIO_new_mem_buf(pem, (int)len);
  if (bio == NULL) return -1;
  leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  if (leaf == NULL) return -1;
  rc = px_ari_cert_info_from_x509(leaf, out);
  X509_free(leaf);
  return rc;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

/* Reads exactly `n` digits at s[*i]. */
static int digits(const char *s, size_t len, size_t *i, size_t n, unsigned *out) {
  unsigned v = 0;
  if (*i + n > len) return -1;
  for (size_t k = 0; k < n; k++) {
    char c = s[*i + k];
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (unsigned)(c - '0');
  }
  *i += n;
  *out = v;
  return 0;
}

static int expect(const char *s, size_t len, size_t *i, char a, char b) {
  if (*i >= len || (s[*i] != a && s[*i] != b)) return -1;
  (*i)++;
  return 0;
}

int px_ari_parse_time(const char *s, size_t len, int64_t *out) {
  static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
  size_t i = 0;
  int sign = 0;

  /* RFC 3339 §5.6: full-date "T" full-time. */
  if (digits(s, len, &i, 4, &y) || expect(s, len, &i, '-', '-') || digits(s, len, &i, 2, &mo) ||
      expect(s, len, &i, '-', '-') || digits(s, len, &i, 2, &d) || expect(s, len, &i, 'T', 't') ||
      digits(s, len, &i, 2, &h) || expect(s, len, &i, ':', ':') || digits(s, len, &i, 2, &mi) ||
      expect(s, len, &i, ':', ':') || digits(s, len, &i, 2, &sec))
    return -1;
  if (i < len && s[i] == '.') {
    size_t start = ++i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
      i++;
    if (i == start || i - start > 9) return -1;
  }
  if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < len && (s[i] == '+' || s[i] == '-')) {
    sign = s[i++] == '+' ? 1 : -1;
    if (digits(s, len, &i, 2, &oh) || expect(s, len, &i, ':', ':') || digits(s, len, &i, 2, &om) ||
        oh > 23 || om > 59)
      return -1;
  } else {
    return -1;
  }
  if (i != len) return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60) return -1;
  if (mo == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) return -1;
  if (sec == 60) sec = 59; /* a leap second: POSIX time has none */
  *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
         sign * (int64_t)(oh * 3600 + om * 60);
  return 0;
}

static int printable_ascii(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e) return 0;
  return 1;
}

int px_ari_parse(const char *body, size_t len, px_ari_info *out) {
  json_t *root, *window, *start, *end, *url;
  int rc = -1;

  memset(out, 0, sizeof(*out));
  if (body == NULL || len == 0 || len > PX_ARI_BODY_MAX) return -1;
  root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(root)) goto done;
  window = json_object_get(root, "suggestedWindow");
  start = json_object_get(window, "start");
  end = json_object_get(window, "end");
  if (!json_is_object(window) || !json_is_string(start) || !json_is_string(end)) goto done;
  if (px_ari_parse_time(json_string_value(start), json_string_length(start), &out->window_start) ||
      px_ari_parse_time(json_string_value(end), json_string_length(end), &out->window_end))
    goto done;
  /* RFC 9773 §4.2: end must be after start; otherwise the window is bad. */
  if (out->window_end <= out->window_start) goto done;
  url = json_object_get(root, "explanationURL");
  if (json_is_string(url) && json_string_length(url) < PX_ARI_URL_MAX &&
      strlen(json_string_value(url)) == json_string_length(url) &&
      printable_ascii(json_string_value(url)))
    memcpy(out->explanation_url, json_string_value(url), json_string_length(url) + 1);
  rc = 0;
done:
  json_decref(root);
  if (rc != 0) memset(out, 0, sizeof(*out));
  return rc;
}

char *px_ari_url(const char *base, const char *cert_id) {
  size_t a = strlen(base), b = strlen(cert_id);
  int slash = a > 0 && base[a - 1] == '/';
  char *url = malloc(a + b + 2);
  if (url == NULL) return NULL;
  memcpy(url, base, a);
  if (!slash) url[a++] = '/';
  memcpy(url + a, cert_id, b + 1);
  return url;
}
