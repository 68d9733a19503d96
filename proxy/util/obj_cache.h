/*
 * A per-thread cache of small blocks for objects made and freed per request
 * (HTTP/2 streams, exchanges, nghttp2's own allocations through its
 * nghttp2_mem hook).
 *
 * With hundreds of streams open, glibc's per-thread cache (7 blocks per
 * size) overflows and every request pays the slower paths of malloc and
 * free about ten times. Blocks up to 1 KiB are kept here by 64-byte class,
 * a bounded number per class. Under AddressSanitizer the cache is off, so
 * use-after-free in cached objects is still caught there.
 */
#ifndef PX_PROXY_OBJ_CACHE_H
#define PX_PROXY_OBJ_CACHE_H

#include <stddef.h>

/** malloc through the calling thread's cache (NULL on ENOMEM). */
void *px_obj_alloc(size_t size);

/** calloc through the cache. */
void *px_obj_calloc(size_t nmemb, size_t size);

/** realloc for blocks from px_obj_alloc. */
void *px_obj_realloc(void *ptr, size_t size);

/** Frees a block from px_obj_alloc/calloc/realloc (NULL is fine). */
void px_obj_free(void *ptr);

/** Frees the calling thread's cached blocks (before a thread exits). */
void px_obj_cache_drain(void);

#endif
