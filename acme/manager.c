/*
 * The certificate manager (acme/manager.h): its thread and loop, the queue
 * from the workers, the memory tables they read, and the challenge hooks.
 * The on-demand policy is in ondemand.c, issuance in life/issue.c.
 */
#include "acme/manager.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "acme/challenge_store.h"
#include "acme/life/control.h"
#include "acme/life/fleet_lock.h"
#include "acme/life/issue.h"
#include "acme/life/scheduler.h"
#include "acme/life/watch.h"
#include "acme/manager_internal.h"
#include "acme/names.h"
#include "acme/transport.h"
#include "tls/challenge_cert.h"
#include "tls/ipname.h"
#include "tls/log.h"
#include "tls/tls.h"
#include "tls/unconst.h"

/* Bound on challenge keys waiting for the manager to read the store (per
 * challenge type). */
#define CHALLENGE_QUEUE_MAX 1000
/* Bound on remembered refusals. */
#define REFUSALS_MAX 100000
/* A handshake's name is noted in its job (last_seen, on_demand.forget_after)
 * at most this often, so busy names cause no write storm. */
#define SEEN_INTERVAL_S 3600
/* Bound on names waiting to be noted as seen; more are dropped until the
 * manager catches up (noted on a later handshake). */
#define SEEN_QUEUE_MAX 10000

typedef struct http01 {
  char *name;
  char *key_authorization;
} http01;

