/*
 * px_server_reload (proxy/server.h): re-reads the configuration and hands
 * the workers a new generation, or changes nothing. What a reload applies
 * and what takes a restart: docs/reload.md.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/listen_lock.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/worker.h"
#include "tls/log.h"

/* Most settings that need a restart named in one answer. */
#define MAX_RESTART_KEYS 32

/* A growing message in the caller's buffer (cut at its end). */
typedef struct msgbuf {
  char *p;
  size_t cap, len;
} msgbuf;

static void put(msgbuf *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(msgbuf *m, const char *fmt, ...) {
  if (m->len + 1 >= m->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(m->p + m->len, m->cap - m->len, fmt, ap);
  va_end(ap);
  if (n > 0) m->len += (size_t)n < m->cap - m->len ? (size_t)n : m->cap - m->len - 1;
}

static int str_differs(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a != b;
  return strcmp(a, b) != 0;
}

/* Settings read once at start: a reload keeps the running value (the new
 * config is made to say so) and warns. */
static void restart_only(const px_config *old, px_config *cfg, msgbuf *warn) {
  const char *keys[MAX_RESTART_KEYS];
  size_t n = 0;
  if (cfg->workers != old->workers) {
    keys[n++] = "workers";
    cfg->workers = old->workers; /* h2.c splits limits.total_buffer by it */
  }
  if (str_differs(cfg->storage, old->storage)) keys[n++] = "storage";
  if (str_differs(cfg->storage_prefix, old->storage_prefix)) keys[n++] = "storage_prefix";
  if (str_differs(cfg->storage_password_file, old->storage_password_file))
    keys[n++] = "storage_password_file";
  if (str_differs(cfg->storage_key_file, old->storage_key_file)) keys[n++] = "storage_key_file";
  if (str_differs(cfg->runtime_dir, old->runtime_dir)) {
    keys[n++] = "runtime_dir";
    /* The listen-address locks stay where they were taken. */
    char *keep = old->runtime_dir ? strdup(old->runtime_dir) : NULL;
    if (keep || old->runtime_dir == NULL) {
      free(cfg->runtime_dir);
      cfg->runtime_dir = keep;
    }
  }
  if (str_differs(cfg->access_log, old->access_log)) keys[n++] = "log.access";
  /* The metrics listener and registry are made at start (docs/metrics.md). */
  if (str_differs(cfg->metrics.text, old->metrics.text)) keys[n++] = "admin.metrics";
  if (cfg->limits.on_demand_timeout_ms != old->limits.on_demand_timeout_ms)
    keys[n++] = "timeouts.on_demand";
  n += px_acme_config_changed_keys(&old->acme, &old->on_demand, &old->control, &cfg->acme,
                                   &cfg->on_demand, &cfg->control, keys + n, MAX_RESTART_KEYS - n);
  for (size_t i = 0; i < n && i < MAX_RESTART_KEYS; i++)
    put(warn,
        "%s: %s: changed, but it is read only at start; the running value stays until "
        "a restart\n",
        cfg->file, keys[i]);
}

/* ACME needs the certificate manager, which starts with the process. */
static int needs_manager(const px_server *srv, const px_config *cfg, msgbuf *err) {
  if (srv->acme) return 0;
  int bad = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    const px_site *s = &cfg->sites[i];
    if (s->tls_mode != PX_SITE_TLS_ACME && s->tls_mode != PX_SITE_TLS_ON_DEMAND) continue;
    put(err,
        "%s:%d: sites[%zu].tls: %s needs the certificate manager, which starts only when a "
        "site uses ACME at start; restart portico to add the first ACME site\n",
        cfg->file, s->line, i, s->tls_mode == PX_SITE_TLS_ACME ? "acme" : "on_demand");
    bad = 1;
  }
  return bad ? -1 : 0;
}

/* The listen addresses of a config in one list: HTTPS ones first. */
static size_t naddrs(const px_config *c) { return c->nhttps + c->nhttp; }
static const px_listen_addr *addr_at(const px_config *c, size_t i, int *https) {
  *https = i < c->nhttps;
  return *https ? &c->https[i] : &c->http[i - c->nhttps];
}

/* Whether `cfg` already has address i of `other` with the same protocol. */
static int has_addr(const px_config *cfg, const px_config *other, size_t i) {
  int https, h;
  const px_listen_addr *a = addr_at(other, i, &https);
  for (size_t k = 0; k < naddrs(cfg); k++) {
    const px_listen_addr *b = addr_at(cfg, k, &h);
    if (h == https && px_listen_addr_equal(a, b)) return 1;
  }
  return 0;
}

/* What the reload hands each worker, built before anything is committed. */
typedef struct plan {
  px_wgen **wg; /* per worker */
  int *fds;     /* [address][worker], -1 for kept addresses */
  px_listen_want *want;
  size_t nwant;
  size_t added, removed;
} plan;

static void plan_dispose(plan *p, int nworkers) {
  for (int i = 0; p->wg && i < nworkers; i++)
    px_wgen_free(p->wg[i]);
  for (size_t k = 0; p->fds && k < p->nwant * (size_t)nworkers; k++)
    if (p->fds[k] >= 0) close(p->fds[k]);
  free(p->wg);
  free(p->fds);
  free(p->want);
}

/* Binds the new addresses (one socket per worker, as at start), after
 * locking them, and builds each worker's view. 0, or -1 with `err`. */
static int plan_build(px_server *srv, px_gen *gen, plan *p, msgbuf *err) {
  const px_config *cfg = gen->cfg, *old = srv->gen->cfg;
  int nw = srv->nworkers;
  p->nwant = naddrs(cfg);
  p->wg = calloc((size_t)nw, sizeof(px_wgen *));
  p->fds = malloc((p->nwant ? p->nwant : 1) * (size_t)nw * sizeof(int));
  p->want = calloc(p->nwant ? p->nwant : 1, sizeof(px_listen_want));
  if (p->wg == NULL || p->fds == NULL || p->want == NULL) {
    put(err, "out of memory\n");
    return -1;
  }
  for (size_t k = 0; k < p->nwant * (size_t)nw; k++)
    p->fds[k] = -1;
  for (size_t i = 0; i < naddrs(old); i++)
    p->removed += !has_addr(cfg, old, i);
  char why[768];
  if (px_listen_lock_add(cfg, why, sizeof(why)) != 0) {
    put(err, "%s: %s\n", cfg->file, why);
    return -1;
  }
  for (size_t i = 0; i < p->nwant; i++) {
    int https;
    const px_listen_addr *a = addr_at(cfg, i, &https);
    p->want[i].addr.ss = a->ss;
    p->want[i].addr.sslen = a->sslen;
    p->want[i].is_https = https;
    p->want[i].fd = -1;
    if (has_addr(old, cfg, i)) continue; /* kept open: never closed and re-bound */
    p->added++;
    for (int w = 0; w < nw; w++) {
      int fd = px_listen_socket_open(a);
      if (fd < 0) {
        put(err, "%s: listen %s: cannot listen: %s\n", cfg->file, a->text, strerror(-fd));
        return -1;
      }
      p->fds[i * (size_t)nw + (size_t)w] = fd;
    }
  }
  for (int w = 0; w < nw; w++) {
    if ((p->wg[w] = px_wgen_new(srv->workers[w], gen)) == NULL) {
      put(err, "out of memory\n");
      return -1;
    }
  }
  return 0;
}

/* Hands every worker its view and listeners; from here on nothing fails
 * back to the old generation. */
static void plan_commit(px_server *srv, plan *p) {
  int nw = srv->nworkers;
  for (int w = 0; w < nw; w++) {
    for (size_t i = 0; i < p->nwant; i++) {
      p->want[i].fd = p->fds[i * (size_t)nw + (size_t)w];
      p->fds[i * (size_t)nw + (size_t)w] = -1;
    }
    if (px_worker_update(srv->workers[w], p->wg[w], p->want, p->nwant) != 0) {
      px_log(PX_LOG_ERROR, "reload: out of memory; worker %d keeps the previous configuration", w);
      for (size_t i = 0; i < p->nwant; i++)
        if (p->want[i].fd >= 0) close(p->want[i].fd);
      continue; /* p->wg[w] is freed by plan_dispose */
    }
    p->wg[w] = NULL;
  }
}

/* The `tls: acme` sites of the new generation, for the manager. */
static void update_acme(px_server *srv, const px_config *cfg) {
  if (srv->acme == NULL) return;
  px_acme_group *g = calloc(cfg->nsites + 1, sizeof(*g));
  size_t n = 0;
  for (size_t i = 0; g && i < cfg->nsites; i++) {
    if (cfg->sites[i].tls_mode != PX_SITE_TLS_ACME) continue;
    g[n].names = (const char *const *)cfg->sites[i].hosts;
    g[n++].nnames = cfg->sites[i].nhosts;
  }
  if (g == NULL || px_acme_manager_set_groups(srv->acme, g, n) != 0)
    px_log(PX_LOG_ERROR, "reload: out of memory handing the `tls: acme` sites to the certificate "
                         "manager; it keeps the previous ones");
  free(g);
}

/* Reads the file; the config, or NULL with its errors in `err`. */
static px_config *load(const char *file, msgbuf *err) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  int nerrors = 0;
  px_config *cfg = px_config_load(file, f ? f : stderr, &nerrors);
  if (f) fclose(f);
  if (cfg == NULL) {
    put(err, "%s", text ? text : "");
    put(err, "%s: %d error%s\n", file, nerrors, nerrors == 1 ? "" : "s");
  }
  free(text);
  return cfg;
}

