#include "acme/manager.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/ask.h"
#include "acme/backoff.h"
#include "acme/names.h"
#include "acme/namemap.h"
#include "tls/challenge_cert.h"
#include "tls/log.h"

/* How long a refusal (ask said no, rate exceeded, invalid for the CA) is
 * remembered: a burst of the same junk name costs one check. */
#define REFUSAL_TTL_MS 60000
/* How long an ask answer that allowed a name is trusted. */
#define ASK_TIMEOUT_MS 5000
/* Bound on remembered refusals and on queued names. */
#define REFUSALS_MAX 100000
/* A certificate this close to expiry is not served from the cache. */
#define EXPIRY_MARGIN_S 3600

typedef struct queued {
  struct queued *next;
  char name[];
} queued;

typedef struct http01 {
  char *name;
  char *key_authorization;
} http01;

/* One issuance in flight: a `tls: acme` group or one on-demand name. */
typedef struct job {
  px_acme_manager *m;
  char **names;
  size_t nnames;
  int group; /* index, or -1 */
} job;

struct px_acme_manager {
  px_acme_manager_opts o;
  uv_thread_t thread;
  uv_loop_t loop;
  uv_async_t wake;
  int stopping;
  px_store *store;
  px_acme_client *client;

  uv_mutex_t lock; /* guards everything below */
  px_namemap *certs;     /* name -> px_tls_cert */
  px_namemap *refused;   /* name -> (none), stamp = until (ms) */
  px_namemap *inflight;  /* name -> (none) */
  px_namemap *alpn;      /* name -> px_tls_cert (tls-alpn-01) */
  px_namemap *http;      /* token -> http01 */
  queued *queue, *queue_tail;
  size_t nqueued;

  /* manager thread only */
  int64_t rate_window_start;
  uint64_t rate_used;
  int *group_running; /* a job for that `tls: acme` site is in flight */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void free_cert(void *v) { px_tls_cert_unref(v); }

static void free_http01(void *v) {
  http01 *h = v;
  free(h->name);
  free(h->key_authorization);
  free(h);
}

/* ---- worker side ------------------------------------------------------- */

int px_acme_manager_lookup(px_acme_manager *m, const char *name, px_tls_cert **out) {
  char norm[256];
  int n = px_acme_name_normalize(name, strlen(name), norm, sizeof(norm));
  if (n < 0 || strcmp(norm, name) != 0) {
    /* Refused before any disk or network work (DESIGN.md, names). */
    px_log(PX_LOG_DEBUG, "on-demand: refused invalid name \"%s\": %s", name, n < 0 ? px_acme_name_strerror(n) : "not normalised");
    return -1;
  }
  int r;
  int64_t until = 0;
  uv_mutex_lock(&m->lock);
  px_tls_cert *c = px_namemap_get(m->certs, name, NULL);
  if (c) {
    *out = px_tls_cert_ref(c);
    r = 1;
  } else if (px_namemap_get(m->refused, name, &until) == (void *)m && until > now_ms()) {
    r = -1;
  } else if (px_namemap_get(m->inflight, name, NULL)) {
    r = 0;
  } else if (px_namemap_size(m->inflight) >= m->o.max_pending) {
    r = -1;
    px_log(PX_LOG_WARN, "on-demand: refused %s: on_demand.max_pending (%zu) names are waiting", name,
           m->o.max_pending);
  } else {
    queued *q = malloc(sizeof(*q) + strlen(name) + 1);
    r = -1;
    if (q && px_namemap_put(m->inflight, name, m, 0) == 0) {
      strcpy(q->name, name);
      q->next = NULL;
      if (m->queue_tail) m->queue_tail->next = q;
      else m->queue = q;
      m->queue_tail = q;
      m->nqueued++;
      r = 0;
    } else {
      free(q);
    }
  }
  uv_mutex_unlock(&m->lock);
  if (r == 0 && c == NULL) uv_async_send(&m->wake);
  return r;
}

px_tls_cert *px_acme_manager_challenge_cert(px_acme_manager *m, const char *name) {
  uv_mutex_lock(&m->lock);
  px_tls_cert *c = px_namemap_get(m->alpn, name, NULL);
  if (c) px_tls_cert_ref(c);
  uv_mutex_unlock(&m->lock);
  return c;
}

int px_acme_manager_http01(px_acme_manager *m, const char *host, const char *token, char *out,
                           size_t cap) {
  int n = -1;
  uv_mutex_lock(&m->lock);
  http01 *h = px_namemap_get(m->http, token, NULL);
  if (h && strcmp(h->name, host) == 0 && strlen(h->key_authorization) < cap) {
    n = (int)strlen(h->key_authorization);
    memcpy(out, h->key_authorization, (size_t)n + 1);
  }
  uv_mutex_unlock(&m->lock);
  return n;
}

/* ---- resolution (manager thread) ---------------------------------------- */

static void resolved(px_acme_manager *m, const char *name) {
  uv_mutex_lock(&m->lock);
  px_namemap_del(m->inflight, name);
  uv_mutex_unlock(&m->lock);
  m->o.on_resolved(m->o.arg, name);
}

static void publish(px_acme_manager *m, char *const *names, size_t n, px_tls_cert *cert) {
  uv_mutex_lock(&m->lock);
  for (size_t i = 0; i < n; i++) {
    px_namemap_del(m->refused, names[i]);
    px_namemap_put(m->certs, names[i], px_tls_cert_ref(cert), 0);
  }
  uv_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++) resolved(m, names[i]);
}