int64_t px__acme_now_ms(void) {
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

/* ---- the name queues (under m->lock) ------------------------------------ */

/* Appends a copy of `name`; 0, or -ENOMEM. */
static int fifo_push(px__acme_queued **head, px__acme_queued **tail, size_t *n, const char *name) {
  px__acme_queued *q = malloc(sizeof(*q) + strlen(name) + 1);
  if (q == NULL) return -ENOMEM;
  strcpy(q->name, name);
  q->next = NULL;
  if (*tail)
    (*tail)->next = q;
  else
    *head = q;
  *tail = q;
  (*n)++;
  return 0;
}

/* Takes the first entry (the caller frees it), or NULL; locks m->lock. */
static px__acme_queued *fifo_pop(px_acme_manager *m, px__acme_queued **head, px__acme_queued **tail,
                                 size_t *n) {
  uv_mutex_lock(&m->lock);
  px__acme_queued *q = *head;
  if (q) {
    *head = q->next;
    if (*head == NULL) *tail = NULL;
    (*n)--;
  }
  uv_mutex_unlock(&m->lock);
  return q;
}

/* ---- worker side ------------------------------------------------------- */

static int group_of(px_acme_manager *m, const char *name);

/* "*.example.com" for "www.example.com"; -1 when `name` has fewer than
 * three labels (a wildcard needs a parent of two, as the config requires). */
static int wildcard_of(const char *name, char *out, size_t cap) {
  const char *dot = strchr(name, '.');
  if (dot == NULL || strchr(dot + 1, '.') == NULL) return -1;
  int n = snprintf(out, cap, "*%s", dot);
  return n > 0 && (size_t)n < cap ? 0 : -1;
}

int px_acme_manager_lookup(px_acme_manager *m, const char *name, int on_demand, px_tls_cert **out) {
  /* An address comes from a `tls: acme` site's own hosts (the handshake
   * had no SNI and arrived on that address); on demand never orders one. */
  if ((on_demand || !px_ip_name_is(name)) && px__acme_ondemand_check_name(name) != 0) {
    px__metrics_refused(m, PX_ACME_REFUSED_INVALID_NAME);
    return -1;
  }
  int r;
  int64_t until = 0;
  uv_mutex_lock(&m->lock);
  int64_t seen = 0;
  px_tls_cert *c = px_namemap_get(m->certs, name, &seen);
  const char *key = name;
  char wild[PX_ACME_NAME_MAX + 1];
  /* A name one label below a `tls: acme` site's wildcard is served the
   * wildcard's certificate (RFC 6125 §6.4.3) and never ordered on its own;
   * until that certificate exists, the handshake is refused below. */
  if (c == NULL && !on_demand && wildcard_of(name, wild, sizeof(wild)) == 0 &&
      group_of(m, name) < 0 && (c = px_namemap_get(m->certs, wild, &seen)) != NULL)
    key = wild;
  if (c) {
    *out = px_tls_cert_ref(c);
    r = 1;
    int64_t now_s = px__acme_now_ms() / 1000;
    if (seen + SEEN_INTERVAL_S <= now_s && !atomic_load(&m->stopping) &&
        m->nseen < SEEN_QUEUE_MAX && fifo_push(&m->seen, &m->seen_tail, &m->nseen, key) == 0) {
      px_namemap_put(m->certs, key, c, now_s); /* same value: only the stamp changes */
      uv_async_send(&m->wake);
    }
  } else if (atomic_load(&m->stopping)) {
    r = -1; /* shutting down: nothing new is queued */
  } else if (!on_demand && group_of(m, name) < 0) {
    r = -1; /* from a `tls: acme` site, yet none of its names: never an order of its own */
    px__metrics_refused(m, PX_ACME_REFUSED_NOT_ALLOWED);
  } else if (px_namemap_get(m->refused, name, &until) == (void *)m && until > px__acme_now_ms()) {
    r = -1;
    px__metrics_refused(m, PX_ACME_REFUSED_RECENTLY);
  } else if (px_namemap_get(m->inflight, name, NULL)) {
    r = 0;
  } else if (px__acme_ondemand_check_room(m, name) != 0) {
    r = -1;
    px__metrics_refused(m, PX_ACME_REFUSED_MAX_PENDING);
  } else {
    r = -1;
    /* The stamp is when the name started waiting (the wait histogram). */
    if (px_namemap_put(m->inflight, name, m, px__acme_now_ms()) == 0) {
      if (fifo_push(&m->queue, &m->queue_tail, &m->nqueued, name) == 0) {
        r = 0;
        /* Under the lock, so px_acme_manager_stop cannot close the handle
         * between the check of `stopping` and this send. */
        uv_async_send(&m->wake);
      } else {
        px_namemap_del(m->inflight, name);
      }
    }
  }
  uv_mutex_unlock(&m->lock);
  return r;
}

/* Asks the manager to read `key` from the store, once: 0 while it is
 * queued or being read (on_resolved(key) follows), -1 when it is known to
 * be absent or cannot be asked now. Blocking store I/O stays off the
 * worker's loop. Under m->lock. */
static int read_through_locked(px_acme_manager *m, px__store_reads *r, const char *key,
                               int64_t now) {
  int64_t stamp = 0;
  if (px_namemap_get(r->wait, key, &stamp) == (void *)m && (stamp == 0 || stamp > now))
    return stamp == 0 ? 0 : -1;
  if (atomic_load(&m->stopping) || r->n >= CHALLENGE_QUEUE_MAX ||
      px_namemap_put(r->wait, key, m, 0) != 0)
    return -1;
  if (fifo_push(&r->head, &r->tail, &r->n, key) != 0) {
    px_namemap_del(r->wait, key);
    return -1;
  }
  uv_async_send(&m->wake);
  return 0;
}

int px_acme_manager_challenge_lookup(px_acme_manager *m, const char *name, px_tls_cert **out) {
  /* An address arrives here mapped from its reverse-DNS SNI (RFC 8738 §6). */
  if (!px_ip_name_is(name) && px__acme_ondemand_check_name(name) != 0) return -1;
  int r = -1;
  int64_t now = px__acme_now_ms(), stamp = 0;
  uv_mutex_lock(&m->lock);
  px_tls_cert *c = px_namemap_get(m->alpn, name, &stamp);
  if (c && (stamp == 0 || stamp > now)) {
    *out = px_tls_cert_ref(c);
    r = 1;
  } else {
    r = read_through_locked(m, &m->alpn_reads, name, now);
  }
  uv_mutex_unlock(&m->lock);
  return r;
}

/* A token as RFC 8555 §8.3 makes them: base64url, and short enough to be
 * a store id. Anything else is answered 404 without asking the store. */
static int token_plausible(const char *token) {
  size_t n = strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
  return n > 0 && token[n] == '\0' && n < PX_CHALLENGE_ID_MAX;
}

int px_acme_manager_http01(px_acme_manager *m, const char *host, const char *token, char *out,
                           size_t cap) {
  int n = -1;
  int64_t now = px__acme_now_ms(), until = 0;
  uv_mutex_lock(&m->lock);
  http01 *h = px_namemap_get(m->http, token, &until);
  if (h && (until == 0 || until > now)) {
    if (strcmp(h->name, host) == 0 && strlen(h->key_authorization) < cap) {
      n = (int)strlen(h->key_authorization);
      memcpy(out, h->key_authorization, (size_t)n + 1);
    }
  } else if (token_plausible(token) && read_through_locked(m, &m->http_reads, token, now) == 0) {
    n = PX_ACME_HTTP01_READING;
  }
  uv_mutex_unlock(&m->lock);
  return n;
}

/* ---- resolution (manager thread) ---------------------------------------- */

static void resolved(px_acme_manager *m, const char *name) {
  int64_t since = 0;
  uv_mutex_lock(&m->lock);
  int waited = px_namemap_get(m->inflight, name, &since) != NULL;
  px_namemap_del(m->inflight, name);
  uv_mutex_unlock(&m->lock);
  if (waited && since > 0) px__metrics_waited(m, px__acme_now_ms() - since);
  m->o.on_resolved(m->o.arg, name);
}

void px__acme_publish(px_acme_manager *m, char *const *names, size_t n, px_tls_cert *cert) {
  uv_mutex_lock(&m->lock);
  for (size_t i = 0; i < n; i++) {
    px_namemap_del(m->refused, names[i]);
    if (px_namemap_put(m->certs, names[i], px_tls_cert_ref(cert), px__acme_now_ms() / 1000) != 0) {
      px_tls_cert_unref(cert); /* not kept: the name is looked up on disk next time */
      px_log(PX_LOG_ERROR, "acme: out of memory keeping the certificate for %s", names[i]);
    }
  }
  uv_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++)
    resolved(m, names[i]);
}

