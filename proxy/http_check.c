/* Request checks on top of llhttp 8.1 (DESIGN.md, "Known gaps"). */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proxy/http.h"

/* tchar (RFC 9110 §5.6.2). */
static int is_tchar(unsigned char c) {
  if (isalnum(c)) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

const char *px_http_check_field_name(const char *name, size_t len) {
  if (len == 0) return "empty field name";
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)name[i])) return "invalid character in field name";
  return NULL;
}

const char *px_http_check_field_value(const char *value, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)value[i];
    /* CR or LF inside a value is obs-fold or a bare line ending (RFC 9112
     * §5.2, §2.2); NUL and other controls are never valid (RFC 9110 §5.5). */
    if (c == '\r' || c == '\n') return "line break inside a field value";
    if ((c < 0x20 && c != '\t') || c == 0x7f) return "control character in field value";
  }
  return NULL;
}

static int name_is(const px_header *h, const char *name) {
  size_t n = strlen(name);
  return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

const px_header *px_http_find(const px_http_head *h, const char *name) {
  for (size_t i = 0; i < h->nheaders; i++)
    if (name_is(&h->headers[i], name)) return &h->headers[i];
  return NULL;
}

/* Parses a Content-Length value: digits only, no overflow. We refuse comma
 * lists even with equal members (RFC 9112 §6.3 allows rejecting them), so
 * one value means one number. */
static int parse_content_length(const char *v, size_t len, uint64_t *out) {
  if (len == 0 || len > 19) return -1;
  uint64_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (v[i] < '0' || v[i] > '9') return -1;
    n = n * 10 + (uint64_t)(v[i] - '0');
  }
  *out = n;
  return 0;
}

const char *px_http_check_request(const px_http_head *h) {
  int hosts = 0, cls = 0, tes = 0;
  uint64_t cl = 0;
  for (size_t i = 0; i < h->nheaders; i++) {
    const px_header *f = &h->headers[i];
    const char *why = px_http_check_field_name(f->name, f->name_len);
    if (why) return why;
    why = px_http_check_field_value(f->value, f->value_len);
    if (why) return why;
    if (name_is(f, "host")) {
      if (++hosts > 1) return "two Host headers";
      char tmp[256];
      if (px_http_normalize_host(f->value, f->value_len, tmp, sizeof(tmp)) < 0)
        return "invalid Host";
    } else if (name_is(f, "content-length")) {
      uint64_t v;
      if (parse_content_length(f->value, f->value_len, &v) != 0) return "invalid Content-Length";
      if (cls++ > 0 && v != cl) return "conflicting Content-Length";
      cl = v;
    } else if (name_is(f, "transfer-encoding")) {
      /* Only a single "chunked" is accepted: anything else cannot be framed
       * safely by every hop (RFC 9112 §6.1). */
      if (tes++ > 0) return "unsupported Transfer-Encoding";
      if (f->value_len != 7 || strncasecmp(f->value, "chunked", 7) != 0)
        return "unsupported Transfer-Encoding";
    }
  }
  if (cls && tes) return "Content-Length with Transfer-Encoding";
  if (hosts == 0 && h->version_minor >= 1) return "HTTP/1.1 request without Host";
  return NULL;
}
