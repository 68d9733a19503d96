/*
 * Watching the store for other instances' writes (acme/life/watch.h).
 */
#include "acme/life/watch.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "acme/challenge_store.h"
#include "acme/life/fleet_lock.h"
#include "acme/life/issue.h"
#include "acme/store_internal.h"
#include "acme/store_open.h"
#include "acme/store_redis.h"
#include "tls/log.h"
#include "tls/tls.h"

/* The poll timer's period, and how often each check runs on it. */
#define TICK_MS 1000
#define STAT_EVERY_TICKS 2        /* certificates, directory: every 2 s */
#define REDIS_CHECK_PER_TICK 20   /* certificates, Redis: names re-read per second */
#define REDIS_LIST_EVERY_TICKS 10 /* challenges, Redis: a listing (SCAN) every 10 s */
/* Names whose cert.pem is stat'ed per sweep (the rest wait for the next). */
#define STAT_PER_SWEEP 5000
/* Certificate names heard on the channel, waiting for the manager. */
#define HEARD_MAX 10000
/* Challenge ids already read, so a listing reads only new ones. */
#define SEEN_MAX 10000

/* A certificate name the watcher thread heard of, for the manager. */
typedef struct heard {
  struct heard *next;
  char name[];
} heard;

typedef struct px__watch {
  px_acme_manager *m;
  int is_fs;
  char root[PATH_MAX];
  /* Manager loop: certificates. */
  uv_fs_event_t ev_jobs;
  int ev_jobs_on;
  uv_timer_t tick;
  int tick_on;
  uint64_t ticks;
  size_t cursor;      /* round-robin over the jobs */
  px_namemap *mtimes; /* name -> (none), stamp = cert.pem's fingerprint */
  uv_async_t heard_async;
  int heard_on;
  uv_mutex_t heard_lock; /* guards the list below */
  heard *heard_first;
  size_t nheard;
  /* The watcher thread: challenges (and the Redis channel). It does
   * nothing else, so a challenge another instance saved is in memory
   * within moments, whatever the manager is busy with. */
  uv_thread_t thread;
  int thread_on;
  uv_loop_t wloop;
  uv_async_t wstop;
  uv_fs_event_t ev_chal;
  int ev_chal_on;
  uv_poll_t sub;
  int sub_on;
  uv_timer_t wtick;
  uint64_t wticks;
  px_namemap *chal_seen; /* challenge id -> (none), stamp = read again after (ms) */
  int closed;
} px__watch;

static void on_closed(uv_handle_t *h) { (void)h; }

/* ---- certificates ------------------------------------------------------- */

/* Another instance may have written `name`: serve a newer certificate, and
 * wake a waiter for it. */
static void cert_changed(px_acme_manager *m, const char *name) {
  px_job_entry *e = px_job_table_find(&m->jobs, name);
  if (e == NULL) return; /* not held here: the first handshake reads the cache */
  if (e->running) {
    px__fleet_changed(m, name);
    return;
  }
  px__acme_adopt_cached(m, e, px__acme_now_ms() / 1000);
}

/* cert.pem's mtime, size and inode folded into one number; 0 if absent. */
static int64_t fingerprint(px__watch *w, const char *name) {
  char id[PX_STORE_ID_MAX], path[PATH_MAX + PX_STORE_ID_MAX + 32];
  if (px_store_item_id(PX_STORE_CERTS, name, PX_STORE_CERT_PEM, id, sizeof(id)) != 0) return 0;
  snprintf(path, sizeof(path), "%s/certs/%s/" PX_STORE_CERT_PEM, w->root, id);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  return ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec) ^
         ((int64_t)st.st_size << 40) ^ ((int64_t)st.st_ino << 20);
}

/* NFS: inotify does not see other clients' writes; a stat per name does. */
static void stat_sweep(px__watch *w) {
  px_acme_manager *m = w->m;
  size_t n = px_job_table_count(&m->jobs);
  for (size_t k = 0; k < n && k < STAT_PER_SWEEP; k++) {
    if (w->cursor >= n) w->cursor = 0;
    px_job_entry *e = px_job_table_at(&m->jobs, w->cursor++);
    if (e == NULL) continue;
    const char *name = e->job.names[0];
    int64_t fp = fingerprint(w, name), old = 0;
    int known = px_namemap_get(w->mtimes, name, &old) != NULL;
    if (known && fp == old) continue;
    px_namemap_put(w->mtimes, name, m, fp);
    if (known && fp != 0) cert_changed(m, name);
  }
}

