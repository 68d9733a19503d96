#include "acme/ask.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "acme/transport.h"
#include "tls/log.h"

typedef struct ask_ctx {
  px_acme_ask_cb cb;
  void *arg;
} ask_ctx;

void px_acme_site_prefs_none(px_acme_site_prefs *p) {
  p->redirect_http = -1;
  p->hsts = -1;
}

int px_acme_site_prefs_parse(const char *body, size_t len, const char *content_type,
                             px_acme_site_prefs *p, char *err, size_t errlen) {
  px_acme_site_prefs_none(p);
  size_t i = 0;
  while (i < len && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n'))
    i++;
  int json_type = content_type && strncasecmp(content_type, "application/json", 16) == 0;
  /* Ask endpoints written for other servers answer "OK" or nothing: only a
   * JSON answer is read. */
  if (i == len || (!json_type && body[i] != '{')) return 0;
  json_error_t jerr;
  json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
  if (o == NULL || !json_is_object(o)) {
    snprintf(err, errlen, "the answer is not a JSON object%s%s", o ? "" : ": ", o ? "" : jerr.text);
    json_decref(o);
    return -1;
  }
  px_acme_site_prefs out;
  px_acme_site_prefs_none(&out);
  const char *key;
  json_t *v;
  int bad = 0;
  json_object_foreach(o, key, v) {
    if (strcmp(key, "redirect_http") == 0 && json_is_boolean(v)) {
      out.redirect_http = json_is_true(v);
    } else if (strcmp(key, "hsts") == 0 && json_is_boolean(v)) {
      out.hsts = json_is_true(v) ? PX_ACME_HSTS_DEFAULT_MAX_AGE : 0;
    } else if (strcmp(key, "hsts") == 0 && json_is_integer(v) && json_integer_value(v) >= 0 &&
               json_integer_value(v) <= PX_ACME_HSTS_MAX_AGE_MAX) {
      out.hsts = (int64_t)json_integer_value(v);
    } else if (strcmp(key, "redirect_http") == 0 || strcmp(key, "hsts") == 0) {
      /* A wrong value must not silently fall back to the site's setting. */
      snprintf(err, errlen, "\"%s\" must be %s", key,
               key[0] == 'r' ? "true or false" : "true, false or seconds from 0 to 63072000");
      bad = 1;
      break;
    }
    /* Other members are the endpoint's own business (it may serve other
     * servers too): ignored. */
  }
  json_decref(o);
  if (bad) return -1;
  *p = out;
  return 0;
}

static void on_answer(void *arg, const char *err, px_acme_response *r) {
  ask_ctx *a = arg;
  char why[640];
  int allowed = 0;
  px_acme_site_prefs prefs;
  px_acme_site_prefs_none(&prefs);
  if (err) {
    /* err names the URL and the system error (acme/transport.c). */
    snprintf(why, sizeof(why),
             "the on_demand.ask endpoint failed: %s; check on_demand.ask and that its server is "
             "running",
             err);
  } else {
    allowed = r->status >= 200 && r->status < 300;
    snprintf(why, sizeof(why), "ask endpoint answered %d", r->status);
    char perr[256];
    if (allowed && px_acme_site_prefs_parse(r->body, r->body_len, r->content_type, &prefs, perr,
                                            sizeof(perr)) != 0) {
      /* Refused rather than issued with settings the operator did not
       * mean: the next handshake asks again. */
      allowed = 0;
      snprintf(why, sizeof(why),
               "ask endpoint answered %d with settings portico cannot read: %s; fix the ask "
               "endpoint's answer",
               r->status, perr);
    }
  }
  px_acme_response_free(r);
  a->cb(a->arg, allowed, why, &prefs);
  free(a);
}

int px_acme_ask(uv_loop_t *loop, const char *url, const char *name, uint64_t timeout_ms,
                px_acme_ask_cb cb, void *arg) {
  if (strncmp(url, "http://", 7) != 0) return -EINVAL;
  size_t cap = strlen(url) + strlen(name) + 16;
  char *full = malloc(cap);
  ask_ctx *a = malloc(sizeof(*a));
  if (full == NULL || a == NULL) {
    free(full);
    free(a);
    return -ENOMEM;
  }
  /* A validated name is [a-z0-9.-] only: it needs no escaping in a query. */
  snprintf(full, cap, "%s%sdomain=%s", url, strchr(url, '?') ? "&" : "?", name);
  a->cb = cb;
  a->arg = arg;
  int r = px_acme_request(loop, NULL, "GET", full, NULL, NULL, 0, timeout_ms, on_answer, a);
  free(full);
  if (r != 0) free(a);
  return r;
}
