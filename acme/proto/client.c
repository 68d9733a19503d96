/*
 * The RFC 8555 client (acme/proto/client.h): its lifetime, and the life of
 * one order from px_acme_issue to its single callback. The steps live one
 * file per resource (order_internal.h says which).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/proto/order_internal.h"
#include "tls/log.h"

static void client_destroy(px_acme_client *c) {
  px__acme_account_unlock(c);
  free(c->forgotten_kid);
  px_tls_client_free(c->tls);
  px_acme_key_free(c->account_key);
  free(c->kid);
  free(c->url_new_nonce);
  free(c->url_new_account);
  free(c->url_new_order);
  free(c->terms);
  free(c->url_renewal_info);
  free(c->url_revoke_cert);
  json_decref(c->profiles);
  free(c);
}

/* Frees the struct once nothing refers to it: no request in flight and the
 * timer closed. The client goes with its last order when it is freeing. */
void px__acme_order_release(px__acme_order *o) {
  if (o->busy || o->timer_open) return;
  px_acme_client *c = o->c;
  free(o);
  if (--c->live == 0 && c->freeing) client_destroy(c);
}

static void on_timer_closed(uv_handle_t *h) {
  px__acme_order *o = h->data;
  o->timer_open = 0;
  px__acme_order_release(o);
}

static void order_free(px__acme_order *o) {
  px_acme_client *c = o->c;
  /* Every TXT record of the order goes, valid or not (RFC 8555 §8.4 leaves
   * it to the client; a stale value only confuses the next order). */
  for (size_t i = 0; i < o->ndns; i++)
    if (c->o.hooks.dns_cleanup) c->o.hooks.dns_cleanup(c->o.hooks.arg, o->dns[i]);
  free(o->dns);
  o->dns = NULL;
  o->ndns = 0;
  for (px__acme_order **p = &c->orders; *p; p = &(*p)->next)
    if (*p == o) {
      *p = o->next;
      break;
    }
  for (size_t i = 0; i < o->nnames; i++)
    free(o->names[i]);
  free(o->names);
  free(o->post_url);
  free(o->post_payload);
  free(o->order_url);
  free(o->finalize_url);
  free(o->cert_url);
  free(o->authz_url);
  free(o->chal_url);
  free(o->chal_token);
  free(o->replaces);
  free(o->ari_cert_id);
  free(o->revoke_cert);
  json_decref(o->authzs);
  px_acme_key_free(o->cert_key);
  px_acme_result_dispose(&o->result);
  o->finished = 1;
  uv_close((uv_handle_t *)&o->timer, on_timer_closed);
}

void px__acme_order_done(px__acme_order *o, const char *err) {
  if (o->finished) return;
  o->finished = 1;
  if (o->chal_token && o->c->o.hooks.unpublish)
    o->c->o.hooks.unpublish(o->c->o.hooks.arg, o->chal_type,
                            o->names[o->authz_i < o->nnames ? o->authz_i : 0], o->chal_token);
  if (!o->c->freeing) {
    if (o->kind == PX__ACME_ARI)
      o->ari_cb(o->arg, err, err == NULL && o->has_ari ? &o->ari : NULL, o->failure.retry_after);
    else if (err || o->kind == PX__ACME_PROBE || o->kind == PX__ACME_REVOKE)
      o->cb(o->arg, err, NULL, &o->failure);
    else {
      px_acme_result r = o->result;
      memset(&o->result, 0, sizeof(o->result));
      o->cb(o->arg, NULL, &r, &o->failure);
    }
  }
  o->finished = 0;
  order_free(o);
}

void px__acme_order_fail(px__acme_order *o, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  px_log(PX_LOG_ERROR, "acme: %s for %s: %s", o->step, o->names[0], msg);
  px__acme_order_done(o, msg);
}

void px__acme_order_step(px__acme_order *o, const char *step) {
  snprintf(o->step, sizeof(o->step), "%s", step);
}

void px__acme_order_later(px__acme_order *o, uint64_t ms, uv_timer_cb fn) {
  uv_timer_start(&o->timer, fn, ms, 0);
}

/* ---- public ------------------------------------------------------------- */

