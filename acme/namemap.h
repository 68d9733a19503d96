/*
 * A string-keyed hash map with least-recently-used order and a size bound,
 * used by the certificate manager for its memory tables. Not thread-safe:
 * the manager guards it with its lock.
 */
#ifndef PX_ACME_NAMEMAP_H
#define PX_ACME_NAMEMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct px_namemap px_namemap;

/** Called for a value that leaves the map (evicted, replaced, deleted, freed). */
typedef void (*px_namemap_free_fn)(void *value);

/** Creates a map holding at most `cap` entries (the least recently used go first). */
px_namemap *px_namemap_new(size_t cap, px_namemap_free_fn free_fn);

/** Frees the map and every value. */
void px_namemap_free(px_namemap *m);

/** The value for `key` (marking it recently used), or NULL. `*stamp` (if
 *  not NULL) gets the number stored with it. */
void *px_namemap_get(px_namemap *m, const char *key, int64_t *stamp);

/** Stores `value` (replacing any) with a number of the caller's choosing
 *  (an expiry time, say). 0, or -ENOMEM (the value is then not taken). */
int px_namemap_put(px_namemap *m, const char *key, void *value, int64_t stamp);

/** Removes `key`; 1 when it was there. */
int px_namemap_del(px_namemap *m, const char *key);

/** Number of entries. */
size_t px_namemap_size(const px_namemap *m);

#endif
