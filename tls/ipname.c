/*
 * IP address literals: canonical names, the RFC 8738 reverse-DNS SNI, and a
 * socket's local address as a name.
 */
#include "tls/ipname.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* Writes the canonical name of 4 or 16 address bytes. */
static int name_of_bytes(const uint8_t *b, int family, char *out, size_t cap) {
  char text[INET6_ADDRSTRLEN];
  if (inet_ntop(family, b, text, sizeof(text)) == NULL) return -1;
  int n = family == AF_INET6 ? snprintf(out, cap, "[%s]", text) : snprintf(out, cap, "%s", text);
  return n > 0 && (size_t)n < cap ? n : -1;
}

int px_ip_name_normalize(const char *in, size_t len, char *out, size_t cap) {
  char text[INET6_ADDRSTRLEN];
  uint8_t b[16];
  if (in == NULL) return -1;
  if (len >= 2 && in[0] == '[' && in[len - 1] == ']') {
    in++;
    len -= 2;
    if (memchr(in, ':', len) == NULL) return -1; /* brackets hold IPv6 only */
  }
  if (len == 0 || len >= sizeof(text) || memchr(in, '\0', len) != NULL) return -1;
  memcpy(text, in, len);
  text[len] = '\0';
  /* inet_pton takes dotted decimal only (no "127.1", no octal, no leading
   * zeros), unlike inet_aton. A zone ("fe80::1%eth0") is refused: it means
   * nothing outside this host. */
  if (inet_pton(AF_INET, text, b) == 1) return name_of_bytes(b, AF_INET, out, cap);
  if (inet_pton(AF_INET6, text, b) == 1) return name_of_bytes(b, AF_INET6, out, cap);
  return -1;
}

int px_ip_name_bytes(const char *name, uint8_t out[16]) {
  char canon[PX_IP_NAME_MAX];
  if (name == NULL) return 0;
  size_t len = strlen(name);
  if (px_ip_name_normalize(name, len, canon, sizeof(canon)) < 0 || strcmp(canon, name) != 0)
    return 0;
  if (name[0] != '[') return inet_pton(AF_INET, name, out) == 1 ? 4 : 0;
  char bare[INET6_ADDRSTRLEN];
  memcpy(bare, name + 1, len - 2);
  bare[len - 2] = '\0';
  return inet_pton(AF_INET6, bare, out) == 1 ? 16 : 0;
}

int px_ip_name_is(const char *name) {
  uint8_t b[16];
  return px_ip_name_bytes(name, b) != 0;
}

int px_ip_name_bare(const char *name, char *out, size_t cap) {
  uint8_t b[16];
  int n = px_ip_name_bytes(name, b);
  if (n == 0) return -1;
  size_t len = strlen(name), skip = n == 16 ? 1 : 0, keep = len - 2 * skip;
  if (keep + 1 > cap) return -1;
  memcpy(out, name + skip, keep);
  out[keep] = '\0';
  return (int)keep;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int px_ip_name_from_reverse(const char *sni, char *out, size_t cap) {
  static const char v4[] = ".in-addr.arpa", v6[] = ".ip6.arpa";
  uint8_t b[16];
  if (sni == NULL) return -1;
  size_t len = strlen(sni);
  if (len > 0 && sni[len - 1] == '.') len--;
  if (len > sizeof(v4) - 1 && strncmp(sni + len - (sizeof(v4) - 1), v4, sizeof(v4) - 1) == 0) {
    /* Four decimal labels, least significant first (RFC 1035 §3.5). */
    const char *p = sni, *end = sni + len - (sizeof(v4) - 1);
    for (int i = 3; i >= 0; i--) {
      unsigned v = 0, digits = 0;
      for (; p < end && *p >= '0' && *p <= '9'; p++, digits++)
        v = v * 10 + (unsigned)(*p - '0');
      /* No leading zeros: one spelling per address. */
      if (digits == 0 || digits > 3 || v > 255 || (digits > 1 && p[-(int)digits] == '0')) return -1;
      b[i] = (uint8_t)v;
      if (i > 0 && (p >= end || *p++ != '.')) return -1;
    }
    return p == end ? name_of_bytes(b, AF_INET, out, cap) : -1;
  }
  if (len == 63 + sizeof(v6) - 1 && strncmp(sni + 63, v6, sizeof(v6) - 1) == 0) {
    /* 32 nibbles "x.", least significant first (RFC 3596 §2.5). */
    for (int i = 0; i < 32; i++) {
      int v = hex_value(sni[2 * i]);
      if (v < 0 || (i < 31 && sni[2 * i + 1] != '.')) return -1;
      int byte = 15 - i / 2;
      if (i % 2 == 0)
        b[byte] = (uint8_t)v;
      else
        b[byte] = (uint8_t)(b[byte] | (v << 4));
    }
    return name_of_bytes(b, AF_INET6, out, cap);
  }
  return -1;
}

int px_ip_name_from_sockaddr(const struct sockaddr *sa, char *out, size_t cap) {
  if (sa == NULL) return -1;
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in a;
    memcpy(&a, sa, sizeof(a)); /* `sa` may be a plain struct sockaddr's alignment */
    return name_of_bytes((const uint8_t *)&a.sin_addr, AF_INET, out, cap);
  }
  if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 a;
    memcpy(&a, sa, sizeof(a));
    const uint8_t *b = a.sin6_addr.s6_addr;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    /* A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d. */
    if (memcmp(b, mapped, sizeof(mapped)) == 0) return name_of_bytes(b + 12, AF_INET, out, cap);
    return name_of_bytes(b, AF_INET6, out, cap);
  }
  return -1;
}