px_acme_client *px_acme_client_new(uv_loop_t *loop, const px_acme_client_opts *opts) {
  px_acme_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->loop = loop;
  c->o = *opts;
  char err[256];
  c->tls = px_tls_client_new(opts->ca_file, err, sizeof(err));
  if (c->tls == NULL) {
    px_log(PX_LOG_ERROR, "acme: acme.ca_file %s", err);
    free(c);
    return NULL;
  }
  if (c->o.challenges[0] == 0) c->o.challenges[0] = PX_ACME_TLS_ALPN_01;
  return c;
}

static void on_start(uv_timer_t *t) { px__acme_directory_start(t->data); }

/* Started on the next loop turn: never calls back from inside the caller. */
px__acme_order *px__acme_order_start(px_acme_client *c, px__acme_kind kind,
                                     const char *const *names, size_t n, void *arg) {
  px__acme_order *o = calloc(1, sizeof(*o));
  if (o == NULL) return NULL;
  o->names = calloc(n ? n : 1, sizeof(char *));
  for (size_t i = 0; o->names && i < n; i++) {
    if ((o->names[i] = strdup(names[i])) == NULL) break;
    o->nnames++;
  }
  if (o->names && n == 0) o->names[0] = strdup(c->o.directory_url);
  if (o->names == NULL || o->nnames != n || (n == 0 && o->names[0] == NULL)) {
    for (size_t i = 0; o->names && i < (n ? o->nnames : 1); i++)
      free(o->names[i]);
    free(o->names);
    free(o);
    return NULL;
  }
  if (n == 0) o->nnames = 1; /* probes and ARI name the CA in their messages */
  o->c = c;
  o->kind = kind;
  o->arg = arg;
  uv_timer_init(c->loop, &o->timer);
  o->timer.data = o;
  o->timer_open = 1;
  o->next = c->orders;
  c->orders = o;
  c->live++;
  px__acme_order_step(o, "start");
  px__acme_order_later(o, 0, on_start); /* never call back from inside this call */
  return o;
}

int px_acme_renew(px_acme_client *c, const char *const *names, size_t n, const char *replaces,
                  px_acme_issue_cb cb, void *arg) {
  if (n == 0 || n > 100) return -EINVAL;
  char *rep = NULL;
  if (replaces && replaces[0] && (rep = strdup(replaces)) == NULL) return -ENOMEM;
  px__acme_order *o = px__acme_order_start(c, PX__ACME_ISSUE, names, n, arg);
  if (o == NULL) {
    free(rep);
    return -ENOMEM;
  }
  o->cb = cb;
  o->replaces = rep;
  px_log(PX_LOG_INFO, "acme: ordering a certificate for %s%s%s", names[0],
         n > 1 ? " and others" : "", rep ? " (renewal)" : "");
  return 0;
}

int px_acme_issue(px_acme_client *c, const char *const *names, size_t n, px_acme_issue_cb cb,
                  void *arg) {
  return px_acme_renew(c, names, n, NULL, cb, arg);
}

int px_acme_probe(px_acme_client *c, px_acme_issue_cb cb, void *arg) {
  px__acme_order *o = px__acme_order_start(c, PX__ACME_PROBE, NULL, 0, arg);
  if (o == NULL) return -ENOMEM;
  o->cb = cb;
  return 0;
}

int px_acme_renewal_info(px_acme_client *c, const char *cert_id, px_acme_ari_cb cb, void *arg) {
  if (cert_id == NULL || cert_id[0] == '\0' || strlen(cert_id) >= PX_ARI_CERT_ID_MAX)
    return -EINVAL;
  char *id = strdup(cert_id);
  px__acme_order *o = id ? px__acme_order_start(c, PX__ACME_ARI, NULL, 0, arg) : NULL;
  if (o == NULL) {
    free(id);
    return -ENOMEM;
  }
  o->ari_cb = cb;
  o->ari_cert_id = id;
  return 0;
}

int px_acme_client_has_ari(const px_acme_client *c) { return c->url_renewal_info != NULL; }

void px_acme_result_dispose(px_acme_result *r) {
  if (r->key_pem) px_acme_key_pem_free(r->key_pem, r->key_len);
  free(r->cert_pem);
  for (size_t i = 0; i < r->nalternates; i++)
    free(r->alternates[i]);
  free(r->alternates);
  memset(r, 0, sizeof(*r));
}

void px_acme_client_free(px_acme_client *c) {
  if (c == NULL) return;
  c->freeing = 1;
  /* Abandon running orders: no callback; their requests finish quietly. */
  while (c->orders)
    order_free(c->orders);
  if (c->live == 0) client_destroy(c);
}
