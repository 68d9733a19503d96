/*
 * Uniform draws from an injected random source.
 */
#include "acme/life/rand.h"

#include <sys/random.h>
#include <time.h>

/* splitmix64: only used when getrandom(2) fails, which it should not. */
static uint64_t fallback_next(void) {
  static uint64_t state;
  uint64_t z;
  if (state == 0) state = (uint64_t)time(NULL) ^ 0x9e3779b97f4a7c15u;
  z = (state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t system_next(void *arg) {
  uint64_t v;
  (void)arg;
  if (getrandom(&v, sizeof(v), 0) == (ssize_t)sizeof(v)) return v;
  return fallback_next();
}

px_life_rand px_life_rand_system(void) {
  px_life_rand r = {system_next, NULL};
  return r;
}

int64_t px_life_rand_range(const px_life_rand *r, int64_t lo, int64_t hi) {
  uint64_t span, limit, v;
  if (hi <= lo) return lo;
  span = (uint64_t)hi - (uint64_t)lo; /* hi - lo, without signed overflow */
  if (span == UINT64_MAX) return (int64_t)((uint64_t)lo + r->fn(r->arg));
  span += 1;
  /* Reject the top partial block so every value is equally likely. */
  limit = UINT64_MAX - (UINT64_MAX % span);
  do {
    v = r->fn(r->arg);
  } while (v >= limit);
  return (int64_t)((uint64_t)lo + v % span);
}
