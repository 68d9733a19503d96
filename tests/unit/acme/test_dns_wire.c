/* Unit tests for acme/dns/: DNS messages (wire.c), TSIG (tsig.c), the CAA
 * verdict (caa.c) and server addresses (exchange.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/digest.h>
#include <openssl/hmac.h>

#include "acme/dns/caa.h"
#include "acme/dns/exchange.h"
#include "acme/dns/tsig.h"
#include "acme/dns/wire.h"

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void test_name_to_wire(void **state) {
  (void)state;
  uint8_t out[300];
  int n = px_dns_name_to_wire("_ACME-challenge.Example.test.", out, sizeof(out));
  assert_int_equal(n, 1 + 15 + 1 + 7 + 1 + 4 + 1);
  assert_memory_equal(out,
                      "\x0f_acme-challenge\x07"
                      "example\x04test\x00",
                      (size_t)n);
  char label[70];
  memset(label, 'a', 64);
  label[64] = '\0';
  assert_int_equal(px_dns_name_to_wire(label, out, sizeof(out)), -EINVAL);
  assert_int_equal(px_dns_name_to_wire("a..b", out, sizeof(out)), -EINVAL);
  assert_int_equal(px_dns_name_to_wire("example.test", out, 5), -ENOSPC);
  assert_true(px_dns_name_in_zone("_acme-challenge.example.test", "Example.Test."));
  assert_true(px_dns_name_in_zone("example.test", "example.test"));
  assert_false(px_dns_name_in_zone("badexample.test", "example.test"));
  assert_true(px_dns_name_eq("A.b.", "a.B"));
}

static void test_update_and_parse(void **state) {
  (void)state;
  px_dns_msg *m = malloc(sizeof(*m));
  assert_int_equal(px_dns_build_update(m, 0x1234, "example.test"), 0);
  assert_int_equal(px_dns_update_txt(m, "_acme-challenge.example.test", "v1", 60, 0), 0);
  assert_int_equal(px_dns_update_txt(m, "_acme-challenge.example.test", "v2", 60, 1), 0);
  assert_int_equal(get16(m->buf), 0x1234);
  assert_int_equal(m->buf[2] >> 3, 5);    /* opcode UPDATE */
  assert_int_equal(get16(m->buf + 4), 1); /* ZOCOUNT */
  assert_int_equal(get16(m->buf + 8), 2); /* UPCOUNT */
  px_dns_answer *a = malloc(sizeof(*a));
  assert_int_equal(px_dns_parse(m->buf, m->len, a), 0);
  assert_int_equal(a->nrr, 2);
  assert_string_equal(a->rr[0].name, "_acme-challenge.example.test");
  assert_int_equal(a->rr[0].type, PX_DNS_TXT);
  assert_int_equal(a->rr[0].cls, PX_DNS_IN);
  assert_int_equal(a->rr[0].ttl, 60);
  assert_int_equal(a->rr[1].cls, PX_DNS_NONE); /* RFC 2136 §2.5.4 */
  assert_int_equal(a->rr[1].ttl, 0);
  char text[16];
  assert_int_equal(px_dns_txt_text(m->buf, m->len, &a->rr[1], text, sizeof(text)), 2);
  assert_string_equal(text, "v2");
  /* Every truncation of a good message is refused, never read past. */
  for (size_t cut = 0; cut < m->len; cut++)
    assert_int_equal(px_dns_parse(m->buf, cut, a), -EBADMSG);
  free(a);
  free(m);
}

static void test_malformed_names(void **state) {
  (void)state;
  char name[PX_DNS_NAME_MAX + 1];
  /* A pointer to itself: a loop. */
  uint8_t loop[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 12};
  assert_int_equal(px_dns_read_name(loop, sizeof(loop), 12, name), -EBADMSG);
  /* A pointer past the end. */
  uint8_t past[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xC0, 200};
  assert_int_equal(px_dns_read_name(past, sizeof(past), 12, name), -EBADMSG);
  /* A label running past the end. */
  uint8_t longl[] = {5, 'a', 'b'};
  assert_int_equal(px_dns_read_name(longl, sizeof(longl), 0, name), -EBADMSG);
  /* A good pointer, and bytes outside a host name's set made harmless. */
  uint8_t good[] = {3, 'c', 'o', 'm', 0, 3, 'W', '/', 'W', 0xC0, 0};
  assert_int_equal(px_dns_read_name(good, sizeof(good), 5, name), 11);
  assert_string_equal(name, "w?w.com");
  /* A header claiming records that are not there. */
  uint8_t hdr[12] = {0, 1, 0x80, 0, 0, 0, 0, 5, 0, 0, 0, 0};
  px_dns_answer *a = malloc(sizeof(*a));
  assert_int_equal(px_dns_parse(hdr, sizeof(hdr), a), -EBADMSG);
  free(a);
}