/* Redis: a few names re-read per second, for messages that were missed. */
static void redis_sweep(px__watch *w) {
  px_acme_manager *m = w->m;
  size_t n = px_job_table_count(&m->jobs);
  for (size_t k = 0; k < n && k < REDIS_CHECK_PER_TICK; k++) {
    if (w->cursor >= n) w->cursor = 0;
    px_job_entry *e = px_job_table_at(&m->jobs, w->cursor++);
    if (e && !e->running && e->job.not_after > 0) cert_changed(m, e->job.names[0]);
  }
}

/* ---- challenges ---------------------------------------------------------- */

/* Copies challenge `id` from the store into memory (not over our own). */
static void mirror_challenge(px__watch *w, const char *id) {
  px_acme_manager *m = w->m;
  int64_t now = px__acme_now_ms();
  px_challenge_item it;
  int rc = px_challenge_load(m->store, id, &it);
  if (rc != 0) {
    if (rc != -ENOENT && rc != -EINVAL)
      px_log(PX_LOG_DEBUG, "cache: challenge %s cannot be read: %s", id, strerror(-rc));
    px_namemap_del(w->chal_seen, id);
    return;
  }
  px_namemap_put(w->chal_seen, id, m, now + PX_WATCH_MIRROR_TTL_MS / 2);
  int64_t stamp = -1;
  uv_mutex_lock(&m->lock);
  void *have = it.type == PX_ACME_HTTP_01 ? px_namemap_get(m->http, it.token, &stamp)
                                          : px_namemap_get(m->alpn, it.name, &stamp);
  uv_mutex_unlock(&m->lock);
  if (have == NULL || stamp != 0) { /* absent, or a copy: refresh it */
    px_log(PX_LOG_DEBUG, "cache: %s challenge of %s read from the store",
           it.type == PX_ACME_HTTP_01 ? "http-01" : "tls-alpn-01", it.name);
    if (it.type == PX_ACME_HTTP_01)
      px__acme_http_put(m, it.token, it.name, it.key_authorization, now + PX_WATCH_MIRROR_TTL_MS);
    else
      px__acme_alpn_put(m, it.name, it.key_authorization, now + PX_WATCH_MIRROR_TTL_MS);
  }
  px_challenge_item_dispose(&it);
}

/* A directory's challenge item older than an hour was left by an instance
 * that died mid-order (the owner removes its own): removed, as Redis
 * expires it. 1 when removed. */
static int remove_if_abandoned(px__watch *w, const char *id) {
  char path[PATH_MAX + PX_STORE_ID_MAX + 16];
  struct stat st;
  snprintf(path, sizeof(path), "%s/challenges/%s", w->root, id);
  if (stat(path, &st) != 0 || st.st_mtime + PX_WATCH_CHALLENGE_MAX_AGE_S > time(NULL)) return 0;
  if (w->m->store->ops->remove(w->m->store, PX_STORE_CHALLENGES, id, NULL) != 0) return 0;
  px_log(PX_LOG_INFO,
         "cache: removed challenges/%s, left over an hour ago by an order that "
         "did not finish",
         id);
  return 1;
}

static int on_listed_challenge(void *arg, const char *id) {
  px__watch *w = arg;
  int64_t until = 0;
  if (w->is_fs && remove_if_abandoned(w, id)) return 0; /* one stat per item */
  if (px_namemap_get(w->chal_seen, id, &until) && until > px__acme_now_ms()) return 0;
  mirror_challenge(w, id);
  return 0;
}

/* A read a worker asked for is over: the key is served from memory, or
 * known absent for a while; the worker that waits retries. */
static void read_done(px_acme_manager *m, px__store_reads *r, const char *key, int found) {
  uv_mutex_lock(&m->lock);
  if (found)
    px_namemap_del(r->wait, key);
  else
    px_namemap_put(r->wait, key, m, px__acme_now_ms() + PX_WATCH_MISS_MS);
  uv_mutex_unlock(&m->lock);
  m->o.on_resolved(m->o.arg, key);
}

