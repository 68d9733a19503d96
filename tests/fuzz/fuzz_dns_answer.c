/*
 * DNS answers as a server (or anyone spoofing one) sends them to the dns-01
 * code: px_dns_parse, then every reader of a record (names, TXT, CAA), the
 * CAA verdict and the TSIG check of an UPDATE's answer.
 *
 * Oracle beyond the sanitizers: every record kept lies inside the message,
 * every name read is at most PX_DNS_NAME_MAX bytes, and a TSIG check with
 * a key the input cannot know never succeeds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/dns/caa.h"
#include "acme/dns/tsig.h"
#include "acme/dns/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static px_dns_answer a;
  if (px_dns_parse(data, size, &a) != 0) return 0;
  if (a.nrr > PX_DNS_RR_MAX) abort();
  char name[PX_DNS_NAME_MAX + 1], text[512], tag[32], value[300];
  for (size_t i = 0; i < a.nrr; i++) {
    const px_dns_rr *rr = &a.rr[i];
    if (rr->rdata_off + rr->rdlen > size || strlen(rr->name) > PX_DNS_NAME_MAX) abort();
    if (px_dns_read_name(data, size, rr->rdata_off, name) >= 0 && strlen(name) > PX_DNS_NAME_MAX)
      abort();
    px_dns_txt_text(data, size, rr, text, sizeof(text));
    int flags;
    px_dns_caa(data, size, rr, &flags, tag, sizeof(tag), value, sizeof(value));
  }
  static char pebble[] = "pebble.test";
  static char *const ids[] = {pebble, NULL};
  char found[256];
  px_dns_caa_evaluate(data, size, &a, ids, found, sizeof(found));
  px_dns_tsig_key k;
  memset(&k, 0, sizeof(k));
  memcpy(k.name, "portico-key", 12);
  k.alg = PX_DNS_HMAC_SHA256;
  memcpy(k.secret, "a secret the input cannot know!!", 32);
  k.secret_len = 32;
  uint8_t mac[32] = {1};
  int terr = 0;
  if (px_dns_tsig_verify(data, size, &a, &k, mac, sizeof(mac), &terr) == 0) abort();
  return 0;
}
