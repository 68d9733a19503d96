/*
 * The running server: the current configuration generation, the worker
 * threads, the certificate manager and the admin socket. Created once by
 * main; `px_server_reload` replaces the generation (docs/reload.md).
 */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include <uv.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/generation.h"

typedef struct px_worker px_worker;
struct px_admin;

typedef struct px_server {
  const px_config *cfg; /**< the configuration it started with (main owns it) */
  px_gen *gen;          /**< the current generation (under reload_lock) */
  unsigned last_gen;    /**< id of the newest generation */
  px_worker **workers;
  int nworkers;
  px_acme_manager *acme;      /**< NULL when no site uses ACME */
  px_acme_group *groups;      /**< the `tls: acme` sites at start */
  struct px_admin *admin;     /**< the admin socket when no manager hosts it */
  uv_mutex_t reload_lock;     /**< one reload at a time (SIGHUP, ctl reload) */
  int stopping;               /**< under reload_lock: no reload after px_server_stop */
  struct px_metrics *metrics; /**< the workers' counters; NULL when admin.metrics is off */
  struct px_metrics_server *metrics_server; /**< its listener (proxy/metrics_server.h) */
} px_server;

/**
 * Builds the first generation (TLS context from the sites' certificates)
 * and the certificate manager. Returns 0, or -1 after logging a sentence
 * naming the failing file.
 */
int px_server_init(px_server *srv, const px_config *cfg);

/** Starts the workers; each binds its own SO_REUSEPORT listeners. Without
 *  a certificate manager, the admin socket (for `ctl reload`) is served on
 *  `loop`, the caller's. 0 or -1. */
int px_server_start(px_server *srv, uv_loop_t *loop);

/**
 * Re-reads the configuration file (any thread; one reload at a time). A
 * file that does not load, or a generation that cannot be built (a
 * certificate file, a new listen address), changes nothing: -1 with every
 * error in `msg`, one per line. Otherwise the new generation serves new
 * connections: 0 with a summary and any warnings (settings that need a
 * restart) in `msg`. Everything is logged too.
 */
int px_server_reload(px_server *srv, char *msg, size_t cap);

/** Asks every worker to stop accepting and drain, and closes the admin
 *  socket when the server hosts it (the thread that started it). */
void px_server_stop(px_server *srv);

/** Waits for every worker thread to finish. */
void px_server_join(px_server *srv);

/** Frees what px_server_init allocated. */
void px_server_dispose(px_server *srv);

#endif
