/*
 * The running server: the loaded configuration, the shared TLS context, and
 * the worker threads. Created once by main, shared read-only by workers.
 */
#ifndef PX_SERVER_H
#define PX_SERVER_H

#include <stdatomic.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "tls/tls.h"

typedef struct px_worker px_worker;

typedef struct px_server {
  const px_config *cfg;
  px_tls_server *tls; /**< NULL when nothing listens for HTTPS */
  int *site_of_cert;  /**< cert index from px_tls_server_lookup -> site index */
  px_worker **workers;
  int nworkers;
  size_t conn_limit_per_worker; /**< max_connections split across workers */
  int https_port;               /**< port of the first HTTPS listener, for redirects */
  px_acme_manager *acme;        /**< NULL when no site uses ACME */
  px_acme_group *groups;        /**< the `tls: acme` sites */
  struct px_metrics *metrics;   /**< the workers' counters; NULL when admin.metrics is off */
  struct px_metrics_server *metrics_server; /**< its listener (proxy/metrics_server.h) */
} px_server;

/**
 * Builds the TLS context from the sites' certificates. Returns 0, or -1 after
 * logging a sentence naming the failing file.
 */
int px_server_init(px_server *srv, const px_config *cfg);

/** Starts the workers; each binds its own SO_REUSEPORT listeners. 0 or -1. */
int px_server_start(px_server *srv);

/** Asks every worker to stop accepting and drain (safe from any thread). */
void px_server_stop(px_server *srv);

/** Waits for every worker thread to finish. */
void px_server_join(px_server *srv);

/** Frees what px_server_init allocated. */
void px_server_dispose(px_server *srv);

#endif
