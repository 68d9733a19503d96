/*
 * The random source the lifecycle's pure functions draw from: a function
 * pointer and its argument, so unit tests inject a fixed or seeded sequence
 * and the manager passes px_life_rand_system().
 *
 * Randomness here only spreads load (jitter, picks inside a window); it is
 * never used for secrets.
 */
#ifndef PX_ACME_LIFE_RAND_H
#define PX_ACME_LIFE_RAND_H

#include <stdint.h>

/** Returns 64 uniformly random bits. */
typedef uint64_t (*px_life_rand_fn)(void *arg);

/** A random source: `fn(arg)` is called once per draw. */
typedef struct px_life_rand {
  px_life_rand_fn fn;
  void *arg;
} px_life_rand;

/** The system's source (getrandom(2), falling back to a clock-seeded
 *  generator if that fails). */
px_life_rand px_life_rand_system(void);

/**
 * A uniformly random integer in [lo, hi] (both inclusive; lo when hi <= lo).
 * Uses rejection sampling, so there is no modulo bias.
 */
int64_t px_life_rand_range(const px_life_rand *r, int64_t lo, int64_t hi);

#endif
