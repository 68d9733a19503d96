#include "proxy/generation.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/log.h"

/* Generations served and not yet freed. */
static atomic_uint alive;

unsigned px_gen_alive(void) { return atomic_load(&alive); }

void px_gen_served(px_gen *g) {
  g->served = 1;
  atomic_fetch_add(&alive, 1);
}

/* ALPN offered on HTTPS listeners, in preference order (RFC 7301). */
static const char *const alpn_protocols[] = {"h2", "http/1.1"};

int px_listen_addr_port(const px_listen_addr *a) {
  if (a->ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int px_listen_addr_equal(const px_listen_addr *a, const px_listen_addr *b) {
  if (a->ss.ss_family != b->ss.ss_family || px_listen_addr_port(a) != px_listen_addr_port(b))
    return 0;
  if (a->ss.ss_family == AF_INET6)
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                  &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, sizeof(struct in6_addr)) == 0;
  return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
         ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
}

/* `spec` is the matched site's certificate: only a `tls: on_demand` site
 * lets a name start its own order (wildcards and "*" included). */
static int dyn_lookup(void *arg, const char *name, size_t spec, px_tls_cert **out) {
  px_gen *g = arg;
  const px_site *site = &g->cfg->sites[g->site_of_cert[spec]];
  if (g->acme == NULL) return -1;
  return px_acme_manager_lookup(g->acme, name, site->tls_mode == PX_SITE_TLS_ON_DEMAND, out);
}

static int dyn_challenge(void *arg, const char *name, px_tls_cert **out) {
  px_gen *g = arg;
  return g->acme ? px_acme_manager_challenge_lookup(g->acme, name, out) : -1;
}

static void gen_free(px_gen *g) {
  if (g->served) { /* one that a failed reload built is not news */
    atomic_fetch_sub(&alive, 1);
    px_log(PX_LOG_INFO, "configuration generation %u freed: no connection uses it any more", g->id);
  }
  if (g->tls) px_tls_server_free(g->tls);
  free(g->site_of_cert);
  px_metrics_map_free(g->metrics_map);
  if (g->owned_cfg) px_config_free(g->owned_cfg);
  free(g);
}

/* The TLS context from the sites' certificates. 0, or -1 with `err`. */
static int build_tls(px_gen *g, char *err, size_t errlen) {
  const px_config *cfg = g->cfg;
  size_t ncerts = 0;
  for (size_t i = 0; i < cfg->nsites; i++)
    ncerts += cfg->sites[i].tls_mode != PX_SITE_TLS_NONE;
  px_tls_cert_spec *specs = calloc(ncerts ? ncerts : 1, sizeof(*specs));
  g->site_of_cert = calloc(ncerts ? ncerts : 1, sizeof(int));
  if (specs == NULL || g->site_of_cert == NULL) {
    free(specs);
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  size_t k = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    const px_site *s = &cfg->sites[i];
    if (s->tls_mode == PX_SITE_TLS_NONE) continue;
    specs[k].cert_file = s->cert_file;
    specs[k].key_file = s->key_file;
    specs[k].dynamic = s->tls_mode != PX_SITE_TLS_FILES;
    specs[k].hosts = (const char *const *)s->hosts;
    specs[k].nhosts = s->nhosts;
    g->site_of_cert[k] = (int)i;
    k++;
  }
  px_tls_server_opts opts = {
      .alpn = alpn_protocols,
      .nalpn = sizeof(alpn_protocols) / sizeof(alpn_protocols[0]),
      .dynamic = {.lookup = dyn_lookup, .challenge = dyn_challenge, .arg = g}};
  char why[512];
  g->tls = px_tls_server_new(specs, ncerts, &opts, why, sizeof(why));
  free(specs);
  if (g->tls == NULL) {
    snprintf(err, errlen, "TLS: %s", why);
    return -1;
  }
  return 0;
}

px_gen *px_gen_new(const px_config *cfg, px_config *owned, px_acme_manager *acme, unsigned id,
                   char *err, size_t errlen) {
  px_gen *g = calloc(1, sizeof(*g));
  if (g == NULL) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  atomic_init(&g->refs, 1);
  g->id = id;
  g->cfg = cfg;
  g->acme = acme;
  if (cfg->nhttps > 0) g->https_port = px_listen_addr_port(&cfg->https[0]);
  if (cfg->nhttps > 0 && build_tls(g, err, errlen) != 0) {
    gen_free(g); /* owned_cfg is not set yet: still the caller's */
    return NULL;
  }
  g->owned_cfg = owned;
  return g;
}

int px_gen_set_metrics(px_gen *g, px_metrics *m) {
  return px_metrics_map_new(m, g->cfg, &g->metrics_map);
}

px_gen *px_gen_ref(px_gen *g) {
  atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
  return g;
}

void px_gen_unref(px_gen *g) {
  if (g == NULL) return;
  /* acq_rel: the thread that frees sees every other holder's reads done. */
  if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) == 1) gen_free(g);
}
