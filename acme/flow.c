/*
 * The RFC 8555 client (acme/client.h): directory and nonces (§7.1.1,
 * §7.2), the account (§7.3), and orders (§7.4): authorizations, one
 * challenge each, polling, finalize with a CSR, and the certificate
 * download. Every signed request goes through post(), which is where the
 * problem table (acme/problem.h) decides between retrying at once
 * (badNonce), reporting Retry-After, and failing.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/client.h"
#include "acme/csr.h"
#include "acme/jws.h"
#include "acme/problem.h"
#include "acme/transport.h"
#include "tls/log.h"

#define MAX_NONCE_RETRIES 10
#define MAX_POLLS 60

typedef struct order order;

struct px_acme_client {
  uv_loop_t *loop;
  px_acme_client_opts o;
  px_acme_tls *tls;
  char *url_new_nonce, *url_new_account, *url_new_order, *terms;
  int eab_required;
  char nonce[256];
  px_acme_key *account_key;
  char *kid;
  order *orders; /* running, for px_acme_client_free */
  size_t live;   /* order structs not yet freed (requests may hold them) */
  int freeing;
};

static void client_destroy(px_acme_client *c);

/* A signed POST being sent (with its badNonce retries). */
typedef void (*post_cb)(order *o, const char *err, px_acme_response *r);

struct order {
  px_acme_client *c;
  order *next;
  char **names;
  size_t nnames;
  px_acme_issue_cb cb;
  void *arg;
  char step[64];
  /* the current POST */
  char *post_url, *post_payload;
  int post_kid;
  int nonce_retries;
  post_cb post_done;
  /* order state */
  char *order_url, *finalize_url, *cert_url;
  json_t *authzs;
  size_t authz_i;
  char *authz_url, *chal_url, *chal_token;
  px_acme_challenge_type chal_type;
  int polls;
  int up_fetches;
  uv_timer_t timer;
  int timer_open;
  px_acme_key *cert_key;
  px_acme_result result;
  int64_t retry_after;
  int finished;
  int busy; /* requests in flight */
};

