/*
 * HTTP/1.1 message pieces that hold no I/O: the parsed request head, the
 * checks portico adds on top of llhttp 8.1 (docs/dependencies.md), host
 * normalisation and routing, hop-by-hop removal, the forwarded headers, and
 * re-serialisation. Everything here is pure and unit-tested.
 *
 * Error convention: functions that validate return NULL on success or a
 * static reason string (compared by pointer, printed in debug logs).
 */
#ifndef PX_HTTP_H
#define PX_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/config.h"

/** A header field as received (name and value point into the head's arena). */
typedef struct px_header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
} px_header;

/** Upper bound on header fields of one message (also the config's max). */
#define PX_MAX_HEADERS_HARD 256

/** A parsed message head (request or response). Strings live in `arena`. */
typedef struct px_http_head {
  char *arena; /**< owned; capacity `arena_cap`, filled to `arena_len` */
  size_t arena_len;
  size_t arena_cap;
  const char *method; /**< request: "GET" ... (NUL-terminated) */
  const char *target; /**< request-target as received (NUL-terminated) */
  size_t target_len;
  int status;         /**< response status code */
  const char *reason; /**< response reason phrase (may be "") */
  int version_minor;  /**< HTTP/1.x */
  px_header headers[PX_MAX_HEADERS_HARD];
  size_t nheaders;
} px_http_head;

/** Allocates an empty head whose arena holds `arena_cap` bytes; NULL on ENOMEM. */
px_http_head *px_http_head_new(size_t arena_cap);

/** Writes `v` in decimal (no NUL) into `out`; returns the digit count.
 *  Heads are built per request, and printf showed in profiles. */
size_t px_http_format_u64(char out[20], uint64_t v);

/** Frees a head (NULL is fine); a few are kept per thread for reuse. */
void px_http_head_free(px_http_head *h);

/** Frees the calling thread's cached heads (call before a thread exits). */
void px_http_head_cache_drain(void);

/** Appends bytes to the current string in the arena; -1 when it is full. */
int px_http_head_append(px_http_head *h, const char *at, size_t len);

/**
 * Adds bytes of a field name from an llhttp span callback. `*in_field` tracks
 * the span kind (1 name, 2 value) so that split spans join up; a new field is
 * started when the previous span was not a name. -1 when the arena is full or
 * the field count would exceed `max_fields`.
 */
int px_http_head_field_name(px_http_head *h, int *in_field, const char *at, size_t len,
                            size_t max_fields);

/** Adds bytes of the current field's value (see px_http_head_field_name). */
int px_http_head_field_value(px_http_head *h, int *in_field, const char *at, size_t len);

/** Ends the current name or value: trailing OWS is dropped from a value
 *  (RFC 9110 §5.5) and the string NUL-terminated. `*in_field` goes back to
 *  0, so the next name starts a new field even when the value was empty
 *  (llhttp calls no value span for "Name:" alone). -1 when the arena is
 *  full. */
int px_http_head_field_done(px_http_head *h, int *in_field);

/** Validates a field-name: a non-empty token (RFC 9110 §5.6.2). */
const char *px_http_check_field_name(const char *name, size_t len);

/**
 * Validates a field-value: no CR, LF or NUL anywhere (which also rejects
 * obs-fold, RFC 9112 §5.2, and bare CR/LF), no other control byte except
 * HTAB. Leading/trailing whitespace is allowed (it is trimmed by the caller).
 */
const char *px_http_check_field_value(const char *value, size_t len);

/**
 * Checks a complete request head for what RFC 9112 forbids and llhttp lets
 * through: more than one Host, no Host on HTTP/1.1 (§3.2), Content-Length
 * together with Transfer-Encoding (§6.1), a Transfer-Encoding other than
 * exactly "chunked" as the final coding, several differing Content-Length
 * values, and every name and value check above. NULL when acceptable.
 */
const char *px_http_check_request(const px_http_head *h);

/** Finds the first header called `name` (case-insensitive); NULL if none. */
const px_header *px_http_find(const px_http_head *h, const char *name);

/**
 * Normalises a Host header value or SNI name into `out`: lowercased, port
 * removed ("example.com:443" -> "example.com"; "[::1]:8443" -> "[::1]"),
 * trailing dot removed. Rejects empty names, bytes outside
 * [a-z0-9.-] (plus brackets and colons for an IPv6 literal), and names longer
 * than 253. Returns the length, or -1 when invalid.
 */
int px_http_normalize_host(const char *in, size_t len, char *out, size_t cap);

/**
 * Matches a normalised host against the sites: exact name first, then a
 * one-label wildcard ("*.example.com" matches "a.example.com" but not
 * "example.com" nor "a.b.example.com"), then the "*" site. Returns the site
 * or NULL.
 */
const px_site *px_http_route(const px_config *cfg, const char *host);

/**
 * True for hop-by-hop fields that a proxy must not forward (RFC 9110 §7.6.1):
 * Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade,
 * Proxy-Authenticate, Proxy-Authorization, Trailer, and any field named in
 * the message's Connection header (`connection_value`, may be NULL).
 */
int px_http_is_hop_by_hop(const char *name, size_t len, const char *connection_value,
                          size_t connection_len);

