#include "proxy/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/http.h"
#include "proxy/util/obj_cache.h"
#include "tls/log.h"

/* Opens a listening socket with SO_REUSEPORT, so every worker has its own
 * and the kernel spreads connections (libuv 1.44 lacks UV_TCP_REUSEPORT,
 * docs/dependencies.md). Returns the fd or a negative errno. */
static int open_listen_socket(const px_listen_addr *a) {
  int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) goto fail;
  if (a->ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (bind(fd, (const struct sockaddr *)&a->ss, a->sslen) != 0) goto fail;
  if (listen(fd, 511) != 0) goto fail;
  return fd;
fail:;
  int err = -errno;
  close(fd);
  return err;
}

static void on_connection(uv_stream_t *s, int status) {
  px_listener *l = s->data;
  px_worker *w = l->w;
  if (status != 0 || w->draining) return;
  /* At the limit we leave the connection in the kernel's queue: libuv stops
   * polling this listener until uv_accept is called again. */
  if (w->nconns >= w->env.conn_limit) {
    if (!l->paused)
      px_log(PX_LOG_WARN, "worker %d: at limits.max_connections, pausing accepts", w->id);
    l->paused = 1;
    return;
  }
  w->env.hooks->accept(l);
}

static void on_handle_closed(uv_handle_t *h) { (void)h; }

typedef struct px_resolved_name {
  struct px_resolved_name *next;
  char name[];
} px_resolved_name;

void px_worker_name_resolved(px_worker *w, const char *name) {
  size_t n = strlen(name);
  px_resolved_name *r = malloc(sizeof(*r) + n + 1);
  if (r == NULL) return;
  memcpy(r->name, name, n + 1);
  uv_mutex_lock(&w->resolved_lock);
  r->next = w->resolved;
  w->resolved = r;
  uv_mutex_unlock(&w->resolved_lock);
  uv_async_send(&w->resolved_async);
}

static void on_resolved(uv_async_t *a) {
  px_worker *w = a->data;
  uv_mutex_lock(&w->resolved_lock);
  px_resolved_name *list = w->resolved;
  w->resolved = NULL;
  uv_mutex_unlock(&w->resolved_lock);
  while (list) {
    px_resolved_name *r = list;
    list = r->next;
    w->env.hooks->retry_handshakes(w, r->name);
    free(r);
  }
}

static void maybe_finish(px_worker *w) {
  if (!w->draining || w->nconns > 0) return;
  for (size_t i = 0; i < w->npools; i++)
    px_upstream_pool_dispose(&w->pools[i]);
  if (!uv_is_closing((uv_handle_t *)&w->drain_timer)) {
    uv_close((uv_handle_t *)&w->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->rate_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->stop_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->resolved_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->flush_check, on_handle_closed);
  }
}

void px_worker_conn_closed(px_worker *w) {
  w->nconns--;
  if (w->draining) {
    maybe_finish(w);
    return;
  }
  for (size_t i = 0; i < w->nlisteners && w->nconns < w->env.conn_limit; i++) {
    px_listener *l = &w->listeners[i];
    if (l->paused) {
      l->paused = 0;
      w->env.hooks->accept(l);
    }
  }
}

int px_worker_defer(px_worker *w, struct px_exchange *ex, size_t *slot) {
  if (w->ndeferred == w->deferred_cap) {
    size_t cap = w->deferred_cap ? w->deferred_cap * 2 : 64;
    struct px_exchange **n = realloc(w->deferred, cap * sizeof(*n));
    if (n == NULL) return -1;
    w->deferred = n;
    w->deferred_cap = cap;
  }
  w->deferred[w->ndeferred++] = ex;
  *slot = w->ndeferred;
  return 0;
}

/* Runs after each poll phase; connections closed during it are still
 * allocated (they are freed in the closing phase that follows). Request
 * bodies go first: their writes are to upstreams, independent of these. */
static void on_flush_check(uv_check_t *chk) {
  px_worker *w = chk->data;
  /* Flushing HTTP/2 output may start queued streams, whose exchanges defer
   * their first upstream write to here: go round until both lists are
   * empty, or those requests would wait for the next event. Each round
   * only handles work the previous one produced, which is bounded. */
  do {
    w->env.hooks->flush_deferred(w);
    w->env.hooks->flush_dirty(w);
  } while (w->ndeferred > 0);
}

static void on_rate_sweep(uv_timer_t *t) {
  px_worker *w = t->data;
  w->env.hooks->check_rates(w, uv_now(&w->loop));
}

static void on_drain_timeout(uv_timer_t *t) {
  px_worker *w = t->data;
  if (w->nconns)
    px_log(PX_LOG_WARN, "worker %d: drain timeout, closing %zu connections", w->id, w->nconns);
  w->env.hooks->close_all(w);
}

