/*
 * DNS messages on the wire (acme/dns/wire.h).
 */
#include "acme/dns/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Compression pointers followed while reading one name: more means a loop. */
#define MAX_POINTERS 32

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

int px_dns_name_to_wire(const char *name, uint8_t *out, size_t cap) {
  size_t n = strlen(name), o = 0;
  if (n > 0 && name[n - 1] == '.') n--;
  if (n > PX_DNS_NAME_MAX) return -EINVAL;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && name[j] != '.')
      j++;
    size_t l = j - i;
    if (l == 0 || l > 63) return -EINVAL;
    if (o + 1 + l + 1 > cap) return -ENOSPC;
    out[o++] = (uint8_t)l;
    for (size_t k = i; k < j; k++) {
      char c = name[k];
      out[o++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    i = j + 1;
  }
  if (o + 1 > cap) return -ENOSPC;
  out[o++] = 0;
  return (int)o;
}

/* Appends bytes, or -ENOSPC. */
static int put(px_dns_msg *m, const void *p, size_t n) {
  if (m->len + n > sizeof(m->buf)) return -ENOSPC;
  memcpy(m->buf + m->len, p, n);
  m->len += n;
  return 0;
}

static int put_u16(px_dns_msg *m, uint16_t v) {
  uint8_t b[2];
  put16(b, v);
  return put(m, b, 2);
}

static int put_name(px_dns_msg *m, const char *name) {
  int n = px_dns_name_to_wire(name, m->buf + m->len, sizeof(m->buf) - m->len);
  if (n < 0) return n;
  m->len += (size_t)n;
  return 0;
}

/* Header with `flags`, then a question/zone entry (RFC 1035 §4.1.2). */
static int start(px_dns_msg *m, uint16_t id, uint16_t flags, const char *name, uint16_t type) {
  memset(m->buf, 0, 12);
  put16(m->buf, id);
  put16(m->buf + 2, flags);
  put16(m->buf + 4, 1);
  m->len = 12;
  int r = put_name(m, name);
  if (r == 0) r = put_u16(m, type);
  if (r == 0) r = put_u16(m, PX_DNS_IN);
  return r;
}

int px_dns_build_query(px_dns_msg *m, uint16_t id, const char *name, uint16_t type, int rd) {
  return start(m, id, rd ? 0x0100 : 0, name, type);
}

int px_dns_build_update(px_dns_msg *m, uint16_t id, const char *zone) {
  /* Opcode 5 (UPDATE, RFC 2136 §2.2); the zone section is the question. */
  return start(m, id, 5 << 11, zone, PX_DNS_SOA);
}

int px_dns_update_txt(px_dns_msg *m, const char *name, const char *text, uint32_t ttl, int del) {
  size_t tl = strlen(text);
  if (tl > 255) return -EINVAL; /* one character-string (RFC 1035 §3.3) */
  size_t mark = m->len;
  uint8_t b[4] = {(uint8_t)(ttl >> 24), (uint8_t)(ttl >> 16), (uint8_t)(ttl >> 8), (uint8_t)ttl};
  uint8_t l = (uint8_t)tl;
  int r = put_name(m, name);
  if (r == 0) r = put_u16(m, PX_DNS_TXT);
  /* RFC 2136 §2.5.4: class NONE and TTL 0 delete this one RR. */
  if (r == 0) r = put_u16(m, del ? PX_DNS_NONE : PX_DNS_IN);
  if (del) memset(b, 0, sizeof(b));
  if (r == 0) r = put(m, b, 4);
  if (r == 0) r = put_u16(m, (uint16_t)(tl + 1));
  if (r == 0) r = put(m, &l, 1);
  if (r == 0) r = put(m, text, tl);
  if (r != 0) {
    m->len = mark;
    return r;
  }
  put16(m->buf + 8, (uint16_t)(get16(m->buf + 8) + 1)); /* UPCOUNT (NSCOUNT's place) */
  return 0;
}

int px_dns_read_name(const uint8_t *msg, size_t len, size_t off, char *out) {
  size_t o = 0, end = 0;
  int jumps = 0;
  for (;;) {
    if (off >= len) return -EBADMSG;
    uint8_t l = msg[off];
    if ((l & 0xC0) == 0xC0) { /* compression pointer (RFC 1035 §4.1.4) */
      if (off + 1 >= len || ++jumps > MAX_POINTERS) return -EBADMSG;
      if (end == 0) end = off + 2;
      off = (size_t)((l & 0x3F) << 8 | msg[off + 1]);
      continue;
    }
    if (l & 0xC0) return -EBADMSG;
    if (l == 0) {
      if (end == 0) end = off + 1;
      break;
    }
    if (off + 1 + l > len || o + l + 1 > PX_DNS_NAME_MAX + 1) return -EBADMSG;
    if (o > 0) out[o++] = '.';
    for (size_t k = 0; k < l; k++) {
      uint8_t c = msg[off + 1 + k];
      /* Only what a host name or "_acme-challenge" may hold is kept as is. */
      int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '*';
      out[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : ok ? c : '?');
    }
    if (o > PX_DNS_NAME_MAX) return -EBADMSG;
    off += 1 + l;
  }
  out[o] = '\0';
  return (int)end;
}

