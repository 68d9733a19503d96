/* Host normalisation, routing by host, and routing of a request head. */
#include "proxy/http/route.h"

#include <stdio.h>
#include <string.h>

#include "proxy/http.h"
#include "tls/ipname.h"

int px_http_normalize_host(const char *in, size_t len, char *out, size_t cap) {
  /* Surrounding whitespace is not part of the value. */
  while (len && (*in == ' ' || *in == '\t'))
    in++, len--;
  while (len && (in[len - 1] == ' ' || in[len - 1] == '\t'))
    len--;
  if (len == 0) return -1;
  size_t end = len;
  if (in[0] == '[') {
    /* IPv6 literal (RFC 3986 §3.2.2), optionally with a port. */
    const char *close = memchr(in, ']', len);
    if (close == NULL) return -1;
    end = (size_t)(close - in) + 1;
    for (size_t i = 1; i + 1 < end; i++) {
      char c = in[i];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
            c == ':' || c == '.'))
        return -1;
    }
    if (end < len && in[end] != ':') return -1;
  } else {
    const char *colon = memchr(in, ':', len);
    if (colon) end = (size_t)(colon - in);
  }
  if (end < len) {
    /* The port: digits only, at most 5. */
    size_t plen = len - end - 1;
    if (plen == 0 || plen > 5) return -1;
    for (size_t i = end + 1; i < len; i++)
      if (in[i] < '0' || in[i] > '9') return -1;
  }
  /* One address has many spellings ("[0:0::1]", "[::1]"): routing, the
   * SNI-less certificate and the logs use the canonical one (RFC 5952). */
  if (in[0] == '[') return px_ip_name_normalize(in, end, out, cap);
  if (end > 0 && in[end - 1] == '.') end--; /* absolute form "example.com." */
  if (end == 0 || end > 253 || end + 1 > cap) return -1;
  for (size_t i = 0; i < end; i++) {
    char c = in[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return -1;
    if (c == '.' && (i == 0 || out[i - 1] == '.')) return -1; /* empty label */
    out[i] = c;
  }
  out[end] = '\0';
  return (int)end;
}

const px_site *px_http_route(const px_config *cfg, const char *host) {
  const px_site *catch_all = NULL, *wildcard = NULL;
  const char *dot = strchr(host, '.');
  for (size_t s = 0; s < cfg->nsites; s++) {
    const px_site *site = &cfg->sites[s];
    for (size_t i = 0; i < site->nhosts; i++) {
      const char *pat = site->hosts[i];
      if (strcmp(pat, host) == 0) return site;
      if (pat[0] == '*' && pat[1] == '\0') {
        catch_all = site;
      } else if (pat[0] == '*' && pat[1] == '.' && dot && dot != host && host[0] != '[' &&
                 strcmp(pat + 1, dot) == 0 && wildcard == NULL) {
        /* One label only: "*.example.com" covers "a.example.com", not
         * "a.b.example.com" (RFC 6125 §6.4.3). */
        wildcard = site;
      }
    }
  }
  return wildcard ? wildcard : catch_all;
}

/* http-01 (RFC 8555 §8.3): answered on port 80 before any redirect. */
static const char acme_prefix[] = "/.well-known/acme-challenge/";

void px_route_request(const px_config *cfg, const char *authority, size_t len, const char *sni,
                      const char *target, int https_port, px_route *out) {
  /* Field by field, not a memset of the whole struct: this runs for every
   * request. */
  out->site = NULL;
  out->token = NULL;
  out->host_len = 0;
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
