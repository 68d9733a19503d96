/*
 * The configuration: one YAML (or JSON) file, parsed with libyaml into an
 * immutable px_config shared read-only by every thread.
 *
 * Every error names the file, the line and the key:
 *   /etc/portico.yaml:12: sites[0].upstreams[1]: "127.0.0.1:99999" is not host:port or unix:/path
 * Unknown keys are errors. Defaults and their reasons: docs/config.md.
 */
#ifndef PX_CONFIG_H
#define PX_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "acme/config.h"
#include "proxy/util/cidr.h"

/** A listening address ("0.0.0.0:443", "[::]:443"). */
typedef struct px_listen_addr {
  char *text;
  struct sockaddr_storage ss;
  socklen_t sslen;
  int proxy_protocol; /**< a PROXY protocol v1/v2 header comes first (docs/logging.md) */
} px_listen_addr;

/** A backend address: "host:port" (numeric IPv4/IPv6 or a name resolved at
 *  load time) or "unix:/path". */
typedef struct px_upstream_addr {
  char *text;
  int is_unix;
  struct sockaddr_storage ss; /**< AF_INET, AF_INET6 or AF_UNIX */
  socklen_t sslen;
} px_upstream_addr;

/** Strict-Transport-Security settings (RFC 6797 §6.1). */
typedef struct px_hsts {
  int enabled;
  int64_t max_age; /**< seconds; default 5184000 (60 days) */
  int include_subdomains;
  int preload;
} px_hsts;

typedef enum px_tls_mode {
  PX_SITE_TLS_NONE = 0,  /**< no certificate: the site is served on port 80 only */
  PX_SITE_TLS_FILES,     /**< tls: {cert, key} */
  PX_SITE_TLS_ACME,      /**< tls: acme (ACME issue) */
  PX_SITE_TLS_ON_DEMAND, /**< tls: on_demand (ACME issue) */
} px_tls_mode;

typedef struct px_site {
  char **hosts; /**< lowercase; exact, "*.suffix" or "*" */
  size_t nhosts;
  px_upstream_addr *upstreams;
  size_t nupstreams;
  px_tls_mode tls_mode;
  char *cert_file, *key_file;
  int redirect_http; /**< 1: port 80 redirects to https; 0: proxied as plain HTTP */
  px_hsts hsts;
  int line; /**< where the site starts in the file, for messages */
} px_site;

/** Timeouts (milliseconds) and limits. Defaults protect a public server. */
typedef struct px_limits {
  uint64_t handshake_timeout_ms;        /**< TLS handshake: 10 s */
  uint64_t header_timeout_ms;           /**< whole request head (slowloris): 10 s */
  uint64_t keepalive_timeout_ms;        /**< idle between requests: 75 s */
  uint64_t body_timeout_ms;             /**< gap between request body reads: 60 s */
  uint64_t send_timeout_ms;             /**< gap between writes making progress: 60 s */
  uint64_t upstream_connect_timeout_ms; /**< 5 s */
  uint64_t upstream_read_timeout_ms;    /**< gap between upstream reads: 60 s */
  uint64_t upstream_idle_timeout_ms;    /**< pooled idle upstream connection: 30 s */
  uint64_t drain_timeout_ms;            /**< graceful shutdown: 30 s */
  uint64_t on_demand_timeout_ms;        /**< a handshake waiting on issuance: 60 s */
  uint64_t websocket_idle_timeout_ms;   /**< a WebSocket tunnel with no traffic either way: 300 s */
  uint64_t min_rate_window_ms;          /**< window over which min_rate is judged: 20 s */
  uint64_t proxy_header_timeout_ms;     /**< a PROXY protocol header must arrive within: 5 s */
  size_t min_rate;           /**< bytes/s a client must move while it is awaited: 256; 0 = off */
  size_t max_connections;    /**< per process: 10000 */
  size_t max_header_bytes;   /**< request line + headers: 32 KiB */
  size_t max_headers;        /**< header fields: 100 */
  uint64_t max_body_bytes;   /**< request body: 1 GiB; 0 = unlimited */
  size_t upstream_pool_size; /**< idle keep-alive connections per upstream per worker: 1024 */
  size_t buffer_size;        /**< per-direction in-flight bytes before backpressure: 64 KiB */
  size_t upstreams_per_connection; /**< backend connections one HTTP/2 connection may hold: 32 */
  size_t connection_buffer;        /**< response bytes buffered for one HTTP/2 connection: 1 MiB */
  size_t total_buffer;             /**< response bytes buffered by the process (HTTP/2): 256 MiB */
} px_limits;

typedef struct px_config {
  char *file;
  px_listen_addr *https;
  size_t nhttps;
  px_listen_addr *http;
  size_t nhttp;
  int workers;                 /**< resolved: "auto" becomes the number of cores */
  char *storage;               /**< cache directory, or redis://[user@]host[:port][/db] */
  char *storage_prefix;        /**< Redis key prefix; NULL: "portico:" */
  char *storage_password_file; /**< Redis AUTH password file */
  char *storage_key_file;      /**< encrypts private keys in Redis */
  char *runtime_dir;           /**< where the listen-address locks live; NULL = the default */
  char *user;                  /**< started as root: become this user (proxy/privdrop.h) */
  char *group;                 /**< with `user`: this group instead of the user's own */
  int log_level;               /**< px_log_level */
  char *access_log;            /**< "stdout", "stderr", "off" or a path */
  char *error_log;             /**< "stderr" or a path */
  int log_json;                /**< log.format: json (both logs one JSON object a line) */
  char *request_id_header;     /**< log.request_id_header; NULL: no request ids */
  px_cidr *trusted_proxies;    /**< peers whose forwarding headers are kept and extended */
  size_t ntrusted_proxies;
  px_site *sites;
  size_t nsites;
  px_limits limits;
  px_acme_settings acme;
  px_on_demand_settings on_demand;
  px_control_settings control; /**< admin: and events: */
  px_listen_addr metrics;      /**< admin.metrics; `text` NULL when off (the default) */
} px_config;

/** Fills `l` with the defaults documented in docs/config.md. */
void px_limits_defaults(px_limits *l);

/**
 * Loads and validates `path`. On success returns the config and 0 errors.
 * On failure returns NULL and prints every error (file:line: key: message)
 * to `errout` (one per line); `*nerrors` gets the count.
 */
px_config *px_config_load(const char *path, FILE *errout, int *nerrors);

/** Same as px_config_load but from an in-memory buffer; `name` is used in messages. */
px_config *px_config_load_buffer(const char *name, const char *data, size_t len, FILE *errout,
                                 int *nerrors);

/**
 * Prints warnings that are not errors (e.g. what enabling HSTS commits a site
 * to) to `out`. Returns how many were printed.
 */
int px_config_warnings(const px_config *cfg, FILE *out);

/** Frees everything the config owns. */
void px_config_free(px_config *cfg);

#endif
