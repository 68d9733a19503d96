#include "acme/namemap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct entry {
  char *key;
  void *value;
  int64_t stamp;
  struct entry *hnext;         /* hash chain */
  struct entry *newer, *older; /* LRU list */
} entry;

struct px_namemap {
  entry **buckets;
  size_t nbuckets, size, cap;
  entry *newest, *oldest;
  px_namemap_free_fn free_fn;
};

static size_t hash(const char *s) {
  size_t h = 1469598103934665603ULL;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

px_namemap *px_namemap_new(size_t cap, px_namemap_free_fn free_fn) {
  px_namemap *m = calloc(1, sizeof(*m));
  if (m == NULL) return NULL;
  m->cap = cap ? cap : 1;
  m->nbuckets = 64;
  while (m->nbuckets < m->cap && m->nbuckets < (1u << 20))
    m->nbuckets <<= 1;
  m->buckets = calloc(m->nbuckets, sizeof(entry *));
  if (m->buckets == NULL) {
    free(m);
    return NULL;
  }
  m->free_fn = free_fn;
  return m;
}

static void lru_unlink(px_namemap *m, entry *e) {
  if (e->newer)
    e->newer->older = e->older;
  else
    m->newest = e->older;
  if (e->older)
    e->older->newer = e->newer;
  else
    m->oldest = e->newer;
  e->newer = e->older = NULL;
}

static void lru_push(px_namemap *m, entry *e) {
  e->older = m->newest;
  e->newer = NULL;
  if (m->newest) m->newest->newer = e;
  m->newest = e;
  if (m->oldest == NULL) m->oldest = e;
}

static entry **find(px_namemap *m, const char *key) {
  entry **p = &m->buckets[hash(key) & (m->nbuckets - 1)];
  while (*p && strcmp((*p)->key, key) != 0)
    p = &(*p)->hnext;
  return p;
}

static void drop(px_namemap *m, entry **slot) {
  entry *e = *slot;
  *slot = e->hnext;
  lru_unlink(m, e);
  if (m->free_fn && e->value) m->free_fn(e->value);
  free(e->key);
  free(e);
  m->size--;
}

void *px_namemap_get(px_namemap *m, const char *key, int64_t *stamp) {
  entry *e = *find(m, key);
  if (e == NULL) return NULL;
  lru_unlink(m, e);
  lru_push(m, e);
  if (stamp) *stamp = e->stamp;
  return e->value;
}

int px_namemap_put(px_namemap *m, const char *key, void *value, int64_t stamp) {
  entry **slot = find(m, key);
  if (*slot) {
    entry *e = *slot;
    if (m->free_fn && e->value && e->value != value) m->free_fn(e->value);
    e->value = value;
    e->stamp = stamp;
    lru_unlink(m, e);
    lru_push(m, e);
    return 0;
  }
  entry *e = calloc(1, sizeof(*e));
  if (e == NULL || (e->key = strdup(key)) == NULL) {
    free(e);
    return -ENOMEM;
  }
  e->value = value;
  e->stamp = stamp;
  e->hnext = NULL;
  *slot = e;
  lru_push(m, e);
  m->size++;
  while (m->size > m->cap)
    drop(m, find(m, m->oldest->key));
  return 0;
}

int px_namemap_del(px_namemap *m, const char *key) {
  entry **slot = find(m, key);
  if (*slot == NULL) return 0;
  drop(m, slot);
  return 1;
}

size_t px_namemap_size(const px_namemap *m) { return m->size; }

void px_namemap_free(px_namemap *m) {
  if (m == NULL) return;
  while (m->oldest)
    drop(m, find(m, m->oldest->key));
  free(m->buckets);
  free(m);
}
