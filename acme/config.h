/*
 * The `acme:` and `on_demand:` sections of the configuration: their
 * settings, their defaults (set here and nowhere else) and their
 * validation. The proxy's config loader owns the file and the YAML; it
 * hands each section's node to px_acme_config_load through a small reader,
 * which keeps every message in the loader's form:
 *   /etc/portico.yaml:12: acme.key_type: expected p256, p384, ...
 *
 * To add a key: a field below, its default in px_acme_config_defaults, its
 * parsing in acme/config.c (and its key in the section's known list),
 * docs/config.md.
 *
 * Error convention: loading reports each problem through the reader and
 * keeps going, so one run lists every error.
 */
#ifndef PX_ACME_CONFIG_H
#define PX_ACME_CONFIG_H

#include <stddef.h>
#include <stdint.h>

/** `acme.dns`: how dns-01 records are written (docs/dns-01.md). */
typedef struct px_acme_dns_settings {
  int provider;                /**< px_dns01_provider: 0 (no acme.dns), rfc2136 or hook */
  char *server;                /**< rfc2136: "ip[:port]" of the primary */
  char *zone;                  /**< or NULL: found from the SOA */
  char *tsig_name;             /**< rfc2136 */
  int tsig_algorithm;          /**< px_dns_tsig_alg (hmac-sha256 by default) */
  char *tsig_secret_file;      /**< rfc2136: BIND key file or base64 secret */
  char **command;              /**< hook: argv, NULL-terminated */
  int64_t propagation_timeout; /**< seconds (120) */
  char **resolvers;            /**< "ip[:port]"s checked for propagation, NULL-terminated */
  size_t nresolvers;
} px_acme_dns_settings;

/** The `acme:` section: how certificates are obtained (ACME issue). */
typedef struct px_acme_settings {
  char *directory;   /**< default: Let's Encrypt production */
  char *email;       /**< contact, or NULL */
  int accept_terms;  /**< required when the CA publishes terms */
  char *ca_file;     /**< extra trust roots for the CA's server, or NULL */
  int key_type;      /**< px_acme_key_type: p256 (default) ... rsa4096 */
  int challenges[3]; /**< px_acme_challenge_type in preference order, 0-terminated */
  px_acme_dns_settings dns;
  /** acme.caa_identities: CAA issuer domains (RFC 8659 §4.2) that mean
   *  this CA; NULL-terminated, or NULL for no CAA check. */
  char **caa_identities;
  char *eab_kid, *eab_hmac_key;
  unsigned renew_rate;      /**< renewals started per minute across all names (10) */
  char *profile;            /**< ACME profile sent in newOrder (when the CA lists it), or NULL */
  char *preferred_chain;    /**< top issuer CN of the chain wanted, or NULL */
  int64_t lock_stale_after; /**< seconds after which an issuance lock that stopped being
                                 refreshed is taken over (300) */
} px_acme_settings;

/** The `on_demand:` section: who may trigger issuance at handshake time. */
typedef struct px_on_demand_settings {
  char *ask;               /**< http://... GET ?domain=NAME, 2xx allows; NULL = no ask */
  uint64_t rate_count;     /**< new orders per window, across all names (20) */
  uint64_t rate_window_ms; /**< (60000) */
  size_t max_pending;      /**< handshakes waiting on issuance at once (100) */
  size_t cache_size;       /**< certificates kept in memory, least recently used out (10000) */
  int64_t forget_after_s;  /**< an on-demand name not seen in a handshake for this long is
                                not renewed (30 days) */
} px_on_demand_settings;

/** The `admin:` and `events:` sections: operator control and notifications
 *  (docs/lifecycle.md). */
typedef struct px_control_settings {
  /** admin.socket: the admin socket's path; NULL when `off`. The config
   *  loader defaults it to admin-<first listen address>.sock in the local
   *  runtime directory (proxy/config/root.c). */
  char *admin_socket;
  int admin_off;              /**< `admin: {socket: off}` */
  char **events_command;      /**< argv, NULL-terminated, or NULL */
  char *events_webhook;       /**< http:// URL, or NULL */
  uint64_t events_timeout_ms; /**< events.timeout; 0: 30 s for the command, 10 s a POST */
} px_control_settings;

/**
 * How acme/ reads the loader's document without knowing YAML. Nodes are
 * opaque; every function takes `arg` first.
 */
typedef struct px_acme_config_reader {
  void *arg;
  /** The value of `key` in the mapping `map`, or NULL. */
  const void *(*get)(void *arg, const void *map, const char *key);
  /** Reports keys of `map` not in `known` (NULL-terminated) as errors under
   *  `path`; -1 (reported) when `map` is not a mapping. */
  int (*check_keys)(void *arg, const void *map, const char *path, const char *const *known);
  /** The text of a scalar node, or NULL for any other node. */
  const char *(*scalar)(void *arg, const void *n);
  /** Parses a YAML boolean; -1 (reported under `key`) when it is none. */
  int (*boolean)(void *arg, const void *n, const char *key, int *out);
  /** A scalar counts as a list of one; a sequence gives its items; any
   *  other node has none. */
  size_t (*nitems)(void *arg, const void *n);
  const void *(*item)(void *arg, const void *n, size_t i);
  /** Parses a whole number: NULL, or a phrase completing "\"VALUE\" ...". */
  const char *(*count)(const char *s, uint64_t *out);
  /** Reports `msg` at the node's line under `key`. */
  void (*error)(void *arg, const void *n, const char *key, const char *msg);
} px_acme_config_reader;

/** Fills both sections with their defaults (docs/config.md). 0, or
 *  -ENOMEM. */
int px_acme_config_defaults(px_acme_settings *a, px_on_demand_settings *o);

/** Reads the `acme:` section at `n` over the defaults in `a`. */
void px_acme_config_load_acme(const px_acme_config_reader *r, const void *n, px_acme_settings *a);

/** Reads the `on_demand:` section at `n` over the defaults in `o`. */
void px_acme_config_load_on_demand(const px_acme_config_reader *r, const void *n,
                                   px_on_demand_settings *o);

/** Reads the `admin:` section at `n` into `c`. */
void px_control_config_load_admin(const px_acme_config_reader *r, const void *n,
                                  px_control_settings *c);

/** Reads the `events:` section at `n` into `c`. */
void px_control_config_load_events(const px_acme_config_reader *r, const void *n,
                                   px_control_settings *c);

/** Frees what the admin and events sections own. */
void px_control_config_dispose(px_control_settings *c);

/**
 * The keys of the acme:, on_demand:, admin: and events: sections whose
 * values differ between two loaded configurations ("acme.directory",
 * "admin.socket", ...): these are read once, when the certificate manager
 * starts, so a reload cannot change them. Up to `cap` names (static
 * strings) go to `keys`; returns how many differ.
 */
size_t px_acme_config_changed_keys(const px_acme_settings *a0, const px_on_demand_settings *o0,
                                   const px_control_settings *c0, const px_acme_settings *a1,
                                   const px_on_demand_settings *o1, const px_control_settings *c1,
                                   const char **keys, size_t cap);

/** Frees what both sections own. */
void px_acme_config_dispose(px_acme_settings *a, px_on_demand_settings *o);

#endif
