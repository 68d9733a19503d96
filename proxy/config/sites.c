/*
 * The `sites:` section: hosts, upstreams, TLS (files, acme, on_demand), redirects and HSTS.
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/names.h"
#include "acme/proto/client.h"
#include "proxy/config/values.h"
#include "tls/cert.h"
#include "tls/ipname.h"
#include "tls/unconst.h"

void px_cfg_load_hsts(loader *L, yaml_node_t *n, const char *key, px_hsts *h) {
  if (n->type == YAML_SCALAR_NODE) {
    int on;
    if (px_cfg_get_bool(L, n, key, &on) != 0) return;
    h->enabled = on;
    h->max_age = PX_HSTS_DEFAULT_MAX_AGE;
    h->include_subdomains = 0;
    h->preload = 0;
    return;
  }
  static const char *const keys[] = {"max_age", "include_subdomains", "preload", NULL};
  if (px_cfg_check_keys(L, n, key, keys) != 0) return;
  char k[128];
  h->enabled = 1;
  h->max_age = PX_HSTS_DEFAULT_MAX_AGE;
  yaml_node_t *v;
  if ((v = px_cfg_get(L, n, "max_age"))) {
    uint64_t age;
    snprintf(k, sizeof(k), "%s.max_age", key);
    const char *why =
        px_cfg_scalar(v) ? px_cfg_parse_count(px_cfg_scalar(v), &age) : "expected a number";
    /* Two years is the most any browser honours and what preload lists ask. */
    if (why == NULL && age > 63072000) why = "is over 63072000 (two years)";
    if (why)
      px_cfg_error_at(L, v, k, "%s", why);
    else
      h->max_age = (int64_t)age;
  }
  if ((v = px_cfg_get(L, n, "include_subdomains"))) {
    snprintf(k, sizeof(k), "%s.include_subdomains", key);
    px_cfg_get_bool(L, v, k, &h->include_subdomains);
  }
  if ((v = px_cfg_get(L, n, "preload"))) {
    snprintf(k, sizeof(k), "%s.preload", key);
    px_cfg_get_bool(L, v, k, &h->preload);
  }
}

static int host_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_site *site = arg;
  const char *s = px_cfg_scalar(n);
  char norm[256];
  const char *why = s ? px_cfg_normalize_host_pattern(s, norm, sizeof(norm)) : "expected a string";
  if (why) {
    px_cfg_error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  char *h = strdup(norm);
  if (h == NULL) {
    px_cfg_error_at(L, n, key, "out of memory");
    return -1;
  }
  site->hosts[site->nhosts++] = h;
  return 0;
}

static int upstream_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_site *site = arg;
  px_upstream_addr *u = &site->upstreams[site->nupstreams];
  const char *s = px_cfg_scalar(n);
  const char *why =
      s ? px_cfg_parse_upstream(s, &u->ss, &u->sslen, &u->is_unix) : "expected a string";
  if (why) {
    px_cfg_error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  u->text = strdup(s);
  if (u->text == NULL) {
    px_cfg_error_at(L, n, key, "out of memory");
    return -1;
  }
  site->nupstreams++;
  return 0;
}

/* Loads the pair with the function start-up uses (px_tls_cert_load_files),
 * so whatever start-up would refuse (a key that does not match, a directory,
 * a chain cut short inside a certificate) is refused here with file:line. */
static void check_cert_files(loader *L, yaml_node_t *tls, const char *key, px_site *site) {
  char err[512], k[128];
  px_tls_cert *c = px_tls_cert_load_files(site->cert_file, site->key_file, err, sizeof(err));
  if (c) {
    px_tls_cert_unref(c);
    return;
  }
  /* Blame the key when the key is what failed: the message starts with its
   * path (it cannot be read) or ends with it (it does not match). */
  size_t elen = strlen(err), klen = strlen(site->key_file);
  int blame_key = strcmp(site->key_file, site->cert_file) != 0 &&
                  ((strncmp(err, site->key_file, klen) == 0 && err[klen] == ':') ||
                   (elen >= klen && strcmp(err + elen - klen, site->key_file) == 0));
  snprintf(k, sizeof(k), "%s.%s", key, blame_key ? "key" : "cert");
  yaml_node_t *v = px_cfg_get(L, tls, blame_key ? "key" : "cert");
  px_cfg_error_at(L, v ? v : tls, k, "%s", err);
}

