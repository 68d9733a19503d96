/*
 * What an ACME server sends that portico reads besides JWS: problem
 * documents (RFC 8555 §6.7, RFC 7807) with their classification and the
 * log-safe message, Retry-After values (RFC 9110 §10.2.3) and Link headers
 * (RFC 8288, px_acme_link).
 *
 * Input: byte 0-1 the HTTP status, then up to three parts separated by a
 * 0xff byte: the problem body, a Retry-After value, Link header values
 * (separated by '\n').
 *
 * Oracle beyond the sanitizers: the parsed strings are NUL-terminated within
 * their fields, the message has no control bytes (it goes to the log), the
 * wait is within [0, PX_ACME_RETRY_AFTER_MAX], a Link target has no control
 * byte (given values llhttp lets through) and each call moves on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/link.h"
#include "acme/proto/problem.h"
#include "acme/transport.h"

/* The next part of the input, up to a 0xff byte or the end. */
static const char *next_part(const uint8_t **p, const uint8_t *end, size_t *len) {
  const uint8_t *start = *p, *sep = memchr(start, 0xff, (size_t)(end - start));
  *len = (size_t)((sep ? sep : end) - start);
  *p = sep ? sep + 1 : end;
  return (const char *)start;
}

static void check_links(const char *s, size_t len) {
  px_acme_response r = {0};
  char *copy = malloc(len + 1);
  if (copy == NULL) return;
  memcpy(copy, s, len);
  copy[len] = '\0';
  /* Values as the transport's llhttp (strict) passes them: no control byte
   * but HTAB. */
  for (size_t i = 0; i < len; i++)
    if (((unsigned char)copy[i] < 0x20 && copy[i] != '\t' && copy[i] != '\n') || copy[i] == 0x7f)
      copy[i] = '\n';
  for (char *save = NULL, *line = strtok_r(copy, "\n", &save); line && r.nlinks < PX_ACME_MAX_LINKS;
       line = strtok_r(NULL, "\n", &save))
    r.links[r.nlinks++] = line;
  static const char *const rels[] = {"up", "alternate", "index"};
  for (size_t i = 0; i < sizeof(rels) / sizeof(rels[0]); i++) {
    size_t pos = 0;
    char *url;
    int found = 0;
    while ((url = px_acme_link(&r, rels[i], &pos)) != NULL) {
      for (const char *c = url; *c; c++)
        if ((unsigned char)*c < 0x20 && *c != '\t') abort();
      if (++found > PX_ACME_MAX_LINKS) abort(); /* at most one match per value */
      free(url);
    }
  }
  free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  int status = (data[0] << 8 | data[1]) % 1000;
  const uint8_t *p = data + 2, *end = data + size;
  size_t blen, rlen, llen;
  const char *body = next_part(&p, end, &blen);
  const char *retry = next_part(&p, end, &rlen);
  const char *links = next_part(&p, end, &llen);

  px_acme_problem prob;
  px_acme_problem_parse(body, blen, status, &prob);
  if (!memchr(prob.type, 0, sizeof(prob.type)) || !memchr(prob.detail, 0, sizeof(prob.detail)) ||
      !memchr(prob.instance, 0, sizeof(prob.instance)))
    abort();
  if (px_acme_problem_short_type(prob.type) == NULL && prob.type[0]) {
    /* NULL is allowed only for an empty type (documented as "" or NULL). */
  }
  char msg[1024];
  size_t mlen = px_acme_problem_message(&prob, msg, sizeof(msg));
  if (mlen >= sizeof(msg) || strlen(msg) != mlen) abort();
  for (size_t i = 0; i < mlen; i++)
    if ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) abort();
  px_acme_problem_classify(prob.type[0] ? prob.type : NULL, status);

  int64_t wait = px_acme_retry_after(rlen ? retry : NULL, rlen, 1700000000);
  if (wait < 0 || wait > PX_ACME_RETRY_AFTER_MAX) abort();

  check_links(links, llen);
  return 0;
}