/* The config's own warnings (px_config_warnings), added to `warn`. */
static void config_warnings(const px_config *cfg, msgbuf *warn) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (f == NULL) return;
  px_config_warnings(cfg, f);
  fclose(f);
  if (text) put(warn, "%s", text);
  free(text);
}

static void log_lines(px_log_level level, const char *prefix, const char *text);

static int reload_locked(px_server *srv, msgbuf *out) {
  if (srv->stopping || srv->workers == NULL) {
    put(out, "portico is shutting down\n");
    return -1;
  }
  px_config *cfg = load(srv->cfg->file, out);
  if (cfg == NULL) return -1;
  char warnings[4096];
  msgbuf warn = {warnings, sizeof(warnings), 0};
  warnings[0] = '\0';
  restart_only(srv->cfg, cfg, &warn);
  config_warnings(cfg, &warn);
  if (needs_manager(srv, cfg, out) != 0) {
    px_config_free(cfg);
    return -1;
  }
  char why[768];
  px_gen *gen = px_gen_new(cfg, cfg, srv->acme, srv->last_gen + 1, why, sizeof(why));
  if (gen == NULL) {
    put(out, "%s: %s\n", cfg->file, why);
    px_config_free(cfg);
    return -1;
  }
  plan p = {0};
  /* The metrics slots last: nothing fails after them, so a refused reload
   * never takes a slot (docs/metrics.md). */
  int failed = plan_build(srv, gen, &p, out) != 0;
  if (!failed && px_gen_set_metrics(gen, srv->metrics) != 0) {
    put(out, "out of memory\n");
    failed = 1;
  }
  if (failed) {
    plan_dispose(&p, srv->nworkers);
    px_listen_lock_keep_only(srv->gen->cfg); /* the locks plan_build took */
    px_gen_unref(gen);
    return -1;
  }
  /* Before this one: generations that connections still hold, beside the
   * current one (the one being replaced, which its workers hold a moment
   * longer, is not counted). */
  unsigned older = px_gen_alive() - 1;
  px_gen_served(gen);
  plan_commit(srv, &p);
  px_metrics_map_activate(srv->metrics, gen->metrics_map);
  plan_dispose(&p, srv->nworkers);
  px_gen *old = srv->gen;
  srv->gen = gen;
  srv->last_gen = gen->id;
  /* The workers close removed listeners on their loops; the locks go now
   * (a process starting in that instant would share the port briefly). */
  px_listen_lock_keep_only(gen->cfg);
  px_log_set_level((px_log_level)gen->cfg->log_level);
  update_acme(srv, gen->cfg);
  px_gen_unref(old); /* freed once the connections accepted under it close */
  put(out,
      "%s: generation %u: %zu sites, %zu listeners (%zu new, %zu closed); %u older "
      "generation%s still held by open connections\n",
      gen->cfg->file, gen->id, gen->cfg->nsites, naddrs(gen->cfg), p.added, p.removed, older,
      older == 1 ? "" : "s");
  put(out, "%s", warnings);
  log_lines(PX_LOG_WARN, "reload: ", warnings);
  return 0;
}