/* The settings fit the namemap's stamp: two bits of redirect, the rest
 * max-age, each stored plus one so -1 is 0. */
static int64_t prefs_encode(int redirect_http, int64_t hsts) {
  return ((hsts + 1) << 2) | (int64_t)(redirect_http + 1);
}

void px__acme_publish_prefs(px_acme_manager *m, const px_job *job) {
  uv_mutex_lock(&m->lock);
  for (size_t i = 0; i < job->nnames; i++) {
    if (job->redirect_http < 0 && job->hsts < 0)
      px_namemap_del(m->prefs, job->names[i]);
    else
      px_namemap_put(m->prefs, job->names[i], m, prefs_encode(job->redirect_http, job->hsts));
  }
  uv_mutex_unlock(&m->lock);
}

int px_acme_manager_site_prefs(px_acme_manager *m, const char *name, px_acme_site_prefs *out) {
  int64_t stamp = 0;
  uv_mutex_lock(&m->lock);
  int found = px_namemap_get(m->prefs, name, &stamp) != NULL;
  uv_mutex_unlock(&m->lock);
  if (!found) return 0;
  out->redirect_http = (int)(stamp & 3) - 1;
  out->hsts = (stamp >> 2) - 1;
  return 1;
}

void px__acme_refuse(px_acme_manager *m, char *const *names, size_t n, int64_t until_ms) {
  uv_mutex_lock(&m->lock);
  for (size_t i = 0; i < n; i++)
    px_namemap_put(m->refused, names[i], m, until_ms);
  uv_mutex_unlock(&m->lock);
  for (size_t i = 0; i < n; i++)
    resolved(m, names[i]);
}

void px__acme_attempt_free(px__acme_attempt *a) {
  if (a->live_prev)
    a->live_prev->live_next = a->live_next;
  else if (a->m->attempts == a)
    a->m->attempts = a->live_next;
  if (a->live_next) a->live_next->live_prev = a->live_prev;
  px__fleet_release(a->m, a);
  if (a->group >= 0) a->m->group_running[a->group] = 0;
  for (size_t i = 0; i < a->nnames; i++)
    free(a->names[i]);
  free(a->names);
  free(a);
}

