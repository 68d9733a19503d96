/*
 * Link header parsing (acme/link.h). The grammar (RFC 8288 §3):
 *
 *   Link       = #link-value
 *   link-value = "<" URI-Reference ">" *( OWS ";" OWS link-param )
 *   link-param = token BWS [ "=" BWS ( token / quoted-string ) ]
 *
 * Parsed by hand, bounded by the value's length: the values come from the
 * CA, and a relation is matched as a whole word, so "rel=update" is not
 * "up".
 */
#include "acme/link.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *skip_ows(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* Whether the space-separated relation types in [v, end) include `rel`. */
static int rel_listed(const char *v, const char *end, const char *rel) {
  size_t want = strlen(rel);
  while (v < end) {
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    const char *w = v;
    while (w < end && *w != ' ' && *w != '\t')
      w++;
    if ((size_t)(w - v) == want && strncasecmp(v, rel, want) == 0) return 1;
    v = w;
  }
  return 0;
}

/* Reads one parameter value at `s` (a token or a quoted string): its
 * content in [*v, *vend) (quoted: between the quotes, escapes left as
 * they are). Returns the position after it. */
static const char *param_value(const char *s, const char **v, const char **vend) {
  if (*s == '"') {
    const char *q = s + 1;
    while (*q && *q != '"') {
      if (*q == '\\' && q[1]) q++;
      q++;
    }
    *v = s + 1;
    *vend = q;
    return *q == '"' ? q + 1 : q;
  }
  const char *q = s;
  while (*q && *q != ';' && *q != ',' && *q != ' ' && *q != '\t')
    q++;
  *v = s;
  *vend = q;
  return q;
}

/* Parses the link-value at `s`. Sets [*uri, *uri_end) and *match (a rel
 * parameter lists `rel`). Returns the position after the value (at its
 * ',' or the end), or NULL when the value is malformed. */
static const char *link_value(const char *s, const char *rel, const char **uri,
                              const char **uri_end, int *match) {
  s = skip_ows(s);
  if (*s != '<') return NULL;
  const char *gt = strchr(s, '>');
  if (gt == NULL) return NULL;
  *uri = s + 1;
  *uri_end = gt;
  *match = 0;
  s = skip_ows(gt + 1);
  while (*s == ';') {
    s = skip_ows(s + 1);
    const char *name = s;
    while (*s && *s != '=' && *s != ';' && *s != ',' && *s != ' ' && *s != '\t')
      s++;
    size_t nlen = (size_t)(s - name);
    s = skip_ows(s);
    const char *v = s, *vend = s;
    if (*s == '=') s = param_value(skip_ows(s + 1), &v, &vend);
    /* RFC 8288 §3.3: only the first rel parameter counts. */
    if (nlen == 3 && strncasecmp(name, "rel", 3) == 0 && !*match) *match = rel_listed(v, vend, rel);
    s = skip_ows(s);
  }
  return *s == ',' || *s == '\0' ? s : NULL;
}

char *px_acme_link(const px_acme_response *r, const char *rel, size_t *pos) {
  for (size_t i = pos ? *pos : 0; i < r->nlinks; i++) {
    /* One field may carry several links: "<a>;rel=up, <b>;rel=alternate". */
    const char *s = r->links[i];
    while (s && *s) {
      const char *uri, *uri_end;
      int match;
      s = link_value(s, rel, &uri, &uri_end, &match);
      if (s == NULL) break; /* the rest of this field cannot be trusted */
      if (match) {
        if (pos) *pos = i + 1;
        return strndup(uri, (size_t)(uri_end - uri));
      }
      if (*s == ',') s++;
    }
  }
  return NULL;
}
