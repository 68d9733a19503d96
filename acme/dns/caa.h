/*
 * The CAA check (RFC 8659) portico makes before an on-demand order: does
 * the name's relevant CAA record set let the configured CA issue? Asked
 * of one server on the manager's uv loop, climbing from the name to its
 * parents until a CAA set is found (§3).
 *
 * Error convention (acme/errors.h): the callback gets `err` NULL and the
 * verdict, or a sentence when the lookup failed; never from inside
 * px_dns_caa_check.
 */
#ifndef PX_ACME_DNS_CAA_H
#define PX_ACME_DNS_CAA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "acme/dns/wire.h"

/**
 * Evaluates the CAA records in the answer section of `msg` for a
 * non-wildcard name (RFC 8659 §4.2, §4.3): -1 when there are none (climb
 * to the parent), 1 when one `issue` property names one of `identities`
 * (NULL-terminated issuer domains) or there is no `issue` property at all,
 * 0 when the CA may not issue (then `found` lists the issuers named, or
 * says why).
 */
int px_dns_caa_evaluate(const uint8_t *msg, size_t len, const px_dns_answer *a,
                        char *const *identities, char *found, size_t cap);

/** Where the verdict goes: `allowed` 1 or 0, `where` the name whose CAA
 *  set decided ("" when none did), `found` the issuers it names. */
typedef void (*px_dns_caa_cb)(void *arg, const char *err, int allowed, const char *where,
                              const char *found);

/**
 * Starts the check of `name` against `server` (`rd`: a recursive
 * resolver). 0, or -ENOMEM (then `cb` is not called).
 */
int px_dns_caa_check(uv_loop_t *loop, const struct sockaddr_storage *server, int rd,
                     const char *name, char *const *identities, uint64_t timeout_ms,
                     px_dns_caa_cb cb, void *arg);

#endif
