#include "proxy/server.h"

#include <stdlib.h>
#include <string.h>

#include "acme/life/admin.h"
#include "proxy/conn.h"
#include "proxy/exchange.h"
#include "proxy/metrics_server.h"
#include "proxy/session.h"
#include "proxy/worker.h"
#include "tls/log.h"

/* Manager thread: a name is resolved; every worker retries its waiters. */
static void on_name_resolved(void *arg, const char *name) {
  px_server *srv = arg;
  for (int i = 0; i < srv->nworkers; i++)
    if (srv->workers && srv->workers[i]) px_worker_name_resolved(srv->workers[i], name);
}

/* `ctl reload`, on the thread of whichever loop serves the admin socket. */
static int admin_reload(void *arg, char *msg, size_t cap) {
  return px_server_reload(arg, msg, cap);
}

/* Starts the certificate manager when a site uses ACME. */
static int start_acme(px_server *srv, const px_config *cfg) {
  size_t ngroups = 0, ndynamic = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    ngroups += cfg->sites[i].tls_mode == PX_SITE_TLS_ACME;
    ndynamic += cfg->sites[i].tls_mode == PX_SITE_TLS_ACME ||
                cfg->sites[i].tls_mode == PX_SITE_TLS_ON_DEMAND;
  }
  if (ndynamic == 0) return 0;
  srv->groups = calloc(ngroups + 1, sizeof(px_acme_group));
  if (srv->groups == NULL) return -1;
  size_t g = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    if (cfg->sites[i].tls_mode != PX_SITE_TLS_ACME) continue;
    srv->groups[g].names = (const char *const *)cfg->sites[i].hosts;
    srv->groups[g++].nnames = cfg->sites[i].nhosts;
  }
  const px_acme_settings *a = &cfg->acme;
  px_acme_manager_opts o = {0};
  o.storage = cfg->storage;
  o.store.lock_stale_after = a->lock_stale_after;
  o.store.prefix = cfg->storage_prefix;
  o.store.password_file = cfg->storage_password_file;
  o.store.key_file = cfg->storage_key_file;
  o.wait_timeout_ms = cfg->limits.on_demand_timeout_ms;
  o.client.directory_url = a->directory;
  o.client.ca_file = a->ca_file;
  o.client.email = a->email;
  o.client.accept_terms = a->accept_terms;
  o.client.eab_kid = a->eab_kid;
  o.client.eab_hmac_key = a->eab_hmac_key;
  o.client.key_type = (px_acme_key_type)a->key_type;
  for (int i = 0; i < PX_ACME_CHALLENGES_MAX; i++)
    o.client.challenges[i] = (px_acme_challenge_type)a->challenges[i];
  o.dns = &a->dns;
  o.caa_identities = a->caa_identities;
  o.client.profile = a->profile;
  o.client.preferred_chain = a->preferred_chain;
  o.on_demand = cfg->on_demand;
  o.renew_rate = a->renew_rate;
  /* Decided at start: on-demand names are renewed when some site was
   * `tls: on_demand` then (docs/reload.md). */
  o.on_demand_enabled = ndynamic > ngroups;
  const px_control_settings *ctl = &cfg->control;
  o.admin_socket = ctl->admin_socket; /* NULL when admin.socket is off */
  o.events.command = (const char *const *)ctl->events_command;
  o.events.webhook = ctl->events_webhook;
  o.events.command_timeout_ms = ctl->events_timeout_ms;
  o.events.webhook_timeout_ms = ctl->events_timeout_ms;
  o.groups = srv->groups;
  o.ngroups = ngroups;
  o.on_resolved = on_name_resolved;
  o.reload = admin_reload;
  o.arg = srv;
  char err[256];
  /* Built now, started by px_server_start once the workers exist: the
   * manager thread's on_name_resolved reads srv->workers. */
  srv->acme = px_acme_manager_new(&o, err, sizeof(err));
  if (srv->acme == NULL) {
    px_log(PX_LOG_ERROR, "acme: %s", err);
    return -1;
  }
  return 0;
}

int px_server_init(px_server *srv, const px_config *cfg) {
  memset(srv, 0, sizeof(*srv));
  uv_mutex_init(&srv->reload_lock);
  srv->cfg = cfg;
  srv->nworkers = cfg->workers > 0 ? cfg->workers : 1;
  /* The manager first: the generation's TLS context asks it for names. */
  if (cfg->nhttps > 0 && start_acme(srv, cfg) != 0) return -1;
  /* The registry before the generation, which takes its slots. Sized from
   * this configuration for the life of the process (docs/metrics.md). */
  if (cfg->metrics.text && (srv->metrics = px_metrics_new(cfg, srv->nworkers)) == NULL) {
    px_log(PX_LOG_ERROR, "metrics: out of memory");
    return -1;
  }
  char err[768];
  srv->gen = px_gen_new(cfg, NULL, srv->acme, ++srv->last_gen, err, sizeof(err));
  if (srv->gen == NULL) {
    px_log(PX_LOG_ERROR, "%s", err);
    return -1;
  }
  if (px_gen_set_metrics(srv->gen, srv->metrics) != 0) {
    px_log(PX_LOG_ERROR, "metrics: out of memory");
    return -1;
  }
  px_metrics_map_activate(srv->metrics, srv->gen->metrics_map);
  px_gen_served(srv->gen);
  return 0;
}

