#include "proxy/util/lazy_timer.h"

static void on_uv_timer(uv_timer_t *h) {
  px_lazy_timer *t = (px_lazy_timer *)h; /* timer is the first member */
  if (t->due == 0) return;
  uint64_t now = uv_now(h->loop);
  if (now < t->due) { /* fired for an older, earlier deadline */
    uv_timer_start(h, on_uv_timer, t->due - now, 0);
    return;
  }
  t->due = 0;
  t->fire(h->data);
}

void px_lazy_timer_init(uv_loop_t *loop, px_lazy_timer *t, void *data) {
  uv_timer_init(loop, &t->timer);
  t->timer.data = data;
  t->due = 0;
  t->fire = NULL;
}

void px_lazy_timer_set(px_lazy_timer *t, uint64_t ms, px_lazy_timer_cb fire) {
  if (ms == 0) {
    t->due = 0; /* a running uv timer fires once more and does nothing */
    return;
  }
  uint64_t now = uv_now(t->timer.loop);
  uint64_t due = now + ms;
  t->fire = fire;
  if (uv_is_active((uv_handle_t *)&t->timer) && now + uv_timer_get_due_in(&t->timer) <= due) {
    t->due = due;
    return;
  }
  t->due = due;
  uv_timer_start(&t->timer, on_uv_timer, ms, 0);
}
