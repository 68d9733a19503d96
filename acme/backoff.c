/*
 * Failure backoff arithmetic and its JSON form.
 */
#include "acme/backoff.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

/* 1 min, 10 min, 100 min (Let's Encrypt integration guide, "Retrying
 * failures"); anything later is daily. */
static const int64_t steps[] = {60, 600, 6000};

int64_t px_acme_backoff_next(unsigned failures) {
  if (failures == 0) return 0;
  if (failures <= sizeof(steps) / sizeof(steps[0])) return steps[failures - 1];
  return PX_ACME_BACKOFF_DAILY;
}

static void copy_bounded(char *dst, size_t cap, const char *src) {
  size_t n = src == NULL ? 0 : strnlen(src, cap - 1);
  if (n > 0) memcpy(dst, src, n);
  dst[n] = '\0';
}

void px_acme_backoff_init(px_acme_backoff *b, const char *name) {
  memset(b, 0, sizeof(*b));
  copy_bounded(b->name, sizeof(b->name), name);
}

void px_acme_backoff_fail(px_acme_backoff *b, int64_t now, const char *error) {
  if (b->failures < UINT32_MAX) b->failures++;
  b->last_failure = now;
  b->next_attempt = now + px_acme_backoff_next(b->failures);
  copy_bounded(b->last_error, sizeof(b->last_error), error);
}

int px_acme_backoff_ready(const px_acme_backoff *b, int64_t now) { return now >= b->next_attempt; }

void px_acme_backoff_reset(px_acme_backoff *b) {
  b->failures = 0;
  b->next_attempt = 0;
}

char *px_acme_backoff_to_json(const px_acme_backoff *b) {
  json_t *j = json_pack("{s:s, s:I, s:I, s:I, s:s}", "name", b->name, "failures",
                        (json_int_t)b->failures, "last_failure", (json_int_t)b->last_failure,
                        "next_attempt", (json_int_t)b->next_attempt, "last_error", b->last_error);
  char *out;
  if (j == NULL) return NULL;
  out = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return out;
}

int px_acme_backoff_from_json(const char *json, size_t len, px_acme_backoff *b) {
  json_t *j = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
  const char *name = NULL, *err = "";
  json_int_t failures = 0, last = 0, next = 0;
  int rc = -EINVAL;

  if (j == NULL) return -EINVAL;
  if (json_unpack(j, "{s:s, s:I, s:I, s:I, s?:s}", "name", &name, "failures", &failures,
                  "last_failure", &last, "next_attempt", &next, "last_error", &err) != 0 ||
      failures < 0 || failures > UINT32_MAX || strlen(name) >= PX_ACME_BACKOFF_NAME_MAX)
    goto done;
  px_acme_backoff_init(b, name);
  b->failures = (unsigned)failures;
  b->last_failure = last;
  b->next_attempt = next;
  copy_bounded(b->last_error, sizeof(b->last_error), err);
  rc = 0;
done:
  json_decref(j);
  return rc;
}
