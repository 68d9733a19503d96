/*
 * What an exchange needs from the client side, whatever protocol it speaks:
 * HTTP/1.1 on a connection (h1_front.c) or one HTTP/2 stream (h2.c). The
 * exchange streams the response through these operations and asks for the
 * request body to pause or resume (backpressure).
 */
#ifndef PX_FRONT_H
#define PX_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/http.h"

typedef struct px_front px_front;
typedef struct px_worker px_worker;
struct px_conn;
typedef struct px_wgen px_wgen;

typedef struct px_front_ops {
  /**
   * Sends the response head. `h` is the upstream's head (hop-by-hop fields
   * are the front's to drop), `hsts` the site's policy when portico sets
   * Strict-Transport-Security (it then replaces the upstream's) or NULL,
   * `content_length` -1 when unknown, `no_body` for HEAD/204/304, and
   * `upgrade` for a 101 that starts a WebSocket tunnel. 0 or -1 (closing).
   */
  int (*response_head)(px_front *f, const px_http_head *h, const px_hsts *hsts,
                       int64_t content_length, int no_body, int upgrade);
  /** Sends response body bytes. 0 or -1. */
  int (*response_body)(px_front *f, const char *data, size_t len);
  /** The response body is complete (with the upstream's trailers, or NULL). */
  int (*response_end)(px_front *f, const px_http_head *trailers);
  /** Bytes queued toward the client and not yet sent. */
  size_t (*pending)(px_front *f);
  /** Stop / resume delivering request body bytes (backpressure). */
  void (*pause_request)(px_front *f);
  void (*resume_request)(px_front *f);
  /** Arms the client-side timer (0 stops it). */
  void (*set_timer)(px_front *f, uint64_t ms);
  /** The exchange is over and freed; `keep` is whether the client side may
   *  go on (keep-alive). */
  void (*done)(px_front *f, int keep);
  /** The exchange failed and is freed: answer `status` if no response head
   *  went out yet, else cut the response short. */
  void (*failed)(px_front *f, int status);
  /** After a 101: raw bytes flow both ways (WebSocket). */
  void (*tunnel)(px_front *f);
} px_front_ops;

struct px_front {
  const px_front_ops *ops;
  px_worker *w;
  px_wgen *wg;         /**< the connection's configuration generation */
  const char *peer_ip; /**< for the forwarded headers and logs */
  int is_https;
  const char *proto;          /**< "HTTP/1.1" or "HTTP/2", for logs */
  const struct px_conn *conn; /**< the client connection: trust, TLS facts for the access log */
};

/** The request as the front understood it. */
typedef struct px_front_request {
  const px_http_head *head; /**< method, target, fields (Host is not used from here) */
  const char *authority;    /**< the Host (HTTP/1.1) or :authority (HTTP/2) as received,
                                 else the routing name; at most 255 bytes */
  int64_t content_length;   /**< -1 when the length is not known in advance */
  int chunked;              /**< body of unknown length: send it chunked upstream */
  int keep_alive;           /**< the client side may continue afterwards */
  int websocket;            /**< a WebSocket upgrade the front can tunnel */
} px_front_request;

#endif
