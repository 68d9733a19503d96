#include "proxy/balancer.h"

#include "proxy/metrics.h"
#include "tls/log.h"

static size_t nupstreams(const px_wgen *wg, size_t site_idx) {
  return wg->cfg->sites[site_idx].nupstreams;
}

static int is_down(const px_upstream_pool *p) {
  return p->down_until && uv_now(p->loop) < p->down_until;
}

px_upstream_pool *px_balancer_pick(px_wgen *wg, size_t site_idx, size_t *up_idx) {
  size_t n = nupstreams(wg, site_idx);
  for (size_t k = 0; k < n; k++) {
    *up_idx = wg->rr[site_idx]++ % n;
    px_upstream_pool *pool = px_wgen_pool(wg, site_idx, *up_idx);
    if (!is_down(pool)) return pool;
  }
  return NULL;
}

int px_balancer_may_retry(const px_wgen *wg, size_t site_idx, int tries) {
  return tries + 1 < (int)nupstreams(wg, site_idx);
}

void px_balancer_failed(px_wgen *wg, size_t site_idx, size_t up_idx) {
  /* A site's only upstream is never marked down (as nginx does): with
   * nowhere better to go, a backend that refused one connect under load is
   * still the best bet for the next request, and marking it down answered
   * every request 502 for a second. */
  if (nupstreams(wg, site_idx) <= 1) return;
  px_upstream_pool *p = px_wgen_pool(wg, site_idx, up_idx);
  unsigned shift = p->failures < 5 ? p->failures : 5;
  uint64_t backoff = 1000u << shift;
  if (backoff > 30000) backoff = 30000;
  p->failures++;
  p->down_until = uv_now(p->loop) + backoff;
  px_metrics_upstream_down(wg->w->metrics, wg->gen->metrics_map, site_idx, up_idx, p->down_until);
  if (p->failures == 1 || px_log_enabled(PX_LOG_DEBUG))
    px_log(PX_LOG_WARN, "upstream %s: marked down for %llu ms", p->addr->text,
           (unsigned long long)backoff);
  /* Pooled connections to it are suspect too. */
  px_upstream_pool_dispose(p);
}

void px_balancer_answered(px_wgen *wg, size_t site_idx, size_t up_idx) {
  px_upstream_pool *p = px_wgen_pool(wg, site_idx, up_idx);
  if (p->failures) px_log(PX_LOG_INFO, "upstream %s: back up", p->addr->text);
  p->failures = 0;
  if (p->down_until)
    px_metrics_upstream_down(wg->w->metrics, wg->gen->metrics_map, site_idx, up_idx, 0);
  p->down_until = 0;
}
