/*
 * Certificate revocation (RFC 8555 §7.6): a POST to the directory's
 * revokeCert with the certificate's DER, base64url-encoded, and the reason,
 * signed with the account key (the account that ordered it is authorized
 * for it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme/proto/b64url.h"
#include "acme/proto/order_internal.h"
#include "tls/log.h"

/* Largest certificate sent: far above any leaf a CA issues. */
#define REVOKE_DER_MAX (64 * 1024)

static void on_revoked(px__acme_order *o, const char *err, px_acme_response *r) {
  px_acme_response_free(r);
  if (err) {
    px__acme_order_fail(o, "%s", err);
    return;
  }
  px_log(PX_LOG_INFO, "acme: the CA revoked the certificate for %s (reason %d)", o->names[0],
         o->revoke_reason);
  px__acme_order_done(o, NULL);
}

void px__acme_revoke_send(px__acme_order *o) {
  px__acme_order_step(o, "revocation");
  if (o->c->url_revoke_cert == NULL) {
    px__acme_order_fail(o, "the CA's directory at %s has no revokeCert", o->c->o.directory_url);
    return;
  }
  json_t *p = json_pack("{s:s,s:i}", "certificate", o->revoke_cert, "reason", o->revoke_reason);
  char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
  json_decref(p);
  if (payload == NULL) {
    px__acme_order_fail(o, "out of memory");
    return;
  }
  px__acme_post(o, o->c->url_revoke_cert, payload, 1, on_revoked);
  free(payload);
}

int px_acme_revoke(px_acme_client *c, const char *const *names, size_t n, const uint8_t *der,
                   size_t der_len, int reason, px_acme_issue_cb cb, void *arg) {
  /* RFC 5280 §5.3.1 codes 0..10, 7 unused. */
  if (der == NULL || der_len == 0 || der_len > REVOKE_DER_MAX || reason < 0 || reason > 10 ||
      reason == 7 || n > 100)
    return -EINVAL;
  char *b64 = px_b64url_encode_alloc(der, der_len);
  px__acme_order *o = b64 ? px__acme_order_start(c, PX__ACME_REVOKE, names, n, arg) : NULL;
  if (o == NULL) {
    free(b64);
    return -ENOMEM;
  }
  o->cb = cb;
  o->revoke_cert = b64;
  o->revoke_reason = reason;
  return 0;
}
