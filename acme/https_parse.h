/*
 * Response parsing for acme/https_client.c: llhttp (HTTP_RESPONSE, with
 * Content-Length, chunked or close-delimited bodies) plus the bounds llhttp
 * does not enforce (DESIGN.md, "Known gaps"): header bytes, header count,
 * chunk extensions and body size. Pure: no I/O, so it is tested on its own.
 *
 * Internal to acme/ (the `px_https_parse` prefix); users go through
 * acme/https_client.h.
 */
#ifndef PX_ACME_HTTPS_PARSE_H
#define PX_ACME_HTTPS_PARSE_H

#include <llhttp.h>
#include <stddef.h>

#include "acme/https_client.h"

typedef struct px_https_parse {
  llhttp_t parser;
  px_https_response *resp;
  size_t body_cap;
  size_t head_bytes; /* status line, fields, chunk extensions */
  size_t nheaders;
  char field[32];    /* the current field name, lowercased (longer names match nothing) */
  size_t field_len;
  char **target;     /* where the current field's value goes, or NULL to drop it */
  char *link;        /* the current Link value, parsed when it is complete */
  const char *err;   /* why a callback refused the input */
  int is_head;       /* a HEAD response has no body (RFC 9110 §9.3.2) */
  int complete, headers_done, keep_alive, got_bytes;
} px_https_parse;

/** (Re)starts parsing one response; frees what a previous one left. 0 or -1 (memory). */
int px_https_parse_init(px_https_parse *p, int is_head);

/**
 * Feeds received bytes. Returns NULL, or a px_https_err_* string. Sets
 * `complete` when the response has ended; bytes after it clear `keep_alive`.
 */
const char *px_https_parse_feed(px_https_parse *p, const char *data, size_t len);

/** The server closed the stream cleanly: returns 0 when that completes the
 *  response (a close-delimited body, RFC 9112 §6.3), else -1. */
int px_https_parse_eof(px_https_parse *p);

/** Hands over the completed response (NULL when out of memory). */
px_https_response *px_https_parse_take(px_https_parse *p, int reused);

/** Frees what the parser holds. A zeroed struct is fine. */
void px_https_parse_dispose(px_https_parse *p);

#endif
