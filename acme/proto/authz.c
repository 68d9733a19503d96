/*
 * Authorizations and their challenges (RFC 8555 §7.5, §8): for each
 * authorization of the order, pick the first configured challenge type the
 * CA offers, publish its key authorization through the client's hooks,
 * tell the CA to validate (§7.5.1), and poll until the authorization is
 * valid. A reused valid authorization (§7.1.4) is skipped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "acme/proto/b64url.h"
#include "acme/proto/jws.h"
#include "acme/proto/order_internal.h"
#include "acme/proto/problem.h"
#include "tls/ipname.h"
#include "tls/log.h"

static void on_authz_poll(px__acme_order *o, const char *err, px_acme_response *r);

static void poll_authz_cb(uv_timer_t *t) {
  px__acme_order *o = t->data;
  px__acme_post(o, o->authz_url, "", 1, on_authz_poll);
}

/* Short first, since a handshake is waiting: 50 ms doubling to 2 s, or the
 * CA's Retry-After (RFC 8555 §7.5.1). */
static uint64_t poll_delay(px__acme_order *o, const px_acme_response *r) {
  int64_t ra = r ? px_acme_retry_after(r->retry_after, r->retry_after ? strlen(r->retry_after) : 0,
                                       (int64_t)time(NULL))
                 : 0;
  if (ra > 0 && r->retry_after) return (uint64_t)(ra > 60 ? 60 : ra) * 1000;
  uint64_t d = 50u << (o->polls < 6 ? o->polls : 6);
  return d > 2000 ? 2000 : d;
}

static void unpublish(px__acme_order *o) {
  if (o->chal_token && o->c->o.hooks.unpublish)
    o->c->o.hooks.unpublish(o->c->o.hooks.arg, o->chal_type, o->names[o->authz_i], o->chal_token);
  free(o->chal_token);
  o->chal_token = NULL;
}

static void on_authz_poll(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  json_t *j = px__acme_json(r);
  const char *status = px__acme_json_str(j, "status");
  if (status && strcmp(status, "valid") == 0) {
    const char *ident = px__acme_json_str(json_object_get(j, "identifier"), "value");
    px_log(PX_LOG_INFO, "acme: order for %s: authorization for %s valid", o->names[0],
           ident ? ident : "?");
    json_decref(j);
    px_acme_response_free(r);
    unpublish(o);
    o->authz_i++;
    px__acme_authz_next(o);
    return;
  }
  if (status && strcmp(status, "pending") == 0 && o->polls++ < PX__ACME_MAX_POLLS) {
    uint64_t d = poll_delay(o, r);
    json_decref(j);
    px_acme_response_free(r);
    px__acme_order_later(o, d, poll_authz_cb);
    return;
  }
  /* Invalid: the challenge's error says why (RFC 8555 §7.1.4). */
  char detail[400] = "";
  json_t *chs = json_object_get(j, "challenges");
  for (size_t i = 0; i < json_array_size(chs); i++) {
    json_t *e = json_object_get(json_array_get(chs, i), "error");
    const char *d = px__acme_json_str(e, "detail");
    if (d) snprintf(detail, sizeof(detail), "%s", d);
  }
  px__acme_order_fail(o, "authorization %s%s%s", status ? status : "failed", detail[0] ? ": " : "",
                      detail);
  json_decref(j);
  px_acme_response_free(r);
}

static void on_challenge_posted(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  px_acme_response_free(r);
  o->polls = 0;
  px__acme_order_later(o, 50, poll_authz_cb);
}

static const char *type_name(px_acme_challenge_type t) {
  return t == PX_ACME_TLS_ALPN_01 ? "tls-alpn-01" : t == PX_ACME_DNS_01 ? "dns-01" : "http-01";
}

/* The first challenge of the configured preference that the CA offers. */
static json_t *pick_challenge(px__acme_order *o, json_t *chs) {
  for (int k = 0; k < PX_ACME_CHALLENGES_MAX && o->c->o.challenges[k]; k++)
    for (size_t i = 0; i < json_array_size(chs); i++) {
      json_t *ch = json_array_get(chs, i);
      const char *t = px__acme_json_str(ch, "type");
      if (t && strcmp(t, type_name(o->c->o.challenges[k])) == 0) {
        o->chal_type = o->c->o.challenges[k];
        return ch;
      }
    }
  return NULL;
}

/* The dns-01 record is visible everywhere asked: the CA may look. */
static void on_dns_ready(void *arg, const char *err) {
  px__acme_order *o = arg;
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  px__acme_order_step(o, "challenge");
  px__acme_post(o, o->chal_url, "{}", 1, on_challenge_posted);
}

/* dns-01 (RFC 8555 §8.4): the TXT value is base64url(SHA-256(key
 * authorization)). The record stays until the order ends, so a wildcard
 * and its base name, which share _acme-challenge.NAME, are both there
 * when the CA checks the second. 0, or -1 when the order failed. */