static px_dns_tsig_key test_key(void) {
  px_dns_tsig_key k;
  memset(&k, 0, sizeof(k));
  snprintf(k.name, sizeof(k.name), "portico-key");
  k.alg = PX_DNS_HMAC_SHA256;
  const char *b64 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
  assert_int_equal(px_dns_tsig_secret_decode(b64, strlen(b64), &k), 0);
  assert_int_equal(k.secret_len, 32);
  return k;
}

/* The TSIG variables of RFC 8945 §4.3.3, written out by hand. */
static size_t vars(uint8_t *out, int64_t t, uint16_t error) {
  static const uint8_t head[] = "\x0bportico-key\x00\x00\xff\x00\x00\x00\x00"
                                "\x0bhmac-sha256\x00";
  size_t o = sizeof(head) - 1;
  memcpy(out, head, o);
  for (int i = 5; i >= 0; i--)
    out[o++] = (uint8_t)((uint64_t)t >> (8 * i));
  out[o++] = 300 >> 8;
  out[o++] = 300 & 0xff;
  out[o++] = (uint8_t)(error >> 8);
  out[o++] = (uint8_t)error;
  out[o++] = 0;
  out[o++] = 0;
  return o;
}

static void test_tsig_sign_matches_rfc8945(void **state) {
  (void)state;
  px_dns_tsig_key k = test_key();
  px_dns_msg *m = malloc(sizeof(*m));
  assert_int_equal(px_dns_build_update(m, 0xBEEF, "example.test"), 0);
  assert_int_equal(px_dns_update_txt(m, "_acme-challenge.example.test", "value", 60, 0), 0);
  size_t unsigned_len = m->len;
  uint8_t copy[512];
  memcpy(copy, m->buf, unsigned_len);
  uint8_t mac[PX_DNS_TSIG_MAC_MAX];
  size_t mac_len = 0;
  int64_t t = 1700000000;
  assert_int_equal(px_dns_tsig_sign(m, &k, t, mac, &mac_len), 0);
  assert_int_equal(mac_len, 32);
  assert_int_equal(get16(m->buf + 10), 1); /* ARCOUNT */
  /* The MAC is HMAC-SHA256 over the unsigned message and the variables. */
  uint8_t data[1024], want[32];
  memcpy(data, copy, unsigned_len);
  size_t n = unsigned_len + vars(data + unsigned_len, t, 0);
  unsigned wl = 0;
  HMAC(EVP_sha256(), k.secret, k.secret_len, data, n, want, &wl);
  assert_memory_equal(mac, want, 32);
  px_dns_answer *a = malloc(sizeof(*a));
  assert_int_equal(px_dns_parse(m->buf, m->len, a), 0);
  assert_int_not_equal(a->tsig_off, 0);
  assert_int_equal(a->rr[a->nrr - 1].type, PX_DNS_TSIG);
  assert_string_equal(a->rr[a->nrr - 1].name, "portico-key");
  free(a);
  free(m);
}