static void refuse(px_acme_manager *m, char *const *names, size_t n, int64_t until_ms) {
  uv_mutex_lock(&m->lock);
  for (size_t i = 0; i < n; i++) px_namemap_put(m->refused, names[i], m, until_ms);
  uv_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++) resolved(m, names[i]);
}

/* Loads a cached certificate; a corrupt one is set aside (quarantine) so
 * the next step re-issues it, once, under the failure backoff. */
static px_tls_cert *load_cached(px_acme_manager *m, const char *name) {
  if (!px_store_cert_exists(m->store, name)) return NULL;
  char *cert = NULL, *key = NULL;
  size_t clen = 0, klen = 0;
  px_tls_cert *c = NULL;
  char why[160] = "unreadable";
  if (px_store_cert_load(m->store, name, PX_STORE_CERT_PEM, &cert, &clen) == 0 &&
      px_store_cert_load(m->store, name, PX_STORE_KEY_PEM, &key, &klen) == 0)
    c = px_tls_cert_from_pem(cert, clen, key, klen, why, sizeof(why));
  if (cert) px_store_data_free(cert, clen);
  if (key) px_store_data_free(key, klen);
  if (c == NULL) {
    px_log(PX_LOG_WARN, "cache: certificate for %s set aside: %s", name, why);
    m->store->ops->quarantine(m->store, PX_STORE_CERTS, name, PX_STORE_CERT_PEM);
    m->store->ops->quarantine(m->store, PX_STORE_CERTS, name, PX_STORE_KEY_PEM);
    return NULL;
  }
  if (px_tls_cert_not_after(c) < (int64_t)time(NULL) + EXPIRY_MARGIN_S) {
    px_log(PX_LOG_INFO, "cache: certificate for %s has expired; obtaining a new one", name);
    px_tls_cert_unref(c);
    return NULL;
  }
  return c;
}

static void load_backoff(px_acme_manager *m, const char *name, px_acme_backoff *b) {
  char *data = NULL;
  size_t len = 0;
  px_acme_backoff_init(b, name);
  if (m->store->ops->load(m->store, PX_STORE_FAILURES, name, NULL, &data, &len) == 0) {
    if (px_acme_backoff_from_json(data, len, b) != 0) px_acme_backoff_init(b, name);
    px_store_data_free(data, len);
  }
}

static void job_free(job *j) {
  if (j->group >= 0) j->m->group_running[j->group] = 0;
  for (size_t i = 0; i < j->nnames; i++) free(j->names[i]);
  free(j->names);
  free(j);
}

/* meta.json: what the certificate covers, when it was issued and expires,
 * and the CA's alternate chains (RFC 8555 §7.4.2), kept for operators and
 * for renewal. */