/* Reads the challenge a worker found missing: `key` is the tls-alpn-01
 * name or the http-01 token. What is found is served from memory for
 * PX_WATCH_MIRROR_TTL_MS. */
static void read_challenge(px_acme_manager *m, px_acme_challenge_type type, const char *key) {
  int alpn = type == PX_ACME_TLS_ALPN_01;
  char id[PX_CHALLENGE_ID_MAX];
  px_challenge_item it = {0};
  int64_t until = px__acme_now_ms() + PX_WATCH_MIRROR_TTL_MS;
  int found = px_challenge_id(type, alpn ? key : NULL, alpn ? NULL : key, id, sizeof(id)) == 0 &&
              px_challenge_load(m->store, id, &it) == 0 && it.type == type &&
              strcmp(alpn ? it.name : it.token, key) == 0 &&
              (alpn ? px__acme_alpn_put(m, key, it.key_authorization, until)
                    : px__acme_http_put(m, key, it.name, it.key_authorization, until)) == 0;
  if (found)
    px_log(PX_LOG_INFO, "acme: %s for %s answered from the store", alpn ? "tls-alpn-01" : "http-01",
           it.name);
  px_challenge_item_dispose(&it);
  read_done(m, alpn ? &m->alpn_reads : &m->http_reads, key, found);
}

void px__watch_read_alpn(px_acme_manager *m, const char *name) {
  read_challenge(m, PX_ACME_TLS_ALPN_01, name);
}

void px__watch_read_http01(px_acme_manager *m, const char *token) {
  read_challenge(m, PX_ACME_HTTP_01, token);
}

void px__watch_challenge_saved(px_acme_manager *m, px_acme_challenge_type type, const char *name,
                               const char *token) {
  char id[PX_CHALLENGE_ID_MAX];
  if (!px_store_is_redis(m->store) || px_challenge_id(type, name, token, id, sizeof(id)) != 0)
    return;
  int rc = px_store_redis_publish_challenge(m->store, id);
  if (rc < 0)
    px_log(PX_LOG_WARN, "acme: cannot announce the challenge for %s: %s", name, strerror(-rc));
}

void px__watch_cert_saved(px_acme_manager *m, const char *name) {
  if (!px_store_is_redis(m->store)) return;
  int rc = px_store_redis_publish(m->store, name);
  if (rc < 0)
    px_log(PX_LOG_WARN,
           "acme: cannot announce the new certificate for %s: %s (other instances "
           "pick it up at their next check)",
           name, strerror(-rc));
}

/* ---- inotify (a local directory) ------------------------------------------ */

static void on_jobs_event(uv_fs_event_t *h, const char *file, int events, int status) {
  (void)events;
  px__watch *w = h->data;
  if (status != 0 || file == NULL || file[0] == '.' || atomic_load(&w->m->stopping)) return;
  size_t n = strlen(file);
  char id[PX_STORE_ID_MAX], name[PX_STORE_ID_MAX];
  if (n < 6 || n >= sizeof(id) || strcmp(file + n - 5, ".json") != 0) return;
  memcpy(id, file, n - 5);
  id[n - 5] = '\0';
  if (px_store_name_of_id(PX_STORE_JOBS, id, name, sizeof(name)) != 0) return;
  cert_changed(w->m, name);
}

static void on_chal_event(uv_fs_event_t *h, const char *file, int events, int status) {
  (void)events;
  px__watch *w = h->data;
  if (status != 0 || file == NULL || file[0] == '.' || atomic_load(&w->m->stopping)) return;
  mirror_challenge(w, file);
}

/* Watches ROOT/<dir> (created if missing, as the store would). */
static int watch_dir(px__watch *w, uv_loop_t *loop, uv_fs_event_t *ev, const char *dir,
                     uv_fs_event_cb cb) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/%s", w->root, dir);
  if (mkdir(path, 0700) != 0 && errno != EEXIST) return -errno;
  uv_fs_event_init(loop, ev);
  ev->data = w;
  int rc = uv_fs_event_start(ev, cb, path, 0);
  if (rc != 0) {
    uv_close((uv_handle_t *)ev, on_closed);
    px_log(PX_LOG_WARN,
           "cache: cannot watch %s (%s); changes by other instances are noticed by polling", path,
           uv_strerror(rc));
  }
  return rc;
}

