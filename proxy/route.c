#include "proxy/route.h"

#include <stdio.h>
#include <string.h>

#include "proxy/http.h"

/* http-01 (RFC 8555 §8.3): answered on port 80 before any redirect. */
static const char acme_prefix[] = "/.well-known/acme-challenge/";

void px_route_request(const px_config *cfg, const char *authority, size_t len, const char *sni,
                      const char *target, int https_port, px_route *out) {
  memset(out, 0, sizeof(*out));
  int hlen = -1;
  if (authority)
    hlen = px_http_normalize_host(authority, len, out->host, sizeof(out->host));
  else if (sni && sni[0])
    hlen = snprintf(out->host, sizeof(out->host), "%s", sni);
  if (hlen <= 0) {
    out->host[0] = '\0';
    out->action = PX_ROUTE_BAD_HOST;
    return;
  }
  out->host_len = (size_t)hlen;
  out->site = px_http_route(cfg, out->host);
  if (sni) {
    /* A request for another name than the handshake's is misdirected
     * (RFC 9110 §15.5.20, RFC 9113 §9.1.1); the client retries on a new
     * connection. */
    out->action =
        out->site == NULL || strcmp(out->host, sni) != 0 ? PX_ROUTE_MISDIRECTED : PX_ROUTE_PROXY;
    return;
  }
  if (strncmp(target, acme_prefix, sizeof(acme_prefix) - 1) == 0) {
    out->action = PX_ROUTE_HTTP01;
    out->token = target + sizeof(acme_prefix) - 1;
  } else if (out->site == NULL) {
    out->action = PX_ROUTE_NOT_FOUND;
  } else if (out->site->redirect_http && out->site->tls_mode != PX_SITE_TLS_NONE &&
             https_port > 0) {
    out->action = PX_ROUTE_REDIRECT;
  } else {
    out->action = PX_ROUTE_PROXY;
  }
}
