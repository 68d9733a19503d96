/*
 * A timeout that is re-armed on every read or request but rarely fires.
 *
 * uv_timer_start/stop cost a heap operation each, and connections re-arm
 * their timeout several times per request. A lazy timer only records the new
 * deadline when the running uv timer would fire no later than it; when the
 * uv timer fires early it re-arms itself for the rest. In steady state a
 * keep-alive connection then touches the timer heap about once per timeout
 * period instead of several times per request.
 */
#ifndef PX_PROXY_LAZY_TIMER_H
#define PX_PROXY_LAZY_TIMER_H

#include <stdint.h>
#include <uv.h>

typedef void (*px_lazy_timer_cb)(void *data);

typedef struct px_lazy_timer {
  uv_timer_t timer; /**< timer.data is the owner, passed to the callback */
  uint64_t due;     /**< loop time (ms) of the real deadline; 0 = disarmed */
  px_lazy_timer_cb fire;
} px_lazy_timer;

/** Initialises the timer on `loop`; `data` is passed to callbacks. */
void px_lazy_timer_init(uv_loop_t *loop, px_lazy_timer *t, void *data);

/** Fires `fire(data)` `ms` from now, replacing any earlier setting; 0 disarms. */
void px_lazy_timer_set(px_lazy_timer *t, uint64_t ms, px_lazy_timer_cb fire);

/** The handle to pass to uv_close. */
static inline uv_handle_t *px_lazy_timer_handle(px_lazy_timer *t) {
  return (uv_handle_t *)&t->timer;
}

#endif
