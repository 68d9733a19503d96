/*
 * The table of ACME problem types (RFC 8555 §6.7) and what each means for a
 * retry, in the spirit of mod_md's md_acme.c problem table.
 */
#include "acme/proto/problem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "tls/log.h"

#define ACME_URN "urn:ietf:params:acme:error:"

static const struct {
  const char *name;
  px_acme_retry retry;
} problem_table[] = {
    /* §6.5: the server wants a fresh nonce, which the error response carries. */
    {"badNonce", PX_ACME_RETRY_NONCE},
    /* §6.6: honour Retry-After. */
    {"rateLimited", PX_ACME_RETRY_AFTER},
    {"serverInternal", PX_ACME_RETRY_AFTER},
    /* Everything else needs something to change first: the request, the
     * account, DNS, the firewall or an operator. */
    {"accountDoesNotExist", PX_ACME_PERMANENT},
    {"alreadyRevoked", PX_ACME_PERMANENT},
    {"badCSR", PX_ACME_PERMANENT},
    {"badPublicKey", PX_ACME_PERMANENT},
    {"badRevocationReason", PX_ACME_PERMANENT},
    {"badSignatureAlgorithm", PX_ACME_PERMANENT},
    {"caa", PX_ACME_PERMANENT},
    {"compound", PX_ACME_PERMANENT},
    {"connection", PX_ACME_PERMANENT},
    {"dns", PX_ACME_PERMANENT},
    {"externalAccountRequired", PX_ACME_PERMANENT},
    {"incorrectResponse", PX_ACME_PERMANENT},
    {"invalidContact", PX_ACME_PERMANENT},
    {"malformed", PX_ACME_PERMANENT},
    {"orderNotReady", PX_ACME_PERMANENT},
    {"rejectedIdentifier", PX_ACME_PERMANENT},
    {"tls", PX_ACME_PERMANENT},
    {"unauthorized", PX_ACME_PERMANENT},
    {"unsupportedContact", PX_ACME_PERMANENT},
    {"unsupportedIdentifier", PX_ACME_PERMANENT},
    {"userActionRequired", PX_ACME_PERMANENT},
};

const char *px_acme_problem_short_type(const char *type) {
  if (type == NULL) return "";
  if (strncmp(type, ACME_URN, sizeof(ACME_URN) - 1) == 0) return type + sizeof(ACME_URN) - 1;
  return type;
}

px_acme_retry px_acme_problem_classify(const char *type, int http_status) {
  const char *name = px_acme_problem_short_type(type);
  size_t i;

  if (type != NULL && strncmp(type, ACME_URN, sizeof(ACME_URN) - 1) == 0) {
    for (i = 0; i < sizeof(problem_table) / sizeof(problem_table[0]); i++) {
      if (strcmp(name, problem_table[i].name) != 0) continue;
      /* A 5xx means the server is in trouble whatever the type says. */
      if (problem_table[i].retry == PX_ACME_PERMANENT && http_status >= 500)
        return PX_ACME_RETRY_AFTER;
      return problem_table[i].retry;
    }
  }
  /* Unknown or missing type: the status decides (RFC 9110 §15.6.4 for 503). */
  return http_status >= 500 && http_status <= 599 ? PX_ACME_RETRY_AFTER : PX_ACME_PERMANENT;
}

static void copy_escaped(char *dst, size_t cap, const json_t *v) {
  const char *s = json_string_value(v);
  if (s == NULL) {
    dst[0] = '\0';
    return;
  }
  px_log_escape(dst, cap, s, json_string_length(v));
}

int px_acme_problem_parse(const char *body, size_t len, int http_status, px_acme_problem *out) {
  json_t *root;
  const json_t *sub;

  memset(out, 0, sizeof(*out));
  out->status = http_status;
  out->retry = px_acme_problem_classify(NULL, http_status);
  root = body == NULL ? NULL : json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(root)) {
    json_decref(root);
    return -EINVAL;
  }
  copy_escaped(out->type, sizeof(out->type), json_object_get(root, "type"));
  copy_escaped(out->detail, sizeof(out->detail), json_object_get(root, "detail"));
  copy_escaped(out->instance, sizeof(out->instance), json_object_get(root, "instance"));
  /* RFC 7807 §3.1: "status" is advisory; the HTTP status wins. */
  sub = json_object_get(root, "subproblems");
  out->subproblems = json_is_array(sub) ? json_array_size(sub) : 0;
  /* Classify from the raw type: the escaped copy may be truncated. */
  out->retry =
      px_acme_problem_classify(json_string_value(json_object_get(root, "type")), http_status);
  json_decref(root);
  return 0;
}

static int all_digits(const char *s, size_t len) {
  size_t i;
  if (len == 0) return 0;
  for (i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
  }
  return 1;
}

static int64_t clamp(int64_t v) {
  if (v < 0) return 0;
  return v > PX_ACME_RETRY_AFTER_MAX ? PX_ACME_RETRY_AFTER_MAX : v;
}

int64_t px_acme_retry_after(const char *value, size_t len, int64_t now) {
  /* RFC 9110 §5.6.7: IMF-fixdate, then the two obsolete forms. */
  static const char *const formats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                        "%a %b %e %H:%M:%S %Y"};
  char buf[64];
  size_t i;

  while (value != NULL && len > 0 && (*value == ' ' || *value == '\t')) {
    value++;
    len--;
  }
  while (value != NULL && len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
    len--;
  if (value == NULL || len == 0 || len >= sizeof(buf)) return PX_ACME_RETRY_AFTER_DEFAULT;
  if (all_digits(value, len)) {
    int64_t v = 0;
    /* Saturate instead of overflowing on absurdly long numbers. */
    for (i = 0; i < len && v <= PX_ACME_RETRY_AFTER_MAX; i++)
      v = v * 10 + (value[i] - '0');
    return clamp(v);
  }
  memcpy(buf, value, len);
  buf[len] = '\0';
  for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
    struct tm tm;
    const char *end;
    memset(&tm, 0, sizeof(tm));
    end = strptime(buf, formats[i], &tm);
    if (end != NULL && *end == '\0') return clamp((int64_t)timegm(&tm) - now);
  }
  return PX_ACME_RETRY_AFTER_DEFAULT;
}

size_t px_acme_problem_message(const px_acme_problem *p, char *out, size_t cap) {
  const char *name = px_acme_problem_short_type(p->type);
  int n;

  if (cap == 0) return 0;
  if (strcmp(name, "userActionRequired") == 0 && p->instance[0] != '\0')
    /* RFC 8555 §7.3.3: usually new terms of service to agree to. */
    n = snprintf(out, cap, "%s (HTTP %d): %s; an operator must visit %s", name, p->status,
                 p->detail, p->instance);
  else if (p->subproblems > 0)
    n = snprintf(out, cap, "%s (HTTP %d): %s (%zu subproblems)", name[0] ? name : "error",
                 p->status, p->detail, p->subproblems);
  else
    n = snprintf(out, cap, "%s (HTTP %d): %s", name[0] ? name : "error", p->status, p->detail);
  if (n < 0) {
    out[0] = '\0';
    return 0;
  }
  return (size_t)n < cap ? (size_t)n : cap - 1;
}
