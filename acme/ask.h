/*
 * The on-demand "ask" check: GET <ask_url>?domain=NAME on a plain-HTTP
 * endpoint the operator runs (usually on loopback); a 2xx answer allows
 * issuance for NAME, anything else (or no answer in time) refuses it.
 * A 2xx may carry a JSON object with the name's own settings
 * (docs/on-demand.md, "Per-name settings"):
 *   {"redirect_http": true|false, "hsts": true|false|SECONDS}
 */
#ifndef PX_ACME_ASK_H
#define PX_ACME_ASK_H

#include <stdint.h>
#include <uv.h>

/** A name's own settings from the ask answer; -1 where the answer is silent. */
typedef struct px_acme_site_prefs {
  int redirect_http; /**< 1 redirect port 80 to HTTPS, 0 proxy it, -1 the site's */
  int64_t hsts;      /**< max-age in seconds, 0 off, -1 the site's */
} px_acme_site_prefs;

/** HSTS max-age for `"hsts": true` (60 days, the proxy's default too). */
#define PX_ACME_HSTS_DEFAULT_MAX_AGE 5184000
/** Largest HSTS max-age an answer may set (two years, as browsers cap it). */
#define PX_ACME_HSTS_MAX_AGE_MAX 63072000

/** Settings that say nothing: both -1. */
void px_acme_site_prefs_none(px_acme_site_prefs *p);

/**
 * Reads an ask answer's body: an empty or non-JSON body leaves `p` silent
 * (returns 0); a JSON object sets what it names and other members are
 * ignored (returns 0); a JSON body that is not an object, or a known member
 * with a wrong value, returns -1 with a sentence in `err` and leaves `p`
 * silent.
 */
int px_acme_site_prefs_parse(const char *body, size_t len, const char *content_type,
                             px_acme_site_prefs *p, char *err, size_t errlen);

/** `allowed` is 1 for a 2xx answer, else 0; `why` says what happened;
 *  `prefs` the name's settings from the answer (silent when refused). */
typedef void (*px_acme_ask_cb)(void *arg, int allowed, const char *why,
                               const px_acme_site_prefs *prefs);

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
