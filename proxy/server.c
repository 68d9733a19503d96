#include "proxy/server.h"

#include <stdlib.h>
#include <string.h>

#include "proxy/worker.h"
#include "tls/log.h"

/* ALPN offered on HTTPS listeners, in preference order. h2 joins with the
 * HTTP/2 front. */
static const char *const alpn_protocols[] = {"http/1.1"};

static int listen_port(const px_listen_addr *a) {
  if (a->ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
  return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

int px_server_init(px_server *srv, const px_config *cfg) {
  memset(srv, 0, sizeof(*srv));
  srv->cfg = cfg;
  srv->nworkers = cfg->workers > 0 ? cfg->workers : 1;
  srv->conn_limit_per_worker = (cfg->limits.max_connections + (size_t)srv->nworkers - 1) / (size_t)srv->nworkers;
  if (cfg->nhttps > 0) srv->https_port = listen_port(&cfg->https[0]);

  size_t ncerts = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    if (cfg->sites[i].tls_mode == PX_SITE_TLS_ACME || cfg->sites[i].tls_mode == PX_SITE_TLS_ON_DEMAND) {
      px_log(PX_LOG_ERROR, "%s:%d: sites[%zu].tls: ACME certificates are not available in this build yet",
             cfg->file, cfg->sites[i].line, i);
      return -1;
    }
    if (cfg->sites[i].tls_mode == PX_SITE_TLS_FILES) ncerts++;
  }
  if (cfg->nhttps == 0) return 0;
  px_tls_cert_spec *specs = calloc(ncerts ? ncerts : 1, sizeof(*specs));
  srv->site_of_cert = calloc(ncerts ? ncerts : 1, sizeof(int));
  if (specs == NULL || srv->site_of_cert == NULL) {
    free(specs);
    return -1;
  }
  size_t k = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    const px_site *s = &cfg->sites[i];
    if (s->tls_mode != PX_SITE_TLS_FILES) continue;
    specs[k].cert_file = s->cert_file;
    specs[k].key_file = s->key_file;
    specs[k].hosts = (const char *const *)s->hosts;
    specs[k].nhosts = s->nhosts;
    srv->site_of_cert[k] = (int)i;
    k++;
  }
  px_tls_server_opts opts = {alpn_protocols, sizeof(alpn_protocols) / sizeof(alpn_protocols[0])};
  char err[512];
  srv->tls = px_tls_server_new(specs, ncerts, &opts, err, sizeof(err));
  free(specs);
  if (srv->tls == NULL) {
    px_log(PX_LOG_ERROR, "TLS: %s", err);
    return -1;
  }
  return 0;
}

int px_server_start(px_server *srv) {
  srv->workers = calloc((size_t)srv->nworkers, sizeof(px_worker *));
  if (srv->workers == NULL) return -1;
  for (int i = 0; i < srv->nworkers; i++) {
    srv->workers[i] = px_worker_new(srv, i);
    if (srv->workers[i] == NULL || px_worker_start(srv->workers[i]) != 0) {
      /* Stop the ones already running. */
      for (int j = 0; j <= i; j++)
        if (srv->workers[j]) px_worker_stop(srv->workers[j]);
      return -1;
    }
  }
  return 0;
}

void px_server_stop(px_server *srv) {
  for (int i = 0; i < srv->nworkers; i++)
    if (srv->workers && srv->workers[i]) px_worker_stop(srv->workers[i]);
}

void px_server_join(px_server *srv) {
  for (int i = 0; i < srv->nworkers; i++) {
    if (srv->workers && srv->workers[i]) px_worker_join_free(srv->workers[i]);
  }
  free(srv->workers);
  srv->workers = NULL;
}

void px_server_dispose(px_server *srv) {
  if (srv->tls) px_tls_server_free(srv->tls);
  free(srv->site_of_cert);
  memset(srv, 0, sizeof(*srv));
}
