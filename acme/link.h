/*
 * Link header fields (RFC 8288) of an ACME server's responses: the issuer
 * chain ("up", RFC 8555 §7.4.2) and alternate chains ("alternate").
 * Error convention: acme/errors.h (NULL when nothing matches).
 */
#ifndef PX_ACME_LINK_H
#define PX_ACME_LINK_H

#include <stddef.h>

#include "acme/transport.h"

/**
 * Finds the target of a link whose relation types include `rel` (RFC 8288
 * §3.3: a space-separated, case-insensitive list), e.g. "up" or
 * "alternate", starting at index *pos of the response's Link values (for
 * several matches; *pos then moves past the value matched). Returns a
 * malloc'd URI reference or NULL.
 */
char *px_acme_link(const px_acme_response *r, const char *rel, size_t *pos);

#endif
