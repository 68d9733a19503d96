/*
 * Internal to acme/: the certificate manager's state, shared by manager.c
 * (thread, queue, public API), ondemand.c (the on-demand policy) and
 * life/issue.c (cache, order, save, publish).
 *
 * Threads: fields under `lock` are read by workers; the rest belongs to
 * the manager thread.
 */
#ifndef PX_ACME_MANAGER_INTERNAL_H
#define PX_ACME_MANAGER_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "acme/life/events.h"
#include "acme/life/jobtable.h"
#include "acme/life/metrics_internal.h"
#include "acme/life/rand.h"
#include "acme/life/schedq.h"
#include "acme/manager.h"
#include "acme/namemap.h"
#include "acme/store.h"

/* How long a refusal (ask said no, rate exceeded, invalid for the CA) is
 * remembered: a burst of the same junk name costs one check. */
#define PX__ACME_REFUSAL_TTL_MS 60000

typedef struct px__acme_queued {
  struct px__acme_queued *next;
  char name[];
} px__acme_queued;

/* Challenge material a worker found missing from memory and asked the
 * manager to read from the store (another instance may have placed the
 * order, and its copy may not have been mirrored yet): key -> (none) in
 * `wait`, stamp 0 while queued or being read, else "absent until" (ms);
 * the keys queued for the manager. Guarded by m->lock. */
typedef struct px__store_reads {
  px_namemap *wait;
  px__acme_queued *head, *tail;
  size_t n;
} px__store_reads;

struct px_acme_manager {
  px_acme_manager_opts o;
  uv_thread_t thread;
  int thread_started; /* owned by the thread that calls start/stop */
  uv_sem_t loaded;    /* posted once the `tls: acme` sites' cached certificates are read */
  /* With acme.profile set, `loaded` also waits for the first probe of the
   * CA's directory, which says whether the CA offers the profile. */
  int loaded_after_probe;
  char start_error[512]; /* why px_acme_manager_start refused, or "" */
  uv_loop_t loop;
  uv_async_t wake;
  atomic_int stopping; /* set by px_acme_manager_stop, read by the manager thread and lookups */
  px_store *store;
  px_acme_client *client;

  uv_mutex_t lock;            /* guards everything below */
  px_namemap *certs;          /* name -> px_tls_cert */
  px_namemap *refused;        /* name -> (none), stamp = until (ms) */
  px_namemap *inflight;       /* name -> (none), stamp = when it started waiting (ms) */
  px_namemap *alpn;           /* name -> px_tls_cert (tls-alpn-01) */
  px_namemap *prefs;          /* name -> (none), stamp = encoded ask settings */
  px_namemap *http;           /* token -> http01 */
  px__store_reads alpn_reads; /* tls-alpn-01, by name */
  px__store_reads http_reads; /* http-01, by token */
  px__acme_queued *queue, *queue_tail;
  size_t nqueued;
  px__acme_queued *seen, *seen_tail; /* on-demand names seen in a handshake (last_seen) */
  size_t nseen;
  /* `tls: acme` sites handed over by a reload, not applied yet (a deep
   * copy); o.groups is replaced under this lock too (lookups read it). */
  px_acme_group *new_groups;
  size_t nnew_groups;
  int groups_changed;
  px_acme_group *owned_groups; /* o.groups when a reload set it (a deep copy) */

  /* manager thread only */
  int64_t rate_window_start;
  uint64_t rate_used;
  int *group_running; /* an attempt for that `tls: acme` site is in flight */

  /* The lifecycle (life/scheduler.c): the jobs, one timer over their
   * next_run, the renewal budget, and the CA's health. */
  px_job_table jobs;
  px_life_rand rnd;
  uv_timer_t sched_timer;
  px_schedq waiting; /* jobs by their next action time */
  px_schedq backlog; /* due renewals by not_after, waiting for renew_rate */
  px_rate rate;
  int64_t sched_armed_at; /* when the timer fires (s), 0 when idle */
  unsigned ari_inflight;
  int ari_unsupported; /* the directory lists no renewalInfo */
  int ca_down;         /* the CA did not answer: names wait for the probe */
  int probing;
  int64_t probe_delay_s, probe_next;
  uv_timer_t probe_timer;
  int timers_open;

  /* Operator control and notifications (life/control.c). */
  struct px_admin *admin;
  px_events *events;
  struct px__revoke *revokes; /* revocations waiting for the CA, freed at close */
  /* The fleet (life/fleet_lock.c, life/watch.c): attempts holding the
   * issuance lock or waiting for another instance's certificate, one
   * timer for heartbeats and polls, and the store watch. */
  struct px__acme_attempt **fleet;
  size_t nfleet, fleet_cap;
  uv_timer_t fleet_timer;
  int fleet_open;
  struct px__watch *watch;
  struct px__acme_attempt *attempts; /* every attempt alive (manager.c) */
  struct px__acme_metrics *metrics;  /* life/metrics.c: counters for monitoring */
  /* dns-01 (dns_hooks.c): the provider, or NULL without acme.dns. */
  struct px_dns01 *dns;
  /* The CAA check before an on-demand order (dns_hooks.c): the server
   * asked, whether it recurses, and whether the check is on. */
  struct sockaddr_storage caa_server;
  int caa_rd, caa_on;
};

