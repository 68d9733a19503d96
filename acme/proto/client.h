/*
 * The RFC 8555 client: one per CA, asynchronous on the certificate
 * manager's uv loop. It owns the directory, the last nonce the CA gave and the account
 * (loaded from the store, or created once and saved there), and runs
 * orders: newOrder -> authorizations -> challenge -> poll -> finalize with a
 * CSR -> download (following Link rel="up" when needed, keeping
 * rel="alternate" chains).
 *
 * Error convention (acme/errors.h): completion callbacks get `err` NULL on
 * success or a sentence (with the CA's problem detail) on failure, never
 * from inside the call that started the operation.
 */
#ifndef PX_ACME_CLIENT_H
#define PX_ACME_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "acme/proto/ari.h"
#include "acme/proto/key.h"
#include "acme/proto/problem.h"
#include "acme/store.h"

/** One HTTPS request to the CA when px_acme_client_opts sets none. */
#define PX_ACME_REQUEST_TIMEOUT_MS 30000

/** Challenge types, in the order of the `challenges` preference list. */
typedef enum px_acme_challenge_type {
  PX_ACME_TLS_ALPN_01 = 1,
  PX_ACME_HTTP_01 = 2,
  PX_ACME_DNS_01 = 3,
} px_acme_challenge_type;

/** Challenge types in a preference list, at most. */
#define PX_ACME_CHALLENGES_MAX 3

/** Called once a dns-01 record is visible (`err` NULL) or cannot be. */
typedef void (*px_acme_dns_ready_cb)(void *order, const char *err);

/**
 * How the client makes a challenge answerable. `publish` is called before
 * the client tells the CA to validate; `unpublish` once the authorization is
 * final. Both run on the client's loop and must not block for long.
 */
typedef struct px_acme_challenge_hooks {
  void (*publish)(void *arg, px_acme_challenge_type type, const char *name, const char *token,
                  const char *key_authorization);
  void (*unpublish)(void *arg, px_acme_challenge_type type, const char *name, const char *token);
  /** dns-01 (RFC 8555 §8.4): puts `value` as TXT at _acme-challenge.`name`
   *  and calls `ready(order, err)` once it is visible. A handle for
   *  dns_cleanup, or NULL when dns-01 is not set up (acme.dns). */
  void *(*dns_present)(void *arg, const char *name, const char *value, px_acme_dns_ready_cb ready,
                       void *order);
  /** Removes a dns_present record; `ready` is not called after this. The
   *  client calls it for every record of an order when the order ends, so
   *  names sharing one _acme-challenge name keep their values together. */
  void (*dns_cleanup)(void *arg, void *handle);
  void *arg;
} px_acme_challenge_hooks;

typedef struct px_acme_client_opts {
  const char *directory_url; /**< https://... */
  const char *ca_file;       /**< extra trust roots (PEM) for the CA's server, or NULL */
  const char *email;         /**< contact, or NULL */
  int accept_terms;          /**< the operator agreed to meta.termsOfService */
  const char *eab_kid;       /**< external account binding, or NULL */
  const char *eab_hmac_key;  /**< base64url */
  px_acme_key_type key_type; /**< certificate keys */
  /** Preference; 0-terminated if shorter. */
  px_acme_challenge_type challenges[PX_ACME_CHALLENGES_MAX];
  px_store *store; /**< accounts are kept here, per CA */
  px_acme_challenge_hooks hooks;
  uint64_t request_timeout_ms; /**< one HTTPS request to the CA; 0: PX_ACME_REQUEST_TIMEOUT_MS */
  uint64_t order_timeout_ms;   /**< a whole issuance; default 120 s */
  /** ACME profile sent in newOrder, or NULL. An order fails (saying what
   *  the CA offers) when the directory's meta.profiles does not list it. */
  const char *profile;
  /** acme.preferred_chain: the commonName of the topmost issuer wanted;
   *  the default chain and the rel="alternate" ones are compared, the
   *  default kept when none matches. NULL: the default chain. */
  const char *preferred_chain;
} px_acme_client_opts;

typedef struct px_acme_client px_acme_client;

