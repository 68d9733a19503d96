#include "proxy/util/cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *px_cidr_parse(const char *s, px_cidr *out) {
  char buf[64];
  size_t len = strlen(s);
  if (len == 0 || len >= sizeof(buf)) return "is not an address or address/prefix";
  memcpy(buf, s, len + 1);
  char *slash = strchr(buf, '/');
  if (slash) *slash = '\0';
  memset(out, 0, sizeof(*out));
  if (inet_pton(AF_INET, buf, out->addr) == 1) {
    out->family = AF_INET;
    out->prefix = 32;
  } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
    out->family = AF_INET6;
    out->prefix = 128;
  } else {
    return "is not an IPv4 or IPv6 address (optionally /prefix)";
  }
  if (slash) {
    const char *p = slash + 1;
    if (*p < '0' || *p > '9' || strlen(p) > 3) return "has an invalid prefix length";
    int v = 0;
    for (; *p; p++) {
      if (*p < '0' || *p > '9') return "has an invalid prefix length";
      v = v * 10 + (*p - '0');
    }
    if (v > out->prefix) return "has a prefix longer than the address";
    out->prefix = v;
  }
  int bytes = out->family == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; i++) {
    int keep = out->prefix - i * 8; /* bits of this byte inside the prefix */
    uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
    if (out->addr[i] & ~mask) return "has host bits set below the prefix";
  }
  return NULL;
}

static int in_range(const px_cidr *c, const uint8_t *addr) {
  int full = c->prefix / 8, rest = c->prefix % 8;
  if (memcmp(c->addr, addr, (size_t)full) != 0) return 0;
  if (rest == 0) return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (addr[full] & mask) == c->addr[full];
}

int px_cidr_match(const px_cidr *list, size_t n, int family, const uint8_t *addr) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  /* An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d. */
  if (family == AF_INET6 && memcmp(addr, mapped, sizeof(mapped)) == 0) {
    family = AF_INET;
    addr += 12;
  }
  for (size_t i = 0; i < n; i++)
    if (list[i].family == family && in_range(&list[i], addr)) return 1;
  return 0;
}

int px_cidr_match_sockaddr(const px_cidr *list, size_t n, const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    return px_cidr_match(list, n, AF_INET, (const uint8_t *)&in->sin_addr);
  }
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    return px_cidr_match(list, n, AF_INET6, in6->sin6_addr.s6_addr);
  }
  return 0;
}
