/*
 * Request ids (log.request_id_header, docs/logging.md): a request that
 * brings a valid one keeps it; any other gets 128 random bits in hex. The
 * id is passed upstream in the same field and written to the access log.
 */
#ifndef PX_REQUEST_ID_H
#define PX_REQUEST_ID_H

#include <stddef.h>

#include "proxy/http.h"

/** Longest id kept from a client; a longer one is replaced. */
#define PX_REQUEST_ID_MAX 64

/** Length of a generated id: 128 bits as lowercase hex. */
#define PX_REQUEST_ID_GENERATED 32

/** NULL when `name` can carry request ids, else a phrase for a config
 *  error: it must be a token of at most 64 bytes and none of the fields
 *  portico writes itself or that frame a message. */
const char *px_request_id_check_header_name(const char *name);

/** True when a received id is kept: 1 to PX_REQUEST_ID_MAX token
 *  characters (RFC 9110 §5.6.2), so it cannot break a log line or a
 *  header. */
int px_request_id_valid(const char *v, size_t len);

/** Writes 32 lowercase hex digits of fresh randomness and a NUL. */
void px_request_id_generate(char out[PX_REQUEST_ID_GENERATED + 1]);

/** The request's id into `out`: the first `name` field of `h` when valid,
 *  else a generated one. Returns its length. */
size_t px_request_id_take(const px_http_head *h, const char *name, char out[PX_REQUEST_ID_MAX + 1]);

#endif
