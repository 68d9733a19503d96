/*
 * Requests to the CA for one order: unsigned GET/HEAD (directory, nonce)
 * and the JWS-signed POST every other resource takes (RFC 8555 §6.2). This
 * is where the problem table (acme/proto/problem.h) decides between signing
 * again at once (badNonce, §6.5), reporting Retry-After, and failing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/proto/jws.h"
#include "acme/proto/order_internal.h"
#include "acme/proto/problem.h"
#include "tls/log.h"

typedef struct req_ctx {
  px__acme_order *o;
  px__acme_post_cb done;
  int is_post;
} req_ctx;

static void send_post(px__acme_order *o);

static void take_nonce(px_acme_client *c, const px_acme_response *r) {
  if (r && r->replay_nonce && strlen(r->replay_nonce) < sizeof(c->nonce))
    snprintf(c->nonce, sizeof(c->nonce), "%s", r->replay_nonce);
}

static void on_response(void *arg, const char *err, px_acme_response *r) {
  req_ctx *ctx = arg;
  px__acme_order *o = ctx->o;
  px__acme_post_cb done = ctx->done;
  int is_post = ctx->is_post;
  free(ctx);
  o->busy--;
  if (o->finished || o->c->freeing) {
    px_acme_response_free(r);
    px__acme_order_release(o);
    return;
  }
  take_nonce(o->c, r);
  if (err) {
    o->failure.ca_unreachable = 1; /* no answer at all: the CA's health, not the name's */
    done(o, err, NULL);
    return;
  }
  if (r->status >= 400) {
    px_acme_problem p;
    px_acme_problem_parse(r->body ? r->body : "", r->body_len, r->status, &p);
    px_acme_retry kind = px_acme_problem_classify(p.type, r->status);
    if (kind == PX_ACME_RETRY_NONCE && is_post && o->nonce_retries++ < PX__ACME_MAX_NONCE_RETRIES) {
      /* RFC 8555 §6.5: the error carries a fresh nonce; sign again. */
      px_log(PX_LOG_DEBUG, "acme: %s for %s: badNonce, retrying", o->step, o->names[0]);
      px_acme_response_free(r);
      send_post(o);
      return;
    }
    if (kind == PX_ACME_RETRY_AFTER || r->retry_after)
      o->failure.retry_after = px_acme_retry_after(
          r->retry_after, r->retry_after ? strlen(r->retry_after) : 0, (int64_t)time(NULL));
    if (!is_post && r->status >= 500) o->failure.ca_unreachable = 1; /* directory, nonce */
    o->failure.problem = p;
    o->failure.has_problem = 1;
    if (is_post && o->post_kid && !o->account_reset &&
        strcmp(px_acme_problem_short_type(p.type), "accountDoesNotExist") == 0) {
      /* The CA forgot our account (a reset, a staging wipe): register a
       * new one, once, and place the order again (RFC 8555 §7.3.1). */
      px_log(PX_LOG_WARN,
             "acme: the CA at %s no longer knows the account %s; registering a new account",
             o->c->o.directory_url, o->c->kid ? o->c->kid : "?");
      px_acme_response_free(r);
      o->account_reset = 1;
      o->failure.has_problem = 0;
      px__acme_account_reset(o);
      return;
    }
    char msg[512];
    px_acme_problem_message(&p, msg, sizeof(msg));
    px_acme_response_free(r);
    done(o, msg, NULL);
    return;
  }
  done(o, NULL, r);
}

static int request(px__acme_order *o, const char *method, const char *url, const char *ctype,
                   const char *body, px__acme_post_cb done, int is_post) {
  req_ctx *ctx = malloc(sizeof(*ctx));
  if (ctx == NULL) return -ENOMEM;
  ctx->o = o;
  ctx->done = done;
  ctx->is_post = is_post;
  uint64_t timeout =
      o->c->o.request_timeout_ms ? o->c->o.request_timeout_ms : PX_ACME_REQUEST_TIMEOUT_MS;
  int r = px_acme_request(o->c->loop, o->c->tls, method, url, ctype, body, body ? strlen(body) : 0,
                          timeout, on_response, ctx);
  if (r != 0) {
    free(ctx);
    return r;
  }
  o->busy++;
  return 0;
}

int px__acme_get(px__acme_order *o, const char *method, const char *url, px__acme_post_cb done) {
  return request(o, method, url, NULL, NULL, done, 0);
}

static void on_nonce(px__acme_order *o, const char *err, px_acme_response *r) {
  px_acme_response_free(r);
  if (err || o->c->nonce[0] == '\0') {
    px__acme_order_fail(o, "no nonce from the CA%s%s", err ? ": " : "", err ? err : "");
    return;
  }
  send_post(o);
}

/* Signs and sends the current POST; fetches a nonce first when none is kept. */
static void send_post(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->nonce[0] == '\0') {
    if (px__acme_get(o, "HEAD", c->url_new_nonce, on_nonce) != 0)
      px__acme_order_fail(o, "cannot reach the CA");
    return;
  }
  char *jws = px_acme_jws_sign(c->account_key, o->post_url, c->nonce, o->post_kid ? c->kid : NULL,
                               o->post_payload);
  c->nonce[0] = '\0'; /* each nonce is used once (RFC 8555 §6.5) */
  if (jws == NULL ||
      request(o, "POST", o->post_url, "application/jose+json", jws, o->post_done, 1) != 0)
    px__acme_order_fail(o, "cannot sign or send the request");
  free(jws);
}

void px__acme_post(px__acme_order *o, const char *url, const char *payload, int use_kid,
                   px__acme_post_cb done) {
  if (px__acme_set_str(&o->post_url, url) != 0 ||
      px__acme_set_str(&o->post_payload, payload) != 0) {
    px__acme_order_fail(o, "out of memory");
    return;
  }
  o->post_kid = use_kid;
  o->post_done = done;
  o->nonce_retries = 0;
  send_post(o);
}

json_t *px__acme_json(const px_acme_response *r) {
  return r && r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
}

const char *px__acme_json_str(json_t *j, const char *key) {
  json_t *v = json_object_get(j, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int px__acme_set_str(char **dst, const char *s) {
  char *d = s ? strdup(s) : NULL;
  if (s && d == NULL) return -ENOMEM;
  free(*dst);
  *dst = d;
  return 0;
}