/* ---- the update channel (Redis) --------------------------------------------- */

/* Watcher thread: hands a certificate name to the manager ("" for all of
 * them). Bounded: past HEARD_MAX names, the manager's sweep catches up. */
static void tell_manager(px__watch *w, const char *name) {
  size_t n = strlen(name);
  heard *h = malloc(sizeof(*h) + n + 1);
  if (h == NULL) return;
  memcpy(h->name, name, n + 1);
  uv_mutex_lock(&w->heard_lock);
  if (w->nheard >= HEARD_MAX) {
    free(h);
  } else {
    h->next = w->heard_first;
    w->heard_first = h;
    w->nheard++;
  }
  uv_mutex_unlock(&w->heard_lock);
  uv_async_send(&w->heard_async);
}

static void sub_stop(px__watch *w) {
  if (!w->sub_on) return;
  w->sub_on = 0;
  uv_poll_stop(&w->sub);
  uv_close((uv_handle_t *)&w->sub, on_closed);
}

static void on_sub_readable(uv_poll_t *p, int status, int events) {
  (void)events;
  px__watch *w = p->data;
  px_acme_manager *m = w->m;
  char name[PX_STORE_ID_MAX + 32];
  int rc = 0;
  while (status == 0 && !atomic_load(&m->stopping) &&
         (rc = px_store_redis_wait_update(m->store, 0, name, sizeof(name))) == 1) {
    size_t pl = strlen(PX_STORE_REDIS_CHALLENGE_MSG);
    if (strncmp(name, PX_STORE_REDIS_CHALLENGE_MSG, pl) == 0)
      mirror_challenge(w, name + pl);
    else
      tell_manager(w, name);
  }
  if (status != 0 || rc < 0) sub_stop(w); /* the tick subscribes again */
}

static void sub_start(px__watch *w) {
  if (w->sub_on) return;
  int fd = px_store_redis_subscribe(w->m->store);
  if (fd < 0) return; /* Redis is away: tried again next tick */
  if (uv_poll_init(&w->wloop, &w->sub, fd) != 0) return;
  w->sub.data = w;
  w->sub_on = 1;
  uv_poll_start(&w->sub, UV_READABLE, on_sub_readable);
  /* Messages sent while we were not subscribed are lost: the manager reads
   * every certificate it holds again. */
  tell_manager(w, "");
}

/* ---- the poll timers ---------------------------------------------------------- */

/* Manager loop: certificates other instances wrote. */
static void on_tick(uv_timer_t *t) {
  px__watch *w = t->data;
  px_acme_manager *m = w->m;
  if (atomic_load(&m->stopping)) return;
  w->ticks++;
  if (w->is_fs) {
    if (w->ticks % STAT_EVERY_TICKS == 0) stat_sweep(w);
  } else {
    redis_sweep(w);
  }
}

/* Watcher thread: challenges the events missed (NFS, a lost message). */
static void on_wtick(uv_timer_t *t) {
  px__watch *w = t->data;
  px_acme_manager *m = w->m;
  if (atomic_load(&m->stopping)) return;
  w->wticks++;
  if (!w->is_fs) sub_start(w);
  if (w->is_fs || w->wticks % REDIS_LIST_EVERY_TICKS == 0)
    m->store->ops->list(m->store, PX_STORE_CHALLENGES, on_listed_challenge, w);
}

/* Manager loop: names the watcher thread heard on the Redis channel. */
static void on_heard(uv_async_t *a) {
  px__watch *w = a->data;
  uv_mutex_lock(&w->heard_lock);
  heard *list = w->heard_first;
  w->heard_first = NULL;
  w->nheard = 0;
  uv_mutex_unlock(&w->heard_lock);
  while (list) {
    heard *h = list;
    list = h->next;
    if (atomic_load(&w->m->stopping)) {
    } else if (h->name[0] != '\0') {
      cert_changed(w->m, h->name);
    } else { /* resubscribed: read every certificate held again */
      size_t n = px_job_table_count(&w->m->jobs);
      for (size_t i = 0; i < n; i++) {
        px_job_entry *e = px_job_table_at(&w->m->jobs, i);
        if (e && !e->running && e->job.not_after > 0) cert_changed(w->m, e->job.names[0]);
      }
    }
    free(h);
  }
}