static void save_meta(px_acme_manager *m, const job *j, const px_acme_result *res, const px_tls_cert *c) {
  json_t *names = json_array(), *alts = json_array();
  for (size_t i = 0; i < j->nnames; i++) json_array_append_new(names, json_string(j->names[i]));
  for (size_t i = 0; i < res->nalternates; i++) json_array_append_new(alts, json_string(res->alternates[i]));
  json_t *meta = json_pack("{s:o,s:s,s:I,s:I,s:o}", "names", names, "serial", px_tls_cert_serial(c),
                           "issued_at", (json_int_t)time(NULL), "not_after", (json_int_t)px_tls_cert_not_after(c),
                           "alternates", alts);
  char *text = meta ? json_dumps(meta, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if (text) m->store->ops->save(m->store, PX_STORE_CERTS, j->names[0], PX_STORE_META_JSON, text, strlen(text));
  free(text);
  json_decref(meta);
}

static void on_issued(void *arg, const char *err, px_acme_result *res, int64_t retry_after) {
  job *j = arg;
  px_acme_manager *m = j->m;
  const char *name = j->names[0];
  if (err == NULL) {
    char why[160];
    px_tls_cert *c = px_tls_cert_from_pem(res->cert_pem, res->cert_len, res->key_pem, res->key_len, why,
                                          sizeof(why));
    if (c == NULL) {
      err = "the CA's certificate does not match our key";
    } else {
      /* Key first, then the certificate: a reader that sees the new
       * certificate always finds its key (each write is atomic). */
      m->store->ops->save(m->store, PX_STORE_CERTS, name, PX_STORE_KEY_PEM, res->key_pem, res->key_len);
      m->store->ops->save(m->store, PX_STORE_CERTS, name, PX_STORE_CERT_PEM, res->cert_pem, res->cert_len);
      save_meta(m, j, res, c);
      m->store->ops->remove(m->store, PX_STORE_FAILURES, name, NULL);
      px_log(PX_LOG_INFO, "acme: certificate for %s%s ready (serial %s)", name, j->nnames > 1 ? " and others" : "",
             px_tls_cert_serial(c));
      publish(m, j->names, j->nnames, c);
      px_tls_cert_unref(c);
    }
    px_acme_result_dispose(res);
  }
  if (err) {
    px_acme_backoff b;
    load_backoff(m, name, &b);
    px_acme_backoff_fail(&b, (int64_t)time(NULL), err);
    int64_t next = b.next_attempt;
    if (retry_after > 0 && (int64_t)time(NULL) + retry_after > next) next = (int64_t)time(NULL) + retry_after;
    b.next_attempt = next;
    char *json = px_acme_backoff_to_json(&b);
    if (json) {
      m->store->ops->save(m->store, PX_STORE_FAILURES, name, NULL, json, strlen(json));
      free(json);
    }
    px_log(PX_LOG_ERROR, "acme: issuance for %s failed: %s; next attempt in %lld s", name, err,
           (long long)(next - (int64_t)time(NULL)));
    refuse(m, j->names, j->nnames, next * 1000);
  }
  job_free(j);
}

/* Places the order when the rate allows it. */
static void issue(px_acme_manager *m, job *j) {
  int64_t now = now_ms();
  if (now - m->rate_window_start >= (int64_t)m->o.rate_window_ms) {
    m->rate_window_start = now;
    m->rate_used = 0;
  }
  if (j->group < 0 && m->rate_used >= m->o.rate_count) {
    px_log(PX_LOG_WARN, "on-demand: refused %s: on_demand.rate (%llu per %llu s) reached", j->names[0],
           (unsigned long long)m->o.rate_count, (unsigned long long)(m->o.rate_window_ms / 1000));
    refuse(m, j->names, j->nnames, now + REFUSAL_TTL_MS);
    job_free(j);
    return;
  }
  m->rate_used++;
  if (px_acme_issue(m->client, (const char *const *)j->names, j->nnames, on_issued, j) != 0) {
    px_log(PX_LOG_ERROR, "acme: could not start an order for %s", j->names[0]);
    refuse(m, j->names, j->nnames, now + REFUSAL_TTL_MS);
    job_free(j);
  }
}

/* Cache, then backoff, then an order. */
static void obtain(px_acme_manager *m, job *j) {
  px_tls_cert *c = load_cached(m, j->names[0]);
  if (c) {
    px_log(PX_LOG_INFO, "cache: loaded certificate for %s (serial %s)", j->names[0], px_tls_cert_serial(c));
    publish(m, j->names, j->nnames, c);
    px_tls_cert_unref(c);
    job_free(j);
    return;
  }
  px_acme_backoff b;
  load_backoff(m, j->names[0], &b);
  if (!px_acme_backoff_ready(&b, (int64_t)time(NULL))) {
    px_log(PX_LOG_INFO, "acme: %s failed %u time(s); next attempt in %lld s", j->names[0], b.failures,
           (long long)(b.next_attempt - (int64_t)time(NULL)));
    refuse(m, j->names, j->nnames, b.next_attempt * 1000);
    job_free(j);
    return;
  }
  issue(m, j);
}

static void on_ask(void *arg, int allowed, const char *why) {
  job *j = arg;
  if (!allowed) {
    px_log(PX_LOG_INFO, "on-demand: refused %s: %s", j->names[0], why);
    refuse(j->m, j->names, j->nnames, now_ms() + REFUSAL_TTL_MS);
    job_free(j);
    return;
  }
  obtain(j->m, j);
}

static job *job_new(px_acme_manager *m, const char *const *names, size_t n, int group) {
  job *j = calloc(1, sizeof(*j));
  if (j == NULL) return NULL;
  j->m = m;
  j->group = group;
  j->names = calloc(n, sizeof(char *));
  for (size_t i = 0; j->names && i < n; i++) j->names[j->nnames++] = strdup(names[i]);
  return j;
}

/* A name of a `tls: acme` site belongs to its group's certificate. */
static int group_of(px_acme_manager *m, const char *name) {
  for (size_t g = 0; g < m->o.ngroups; g++)
    for (size_t i = 0; i < m->o.groups[g].nnames; i++)
      if (strcmp(m->o.groups[g].names[i], name) == 0) return (int)g;
  return -1;
}

static void start_group(px_acme_manager *m, size_t g) {
  if (m->group_running[g]) return; /* its resolution will answer this name too */
  m->group_running[g] = 1;
  job *j = job_new(m, m->o.groups[g].names, m->o.groups[g].nnames, (int)g);
  if (j) obtain(m, j);
}

static void process(px_acme_manager *m, const char *name) {
  int g = group_of(m, name);
  if (g >= 0) {
    start_group(m, (size_t)g);
    return;
  }
  job *j = job_new(m, &name, 1, -1);
  if (j == NULL) return;
  if (m->o.ask_url) {
    if (px_acme_ask(&m->loop, m->o.ask_url, name, ASK_TIMEOUT_MS, on_ask, j) != 0) on_ask(j, 0, "bad ask URL");
    return;
  }
  obtain(m, j);
}

static void on_wake(uv_async_t *a) {
  px_acme_manager *m = a->data;
  if (m->stopping) {
    uv_close((uv_handle_t *)&m->wake, NULL);
    if (m->client) px_acme_client_free(m->client);
    m->client = NULL;
    return;
  }
  for (;;) {
    uv_mutex_lock(&m->lock);
    queued *q = m->queue;
    if (q) {
      m->queue = q->next;
      if (m->queue == NULL) m->queue_tail = NULL;
      m->nqueued--;
    }
    uv_mutex_unlock(&m->lock);
    if (q == NULL) break;
    process(m, q->name);
    free(q);
  }
}

/* ---- challenge hooks (called by the client on this thread) --------------- */

static void on_publish(void *arg, px_acme_challenge_type type, const char *name, const char *token,
                       const char *ka) {
  px_acme_manager *m = arg;
  if (type == PX_ACME_TLS_ALPN_01) {
    px_tls_challenge_cert cc;
    if (px_tls_challenge_cert_new(name, ka, strlen(ka), (int64_t)time(NULL), &cc) != 0) return;
    px_tls_cert *c = px_tls_cert_from_der(cc.cert_der, cc.cert_len, cc.key_der, cc.key_len);
    px_tls_challenge_cert_dispose(&cc);
    if (c == NULL) return;
    uv_mutex_lock(&m->lock);
    px_namemap_put(m->alpn, name, c, 0);
    uv_mutex_unlock(&m->lock);
    return;
  }
  http01 *h = calloc(1, sizeof(*h));
  if (h == NULL || (h->name = strdup(name)) == NULL || (h->key_authorization = strdup(ka)) == NULL) {
    if (h) free_http01(h);
    return;
  }
  uv_mutex_lock(&m->lock);
  px_namemap_put(m->http, token, h, 0);
  uv_mutex_unlock(&m->lock);
  /* Shared through the cache so another instance can answer for us. */
  m->store->ops->save(m->store, PX_STORE_CHALLENGES, token, NULL, ka, strlen(ka));
}

static void on_unpublish(void *arg, px_acme_challenge_type type, const char *name, const char *token) {
  px_acme_manager *m = arg;
  uv_mutex_lock(&m->lock);
  if (type == PX_ACME_TLS_ALPN_01)
    px_namemap_del(m->alpn, name);
  else
    px_namemap_del(m->http, token);
  uv_mutex_unlock(&m->lock);
  if (type == PX_ACME_HTTP_01) m->store->ops->remove(m->store, PX_STORE_CHALLENGES, token, NULL);
}

/* ---- lifetime -------------------------------------------------------------- */

static void manager_main(void *arg) {
  px_acme_manager *m = arg;
  for (size_t g = 0; g < m->o.ngroups; g++) start_group(m, g);
  uv_run(&m->loop, UV_RUN_DEFAULT);
}

px_acme_manager *px_acme_manager_start(const px_acme_manager_opts *opts, char *err, size_t errlen) {
  px_acme_manager *m = calloc(1, sizeof(*m));
  if (m == NULL) return NULL;
  m->o = *opts;
  if (m->o.max_pending == 0) m->o.max_pending = 100;
  if (m->o.rate_window_ms == 0) m->o.rate_window_ms = 60000;
  px_store_fs_options so = {0};
  so.root = opts->storage;
  int r = px_store_fs_open(&so, &m->store);
  if (r != 0) {
    snprintf(err, errlen, "storage %s: %s", opts->storage, strerror(-r));
    free(m);
    return NULL;
  }
  uv_mutex_init(&m->lock);
  m->certs = px_namemap_new(opts->cache_size ? opts->cache_size : 10000, free_cert);
  m->refused = px_namemap_new(REFUSALS_MAX, NULL);
  m->inflight = px_namemap_new(m->o.max_pending + m->o.ngroups * 100 + 1, NULL);
  m->alpn = px_namemap_new(10000, free_cert);
  m->http = px_namemap_new(10000, free_http01);
  m->group_running = calloc(opts->ngroups + 1, sizeof(int));
  uv_loop_init(&m->loop);
  uv_async_init(&m->loop, &m->wake, on_wake);
  m->wake.data = m;
  m->o.client.store = m->store;
  m->o.client.hooks.publish = on_publish;
  m->o.client.hooks.unpublish = on_unpublish;
  m->o.client.hooks.arg = m;
  m->client = px_acme_client_new(&m->loop, &m->o.client);
  if (m->client == NULL || uv_thread_create(&m->thread, manager_main, m) != 0) {
    snprintf(err, errlen, "cannot start the certificate manager");
    px_acme_manager_stop(m);
    return NULL;
  }
  return m;
}

void px_acme_manager_stop(px_acme_manager *m) {
  if (m == NULL) return;
  if (m->thread) {
    m->stopping = 1;
    uv_async_send(&m->wake);
    uv_thread_join(&m->thread);
  } else {
    uv_close((uv_handle_t *)&m->wake, NULL);
    if (m->client) px_acme_client_free(m->client);
  }
  /* Let handles of abandoned orders close. */
  uv_run(&m->loop, UV_RUN_DEFAULT);
  uv_loop_close(&m->loop);
  while (m->queue) {
    queued *q = m->queue;
    m->queue = q->next;
    free(q);
  }
  px_namemap_free(m->certs);
  px_namemap_free(m->refused);
  px_namemap_free(m->inflight);
  px_namemap_free(m->alpn);
  px_namemap_free(m->http);
  free(m->group_running);
  uv_mutex_destroy(&m->lock);
  if (m->store) m->store->ops->destroy(m->store);
  free(m);
}
