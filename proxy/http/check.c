/* Request checks on top of llhttp 8.1 (docs/dependencies.md, "Known gaps"). */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proxy/http.h"

/* tchar (RFC 9110 §5.6.2) as a table: this runs for every byte of every
 * field name, and isalnum() plus strchr() per byte showed in profiles. */
static const unsigned char tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
    ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
    ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
    ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1,  ['F'] = 1, ['G'] = 1,
    ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1,  ['N'] = 1, ['O'] = 1,
    ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,  ['V'] = 1, ['W'] = 1,
    ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1,  ['d'] = 1, ['e'] = 1,
    ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1,  ['l'] = 1, ['m'] = 1,
    ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1,  ['t'] = 1, ['u'] = 1,
    ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

const char *px_http_check_field_name(const char *name, size_t len) {
  if (len == 0) return "empty field name";
  for (size_t i = 0; i < len; i++)
    if (!tchar[(unsigned char)name[i]]) return "invalid character in field name";
  return NULL;
}

/* True when any byte of `w` is below 0x20 or is 0x7f: the classic
 * "has less than" and "has zero byte" word tricks, eight bytes at a time. */
static int word_has_control(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  uint64_t below_space = (w - ones * 0x20) & ~w & highs;
  uint64_t x = w ^ (ones * 0x7f);
  uint64_t is_del = (x - ones) & ~x & highs;
  return (below_space | is_del) != 0;
}

const char *px_http_check_field_value(const char *value, size_t len) {
  size_t i = 0;
  /* Most values hold no control byte at all: skip them a word at a time and
   * look byte by byte only at a word that has one (a tab is allowed). */
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, value + i, 8);
    if (word_has_control(w)) break;
  }
  for (; i < len; i++) {
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
  size_t n = strlen(name);
  for (size_t i = 0; i < h->nheaders; i++) {
    const px_header *f = &h->headers[i];
    if (f->name_len == n && strncasecmp(f->name, name, n) == 0) return f;
  }
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