static void on_wstop(uv_async_t *a) {
  px__watch *w = a->data;
  if (w->ev_chal_on) uv_close((uv_handle_t *)&w->ev_chal, on_closed);
  sub_stop(w);
  uv_close((uv_handle_t *)&w->wtick, on_closed);
  uv_close((uv_handle_t *)&w->wstop, on_closed);
}

static void watcher_main(void *arg) {
  px__watch *w = arg;
  uv_run(&w->wloop, UV_RUN_DEFAULT);
  px_tls_thread_cleanup(); /* BoringSSL's per-thread state (challenge certificates) */
}

/* Starts the watcher thread: 0, or a negative errno (logged). */
static int start_watcher(px__watch *w) {
  if (uv_loop_init(&w->wloop) != 0) return -ENOMEM;
  uv_async_init(&w->wloop, &w->wstop, on_wstop);
  w->wstop.data = w;
  uv_timer_init(&w->wloop, &w->wtick);
  w->wtick.data = w;
  if (w->is_fs)
    w->ev_chal_on = watch_dir(w, &w->wloop, &w->ev_chal, "challenges", on_chal_event) == 0;
  else
    sub_start(w);
  uv_timer_start(&w->wtick, on_wtick, TICK_MS, TICK_MS);
  int rc = uv_thread_create(&w->thread, watcher_main, w);
  if (rc != 0) {
    on_wstop(&w->wstop);
    uv_run(&w->wloop, UV_RUN_DEFAULT);
    uv_loop_close(&w->wloop);
    px_log(PX_LOG_ERROR,
           "cache: cannot start the challenge watcher thread: %s; other "
           "instances' http-01 challenges are not answered here",
           uv_strerror(rc));
    return rc;
  }
  w->thread_on = 1;
  return 0;
}

void px__watch_start(px_acme_manager *m) {
  px__watch *w = calloc(1, sizeof(*w));
  if (w == NULL) return;
  w->m = m;
  w->mtimes = px_namemap_new(PX_JOB_TABLE_MAX, NULL);
  w->chal_seen = px_namemap_new(SEEN_MAX, NULL);
  if (w->mtimes == NULL || w->chal_seen == NULL) {
    px_namemap_free(w->mtimes);
    px_namemap_free(w->chal_seen);
    free(w);
    px_log(PX_LOG_ERROR, "cache: out of memory: other instances' certificates are not watched");
    return;
  }
  m->watch = w;
  uv_mutex_init(&w->heard_lock);
  w->is_fs = !px_store_is_url(m->o.storage);
  uv_async_init(&m->loop, &w->heard_async, on_heard);
  w->heard_async.data = w;
  w->heard_on = 1;
  if (w->is_fs) {
    snprintf(w->root, sizeof(w->root), "%s", m->o.storage);
    w->ev_jobs_on = watch_dir(w, &m->loop, &w->ev_jobs, "jobs", on_jobs_event) == 0;
    stat_sweep(w); /* the baseline */
  }
  uv_timer_init(&m->loop, &w->tick);
  w->tick.data = w;
  w->tick_on = 1;
  uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
  start_watcher(w);
}

void px__watch_close(px_acme_manager *m) {
  px__watch *w = m->watch;
  if (w == NULL || w->closed) return;
  w->closed = 1;
  if (w->thread_on) {
    uv_async_send(&w->wstop);
    uv_thread_join(&w->thread);
    uv_loop_close(&w->wloop);
    w->thread_on = 0;
  }
  if (w->ev_jobs_on) uv_close((uv_handle_t *)&w->ev_jobs, on_closed);
  if (w->heard_on) uv_close((uv_handle_t *)&w->heard_async, on_closed);
  if (w->tick_on) uv_close((uv_handle_t *)&w->tick, on_closed);
}

/* Frees the watch once its handles closed (px_acme_manager_free). */
void px__watch_dispose(px_acme_manager *m) {
  px__watch *w = m->watch;
  if (w == NULL) return;
  while (w->heard_first) {
    heard *h = w->heard_first;
    w->heard_first = h->next;
    free(h);
  }
  uv_mutex_destroy(&w->heard_lock);
  px_namemap_free(w->mtimes);
  px_namemap_free(w->chal_seen);
  free(w);
  m->watch = NULL;
}
