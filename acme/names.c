/*
 * DNS name validation: the gate between what a client sends and what may
 * reach the disk or the CA.
 */
#include "acme/names.h"

#include <string.h>

#include "tls/ipname.h"

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c) { return is_digit(c) || (c >= 'a' && c <= 'f'); }

/* inet_aton(3) accepts "1.2.3.4", "127.1", "0x7f.1" and "2130706433", so a
 * name whose last label looks numeric could be read as an address by some
 * resolver or library. No public TLD is numeric (RFC 3696 §2), so refusing
 * these loses nothing. */
static int label_is_numeric(const char *l, size_t n) {
  size_t i = 0;
  if (n > 2 && l[0] == '0' && l[1] == 'x') {
    for (i = 2; i < n; i++) {
      if (!is_hex((unsigned char)l[i])) return 0;
    }
    return 1;
  }
  for (i = 0; i < n; i++) {
    if (!is_digit((unsigned char)l[i])) return 0;
  }
  return 1;
}

static int fail(char *out, size_t cap, int err) {
  if (cap > 0) out[0] = '\0';
  return err;
}

int px_acme_name_normalize(const char *in, size_t len, char *out, size_t cap) {
  size_t i, label_start = 0, dots = 0;

  if (in == NULL) return fail(out, cap, PX_ACME_NAME_EEMPTY);
  /* One trailing dot is the absolute form of the same name (RFC 1034 §3.1). */
  if (len > 0 && in[len - 1] == '.') len--;
  if (len == 0) return fail(out, cap, PX_ACME_NAME_EEMPTY);
  /* Look for a ':' first so every IPv6 literal gets the same answer. */
  if (memchr(in, ':', len) != NULL) return fail(out, cap, PX_ACME_NAME_EIP);
  if (len > PX_ACME_NAME_MAX) return fail(out, cap, PX_ACME_NAME_ETOOLONG);
  if (cap < len + 1) return fail(out, cap, PX_ACME_NAME_ECAP);

  for (i = 0; i <= len; i++) {
    unsigned char c = i < len ? (unsigned char)in[i] : '.';
    if (c == '.') {
      size_t n = i - label_start;
      if (n == 0) return fail(out, cap, PX_ACME_NAME_EEMPTYLABEL);
      if (n > PX_ACME_LABEL_MAX) return fail(out, cap, PX_ACME_NAME_ELABEL);
      if (out[label_start] == '-' || out[i - 1] == '-') return fail(out, cap, PX_ACME_NAME_EHYPHEN);
      if (i < len) {
        dots++;
        out[i] = '.';
      }
      label_start = i + 1;
      continue;
    }
    if (c >= 0x80) return fail(out, cap, PX_ACME_NAME_ENONASCII);
    if (c >= 'A' && c <= 'Z') c = (unsigned char)(c - 'A' + 'a');
    /* Everything else, including '_', '*', '/', '\\' and NUL, is refused:
     * LDH labels only (RFC 5890 §2.3.1). */
    if (!(is_digit(c) || (c >= 'a' && c <= 'z') || c == '-'))
      return fail(out, cap, PX_ACME_NAME_ECHAR);
    out[i] = (char)c;
  }
  out[len] = '\0';

  if (dots == 0) return fail(out, cap, PX_ACME_NAME_ENODOT);
  {
    const char *last = strrchr(out, '.') + 1;
    if (label_is_numeric(last, len - (size_t)(last - out))) return fail(out, cap, PX_ACME_NAME_EIP);
  }
  return (int)len;
}

const char *px_acme_name_strerror(int err) {
  switch (err) {
  case PX_ACME_NAME_EEMPTY:
    return "empty name";
  case PX_ACME_NAME_ETOOLONG:
    return "name longer than 253 bytes";
  case PX_ACME_NAME_ELABEL:
    return "label longer than 63 bytes";
  case PX_ACME_NAME_EEMPTYLABEL:
    return "empty label";
  case PX_ACME_NAME_ECHAR:
    return "character outside [a-z0-9.-]";
  case PX_ACME_NAME_ENONASCII:
    return "non-ASCII byte (only A-labels are accepted)";
  case PX_ACME_NAME_EHYPHEN:
    return "label starts or ends with a hyphen";
  case PX_ACME_NAME_ENODOT:
    return "name has a single label";
  case PX_ACME_NAME_EIP:
    return "IP address literal";
  case PX_ACME_NAME_ECAP:
    return "output buffer too small";
  default:
    return err >= 0 ? "ok" : "unknown name error";
  }
}

const char *px_acme_order_name_problem(const char *host, int dns01) {
  char norm[PX_ACME_NAME_MAX + 1];
  int n;
  if (strcmp(host, "*") == 0)
    return "is every other name, which no certificate can cover; use tls: on_demand for it";
  /* CAs validate a wildcard only with dns-01 (RFC 8737 §3 forbids
   * tls-alpn-01 for one; Let's Encrypt refuses http-01 for one). */
  if (strncmp(host, "*.", 2) == 0) {
    if (!dns01)
      return "is a wildcard, which can only be validated by the dns-01 challenge: set up "
             "acme.dns (docs/dns-01.md), or list each name instead, or use tls: on_demand";
    n = px_acme_name_normalize(host + 2, strlen(host) - 2, norm, sizeof(norm));
    return n < 0 ? px_acme_name_strerror(n) : NULL;
  }
  /* RFC 8738: an address is validated by http-01 or tls-alpn-01 (§7
   * forbids dns-01 for one); the config loader wrote it canonically. */
  if (px_ip_name_is(host)) return NULL;
  n = px_acme_name_normalize(host, strlen(host), norm, sizeof(norm));
  if (n == PX_ACME_NAME_EIP)
    return "is not an address portico reads as one (dotted decimal IPv4, or IPv6 with or "
           "without brackets)";
  if (n < 0) return px_acme_name_strerror(n);
  return NULL;
}

int px_acme_cert_name_ok(const char *name) {
  char norm[PX_ACME_NAME_MAX + 1];
  const char *base = name;
  if (name == NULL) return 0;
  if (px_ip_name_is(name)) return 1;
  if (strncmp(name, "*.", 2) == 0) base = name + 2;
  int n = px_acme_name_normalize(base, strlen(base), norm, sizeof(norm));
  return n > 0 && strcmp(norm, base) == 0;
}