/** What a successful issuance returns (all malloc'd; freed by px_acme_result_dispose). */
typedef struct px_acme_result {
  char *cert_pem; /**< the chain as the CA sent it, leaf first */
  size_t cert_len;
  char *key_pem; /**< the certificate key (PKCS#8 PEM) */
  size_t key_len;
  char **alternates; /**< URLs of rel="alternate" chains (may be empty) */
  size_t nalternates;
} px_acme_result;

/** What a failure was, for the lifecycle's record and its backoff. */
typedef struct px_acme_failure {
  int64_t retry_after; /**< the CA's Retry-After in seconds, 0 when it gave none */
  /** The CA could not be reached (no connection, TLS failure, timeout, or
   *  the directory answered 5xx): a CA outage, not this order's fault. */
  int ca_unreachable;
  /** The CA refuses the configuration itself (acme.profile is not in its
   *  directory's meta.profiles): no retry helps until the config changes. */
  int config_refused;
  int has_problem;         /**< `problem` holds the CA's problem document */
  px_acme_problem problem; /**< the CA's last problem document */
} px_acme_failure;

/**
 * Called once per px_acme_issue (and px_acme_probe, with no result). On
 * failure `err` says why and `f` says what kind of failure it was; `f` is
 * never NULL.
 */
typedef void (*px_acme_issue_cb)(void *arg, const char *err, px_acme_result *result,
                                 const px_acme_failure *f);

/**
 * Called once per px_acme_renewal_info. `info` is the CA's window, or NULL
 * when `err` is set or the CA has no renewalInfo (then `err` is NULL too).
 * `retry_after` is the CA's Retry-After in seconds (0 when none).
 */
typedef void (*px_acme_ari_cb)(void *arg, const char *err, const px_ari_info *info,
                               int64_t retry_after);

/** Creates the client; nothing is fetched until the first issue. */
px_acme_client *px_acme_client_new(uv_loop_t *loop, const px_acme_client_opts *opts);

/**
 * Orders one certificate for `names` (already normalised, at most 100).
 * Steps are logged at info, one line each, with the names; failures with the
 * CA's problem detail. Returns 0, or -EINVAL / -ENOMEM when it could not
 * even start (then `cb` is not called).
 */
int px_acme_issue(px_acme_client *c, const char *const *names, size_t n, px_acme_issue_cb cb,
                  void *arg);

/**
 * Like px_acme_issue for a renewal: `replaces` (the old certificate's ARI
 * ID, RFC 9773 §5; NULL or "" for none) is sent in newOrder when the CA
 * lists renewalInfo; when the CA refuses the order with it, the order is
 * placed once more without it.
 */
int px_acme_renew(px_acme_client *c, const char *const *names, size_t n, const char *replaces,
                  px_acme_issue_cb cb, void *arg);

/**
 * Fetches the directory afresh (the CA health probe): `cb` gets err NULL
 * when it answered, else a sentence naming the URL and the system error.
 * 0, or -ENOMEM (then `cb` is not called).
 */
int px_acme_probe(px_acme_client *c, px_acme_issue_cb cb, void *arg);

/**
 * Fetches the renewalInfo of a certificate (RFC 9773 §4.2) by its ID,
 * fetching the directory first when needed. 0, or -EINVAL / -ENOMEM (then
 * `cb` is not called).
 */
int px_acme_renewal_info(px_acme_client *c, const char *cert_id, px_acme_ari_cb cb, void *arg);

/**
 * Revokes a certificate (RFC 8555 §7.6) with a request signed by the
 * account key: `der` is the leaf, `reason` an RFC 5280 §5.3.1 CRLReason
 * code. `names` (the certificate's, for the log) may be empty. `cb` gets
 * err NULL when the CA revoked it (no result), else the CA's problem.
 * 0, or -EINVAL / -ENOMEM (then `cb` is not called).
 */
int px_acme_revoke(px_acme_client *c, const char *const *names, size_t n, const uint8_t *der,
                   size_t der_len, int reason, px_acme_issue_cb cb, void *arg);

/** 1 when the directory (once fetched) lists renewalInfo. */
int px_acme_client_has_ari(const px_acme_client *c);

/** Frees a result's buffers (the key is wiped). */
void px_acme_result_dispose(px_acme_result *r);

/** Cancels what is running (callbacks are not called) and frees the client
 *  once its handles have closed. */
void px_acme_client_free(px_acme_client *c);

#endif