px_dns_answer *px_dns_parse_new(const uint8_t *msg, size_t len, const char **err) {
  px_dns_answer *a = malloc(sizeof(*a));
  if (a == NULL) {
    *err = "out of memory";
  } else if (px_dns_parse(msg, len, a) != 0) {
    *err = "the DNS server sent a malformed answer";
    free(a);
    a = NULL;
  }
  return a;
}

int px_dns_parse(const uint8_t *msg, size_t len, px_dns_answer *a) {
  memset(a, 0, sizeof(*a));
  if (len < 12) return -EBADMSG;
  a->id = get16(msg);
  a->flags = get16(msg + 2);
  a->rcode = a->flags & 0xF;
  a->tc = (a->flags >> 9) & 1;
  unsigned qd = get16(msg + 4), an = get16(msg + 6), ns = get16(msg + 8), ar = get16(msg + 10);
  a->arcount = (uint16_t)ar;
  size_t off = 12;
  char name[PX_DNS_NAME_MAX + 1];
  for (unsigned i = 0; i < qd; i++) {
    int r = px_dns_read_name(msg, len, off, name);
    if (r < 0 || (size_t)r + 4 > len) return -EBADMSG;
    off = (size_t)r + 4;
  }
  unsigned total = an + ns + ar;
  for (unsigned i = 0; i < total; i++) {
    size_t rr_off = off;
    int r = px_dns_read_name(msg, len, off, name);
    if (r < 0 || (size_t)r + 10 > len) return -EBADMSG;
    off = (size_t)r;
    uint16_t rdlen = get16(msg + off + 8);
    if (off + 10 + rdlen > len) return -EBADMSG;
    if (a->nrr < PX_DNS_RR_MAX) {
      px_dns_rr *rr = &a->rr[a->nrr++];
      memcpy(rr->name, name, sizeof(name));
      rr->type = get16(msg + off);
      rr->cls = get16(msg + off + 2);
      rr->ttl = (uint32_t)get16(msg + off + 4) << 16 | get16(msg + off + 6);
      rr->rdata_off = off + 10;
      rr->rdlen = rdlen;
      rr->section = i < an ? 1 : i < an + ns ? 2 : 3;
      if (rr->type == PX_DNS_TSIG && i == total - 1) a->tsig_off = rr_off;
    }
    off += 10 + rdlen;
  }
  return 0;
}

int px_dns_txt_text(const uint8_t *msg, size_t len, const px_dns_rr *rr, char *out, size_t cap) {
  size_t off = rr->rdata_off, end = off + rr->rdlen, o = 0;
  if (end > len || cap == 0) return -EBADMSG;
  while (off < end) {
    size_t l = msg[off++];
    if (off + l > end) return -EBADMSG;
    if (o + l + 1 > cap) return -ENOSPC;
    memcpy(out + o, msg + off, l);
    o += l;
    off += l;
  }
  out[o] = '\0';
  return (int)o;
}

int px_dns_caa(const uint8_t *msg, size_t len, const px_dns_rr *rr, int *flags, char *tag,
               size_t tag_cap, char *value, size_t value_cap) {
  size_t off = rr->rdata_off, end = off + rr->rdlen;
  if (end > len || rr->rdlen < 2 || tag_cap == 0 || value_cap == 0) return -EBADMSG;
  *flags = msg[off];
  size_t tl = msg[off + 1];
  if (off + 2 + tl > end) return -EBADMSG;
  size_t n = tl < tag_cap - 1 ? tl : tag_cap - 1;
  memcpy(tag, msg + off + 2, n);
  tag[n] = '\0';
  size_t vo = off + 2 + tl, vl = end - vo;
  n = vl < value_cap - 1 ? vl : value_cap - 1;
  memcpy(value, msg + vo, n);
  value[n] = '\0';
  return 0;
}

const char *px_dns_rcode_name(int rcode) {
  static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                      "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                      "NXRRSET", "NOTAUTH", "NOTZONE"};
  if (rcode >= 0 && rcode < (int)(sizeof(names) / sizeof(names[0]))) return names[rcode];
  if (rcode == PX_DNS_BADSIG) return "BADSIG";
  if (rcode == PX_DNS_BADKEY) return "BADKEY";
  if (rcode == PX_DNS_BADTIME) return "BADTIME";
  return "an unknown RCODE";
}

static size_t trimmed_len(const char *s) {
  size_t n = strlen(s);
  return n > 0 && s[n - 1] == '.' ? n - 1 : n;
}

int px_dns_name_eq(const char *a, const char *b) {
  size_t na = trimmed_len(a), nb = trimmed_len(b);
  return na == nb && strncasecmp(a, b, na) == 0;
}

int px_dns_name_in_zone(const char *name, const char *zone) {
  size_t nn = trimmed_len(name), nz = trimmed_len(zone);
  if (nz == 0) return 1; /* the root holds everything */
  if (nn < nz || strncasecmp(name + nn - nz, zone, nz) != 0) return 0;
  return nn == nz || name[nn - nz - 1] == '.';
}
