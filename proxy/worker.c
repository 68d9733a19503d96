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
int px_listen_socket_open(const px_listen_addr *a) {
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
  if (w->nconns >= w->cur->conn_limit) {
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

/* ---- generations ---------------------------------------------------------- */

px_wgen *px_wgen_new(px_worker *w, px_gen *gen) {
  const px_config *cfg = gen->cfg;
  px_wgen *wg = calloc(1, sizeof(*wg));
  if (wg) wg->w = w;
  if (wg == NULL) return NULL;
  wg->cfg = cfg;
  int n = w->env.nworkers > 0 ? w->env.nworkers : 1;
  wg->conn_limit = (cfg->limits.max_connections + (size_t)n - 1) / (size_t)n;
  wg->rr = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(size_t));
  wg->pool_base = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(size_t));
  for (size_t s = 0; s < cfg->nsites; s++) {
    if (wg->pool_base) wg->pool_base[s] = wg->npools;
    wg->npools += cfg->sites[s].nupstreams;
  }
  wg->pools = calloc(wg->npools ? wg->npools : 1, sizeof(px_upstream_pool));
  if (wg->rr == NULL || wg->pool_base == NULL || wg->pools == NULL) {
    px_wgen_free(wg);
    return NULL;
  }
  for (size_t s = 0; s < cfg->nsites; s++) {
    for (size_t u = 0; u < cfg->sites[s].nupstreams; u++) {
      px_upstream_pool_init(px_wgen_pool(wg, s, u), &w->loop, &cfg->sites[s].upstreams[u],
                            w->read_slab, PX_READ_SLAB, cfg->limits.upstream_pool_size,
                            cfg->limits.upstream_idle_timeout_ms, cfg->limits.buffer_size / 2);
    }
  }
  wg->gen = px_gen_ref(gen);
  return wg;
}

void px_wgen_free(px_wgen *wg) {
  if (wg == NULL) return;
  if (wg->gen) px_gen_unref(wg->gen);
  free(wg->pools);
  free(wg->pool_base);
  free(wg->rr);
  free(wg);
}

/* Closes the idle upstream connections of `wg` (their close callbacks
 * touch only themselves, so the pools may be freed right after). */
static void wgen_close_pools(px_wgen *wg) {
  for (size_t i = 0; i < wg->npools; i++)
    px_upstream_pool_dispose(&wg->pools[i]);
}

/* One holder lets go; the last frees it. Exchanges and their upstream
 * connections end before their client connection's close callback, so no
 * pool is in use by then. */
static void wgen_release(px_wgen *wg) {
  if (--wg->holders > 0) return;
  wgen_close_pools(wg);
  px_wgen_free(wg);
}

px_wgen *px_worker_hold(px_worker *w) {
  w->cur->holders++;
  return w->cur;
}

static void maybe_finish(px_worker *w) {
  if (!w->draining || w->nconns > 0) return;
  wgen_close_pools(w->cur);
  if (!uv_is_closing((uv_handle_t *)&w->drain_timer)) {
    uv_close((uv_handle_t *)&w->drain_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->rate_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->stop_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->resolved_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->update_async, on_handle_closed);
    uv_close((uv_handle_t *)&w->flush_check, on_handle_closed);
  }
}

