/*
 * An asynchronous HTTPS/1.1 client for talking to an ACME server (RFC 8555
 * §6.1: every request goes over HTTPS). It runs on a caller-supplied
 * uv_loop_t (the certificate manager's): names resolve with uv_getaddrinfo,
 * connections open with uv_tcp_connect, TLS is a BoringSSL client over
 * memory BIOs that checks the server's name against its certificate
 * (RFC 6125) and trusts the system roots plus an optional `ca_file`, and
 * llhttp parses the response (acme/https_parse.h).
 *
 * Everything the server sends is bounded (see the PX_HTTPS_MAX_* settings)
 * and every request has a connect timeout and an overall timeout. One idle
 * connection is kept for reuse by the next request to the same host:port.
 *
 * Error convention: a completion callback gets `err` NULL and a response,
 * or one of the px_https_err_* strings below (compare by pointer) and NULL.
 * Callbacks always run later from the loop, never from inside the call that
 * started the request.
 */
#ifndef PX_ACME_HTTPS_CLIENT_H
#define PX_ACME_HTTPS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Bytes of status line, header fields and chunk extensions in one response. */
#define PX_HTTPS_MAX_HEADER_BYTES (16 * 1024)
/** Header fields in one response. */
#define PX_HTTPS_MAX_HEADERS 64
/** Bytes of response body (an ACME object or a PEM chain is far smaller). */
#define PX_HTTPS_MAX_BODY (1024 * 1024)
/** Links kept from the Link header fields of one response. */
#define PX_HTTPS_MAX_LINKS 16
/** Length of a request URL. */
#define PX_HTTPS_MAX_URL 2048

/** Default timeouts, used when the options leave them 0. */
#define PX_HTTPS_CONNECT_TIMEOUT_MS 10000
#define PX_HTTPS_REQUEST_TIMEOUT_MS 30000
/** How long an idle keep-alive connection is kept. */
#define PX_HTTPS_IDLE_TIMEOUT_MS 30000

extern const char px_https_err_url[];              /**< not an https:// URL we accept */
extern const char px_https_err_resolve[];          /**< the host name does not resolve */
extern const char px_https_err_connect[];          /**< no address accepted a connection */
extern const char px_https_err_connect_timeout[];  /**< connecting took too long */
extern const char px_https_err_timeout[];          /**< the whole request took too long */
extern const char px_https_err_untrusted[];        /**< chain or name did not verify */
extern const char px_https_err_tls[];              /**< any other TLS failure */
extern const char px_https_err_io[];               /**< read/write error or early close */
extern const char px_https_err_protocol[];         /**< not a valid HTTP/1.1 response */
extern const char px_https_err_headers_too_large[]; /**< over the header bounds */
extern const char px_https_err_body_too_large[];   /**< over PX_HTTPS_MAX_BODY */
extern const char px_https_err_nomem[];            /**< out of memory */

/** One link of a Link header field (RFC 8288 §3). */
typedef struct px_https_link {
  char *url; /**< the target, as sent (ACME servers send absolute URLs) */
  char *rel; /**< the relation types, space-separated, lowercased */
} px_https_link;

/** A response. The callback owns it: free it with px_https_response_free. */
typedef struct px_https_response {
  int status;
  char *replay_nonce; /**< Replay-Nonce (RFC 8555 §6.5.1), or NULL */
  char *location;     /**< Location, or NULL */
  char *retry_after;  /**< Retry-After, unparsed (see acme/problem.h), or NULL */
  char *content_type; /**< Content-Type, or NULL */
  px_https_link links[PX_HTTPS_MAX_LINKS]; /**< from every Link field, in order */
  size_t nlinks;
  char *body; /**< NUL-terminated (the NUL is not counted); never NULL */
  size_t body_len;
  int reused_connection; /**< it came over a kept-alive connection */
} px_https_response;

/** What a request sends. Only `method` and `url` are required. */
typedef struct px_https_request_opts {
  const char *method;       /**< "GET", "HEAD" or "POST" */
  const char *url;          /**< https://host[:port]/path */
  const char *content_type; /**< default for a body: application/jose+json (RFC 8555 §6.2) */
  const char *body;
  size_t body_len;
} px_https_request_opts;

typedef struct px_https_client_opts {
  const char *ca_file;         /**< extra trusted roots (PEM), or NULL */
  const char *system_roots;    /**< NULL: /etc/ssl/certs/ca-certificates.crt; "" for none */
  uint64_t connect_timeout_ms; /**< 0: PX_HTTPS_CONNECT_TIMEOUT_MS */
  uint64_t request_timeout_ms; /**< 0: PX_HTTPS_REQUEST_TIMEOUT_MS */
  int no_keepalive;            /**< close every connection after its response */
} px_https_client_opts;

typedef struct px_https_client px_https_client;
typedef struct px_https_req px_https_req;

typedef void (*px_https_cb)(void *arg, const char *err, px_https_response *resp);

/**
 * Creates a client on `loop` (all its requests run there). Returns NULL and
 * a sentence in `err` when the trust roots cannot be loaded: `ca_file` must
 * hold at least one certificate; missing system roots are tolerated when
 * `ca_file` is given (minimal containers).
 */
px_https_client *px_https_client_new(uv_loop_t *loop, const px_https_client_opts *opts,
                                     char *err, size_t errlen);

/** The loop the client runs on. */
uv_loop_t *px_https_client_loop(const px_https_client *c);

/**
 * Cancels every request still running (their callbacks are not called),
 * closes the idle connection and frees the client once the loop has run
 * the close callbacks. Keep running the loop after this.
 */
void px_https_client_free(px_https_client *c);

/**
 * Starts a request. Returns a handle for px_https_cancel (valid until the
 * callback runs), or NULL when out of memory or the client is being freed
 * (then `cb` is never called). Every other failure, even a malformed URL,
 * arrives through `cb`.
 */
px_https_req *px_https_request(px_https_client *c, const px_https_request_opts *opts,
                               px_https_cb cb, void *arg);

/** Stops a request; its callback will not be called. */
void px_https_cancel(px_https_req *r);

/** Frees a response. NULL is fine. */
void px_https_response_free(px_https_response *r);

/**
 * Finds the next link whose relation types include `rel` (e.g. "up",
 * "alternate"), starting at index *pos (pos may be NULL: from the start),
 * which is advanced past the match so that repeated calls list every match.
 * Returns the URL (owned by the response) or NULL.
 */
const char *px_https_link_find(const px_https_response *r, const char *rel, size_t *pos);

/**
 * Parses one Link field value (RFC 8288 §3: `<url>; rel="up", <url2>;
 * rel=alternate`) and appends its links to out[*n .. max); links beyond
 * `max` and links without a rel are dropped. Returns 0, or -1 when the
 * value is malformed or memory runs out (links parsed before stay).
 */
int px_acme_parse_links(const char *value, size_t len, px_https_link *out, size_t max,
                        size_t *n);

/** Frees the strings of links[0 .. n). */
void px_https_links_clear(px_https_link *links, size_t n);

#endif
