/*
 * Routing of a parsed request head, the same for HTTP/1.1 (h1.c) and
 * HTTP/2 (h2.c): the Host field or :authority normalised, the site that
 * serves the name, the name checked against the TLS handshake's, and on
 * plain HTTP (port 80) what portico answers itself. Which of the site's
 * upstreams gets the request is the exchange's choice (exchange.c).
 */
#ifndef PX_ROUTE_H
#define PX_ROUTE_H

#include <stddef.h>

#include "proxy/config.h"

/** What to do with a request. */
typedef enum px_route_action {
  PX_ROUTE_PROXY,       /**< proxy it to `site` */
  PX_ROUTE_BAD_HOST,    /**< 400: Host/:authority missing or invalid */
  PX_ROUTE_MISDIRECTED, /**< 421: on TLS, no site for the name or not the handshake's name */
  PX_ROUTE_HTTP01,      /**< port 80: an ACME http-01 challenge path; the token is `token` */
  PX_ROUTE_NOT_FOUND,   /**< port 80: no site serves the name (404) */
  PX_ROUTE_REDIRECT,    /**< port 80: the site redirects to HTTPS (301/308) */
} px_route_action;

/** The outcome of px_route_request. */
typedef struct px_route {
  px_route_action action;
  const px_site *site; /**< the site for the name, or NULL */
  char host[256];      /**< the normalised name (lowercase, no port, no trailing dot) */
  size_t host_len;
  const char *token; /**< PX_ROUTE_HTTP01: points into the request target */
} px_route;

/**
 * Routes a request by its Host field or :authority (`authority`, `len`,
 * NULL when the request has none, as an HTTP/1.0 one may: then the TLS
 * handshake's name stands in). `sni` is the handshake's server name on a
 * TLS connection, NULL on plain HTTP; `target` the request target;
 * `https_port` the HTTPS listener's port (0 when none), which a redirect
 * needs. Fills `out` (always host and action).
 */
void px_route_request(const px_config *cfg, const char *authority, size_t len, const char *sni,
                      const char *target, int https_port, px_route *out);

#endif
