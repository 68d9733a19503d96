/*
 * TSIG (acme/dns/tsig.h, RFC 8945).
 */
#include "acme/dns/tsig.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/base64.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Largest key file read. */
#define KEY_FILE_MAX 4096

int px_dns_tsig_alg_parse(const char *s) {
  if (strcmp(s, "hmac-sha256") == 0) return PX_DNS_HMAC_SHA256;
  if (strcmp(s, "hmac-sha512") == 0) return PX_DNS_HMAC_SHA512;
  if (strcmp(s, "hmac-sha1") == 0) return PX_DNS_HMAC_SHA1;
  return -1;
}

const char *px_dns_tsig_alg_name(px_dns_tsig_alg alg) {
  return alg == PX_DNS_HMAC_SHA512 ? "hmac-sha512"
         : alg == PX_DNS_HMAC_SHA1 ? "hmac-sha1"
                                   : "hmac-sha256";
}

static const EVP_MD *alg_md(px_dns_tsig_alg alg) {
  return alg == PX_DNS_HMAC_SHA512 ? EVP_sha512()
         : alg == PX_DNS_HMAC_SHA1 ? EVP_sha1()
                                   : EVP_sha256();
}

int px_dns_tsig_secret_decode(const char *text, size_t len, px_dns_tsig_key *k) {
  uint8_t out[PX_DNS_TSIG_SECRET_MAX + 3];
  size_t need = 0, n = 0;
  if (len == 0 || !EVP_DecodedLength(&need, len) || need > sizeof(out) ||
      !EVP_DecodeBase64(out, &n, sizeof(out), (const uint8_t *)text, len) || n == 0 ||
      n > PX_DNS_TSIG_SECRET_MAX) {
    OPENSSL_cleanse(out, sizeof(out));
    return -EINVAL;
  }
  memcpy(k->secret, out, n);
  k->secret_len = n;
  OPENSSL_cleanse(out, sizeof(out));
  return 0;
}

int px_dns_tsig_key_load(const char *path, px_dns_tsig_key *k, char *err, size_t errlen) {
  char buf[KEY_FILE_MAX + 1];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return -1;
  }
  ssize_t n = read(fd, buf, KEY_FILE_MAX);
  int e = errno;
  close(fd);
  if (n < 0) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
    return -1;
  }
  buf[n] = '\0';
  /* A BIND key file: the quoted string after "secret". */
  const char *s = buf, *end;
  const char *sec = strstr(buf, "secret");
  if (sec) {
    s = strchr(sec, '"');
    end = s ? strchr(s + 1, '"') : NULL;
    if (s == NULL || end == NULL) {
      OPENSSL_cleanse(buf, sizeof(buf));
      snprintf(err, errlen, "%s has a `secret` without a quoted value", path);
      return -1;
    }
    s++;
  } else {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
      s++;
    end = s + strlen(s);
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
      end--;
  }
  int r = px_dns_tsig_secret_decode(s, (size_t)(end - s), k);
  OPENSSL_cleanse(buf, sizeof(buf));
  if (r != 0) {
    snprintf(err, errlen, "%s does not hold a base64 TSIG secret (1 to %d bytes)", path,
             PX_DNS_TSIG_SECRET_MAX);
    return -1;
  }
  return 0;
}

void px_dns_tsig_key_wipe(px_dns_tsig_key *k) {
  OPENSSL_cleanse(k->secret, sizeof(k->secret));
  k->secret_len = 0;
}

static void put16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* The TSIG variables (RFC 8945 §4.3.3) after the message: key name, class
 * ANY, TTL 0, algorithm, time signed, fudge, error, other (none). */
static int variables(const px_dns_tsig_key *k, int64_t t, uint16_t fudge, uint16_t error,
                     uint8_t *out, size_t cap) {
  int n = px_dns_name_to_wire(k->name, out, cap);
  if (n < 0) return n;
  size_t o = (size_t)n;
  if (o + 6 > cap) return -ENOSPC;
  put16(out + o, PX_DNS_ANY);
  memset(out + o + 2, 0, 4);
  o += 6;
  n = px_dns_name_to_wire(px_dns_tsig_alg_name(k->alg), out + o, cap - o);
  if (n < 0) return n;
  o += (size_t)n;
  if (o + 10 > cap) return -ENOSPC;
  uint64_t ut = (uint64_t)t;
  out[o] = (uint8_t)(ut >> 40);
  out[o + 1] = (uint8_t)(ut >> 32);
  out[o + 2] = (uint8_t)(ut >> 24);
  out[o + 3] = (uint8_t)(ut >> 16);
  out[o + 4] = (uint8_t)(ut >> 8);
  out[o + 5] = (uint8_t)ut;
  put16(out + o + 6, fudge);
  put16(out + o + 8, error);
  o += 10;
  if (o + 2 > cap) return -ENOSPC;
  put16(out + o, 0); /* other len */
  return (int)(o + 2);
}

/* HMAC over [prior MAC] + message + variables. */
static int compute(const px_dns_tsig_key *k, const uint8_t *prior, size_t prior_len,
                   const uint8_t *msg, size_t len, const uint8_t *vars, size_t vlen, uint8_t *mac,
                   unsigned *mac_len) {
  HMAC_CTX ctx;
  HMAC_CTX_init(&ctx);
  int ok = HMAC_Init_ex(&ctx, k->secret, k->secret_len, alg_md(k->alg), NULL);
  if (ok && prior) {
    uint8_t l[2];
    put16(l, (uint16_t)prior_len);
    ok = HMAC_Update(&ctx, l, 2) && HMAC_Update(&ctx, prior, prior_len);
  }
  ok = ok && HMAC_Update(&ctx, msg, len) && HMAC_Update(&ctx, vars, vlen) &&
       HMAC_Final(&ctx, mac, mac_len);
  HMAC_CTX_cleanup(&ctx);
  return ok ? 0 : -EINVAL;
}