static void load_tls(loader *L, yaml_node_t *n, const char *key, px_site *site) {
  const char *s = px_cfg_scalar(n);
  if (s) {
    if (strcmp(s, "acme") == 0)
      site->tls_mode = PX_SITE_TLS_ACME;
    else if (strcmp(s, "on_demand") == 0)
      site->tls_mode = PX_SITE_TLS_ON_DEMAND;
    else
      px_cfg_error_at(L, n, key, "\"%s\" is not one of acme, on_demand or {cert, key}", s);
    return;
  }
  static const char *const keys[] = {"cert", "key", NULL};
  if (px_cfg_check_keys(L, n, key, keys) != 0) return;
  char k[128];
  const char *names[2] = {"cert", "key"};
  char **dst[2] = {&site->cert_file, &site->key_file};
  int errors_before = L->nerrors;
  for (int i = 0; i < 2; i++) {
    snprintf(k, sizeof(k), "%s.%s", key, names[i]);
    yaml_node_t *v = px_cfg_get(L, n, names[i]);
    if (v == NULL) {
      px_cfg_error_at(L, n, k, "missing (a certificate needs both cert and key)");
      continue;
    }
    *dst[i] = px_cfg_get_string(L, v, k);
    if (*dst[i] && access(*dst[i], R_OK) != 0)
      px_cfg_error_at(L, v, k, "cannot read %s: %s", *dst[i], strerror(errno));
  }
  site->tls_mode = PX_SITE_TLS_FILES;
  if (L->nerrors == errors_before && site->cert_file && site->key_file)
    check_cert_files(L, n, key, site);
}

/* A `tls: acme` site is one ACME order for all its hosts: what the CA or
 * portico's challenges cannot do is refused here, at --check and start-up
 * alike, with the host's own line, instead of failing at run time. */
/* Whether the configured challenges can validate an address (RFC 8738 §7:
 * http-01 or tls-alpn-01, never dns-01). */
static int ip_challenge_configured(const px_config *cfg) {
  const int *ch = cfg->acme.challenges;
  if (ch[0] == 0) return 1; /* the default list has both */
  for (size_t i = 0; i < 3 && ch[i]; i++)
    if (ch[i] == PX_ACME_HTTP_01 || ch[i] == PX_ACME_TLS_ALPN_01) return 1;
  return 0;
}

/* What a host of an ACME site cannot be: NULL when it is fine. */
static const char *acme_host_problem(loader *L, const px_site *site, const char *host) {
  if (!px_ip_name_is(host)) return px_acme_order_name_problem(host, L->cfg->acme.dns.provider != 0);
  if (site->tls_mode == PX_SITE_TLS_ON_DEMAND)
    /* Any client could make portico order a certificate for whatever
     * address reaches it; addresses are listed, never discovered. */
    return "is an IP address, and tls: on_demand orders for DNS names only; use tls: acme for "
           "an address";
  if (!ip_challenge_configured(L->cfg))
    return "is an IP address, which only http-01 or tls-alpn-01 can validate (RFC 8738 §7); "
           "add one of them to acme.challenges";
  return NULL;
}

static void check_acme_site(loader *L, yaml_node_t *hosts, const char *key, const px_site *site) {
  size_t n = hosts ? px_cfg_count_items(hosts) : 0;
  if ((site->tls_mode != PX_SITE_TLS_ACME && site->tls_mode != PX_SITE_TLS_ON_DEMAND) || n == 0 ||
      site->nhosts != n)
    return; /* not ACME, or a bad host was already reported */
  if (n > PX_ACME_ORDER_NAMES_MAX && site->tls_mode == PX_SITE_TLS_ACME)
    px_cfg_error_at(
        L, hosts, key,
        "%zu names, but one ACME order holds at most %d (Let's Encrypt's limit); split the "
        "site into sites of at most %d hosts each",
        n, PX_ACME_ORDER_NAMES_MAX, PX_ACME_ORDER_NAMES_MAX);
  for (size_t j = 0; j < n; j++) {
    const char *why = site->tls_mode == PX_SITE_TLS_ACME || px_ip_name_is(site->hosts[j])
                          ? acme_host_problem(L, site, site->hosts[j])
                          : NULL;
    if (why == NULL) continue;
    char k[128];
    yaml_node_t *item = hosts;
    if (hosts->type == YAML_SEQUENCE_NODE) {
      item = px_cfg_node(L, hosts->data.sequence.items.start[j]);
      snprintf(k, sizeof(k), "%s[%zu]", key, j);
    } else {
      snprintf(k, sizeof(k), "%s", key);
    }
    px_cfg_error_at(L, item, k, "\"%s\" %s (tls: %s)", site->hosts[j], why,
                    site->tls_mode == PX_SITE_TLS_ACME ? "acme" : "on_demand");
  }
}