/* One issuance in flight: a `tls: acme` group or one on-demand name. */
typedef struct px__acme_attempt {
  px_acme_manager *m;
  char **names;
  size_t nnames;
  int group;           /* index into o.groups, or -1 for an on-demand name */
  px_job_entry *entry; /* its job, once known */
  int handshake;       /* asked by a handshake (the on-demand path) */
  int asked;           /* the ask endpoint allowed it; `prefs` is its answer */
  px_acme_site_prefs prefs;
  /* life/fleet_lock.c: the issuance lock is held (1) or another instance
   * holds it and this attempt waits for its certificate (2). */
  int fleet_state;
  int64_t fleet_deadline_ms, fleet_refresh_ms;
  char *fleet_replaces;
  void (*fleet_go)(px_acme_manager *m, struct px__acme_attempt *a, const char *replaces);
  /* m->attempts: every attempt not freed yet, so the ones whose order was
   * abandoned at shutdown (the client calls nothing back) are freed too. */
  struct px__acme_attempt *live_prev, *live_next;
} px__acme_attempt;

/* manager.c: the first probe of the CA ended (err NULL when it answered
 * and accepted the configuration); lets px_acme_manager_start return. */
void px__acme_first_probe_done(px_acme_manager *m, const char *err, int config_refused);

/* The manager thread's nice value: below the workers, which serve requests. */
#define PX_ACME_MANAGER_NICE 10
/* dns_hooks.c: builds the dns-01 provider from acme.dns (none without
 * it) and fills the client's dns hooks. 0, or -1 with a sentence. */
int px__acme_dns_init(px_acme_manager *m, char *err, size_t errlen);
/* dns_hooks.c: checks CAA (RFC 8659) for an on-demand attempt's name, then
 * calls `done` with whether the CA may issue (a failed lookup lets the
 * order go: the CA checks CAA itself). -1 when no check is configured
 * (`done` is not called). */
int px__acme_caa_start(px_acme_manager *m, px__acme_attempt *a,
                       void (*done)(px_acme_manager *m, px__acme_attempt *a, int allowed));
/* dns_hooks.c: removes the records an earlier run left (manager thread). */
void px__acme_dns_start(px_acme_manager *m);
/* dns_hooks.c: stops the provider (records being removed stay noted). */
void px__acme_dns_close(px_acme_manager *m);

/* Wall-clock milliseconds (refusal stamps are compared across threads). */
int64_t px__acme_now_ms(void);

/* manager.c: an attempt for `names` (copied); NULL when out of memory. */
px__acme_attempt *px__acme_attempt_new(px_acme_manager *m, const char *const *names, size_t n,
                                       int group);
/* manager.c: frees the attempt and lets its group start again. */
void px__acme_attempt_free(px__acme_attempt *a);
/* manager.c: serves `cert` for every name and tells the waiting workers. */
void px__acme_publish(px_acme_manager *m, char *const *names, size_t n, px_tls_cert *cert);
/* manager.c: publishes a job's per-name settings (the ask answer) for the
 * proxy (px_acme_manager_site_prefs), before its certificate. */
void px__acme_publish_prefs(px_acme_manager *m, const px_job *job);
/* manager.c: refuses the names until `until_ms` and tells the waiting workers. */
void px__acme_refuse(px_acme_manager *m, char *const *names, size_t n, int64_t until_ms);

/* manager.c: serves the tls-alpn-01 certificate built from `ka` for
 * `name`; `until_ms` 0 for our own challenge, else when a copy read from
 * the store stops being used. 0 or -ENOMEM (logged). */
int px__acme_alpn_put(px_acme_manager *m, const char *name, const char *ka, int64_t until_ms);
/* manager.c: answers http-01 `token` for `name` with `ka`; `until_ms` as
 * above. 0 or -ENOMEM (logged). */
int px__acme_http_put(px_acme_manager *m, const char *token, const char *name, const char *ka,
                      int64_t until_ms);

/* ondemand.c: whether a handshake may queue `name` (valid and normalised);
 * 0, or a negative errno (the reason is logged). Any thread. */
int px__acme_ondemand_check_name(const char *name);
/* ondemand.c: whether another name may wait on issuance
 * (on_demand.max_pending); 0, or -EBUSY (logged). Caller holds m->lock. */
int px__acme_ondemand_check_room(px_acme_manager *m, const char *name);
/* ondemand.c: the on-demand policy for a queued name, then
 * px__acme_obtain(). Takes the attempt. Manager thread. */
void px__acme_ondemand_start(px_acme_manager *m, px__acme_attempt *a);
/* ondemand.c: counts an order against on_demand.rate; -EAGAIN (logged)
 * when an on-demand name would exceed it. `tls: acme` sites always pass. */
int px__acme_ondemand_rate_take(px_acme_manager *m, const px__acme_attempt *a);

#endif