px__acme_attempt *px__acme_attempt_new(px_acme_manager *m, const char *const *names, size_t n,
                                       int group) {
  px__acme_attempt *a = calloc(1, sizeof(*a));
  if (a == NULL) return NULL;
  a->m = m;
  a->group = group;
  px_acme_site_prefs_none(&a->prefs);
  a->names = calloc(n, sizeof(char *));
  for (size_t i = 0; a->names && i < n; i++) {
    if ((a->names[i] = strdup(names[i])) == NULL) break;
    a->nnames++;
  }
  if (a->nnames != n) {
    a->group = -1; /* the caller still owns the group's running flag */
    px__acme_attempt_free(a);
    return NULL;
  }
  a->live_next = m->attempts;
  if (m->attempts) m->attempts->live_prev = a;
  m->attempts = a;
  return a;
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
  px__acme_attempt *a =
      px__acme_attempt_new(m, m->o.groups[g].names, m->o.groups[g].nnames, (int)g);
  if (a == NULL) {
    px_log(PX_LOG_ERROR, "acme: out of memory starting the certificate for %s",
           m->o.groups[g].names[0]);
    px__acme_refuse(m, px_unconst(m->o.groups[g].names), m->o.groups[g].nnames,
                    px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    return;
  }
  m->group_running[g] = 1;
  px__acme_obtain(m, a);
}

static void process(px_acme_manager *m, const char *name) {
  int g = group_of(m, name);
  if (g >= 0) {
    start_group(m, (size_t)g);
    return;
  }
  px__acme_attempt *a = px__acme_attempt_new(m, &name, 1, -1);
  if (a == NULL) {
    char *n = px_unconst(name);
    px__acme_refuse(m, &n, 1, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    return;
  }
  a->handshake = 1;
  px__acme_ondemand_start(m, a);
}

/* ---- `tls: acme` sites changed by a reload --------------------------------- */

static void groups_free(px_acme_group *g, size_t n) {
  for (size_t i = 0; g && i < n; i++) {
    for (size_t k = 0; k < g[i].nnames; k++)
      free(px_unconst(g[i].names[k]));
    free(px_unconst(g[i].names));
  }
  free(g);
}

/* A deep copy of `n` groups (n + 1 entries allocated), or NULL. */
static px_acme_group *groups_copy(const px_acme_group *src, size_t n, size_t extra) {
  px_acme_group *g = calloc(n + extra + 1, sizeof(*g));
  for (size_t i = 0; g && i < n; i++) {
    char **names = calloc(src[i].nnames + 1, sizeof(char *));
    if (names == NULL) {
      groups_free(g, n);
      return NULL;
    }
    g[i].names = (const char *const *)names;
    for (size_t k = 0; k < src[i].nnames; k++) {
      if ((names[k] = strdup(src[i].names[k])) == NULL) break;
      g[i].nnames++;
    }
    if (g[i].nnames != src[i].nnames) {
      groups_free(g, n);
      return NULL;
    }
  }
  return g;
}

int px_acme_manager_set_groups(px_acme_manager *m, const px_acme_group *groups, size_t ngroups) {
  px_acme_group *copy = groups_copy(groups, ngroups, 0);
  if (copy == NULL) return -ENOMEM;
  uv_mutex_lock(&m->lock);
  groups_free(m->new_groups, m->nnew_groups); /* an earlier reload's, never applied */
  m->new_groups = copy;
  m->nnew_groups = ngroups;
  m->groups_changed = 1;
  if (!atomic_load(&m->stopping)) uv_async_send(&m->wake);
  uv_mutex_unlock(&m->lock);
  return 0;
}

static int same_set(const char *const *a, size_t na, const char *const *b, size_t nb) {
  if (na != nb) return 0;
  for (size_t i = 0; i < na; i++) {
    size_t j = 0;
    while (j < nb && strcmp(a[i], b[j]) != 0)
      j++;
    if (j == nb) return 0;
  }
  return 1;
}

/* A site whose name set is new gets its own group index, appended: the
 * indexes held by jobs and by attempts in flight never change meaning. A
 * site whose set is unchanged keeps its index; a removed one's index stays
 * as an empty group that matches no name. */
static void apply_groups(px_acme_manager *m, px_acme_group *ng, size_t nn) {
  size_t n0 = m->o.ngroups;
  px_acme_group *all = groups_copy(m->o.groups, n0, nn);
  int *running = realloc(m->group_running, (n0 + nn + 1) * sizeof(int));
  if (running) m->group_running = running;
  if (all == NULL || running == NULL) {
    groups_free(all, n0);
    px_log(PX_LOG_ERROR, "acme: out of memory applying the reloaded `tls: acme` sites; "
                         "the previous ones stay in effect");
    return;
  }
  memset(running + n0, 0, (nn + 1) * sizeof(int));
  int *kept = calloc(n0 + 1, sizeof(int));
  size_t n = n0;
  size_t *fresh = calloc(nn + 1, sizeof(size_t)); /* indexes of the appended groups */
  size_t nfresh = 0;
  for (size_t i = 0; kept && fresh && i < nn; i++) {
    size_t g = 0;
    while (g < n0 && !same_set(all[g].names, all[g].nnames, ng[i].names, ng[i].nnames))
      g++;
    if (g < n0) {
      kept[g] = 1;
      continue;
    }
    all[n] = ng[i]; /* taken over: its names now belong to `all` */
    ng[i].names = NULL;
    ng[i].nnames = 0;
    fresh[nfresh++] = n++;
  }
  for (size_t g = 0; kept && g < n0; g++) {
    if (kept[g] || all[g].nnames == 0) continue;
    int renamed = 0; /* a site whose names changed takes over its job below */
    for (size_t f = 0; f < nfresh && !renamed; f++)
      renamed = strcmp(all[fresh[f]].names[0], all[g].names[0]) == 0;
    if (!renamed)
      px_log(PX_LOG_INFO, "acme: the site of %s is no longer configured; its certificate is kept",
             all[g].names[0]);
    for (size_t k = 0; k < all[g].nnames; k++)
      free(px_unconst(all[g].names[k]));
    all[g].nnames = 0;
    for (size_t i = 0; i < px_job_table_count(&m->jobs); i++) {
      px_job_entry *e = px_job_table_at(&m->jobs, i);
      if (e->group == (int)g) e->group = -1; /* renewed while seen, like an on-demand name */
    }
  }
  uv_mutex_lock(&m->lock);
  m->o.groups = all;
  m->o.ngroups = n;
  uv_mutex_unlock(&m->lock);
  groups_free(m->owned_groups, n0);
  m->owned_groups = all;
  int64_t now = px__acme_now_ms() / 1000;
  for (size_t f = 0; f < nfresh; f++) {
    size_t g = fresh[f];
    px_job_entry *e = px_job_table_find(&m->jobs, all[g].names[0]);
    if (e) {
      e->group = (int)g;
      if (!same_set((const char *const *)e->job.names, e->job.nnames, all[g].names,
                    all[g].nnames) &&
          px_job_set_names(&e->job, all[g].names, all[g].nnames) == 0) {
        px_job_table_reindex(&m->jobs, e);
        if (e->job.not_after > 0) e->names_changed = 1;
        px_job_table_save(m->store, e, now);
      }
    }
    px_log(PX_LOG_INFO, "acme: reload: the site of %s (%zu names) gets its certificate",
           all[g].names[0], all[g].nnames);
    start_group(m, g);
  }
  free(kept);
  free(fresh);
}

static void take_new_groups(px_acme_manager *m) {
  uv_mutex_lock(&m->lock);
  px_acme_group *ng = m->new_groups;
  size_t nn = m->nnew_groups;
  int changed = m->groups_changed;
  m->new_groups = NULL;
  m->nnew_groups = 0;
  m->groups_changed = 0;
  uv_mutex_unlock(&m->lock);
  if (!changed) return;
  apply_groups(m, ng, nn);
  groups_free(ng, nn);
}

/* Notes on-demand names seen in handshakes in their jobs (forget_after). */
static void note_seen(px_acme_manager *m) {
  px__acme_queued *q;
  while ((q = fifo_pop(m, &m->seen, &m->seen_tail, &m->nseen)) != NULL) {
    px_job_entry *e = px_job_table_find(&m->jobs, q->name);
    int64_t now = px__acme_now_ms() / 1000;
    if (e && e->group < 0 && e->seen_saved + SEEN_INTERVAL_S <= now) {
      e->job.last_seen = now;
      e->seen_saved = now;
      if (e->forgotten) {
        e->forgotten = 0;
        px__sched_update(m, e);
      }
      px_job_table_save(m->store, e, now);
    }
    free(q);
  }
}

static void on_wake(uv_async_t *a) {
  px_acme_manager *m = a->data;
  if (atomic_load(&m->stopping)) {
    px__control_close(m);
    px__fleet_close(m);
    px__watch_close(m);
    px__sched_close(m);
    uv_close((uv_handle_t *)&m->wake, NULL);
    if (m->client) px_acme_client_free(m->client);
    m->client = NULL;
    px__acme_dns_close(m);
    px_acme_requests_abort(&m->loop);
    return;
  }
  take_new_groups(m);
  px__acme_queued *q;
  while ((q = fifo_pop(m, &m->queue, &m->queue_tail, &m->nqueued)) != NULL) {
    process(m, q->name);
    free(q);
  }
  px__metrics_serve(m);
  while ((q = fifo_pop(m, &m->alpn_reads.head, &m->alpn_reads.tail, &m->alpn_reads.n)) != NULL) {
    px__watch_read_alpn(m, q->name);
    free(q);
  }
  while ((q = fifo_pop(m, &m->http_reads.head, &m->http_reads.tail, &m->http_reads.n)) != NULL) {
    px__watch_read_http01(m, q->name);
    free(q);
  }
  note_seen(m);
}

/* ---- challenge hooks (called by the client on this thread) --------------- */

int px__acme_alpn_put(px_acme_manager *m, const char *name, const char *ka, int64_t until_ms) {
  px_tls_challenge_cert cc;
  px_tls_cert *c = NULL;
  if (px_tls_challenge_cert_new(name, ka, strlen(ka), (int64_t)time(NULL), &cc) == 0) {
    c = px_tls_cert_from_der(cc.cert_der, cc.cert_len, cc.key_der, cc.key_len);
    px_tls_challenge_cert_dispose(&cc);
  }
  uv_mutex_lock(&m->lock);
  int r = c ? px_namemap_put(m->alpn, name, c, until_ms) : -ENOMEM;
  uv_mutex_unlock(&m->lock);
  if (r != 0) {
    px_tls_cert_unref(c);
    px_log(PX_LOG_ERROR, "acme: cannot make the tls-alpn-01 certificate for %s", name);
  }
  return r;
}

int px__acme_http_put(px_acme_manager *m, const char *token, const char *name, const char *ka,
                      int64_t until_ms) {
  http01 *h = calloc(1, sizeof(*h));
  if (h == NULL || (h->name = strdup(name)) == NULL ||
      (h->key_authorization = strdup(ka)) == NULL) {
    if (h) free_http01(h);
    px_log(PX_LOG_ERROR, "acme: out of memory keeping the http-01 answer for %s", name);
    return -ENOMEM;
  }
  uv_mutex_lock(&m->lock);
  int r = px_namemap_put(m->http, token, h, until_ms);
  uv_mutex_unlock(&m->lock);
  if (r != 0) {
    free_http01(h);
    px_log(PX_LOG_ERROR, "acme: out of memory keeping the http-01 answer for %s", name);
  }
  return r;
}

static void on_publish(void *arg, px_acme_challenge_type type, const char *name, const char *token,
                       const char *ka) {
  px_acme_manager *m = arg;
  if (type == PX_ACME_TLS_ALPN_01)
    px__acme_alpn_put(m, name, ka, 0);
  else
    px__acme_http_put(m, token, name, ka, 0);
  /* Shared through the store so the instance the CA reaches can answer. */
  int rc = px_challenge_save(m->store, type, name, token, ka);
  if (rc != 0) /* this instance still answers; another one could not */
    px_log(PX_LOG_ERROR,
           "cache: cannot save the %s answer for %s: %s; only this instance can "
           "answer it",
           type == PX_ACME_TLS_ALPN_01 ? "tls-alpn-01" : "http-01", name, strerror(-rc));
  else
    px__watch_challenge_saved(m, type, name, token);
}

static void on_unpublish(void *arg, px_acme_challenge_type type, const char *name,
                         const char *token) {
  px_acme_manager *m = arg;
  uv_mutex_lock(&m->lock);
  if (type == PX_ACME_TLS_ALPN_01)
    px_namemap_del(m->alpn, name);
  else
    px_namemap_del(m->http, token);
  uv_mutex_unlock(&m->lock);
  /* The authorization is final: nobody needs the material any more. */
  int rc = px_challenge_remove(m->store, type, name, token);
  if (rc != 0 && rc != -ENOENT)
    px_log(PX_LOG_WARN, "cache: cannot remove the challenge of %s from the store: %s", name,
           strerror(-rc));
}

/* ---- lifetime -------------------------------------------------------------- */

static void manager_main(void *arg) {
  px_acme_manager *m = arg;
  /* Renewals (key generation, signatures, TLS to the CA, JSON) are
   * background work: this thread yields the CPU to the workers, so a
   * renewal storm does not show in request latency (docs/lifecycle.md,
   * "Spread"). Linux applies nice to the calling thread alone. */
  if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), PX_ACME_MANAGER_NICE) != 0)
    px_log(PX_LOG_DEBUG, "acme: cannot lower the manager thread's priority: %s", strerror(errno));
  for (size_t g = 0; g < m->o.ngroups; g++)
    start_group(m, g);
  px__acme_dns_start(m);
  px__sched_start(m);
  px__watch_start(m);
  /* start_group read each site's cached certificate (or queued its order):
   * px_acme_manager_start may return, and portico report itself ready;
   * with acme.profile, once the first probe said whether the CA offers it
   * (px__sched_start started that probe). */
  if (!m->loaded_after_probe) uv_sem_post(&m->loaded);
  uv_run(&m->loop, UV_RUN_DEFAULT);
  px_tls_thread_cleanup(); /* the TLS queues the CA connections cached */
}