void px_cfg_load_site(loader *L, yaml_node_t *n, size_t idx, int def_redirect,
                      const px_hsts *def_hsts) {
  static const char *const keys[] = {"hosts", "upstreams", "tls", "redirect_http", "hsts", NULL};
  char path[64], k[96];
  snprintf(path, sizeof(path), "sites[%zu]", idx);
  px_site *site = &L->cfg->sites[idx];
  site->line = (int)n->start_mark.line + 1;
  site->redirect_http = def_redirect;
  site->hsts = *def_hsts;
  if (px_cfg_check_keys(L, n, path, keys) != 0) return;
  yaml_node_t *v;
  snprintf(k, sizeof(k), "%s.hosts", path);
  if ((v = px_cfg_get(L, n, "hosts")) && px_cfg_count_items(v) > 0) {
    site->hosts = calloc(px_cfg_count_items(v), sizeof(char *));
    if (site->hosts) px_cfg_for_each_item(L, v, k, host_item, site);
  } else {
    px_cfg_error_at(L, v ? v : n, k, "a site needs at least one host");
  }
  snprintf(k, sizeof(k), "%s.upstreams", path);
  if ((v = px_cfg_get(L, n, "upstreams")) && px_cfg_count_items(v) > 0) {
    site->upstreams = calloc(px_cfg_count_items(v), sizeof(px_upstream_addr));
    if (site->upstreams) px_cfg_for_each_item(L, v, k, upstream_item, site);
  } else {
    px_cfg_error_at(L, v ? v : n, k, "a site needs at least one upstream");
  }
  if ((v = px_cfg_get(L, n, "tls"))) {
    snprintf(k, sizeof(k), "%s.tls", path);
    load_tls(L, v, k, site);
    snprintf(k, sizeof(k), "%s.hosts", path);
    check_acme_site(L, px_cfg_get(L, n, "hosts"), k, site);
  }
  if ((v = px_cfg_get(L, n, "redirect_http"))) {
    snprintf(k, sizeof(k), "%s.redirect_http", path);
    px_cfg_get_bool(L, v, k, &site->redirect_http);
  }
  if ((v = px_cfg_get(L, n, "hsts"))) {
    snprintf(k, sizeof(k), "%s.hsts", path);
    px_cfg_load_hsts(L, v, k, &site->hsts);
  }
}

/* Hosts must be unique across sites, and only one site may be "*". */
void px_cfg_check_duplicate_hosts(loader *L, yaml_node_t *sites_node) {
  px_config *cfg = L->cfg;
  for (size_t a = 0; a < cfg->nsites; a++)
    for (size_t i = 0; i < cfg->sites[a].nhosts; i++)
      for (size_t b = a; b < cfg->nsites; b++)
        for (size_t j = (b == a ? i + 1 : 0); j < cfg->sites[b].nhosts; j++) {
          if (strcmp(cfg->sites[a].hosts[i], cfg->sites[b].hosts[j]) != 0) continue;
          char k[64];
          snprintf(k, sizeof(k), "sites[%zu].hosts", b);
          yaml_node_t fake = {0};
          fake.start_mark.line = (size_t)cfg->sites[b].line - 1;
          px_cfg_error_at(L, &fake, k, "\"%s\" is already served by sites[%zu] (line %d)",
                          cfg->sites[a].hosts[i], a, cfg->sites[a].line);
        }
}
