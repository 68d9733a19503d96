/*
 * The pieces of the renewal scheduler that need no clock or I/O:
 *
 *  - px_schedq: a binary min-heap of (key, item), where each item records
 *    its own position so it can be updated or removed in O(log n). With the
 *    key a job's next_run, one timer set to the minimum touches only due
 *    jobs; with the key a job's not_after, it orders a backlog
 *    soonest-expiry first.
 *  - px_rate: the spread: at most `per_minute` starts in each minute of the
 *    clock (acme.renew_rate, default 10), each at a random second of its
 *    minute other than :00, so a fleet never renews on the minute.
 *
 * Intended use (scheduler.c): jobs wait in a heap keyed by next_run. On the
 * timer, due jobs move to a second heap keyed by not_after (the backlog).
 * Then, while px_rate_try grants a start in the current minute, the
 * soonest-expiring job leaves the backlog and starts at that time. The
 * timer is then set to the earlier of the waiting heap's minimum and, when
 * a backlog remains, px_rate_next_minute.
 *
 * Times are int64_t seconds since the Unix epoch (UTC); "minutes" are the
 * clock's, [60k, 60k + 60).
 *
 * Error convention: 0 on success, -1 on refusal (full, out of memory, or
 * bad argument).
 */
#ifndef PX_ACME_LIFE_SCHEDQ_H
#define PX_ACME_LIFE_SCHEDQ_H

#include <stddef.h>
#include <stdint.h>

#include "acme/life/rand.h"

/** The index an item holds while it is in no queue. */
#define PX_SCHEDQ_NONE ((size_t)-1)
/** acme.renew_rate's default: renewals started per minute. */
#define PX_RATE_DEFAULT 10

/** One heap entry. */
typedef struct px_schedq_entry {
  int64_t key;  /**< the order: smallest first */
  uint64_t seq; /**< insertion order, breaking ties so equal keys are FIFO */
  void *item;   /**< the caller's item */
  size_t *slot; /**< where the item keeps its index (PX_SCHEDQ_NONE when out) */
} px_schedq_entry;

/** The heap. Fields are private. */
typedef struct px_schedq {
  px_schedq_entry *_heap;
  size_t _len, _cap, _max;
  uint64_t _seq;
} px_schedq;

/** An empty queue holding at most `max` entries (a bound, not a
 *  reservation; the array grows as needed). */
void px_schedq_init(px_schedq *q, size_t max);

/** Frees the array; items' slots are set to PX_SCHEDQ_NONE. */
void px_schedq_dispose(px_schedq *q);

/** Entries held. */
size_t px_schedq_len(const px_schedq *q);

/** Adds `item` with `key`; `*slot` then always holds its index. -1 when the
 *  queue is at its bound, `*slot` is not PX_SCHEDQ_NONE (already queued),
 *  or memory runs out. */
int px_schedq_push(px_schedq *q, int64_t key, void *item, size_t *slot);

/** Changes the key of the entry at `index` (an item's *slot). */
int px_schedq_update(px_schedq *q, size_t index, int64_t key);

/** Removes the entry at `index` and returns its item (NULL when out of
 *  range); its slot becomes PX_SCHEDQ_NONE. */
void *px_schedq_remove(px_schedq *q, size_t index);

/** The entry with the smallest key, or NULL when empty. */
const px_schedq_entry *px_schedq_peek(const px_schedq *q);

/** Removes and returns the smallest entry's item when its key is <= `limit`
 *  (its key in *key when key is not NULL); NULL otherwise. */
void *px_schedq_pop_until(px_schedq *q, int64_t limit, int64_t *key);

/** 1 when every parent's key is <= its children's and every item's slot
 *  holds its index (for tests). */
int px_schedq_valid(const px_schedq *q);

/** The per-minute start budget. Fields are private. */
typedef struct px_rate {
  unsigned _per_minute;
  int64_t _minute; /**< the minute (time / 60) the count is for */
  unsigned _used;  /**< starts granted in it */
} px_rate;

/** A budget of `per_minute` starts per clock minute (0 means
 *  PX_RATE_DEFAULT). */
void px_rate_init(px_rate *r, unsigned per_minute);

/**
 * Grants one start in the minute of `now` when its budget is not spent:
 * `*start` is a uniformly random second of that minute, never :00, and not
 * before `now` (now itself when now is at :59). -1 when the minute is full.
 */
int px_rate_try(px_rate *r, int64_t now, const px_life_rand *rnd, int64_t *start);

/**
 * Grants one start in the earliest minute from `now` with budget left,
 * reserving it (for planning a known backlog at once). Returns the start.
 */
int64_t px_rate_take(px_rate *r, int64_t now, const px_life_rand *rnd);

/** The first second of the minute after `now`'s: when a full minute's
 *  budget is renewed. */
int64_t px_rate_next_minute(int64_t now);

#endif
