/*
 * A min-heap with positions kept in the items, and the per-minute budget.
 */
#include "acme/life/schedq.h"

#include <stdlib.h>

/* Floor division: the clock minute of a time, also before 1970. */
static int64_t minute_of(int64_t t) { return t >= 0 ? t / 60 : -((-t + 59) / 60); }

static int before(const px_schedq_entry *a, const px_schedq_entry *b) {
  return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void place(px_schedq *q, size_t i, px_schedq_entry e) {
  q->_heap[i] = e;
  *e.slot = i;
}

static void sift_up(px_schedq *q, size_t i) {
  px_schedq_entry e = q->_heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!before(&e, &q->_heap[parent])) break;
    place(q, i, q->_heap[parent]);
    i = parent;
  }
  place(q, i, e);
}

static void sift_down(px_schedq *q, size_t i) {
  px_schedq_entry e = q->_heap[i];
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= q->_len) break;
    if (child + 1 < q->_len && before(&q->_heap[child + 1], &q->_heap[child])) child++;
    if (!before(&q->_heap[child], &e)) break;
    place(q, i, q->_heap[child]);
    i = child;
  }
  place(q, i, e);
}

void px_schedq_init(px_schedq *q, size_t max) {
  q->_heap = NULL;
  q->_len = q->_cap = 0;
  q->_max = max;
  q->_seq = 0;
}

void px_schedq_dispose(px_schedq *q) {
  for (size_t i = 0; i < q->_len; i++)
    *q->_heap[i].slot = PX_SCHEDQ_NONE;
  free(q->_heap);
  px_schedq_init(q, q->_max);
}

size_t px_schedq_len(const px_schedq *q) { return q->_len; }

int px_schedq_push(px_schedq *q, int64_t key, void *item, size_t *slot) {
  px_schedq_entry e;
  if (slot == NULL || *slot != PX_SCHEDQ_NONE || q->_len >= q->_max) return -1;
  if (q->_len == q->_cap) {
    size_t cap = q->_cap ? q->_cap * 2 : 16;
    px_schedq_entry *grown;
    if (cap > q->_max) cap = q->_max;
    grown = realloc(q->_heap, cap * sizeof(*grown));
    if (grown == NULL) return -1;
    q->_heap = grown;
    q->_cap = cap;
  }
  e.key = key;
  e.seq = q->_seq++;
  e.item = item;
  e.slot = slot;
  q->_heap[q->_len++] = e;
  sift_up(q, q->_len - 1);
  return 0;
}

int px_schedq_update(px_schedq *q, size_t index, int64_t key) {
  size_t *slot;
  if (index >= q->_len) return -1;
  slot = q->_heap[index].slot;
  q->_heap[index].key = key;
  sift_up(q, index);
  sift_down(q, *slot);
  return 0;
}

void *px_schedq_remove(px_schedq *q, size_t index) {
  px_schedq_entry gone;
  if (index >= q->_len) return NULL;
  gone = q->_heap[index];
  *gone.slot = PX_SCHEDQ_NONE;
  if (--q->_len > index) {
    /* The last entry fills the hole, then moves whichever way it must. */
    place(q, index, q->_heap[q->_len]);
    sift_up(q, index);
    sift_down(q, index);
  }
  return gone.item;
}

const px_schedq_entry *px_schedq_peek(const px_schedq *q) {
  return q->_len > 0 ? &q->_heap[0] : NULL;
}

void *px_schedq_pop_until(px_schedq *q, int64_t limit, int64_t *key) {
  if (q->_len == 0 || q->_heap[0].key > limit) return NULL;
  if (key != NULL) *key = q->_heap[0].key;
  return px_schedq_remove(q, 0);
}

int px_schedq_valid(const px_schedq *q) {
  for (size_t i = 0; i < q->_len; i++) {
    if (*q->_heap[i].slot != i) return 0;
    if (i > 0 && before(&q->_heap[i], &q->_heap[(i - 1) / 2])) return 0;
  }
  return 1;
}

void px_rate_init(px_rate *r, unsigned per_minute) {
  r->_per_minute = per_minute ? per_minute : PX_RATE_DEFAULT;
  r->_minute = INT64_MIN;
  r->_used = 0;
}

/* A random second of `minute`, never :00, not before `now`. */
static int64_t second_in(int64_t minute, int64_t now, const px_life_rand *rnd) {
  int64_t lo = minute * 60 + 1, hi = minute * 60 + 59;
  if (now > lo) lo = now;
  return px_life_rand_range(rnd, lo, hi);
}

int px_rate_try(px_rate *r, int64_t now, const px_life_rand *rnd, int64_t *start) {
  int64_t m = minute_of(now);
  if (m > r->_minute) {
    r->_minute = m;
    r->_used = 0;
  }
  if (m < r->_minute || r->_used >= r->_per_minute) return -1;
  r->_used++;
  *start = second_in(m, now, rnd);
  return 0;
}

int64_t px_rate_take(px_rate *r, int64_t now, const px_life_rand *rnd) {
  int64_t m = minute_of(now);
  if (m > r->_minute) {
    r->_minute = m;
    r->_used = 0;
  }
  if (r->_used >= r->_per_minute) {
    r->_minute++;
    r->_used = 0;
  }
  r->_used++;
  return second_in(r->_minute, now, rnd);
}

int64_t px_rate_next_minute(int64_t now) { return (minute_of(now) + 1) * 60; }
