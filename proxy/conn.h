/*
 * A client connection: the socket, the optional TLS filter, the timer, and
 * the HTTP/1.1 session on top. The connection owns its uv handles and frees
 * itself in the last close callback (STYLE.md practice 1).
 */
#ifndef PX_CONN_H
#define PX_CONN_H

#include <llhttp.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/front.h"
#include "proxy/http.h"
#include "proxy/lazy_timer.h"
#include "proxy/worker.h"
#include "tls/tls.h"

typedef struct px_exchange px_exchange;

/** How long and how much client input is drained after a final response. */
#define PX_LINGER_MS 2000
#define PX_LINGER_MAX_BYTES (1024 * 1024)

/** Where the connection is in its life; decides what the timer means. */
typedef enum px_conn_state {
  PX_CONN_HANDSHAKE, /**< TLS handshake: timeouts.handshake */
  PX_CONN_CERT_WAIT, /**< handshake paused for an on-demand certificate: timeouts.on_demand */
  PX_CONN_IDLE,      /**< between requests: timeouts.keepalive */
  PX_CONN_HEADERS,   /**< reading a request head: timeouts.request_header (absolute) */
  PX_CONN_ACTIVE,    /**< an exchange is running; it sets the timers */
  PX_CONN_CLOSING,   /**< flushing the last bytes, then close */
} px_conn_state;

struct px_conn {
  uv_tcp_t tcp;
  px_lazy_timer timer;
  px_worker *w;
  px_conn *next, *prev; /**< the worker's list */
  int pending_closes;
  int closed;            /**< uv_close was called */
  px_conn_state state;
  int is_https;
  int reading;           /**< uv_read_start is active */
  int read_paused;       /**< backpressure or an exchange asked to stop reading */
  int peer_eof;          /**< the client half-closed or reset */
  int close_after_flush; /**< close once write_pending reaches 0 */
  size_t linger_bytes;   /**< input dropped while lingering */
  int dirty;             /**< in the worker's flush list */
  px_tls_conn *tls;      /**< NULL on plain HTTP */
  struct px_h2 *h2;      /**< the HTTP/2 session when ALPN chose "h2" */
  char peer_ip[48];
  char sni[256];
  size_t write_pending;  /**< bytes in uv_write not yet written */
  uint64_t requests;     /**< requests served on this connection */
  uint64_t moved;        /**< bytes read from and written to the client */
  uint64_t rate_mark_moved, rate_mark_at; /**< `moved` and loop time when the min_rate window began */

  /* HTTP/1.1 session */
  llhttp_t parser;
  px_http_head *head;    /**< the request head being read */
  size_t head_bytes;     /**< bytes of head seen, for max_header_bytes */
  int head_error;        /**< status to answer once the head ends (431) */
  int in_field;          /**< last callback was a field name (1) or value (2) */
  int parser_paused;     /**< paused after a message, waiting for its response */
  char *stash;           /**< plaintext not yet parsed while paused */
  size_t stash_len, stash_off;
  px_exchange *ex;       /**< the running exchange, or NULL */
  px_front front;        /**< what the exchange calls (h1_front.c) */
  int resp_chunked;      /**< the response is re-chunked toward the client */
  int resp_close;        /**< the response ends with the connection */
  int resp_head_sent;
  int tunnel;            /**< bytes go straight to ex's upstream (WebSocket) */
  const char *feed_start; /**< start of the buffer being parsed (obs-fold check) */
  char feed_prev_last;   /**< last byte of the previous buffer parsed */
  uint64_t feed_gen;     /**< counts parser runs, to date the pointers below */
  const char *name_end;  /**< end of the last field name, valid in run name_gen */
  uint64_t name_gen;
  int gap_open;          /**< between a field name and its value's first byte */
  int gap_crlf;          /**< a line break was seen in that gap (obs-fold) */
  char req_host[256];    /**< normalised Host of the current request, for logs */
  char req_authority[264]; /**< Host as received (port kept), for the upstream */
  /* A head llhttp has not accepted yet: on_headers_complete runs before
   * llhttp's own framing verdict, so the exchange starts at the first sign
   * that llhttp went on (a body byte, a chunk, the message end, or the end
   * of the run with no error). */
  int start_pending;
  int head_done;         /**< on_headers_complete ran: fields now are trailers */
  size_t chunk_ext_bytes; /**< extension bytes of the current chunk */
  const px_site *pending_site;
  px_front_request pending_req;
};

/** Accepts a connection from `listener` and starts it. */
void px_conn_accept(px_listener *l);

/**
 * Sends bytes to the client (through TLS when on HTTPS). Returns 0 or a
 * negative errno; on error the connection is being closed.
 */
int px_conn_write(px_conn *c, const void *data, size_t len);

/** Closes at once (queued output is dropped). Safe to call twice. */
void px_conn_close(px_conn *c);

/** Flushes what is queued, then closes (after close_notify on TLS). */
void px_conn_close_after_flush(px_conn *c);

/** Stops reading from the client (backpressure toward the client). */
void px_conn_pause_read(px_conn *c);

/** Stops socket reads without marking backpressure (the parser paused). */
void px_conn_stop_reading(px_conn *c);

/** True when more than a read slab of HTTP/1.1 input waits unparsed (the
 *  parser is paused between pipelined requests): reads stop until it drains. */
int px_conn_input_full(const px_conn *c);

/** Restarts socket reads (no parsing) unless backpressure holds them;
 *  used from inside the parser. */
void px_conn_start_reading(px_conn *c);

/** Ends backpressure: resumes reading and parses anything stashed (never
 *  from inside the parser). */
void px_conn_resume_read(px_conn *c);

/** Arms the connection timer for `ms` milliseconds (0 stops it). */
void px_conn_set_timer(px_conn *c, uint64_t ms);

/** Called by the exchange once its response has been fully queued. */
void px_conn_exchange_done(px_conn *c, int keep_alive);

/** The certificate this connection's handshake waits for is resolved. */
void px_conn_retry_handshake(px_conn *c);

/** Sends the TLS output an event queued (the worker's flush check). */
void px_conn_flush(px_conn *c);

/** The worker's once-a-second sweep: closes a connection that, while the
 *  proxy waits on its client (request body to read, response bytes it
 *  does not take), moved fewer than timeouts.min_rate bytes per second
 *  over timeouts.min_rate_window. */
void px_conn_check_rate(px_conn *c, uint64_t now);

/** Called by the worker when draining: idle connections close now. */
void px_conn_drain(px_conn *c);

#endif
