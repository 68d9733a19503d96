/*
 * The order resource (RFC 8555 §7.4): newOrder for the names, then, once
 * authz.c has every authorization valid, finalize with a CSR for a fresh
 * certificate key and poll the order until it is valid and names its
 * certificate (handed to certificate.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/proto/csr.h"
#include "acme/proto/order_internal.h"
#include "acme/proto/problem.h"
#include "tls/ipname.h"
#include "tls/log.h"

static void poll_order_cb(uv_timer_t *t);

static void on_order_status(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  json_t *j = px__acme_json(r);
  const char *status = px__acme_json_str(j, "status");
  const char *cert = px__acme_json_str(j, "certificate");
  if (status && strcmp(status, "valid") == 0 && cert) {
    int rc = px__acme_set_str(&o->cert_url, cert);
    json_decref(j);
    px_acme_response_free(r);
    if (rc != 0) {
      px__acme_order_fail(o, "out of memory");
      return;
    }
    px__acme_certificate_download(o);
    return;
  }
  if (status && (strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) &&
      o->polls++ < PX__ACME_MAX_POLLS) {
    int64_t ra = px_acme_retry_after(r->retry_after, r->retry_after ? strlen(r->retry_after) : 0,
                                     (int64_t)time(NULL));
    json_decref(j);
    px_acme_response_free(r);
    /* Issuance usually takes a moment: poll soon (50 ms, o->polls is 1
     * on the first wait), then back off to 1 s. */
    unsigned k = o->polls - 1;
    uint64_t d = 50u << (k < 5 ? k : 5);
    px__acme_order_later(o, ra > 0 && ra < 10 ? (uint64_t)ra * 1000 : (d > 1000 ? 1000 : d),
                         poll_order_cb);
    return;
  }
  px__acme_order_fail(o, "order is %s", status ? status : "in an unknown state");
  json_decref(j);
  px_acme_response_free(r);
}

static void poll_order_cb(uv_timer_t *t) {
  px__acme_order *o = t->data;
  px__acme_post(o, o->order_url, "", 1, on_order_status);
}

static void on_finalized(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  px_log(PX_LOG_INFO, "acme: order for %s: finalized", o->names[0]);
  px__acme_order_step(o, "certificate");
  o->polls = 0;
  on_order_status(o, NULL, r);
}

void px__acme_order_finalize(px__acme_order *o) {
  px__acme_order_step(o, "finalize");
  o->cert_key = px_acme_cert_key_generate(o->c->o.key_type);
  char *csr = o->cert_key ? px_acme_csr_b64url(o->cert_key, (const char *const *)o->names,
                                               o->nnames, 1, o->c->account_key)
                          : NULL;
  if (csr == NULL) {
    px__acme_order_fail(o, "cannot build the certificate key or CSR");
    return;
  }
  json_t *p = json_pack("{s:s}", "csr", csr);
  char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
  json_decref(p);
  free(csr);
  if (payload == NULL) {
    px__acme_order_fail(o, "out of memory");
    return;
  }
  px__acme_post(o, o->finalize_url, payload, 1, on_finalized);
  free(payload);
}

static void on_new_order(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err && o->replaces && !o->replaces_dropped && !o->failure.ca_unreachable &&
      o->failure.problem.status != 429 && o->failure.problem.status < 500) {
    /* RFC 9773 §5: a CA may refuse `replaces` (already replaced, not
     * ours); a new order without it is still a valid renewal. */
    px_log(PX_LOG_WARN,
           "acme: the CA refused the order for %s replacing %s (%s); ordering again "
           "without replaces",
           o->names[0], o->replaces, err);
    o->replaces_dropped = 1;
    memset(&o->failure, 0, sizeof(o->failure));
    px__acme_order_new(o);
    return;
  }
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  json_t *j = px__acme_json(r);
  const char *fin = px__acme_json_str(j, "finalize");
  json_t *authzs = json_object_get(j, "authorizations");
  if (r->location == NULL || fin == NULL || !json_is_array(authzs)) {
    px__acme_order_fail(o, "the CA's order is incomplete");
    json_decref(j);
    px_acme_response_free(r);
    return;
  }
  int rc = px__acme_set_str(&o->order_url, r->location) | px__acme_set_str(&o->finalize_url, fin);
  o->authzs = json_incref(authzs);
  json_decref(j);
  px_acme_response_free(r);
  if (rc != 0) {
    px__acme_order_fail(o, "out of memory");
    return;
  }
  px_log(PX_LOG_INFO, "acme: order for %s: created (%zu authorizations)", o->names[0],
         json_array_size(o->authzs));
  o->authz_i = 0;
  px__acme_authz_next(o);
}

void px__acme_order_new(px__acme_order *o) {
  if (o->kind == PX__ACME_REVOKE) { /* the account is known: revoke instead */
    px__acme_revoke_send(o);
    return;
  }
  px__acme_order_step(o, "new order");
  json_t *ids = json_array();
  for (size_t i = 0; ids && i < o->nnames; i++) {
    /* RFC 8738 §3: an address is an "ip" identifier, its value the
     * address's text without brackets. */
    char bare[PX_IP_NAME_MAX];
    if (px_ip_name_bare(o->names[i], bare, sizeof(bare)) > 0)
      json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "ip", "value", bare));
    else
      json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", o->names[i]));
  }
  json_t *p = json_pack("{s:o}", "identifiers", ids);
  /* RFC 9773 §5: only to a CA that has renewalInfo. */
  if (p && o->replaces && !o->replaces_dropped && o->c->url_renewal_info)
    json_object_set_new(p, "replaces", json_string(o->replaces));
  if (p && o->c->o.profile) json_object_set_new(p, "profile", json_string(o->c->o.profile));
  char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
  json_decref(p);
  if (payload == NULL) {
    px__acme_order_fail(o, "out of memory");
    return;
  }
  px__acme_post(o, o->c->url_new_order, payload, 1, on_new_order);
  free(payload);
}
