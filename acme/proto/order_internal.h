/*
 * Internal to acme/proto/: the client and the running order that the
 * RFC 8555 steps share, one file per resource. An order moves through
 *   directory.c -> account.c -> order.c -> authz.c -> order.c (finalize)
 *   -> certificate.c -> client.c (done)
 * and every signed request goes through request.c.
 *
 * Error convention (acme/errors.h): steps report a failure once, through
 * px__acme_order_fail(), which hands the sentence to the issue callback.
 */
#ifndef PX_ACME_PROTO_ORDER_INTERNAL_H
#define PX_ACME_PROTO_ORDER_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "acme/proto/client.h"
#include "acme/transport.h"

/* How many times a POST is signed again after badNonce (RFC 8555 §6.5). */
#define PX__ACME_MAX_NONCE_RETRIES 10
/* How many times an authorization or order is polled before giving up. */
#define PX__ACME_MAX_POLLS 60

typedef struct px__acme_order px__acme_order;

/* What an order struct is doing. */
typedef enum px__acme_kind {
  PX__ACME_ISSUE = 0, /* a certificate order */
  PX__ACME_PROBE,     /* fetch the directory afresh, nothing else */
  PX__ACME_ARI,       /* fetch the renewalInfo of ari_cert_id */
  PX__ACME_REVOKE,    /* revoke revoke_cert (RFC 8555 §7.6), in revoke.c */
} px__acme_kind;

struct px_acme_client {
  uv_loop_t *loop;
  px_acme_client_opts o;
  px_tls_client *tls; /* trust for the CA's HTTPS server */
  char *url_new_nonce, *url_new_account, *url_new_order, *terms;
  char *url_renewal_info;  /* RFC 9773 §3, or NULL */
  char *url_revoke_cert;   /* RFC 8555 §7.1.1 revokeCert, or NULL */
  json_t *profiles;        /* the directory's meta.profiles object, or NULL */
  int skip_cached_account; /* the CA forgot the cached account: make a new one */
  char *forgotten_kid;     /* ...this one: another instance's newer account is fine */
  int account_creating;    /* an order of ours is registering the account */
  int account_locked;      /* we hold the store's account lock */
  int eab_required;
  char nonce[256];
  px_acme_key *account_key;
  char *kid;
  px__acme_order *orders; /* running, for px_acme_client_free */
  size_t live;            /* order structs not yet freed (requests may hold them) */
  int freeing;
};

/* Where a request's answer goes: `err` NULL with the response (owned by the
 * callee), or a sentence (with the CA's problem detail) and NULL. */
typedef void (*px__acme_post_cb)(px__acme_order *o, const char *err, px_acme_response *r);

struct px__acme_order {
  px_acme_client *c;
  px__acme_order *next;
  char **names;
  size_t nnames;
  px__acme_kind kind;
  px_acme_issue_cb cb;
  px_acme_ari_cb ari_cb;
  void *arg;
  char step[64];
  char *replaces;         /* RFC 9773 §5: the certificate this order replaces */
  int replaces_dropped;   /* the CA refused `replaces`; sent once more without */
  int account_reset;      /* accountDoesNotExist was answered by a new account */
  unsigned account_waits; /* polls while another order or instance creates the account */
  char *ari_cert_id;
  char *revoke_cert; /* base64url DER of the certificate to revoke */
  int revoke_reason; /* RFC 5280 §5.3.1 CRLReason code */
  px_ari_info ari;
  int has_ari;
  px_acme_failure failure;
  /* the current POST (request.c) */
  char *post_url, *post_payload;
  int post_kid;
  int nonce_retries;
  px__acme_post_cb post_done;
  /* order state */
  char *order_url, *finalize_url, *cert_url;
  json_t *authzs;
  size_t authz_i;
  char *authz_url, *chal_url, *chal_token;
  px_acme_challenge_type chal_type;
  void **dns; /* dns-01 records of this order, removed when it ends */
  size_t ndns, dns_cap;
  int polls;
  int up_fetches;
  size_t alt_i;      /* the alternate chain being fetched (acme.preferred_chain) */
  int chain_checked; /* the default chain's top issuer was compared */
  uv_timer_t timer;
  int timer_open;
  px_acme_key *cert_key;
  px_acme_result result;
  int finished;
  int busy; /* requests in flight */
};

/* ---- client.c: the order's life ---- */

/* Ends the order with `err` (NULL: success, the result goes to the caller). */
void px__acme_order_done(px__acme_order *o, const char *err);
/* Logs the failure of the current step and ends the order with it. */
void px__acme_order_fail(px__acme_order *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Names the current step for logs and failure messages. */
void px__acme_order_step(px__acme_order *o, const char *step);
/* Runs `fn` after `ms` on the order's timer (its data is the order). */
void px__acme_order_later(px__acme_order *o, uint64_t ms, uv_timer_cb fn);
/* A new order struct of `kind` for `names` (may be empty: it then names the
 * CA), started on the next loop turn; NULL when out of memory. */
px__acme_order *px__acme_order_start(px_acme_client *c, px__acme_kind kind,
                                     const char *const *names, size_t n, void *arg);
/* Frees the order struct once no request or timer refers to it. */
void px__acme_order_release(px__acme_order *o);

/* ---- request.c: unsigned GET/HEAD and signed POST ---- */

/* An unsigned request (directory, newNonce). 0, or a negative errno when it
 * could not start (then `done` is not called). */
int px__acme_get(px__acme_order *o, const char *method, const char *url, px__acme_post_cb done);
/* A JWS-signed POST (RFC 8555 §6.2), with the account's kid or its JWK; a
 * badNonce is retried at once, bounded. `payload` "" is POST-as-GET. A
 * failure to start ends the order. */
void px__acme_post(px__acme_order *o, const char *url, const char *payload, int use_kid,
                   px__acme_post_cb done);
/* The response body as JSON, or NULL. */
json_t *px__acme_json(const px_acme_response *r);
/* A string member of `j`, or NULL. */
const char *px__acme_json_str(json_t *j, const char *key);
/* Duplicates `s` into *dst (freeing the old value); -ENOMEM on failure. */
int px__acme_set_str(char **dst, const char *s);

/* ---- the steps, one file per RFC 8555 resource ---- */

/* directory.c: fetches the directory (§7.1.1) unless known, then goes on
 * with the account. */
void px__acme_directory_start(px__acme_order *o);
/* account.c: loads, or creates and saves, the account (§7.3), then orders. */
void px__acme_account_ensure(px__acme_order *o);
/* account.c: releases the store's account lock, if held. */
void px__acme_account_unlock(px_acme_client *c);
/* account.c: forgets the account (in memory; the cached one is not used
 * again by this client), registers a new one and places the order again. */
void px__acme_account_reset(px__acme_order *o);
/* order.c: newOrder (§7.4). */
void px__acme_order_new(px__acme_order *o);
/* order.c: finalize with a CSR once every authorization is valid (§7.4). */
void px__acme_order_finalize(px__acme_order *o);
/* authz.c: the next authorization, or finalize when none is left (§7.5). */
void px__acme_authz_next(px__acme_order *o);
/* certificate.c: downloads the certificate at o->cert_url (§7.4.2). */
void px__acme_certificate_download(px__acme_order *o);
/* revoke.c: POST revokeCert with the account key (RFC 8555 §7.6). */
void px__acme_revoke_send(px__acme_order *o);
/* directory.c: GET renewalInfo/<ari_cert_id> (RFC 9773 §4.2). */
void px__acme_ari_get(px__acme_order *o);

#endif
