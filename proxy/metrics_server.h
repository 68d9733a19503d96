/*
 * The metrics listener (admin.metrics): a plain-HTTP endpoint on its own
 * address, never one of the public listeners, answering `GET /metrics`
 * with the Prometheus text format (proxy/metrics.h renders it) and 404 to
 * anything else.
 *
 * It runs its own thread and uv loop, so a scrape (which sums every
 * worker's counters and waits, bounded, for the certificate manager's
 * snapshot) never stalls a worker, and a busy worker never stalls a
 * scrape. HTTP/1.1 minimal: one request per connection (Connection:
 * close), the head bounded (PX_METRICS_REQUEST_MAX), a body ignored,
 * at most PX_METRICS_CONNS_MAX connections, each closed after
 * PX_METRICS_TIMEOUT_MS.
 *
 * Error convention: start returns NULL after logging why.
 */
#ifndef PX_METRICS_SERVER_H
#define PX_METRICS_SERVER_H

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

/** Largest request head read, in bytes; past it the answer is 431. */
#define PX_METRICS_REQUEST_MAX 8192
/** Connections served at once; more are closed at accept. */
#define PX_METRICS_CONNS_MAX 16
/** A connection's whole life: reading the head and writing the answer. */
#define PX_METRICS_TIMEOUT_MS 10000
/** How long a scrape waits for the certificate manager's snapshot. */
#define PX_METRICS_ACME_WAIT_MS 2000
/** Largest answer, in bytes (500 past it). */
#define PX_METRICS_BODY_MAX (64u * 1024 * 1024)

typedef struct px_metrics_server px_metrics_server;

/**
 * Binds `addr` (in the calling thread, so a taken port fails start-up) and
 * starts the thread serving `m` and `acme` (NULL when no site uses ACME),
 * both borrowed until px_metrics_server_stop. NULL after logging an error.
 */
px_metrics_server *px_metrics_server_start(const px_listen_addr *addr, px_metrics *m,
                                           px_acme_manager *acme);

/** Closes the listener and every connection, joins the thread, frees. */
void px_metrics_server_stop(px_metrics_server *s);

#endif
