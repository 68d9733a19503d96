/*
 * The HTTP/1.1 server session of a client connection: llhttp parsing, the
 * checks llhttp 8.1 lacks (docs/dependencies.md), limits, routing, portico's own
 * answers (redirects, 4xx), and handing proxied requests to an exchange.
 * The transport (conn.c) reaches it through px_session_ops only.
 */
#ifndef PX_H1_H
#define PX_H1_H

#include <llhttp.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/conn.h"
#include "proxy/front.h"
#include "proxy/http.h"

typedef struct px_exchange px_exchange;

/** The HTTP/1.1 state of one connection (its c->session). */
typedef struct px_h1 {
  px_conn *c;
  llhttp_t parser;
  px_http_head *head; /**< the request head being read */
  size_t head_bytes;  /**< bytes of head seen, for max_header_bytes */
  int head_error;     /**< status to answer once the head ends (431) */
  int in_field;       /**< last callback was a field name (1) or value (2) */
  int parser_paused;  /**< paused after a message, waiting for its response */
  char *stash;        /**< plaintext not yet parsed while paused */
  size_t stash_len, stash_off;
  px_exchange *ex;  /**< the running exchange, or NULL */
  px_front front;   /**< what the exchange calls (h1_front.c) */
  int resp_chunked; /**< the response is re-chunked toward the client */
  int resp_close;   /**< the response ends with the connection */
  int resp_head_sent;
  int tunnel;             /**< bytes go straight to ex's upstream (WebSocket) */
  const char *feed_start; /**< start of the buffer being parsed (obs-fold check) */
  char feed_prev_last;    /**< last byte of the previous buffer parsed */
  uint64_t feed_gen;      /**< counts parser runs, to date the pointers below */
  const char *name_end;   /**< end of the last field name, valid in run name_gen */
  uint64_t name_gen;
  int gap_open;            /**< between a field name and its value's first byte */
  int gap_crlf;            /**< a line break was seen in that gap (obs-fold) */
  char req_host[256];      /**< normalised Host of the current request, for logs */
  char req_authority[264]; /**< Host as received (port kept), for the upstream */
  /* A head llhttp has not accepted yet: on_headers_complete runs before
   * llhttp's own framing verdict, so the exchange starts at the first sign
   * that llhttp went on (a body byte, a chunk, the message end, or the end
   * of the run with no error). */
  int start_pending;
  int head_done;          /**< on_headers_complete ran: fields now are trailers */
  size_t chunk_ext_bytes; /**< extension bytes of the current chunk */
  const px_site *pending_site;
  px_front_request pending_req;
  int http01_wait;       /**< an http-01 request waits for the store (h1_http01.c) */
  char http01_token[96]; /**< its token */
} px_h1;

/** The HTTP/1.1 session of `c`. */
static inline px_h1 *px_h1_of(const px_conn *c) { return (px_h1 *)c->session; }

/** Makes HTTP/1.1 the session of `c` (c->session, c->session_ops). 0, or
 *  -1 when out of memory. */
int px_h1_start(px_conn *c);

/** Sets up the session's px_front (h1_front.c). */
void px_h1_front_init(px_conn *c);

/** The response (an exchange's, or a waiting http-01 answer's) is fully
 *  queued: the connection goes on to the next request (keep-alive) or
 *  closes. */
void px_h1_exchange_done(px_conn *c, int keep_alive);

/**
 * Sends one of portico's own responses (4xx/5xx/redirect) and logs it.
 * `extra` are preformatted header lines or NULL. With `close` the connection
 * closes after the response.
 */
void px_h1_respond(px_conn *c, int status, const char *extra, int close);

/** px_h1_respond with close, for a failure the exchange already logged. */
void px_h1_respond_unlogged(px_conn *c, int status);

#endif