static void test_tsig_verify(void **state) {
  (void)state;
  px_dns_tsig_key k = test_key();
  uint8_t req_mac[32];
  memset(req_mac, 0x5a, sizeof(req_mac));
  /* A response (QR, NOERROR) to an UPDATE of example.test, signed as a
   * server signs (RFC 8945 §5.3: request MAC, message, variables). */
  px_dns_msg *m = malloc(sizeof(*m));
  assert_int_equal(px_dns_build_update(m, 0x4242, "example.test"), 0);
  m->buf[2] |= 0x80;
  size_t body = m->len;
  int64_t t = 1700000001;
  uint8_t data[1024], mac[32];
  data[0] = 0;
  data[1] = 32;
  memcpy(data + 2, req_mac, 32);
  memcpy(data + 34, m->buf, body);
  size_t n = 34 + body + vars(data + 34 + body, t, 0);
  unsigned ml = 0;
  HMAC(EVP_sha256(), k.secret, k.secret_len, data, n, mac, &ml);
  /* Append the TSIG record. */
  uint8_t *p = m->buf + m->len;
  static const uint8_t owner[] = "\x0bportico-key\x00\x00\xfa\x00\xff\x00\x00\x00\x00";
  memcpy(p, owner, sizeof(owner) - 1);
  p += sizeof(owner) - 1;
  static const uint8_t alg[] = "\x0bhmac-sha256\x00";
  uint16_t rdlen = (uint16_t)(sizeof(alg) - 1 + 6 + 2 + 2 + 32 + 6);
  *p++ = (uint8_t)(rdlen >> 8);
  *p++ = (uint8_t)rdlen;
  memcpy(p, alg, sizeof(alg) - 1);
  p += sizeof(alg) - 1;
  for (int i = 5; i >= 0; i--)
    *p++ = (uint8_t)((uint64_t)t >> (8 * i));
  *p++ = 300 >> 8;
  *p++ = 300 & 0xff;
  *p++ = 0;
  *p++ = 32;
  memcpy(p, mac, 32);
  p += 32;
  *p++ = 0x42;
  *p++ = 0x42;
  memset(p, 0, 4);
  p += 4;
  m->len = (size_t)(p - m->buf);
  m->buf[11] = 1;
  px_dns_answer *a = malloc(sizeof(*a));
  assert_int_equal(px_dns_parse(m->buf, m->len, a), 0);
  int terr = -1;
  assert_int_equal(px_dns_tsig_verify(m->buf, m->len, a, &k, req_mac, 32, &terr), 0);
  assert_int_equal(terr, 0);
  /* Another request's MAC, or one flipped bit, and it no longer verifies. */
  req_mac[0] ^= 1;
  assert_int_equal(px_dns_tsig_verify(m->buf, m->len, a, &k, req_mac, 32, &terr), -EPERM);
  req_mac[0] ^= 1;
  m->buf[13] ^= 1;
  assert_int_equal(px_dns_parse(m->buf, m->len, a), 0);
  assert_int_equal(px_dns_tsig_verify(m->buf, m->len, a, &k, req_mac, 32, &terr), -EPERM);
  free(a);
  free(m);
}

static void test_key_files(void **state) {
  (void)state;
  char path[] = "/tmp/px-tsig-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *bind = "key \"k\" {\n\talgorithm hmac-sha256;\n\tsecret \"c2VjcmV0\";\n};\n";
  assert_int_equal(write(fd, bind, strlen(bind)), (ssize_t)strlen(bind));
  close(fd);
  px_dns_tsig_key k;
  memset(&k, 0, sizeof(k));
  char err[256];
  assert_int_equal(px_dns_tsig_key_load(path, &k, err, sizeof(err)), 0);
  assert_int_equal(k.secret_len, 6);
  assert_memory_equal(k.secret, "secret", 6);
  FILE *f = fopen(path, "w");
  fputs("  c2VjcmV0\n", f);
  fclose(f);
  assert_int_equal(px_dns_tsig_key_load(path, &k, err, sizeof(err)), 0);
  assert_memory_equal(k.secret, "secret", 6);
  f = fopen(path, "w");
  fputs("not base64 at all!\n", f);
  fclose(f);
  assert_int_equal(px_dns_tsig_key_load(path, &k, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "does not hold a base64 TSIG secret"));
  unlink(path);
  assert_int_equal(px_dns_tsig_key_load(path, &k, err, sizeof(err)), -1);
  assert_non_null(strstr(err, "cannot read"));
  assert_int_equal(px_dns_tsig_alg_parse("hmac-sha512"), PX_DNS_HMAC_SHA512);
  assert_int_equal(px_dns_tsig_alg_parse("hmac-md5"), -1);
}