px_acme_manager *px_acme_manager_new(const px_acme_manager_opts *opts, char *err, size_t errlen) {
  px_acme_manager *m = calloc(1, sizeof(*m));
  if (m == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  m->o = *opts;
  atomic_init(&m->stopping, 0);
  char why[256];
  int r = px_store_open(opts->storage, &opts->store, &m->store, why, sizeof(why));
  if (r != 0) {
    snprintf(err, errlen, "storage: %s", why);
    free(m);
    return NULL;
  }
  uv_mutex_init(&m->lock);
  uv_loop_init(&m->loop);
  uv_async_init(&m->loop, &m->wake, on_wake);
  m->wake.data = m;
  m->certs = px_namemap_new(opts->on_demand.cache_size, free_cert);
  m->refused = px_namemap_new(REFUSALS_MAX, NULL);
  m->inflight = px_namemap_new(m->o.on_demand.max_pending + m->o.ngroups * 100 + 1, NULL);
  m->alpn = px_namemap_new(10000, free_cert);
  /* Twice the certificates' bound: a name's settings outlive its entry
   * there, and are published again whenever its certificate is. */
  m->prefs = px_namemap_new(2 * opts->on_demand.cache_size + 1, NULL);
  m->http = px_namemap_new(10000, free_http01);
  m->alpn_reads.wait = px_namemap_new(CHALLENGE_QUEUE_MAX, NULL);
  m->http_reads.wait = px_namemap_new(CHALLENGE_QUEUE_MAX, NULL);
  m->group_running = calloc(opts->ngroups + 1, sizeof(int));
  if (px__sched_init(m) != 0 || px__fleet_init(m) != 0 || px__metrics_init(m) != 0 || !m->certs ||
      !m->refused || !m->inflight || !m->alpn || !m->prefs || !m->http || !m->alpn_reads.wait ||
      !m->http_reads.wait || !m->group_running) {
    snprintf(err, errlen, "out of memory");
    px_acme_manager_free(m);
    return NULL;
  }
  m->o.client.store = m->store;
  m->o.client.hooks.publish = on_publish;
  m->o.client.hooks.unpublish = on_unpublish;
  m->o.client.hooks.arg = m;
  if (px__acme_dns_init(m, err, errlen) != 0) {
    px_acme_manager_free(m);
    return NULL;
  }
  m->client = px_acme_client_new(&m->loop, &m->o.client);
  if (m->client == NULL) {
    snprintf(err, errlen, "cannot start the ACME client (see the error above)");
    px_acme_manager_free(m);
    return NULL;
  }
  if (px__control_start(m, err, errlen) != 0) {
    px_acme_manager_free(m);
    return NULL;
  }
  return m;
}

void px__acme_first_probe_done(px_acme_manager *m, const char *err, int config_refused) {
  if (!m->loaded_after_probe) return;
  m->loaded_after_probe = 0;
  /* Only a CA that answered and refused acme.profile stops the start: a CA
   * that is down must not keep portico from serving what it has. */
  if (err && config_refused) snprintf(m->start_error, sizeof(m->start_error), "%s", err);
  uv_sem_post(&m->loaded);
}

const char *px_acme_manager_start_error(const px_acme_manager *m) {
  return m->start_error[0] ? m->start_error : NULL;
}

int px_acme_manager_start(px_acme_manager *m) {
  if (m->thread_started) return 0;
  m->loaded_after_probe = m->o.client.profile != NULL;
  int r = uv_sem_init(&m->loaded, 0);
  if (r != 0) return r;
  r = uv_thread_create(&m->thread, manager_main, m);
  if (r != 0) {
    uv_sem_destroy(&m->loaded);
    return r;
  }
  m->thread_started = 1;
  uv_sem_wait(&m->loaded);
  uv_sem_destroy(&m->loaded);
  return m->start_error[0] ? -EINVAL : 0;
}

void px_acme_manager_stop(px_acme_manager *m) {
  if (m == NULL) return;
  uv_mutex_lock(&m->lock);
  atomic_store(&m->stopping, 1);
  uv_mutex_unlock(&m->lock);
  if (!m->thread_started) return;
  uv_async_send(&m->wake);
  uv_thread_join(&m->thread);
  m->thread_started = 0;
}

void px_acme_manager_free(px_acme_manager *m) {
  if (m == NULL) return;
  px_acme_manager_stop(m);
  /* When the thread never ran, its on_wake did not close these. */
  if (!uv_is_closing((uv_handle_t *)&m->wake)) uv_close((uv_handle_t *)&m->wake, NULL);
  px__control_close(m);
  px__fleet_close(m);
  px__watch_close(m);
  px__sched_close(m);
  px_acme_client_free(m->client);
  m->client = NULL;
  px__acme_dns_close(m);
  px_acme_requests_abort(&m->loop);
  /* Let handles of abandoned orders close. */
  uv_run(&m->loop, UV_RUN_DEFAULT);
  px_tls_thread_cleanup();
  uv_loop_close(&m->loop);
  /* Attempts whose order was abandoned with the client: nothing will call
   * them back now. */
  while (m->attempts)
    px__acme_attempt_free(m->attempts);
  while (m->queue) {
    px__acme_queued *q = m->queue;
    m->queue = q->next;
    free(q);
  }
  while (m->seen) {
    px__acme_queued *q = m->seen;
    m->seen = q->next;
    free(q);
  }
  px__store_reads *reads[] = {&m->alpn_reads, &m->http_reads};
  for (size_t i = 0; i < 2; i++) {
    while (reads[i]->head) {
      px__acme_queued *q = reads[i]->head;
      reads[i]->head = q->next;
      free(q);
    }
    px_namemap_free(reads[i]->wait);
  }
  px__sched_dispose(m);
  px__watch_dispose(m);
  px_namemap_free(m->certs);
  px_namemap_free(m->refused);
  px_namemap_free(m->inflight);
  px_namemap_free(m->alpn);
  px_namemap_free(m->prefs);
  px_namemap_free(m->http);
  free(m->group_running);
  px__metrics_dispose(m);
  groups_free(m->new_groups, m->nnew_groups);
  groups_free(m->owned_groups, m->o.ngroups);
  uv_mutex_destroy(&m->lock);
  if (m->store) m->store->ops->destroy(m->store);
  free(m);
}
