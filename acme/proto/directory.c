/*
 * The CA's directory (RFC 8555 §7.1.1): the URLs of newNonce, newAccount
 * and newOrder, the meta fields that decide whether an account may be
 * created (termsOfService, externalAccountRequired) and which profiles may
 * be asked for (meta.profiles), and renewalInfo (RFC 9773 §3). Fetched once
 * per client by the first order, and afresh by each health probe. Also the
 * renewalInfo request itself (RFC 9773 §4.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/proto/order_internal.h"
#include "acme/proto/problem.h"
#include "tls/log.h"

/* The configured profile is offered by the CA, or the order fails saying
 * what it offers (the profiles extension: meta.profiles maps names to
 * descriptions). */
static int profile_ok(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->o.profile == NULL) return 1;
  if (json_object_get(c->profiles, c->o.profile)) return 1;
  char list[400] = "";
  size_t len = 0;
  const char *k;
  json_t *v;
  json_object_foreach(c->profiles, k, v) {
    int n = snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", k);
    if (n < 0 || (size_t)n >= sizeof(list) - len) break;
    len += (size_t)n;
  }
  o->failure.config_refused = 1;
  if (len == 0)
    px__acme_order_fail(o,
                        "acme.profile \"%s\": the CA at %s offers no profiles; remove acme.profile",
                        c->o.profile, c->o.directory_url);
  else
    px__acme_order_fail(o, "acme.profile \"%s\" is not offered by the CA at %s (it offers: %s)",
                        c->o.profile, c->o.directory_url, list);
  return 0;
}

/* Goes on with what the order struct is for, the directory being known. */
static void dispatch(px__acme_order *o) {
  if (o->kind == PX__ACME_PROBE) {
    if (profile_ok(o)) px__acme_order_done(o, NULL);
    return;
  }
  if (o->kind == PX__ACME_ARI) {
    px__acme_ari_get(o);
    return;
  }
  if (o->kind == PX__ACME_REVOKE) { /* no order: acme.profile does not matter */
    px__acme_account_ensure(o);
    return;
  }
  if (!profile_ok(o)) return;
  px__acme_account_ensure(o);
}

static void on_directory(px__acme_order *o, const char *err, px_acme_response *r) {
  px_acme_client *c = o->c;
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  json_t *j = px__acme_json(r);
  px_acme_response_free(r);
  const char *nn = px__acme_json_str(j, "newNonce"), *na = px__acme_json_str(j, "newAccount"),
             *no = px__acme_json_str(j, "newOrder");
  if (!nn || !na || !no) {
    json_decref(j);
    o->failure.ca_unreachable = 1; /* not a usable CA at that URL */
    px__acme_order_fail(o, "the directory at %s lacks newNonce, newAccount or newOrder",
                        c->o.directory_url);
    return;
  }
  json_t *meta = json_object_get(j, "meta");
  json_t *profiles = json_object_get(meta, "profiles");
  json_decref(c->profiles);
  c->profiles = json_is_object(profiles) ? json_incref(profiles) : NULL;
  const char *ri = px__acme_json_str(j, "renewalInfo");
  /* newOrder last: its presence says the directory is known. */
  if (px__acme_set_str(&c->url_new_nonce, nn) != 0 ||
      px__acme_set_str(&c->url_new_account, na) != 0 ||
      px__acme_set_str(&c->terms, px__acme_json_str(meta, "termsOfService")) != 0 ||
      px__acme_set_str(&c->url_renewal_info, ri && strncmp(ri, "https://", 8) == 0 ? ri : NULL) !=
          0 ||
      px__acme_set_str(&c->url_revoke_cert, px__acme_json_str(j, "revokeCert")) != 0 ||
      px__acme_set_str(&c->url_new_order, no) != 0) {
    json_decref(j);
    px__acme_order_fail(o, "out of memory");
    return;
  }
  c->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
  json_decref(j);
  dispatch(o);
}

void px__acme_directory_start(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->url_new_order && o->kind != PX__ACME_PROBE) {
    dispatch(o);
    return;
  }
  px__acme_order_step(o, "directory");
  if (px__acme_get(o, "GET", c->o.directory_url, on_directory) != 0)
    px__acme_order_fail(o, "acme.directory is not a usable https:// URL");
}

static void on_renewal_info(px__acme_order *o, const char *err, px_acme_response *r) {
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  /* RFC 9773 §4.3.3: the next poll follows the CA's Retry-After. */
  o->failure.retry_after =
      r->retry_after ? px_acme_retry_after(r->retry_after, strlen(r->retry_after), time(NULL)) : 0;
  int rc = px_ari_parse(r->body ? r->body : "", r->body_len, &o->ari);
  px_acme_response_free(r);
  if (rc != 0) {
    px__acme_order_fail(o, "the CA's renewalInfo is not a valid suggestedWindow");
    return;
  }
  o->has_ari = 1;
  px__acme_order_done(o, NULL);
}

void px__acme_ari_get(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->url_renewal_info == NULL) {
    px__acme_order_done(o, NULL); /* no ARI at this CA: info stays NULL */
    return;
  }
  px__acme_order_step(o, "renewalInfo");
  char *url = px_ari_url(c->url_renewal_info, o->ari_cert_id);
  int rc = url ? px__acme_get(o, "GET", url, on_renewal_info) : -1;
  free(url);
  if (rc != 0) px__acme_order_fail(o, "cannot request the renewalInfo");
}
