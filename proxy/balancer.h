/*
 * Which of a site's upstreams gets a request, and passive health: round
 * robin over the upstreams not marked down; one that refused a connection
 * or timed out is skipped for 1 s, doubling to 30 s while it keeps
 * failing, unless it is the site's only upstream. Per worker and per configuration generation (a
 * reload starts afresh), lock-free. Later algorithms (least outstanding, consistent hashing,
 * weights) and queueing belong here.
 */
#ifndef PX_BALANCER_H
#define PX_BALANCER_H

#include <stddef.h>

#include "proxy/worker.h"

/**
 * Picks the next healthy upstream of site `site_idx` of wg->cfg. Returns its
 * pool with *up_idx set, or NULL when every upstream is marked down (the
 * request is answered 502 at once rather than sent to a backend known to
 * be gone).
 */
px_upstream_pool *px_balancer_pick(px_wgen *wg, size_t site_idx, size_t *up_idx);

/** True when a request that tried `tries` + 1 upstreams may try another. */
int px_balancer_may_retry(const px_wgen *wg, size_t site_idx, int tries);

/** The upstream refused or timed out: it is marked down for a while (a
 *  site's only upstream never is) and its pooled connections are closed. */
void px_balancer_failed(px_wgen *wg, size_t site_idx, size_t up_idx);

/** The upstream answered: it is healthy again. */
void px_balancer_answered(px_wgen *wg, size_t site_idx, size_t up_idx);

#endif
