/* Building a px_http_head from llhttp's span callbacks, shared by the
 * request parser (h1.c) and the response parser (exchange.c). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"

/* Freed heads are kept per thread and handed out again: a request and its
 * response each need a head (an 8 KiB field array plus an arena of up to
 * 64 KiB), and malloc/free of those showed as ~10% of a profile. Only the
 * pages a message touched are resident, so a cached head costs little. */
#define HEAD_CACHE 128
static __thread px_http_head *head_cache[HEAD_CACHE];
static __thread size_t head_cached;

px_http_head *px_http_head_new(size_t arena_cap) {
  px_http_head *h = NULL;
  for (size_t i = head_cached; i-- > 0;) {
    if (head_cache[i]->arena_cap == arena_cap) {
      h = head_cache[i];
      head_cache[i] = head_cache[--head_cached];
      break;
    }
  }
  if (h == NULL) {
    h = malloc(sizeof(*h));
    if (h == NULL) return NULL;
    h->arena = malloc(arena_cap);
    if (h->arena == NULL) {
      free(h);
      return NULL;
    }
  }
  /* Only the fields before the header array need zeroing: the array is read
   * up to nheaders only, and clearing 8 KiB per message shows in profiles. */
  char *arena = h->arena;
  memset(h, 0, offsetof(px_http_head, headers));
  h->nheaders = 0;
  h->arena = arena;
  h->arena_cap = arena_cap;
  h->target = h->arena;
  h->reason = h->arena;
  h->arena[0] = '\0'; /* no stale string from the head's last use */
  return h;
}

void px_http_head_free(px_http_head *h) {
  if (h == NULL) return;
  if (head_cached < HEAD_CACHE) {
    head_cache[head_cached++] = h;
    return;
  }
  free(h->arena);
  free(h);
}

void px_http_head_cache_drain(void) {
  while (head_cached) {
    px_http_head *h = head_cache[--head_cached];
    free(h->arena);
    free(h);
  }
}

int px_http_head_append(px_http_head *h, const char *at, size_t len) {
  if (h->arena_len + len + 1 > h->arena_cap) return -1;
  memcpy(h->arena + h->arena_len, at, len);
  h->arena_len += len;
  return 0;
}

int px_http_head_field_name(px_http_head *h, int *in_field, const char *at, size_t len,
                            size_t max_fields) {
  if (*in_field != 1) {
    if (h->nheaders >= max_fields || h->nheaders >= PX_MAX_HEADERS_HARD) return -1;
    px_header *f = &h->headers[h->nheaders++];
    f->name = h->arena + h->arena_len;
    f->name_len = 0;
    f->value = "";
    f->value_len = 0;
    *in_field = 1;
  }
  if (px_http_head_append(h, at, len) != 0) return -1;
  h->headers[h->nheaders - 1].name_len += len;
  return 0;
}

int px_http_head_field_value(px_http_head *h, int *in_field, const char *at, size_t len) {
  if (h->nheaders == 0) return -1;
  px_header *f = &h->headers[h->nheaders - 1];
  if (*in_field != 2) {
    f->value = h->arena + h->arena_len;
    f->value_len = 0;
    *in_field = 2;
  }
  if (px_http_head_append(h, at, len) != 0) return -1;
  f->value_len += len;
  return 0;
}

int px_http_head_field_done(px_http_head *h, int *in_field) {
  if (*in_field == 2) {
    px_header *f = &h->headers[h->nheaders - 1];
    while (f->value_len &&
           (f->value[f->value_len - 1] == ' ' || f->value[f->value_len - 1] == '\t'))
      f->value_len--;
  }
  *in_field = 0;
  if (h->arena_len + 1 > h->arena_cap) return -1;
  h->arena[h->arena_len++] = '\0';
  return 0;
}