static void order_fail(order *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- plumbing --------------------------------------------------------------- */

static void take_nonce(px_acme_client *c, const px_acme_response *r) {
  if (r && r->replay_nonce && strlen(r->replay_nonce) < sizeof(c->nonce))
    snprintf(c->nonce, sizeof(c->nonce), "%s", r->replay_nonce);
}

/* Frees the struct once nothing refers to it: no request in flight and the
 * timer closed. The client goes with its last order when it is freeing. */
static void maybe_release(order *o) {
  if (o->busy || o->timer_open) return;
  px_acme_client *c = o->c;
  free(o);
  if (--c->live == 0 && c->freeing) client_destroy(c);
}

static void on_timer_closed(uv_handle_t *h) {
  order *o = h->data;
  o->timer_open = 0;
  maybe_release(o);
}

static void order_free(order *o) {
  px_acme_client *c = o->c;
  for (order **p = &c->orders; *p; p = &(*p)->next)
    if (*p == o) {
      *p = o->next;
      break;
    }
  for (size_t i = 0; i < o->nnames; i++) free(o->names[i]);
  free(o->names);
  free(o->post_url);
  free(o->post_payload);
  free(o->order_url);
  free(o->finalize_url);
  free(o->cert_url);
  free(o->authz_url);
  free(o->chal_url);
  free(o->chal_token);
  json_decref(o->authzs);
  px_acme_key_free(o->cert_key);
  px_acme_result_dispose(&o->result);
  o->finished = 1;
  uv_close((uv_handle_t *)&o->timer, on_timer_closed);
}

static void order_done(order *o, const char *err) {
  if (o->finished) return;
  o->finished = 1;
  if (o->chal_token && o->c->o.hooks.unpublish)
    o->c->o.hooks.unpublish(o->c->o.hooks.arg, o->chal_type, o->names[o->authz_i < o->nnames ? o->authz_i : 0],
                            o->chal_token);
  if (!o->c->freeing) {
    if (err)
      o->cb(o->arg, err, NULL, o->retry_after);
    else {
      px_acme_result r = o->result;
      memset(&o->result, 0, sizeof(o->result));
      o->cb(o->arg, NULL, &r, 0);
    }
  }
  o->finished = 0;
  order_free(o);
}

static void order_fail(order *o, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  px_log(PX_LOG_ERROR, "acme: %s for %s: %s", o->step, o->names[0], msg);
  order_done(o, msg);
}

static void set_step(order *o, const char *step) { snprintf(o->step, sizeof(o->step), "%s", step); }

/* Runs `fn` after `ms` on the order's timer. */
static void later(order *o, uint64_t ms, uv_timer_cb fn) { uv_timer_start(&o->timer, fn, ms, 0); }

/* ---- requests ----------------------------------------------------------- */

typedef struct req_ctx {
  order *o;
  post_cb done;
  int is_post;
} req_ctx;

static void send_post(order *o);

static void on_response(void *arg, const char *err, px_acme_response *r) {
  req_ctx *ctx = arg;
  order *o = ctx->o;
  post_cb done = ctx->done;
  int is_post = ctx->is_post;
  free(ctx);
  o->busy--;
  if (o->finished || o->c->freeing) {
    px_acme_response_free(r);
    maybe_release(o);
    return;
  }
  take_nonce(o->c, r);
  if (err) {
    done(o, err, NULL);
    return;
  }
  if (r->status >= 400) {
    px_acme_problem p;
    px_acme_problem_parse(r->body ? r->body : "", r->body_len, r->status, &p);
    px_acme_retry kind = px_acme_problem_classify(p.type, r->status);
    if (kind == PX_ACME_RETRY_NONCE && is_post && o->nonce_retries++ < MAX_NONCE_RETRIES) {
      /* RFC 8555 §6.5: the error carries a fresh nonce; sign again. */
      px_log(PX_LOG_DEBUG, "acme: %s for %s: badNonce, retrying", o->step, o->names[0]);
      px_acme_response_free(r);
      send_post(o);
      return;
    }
    if (kind == PX_ACME_RETRY_AFTER)
      o->retry_after = px_acme_retry_after(r->retry_after, r->retry_after ? strlen(r->retry_after) : 0,
                                           (int64_t)time(NULL));
    char msg[512];
    px_acme_problem_message(&p, msg, sizeof(msg));
    px_acme_response_free(r);
    done(o, msg, NULL);
    return;
  }
  done(o, NULL, r);
}

static int request(order *o, const char *method, const char *url, const char *ctype, const char *body,
                   post_cb done, int is_post) {
  req_ctx *ctx = malloc(sizeof(*ctx));
  if (ctx == NULL) return -1;
  ctx->o = o;
  ctx->done = done;
  ctx->is_post = is_post;
  uint64_t timeout = o->c->o.request_timeout_ms ? o->c->o.request_timeout_ms : 30000;
  if (px_acme_request(o->c->loop, o->c->tls, method, url, ctype, body, body ? strlen(body) : 0, timeout,
                      on_response, ctx) != 0) {
    free(ctx);
    return -1;
  }
  o->busy++;
  return 0;
}

static void on_nonce(order *o, const char *err, px_acme_response *r) {
  px_acme_response_free(r);
  if (err || o->c->nonce[0] == '\0') {
    order_fail(o, "no nonce from the CA%s%s", err ? ": " : "", err ? err : "");
    return;
  }
  send_post(o);
}

/* Signs and sends the current POST; fetches a nonce first when none is kept. */
static void send_post(order *o) {
  px_acme_client *c = o->c;
  if (c->nonce[0] == '\0') {
    if (request(o, "HEAD", c->url_new_nonce, NULL, NULL, on_nonce, 0) != 0) order_fail(o, "cannot reach the CA");
    return;
  }
  char *jws = px_acme_jws_sign(c->account_key, o->post_url, c->nonce, o->post_kid ? c->kid : NULL,
                               o->post_payload);
  c->nonce[0] = '\0'; /* each nonce is used once (RFC 8555 §6.5) */
  if (jws == NULL || request(o, "POST", o->post_url, "application/jose+json", jws, o->post_done, 1) != 0)
    order_fail(o, "cannot sign or send the request");
  free(jws);
}

static void post(order *o, const char *url, const char *payload, int use_kid, post_cb done) {
  free(o->post_url);
  free(o->post_payload);
  o->post_url = strdup(url);
  o->post_payload = strdup(payload);
  o->post_kid = use_kid;
  o->post_done = done;
  o->nonce_retries = 0;
  send_post(o);
}

static json_t *parse(const px_acme_response *r) {
  return r && r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

static const char *jstr(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

/* ---- the order ---------------------------------------------------------- */

static void next_authz(order *o);
static void poll_order_cb(uv_timer_t *t);

static void finish_download(order *o, size_t certs);

/* The issuer's certificate, appended to the chain. */
static void on_issuer(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  size_t n = o->result.cert_len;
  char *chain = realloc(o->result.cert_pem, n + r->body_len + 2);
  if (chain == NULL || r->body == NULL) {
    px_acme_response_free(r);
    order_fail(o, "cannot assemble the chain");
    return;
  }
  if (n && chain[n - 1] != '\n') chain[n++] = '\n';
  memcpy(chain + n, r->body, r->body_len + 1);
  o->result.cert_pem = chain;
  o->result.cert_len = n + r->body_len;
  px_acme_response_free(r);
  finish_download(o, 2);
}

static void on_certificate(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  o->result.cert_pem = r->body;
  o->result.cert_len = r->body_len;
  r->body = NULL;
  size_t pos = 0;
  char *alt;
  while ((alt = px_acme_link(r, "alternate", &pos)) != NULL && o->result.nalternates < PX_ACME_MAX_LINKS) {
    char **n = realloc(o->result.alternates, (o->result.nalternates + 1) * sizeof(char *));
    if (n == NULL) {
      free(alt);
      break;
    }
    o->result.alternates = n;
    o->result.alternates[o->result.nalternates++] = alt;
  }
  size_t certs = 0;
  for (const char *p = o->result.cert_pem; (p = strstr(p, "BEGIN CERTIFICATE")) != NULL; p++) certs++;
  if (certs == 0) {
    px_acme_response_free(r);
    order_fail(o, "the CA sent no certificate");
    return;
  }
  /* A lone leaf: fetch its issuer from Link rel="up" rather than ever
   * hard-coding an intermediate (RFC 8555 §7.4.2). */
  char *up = certs == 1 && o->up_fetches < 2 ? px_acme_link(r, "up", NULL) : NULL;
  px_acme_response_free(r);
  if (up) {
    o->up_fetches++;
    set_step(o, "issuer download");
    post(o, up, "", 1, on_issuer);
    free(up);
    return;
  }
  finish_download(o, certs);
}

static void finish_download(order *o, size_t certs) {
  size_t klen = 0;
  o->result.key_pem = px_acme_key_to_pem(o->cert_key, &klen);
  o->result.key_len = klen;
  px_log(PX_LOG_INFO, "acme: order for %s: certificate downloaded (%zu certificates, %zu alternate chains)",
         o->names[0], certs, o->result.nalternates);
  order_done(o, NULL);
}

static void on_order_status(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  json_t *j = parse(r);
  const char *status = jstr(j, "status");
  const char *cert = jstr(j, "certificate");
  if (status && strcmp(status, "valid") == 0 && cert) {
    free(o->cert_url);
    o->cert_url = strdup(cert);
    json_decref(j);
    px_acme_response_free(r);
    set_step(o, "download");
    post(o, o->cert_url, "", 1, on_certificate);
    return;
  }
  if (status && (strcmp(status, "processing") == 0 || strcmp(status, "ready") == 0) && o->polls++ < MAX_POLLS) {
    int64_t ra = px_acme_retry_after(r->retry_after, r->retry_after ? strlen(r->retry_after) : 0, (int64_t)time(NULL));
    json_decref(j);
    px_acme_response_free(r);
    /* Issuance usually takes a moment: poll soon, then back off to 1 s. */
    uint64_t d = 50u << (o->polls < 5 ? o->polls : 5);
    later(o, ra > 0 && ra < 10 ? (uint64_t)ra * 1000 : (d > 1000 ? 1000 : d), poll_order_cb);
    return;
  }
  order_fail(o, "order is %s", status ? status : "in an unknown state");
  json_decref(j);
  px_acme_response_free(r);
}

static void poll_order_cb(uv_timer_t *t) {
  order *o = t->data;
  post(o, o->order_url, "", 1, on_order_status);
}

static void on_finalized(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  px_log(PX_LOG_INFO, "acme: order for %s: finalized", o->names[0]);
  set_step(o, "certificate");
  o->polls = 0;
  on_order_status(o, NULL, r);
}

static void finalize(order *o) {
  set_step(o, "finalize");
  o->cert_key = px_acme_cert_key_generate(o->c->o.key_type);
  char *csr = o->cert_key ? px_acme_csr_b64url(o->cert_key, (const char *const *)o->names, o->nnames, 1, o->c->account_key) : NULL;
  if (csr == NULL) {
    order_fail(o, "cannot build the certificate key or CSR");
    return;
  }
  json_t *p = json_pack("{s:s}", "csr", csr);
  char *payload = json_dumps(p, JSON_COMPACT);
  json_decref(p);
  free(csr);
  post(o, o->finalize_url, payload, 1, on_finalized);
  free(payload);
}

static void on_authz_poll(order *o, const char *err, px_acme_response *r);

static void poll_authz_cb(uv_timer_t *t) {
  order *o = t->data;
  post(o, o->authz_url, "", 1, on_authz_poll);
}

/* Short first, since a handshake is waiting: 50 ms doubling to 2 s, or the
 * CA's Retry-After (RFC 8555 §7.5.1). */
static uint64_t poll_delay(order *o, const px_acme_response *r) {
  int64_t ra = r ? px_acme_retry_after(r->retry_after, r->retry_after ? strlen(r->retry_after) : 0, (int64_t)time(NULL)) : 0;
  if (ra > 0 && r->retry_after) return (uint64_t)(ra > 60 ? 60 : ra) * 1000;
  uint64_t d = 50u << (o->polls < 6 ? o->polls : 6);
  return d > 2000 ? 2000 : d;
}

static void on_authz_poll(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  json_t *j = parse(r);
  const char *status = jstr(j, "status");
  if (status && strcmp(status, "valid") == 0) {
    px_log(PX_LOG_INFO, "acme: order for %s: authorization for %s valid", o->names[0],
           jstr(json_object_get(j, "identifier"), "value") ? jstr(json_object_get(j, "identifier"), "value") : "?");
    json_decref(j);
    px_acme_response_free(r);
    if (o->chal_token && o->c->o.hooks.unpublish)
      o->c->o.hooks.unpublish(o->c->o.hooks.arg, o->chal_type, o->names[o->authz_i], o->chal_token);
    free(o->chal_token);
    o->chal_token = NULL;
    o->authz_i++;
    next_authz(o);
    return;
  }
  if (status && strcmp(status, "pending") == 0 && o->polls++ < MAX_POLLS) {
    uint64_t d = poll_delay(o, r);
    json_decref(j);
    px_acme_response_free(r);
    later(o, d, poll_authz_cb);
    return;
  }
  /* Invalid: the challenge's error says why (RFC 8555 §7.1.4). */
  char detail[400] = "";
  json_t *chs = json_object_get(j, "challenges");
  for (size_t i = 0; i < json_array_size(chs); i++) {
    json_t *e = json_object_get(json_array_get(chs, i), "error");
    if (e && jstr(e, "detail")) snprintf(detail, sizeof(detail), "%s", jstr(e, "detail"));
  }
  order_fail(o, "authorization %s%s%s", status ? status : "failed", detail[0] ? ": " : "", detail);
  json_decref(j);
  px_acme_response_free(r);
}

static void on_challenge_posted(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  px_acme_response_free(r);
  o->polls = 0;
  later(o, 50, poll_authz_cb);
}

static const char *type_name(px_acme_challenge_type t) {
  return t == PX_ACME_TLS_ALPN_01 ? "tls-alpn-01" : "http-01";
}

static void on_authz(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  json_t *j = parse(r);
  px_acme_response_free(r);
  const char *status = jstr(j, "status");
  if (status && strcmp(status, "valid") == 0) { /* reused authorization (RFC 8555 §7.1.4) */
    json_decref(j);
    o->authz_i++;
    next_authz(o);
    return;
  }
  const char *ident = jstr(json_object_get(j, "identifier"), "value");
  json_t *chs = json_object_get(j, "challenges");
  json_t *pick = NULL;
  for (int k = 0; k < 2 && !pick && o->c->o.challenges[k]; k++)
    for (size_t i = 0; i < json_array_size(chs); i++) {
      json_t *ch = json_array_get(chs, i);
      const char *t = jstr(ch, "type");
      if (t && strcmp(t, type_name(o->c->o.challenges[k])) == 0) {
        pick = ch;
        o->chal_type = o->c->o.challenges[k];
        break;
      }
    }
  if (pick == NULL || !jstr(pick, "url") || !jstr(pick, "token") || ident == NULL) {
    order_fail(o, "the CA offers none of the configured challenges");
    json_decref(j);
    return;
  }
  free(o->chal_url);
  o->chal_url = strdup(jstr(pick, "url"));
  o->chal_token = strdup(jstr(pick, "token"));
  char *ka = px_acme_key_authorization(o->chal_token, o->c->account_key);
  if (ka == NULL) {
    order_fail(o, "the CA sent an invalid challenge token");
    json_decref(j);
    return;
  }
  o->c->o.hooks.publish(o->c->o.hooks.arg, o->chal_type, ident, o->chal_token, ka);
  free(ka);
  px_log(PX_LOG_INFO, "acme: order for %s: answering %s for %s", o->names[0], type_name(o->chal_type), ident);
  json_decref(j);
  set_step(o, "challenge");
  post(o, o->chal_url, "{}", 1, on_challenge_posted);
}

static void next_authz(order *o) {
  if (o->authz_i >= json_array_size(o->authzs)) {
    finalize(o);
    return;
  }
  free(o->authz_url);
  o->authz_url = strdup(json_string_value(json_array_get(o->authzs, o->authz_i)));
  set_step(o, "authorization");
  post(o, o->authz_url, "", 1, on_authz);
}

static void on_new_order(order *o, const char *err, px_acme_response *r) {
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  json_t *j = parse(r);
  const char *fin = jstr(j, "finalize");
  json_t *authzs = json_object_get(j, "authorizations");
  if (r->location == NULL || fin == NULL || !json_is_array(authzs)) {
    order_fail(o, "the CA's order is incomplete");
    json_decref(j);
    px_acme_response_free(r);
    return;
  }
  o->order_url = strdup(r->location);
  o->finalize_url = strdup(fin);
  o->authzs = json_incref(authzs);
  json_decref(j);
  px_acme_response_free(r);
  px_log(PX_LOG_INFO, "acme: order for %s: created (%zu authorizations)", o->names[0], json_array_size(o->authzs));
  o->authz_i = 0;
  next_authz(o);
}

static void new_order(order *o) {
  set_step(o, "new order");
  json_t *ids = json_array();
  for (size_t i = 0; i < o->nnames; i++) json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", o->names[i]));
  json_t *p = json_pack("{s:o}", "identifiers", ids);
  char *payload = json_dumps(p, JSON_COMPACT);
  json_decref(p);
  post(o, o->c->url_new_order, payload, 1, on_new_order);
  free(payload);
}

/* ---- account ------------------------------------------------------------ */

static void save_account(px_acme_client *c) {
  size_t klen = 0;
  char *pem = px_acme_key_to_pem(c->account_key, &klen);
  json_t *j = json_pack("{s:s,s:s}", "kid", c->kid, "directory", c->o.directory_url);
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  if (pem) c->o.store->ops->save(c->o.store, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_KEY, pem, klen);
  if (text) c->o.store->ops->save(c->o.store, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_JSON, text, strlen(text));
  if (pem) px_acme_key_pem_free(pem, klen);
  free(text);
}

/* Loads the account of this CA from the cache; 1 when found. */
static int load_account(px_acme_client *c) {
  char *key = NULL, *meta = NULL;
  size_t klen = 0, mlen = 0;
  px_store *s = c->o.store;
  if (s->ops->load(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_KEY, &key, &klen) != 0) return 0;
  if (s->ops->load(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_JSON, &meta, &mlen) != 0) {
    px_store_data_free(key, klen);
    return 0;
  }
  c->account_key = px_acme_key_from_pem(key, klen);
  json_t *j = json_loadb(meta, mlen, 0, NULL);
  if (jstr(j, "kid")) c->kid = strdup(jstr(j, "kid"));
  json_decref(j);
  px_store_data_free(key, klen);
  px_store_data_free(meta, mlen);
  if (c->account_key == NULL || c->kid == NULL) {
    px_acme_key_free(c->account_key);
    c->account_key = NULL;
    free(c->kid);
    c->kid = NULL;
    return 0;
  }
  return 1;
}

static void on_new_account(order *o, const char *err, px_acme_response *r) {
  px_acme_client *c = o->c;
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  if (r->location == NULL) {
    px_acme_response_free(r);
    order_fail(o, "the CA did not say where the account is");
    return;
  }
  c->kid = strdup(r->location);
  px_acme_response_free(r);
  save_account(c);
  px_log(PX_LOG_INFO, "acme: account created at %s", c->kid);
  new_order(o);
}

static void ensure_account(order *o) {
  px_acme_client *c = o->c;
  if (c->kid) {
    new_order(o);
    return;
  }
  if (load_account(c)) {
    px_log(PX_LOG_INFO, "acme: using the cached account %s", c->kid);
    new_order(o);
    return;
  }
  if (c->terms && !c->o.accept_terms) {
    order_fail(o, "the CA requires agreeing to its terms of service (%s): set acme.accept_terms: true", c->terms);
    return;
  }
  if (c->eab_required && !c->o.eab_kid) {
    order_fail(o, "the CA requires external account binding: set acme.eab");
    return;
  }
  set_step(o, "new account");
  c->account_key = px_acme_account_key_generate();
  json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", c->o.accept_terms ? 1 : 0);
  if (c->o.email) {
    char contact[300];
    snprintf(contact, sizeof(contact), "mailto:%s", c->o.email);
    json_object_set_new(p, "contact", json_pack("[s]", contact));
  }
  if (c->o.eab_kid) {
    json_t *eab = px_acme_jws_eab(c->account_key, c->o.eab_kid, c->o.eab_hmac_key, c->url_new_account);
    if (eab == NULL) {
      json_decref(p);
      order_fail(o, "acme.eab.hmac_key is not valid base64url");
      return;
    }
    json_object_set_new(p, "externalAccountBinding", eab);
  }
  char *payload = json_dumps(p, JSON_COMPACT);
  json_decref(p);
  post(o, c->url_new_account, payload, 0, on_new_account);
  free(payload);
}

static void on_directory(order *o, const char *err, px_acme_response *r) {
  px_acme_client *c = o->c;
  if (err) {
    order_fail(o, "%s", err);
    return;
  }
  json_t *j = parse(r);
  px_acme_response_free(r);
  const char *nn = jstr(j, "newNonce"), *na = jstr(j, "newAccount"), *no = jstr(j, "newOrder");
  if (!nn || !na || !no) {
    json_decref(j);
    order_fail(o, "the directory lacks newNonce, newAccount or newOrder");
    return;
  }
  c->url_new_nonce = strdup(nn);
  c->url_new_account = strdup(na);
  c->url_new_order = strdup(no);
  json_t *meta = json_object_get(j, "meta");
  if (jstr(meta, "termsOfService")) c->terms = strdup(jstr(meta, "termsOfService"));
  c->eab_required = json_is_true(json_object_get(meta, "externalAccountRequired"));
  json_decref(j);
  ensure_account(o);
}

/* ---- public ------------------------------------------------------------- */

px_acme_client *px_acme_client_new(uv_loop_t *loop, const px_acme_client_opts *opts) {
  px_acme_client *c = calloc(1, sizeof(*c));
  if (c == NULL) return NULL;
  c->loop = loop;
  c->o = *opts;
  char err[256];
  c->tls = px_acme_tls_new(opts->ca_file, err, sizeof(err));
  if (c->tls == NULL) {
    px_log(PX_LOG_ERROR, "acme: %s", err);
    free(c);
    return NULL;
  }
  if (c->o.challenges[0] == 0) c->o.challenges[0] = PX_ACME_TLS_ALPN_01;
  return c;
}

static void start_cb(uv_timer_t *t) {
  order *o = t->data;
  px_acme_client *c = o->c;
  if (c->url_new_order) {
    ensure_account(o);
    return;
  }
  set_step(o, "directory");
  if (request(o, "GET", c->o.directory_url, NULL, NULL, on_directory, 0) != 0)
    order_fail(o, "acme.directory is not a usable https:// URL");
}

int px_acme_issue(px_acme_client *c, const char *const *names, size_t n, px_acme_issue_cb cb, void *arg) {
  if (n == 0 || n > 100) return -1;
  order *o = calloc(1, sizeof(*o));
  if (o == NULL) return -1;
  o->c = c;
  o->cb = cb;
  o->arg = arg;
  o->names = calloc(n, sizeof(char *));
  for (size_t i = 0; o->names && i < n; i++) o->names[o->nnames++] = strdup(names[i]);
  uv_timer_init(c->loop, &o->timer);
  o->timer.data = o;
  o->timer_open = 1;
  o->next = c->orders;
  c->orders = o;
  c->live++;
  set_step(o, "start");
  px_log(PX_LOG_INFO, "acme: ordering a certificate for %s%s", names[0], n > 1 ? " and others" : "");
  later(o, 0, start_cb); /* never call back from inside this call */
  return 0;
}

void px_acme_result_dispose(px_acme_result *r) {
  if (r->key_pem) px_acme_key_pem_free(r->key_pem, r->key_len);
  free(r->cert_pem);
  for (size_t i = 0; i < r->nalternates; i++) free(r->alternates[i]);
  free(r->alternates);
  memset(r, 0, sizeof(*r));
}

static void client_destroy(px_acme_client *c) {
  px_acme_tls_free(c->tls);
  px_acme_key_free(c->account_key);
  free(c->kid);
  free(c->url_new_nonce);
  free(c->url_new_account);
  free(c->url_new_order);
  free(c->terms);
  free(c);
}

void px_acme_client_free(px_acme_client *c) {
  if (c == NULL) return;
  c->freeing = 1;
  /* Abandon running orders: no callback; their requests finish quietly. */
  while (c->orders) order_free(c->orders);
  if (c->live == 0) client_destroy(c);
}
