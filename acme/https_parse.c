/*
 * Bounded HTTP/1.1 response parsing on llhttp, and Link fields (RFC 8288).
 * See acme/https_parse.h.
 */
#include "acme/https_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int on_status(llhttp_t *lp, const char *at, size_t len);
static int on_header_field(llhttp_t *lp, const char *at, size_t len);
static int on_header_field_complete(llhttp_t *lp);
static int on_header_value(llhttp_t *lp, const char *at, size_t len);
static int on_header_value_complete(llhttp_t *lp);
static int on_headers_complete(llhttp_t *lp);
static int on_body(llhttp_t *lp, const char *at, size_t len);
static int on_message_complete(llhttp_t *lp);

static const llhttp_settings_t settings = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_chunk_extension_name = on_status, /* counted with the head bytes */
    .on_chunk_extension_value = on_status,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static int refuse(px_https_parse *p, const char *err) {
  p->err = err;
  return -1;
}

/* Counts bytes against PX_HTTPS_MAX_HEADER_BYTES: llhttp sets no limit. */
static int count_head(px_https_parse *p, size_t len) {
  p->head_bytes += len;
  return p->head_bytes > PX_HTTPS_MAX_HEADER_BYTES ? refuse(p, px_https_err_headers_too_large) : 0;
}

static int on_status(llhttp_t *lp, const char *at, size_t len) { return count_head(lp->data, len); }

static int on_header_field(llhttp_t *lp, const char *at, size_t len) {
  px_https_parse *p = lp->data;
  if (count_head(p, len) != 0) return -1;
  for (size_t i = 0; i < len; i++) {
    if (p->field_len >= sizeof(p->field) - 1) {
      p->field_len = sizeof(p->field); /* too long to be one we keep */
      break;
    }
    p->field[p->field_len++] = (char)tolower((unsigned char)at[i]);
  }
  return 0;
}

static int on_header_field_complete(llhttp_t *lp) {
  px_https_parse *p = lp->data;
  if (++p->nheaders > PX_HTTPS_MAX_HEADERS) return refuse(p, px_https_err_headers_too_large);
  px_https_response *r = p->resp;
  const char *f = p->field;
  size_t n = p->field_len;
  p->target = NULL;
#define IS(name) (n == sizeof(name) - 1 && memcmp(f, name, n) == 0)
  if (IS("replay-nonce")) p->target = &r->replay_nonce;
  else if (IS("location")) p->target = &r->location;
  else if (IS("retry-after")) p->target = &r->retry_after;
  else if (IS("content-type")) p->target = &r->content_type;
  else if (IS("link")) p->target = &p->link;
#undef IS
  /* A repeated single field keeps its first value. */
  if (p->target && *p->target && p->target != &p->link) p->target = NULL;
  if (p->target && *p->target == NULL && (*p->target = calloc(1, 1)) == NULL)
    return refuse(p, px_https_err_nomem);
  return 0;
}

static int on_header_value(llhttp_t *lp, const char *at, size_t len) {
  px_https_parse *p = lp->data;
  if (count_head(p, len) != 0) return -1;
  if (p->target == NULL) return 0;
  size_t old = strlen(*p->target);
  char *n = realloc(*p->target, old + len + 1);
  if (n == NULL) return refuse(p, px_https_err_nomem);
  memcpy(n + old, at, len);
  n[old + len] = '\0';
  *p->target = n;
  return 0;
}

static int on_header_value_complete(llhttp_t *lp) {
  px_https_parse *p = lp->data;
  p->field_len = 0;
  if (p->target == NULL) return 0;
  char *v = *p->target;
  size_t len = strlen(v);
  while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t')) v[--len] = '\0';
  if (p->target == &p->link) {
    px_https_response *r = p->resp;
    /* A malformed Link field is ignored, not fatal: only up/alternate matter. */
    px_acme_parse_links(v, len, r->links, PX_HTTPS_MAX_LINKS, &r->nlinks);
    free(p->link);
    p->link = NULL;
  }
  p->target = NULL;
  return 0;
}

static int on_headers_complete(llhttp_t *lp) {
  px_https_parse *p = lp->data;
  p->resp->status = lp->status_code;
  p->headers_done = 1;
  if (p->is_head) return 1;
  /* Refuse a declared oversized body before reading any of it. */
  if ((lp->flags & F_CONTENT_LENGTH) && lp->content_length > PX_HTTPS_MAX_BODY)
    return refuse(p, px_https_err_body_too_large);
  return 0;
}

static int on_body(llhttp_t *lp, const char *at, size_t len) {
  px_https_parse *p = lp->data;
  px_https_response *r = p->resp;
  if (len > PX_HTTPS_MAX_BODY - r->body_len) return refuse(p, px_https_err_body_too_large);
  if (r->body_len + len + 1 > p->body_cap) {
    size_t cap = p->body_cap ? p->body_cap : 4096;
    while (cap < r->body_len + len + 1) cap *= 2;
    if (cap > PX_HTTPS_MAX_BODY + 1) cap = PX_HTTPS_MAX_BODY + 1;
    char *n = realloc(r->body, cap);
    if (n == NULL) return refuse(p, px_https_err_nomem);
    r->body = n;
    p->body_cap = cap;
  }
  memcpy(r->body + r->body_len, at, len);
  r->body_len += len;
  r->body[r->body_len] = '\0';
  return 0;
}

static int on_message_complete(llhttp_t *lp) {
  px_https_parse *p = lp->data;
  p->complete = 1;
  p->keep_alive = llhttp_should_keep_alive(lp);
  return HPE_PAUSED; /* one response per request: stop here */
}

