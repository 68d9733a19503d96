/*
 * The CAA check (acme/dns/caa.h, RFC 8659).
 */
#include "acme/dns/caa.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme/dns/exchange.h"

/* Longest CAA value looked at; longer ones are cut (and then match no
 * issuer domain). */
#define CAA_VALUE_MAX 256

typedef struct caa_walk {
  uv_loop_t *loop;
  struct sockaddr_storage server;
  int rd;
  char name[PX_DNS_NAME_MAX + 1];
  char *const *identities;
  uint64_t timeout_ms;
  px_dns_caa_cb cb;
  void *arg;
} caa_walk;

/* "letsencrypt.org; validationmethods=dns-01" -> "letsencrypt.org". */
static void issuer_of(const char *value, char *out, size_t cap) {
  while (*value == ' ' || *value == '\t')
    value++;
  size_t n = strcspn(value, "; \t");
  if (n >= cap) n = cap - 1;
  memcpy(out, value, n);
  out[n] = '\0';
}

int px_dns_caa_evaluate(const uint8_t *msg, size_t len, const px_dns_answer *a,
                        char *const *identities, char *found, size_t cap) {
  int any = 0, issue = 0;
  size_t o = 0;
  found[0] = '\0';
  for (size_t i = 0; i < a->nrr; i++) {
    const px_dns_rr *rr = &a->rr[i];
    if (rr->section != 1 || rr->type != PX_DNS_CAA) continue;
    int flags = 0;
    char tag[32], value[CAA_VALUE_MAX + 1], issuer[CAA_VALUE_MAX + 1];
    if (px_dns_caa(msg, len, rr, &flags, tag, sizeof(tag), value, sizeof(value)) != 0) continue;
    any = 1;
    if (strcasecmp(tag, "issue") == 0) {
      issue = 1;
      issuer_of(value, issuer, sizeof(issuer));
      for (size_t k = 0; identities && identities[k]; k++)
        if (issuer[0] && strcasecmp(issuer, identities[k]) == 0) return 1;
      int n = snprintf(found + o, cap - o, "%s\"%s\"", o ? ", " : "", issuer);
      if (n > 0 && o + (size_t)n < cap) o += (size_t)n;
    } else if ((flags & 0x80) && strcasecmp(tag, "issuewild") != 0 &&
               strcasecmp(tag, "iodef") != 0) {
      /* §4.1: an unknown property marked critical forbids issuance. */
      snprintf(found, cap, "an unknown critical property \"%s\"", tag);
      return 0;
    }
  }
  if (!any) return -1;
  return issue ? 0 : 1; /* §4.2: no issue property, no restriction */
}

static int ask(caa_walk *w);

static void on_answer(void *arg, const char *err, const uint8_t *msg, size_t len) {
  caa_walk *w = arg;
  char found[512], why[300];
  px_dns_answer *a = NULL;
  if (err == NULL && (a = px_dns_parse_new(msg, len, &err)) != NULL && a->rcode != PX_DNS_NOERROR &&
      a->rcode != PX_DNS_NXDOMAIN) {
    snprintf(why, sizeof(why), "the server answered %s for %s", px_dns_rcode_name(a->rcode),
             w->name);
    err = why;
  }
  if (err) {
    w->cb(w->arg, err, 0, "", "");
    free(a);
    free(w);
    return;
  }
  int v = px_dns_caa_evaluate(msg, len, a, w->identities, found, sizeof(found));
  free(a);
  const char *dot = strchr(w->name, '.');
  if (v < 0 && dot && strchr(dot + 1, '.')) {
    /* §3: no CAA here; the parent's set is relevant. (A top-level domain's
     * own set is not looked at.) */
    memmove(w->name, dot + 1, strlen(dot + 1) + 1);
    if (ask(w) == 0) return;
    w->cb(w->arg, "out of memory", 0, "", "");
    free(w);
    return;
  }
  w->cb(w->arg, NULL, v != 0, v < 0 ? "" : w->name, found);
  free(w);
}

static int ask(caa_walk *w) {
  px_dns_msg *m = malloc(sizeof(*m));
  if (m == NULL) return -ENOMEM;
  uint16_t id;
  RAND_bytes((uint8_t *)&id, sizeof(id));
  int r = px_dns_build_query(m, id, w->name, PX_DNS_CAA, w->rd);
  px_dns_exchange *x = r == 0 ? px_dns_exchange_start(w->loop, &w->server, m->buf, m->len,
                                                      w->timeout_ms, on_answer, w)
                              : NULL;
  free(m);
  return x ? 0 : -ENOMEM;
}

int px_dns_caa_check(uv_loop_t *loop, const struct sockaddr_storage *server, int rd,
                     const char *name, char *const *identities, uint64_t timeout_ms,
                     px_dns_caa_cb cb, void *arg) {
  caa_walk *w = calloc(1, sizeof(*w));
  if (w == NULL || strlen(name) > PX_DNS_NAME_MAX) {
    free(w);
    return -ENOMEM;
  }
  w->loop = loop;
  w->server = *server;
  w->rd = rd;
  snprintf(w->name, sizeof(w->name), "%s", name);
  w->identities = identities;
  w->timeout_ms = timeout_ms ? timeout_ms : 5000;
  w->cb = cb;
  w->arg = arg;
  if (ask(w) != 0) {
    free(w);
    return -ENOMEM;
  }
  return 0;
}
