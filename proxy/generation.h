/*
 * A configuration generation: one loaded px_config with what is built from
 * it for every worker to share (the TLS context with its certificates from
 * files, the certificate index -> site table, the redirect port). The
 * server starts with generation 1; each successful reload makes the next
 * one (docs/reload.md).
 *
 * Reference counted across threads: the server holds the current one, and
 * each worker's view of it (px_wgen, proxy/worker.h) holds one more. A
 * generation is freed when its last reference goes, so connections accepted
 * under it finish on it after a reload.
 */
#ifndef PX_GENERATION_H
#define PX_GENERATION_H

#include <stdatomic.h>

#include "acme/manager.h"
#include "proxy/config.h"
#include "proxy/metrics.h"
#include "tls/tls.h"

typedef struct px_gen {
  atomic_uint refs;
  unsigned id;           /**< 1 at start, +1 per applied reload */
  const px_config *cfg;  /**< read-only for its whole life */
  px_config *owned_cfg;  /**< freed with the generation; NULL when the caller owns cfg */
  px_tls_server *tls;    /**< NULL when nothing listens for HTTPS */
  int *site_of_cert;     /**< cert index from px_tls_server_lookup -> site index */
  int https_port;        /**< port of the first HTTPS listener, for redirects */
  px_acme_manager *acme; /**< the process's manager (NULL without ACME); not owned */
  int served;            /**< it became current: px_gen_served, before the workers get it */
  /** Its sites' and upstreams' slots in the metrics registry (NULL when
   *  metrics are off): px_gen_set_metrics, before the workers get it. */
  px_metrics_map *metrics_map;
} px_gen;

/**
 * Builds a generation from `cfg` (one reference, the caller's): loads the
 * certificate files and builds the TLS context. `owned` is `cfg` when the
 * generation frees it, else NULL. NULL with a sentence in `err` naming the
 * failing file; `owned` is then still the caller's.
 */
px_gen *px_gen_new(const px_config *cfg, px_config *owned, px_acme_manager *acme, unsigned id,
                   char *err, size_t errlen);

/**
 * Gives `g`'s sites and upstreams their slots in the metrics registry `m`
 * (nothing when `m` is NULL), so their counts land under their own labels
 * whatever their indexes in this generation (docs/metrics.md). Run where
 * nothing can fail afterwards: a slot is never taken back. One caller at a
 * time (start, then the reload lock). 0, or -1 when out of memory.
 */
int px_gen_set_metrics(px_gen *g, px_metrics *m);

/** Marks `g` as served (it is becoming current), for px_gen_alive and
 *  the log line when it is freed. */
void px_gen_served(px_gen *g);

/** Takes one more reference (any thread); returns `g`. */
px_gen *px_gen_ref(px_gen *g);

/** Drops one reference (any thread); the last frees the generation. */
void px_gen_unref(px_gen *g);

/** How many generations that became current are not freed yet (any
 *  thread): the current one plus those open connections still hold. */
unsigned px_gen_alive(void);

/** The port of a listen address (host order). */
int px_listen_addr_port(const px_listen_addr *a);

/** True when two listen addresses are the same address and port. */
int px_listen_addr_equal(const px_listen_addr *a, const px_listen_addr *b);

#endif
