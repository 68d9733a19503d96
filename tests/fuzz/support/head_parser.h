/*
 * An HTTP/1.1 head parser for the fuzz drivers: llhttp (strict, as portico
 * builds it) with callbacks that fill a px_http_head through the same public
 * functions h1.c (requests) and exchange.c (responses) call, in the same
 * order. Those files' own callbacks are static and tied to a connection; this
 * copy of their field-building steps is what the drivers can reach.
 */
#ifndef PX_FUZZ_HEAD_PARSER_H
#define PX_FUZZ_HEAD_PARSER_H

#include <llhttp.h>
#include <stddef.h>

#include "proxy/http.h"

typedef struct fuzz_head {
  llhttp_t parser;
  px_http_head *head;     /**< the first message's head (NULL if none began) */
  px_http_head *trailers; /**< trailer fields after a chunked body, or NULL */
  size_t arena_cap;       /**< as portico sizes it for this kind of head */
  size_t max_fields;
  int in_field;
  int headers_done;       /**< on_headers_complete ran */
  int message_done;       /**< on_message_complete ran */
  int chunked;            /**< F_CHUNKED at the end of the head */
  int64_t content_length; /**< -1 when there was none */
  int upgrade;
  int keep_alive;
  llhttp_errno_t err; /**< what llhttp_execute (then llhttp_finish) said */
} fuzz_head;

/**
 * Parses `data` as one HTTP/1.x message of `type` (HTTP_REQUEST or
 * HTTP_RESPONSE), stopping after its end; with `at_eof` the input is all
 * there is (llhttp_finish, as on a connection's EOF). `*fh` is initialised
 * here; free it with fuzz_head_dispose().
 */
void fuzz_head_parse(fuzz_head *fh, llhttp_type_t type, const char *data, size_t len,
                     size_t arena_cap, size_t max_fields, int at_eof);

/** Frees the heads. */
void fuzz_head_dispose(fuzz_head *fh);

#endif
