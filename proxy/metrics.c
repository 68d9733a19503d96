/*
 * Counters for monitoring (proxy/metrics.h): the registry of the workers'
 * counters, the calls the request path makes, and the scrape that sums
 * them and formats every family (docs/metrics.md lists them).
 */
#include "proxy/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "acme/life/metrics.h"
#include "proxy/metrics_slots.h"
#include "tls/log.h"

static const double duration_bounds[PX_METRICS_DURATION_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

struct px_metrics {
  int nworkers;
  px_metrics_worker *workers;   /* nworkers blocks, each on its own cache lines */
  px_mslots *slots;             /* labels of the site and upstream slots */
  unsigned char *up_current;    /* per upstream slot: in the current generation */
  int warned_sites, warned_ups; /* the cap was logged (writer only) */
};

struct px_metrics_map {
  size_t nsites;
  uint32_t *site;  /* slot of each site, PX_MSLOT_NONE past the cap */
  size_t *up_base; /* index in `up` of each site's first upstream; nsites + 1 */
  uint32_t *up;    /* slot of each upstream, site by site */
};

/* The cap for a count at start (docs/metrics.md). */
static size_t slot_cap(size_t at_start, size_t min) {
  return at_start * PX_METRICS_SLOT_GROWTH > min ? at_start * PX_METRICS_SLOT_GROWTH : min;
}

px_metrics *px_metrics_new(const px_config *cfg, int nworkers) {
  px_metrics *m = calloc(1, sizeof(*m));
  if (m == NULL) return NULL;
  size_t nups = 0;
  for (size_t s = 0; s < cfg->nsites; s++)
    nups += cfg->sites[s].nupstreams;
  size_t site_cap = slot_cap(cfg->nsites, PX_METRICS_MIN_SITE_SLOTS);
  size_t up_cap = slot_cap(nups, PX_METRICS_MIN_UPSTREAM_SLOTS);
  m->nworkers = nworkers;
  m->slots = px_mslots_new(site_cap, up_cap);
  m->up_current = calloc(up_cap, 1);
  m->workers = aligned_alloc(64, (size_t)nworkers * sizeof(px_metrics_worker));
  if (m->slots == NULL || m->up_current == NULL || m->workers == NULL) {
    px_metrics_free(m);
    return NULL;
  }
  memset(m->workers, 0, (size_t)nworkers * sizeof(px_metrics_worker));
  for (int i = 0; i < nworkers; i++) {
    /* Large zeroed blocks: pages a slot never touches cost no memory. */
    px_metrics_worker *w = &m->workers[i];
    w->sites = calloc(site_cap, sizeof(px_metrics_site));
    w->ups = calloc(up_cap, sizeof(px_metrics_upstream));
    if (w->sites == NULL || w->ups == NULL) {
      px_metrics_free(m);
      return NULL;
    }
  }
  return m;
}

px_metrics_worker *px_metrics_worker_of(px_metrics *m, int id) {
  return m && id >= 0 && id < m->nworkers ? &m->workers[id] : NULL;
}

void px_metrics_free(px_metrics *m) {
  if (m == NULL) return;
  for (int i = 0; m->workers && i < m->nworkers; i++) {
    free(m->workers[i].sites);
    free(m->workers[i].ups);
  }
  free(m->workers);
  px_mslots_free(m->slots);
  free(m->up_current);
  free(m);
}

/* ---- a generation's slots ------------------------------------------------ */

static const char *site_name(const px_site *site) { return site->nhosts ? site->hosts[0] : ""; }

/* The slot of a series, warning once when the cap leaves it out. */
static void warn_full(int *warned, const char *what, size_t cap, const char *site,
                      const char *addr) {
  if (*warned) return;
  *warned = 1;
  px_log(PX_LOG_WARN,
         "metrics: the %zu %s series this process holds are all taken (%d x the count at start, "
         "at least %d); site \"%s\"%s%s and any later new %s are not counted until a restart",
         cap, what, PX_METRICS_SLOT_GROWTH,
         addr ? PX_METRICS_MIN_UPSTREAM_SLOTS : PX_METRICS_MIN_SITE_SLOTS, site,
         addr ? " upstream " : "", addr ? addr : "", what);
}

void px_metrics_map_free(px_metrics_map *map) {
  if (map == NULL) return;
  free(map->site);
  free(map->up_base);
  free(map->up);
  free(map);
}

int px_metrics_map_new(px_metrics *m, const px_config *cfg, px_metrics_map **out) {
  *out = NULL;
  if (m == NULL) return 0;
  px_metrics_map *map = calloc(1, sizeof(*map));
  if (map == NULL) return -1;
  size_t nups = 0;
  for (size_t s = 0; s < cfg->nsites; s++)
    nups += cfg->sites[s].nupstreams;
  map->nsites = cfg->nsites;
  map->site = calloc(cfg->nsites ? cfg->nsites : 1, sizeof(uint32_t));
  map->up_base = calloc(cfg->nsites + 1, sizeof(size_t));
  map->up = calloc(nups ? nups : 1, sizeof(uint32_t));
  if (map->site == NULL || map->up_base == NULL || map->up == NULL) goto oom;
  size_t k = 0;
  for (size_t s = 0; s < cfg->nsites; s++) {
    const px_site *site = &cfg->sites[s];
    if (px_mslots_site(m->slots, site_name(site), &map->site[s]) != 0) goto oom;
    if (map->site[s] == PX_MSLOT_NONE)
      warn_full(&m->warned_sites, "site", px_mslots_site_cap(m->slots), site_name(site), NULL);
    map->up_base[s] = k;
    for (size_t u = 0; u < site->nupstreams; u++, k++) {
      if (px_mslots_upstream(m->slots, map->site[s], site->upstreams[u].text, &map->up[k]) != 0)
        goto oom;
      if (map->up[k] == PX_MSLOT_NONE && map->site[s] != PX_MSLOT_NONE)
        warn_full(&m->warned_ups, "upstream", px_mslots_upstream_cap(m->slots), site_name(site),
                  site->upstreams[u].text);
    }
  }
  map->up_base[cfg->nsites] = k;
  *out = map;
  return 0;
oom:
  px_metrics_map_free(map);
  return -1;
}

void px_metrics_map_activate(px_metrics *m, const px_metrics_map *map) {
  if (m == NULL || map == NULL) return;
  /* The map's slots are marked 2 first, then every slot becomes 1 or 0:
   * a scrape in between sees every current upstream (non-zero) and at
   * worst a removed one once more. Relaxed: the scrape reads a flag, not
   * memory it guards. */
  size_t n = px_mslots_nupstreams(m->slots), nmap = map->up_base[map->nsites];
  for (size_t k = 0; k < nmap; k++)
    if (map->up[k] != PX_MSLOT_NONE)
      __atomic_store_n(&m->up_current[map->up[k]], 2, __ATOMIC_RELAXED);
  for (size_t i = 0; i < n; i++)
    __atomic_store_n(&m->up_current[i], m->up_current[i] == 2, __ATOMIC_RELAXED);
}

/* ---- the request path -------------------------------------------------- */

static int status_class(int status) { return status >= 100 && status <= 599 ? status / 100 : 0; }

/* The counters of upstream `up` of `site` (indexes in the map's
 * generation), or NULL for a series past the cap. */
static px_metrics_upstream *upstream_of(px_metrics_worker *w, const px_metrics_map *map,
                                        size_t site, size_t up) {
  if (site >= map->nsites || map->up_base[site] + up >= map->up_base[site + 1]) return NULL;
  uint32_t slot = map->up[map->up_base[site] + up];
  return slot == PX_MSLOT_NONE ? NULL : &w->ups[slot];
}

void px_metrics_request(px_metrics_worker *w, const px_metrics_map *map, size_t site, size_t up,
                        int h2, int status, uint64_t bytes_in, uint64_t bytes_out,
                        uint64_t start_ns) {
  if (w == NULL || map == NULL || site >= map->nsites) return;
  int cls = status_class(status);
  uint32_t slot = map->site[site];
  if (slot != PX_MSLOT_NONE) {
    px_metrics_site *s = &w->sites[slot];
    px_metric_add(&s->requests[h2 ? 1 : 0][cls], 1);
    uint64_t us = start_ns ? (uv_hrtime() - start_ns) / 1000 : 0;
    size_t b = 0;
    while (b < PX_METRICS_DURATION_BUCKETS && (double)us > duration_bounds[b] * 1e6)
      b++;
    px_metric_add(&s->duration[b], 1);
    px_metric_add(&s->duration_us, us);
    px_metric_add(&s->bytes_in, bytes_in);
    px_metric_add(&s->bytes_out, bytes_out);
  }
  px_metrics_upstream *u = upstream_of(w, map, site, up);
  if (u) px_metric_add(&u->requests[cls], 1);
}

void px_metrics_upstream_count(px_metrics_worker *w, const px_metrics_map *map, size_t site,
                               size_t up, px_metrics_upstream_event what) {
  px_metrics_upstream *u = w && map ? upstream_of(w, map, site, up) : NULL;
  if (u) px_metric_add(&u->events[what], 1);
}

void px_metrics_upstream_down(px_metrics_worker *w, const px_metrics_map *map, size_t site,
                              size_t up, uint64_t until_ms) {
  px_metrics_upstream *u = w && map ? upstream_of(w, map, site, up) : NULL;
  if (u) __atomic_store_n(&u->down_until_ms, until_ms, __ATOMIC_RELAXED);
}

/* ---- the scrape ---------------------------------------------------------- */

static const char *const class_names[PX_METRICS_CLASSES] = {"other", "1xx", "2xx",
                                                            "3xx",   "4xx", "5xx"};
static const char *const proto_names[PX_METRICS_PROTOS] = {"h1", "h2"};

/* Sums the uint64_t at byte offset `off` of a site, an upstream or a
 * worker block (each made of uint64_t fields up to the ones summed) over
 * every worker. */
static uint64_t sum_at(const px_metrics *m,
                       const uint64_t *(*base)(const px_metrics_worker *, size_t), size_t idx,
                       size_t off) {
  uint64_t t = 0;
  for (int i = 0; i < m->nworkers; i++)
    t += px_metric_get(base(&m->workers[i], idx) + off / sizeof(uint64_t));
  return t;
}

static const uint64_t *site_base(const px_metrics_worker *w, size_t i) {
  return (const uint64_t *)&w->sites[i];
}
static const uint64_t *up_base(const px_metrics_worker *w, size_t i) {
  return (const uint64_t *)&w->ups[i];
}
static const uint64_t *worker_base(const px_metrics_worker *w, size_t i) {
  (void)i;
  return (const uint64_t *)w;
}

#define SITE(field) offsetof(px_metrics_site, field)
#define UP(field) offsetof(px_metrics_upstream, field)
#define WORKER(field) offsetof(px_metrics_worker, field)

/* Every slot ever given, current or not: a removed site's counters stay
 * (counters never go back while the process lives). */
static void render_sites(px_metrics *m, px_mtext *t) {
  size_t nsites = px_mslots_nsites(m->slots);
  px_mtext_family(t, "portico_requests_total", "counter",
                  "Requests proxied to a site, by client protocol and response status class "
                  "(a client that left before the answer counts as 4xx: 499).");
  for (size_t s = 0; s < nsites; s++)
    for (int p = 0; p < PX_METRICS_PROTOS; p++)
      for (int c = 0; c < PX_METRICS_CLASSES; c++) {
        const char *l[] = {"site",     px_mslots_site_label(m->slots, s),
                           "protocol", proto_names[p],
                           "code",     class_names[c]};
        px_mtext_sample_u64(t, "portico_requests_total", "", l, 3,
                            sum_at(m, site_base, s, SITE(requests[p][c])));
      }
  px_mtext_family(t, "portico_request_duration_seconds", "histogram",
                  "Time from a proxied request's start to its end.");
  for (size_t s = 0; s < nsites; s++) {
    uint64_t b[PX_METRICS_DURATION_BUCKETS + 1];
    for (size_t i = 0; i <= PX_METRICS_DURATION_BUCKETS; i++)
      b[i] = sum_at(m, site_base, s, SITE(duration[i]));
    const char *l[] = {"site", px_mslots_site_label(m->slots, s)};
    px_mtext_histogram(t, "portico_request_duration_seconds", l, 1, duration_bounds,
                       PX_METRICS_DURATION_BUCKETS, b,
                       (double)sum_at(m, site_base, s, SITE(duration_us)) / 1e6);
  }
  static const struct {
    const char *name, *help;
    size_t off;
  } bytes[] = {
      {"portico_received_bytes_total",
       "Request body bytes received from clients (WebSocket: client to upstream).", SITE(bytes_in)},
      {"portico_sent_bytes_total",
       "Response body bytes passed to clients (WebSocket: upstream to client).", SITE(bytes_out)}};
  for (size_t k = 0; k < 2; k++) {
    px_mtext_family(t, bytes[k].name, "counter", bytes[k].help);
    for (size_t s = 0; s < nsites; s++) {
      const char *l[] = {"site", px_mslots_site_label(m->slots, s)};
      px_mtext_sample_u64(t, bytes[k].name, "", l, 1, sum_at(m, site_base, s, bytes[k].off));
    }
  }
}

/* Counters of every slot ever given; the health gauge only for the
 * upstreams of the current generation. */
static void render_upstreams(px_metrics *m, px_mtext *t) {
  size_t nups = px_mslots_nupstreams(m->slots);
  const char *site, *addr;
  uint64_t now_ms = uv_hrtime() / 1000000;
  static const char *const event_names[] = {
      "portico_upstream_connect_failures_total", "portico_upstream_connect_timeouts_total",
      "portico_upstream_read_timeouts_total", "portico_upstream_retries_total"};
  static const char *const event_help[] = {
      "Connections to the upstream that failed (refused, unreachable, no local resources).",
      "Connections to the upstream that timed out (timeouts.upstream_connect).",
      "Responses the upstream did not send in time (timeouts.upstream_read).",
      "Requests tried again after a failure on this upstream."};
  px_mtext_family(t, "portico_upstream_requests_total", "counter",
                  "Requests that ended on this upstream, by response status class.");
  for (size_t u = 0; u < nups; u++) {
    px_mslots_upstream_labels(m->slots, u, &site, &addr);
    for (int c = 0; c < PX_METRICS_CLASSES; c++) {
      const char *l[] = {"site", site, "upstream", addr, "code", class_names[c]};
      px_mtext_sample_u64(t, "portico_upstream_requests_total", "", l, 3,
                          sum_at(m, up_base, u, UP(requests[c])));
    }
  }
  for (int e = 0; e < PX_METRICS_UP_NEVENTS; e++) {
    px_mtext_family(t, event_names[e], "counter", event_help[e]);
    for (size_t u = 0; u < nups; u++) {
      px_mslots_upstream_labels(m->slots, u, &site, &addr);
      const char *l[] = {"site", site, "upstream", addr};
      px_mtext_sample_u64(t, event_names[e], "", l, 2, sum_at(m, up_base, u, UP(events[e])));
    }
  }
  px_mtext_family(t, "portico_upstream_healthy", "gauge",
                  "1 while no worker has the upstream marked down (passive health), else 0.");
  for (size_t u = 0; u < nups; u++) {
    if (!__atomic_load_n(&m->up_current[u], __ATOMIC_RELAXED)) continue;
    int up = 1;
    for (int i = 0; i < m->nworkers; i++)
      if (px_metric_get(&m->workers[i].ups[u].down_until_ms) > now_ms) up = 0;
    px_mslots_upstream_labels(m->slots, u, &site, &addr);
    const char *l[] = {"site", site, "upstream", addr};
    px_mtext_sample_u64(t, "portico_upstream_healthy", "", l, 2, (uint64_t)up);
  }
}

static void render_connections(px_metrics *m, px_mtext *t) {
  static const char *const conn_names[PX_METRICS_NCONN] = {"h1", "h2", "websocket"};
  px_mtext_family(t, "portico_connections_active", "gauge",
                  "Client connections open, by protocol (a WebSocket tunnel's connection is "
                  "also counted under h1; TLS connections count once their handshake is done).");
  for (int k = 0; k < PX_METRICS_NCONN; k++) {
    uint64_t o = sum_at(m, worker_base, 0, WORKER(conn_opened[k]));
    uint64_t c = sum_at(m, worker_base, 0, WORKER(conn_closed[k]));
    const char *l[] = {"protocol", conn_names[k]};
    px_mtext_sample_u64(t, "portico_connections_active", "", l, 1, o > c ? o - c : 0);
  }
  px_mtext_family(t, "portico_connections_total", "counter",
                  "Client connections opened, by protocol.");
  for (int k = 0; k < PX_METRICS_NCONN; k++) {
    const char *l[] = {"protocol", conn_names[k]};
    px_mtext_sample_u64(t, "portico_connections_total", "", l, 1,
                        sum_at(m, worker_base, 0, WORKER(conn_opened[k])));
  }
  px_mtext_family(t, "portico_local_responses_total", "counter",
                  "Requests portico answered itself (bad requests, 404, 421, redirects, "
                  "refusals before an upstream was chosen).");
  for (int p = 0; p < PX_METRICS_PROTOS; p++)
    for (int c = 0; c < PX_METRICS_CLASSES; c++) {
      const char *l[] = {"protocol", proto_names[p], "code", class_names[c]};
      px_mtext_sample_u64(t, "portico_local_responses_total", "", l, 2,
                          sum_at(m, worker_base, 0, WORKER(local[p][c])));
    }
  px_mtext_family(t, "portico_tls_handshakes_total", "counter",
                  "TLS handshakes completed: full, or resumed with a session ticket.");
  const char *lf[] = {"type", "full"}, *lr[] = {"type", "resumed"};
  px_mtext_sample_u64(t, "portico_tls_handshakes_total", "", lf, 1,
                      sum_at(m, worker_base, 0, WORKER(tls_full)));
  px_mtext_sample_u64(t, "portico_tls_handshakes_total", "", lr, 1,
                      sum_at(m, worker_base, 0, WORKER(tls_resumed)));
  static const char *const reasons[PX_METRICS_TLS_NFAILURES] = {
      "unknown_name", "protocol", "closed", "timeout", "certificate_wait_timeout"};
  px_mtext_family(t, "portico_tls_handshake_failures_total", "counter",
                  "TLS handshakes that failed, by reason.");
  for (int r = 0; r < PX_METRICS_TLS_NFAILURES; r++) {
    const char *l[] = {"reason", reasons[r]};
    px_mtext_sample_u64(t, "portico_tls_handshake_failures_total", "", l, 1,
                        sum_at(m, worker_base, 0, WORKER(tls_failed[r])));
  }
}

static void acme_histogram(px_mtext *t, const char *name, const char *help,
                           const px_acme_histogram *h, const double *bounds, size_t n) {
  px_mtext_family(t, name, "histogram", help);
  px_mtext_histogram(t, name, NULL, 0, bounds, n, h->bucket, h->sum);
}

static void render_acme(px_acme_manager *acme, uint64_t wait_ms, px_mtext *t) {
  px_acme_metrics_snapshot s;
  if (px_acme_manager_metrics(acme, &s, wait_ms) != 0) {
    t->failed = 1;
    return;
  }
  px_mtext_family(t, "portico_acme_orders_total", "counter", "ACME order attempts, by result.");
  for (int r = 0; r < PX_ACME_ORDER_NRESULTS; r++) {
    const char *l[] = {"result", px_acme_order_result_name((px_acme_order_result)r)};
    px_mtext_sample_u64(t, "portico_acme_orders_total", "", l, 1, s.orders[r]);
  }
  px_mtext_family(t, "portico_acme_on_demand_refusals_total", "counter",
                  "Handshake names given no certificate by the on-demand policy, by reason.");
  for (int r = 0; r < PX_ACME_REFUSED_NREASONS; r++) {
    const char *l[] = {"reason", px_acme_refusal_name((px_acme_refusal)r)};
    px_mtext_sample_u64(t, "portico_acme_on_demand_refusals_total", "", l, 1, s.refusals[r]);
  }
  acme_histogram(t, "portico_acme_on_demand_wait_seconds",
                 "How long a handshake's name waited for its certificate to be obtained or "
                 "refused.",
                 &s.waits, px_acme_wait_bounds, PX_ACME_WAIT_BUCKETS);
  px_mtext_family(t, "portico_acme_renewals_started_total", "counter",
                  "Renewals the scheduler started (operator renewals excluded).");
  px_mtext_sample_u64(t, "portico_acme_renewals_started_total", "", NULL, 0, s.renewals_started);
  acme_histogram(t, "portico_acme_renewal_lateness_seconds",
                 "How long after its planned time a renewal started (acme.renew_rate's backlog).",
                 &s.lateness, px_acme_lateness_bounds, PX_ACME_LATENESS_BUCKETS);
  px_mtext_family(t, "portico_acme_manager_up", "gauge",
                  "1 when the certificate manager answered this scrape; the certificate "
                  "metrics below are absent otherwise.");
  px_mtext_sample_u64(t, "portico_acme_manager_up", "", NULL, 0, (uint64_t)s.have_jobs);
  if (!s.have_jobs) {
    px_acme_metrics_snapshot_dispose(&s);
    return;
  }
  px_mtext_family(t, "portico_acme_certificates", "gauge", "Certificates by lifecycle state.");
  for (int k = 0; k < PX_ACME_METRIC_STATES; k++) {
    const char *l[] = {"state", px_acme_metric_state_name(k)};
    px_mtext_sample_u64(t, "portico_acme_certificates", "", l, 1, s.states[k]);
  }
  px_mtext_family(t, "portico_acme_renewals_scheduled", "gauge",
                  "Certificates with a renewal planned.");
  px_mtext_sample_u64(t, "portico_acme_renewals_scheduled", "", NULL, 0, s.renewals_scheduled);
  px_mtext_family(t, "portico_acme_certificate_expiry_seconds", "gauge",
                  "Seconds until the certificate expires (negative once expired), for the first "
                  "1000 certificates, by their first name.");
  for (size_t i = 0; i < s.ncerts; i++) {
    if (s.certs[i].not_after <= 0) continue;
    const char *l[] = {"name", s.certs[i].name};
    px_mtext_sample_f64(t, "portico_acme_certificate_expiry_seconds", "", l, 1,
                        (double)(s.certs[i].not_after - s.now));
  }
  acme_histogram(t, "portico_acme_certificate_expiry_overflow_seconds",
                 "Seconds until expiry of the certificates past the first 1000.", &s.expiry_rest,
                 px_acme_expiry_bounds, PX_ACME_EXPIRY_BUCKETS);
  static const char *const outcomes[] = {"emitted", "suppressed", "dropped"};
  px_mtext_family(t, "portico_acme_events_total", "counter",
                  "Certificate events (events.command, events.webhook): emitted, suppressed by "
                  "the per-name rate limit, dropped for a full queue.");
  for (int ty = 0; ty < PX_EVENT_NTYPES; ty++)
    for (int o = 0; o < 3; o++) {
      const uint64_t *v = o == 0   ? s.events.emitted
                          : o == 1 ? s.events.suppressed
                                   : s.events.dropped;
      const char *l[] = {"type", px_event_type_name((px_event_type)ty), "outcome", outcomes[o]};
      px_mtext_sample_u64(t, "portico_acme_events_total", "", l, 2, v[ty]);
    }
  px_mtext_family(t, "portico_acme_event_delivery_failures_total", "counter",
                  "Event deliveries that failed: the command, or the webhook after its retries.");
  const char *lc[] = {"via", "command"}, *lw[] = {"via", "webhook"};
  px_mtext_sample_u64(t, "portico_acme_event_delivery_failures_total", "", lc, 1,
                      s.events.command_failed);
  px_mtext_sample_u64(t, "portico_acme_event_delivery_failures_total", "", lw, 1,
                      s.events.webhook_failed);
  px_acme_metrics_snapshot_dispose(&s);
}

void px_metrics_render(px_metrics *m, px_acme_manager *acme, uint64_t acme_wait_ms, px_mtext *out) {
  render_sites(m, out);
  render_upstreams(m, out);
  render_connections(m, out);
  if (acme) render_acme(acme, acme_wait_ms, out);
}