/* An answer to a CAA query with the given (flags, tag, value) records. */
static size_t caa_answer(uint8_t *buf, const int *flags, const char *const *tags,
                         const char *const *values, size_t n) {
  px_dns_msg *m = malloc(sizeof(*m));
  assert_int_equal(px_dns_build_query(m, 7, "x.test", PX_DNS_CAA, 1), 0);
  m->buf[2] |= 0x80;
  m->buf[7] = (uint8_t)n;
  for (size_t i = 0; i < n; i++) {
    uint8_t *p = m->buf + m->len;
    *p++ = 0xC0; /* the question's name */
    *p++ = 12;
    *p++ = 1;
    *p++ = 1; /* type 257 */
    *p++ = 0;
    *p++ = 1;
    memset(p, 0, 4);
    p += 4;
    size_t tl = strlen(tags[i]), vl = strlen(values[i]);
    *p++ = 0;
    *p++ = (uint8_t)(2 + tl + vl);
    *p++ = (uint8_t)flags[i];
    *p++ = (uint8_t)tl;
    memcpy(p, tags[i], tl);
    p += tl;
    memcpy(p, values[i], vl);
    p += vl;
    m->len = (size_t)(p - m->buf);
  }
  size_t len = m->len;
  memcpy(buf, m->buf, len);
  free(m);
  return len;
}

static int verdict(const int *flags, const char *const *tags, const char *const *values, size_t n,
                   char *found, size_t cap) {
  static char pebble[] = "pebble.test", le[] = "letsencrypt.org";
  static char *const ids[] = {pebble, le, NULL};
  uint8_t buf[2048];
  size_t len = caa_answer(buf, flags, tags, values, n);
  px_dns_answer *a = malloc(sizeof(*a));
  assert_int_equal(px_dns_parse(buf, len, a), 0);
  int v = px_dns_caa_evaluate(buf, len, a, ids, found, cap);
  free(a);
  return v;
}

static void test_caa_verdicts(void **state) {
  (void)state;
  char found[256];
  int f0[] = {0, 0, 0};
  assert_int_equal(verdict(f0, NULL, NULL, 0, found, sizeof(found)), -1);
  const char *t1[] = {"issue"}, *v1[] = {"other-ca.example"};
  assert_int_equal(verdict(f0, t1, v1, 1, found, sizeof(found)), 0);
  assert_string_equal(found, "\"other-ca.example\"");
  const char *t2[] = {"issue", "issue"}, *v2[] = {"other-ca.example", " LetsEncrypt.org; x=y"};
  assert_int_equal(verdict(f0, t2, v2, 2, found, sizeof(found)), 1);
  const char *t3[] = {"iodef"}, *v3[] = {"mailto:a@b.test"};
  assert_int_equal(verdict(f0, t3, v3, 1, found, sizeof(found)), 1);
  const char *t4[] = {"issue"}, *v4[] = {";"};
  assert_int_equal(verdict(f0, t4, v4, 1, found, sizeof(found)), 0);
  int f5[] = {128};
  const char *t5[] = {"tbs"}, *v5[] = {"x"};
  assert_int_equal(verdict(f5, t5, v5, 1, found, sizeof(found)), 0);
  assert_non_null(strstr(found, "critical"));
}

static void test_addresses(void **state) {
  (void)state;
  struct sockaddr_storage ss;
  char s[64];
  assert_int_equal(px_dns_addr_parse("192.0.2.1:5353", &ss), 0);
  px_dns_addr_str(&ss, s, sizeof(s));
  assert_string_equal(s, "192.0.2.1:5353");
  assert_int_equal(px_dns_addr_parse("192.0.2.1", &ss), 0);
  px_dns_addr_str(&ss, s, sizeof(s));
  assert_string_equal(s, "192.0.2.1:53");
  assert_int_equal(px_dns_addr_parse("[2001:db8::1]:54", &ss), 0);
  px_dns_addr_str(&ss, s, sizeof(s));
  assert_string_equal(s, "[2001:db8::1]:54");
  assert_int_equal(px_dns_addr_parse("2001:db8::1", &ss), 0);
  assert_int_equal(px_dns_addr_parse("ns1.example.test", &ss), -EINVAL);
  assert_int_equal(px_dns_addr_parse("192.0.2.1:0", &ss), -EINVAL);
  assert_int_equal(px_dns_addr_parse("192.0.2.1:70000", &ss), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_name_to_wire),    cmocka_unit_test(test_update_and_parse),
      cmocka_unit_test(test_malformed_names), cmocka_unit_test(test_tsig_sign_matches_rfc8945),
      cmocka_unit_test(test_tsig_verify),     cmocka_unit_test(test_key_files),
      cmocka_unit_test(test_caa_verdicts),    cmocka_unit_test(test_addresses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
