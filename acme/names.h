/*
 * Validation and normalisation of DNS names that clients send (SNI, Host).
 *
 * Error convention (acme/errors.h): functions return a length (>= 0) or a negative
 * PX_ACME_NAME_E* code; px_acme_name_strerror() turns a code into a static
 * string that is safe to log.
 */
#ifndef PX_ACME_NAMES_H
#define PX_ACME_NAMES_H

#include <stddef.h>

/** Longest name accepted, without a trailing dot (RFC 1035 §2.3.4). */
#define PX_ACME_NAME_MAX 253
/** Longest label (RFC 1035 §2.3.4). */
#define PX_ACME_LABEL_MAX 63

enum {
  PX_ACME_NAME_EEMPTY = -1,      /* nothing left after the trailing dot */
  PX_ACME_NAME_ETOOLONG = -2,    /* more than 253 bytes */
  PX_ACME_NAME_ELABEL = -3,      /* a label longer than 63 bytes */
  PX_ACME_NAME_EEMPTYLABEL = -4, /* "..", a leading dot, or two trailing dots */
  PX_ACME_NAME_ECHAR = -5,       /* a byte outside [A-Za-z0-9.-] */
  PX_ACME_NAME_ENONASCII = -6,   /* a byte >= 0x80: only A-labels are accepted */
  PX_ACME_NAME_EHYPHEN = -7,     /* a label starting or ending with '-' */
  PX_ACME_NAME_ENODOT = -8,      /* a single label */
  PX_ACME_NAME_EIP = -9,         /* an IPv4 or IPv6 literal */
  PX_ACME_NAME_ECAP = -10,       /* the output buffer is too small */
};

/**
 * Validates `in` (`len` bytes; a NUL inside counts as a bad byte) and writes
 * the normalised name, lowercase, without a trailing dot and NUL-terminated,
 * to `out` (capacity `cap`, PX_ACME_NAME_MAX + 1 always suffices).
 * Returns the normalised length or a negative PX_ACME_NAME_E* code; on error
 * `out` holds an empty string when cap > 0.
 *
 * This is the only function that makes a client-supplied name safe to use as
 * a path component or in an ACME identifier.
 */
int px_acme_name_normalize(const char *in, size_t len, char *out, size_t cap);

/** A static, log-safe description of a PX_ACME_NAME_E* code. */
const char *px_acme_name_strerror(int err);

/** Most identifiers in one ACME order: Let's Encrypt refuses more than 100
 *  names in a newOrder, so a `tls: acme` site may list at most this many. */
#define PX_ACME_ORDER_NAMES_MAX 100

/**
 * Whether a host of a `tls: acme` site (already normalised by the config
 * loader) can be put in an order that portico knows how to validate: NULL
 * when it can, else a static sentence saying why not and what to do. An IP
 * address in canonical form (tls/ipname.h) is accepted (RFC 8738); a
 * wildcard is refused unless
 * `dns01` says acme.dns is set up (only dns-01 can validate one, RFC 8555
 * §7.1.3), and "*" (every other name is what `tls: on_demand` is for).
 */
const char *px_acme_order_name_problem(const char *host, int dns01);

/**
 * Whether `name` may name a certificate (an order, a job, a cache entry):
 * a normalised DNS name, "*." and one, or a canonical IP name
 * (tls/ipname.h). Names a client sends go through px_acme_name_normalize
 * instead, which refuses addresses: only the configuration names one.
 */
int px_acme_cert_name_ok(const char *name);

#endif
