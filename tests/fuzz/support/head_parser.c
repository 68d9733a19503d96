#include "tests/fuzz/support/head_parser.h"

#include <string.h>

static px_http_head *field_target(fuzz_head *fh) {
  if (!fh->headers_done) return fh->head;
  if (fh->trailers == NULL) fh->trailers = px_http_head_new(16384);
  return fh->trailers;
}

static int on_message_begin(llhttp_t *p) {
  fuzz_head *fh = p->data;
  if (fh->head) return HPE_USER; /* one message per input */
  fh->head = px_http_head_new(fh->arena_cap);
  fh->in_field = 0;
  return fh->head ? 0 : HPE_USER;
}

/* The request-target and the reason phrase are the head's first string. */
static int on_first_line_span(llhttp_t *p, const char *at, size_t len) {
  fuzz_head *fh = p->data;
  if (px_http_head_append(fh->head, at, len) != 0) return HPE_USER;
  fh->head->target_len += len;
  return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  fuzz_head *fh = p->data;
  px_http_head *h = field_target(fh);
  return h && px_http_head_field_name(h, &fh->in_field, at, len, fh->max_fields) == 0 ? 0
                                                                                      : HPE_USER;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  fuzz_head *fh = p->data;
  px_http_head *h = field_target(fh);
  return h && px_http_head_field_value(h, &fh->in_field, at, len) == 0 ? 0 : HPE_USER;
}

static int on_span_complete(llhttp_t *p) {
  fuzz_head *fh = p->data;
  px_http_head *h = field_target(fh);
  return h && px_http_head_field_done(h, &fh->in_field) == 0 ? 0 : HPE_USER;
}

static int on_headers_complete(llhttp_t *p) {
  fuzz_head *fh = p->data;
  px_http_head *h = fh->head;
  fh->headers_done = 1;
  h->version_minor = p->http_minor;
  if (p->type == HTTP_REQUEST) {
    h->method = llhttp_method_name((llhttp_method_t)p->method);
  } else {
    h->status = p->status_code;
    h->reason = h->target; /* the status line's one string */
  }
  fh->chunked = (p->flags & F_CHUNKED) != 0;
  fh->content_length = (p->flags & F_CONTENT_LENGTH) ? (int64_t)p->content_length : -1;
  fh->upgrade = p->upgrade;
  fh->keep_alive = llhttp_should_keep_alive(p);
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  fuzz_head *fh = p->data;
  fh->message_done = 1;
  return HPE_PAUSED;
}

void fuzz_head_parse(fuzz_head *fh, llhttp_type_t type, const char *data, size_t len,
                     size_t arena_cap, size_t max_fields, int at_eof) {
  memset(fh, 0, sizeof(*fh));
  fh->arena_cap = arena_cap;
  fh->max_fields = max_fields;
  fh->content_length = -1;
  llhttp_settings_t s;
  llhttp_settings_init(&s);
  s.on_message_begin = on_message_begin;
  s.on_url = on_first_line_span;
  s.on_status = on_first_line_span;
  s.on_url_complete = on_span_complete;
  s.on_status_complete = on_span_complete;
  s.on_header_field = on_header_field;
  s.on_header_field_complete = on_span_complete;
  s.on_header_value = on_header_value;
  s.on_header_value_complete = on_span_complete;
  s.on_headers_complete = on_headers_complete;
  s.on_message_complete = on_message_complete;
  llhttp_init(&fh->parser, type, &s);
  fh->parser.data = fh;
  fh->err = llhttp_execute(&fh->parser, data, len);
  if (fh->err == HPE_OK && at_eof) fh->err = llhttp_finish(&fh->parser);
  /* llhttp keeps a pointer to the settings: the parser is done with them. */
  fh->parser.settings = NULL;
}

void fuzz_head_dispose(fuzz_head *fh) {
  px_http_head_free(fh->head);
  px_http_head_free(fh->trailers);
  fh->head = fh->trailers = NULL;
}