/* The layers above the worker's loop, wired here so that the worker names
 * none of them (docs/architecture.md). */
static const px_worker_hooks worker_hooks = {
    .accept = px_conn_accept,
    .flush_dirty = px_conn_flush_dirty,
    .flush_deferred = px_exchange_flush_deferred,
    .check_rates = px_conn_check_rates,
    .drain = px_conn_drain_all,
    .close_all = px_conn_close_all,
    .retry_handshakes = px_conn_retry_handshakes,
    .start_session = px_session_start,
};

/* Without a certificate manager (which hosts the admin socket for its own
 * commands), the server hosts it for `ctl reload` and `ctl reopen` on the
 * caller's loop. */
static int start_admin(px_server *srv, uv_loop_t *loop) {
  const char *path = srv->cfg->control.admin_socket;
  if (srv->acme || path == NULL || loop == NULL) return 0;
  px_admin_ops ops = {.ctx = srv, .reload = admin_reload, .reopen = px_admin_reopen_logs};
  px_admin_options ao = {.path = path};
  char err[512];
  srv->admin = px_admin_start(loop, &ao, &ops, err, sizeof(err));
  if (srv->admin == NULL) {
    px_log(PX_LOG_ERROR, "%s", err);
    return -1;
  }
  px_log(PX_LOG_INFO, "admin socket listening at %s (portico ctl)", path);
  return 0;
}

int px_server_start(px_server *srv, uv_loop_t *loop) {
  srv->workers = calloc((size_t)srv->nworkers, sizeof(px_worker *));
  if (srv->workers == NULL) return -1;
  px_worker_env env = {
      .gen = srv->gen, .acme = srv->acme, .nworkers = srv->nworkers, .hooks = &worker_hooks};
  /* The metrics listener is bound before the public ones, so it answers
   * once portico is seen listening (the registry exists: zeros until the
   * workers count). */
  if (srv->metrics && (srv->metrics_server = px_metrics_server_start(
                           &srv->cfg->metrics, srv->metrics, srv->acme)) == NULL)
    return -1;
  for (int i = 0; i < srv->nworkers; i++) {
    srv->workers[i] = px_worker_new(&env, i);
    if (srv->workers[i]) srv->workers[i]->metrics = px_metrics_worker_of(srv->metrics, i);
    if (srv->workers[i] == NULL || px_worker_start(srv->workers[i]) != 0) {
      /* Stop the ones already running. */
      for (int j = 0; j <= i; j++)
        if (srv->workers[j]) px_worker_stop(srv->workers[j]);
      return -1;
    }
  }
  if (srv->acme && px_acme_manager_start(srv->acme) != 0) {
    const char *why = px_acme_manager_start_error(srv->acme);
    if (why)
      px_log(PX_LOG_ERROR, "acme: %s; refusing to start", why);
    else
      px_log(PX_LOG_ERROR, "acme: cannot start the certificate manager's thread");
    px_server_stop(srv);
    return -1;
  }
  if (start_admin(srv, loop) != 0) {
    px_server_stop(srv);
    return -1;
  }
  return 0;
}

void px_server_stop(px_server *srv) {
  uv_mutex_lock(&srv->reload_lock);
  srv->stopping = 1; /* no reload hands a worker anything after this */
  uv_mutex_unlock(&srv->reload_lock);
  if (srv->admin) px_admin_close(srv->admin);
  srv->admin = NULL;
  for (int i = 0; i < srv->nworkers; i++)
    if (srv->workers && srv->workers[i]) px_worker_stop(srv->workers[i]);
}

void px_server_join(px_server *srv) {
  /* Workers first (a draining handshake may still wait on a certificate),
   * then the manager, whose on_name_resolved reaches the workers, and only
   * then the workers' memory. The metrics listener, which reads both, stops
   * first. */
  px_metrics_server_stop(srv->metrics_server);
  srv->metrics_server = NULL;
  for (int i = 0; i < srv->nworkers; i++)
    if (srv->workers && srv->workers[i]) px_worker_join(srv->workers[i]);
  px_acme_manager_stop(srv->acme);
  for (int i = 0; i < srv->nworkers; i++)
    if (srv->workers && srv->workers[i]) px_worker_join_free(srv->workers[i]);
  free(srv->workers);
  srv->workers = NULL;
}

void px_server_dispose(px_server *srv) {
  /* The generation before the manager: its TLS context calls the manager. */
  px_gen_unref(srv->gen);
  px_acme_manager_free(srv->acme);
  px_metrics_free(srv->metrics);
  free(srv->groups);
  uv_mutex_destroy(&srv->reload_lock);
  memset(srv, 0, sizeof(*srv));
}