static void on_stop(uv_async_t *a) {
  px_worker *w = a->data;
  if (w->draining) return;
  w->draining = 1;
  for (size_t i = 0; i < w->nlisteners; i++)
    uv_close((uv_handle_t *)&w->listeners[i].tcp, on_handle_closed);
  /* Idle connections go now; busy ones finish their request first. */
  w->env.hooks->drain(w);
  uv_timer_start(&w->drain_timer, on_drain_timeout, w->cfg->limits.drain_timeout_ms, 0);
  maybe_finish(w);
}

static int bind_listeners(px_worker *w) {
  const px_config *cfg = w->cfg;
  w->nlisteners = cfg->nhttps + cfg->nhttp;
  w->listeners = calloc(w->nlisteners ? w->nlisteners : 1, sizeof(px_listener));
  if (w->listeners == NULL) return -1;
  for (size_t i = 0; i < w->nlisteners; i++) {
    int https = i < cfg->nhttps;
    const px_listen_addr *a = https ? &cfg->https[i] : &cfg->http[i - cfg->nhttps];
    px_listener *l = &w->listeners[i];
    l->w = w;
    l->is_https = https;
    l->proxy_protocol = a->proxy_protocol;
    l->start_session = w->env.hooks->start_session;
    uv_tcp_init(&w->loop, &l->tcp);
    l->tcp.data = l;
    int fd = open_listen_socket(a);
    int r = fd < 0 ? fd : uv_tcp_open(&l->tcp, fd);
    if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    if (r != 0) {
      px_log(PX_LOG_ERROR, "cannot listen on %s: %s", a->text, uv_strerror(r));
      return -1;
    }
  }
  return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void worker_main(void *arg) {
  px_worker *w = arg;
  w->start_error = bind_listeners(w) != 0;
  uv_sem_post(&w->started);
  if (w->start_error) uv_walk(&w->loop, close_walk, NULL); /* run only to close */
  uv_run(&w->loop, UV_RUN_DEFAULT);
  px_http_head_cache_drain();
  px_obj_cache_drain();
  px_tls_thread_cleanup();
}

px_worker *px_worker_new(const px_worker_env *env, int id) {
  px_worker *w = calloc(1, sizeof(*w));
  if (w == NULL) return NULL;
  w->id = id;
  w->env = *env;
  w->cfg = env->cfg;
  uv_loop_init(&w->loop);
  uv_async_init(&w->loop, &w->stop_async, on_stop);
  w->stop_async.data = w;
  uv_timer_init(&w->loop, &w->drain_timer);
  w->drain_timer.data = w;
  uv_timer_init(&w->loop, &w->rate_timer);
  w->rate_timer.data = w;
  uv_timer_start(&w->rate_timer, on_rate_sweep, 1000, 1000);
  uv_unref((uv_handle_t *)&w->rate_timer);
  uv_async_init(&w->loop, &w->resolved_async, on_resolved);
  w->resolved_async.data = w;
  uv_check_init(&w->loop, &w->flush_check);
  w->flush_check.data = w;
  uv_check_start(&w->flush_check, on_flush_check);
  uv_unref((uv_handle_t *)&w->flush_check); /* it never keeps the loop alive */
  uv_mutex_init(&w->resolved_lock);
  uv_sem_init(&w->started, 0);
  const px_config *cfg = env->cfg;
  w->rr = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(size_t));
  w->pool_base = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(size_t));
  for (size_t s = 0; s < cfg->nsites; s++) {
    w->pool_base[s] = w->npools;
    w->npools += cfg->sites[s].nupstreams;
  }
  w->pools = calloc(w->npools ? w->npools : 1, sizeof(px_upstream_pool));
  if (w->rr == NULL || w->pool_base == NULL || w->pools == NULL) {
    px_worker_join_free(w);
    return NULL;
  }
  for (size_t s = 0; s < cfg->nsites; s++) {
    for (size_t u = 0; u < cfg->sites[s].nupstreams; u++) {
      px_upstream_pool_init(&w->pools[w->pool_base[s] + u], &w->loop, &cfg->sites[s].upstreams[u],
                            w->read_slab, PX_READ_SLAB, cfg->limits.upstream_pool_size,
                            cfg->limits.upstream_idle_timeout_ms, cfg->limits.buffer_size / 2);
    }
  }
  return w;
}

int px_worker_start(px_worker *w) {
  if (uv_thread_create(&w->thread, worker_main, w) != 0) return -1;
  uv_sem_wait(&w->started);
  return w->start_error ? -1 : 0;
}

void px_worker_stop(px_worker *w) { uv_async_send(&w->stop_async); }

void px_worker_join(px_worker *w) {
  if (w->thread) uv_thread_join(&w->thread);
  w->thread = 0;
}

void px_worker_join_free(px_worker *w) {
  if (w == NULL) return;
  px_worker_join(w);
  uv_loop_close(&w->loop);
  uv_sem_destroy(&w->started);
  uv_mutex_destroy(&w->resolved_lock);
  while (w->resolved) {
    px_resolved_name *r = w->resolved;
    w->resolved = r->next;
    free(r);
  }
  free(w->listeners);
  free(w->dirty);
  free(w->deferred);
  free(w->pools);
  free(w->pool_base);
  free(w->rr);
  free(w);
}