int px_dns_tsig_sign(px_dns_msg *m, const px_dns_tsig_key *k, int64_t now, uint8_t *mac,
                     size_t *mac_len) {
  uint8_t vars[2 * (PX_DNS_NAME_MAX + 2) + 32];
  int vl = variables(k, now, PX_DNS_TSIG_FUDGE, 0, vars, sizeof(vars));
  if (vl < 0) return vl;
  unsigned ml = 0;
  if (compute(k, NULL, 0, m->buf, m->len, vars, (size_t)vl, mac, &ml) != 0) return -EINVAL;
  *mac_len = ml;
  /* The record: owner = key name, TYPE TSIG, CLASS ANY, TTL 0, then rdata
   * algorithm, time, fudge, MAC size, MAC, original ID, error, other. */
  uint8_t alg[64];
  int al = px_dns_name_to_wire(px_dns_tsig_alg_name(k->alg), alg, sizeof(alg));
  int nl = px_dns_name_to_wire(k->name, m->buf + m->len, sizeof(m->buf) - m->len);
  if (al < 0 || nl < 0) return -ENOSPC;
  size_t rdlen = (size_t)al + 6 + 2 + 2 + ml + 2 + 2 + 2;
  size_t o = m->len + (size_t)nl;
  if (o + 10 + rdlen > sizeof(m->buf)) return -ENOSPC;
  uint8_t *p = m->buf + o;
  put16(p, PX_DNS_TSIG);
  put16(p + 2, PX_DNS_ANY);
  memset(p + 4, 0, 4);
  put16(p + 8, (uint16_t)rdlen);
  p += 10;
  memcpy(p, alg, (size_t)al);
  p += al;
  /* time signed and fudge, as in the variables after the algorithm name */
  memcpy(p, vars + vl - 12, 8);
  p += 8;
  put16(p, (uint16_t)ml);
  memcpy(p + 2, mac, ml);
  p += 2 + ml;
  memcpy(p, m->buf, 2); /* original ID */
  put16(p + 2, 0);
  put16(p + 4, 0);
  m->len = o + 10 + rdlen;
  put16(m->buf + 10, (uint16_t)(get16(m->buf + 10) + 1));
  return 0;
}

int px_dns_tsig_verify(const uint8_t *msg, size_t len, const px_dns_answer *a,
                       const px_dns_tsig_key *k, const uint8_t *req_mac, size_t req_mac_len,
                       int *tsig_error) {
  if (a->tsig_off == 0 || a->tsig_off < 12 || a->arcount == 0) return -ENOENT;
  const px_dns_rr *rr = NULL;
  for (size_t i = 0; i < a->nrr; i++)
    if (a->rr[i].type == PX_DNS_TSIG && a->rr[i].section == 3) rr = &a->rr[i];
  if (rr == NULL) return -ENOENT;
  char alg[PX_DNS_NAME_MAX + 1];
  int off = px_dns_read_name(msg, len, rr->rdata_off, alg);
  size_t end = rr->rdata_off + rr->rdlen;
  if (off < 0 || (size_t)off + 10 > end) return -EBADMSG;
  const uint8_t *p = msg + off;
  int64_t t = (int64_t)((uint64_t)p[0] << 40 | (uint64_t)p[1] << 32 | (uint64_t)p[2] << 24 |
                        (uint64_t)p[3] << 16 | (uint64_t)p[4] << 8 | p[5]);
  uint16_t fudge = get16(p + 6), mac_size = get16(p + 8);
  if ((size_t)off + 10 + mac_size + 6 > end) return -EBADMSG;
  const uint8_t *mac = p + 10;
  uint16_t orig_id = get16(mac + mac_size), error = get16(mac + mac_size + 2);
  *tsig_error = error;
  if (!px_dns_name_eq(rr->name, k->name) || !px_dns_name_eq(alg, px_dns_tsig_alg_name(k->alg)))
    return -EPERM;
  if (mac_size == 0) return -EPERM; /* BADSIG/BADKEY answers are unsigned (§5.3.2) */
  /* The message as it was before the TSIG was added: original ID,
   * ARCOUNT one less, the record cut off (RFC 8945 §4.3.2). */
  uint8_t head[12];
  memcpy(head, msg, 12);
  put16(head, orig_id);
  put16(head + 10, (uint16_t)(a->arcount - 1));
  uint8_t vars[2 * (PX_DNS_NAME_MAX + 2) + 32];
  int vl = variables(k, t, fudge, error, vars, sizeof(vars));
  if (vl < 0) return -EBADMSG;
  HMAC_CTX ctx;
  uint8_t want[EVP_MAX_MD_SIZE];
  unsigned wl = 0;
  uint8_t l[2];
  put16(l, (uint16_t)req_mac_len);
  HMAC_CTX_init(&ctx);
  int ok = HMAC_Init_ex(&ctx, k->secret, k->secret_len, alg_md(k->alg), NULL) &&
           HMAC_Update(&ctx, l, 2) && HMAC_Update(&ctx, req_mac, req_mac_len) &&
           HMAC_Update(&ctx, head, 12) && HMAC_Update(&ctx, msg + 12, a->tsig_off - 12) &&
           HMAC_Update(&ctx, vars, (size_t)vl) && HMAC_Final(&ctx, want, &wl);
  HMAC_CTX_cleanup(&ctx);
  if (!ok || wl != mac_size || CRYPTO_memcmp(want, mac, wl) != 0) return -EPERM;
  return 0;
}
