/*
 * For unit tests of servers on a libuv loop: runs a blocking client
 * function on a second thread while the test's thread runs the loop, and
 * returns when the client is done. Header-only: each test is its own
 * executable.
 */
#ifndef PX_TEST_RUN_BESIDE_LOOP_H
#define PX_TEST_RUN_BESIDE_LOOP_H

#include <uv.h>

typedef struct px_test_beside {
  uv_async_t done;
  int finished;
  void (*fn)(void *arg);
  void *arg;
} px_test_beside;

static void px_test_beside_thread(void *arg) {
  px_test_beside *b = arg;
  b->fn(b->arg);
  uv_async_send(&b->done);
}

static void px_test_beside_done(uv_async_t *a) { ((px_test_beside *)a->data)->finished = 1; }

/** Runs `fn(arg)` on a thread while `loop` runs; returns after both end. */
static void px_test_run_beside_loop(uv_loop_t *loop, void (*fn)(void *arg), void *arg) {
  px_test_beside b = {.fn = fn, .arg = arg};
  uv_async_init(loop, &b.done, px_test_beside_done);
  b.done.data = &b;
  uv_thread_t t;
  if (uv_thread_create(&t, px_test_beside_thread, &b) != 0) abort();
  while (!b.finished)
    uv_run(loop, UV_RUN_ONCE);
  uv_thread_join(&t);
  uv_close((uv_handle_t *)&b.done, NULL);
  uv_run(loop, UV_RUN_NOWAIT); /* the close callback, before `b` goes */
}

#endif
