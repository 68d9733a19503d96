/*
 * The on-demand "ask" check: GET <ask_url>?domain=NAME on a plain-HTTP
 * endpoint the operator runs (usually on loopback); a 2xx answer allows
 * issuance for NAME, anything else (or no answer in time) refuses it.
 */
#ifndef PX_ACME_ASK_H
#define PX_ACME_ASK_H

#include <stdint.h>
#include <uv.h>

/** `allowed` is 1 for a 2xx answer, else 0; `why` says what happened. */
typedef void (*px_acme_ask_cb)(void *arg, int allowed, const char *why);

/**
 * Starts the request on `loop`. `name` must already be validated (it is put
 * in the query unescaped: validated names need no escaping). The callback
 * always runs later from the loop (acme/errors.h). Returns 0, -ENOMEM, or
 * -EINVAL for a URL that is not
 * http://host[:port]/path.
 */
int px_acme_ask(uv_loop_t *loop, const char *url, const char *name, uint64_t timeout_ms,
                px_acme_ask_cb cb, void *arg);

#endif