void px_worker_conn_closed(px_worker *w, px_wgen *wg) {
  w->nconns--;
  wgen_release(wg);
  if (w->draining) {
    maybe_finish(w);
    return;
  }
  for (size_t i = 0; i < w->nlisteners && w->nconns < w->cur->conn_limit; i++) {
    px_listener *l = w->listeners[i];
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

/* ---- listeners ------------------------------------------------------------ */

static void on_listener_closed(uv_handle_t *h) { free(h->data); }

/* A listener on `fd` (bound and listening), or NULL with the descriptor
 * closed. The worker's loop thread. */
static px_listener *listener_open(px_worker *w, const px_listen_addr *a, int is_https, int fd) {
  px_listener *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    close(fd);
    return NULL;
  }
  l->w = w;
  l->is_https = is_https;
  l->addr.ss = a->ss;
  l->addr.sslen = a->sslen;
  l->proxy_protocol = a->proxy_protocol;
  l->start_session = w->env.hooks->start_session;
  uv_tcp_init(&w->loop, &l->tcp);
  l->tcp.data = l;
  int r = uv_tcp_open(&l->tcp, fd);
  if (r != 0) close(fd); /* not adopted by the handle */
  if (r == 0) r = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
  if (r != 0) {
    px_log(PX_LOG_ERROR, "worker %d: cannot listen on port %d: %s", w->id, px_listen_addr_port(a),
           uv_strerror(r));
    uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    return NULL;
  }
  return l;
}

/* Stops accepting on `l`; the connections it accepted go on. Connections
 * still in the kernel's queue of this socket are reset by the close: the
 * queue cannot be handed to another socket. */
static void listener_close(px_listener *l) { uv_close((uv_handle_t *)&l->tcp, on_listener_closed); }

static int add_listener(px_worker *w, px_listener *l) {
  px_listener **n = realloc(w->listeners, (w->nlisteners + 1) * sizeof(*n));
  if (n == NULL) return -1;
  w->listeners = n;
  w->listeners[w->nlisteners++] = l;
  return 0;
}

static void on_stop(uv_async_t *a) {
  px_worker *w = a->data;
  if (w->draining) return;
  w->draining = 1;
  for (size_t i = 0; i < w->nlisteners; i++)
    listener_close(w->listeners[i]);
  w->nlisteners = 0;
  /* Idle connections go now; busy ones finish their request first. */
  w->env.hooks->drain(w);
  uv_timer_start(&w->drain_timer, on_drain_timeout, w->cur->cfg->limits.drain_timeout_ms, 0);
  maybe_finish(w);
}

static int bind_listeners(px_worker *w) {
  const px_config *cfg = w->cur->cfg;
  for (size_t i = 0; i < cfg->nhttps + cfg->nhttp; i++) {
    int https = i < cfg->nhttps;
    const px_listen_addr *a = https ? &cfg->https[i] : &cfg->http[i - cfg->nhttps];
    int fd = px_listen_socket_open(a);
    if (fd < 0) {
      px_log(PX_LOG_ERROR, "cannot listen on %s: %s", a->text, uv_strerror(fd));
      return -1;
    }
    px_listener *l = listener_open(w, a, https, fd);
    if (l == NULL) return -1;
    if (add_listener(w, l) != 0) {
      listener_close(l);
      return -1;
    }
  }
  return 0;
}

/* ---- reload ------------------------------------------------------------------ */

typedef struct px_update_msg {
  struct px_update_msg *next;
  px_wgen *wg;
  size_t nwant;
  px_listen_want want[];
} px_update_msg;

static void update_free(px_update_msg *u) {
  for (size_t i = 0; i < u->nwant; i++)
    if (u->want[i].fd >= 0) close(u->want[i].fd);
  px_wgen_free(u->wg);
  free(u);
}

int px_worker_update(px_worker *w, px_wgen *wg, const px_listen_want *want, size_t nwant) {
  px_update_msg *u = malloc(sizeof(*u) + nwant * sizeof(px_listen_want));
  if (u == NULL) return -1;
  u->next = NULL;
  u->wg = wg;
  u->nwant = nwant;
  if (nwant) memcpy(u->want, want, nwant * sizeof(px_listen_want));
  uv_mutex_lock(&w->update_lock);
  px_update_msg **tail = &w->updates;
  while (*tail)
    tail = &(*tail)->next;
  *tail = u;
  uv_mutex_unlock(&w->update_lock);
  uv_async_send(&w->update_async);
  return 0;
}

/* The listeners `u` wants: kept, closed, or opened from its descriptors. */
static void apply_listeners(px_worker *w, px_update_msg *u) {
  size_t kept = 0;
  for (size_t i = 0; i < w->nlisteners; i++) {
    px_listener *l = w->listeners[i];
    int wanted = 0;
    for (size_t k = 0; k < u->nwant && !wanted; k++) {
      wanted = u->want[k].fd < 0 && u->want[k].is_https == l->is_https &&
               px_listen_addr_equal(&u->want[k].addr, &l->addr);
      /* A kept socket takes the new file's PROXY protocol setting. */
      if (wanted) l->proxy_protocol = u->want[k].addr.proxy_protocol;
    }
    if (wanted)
      w->listeners[kept++] = l;
    else
      listener_close(l);
  }
  w->nlisteners = kept;
  for (size_t k = 0; k < u->nwant; k++) {
    px_listen_want *x = &u->want[k];
    if (x->fd < 0) continue;
    px_listener *l = listener_open(w, &x->addr, x->is_https, x->fd);
    x->fd = -1; /* the listener's now, or closed */
    if (l && add_listener(w, l) != 0) listener_close(l);
  }
}

/* The worker's loop: a reload handed over generations; the last one is
 * current from now on. */
static void on_update(uv_async_t *a) {
  px_worker *w = a->data;
  uv_mutex_lock(&w->update_lock);
  px_update_msg *list = w->updates;
  w->updates = NULL;
  uv_mutex_unlock(&w->update_lock);
  while (list) {
    px_update_msg *u = list;
    list = u->next;
    if (!w->draining) {
      px_wgen *old = w->cur;
      w->cur = u->wg;
      w->cur->holders = 1; /* the worker's own hold while it is current */
      u->wg = NULL;
      wgen_release(old);
      apply_listeners(w, u);
    }
    update_free(u);
  }
}

static void close_walk(uv_handle_t *h, void *arg) {
  if (!uv_is_closing(h)) uv_close(h, on_handle_closed);
}

static void worker_main(void *arg) {
  px_worker *w = arg;
  w->start_error = bind_listeners(w) != 0;
  uv_sem_post(&w->started);
  if (w->start_error) { /* run only to close */
    for (size_t i = 0; i < w->nlisteners; i++)
      listener_close(w->listeners[i]);
    w->nlisteners = 0;
    uv_walk(&w->loop, close_walk, NULL);
  }
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
  uv_async_init(&w->loop, &w->update_async, on_update);
  w->update_async.data = w;
  uv_mutex_init(&w->update_lock);
  uv_check_init(&w->loop, &w->flush_check);
  w->flush_check.data = w;
  uv_check_start(&w->flush_check, on_flush_check);
  uv_unref((uv_handle_t *)&w->flush_check); /* it never keeps the loop alive */
  uv_mutex_init(&w->resolved_lock);
  uv_sem_init(&w->started, 0);
  w->cur = px_wgen_new(w, env->gen);
  if (w->cur == NULL) {
    px_worker_join_free(w);
    return NULL;
  }
  w->cur->holders = 1;
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
  uv_mutex_destroy(&w->update_lock);
  while (w->resolved) {
    px_resolved_name *r = w->resolved;
    w->resolved = r->next;
    free(r);
  }
  while (w->updates) { /* handed over after the worker began to drain */
    px_update_msg *u = w->updates;
    w->updates = u->next;
    update_free(u);
  }
  /* Every connection closed, so only the worker holds its generation. */
  px_wgen_free(w->cur);
  free(w->listeners);
  free(w->dirty);
  free(w->deferred);
  free(w);
}