/* Logs `text` one line at a time. */
static void log_lines(px_log_level level, const char *prefix, const char *text) {
  while (*text) {
    size_t n = strcspn(text, "\n");
    if (n) px_log(level, "%s%.*s", prefix, (int)n, text);
    text += n + (text[n] == '\n');
  }
}

int px_server_reload(px_server *srv, char *msg, size_t cap) {
  msgbuf out = {msg, cap, 0};
  if (cap) msg[0] = '\0';
  px_log(PX_LOG_INFO, "reload: reading %s", srv->cfg->file);
  /* systemd (sd_notify(3)): RELOADING=1 with the monotonic time, and
   * READY=1 once the reload is over, applied or refused. */
  char state[64];
  snprintf(state, sizeof(state), "RELOADING=1\nMONOTONIC_USEC=%llu",
           (unsigned long long)(uv_hrtime() / 1000));
  px_sd_notify(state);
  uv_mutex_lock(&srv->reload_lock);
  int r = reload_locked(srv, &out);
  uv_mutex_unlock(&srv->reload_lock);
  px_sd_notify("READY=1");
  if (r == 0) {
    px_log(PX_LOG_INFO, "reload: %.*s", (int)strcspn(msg, "\n"), msg); /* warnings are logged */
  } else {
    log_lines(PX_LOG_ERROR, "reload failed: ", msg);
    px_log(PX_LOG_ERROR, "reload failed: the running configuration is unchanged");
  }
  if (out.len && msg[out.len - 1] == '\n') msg[--out.len] = '\0';
  return r;
}
