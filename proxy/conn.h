/*
 * A client connection's transport: the socket, the optional TLS filter,
 * the timer, writes with backpressure accounting, lingering close. It knows
 * no HTTP: the session on top (HTTP/1.1 in h1.c, HTTP/2 in h2.c) is reached
 * through px_session_ops, as h2o's sockets know no protocol and nginx swaps
 * a handler pointer. The connection owns its uv handles and frees itself in
 * the last close callback (docs/conventions.md, "Ownership").
 */
#ifndef PX_CONN_H
#define PX_CONN_H

#include <stdint.h>
#include <uv.h>

#include "proxy/util/lazy_timer.h"
#include "proxy/worker.h"
#include "tls/tls.h"

/** How long and how much client input is drained after a final response. */
#define PX_LINGER_MS 2000
#define PX_LINGER_MAX_BYTES (1024 * 1024)

/** Where the connection is in its life; decides what the timer means. */
typedef enum px_conn_state {
  PX_CONN_PROXY_HEADER, /**< waiting for the PROXY protocol header: timeouts.proxy_header */
  PX_CONN_HANDSHAKE,    /**< TLS handshake: timeouts.handshake */
  PX_CONN_CERT_WAIT,    /**< handshake paused for an on-demand certificate: timeouts.on_demand */
  PX_CONN_IDLE,         /**< between requests: timeouts.keepalive */
  PX_CONN_HEADERS,      /**< reading a request head: timeouts.request_header (absolute) */
  PX_CONN_ACTIVE,       /**< an exchange is running; it sets the timers */
  PX_CONN_CLOSING,      /**< flushing the last bytes, then close */
} px_conn_state;

/** What the session is doing, for the transport's end-of-input rules. */
typedef enum px_session_phase {
  PX_SESSION_IDLE,     /**< no request of the connection's own is running (HTTP/2 always) */
  PX_SESSION_REQUEST,  /**< a request runs and its body is still due */
  PX_SESSION_RESPONSE, /**< a request runs and was read whole: only its response is due */
  PX_SESSION_TUNNEL,   /**< bytes flow both ways unparsed (WebSocket) */
} px_session_phase;

/**
 * The protocol on top of a connection (h1.c, h2.c). The transport calls
 * these and nothing else of the session; each gets the connection, whose
 * `session` is the protocol's own state.
 */
typedef struct px_session_ops {
  /** Plaintext from the client. 1 when more may be fed now, 0 when the
   *  session paused (the rest is its to keep) or the connection closes. */
  int (*feed)(px_conn *c, const char *data, size_t len);
  /** Input may flow again: parse what the session held back. 1 when the
   *  transport may read and feed more. */
  int (*resume)(px_conn *c);
  /** True while the session holds input until a response is out. */
  int (*paused)(const px_conn *c);
  /** True when what waits unparsed (the session's own, plus `transport`
   *  bytes of undecrypted TLS input) is more than reads may add to. */
  int (*input_full)(const px_conn *c, size_t transport);
  /** A write completed: output drained. */
  void (*drain)(px_conn *c);
  /** The worker's check phase: produce queued output (may be NULL). */
  void (*flush)(px_conn *c);
  /** The connection timer fired after the handshake. */
  void (*timer)(px_conn *c);
  /** What the session is doing now. */
  px_session_phase (*phase)(const px_conn *c);
  /** True while a request waits on the client (timeouts.min_rate). */
  int (*awaits_client)(const px_conn *c);
  /** The worker drains: end the session gracefully. */
  void (*shutdown)(px_conn *c);
  /** The certificate manager resolved `key` (a name, or an http-01 token)
   *  that the session may be waiting for (may be NULL). */
  void (*resolved)(px_conn *c, const char *key);
  /** The connection closes: abort what runs, drop buffers. The session's
   *  memory stays valid (callers up the stack may hold it) until `free`. */
  void (*close)(px_conn *c);
  /** The connection's last close callback: free the session. */
  void (*free)(px_conn *c);
} px_session_ops;

struct px_conn {
  uv_tcp_t tcp;
  px_lazy_timer timer;
  px_worker *w;
  px_wgen *wg;          /**< the configuration it was accepted under (held until closed) */
  px_conn *next, *prev; /**< the worker's list */
  int pending_closes;
  int closed; /**< uv_close was called */
  px_conn_state state;
  int is_https;
  int reading;           /**< uv_read_start is active */
  int read_paused;       /**< backpressure or an exchange asked to stop reading */
  int peer_eof;          /**< the client half-closed or reset */
  int close_after_flush; /**< close once write_pending reaches 0 */
  size_t linger_bytes;   /**< input dropped while lingering */
  int dirty;             /**< in the worker's flush list */
  px_tls_conn *tls;      /**< NULL on plain HTTP */
  void *session;         /**< the protocol's state (px_h1, px_h2) */
  const px_session_ops *session_ops;
  px_session_start_fn start_session;
  char peer_ip[48]; /**< the client: from the PROXY header when the listener takes one */
  int metrics_kind; /**< 1 + px_metrics_conn once counted as open, else 0 */
  char sni[256];
  int trusted;     /**< peer_ip is in trusted_proxies: its forwarding fields are kept */
  int tls_done;    /**< the TLS handshake completed (TLS fields for the access log) */
  uint8_t *pp_buf; /**< a PROXY header received in pieces (PX_CONN_PROXY_HEADER only) */
  size_t pp_len;
  size_t write_pending; /**< bytes in uv_write not yet written */
  uint64_t requests;    /**< requests served on this connection */
  uint64_t moved;       /**< bytes read from and written to the client */
  uint64_t rate_mark_moved,
      rate_mark_at; /**< `moved` and loop time when the min_rate window began */
};

struct px_access_entry;

/** Fills the access-log fields the connection knows: client address,
 *  scheme, and after a TLS handshake the version, ALPN and SNI. */
void px_conn_access_fields(const px_conn *c, struct px_access_entry *e);

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

/** True when more than a read slab of input waits unparsed (the HTTP/1.1
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

/** Marks a connection as having output to send at the end of this loop
 *  iteration (one write for everything an event produced). */
void px_conn_mark_dirty(px_conn *c);

/* The worker's hooks (px_worker_hooks), over its connections: */

/** Sends the output of every connection marked dirty (the check phase). */
void px_conn_flush_dirty(px_worker *w);

/** The once-a-second sweep: closes each connection that, while the proxy
 *  waits on its client (request body to read, response bytes it does not
 *  take), moved fewer than timeouts.min_rate bytes per second over
 *  timeouts.min_rate_window. */
void px_conn_check_rates(px_worker *w, uint64_t now);

/** Draining: idle connections close now, busy ones finish their request. */
void px_conn_drain_all(px_worker *w);

/** Closes every connection at once (the drain timeout passed). */
void px_conn_close_all(px_worker *w);

/** The certificate manager resolved `name`: connections whose handshake
 *  waits on its certificate go on, and a request waiting for an http-01
 *  answer with that token (`name` is then the token) is answered. */
void px_conn_retry_handshakes(px_worker *w, const char *name);

#endif
