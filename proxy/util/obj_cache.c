#include "proxy/util/obj_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define PX_OBJ_CACHE_ON 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PX_OBJ_CACHE_ON 0
#endif
#endif
#ifndef PX_OBJ_CACHE_ON
#define PX_OBJ_CACHE_ON 1
#endif

#define HEADER 16     /* the block's size, keeping 16-byte alignment */
#define CLASS 64      /* size classes of 64 bytes... */
#define CLASSES 16    /* ...up to 1 KiB */
#define PER_CLASS 256 /* blocks kept per class: at most ~2.3 MiB per thread */

typedef struct free_block {
  struct free_block *next;
} free_block;

static __thread free_block *lists[CLASSES];
static __thread unsigned counts[CLASSES];

static size_t stored_size(const void *ptr) {
  size_t n;
  memcpy(&n, (const uint8_t *)ptr - HEADER, sizeof(n));
  return n;
}

/* Class index for a payload size, or -1 when it is not cached. */
static int class_of(size_t size) {
  if (!PX_OBJ_CACHE_ON || size == 0 || size > CLASS * CLASSES) return -1;
  return (int)((size - 1) / CLASS);
}

void *px_obj_alloc(size_t size) {
  int c = class_of(size);
  if (c >= 0) {
    size = (size_t)(c + 1) * CLASS; /* blocks of a class are interchangeable */
    free_block *b = lists[c];
    if (b) {
      lists[c] = b->next;
      counts[c]--;
      return b;
    }
  }
  if (size > SIZE_MAX - HEADER) return NULL;
  uint8_t *h = malloc(size + HEADER);
  if (h == NULL) return NULL;
  memcpy(h, &size, sizeof(size));
  return h + HEADER;
}

void *px_obj_calloc(size_t nmemb, size_t size) {
  if (size && nmemb > SIZE_MAX / size) return NULL;
  void *p = px_obj_alloc(nmemb * size);
  if (p) memset(p, 0, nmemb * size);
  return p;
}

void *px_obj_realloc(void *ptr, size_t size) {
  if (ptr == NULL) return px_obj_alloc(size);
  size_t old = stored_size(ptr);
  if (size <= old) return ptr;
  void *p = px_obj_alloc(size);
  if (p == NULL) return NULL;
  memcpy(p, ptr, old);
  px_obj_free(ptr);
  return p;
}

void px_obj_free(void *ptr) {
  if (ptr == NULL) return;
  size_t size = stored_size(ptr);
  int c = class_of(size);
  if (c >= 0 && size == (size_t)(c + 1) * CLASS && counts[c] < PER_CLASS) {
    free_block *b = ptr;
    b->next = lists[c];
    lists[c] = b;
    counts[c]++;
    return;
  }
  free((uint8_t *)ptr - HEADER);
}

void px_obj_cache_drain(void) {
  for (int c = 0; c < CLASSES; c++) {
    while (lists[c]) {
      free_block *b = lists[c];
      lists[c] = b->next;
      free((uint8_t *)b - HEADER);
    }
    counts[c] = 0;
  }
}
