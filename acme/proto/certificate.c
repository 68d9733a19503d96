/*
 * The certificate download (RFC 8555 §7.4.2): the chain as the CA sends
 * it, the URLs of its rel="alternate" chains, and, for a lone leaf, its
 * issuer fetched from Link rel="up" rather than ever hard-coding an
 * intermediate.
 */
#include <stdlib.h>
#include <string.h>

#include "acme/link.h"
#include "acme/proto/chain.h"
#include "acme/proto/order_internal.h"
#include "tls/log.h"

static void finish_download(px__acme_order *o, size_t certs);

/* 1 when the chain's topmost issuer is acme.preferred_chain. */
static int preferred(const px__acme_order *o, const char *pem, size_t len, char *top, size_t cap) {
  top[0] = '\0';
  if (px_acme_chain_top_issuer(pem, len, top, cap) != 0) return 0;
  return strcmp(top, o->c->o.preferred_chain) == 0;
}

static void next_alternate(px__acme_order *o);

/* An alternate chain (RFC 8555 §7.4.2): kept when its top issuer is the
 * preferred one. */
static void on_alternate(px__acme_order *o, const char *err, px_acme_response *r) {
  char top[PX_ACME_CHAIN_CN_MAX + 1];
  if (err == NULL && r->body && preferred(o, r->body, r->body_len, top, sizeof(top))) {
    px_log(PX_LOG_INFO,
           "acme: order for %s: using the alternate chain to \"%s\" (acme.preferred_chain)",
           o->names[0], top);
    free(o->result.cert_pem);
    o->result.cert_pem = r->body;
    o->result.cert_len = r->body_len;
    r->body = NULL;
    px_acme_response_free(r);
    o->alt_i = o->result.nalternates; /* done looking */
    finish_download(o, 0);
    return;
  }
  if (err) /* a chain we cannot fetch is one we do not use */
    px_log(PX_LOG_WARN, "acme: order for %s: alternate chain %zu: %s", o->names[0], o->alt_i, err);
  else
    px_acme_response_free(r);
  o->alt_i++;
  next_alternate(o);
}

static void next_alternate(px__acme_order *o) {
  if (o->alt_i < o->result.nalternates) {
    px__acme_order_step(o, "alternate chain download");
    px__acme_post(o, o->result.alternates[o->alt_i], "", 1, on_alternate);
    return;
  }
  px_log(PX_LOG_INFO,
         "acme: order for %s: no chain's top issuer is \"%s\" (acme.preferred_chain); using the "
         "default chain",
         o->names[0], o->c->o.preferred_chain);
  finish_download(o, 0);
}

static void finish_download(px__acme_order *o, size_t certs) {
  char top[PX_ACME_CHAIN_CN_MAX + 1];
  if (o->c->o.preferred_chain && o->alt_i == 0 && !o->chain_checked) {
    o->chain_checked = 1;
    if (!preferred(o, o->result.cert_pem, o->result.cert_len, top, sizeof(top))) {
      next_alternate(o);
      return;
    }
  }
  if (certs == 0)
    for (const char *p = o->result.cert_pem; (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++)
      certs++;
  size_t klen = 0;
  o->result.key_pem = px_acme_key_to_pem(o->cert_key, &klen);
  o->result.key_len = klen;
  if (o->result.key_pem == NULL) {
    px__acme_order_fail(o, "cannot encode the certificate key");
    return;
  }
  px_log(PX_LOG_INFO,
         "acme: order for %s: certificate downloaded (%zu certificates, %zu alternate chains)",
         o->names[0], certs, o->result.nalternates);
  px__acme_order_done(o, NULL);
}

/* The issuer's certificate, appended to the chain. */
static void on_issuer(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  size_t n = o->result.cert_len;
  char *chain = r->body ? realloc(o->result.cert_pem, n + r->body_len + 2) : NULL;
  if (chain == NULL) {
    px_acme_response_free(r);
    px__acme_order_fail(o, "cannot assemble the chain");
    return;
  }
  if (n && chain[n - 1] != '\n') chain[n++] = '\n';
  memcpy(chain + n, r->body, r->body_len + 1);
  o->result.cert_pem = chain;
  o->result.cert_len = n + r->body_len;
  px_acme_response_free(r);
  finish_download(o, 2);
}

static void on_certificate(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  if (r->body == NULL) {
    px_acme_response_free(r);
    px__acme_order_fail(o, "the CA sent no certificate");
    return;
  }
  o->result.cert_pem = r->body;
  o->result.cert_len = r->body_len;
  r->body = NULL;
  size_t pos = 0;
  char *alt;
  while ((alt = px_acme_link(r, "alternate", &pos)) != NULL &&
         o->result.nalternates < PX_ACME_MAX_LINKS) {
    char **n = realloc(o->result.alternates, (o->result.nalternates + 1) * sizeof(char *));
    if (n == NULL) {
      free(alt);
      break;
    }
    o->result.alternates = n;
    o->result.alternates[o->result.nalternates++] = alt;
  }
  size_t certs = 0;
  for (const char *p = o->result.cert_pem; (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++)
    certs++;
  if (certs == 0) {
    px_acme_response_free(r);
    px__acme_order_fail(o, "the CA sent no certificate");
    return;
  }
  char *up = certs == 1 && o->up_fetches < 2 ? px_acme_link(r, "up", NULL) : NULL;
  px_acme_response_free(r);
  if (up) {
    o->up_fetches++;
    px__acme_order_step(o, "issuer download");
    px__acme_post(o, up, "", 1, on_issuer);
    free(up);
    return;
  }
  finish_download(o, certs);
}

void px__acme_certificate_download(px__acme_order *o) {
  px__acme_order_step(o, "download");
  px__acme_post(o, o->cert_url, "", 1, on_certificate);
}
