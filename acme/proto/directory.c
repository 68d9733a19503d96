/*
 * The CA's directory (RFC 8555 §7.1.1): the URLs of newNonce, newAccount
 * and newOrder, and the meta fields that decide whether an account may be
 * created (termsOfService, externalAccountRequired). Fetched once per
 * client, by the first order.
 */
#include <string.h>

#include "acme/proto/order_internal.h"

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
    px__acme_order_fail(o, "the directory lacks newNonce, newAccount or newOrder");
    return;
  }
  json_t *meta = json_object_get(j, "meta");
  /* newOrder last: its presence says the directory is known. */
  if (px__acme_set_str(&c->url_new_nonce, nn) != 0 ||
      px__acme_set_str(&c->url_new_account, na) != 0 ||
      px__acme_set_str(&c->terms, px__acme_json_str(meta, "termsOfService")) != 0 ||
      px__acme_set_str(&c->url_new_order, no) != 0) {
    json_decref(j);
    px__acme_order_fail(o, "out of memory");
    return;
  }
  c->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
  json_decref(j);
  px__acme_account_ensure(o);
}

void px__acme_directory_start(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->url_new_order) {
    px__acme_account_ensure(o);
    return;
  }
  px__acme_order_step(o, "directory");
  if (px__acme_get(o, "GET", c->o.directory_url, on_directory) != 0)
    px__acme_order_fail(o, "acme.directory is not a usable https:// URL");
}