/** What a serialised head says about the connection after the message. */
typedef enum px_http_conn_mode {
  PX_HTTP_CLOSE = 0,      /**< "Connection: close" */
  PX_HTTP_KEEP_ALIVE = 1, /**< nothing: HTTP/1.1 persists by default */
  PX_HTTP_UPGRADE = 2,    /**< the WebSocket upgrade lines ("Connection: Upgrade",
                               "Upgrade: websocket") instead of framing */
} px_http_conn_mode;

/** What the proxy knows about the client, for the forwarded headers. */
typedef struct px_forward_info {
  const char *client_ip; /**< textual address of the peer ("192.0.2.1", "2001:db8::1") */
  const char *proto;     /**< "https" or "http" */
  const char *host;      /**< the Host as the client sent it (port included), or the
                              routing name when it sent none (HTTP/1.0) */
  int trusted;           /**< the client is in trusted_proxies: its forwarding fields are kept */
  const char *request_id_name; /**< the request id field (log.request_id_header), or NULL */
  const char *request_id;      /**< its value, written in place of any received one */
} px_forward_info;

/**
 * Writes the request head to send upstream into `out` (capacity `cap`):
 * "METHOD target HTTP/1.1", "Host: <fwd->host>" (always: the Host an
 * HTTP/1.1 upstream requires, never dropped by a Connection option), every
 * end-to-end field except the ones portico sets itself, then the request id when `fwd` has one,
 * X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239). From a trusted
 * client (`fwd->trusted`) the received X-Forwarded-For and Forwarded are kept with this hop
 * appended, and a received X-Forwarded-Proto and X-Forwarded-Host are kept; from anyone else all
 * four are replaced, so a client cannot forge an address upstream. Then the
 * framing: "Transfer-Encoding: chunked" when `chunked`, else "Content-Length: N" when
 * `content_length` >= 0, and what `mode` says of the connection. Returns the length, or -1 if it
 * does not fit.
 */
long px_http_serialize_request(const px_http_head *h, const px_forward_info *fwd,
                               int64_t content_length, int chunked, px_http_conn_mode mode,
                               char *out, size_t cap);

/**
 * True when the request asks to switch to WebSocket (RFC 6455 §4.1):
 * "Upgrade: websocket" with "upgrade" among the Connection options. Other
 * protocols (h2c, ...) are not tunnelled: their Upgrade is dropped.
 */
int px_http_is_websocket_upgrade(const px_http_head *h);

/**
 * Writes the response head to send to the client: status line with
 * HTTP/1.1, every end-to-end field from upstream, then `extra` (already
 * formatted "Name: value\r\n" lines, e.g. Strict-Transport-Security; may be
 * NULL), then framing and `mode` as for requests. Returns the length, or -1
 * if it does not fit.
 */
long px_http_serialize_response(const px_http_head *h, const char *extra, int64_t content_length,
                                int chunked, px_http_conn_mode mode, char *out, size_t cap);

/**
 * Writes the last chunk and trailer section of a chunked body ("0\r\n",
 * the end-to-end trailer fields, "\r\n"); `trailers` may be NULL.
 * Returns the length, or -1 if it does not fit.
 */
long px_http_serialize_last_chunk(const px_http_head *trailers, char *out, size_t cap);

/**
 * Builds the Strict-Transport-Security field line ("Strict-Transport-
 * Security: max-age=5184000; includeSubDomains; preload\r\n") into `out`.
 * Returns the length, or 0 when HSTS is off.
 */
size_t px_http_hsts_line(const px_hsts *hsts, char *out, size_t cap);

/**
 * Builds the Strict-Transport-Security value alone ("max-age=5184000;
 * includeSubDomains", for an HTTP/2 field). Returns the length, or 0 when
 * HSTS is off or `cap` is too small.
 */
size_t px_http_hsts_value(const px_hsts *hsts, char *out, size_t cap);

/**
 * Builds the Location for the port-80 redirect: "https://" + host + target.
 * `host` must be normalised and match a site (the caller checks, so this is
 * never an open redirect); `https_port` is appended when it is not 443.
 * `target` must be origin-form (start with '/'); otherwise returns -1.
 * Returns the length written.
 */
int px_http_redirect_location(const char *host, const char *target, size_t target_len,
                              int https_port, char *out, size_t cap);

/**
 * Formats a complete small response (status line, Content-Type text/plain,
 * Content-Length, optional extra lines, "Connection: close" when `close`,
 * body) for portico's own answers (400, 404, 421, 431, 502, 504, redirects).
 * The body names no internals. Returns the length, or -1 if it does not fit.
 */
long px_http_simple_response(int status, const char *extra, int close, char *out, size_t cap);

/** The standard reason phrase for `status` ("Bad Gateway"), or "Unknown". */
/** The current time as an IMF-fixdate for a Date field (RFC 9110 §5.6.7),
 *  in a per-thread buffer that changes once a second. */
const char *px_http_date(void);

/** True when a trailer field may be passed on: not framing, routing,
 *  authentication, hop-by-hop or a pseudo-field (RFC 9110 §6.5.1). */
int px_http_trailer_allowed(const char *name, size_t len);

const char *px_http_reason(int status);

#endif
