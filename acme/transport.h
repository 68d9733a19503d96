/*
 * HTTPS/1.1 requests to the ACME server, asynchronous on a uv loop:
 * uv_getaddrinfo, uv_tcp_connect, a BoringSSL client over memory BIOs that
 * verifies the server against the system roots plus an optional extra file,
 * and llhttp for the response. One request per connection (the CA sees few
 * requests per certificate; simplicity wins). Everything is bounded:
 * 16 KiB of headers, 1 MiB of body, one overall timeout.
 *
 * Error convention: the callback gets `err` NULL and a response, or a
 * sentence and NULL. It always runs later from the loop.
 */
#ifndef PX_ACME_TRANSPORT_H
#define PX_ACME_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PX_ACME_MAX_BODY (1024 * 1024)
#define PX_ACME_MAX_LINKS 8

typedef struct px_acme_response {
  int status;
  char *body; /**< NUL-terminated */
  size_t body_len;
  char *location, *replay_nonce, *retry_after, *content_type; /**< or NULL */
  char *links[PX_ACME_MAX_LINKS]; /**< raw Link header values */
  size_t nlinks;
} px_acme_response;

typedef void (*px_acme_response_cb)(void *arg, const char *err, px_acme_response *resp);

/** Trust settings shared by the requests of one client. */
typedef struct px_acme_tls px_acme_tls;

/** Loads the system roots and `ca_file` (may be NULL). NULL with `err` set. */
px_acme_tls *px_acme_tls_new(const char *ca_file, char *err, size_t errlen);

/** Frees trust settings (no request may still use them). */
void px_acme_tls_free(px_acme_tls *t);

/**
 * Sends `method` `url` with an optional body: https:// with `tls`, or plain
 * http:// when `tls` is NULL (only for the operator's own ask endpoint).
 * Returns 0, or -1 for a URL it cannot use (then `cb` is not called).
 */
int px_acme_request(uv_loop_t *loop, px_acme_tls *tls, const char *method, const char *url,
                    const char *content_type, const char *body, size_t body_len, uint64_t timeout_ms,
                    px_acme_response_cb cb, void *arg);

/** Frees a response. */
void px_acme_response_free(px_acme_response *r);

/**
 * Finds the target of a Link with `rel` (RFC 8288), e.g. "up" or
 * "alternate", starting at index *pos of the response's links (for several
 * matches). Returns a malloc'd URL or NULL.
 */
char *px_acme_link(const px_acme_response *r, const char *rel, size_t *pos);

#endif