static int present_dns(px__acme_order *o, const char *ident, const char *ka) {
  const px_acme_challenge_hooks *h = &o->c->o.hooks;
  /* Only a name of this order (a wildcard's identifier is its base name,
   * RFC 8555 §7.1.3) gets a record: the CA does not pick what we write. */
  int ours = 0;
  for (size_t i = 0; i < o->nnames && !ours; i++) {
    const char *n = o->names[i];
    ours = strcmp(n, ident) == 0 || (strncmp(n, "*.", 2) == 0 && strcmp(n + 2, ident) == 0);
  }
  if (!ours) {
    px__acme_order_fail(o, "the CA asks dns-01 for %.253s, which is not in the order", ident);
    return -1;
  }
  uint8_t dg[SHA256_DIGEST_LENGTH];
  char value[64];
  SHA256((const uint8_t *)ka, strlen(ka), dg);
  px_b64url_encode(dg, sizeof(dg), value, sizeof(value));
  if (o->ndns == o->dns_cap) {
    size_t cap = o->dns_cap ? o->dns_cap * 2 : 4;
    void **d = realloc(o->dns, cap * sizeof(void *));
    if (d == NULL) {
      px__acme_order_fail(o, "out of memory");
      return -1;
    }
    o->dns = d;
    o->dns_cap = cap;
  }
  void *handle = h->dns_present ? h->dns_present(h->arg, ident, value, on_dns_ready, o) : NULL;
  if (handle == NULL) {
    px__acme_order_fail(o, "the CA offers dns-01 for %s, and acme.dns is not set up", ident);
    return -1;
  }
  o->dns[o->ndns++] = handle;
  px__acme_order_step(o, "dns-01");
  return 0;
}

static void on_authz(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  json_t *j = px__acme_json(r);
  px_acme_response_free(r);
  const char *status = px__acme_json_str(j, "status");
  if (status && strcmp(status, "valid") == 0) { /* reused authorization (RFC 8555 §7.1.4) */
    json_decref(j);
    o->authz_i++;
    px__acme_authz_next(o);
    return;
  }
  const char *ident = px__acme_json_str(json_object_get(j, "identifier"), "value");
  const char *itype = px__acme_json_str(json_object_get(j, "identifier"), "type");
  /* An "ip" identifier (RFC 8738 §3) is answered under the address's
   * canonical name, the one its site, Host header and cache use. */
  char ipname[PX_IP_NAME_MAX];
  if (ident && itype && strcmp(itype, "ip") == 0) {
    if (px_ip_name_normalize(ident, strlen(ident), ipname, sizeof(ipname)) < 0) {
      px__acme_order_fail(o, "the CA sent an ip identifier that is not an address");
      json_decref(j);
      return;
    }
    ident = ipname;
  }
  json_t *pick = pick_challenge(o, json_object_get(j, "challenges"));
  if (pick == NULL || !px__acme_json_str(pick, "url") || !px__acme_json_str(pick, "token") ||
      ident == NULL) {
    px__acme_order_fail(o, "the CA offers none of the configured challenges");
    json_decref(j);
    return;
  }
  if (px__acme_set_str(&o->chal_url, px__acme_json_str(pick, "url")) != 0 ||
      px__acme_set_str(&o->chal_token, px__acme_json_str(pick, "token")) != 0) {
    px__acme_order_fail(o, "out of memory");
    json_decref(j);
    return;
  }
  char *ka = px_acme_key_authorization(o->chal_token, o->c->account_key);
  if (ka == NULL) {
    px__acme_order_fail(o, "the CA sent an invalid challenge token");
    json_decref(j);
    return;
  }
  if (o->chal_type == PX_ACME_DNS_01) {
    px_log(PX_LOG_INFO, "acme: order for %s: answering dns-01 for %s", o->names[0], ident);
    /* The token is not kept: nothing to unpublish for dns-01. */
    free(o->chal_token);
    o->chal_token = NULL;
    present_dns(o, ident, ka);
    free(ka);
    json_decref(j);
    return;
  }
  o->c->o.hooks.publish(o->c->o.hooks.arg, o->chal_type, ident, o->chal_token, ka);
  free(ka);
  px_log(PX_LOG_INFO, "acme: order for %s: answering %s for %s", o->names[0],
         type_name(o->chal_type), ident);
  json_decref(j);
  px__acme_order_step(o, "challenge");
  px__acme_post(o, o->chal_url, "{}", 1, on_challenge_posted);
}

void px__acme_authz_next(px__acme_order *o) {
  if (o->authz_i >= json_array_size(o->authzs)) {
    px__acme_order_finalize(o);
    return;
  }
  const char *url = json_string_value(json_array_get(o->authzs, o->authz_i));
  if (url == NULL || px__acme_set_str(&o->authz_url, url) != 0) {
    px__acme_order_fail(o, "the CA's order lists an invalid authorization");
    return;
  }
  px__acme_order_step(o, "authorization");
  px__acme_post(o, o->authz_url, "", 1, on_authz);
}
