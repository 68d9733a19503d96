/*
 * HTTPS/1.1 requests to the ACME server, asynchronous on a uv loop:
 * uv_getaddrinfo, uv_tcp_connect, tls/'s client filter (tls/tls_client.h:
 * it verifies the server against the system roots plus an optional extra
 * file), and llhttp for the response; no SSL_* call lives here. One
 * request per connection (the CA sees few requests per certificate;
 * simplicity wins). Everything is bounded:
 * 16 KiB of headers, 1 MiB of body, one overall timeout.
 *
 * Error convention (acme/errors.h): the callback gets `err` NULL and a
 * response, or a sentence and NULL. It always runs later from the loop.
 */
#ifndef PX_ACME_TRANSPORT_H
#define PX_ACME_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tls/tls_client.h"

#define PX_ACME_MAX_BODY (1024 * 1024)
#define PX_ACME_MAX_LINKS 8

typedef struct px_acme_response {
  int status;
  char *body; /**< NUL-terminated */
  size_t body_len;
  char *location, *replay_nonce, *retry_after, *content_type; /**< or NULL */
  char *links[PX_ACME_MAX_LINKS];                             /**< raw Link header values */
  size_t nlinks;
} px_acme_response;

typedef void (*px_acme_response_cb)(void *arg, const char *err, px_acme_response *resp);

/**
 * Sends `method` `url` with an optional body: https:// with `tls`, or plain
 * http:// when `tls` is NULL (only for the operator's own ask endpoint).
 * Returns 0, or a negative errno: -EINVAL for a URL it cannot use,
 * -ENOMEM (then `cb` is not called).
 */
int px_acme_request(uv_loop_t *loop, px_tls_client *tls, const char *method, const char *url,
                    const char *content_type, const char *body, size_t body_len,
                    uint64_t timeout_ms, px_acme_response_cb cb, void *arg);

/** Frees a response. */
void px_acme_response_free(px_acme_response *r);

/**
 * Ends every request still running on `loop` at once, each callback getting
 * an error that says portico is stopping, so a loop about to stop is not
 * held for a request's timeout by a CA (or ask endpoint, or webhook) that
 * does not answer. Requests the callbacks start are left alone. Call on the
 * loop's thread.
 */
void px_acme_requests_abort(uv_loop_t *loop);

#endif
