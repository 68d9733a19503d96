#include "proxy/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/util/stream_write.h"
#include "tls/log.h"

void px_upstream_pool_init(px_upstream_pool *p, uv_loop_t *loop, const px_upstream_addr *addr,
                           char *read_slab, size_t slab_size, size_t cap, uint64_t idle_timeout_ms,
                           size_t low_water) {
  memset(p, 0, sizeof(*p));
  p->loop = loop;
  p->addr = addr;
  p->read_slab = read_slab;
  p->slab_size = slab_size;
  p->cap = cap;
  p->idle_timeout_ms = idle_timeout_ms;
  p->low_water = low_water;
}

static void idle_unlink(px_upstream_conn *uc) {
  px_upstream_pool *p = uc->pool;
  if (uc->prev)
    uc->prev->next = uc->next;
  else
    p->idle = uc->next;
  if (uc->next) uc->next->prev = uc->prev;
  uc->next = uc->prev = NULL;
  p->nidle--;
}

void px_upstream_pool_dispose(px_upstream_pool *p) {
  while (p->idle) {
    px_upstream_conn *uc = p->idle;
    idle_unlink(uc);
    px_upstream_close(uc);
  }
}

static void on_closed(uv_handle_t *h) {
  px_upstream_conn *uc = h->data;
  if (--uc->pending_closes == 0) free(uc);
}

void px_upstream_close(px_upstream_conn *uc) {
  if (uc->closing) return;
  uc->closing = 1;
  uc->on_read = NULL;
  uc->on_drain = NULL;
  uc->on_connect = NULL;
  uc->pending_closes = 2;
  px_lazy_timer_set(&uc->timer, 0, NULL);
  uv_close(&uc->h.handle, on_closed);
  uv_close(px_lazy_timer_handle(&uc->timer), on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  px_upstream_conn *uc = h->data;
  buf->base = uc->pool->read_slab;
  buf->len = uc->pool->slab_size;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  px_upstream_conn *uc = s->data;
  if (nread == 0) return;
  if (uc->on_read) uc->on_read(uc, nread, buf->base);
}

int px_upstream_read_start(px_upstream_conn *uc) {
  if (uc->reading || uc->closing) return 0;
  int r = uv_read_start(&uc->h.stream, on_alloc, on_read);
  if (r == 0) uc->reading = 1;
  return r;
}

void px_upstream_read_stop(px_upstream_conn *uc) {
  if (!uc->reading || uc->closing) return;
  uv_read_stop(&uc->h.stream);
  uc->reading = 0;
}

static void on_write(uv_write_t *req, int status) {
  px_upstream_conn *uc = req->handle->data;
  uc->write_pending -= px_stream_write_done(req);
  if (status == 0 && uc->on_drain && uc->write_pending <= uc->pool->low_water) uc->on_drain(uc);
}

int px_upstream_write(px_upstream_conn *uc, const void *data, size_t len) {
  if (uc->closing) return UV_ECANCELED;
  return px_stream_write(&uc->h.stream, data, len, &uc->write_pending, on_write);
}

static void on_idle_timeout(void *data) {
  px_upstream_conn *uc = data;
  idle_unlink(uc);
  px_upstream_close(uc);
}

/* While idle, any read means the backend closed or misbehaved: drop it. */
static void on_idle_read(px_upstream_conn *uc, ssize_t nread, const char *buf) {
  idle_unlink(uc);
  px_upstream_close(uc);
}

void px_upstream_release(px_upstream_conn *uc) {
  px_upstream_pool *p = uc->pool;
  if (uc->closing) return;
  if (p->nidle >= p->cap || uc->write_pending > 0) {
    px_upstream_close(uc);
    return;
  }
  uc->data = NULL;
  uc->on_connect = NULL;
  uc->on_drain = NULL;
  uc->on_read = on_idle_read;
  if (px_upstream_read_start(uc) != 0) {
    px_upstream_close(uc);
    return;
  }
  px_lazy_timer_set(&uc->timer, p->idle_timeout_ms, on_idle_timeout);
  uc->prev = NULL;
  uc->next = p->idle;
  if (p->idle) p->idle->prev = uc;
  p->idle = uc;
  p->nidle++;
}

px_upstream_conn *px_upstream_take_idle(px_upstream_pool *p) {
  px_upstream_conn *uc = p->idle;
  if (uc == NULL) return NULL;
  idle_unlink(uc);
  px_lazy_timer_set(&uc->timer, 0, NULL);
  /* Still reading: the caller sets on_read before the loop runs again, and
   * a stop now and a start right after cost two epoll_ctl calls. */
  uc->on_read = NULL;
  uc->reused = 1;
  return uc;
}

static void on_connect(uv_connect_t *req, int status) {
  px_upstream_conn *uc = req->data;
  if (uc->closing) return;
  if (uc->on_connect) uc->on_connect(uc, status);
}

/* A connect that failed inside uv_tcp_connect is reported from the next
 * timer phase, as libuv reports the others: never from inside the call
 * that started it. */
static void on_local_failure(uv_timer_t *t) {
  px_upstream_conn *uc = t->data;
  if (uc->closing || uc->on_connect == NULL) return;
  uc->on_connect(uc, uc->local_error);
}

px_upstream_conn *px_upstream_connect(px_upstream_pool *p, px_upstream_connect_cb cb, void *data) {
  px_upstream_conn *uc = calloc(1, sizeof(*uc));
  if (uc == NULL) return NULL;
  uc->pool = p;
  uc->data = data;
  uc->on_connect = cb;
  uc->connect_req.data = uc;
  px_lazy_timer_init(p->loop, &uc->timer, uc);
  int r;
  if (p->addr->is_unix) {
    uv_pipe_init(p->loop, &uc->h.pipe, 0);
    uc->h.handle.data = uc;
    const struct sockaddr_un *sun = (const struct sockaddr_un *)&p->addr->ss;
    /* uv_pipe_connect reports errors through the callback, never here. */
    uv_pipe_connect(&uc->connect_req, &uc->h.pipe, sun->sun_path, on_connect);
    r = 0;
  } else {
    uv_tcp_init(p->loop, &uc->h.tcp);
    uc->h.handle.data = uc;
    uv_tcp_nodelay(&uc->h.tcp, 1);
    r = uv_tcp_connect(&uc->connect_req, &uc->h.tcp, (const struct sockaddr *)&p->addr->ss,
                       on_connect);
  }
  if (r != 0) {
    /* Out of descriptors, memory or local ports: each such failure is a
     * 502, so the operator must see it, but a burst must not flood the
     * log: at warn, at most once a second per worker. */
    static __thread uint64_t last_warned;
    uint64_t now = uv_now(p->loop);
    if (last_warned == 0 || now - last_warned >= 1000) {
      last_warned = now;
      px_log(PX_LOG_WARN,
             "upstream %s: cannot open a connection: %s (%s); requests to it get 502 "
             "(raise the descriptor limit or lower limits.max_connections; repeats at most once a "
             "second)",
             p->addr->text, uv_strerror(r), uv_err_name(r));
    }
    /* The lazy timer's uv handle carries the report: a deadline the user
     * sets meanwhile is only recorded, since this zero-delay start comes
     * first, and the connection is closed once the user hears of it. */
    uc->local_error = r;
    uv_timer_start(&uc->timer.timer, on_local_failure, 0, 0);
  }
  return uc;
}