int px_https_parse_init(px_https_parse *p, int is_head) {
  px_https_parse_dispose(p);
  memset(p, 0, sizeof(*p));
  p->is_head = is_head;
  if ((p->resp = calloc(1, sizeof(*p->resp))) == NULL) return -1;
  llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
  p->parser.data = p;
  return 0;
}

const char *px_https_parse_feed(px_https_parse *p, const char *data, size_t len) {
  if (p->complete) {
    p->keep_alive = 0;
    return NULL;
  }
  p->got_bytes = 1;
  llhttp_errno_t e = llhttp_execute(&p->parser, data, len);
  if (e == HPE_PAUSED && p->complete) {
    if (llhttp_get_error_pos(&p->parser) != data + len) p->keep_alive = 0;
    return NULL;
  }
  if (e == HPE_OK) return NULL;
  return p->err ? p->err : px_https_err_protocol;
}

int px_https_parse_eof(px_https_parse *p) {
  if (p->complete) return 0;
  if (!p->headers_done) return -1;
  if (llhttp_finish(&p->parser) != HPE_OK || !p->complete) return -1;
  p->keep_alive = 0;
  return 0;
}

px_https_response *px_https_parse_take(px_https_parse *p, int reused) {
  px_https_response *r = p->resp;
  if (r->body == NULL && (r->body = calloc(1, 1)) == NULL) return NULL;
  r->reused_connection = reused;
  p->resp = NULL;
  return r;
}

void px_https_parse_dispose(px_https_parse *p) {
  px_https_response_free(p->resp);
  p->resp = NULL;
  free(p->link);
  p->link = NULL;
}

void px_https_response_free(px_https_response *r) {
  if (r == NULL) return;
  free(r->replay_nonce);
  free(r->location);
  free(r->retry_after);
  free(r->content_type);
  px_https_links_clear(r->links, r->nlinks);
  free(r->body);
  free(r);
}

/* ---- Link (RFC 8288 §3) -------------------------------------------------- */

static int is_tchar(char c) {
  return isalnum((unsigned char)c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void skip_ows(const char *s, size_t len, size_t *i) {
  while (*i < len && (s[*i] == ' ' || s[*i] == '\t')) (*i)++;
}

/* Reads a token or a quoted-string (RFC 9110 §5.6.4) into a new string. */
static char *param_value(const char *s, size_t len, size_t *i) {
  char *out = malloc(len - *i + 1);
  if (out == NULL) return NULL;
  size_t o = 0;
  if (*i < len && s[*i] == '"') {
    for ((*i)++; *i < len && s[*i] != '"'; (*i)++) {
      if (s[*i] == '\\' && *i + 1 < len) (*i)++;
      out[o++] = s[*i];
    }
    if (*i >= len) {
      free(out);
      return NULL; /* unterminated */
    }
    (*i)++;
  } else {
    while (*i < len && is_tchar(s[*i])) out[o++] = s[(*i)++];
  }
  out[o] = '\0';
  return out;
}

int px_acme_parse_links(const char *s, size_t len, px_https_link *out, size_t max, size_t *n) {
  size_t i = 0;
  for (;;) {
    while (i < len && (s[i] == ',' || s[i] == ' ' || s[i] == '\t')) i++;
    if (i == len) return 0;
    if (s[i] != '<') return -1;
    const char *gt = memchr(s + i, '>', len - i);
    if (gt == NULL) return -1;
    const char *url = s + i + 1;
    size_t url_len = (size_t)(gt - url);
    i = (size_t)(gt - s) + 1;
    char *rel = NULL;
    for (;;) {
      skip_ows(s, len, &i);
      if (i == len || s[i] == ',') break;
      if (s[i] != ';') {
        free(rel);
        return -1;
      }
      i++;
      skip_ows(s, len, &i);
      size_t name = i;
      while (i < len && is_tchar(s[i])) i++;
      size_t name_len = i - name;
      skip_ows(s, len, &i);
      char *value = NULL;
      if (i < len && s[i] == '=') {
        i++;
        skip_ows(s, len, &i);
        if ((value = param_value(s, len, &i)) == NULL) {
          free(rel);
          return -1;
        }
      }
      /* Only the first rel counts (RFC 8288 §3.3); types are case-insensitive. */
      if (value && rel == NULL && name_len == 3 && strncasecmp(s + name, "rel", 3) == 0) {
        for (char *c = value; *c; c++) *c = (char)tolower((unsigned char)*c);
        rel = value;
      } else {
        free(value);
      }
    }
    if (rel && *n < max) {
      char *u = strndup(url, url_len);
      if (u == NULL) {
        free(rel);
        return -1;
      }
      out[*n].url = u;
      out[*n].rel = rel;
      (*n)++;
    } else {
      free(rel);
    }
  }
}

void px_https_links_clear(px_https_link *links, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(links[i].url);
    free(links[i].rel);
    links[i].url = links[i].rel = NULL;
  }
}

/* True when the space-separated list `rels` holds `rel` (RFC 8288 §3.3). */
static int has_rel(const char *rels, const char *rel) {
  size_t want = strlen(rel);
  for (const char *s = rels; *s;) {
    size_t len = strcspn(s, " \t");
    if (len == want && strncasecmp(s, rel, len) == 0) return 1;
    s += len;
    s += strspn(s, " \t");
  }
  return 0;
}

const char *px_https_link_find(const px_https_response *r, const char *rel, size_t *pos) {
  for (size_t i = pos ? *pos : 0; i < r->nlinks; i++) {
    if (has_rel(r->links[i].rel, rel)) {
      if (pos) *pos = i + 1;
      return r->links[i].url;
    }
  }
  if (pos) *pos = r->nlinks;
  return NULL;
}
