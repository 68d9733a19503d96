#include "proxy/proxy_protocol.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* Version 2's signature (spec §2.2). */
static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A decimal port, 0-65535, no sign, at most 5 digits. */
static int parse_port(const char *s, size_t len, uint16_t *out) {
  if (len == 0 || len > 5) return -1;
  unsigned v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  if (v > 65535) return -1;
  *out = (uint16_t)v;
  return 0;
}

/* The next space-separated word of [*p, end); -1 when there is none. */
static int word(const char **p, const char *end, const char **w, size_t *wlen) {
  const char *s = *p;
  const char *sp = memchr(s, ' ', (size_t)(end - s));
  const char *e = sp ? sp : end;
  if (e == s) return -1;
  *w = s;
  *wlen = (size_t)(e - s);
  *p = sp ? sp + 1 : end;
  return 0;
}

/* "PROXY TCP4 src dst sport dport\r\n" (spec §2.1). */
static long parse_v1(const uint8_t *buf, size_t len, px_proxy_header *out) {
  static const char sig[] = "PROXY ";
  size_t have = len < 6 ? len : 6;
  if (memcmp(buf, sig, have) != 0) return -1;
  size_t scan = len < PX_PROXY_V1_MAX ? len : PX_PROXY_V1_MAX;
  const uint8_t *cr = NULL;
  for (size_t i = 0; i < scan && cr == NULL; i++) {
    if (buf[i] != '\n') continue;
    if (i == 0 || buf[i - 1] != '\r') return -1; /* a bare LF ends no header */
    cr = buf + i - 1;
  }
  if (cr == NULL) return len >= PX_PROXY_V1_MAX ? -1 : 0;
  const char *p = (const char *)buf + 6, *end = (const char *)cr;
  for (const char *q = p; q < end; q++)
    if (*q < 0x20 || *q > 0x7e) return -1;
  memset(out, 0, sizeof(*out));
  out->version = 1;
  long total = (long)(cr - buf) + 2;
  const char *w;
  size_t wl;
  if (word(&p, end, &w, &wl) != 0) return -1;
  if (wl == 7 && memcmp(w, "UNKNOWN", 7) == 0) {
    out->local = 1; /* the rest of the line is to be ignored (§2.1) */
    return total;
  }
  int fam;
  if (wl == 4 && memcmp(w, "TCP4", 4) == 0)
    fam = AF_INET;
  else if (wl == 4 && memcmp(w, "TCP6", 4) == 0)
    fam = AF_INET6;
  else
    return -1;
  char addr[2][46];
  uint8_t bin[16];
  for (int i = 0; i < 2; i++) {
    if (word(&p, end, &w, &wl) != 0 || wl >= sizeof(addr[i])) return -1;
    memcpy(addr[i], w, wl);
    addr[i][wl] = '\0';
    if (inet_pton(fam, addr[i], i == 0 ? out->src : bin) != 1) return -1;
  }
  uint16_t dport;
  if (word(&p, end, &w, &wl) != 0 || parse_port(w, wl, &out->src_port) != 0) return -1;
  if (word(&p, end, &w, &wl) != 0 || parse_port(w, wl, &dport) != 0) return -1;
  if (p != end) return -1; /* nothing after the destination port */
  out->family = fam;
  return total;
}

/* The binary header (spec §2.2). */
static long parse_v2(const uint8_t *buf, size_t len, px_proxy_header *out) {
  size_t have = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
  if (memcmp(buf, v2_sig, have) != 0) return -1;
  if (len < 13) return 0;
  if ((buf[12] & 0xF0) != 0x20) return -1; /* version 2 */
  int cmd = buf[12] & 0x0F;
  if (cmd > 1) return -1; /* LOCAL or PROXY */
  if (len < 16) return 0;
  size_t body = (size_t)buf[14] << 8 | buf[15];
  if (16 + body > PX_PROXY_V2_MAX) return -1;
  if (len < 16 + body) return 0;
  memset(out, 0, sizeof(*out));
  out->version = 2;
  uint8_t fam = buf[13];
  const uint8_t *a = buf + 16;
  if (cmd == 0) { /* LOCAL: the balancer's own connection (a health check) */
    out->local = 1;
    return (long)(16 + body);
  }
  switch (fam) {
  case 0x11: /* TCP over IPv4: src 4, dst 4, ports 2 + 2 */
    if (body < 12) return -1;
    out->family = AF_INET;
    memcpy(out->src, a, 4);
    out->src_port = (uint16_t)(a[8] << 8 | a[9]);
    break;
  case 0x21: /* TCP over IPv6: src 16, dst 16, ports 2 + 2 */
    if (body < 36) return -1;
    out->family = AF_INET6;
    memcpy(out->src, a, 16);
    out->src_port = (uint16_t)(a[32] << 8 | a[33]);
    break;
  default: /* UNSPEC, UDP, UNIX: the receiver must use its own addresses */
    if ((fam & 0x0F) > 2 || (fam >> 4) > 3) return -1;
    out->local = 1;
    break;
  }
  /* The TLVs after the addresses are skipped: portico uses none of them. */
  return (long)(16 + body);
}

long px_proxy_parse(const uint8_t *buf, size_t len, px_proxy_header *out) {
  if (len == 0) return 0;
  if (buf[0] == 'P') return parse_v1(buf, len, out);
  if (buf[0] == 0x0D) return parse_v2(buf, len, out);
  return -1; /* neither: a client speaking TLS or HTTP straight away */
}
