/*
 * The admin socket behind `portico ctl`: a Unix stream socket (mode 0600)
 * on the manager's loop. Each connection carries one request, a line of
 * JSON, and gets one response, a line of JSON, then the server closes it:
 *
 *   {"cmd":"status"}                          -> [ job summary, ... ]
 *   {"cmd":"show","name":"example.com"}       -> { job }
 *   {"cmd":"retry","name":"example.com"}      -> {"ok":true}
 *   {"cmd":"retry","all":true}                -> {"ok":true}
 *   {"cmd":"renew","name":"example.com"}      -> {"ok":true} (once started)
 *   {"cmd":"revoke","name":"example.com","reason":"keyCompromise"} -> the outcome
 *   {"cmd":"reopen"}                          -> {"ok":true} (log files reopened)
 *   {"cmd":"reload"}                          -> {"ok":true,"message":"..."}
 *   any failure                               -> {"error":"unknown name example.com"}
 *
 * revoke waits for its outcome: the connection stays open until the
 * operation answers through a px_admin_reply, at most the request's
 * "wait" seconds (default and bound: the options' max_wait_ms). When the
 * wait passes first the answer is
 * {"error":"... still in progress ...","pending":true} and the
 * operation's later answer is dropped; when the server closes first
 * (shutdown) it is {"error":"portico is stopping ...","pending":true}.
 *
 * A response is an error exactly when it is an object with an "error"
 * member, so job objects must not carry a top-level "error" (use
 * "last_error"). The server validates and normalises names (a leading "*."
 * is allowed for wildcard certificates) and reasons before it calls the
 * operations; it bounds the request size, the number of connections and
 * the time a connection may stay open, and accepts peers running as its
 * own user or root only.
 *
 * The work is done by a table of operations that the certificate manager
 * supplies (px_admin_ops). They run on the loop's thread and must not block.
 *
 * Error convention: px_admin_start returns NULL with a sentence in `err`.
 */
#ifndef PX_ACME_LIFE_ADMIN_H
#define PX_ACME_LIFE_ADMIN_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/**
 * What the server asks of its owner. Every operation gets `ctx`, returns
 * its result, and on failure writes a sentence for the operator to `err`
 * (for an unknown name: "unknown name NAME"). NULL members answer
 * "not supported".
 *
 * A job summary (status) and a job (show) are JSON objects; `portico ctl`
 * reads these members, all optional: "names" (array of strings),
 * "not_after", "next_run" (RFC 3339 strings), "next_reason" (why then:
 * "ARI window", "1/3 of lifetime left", "backoff", ...), "state",
 * "failures" (integer), "last_error" (string), and, in show, "events"
 * (array of {"time","event","detail"}). Other members are shown by
 * `ctl show` as they are.
 */
/** A deferred answer: an operation that takes one answers it later, once,
 *  with px_admin_reply_send. It stays valid after the connection is gone
 *  (then the answer is only dropped). */
typedef struct px_admin_reply px_admin_reply;

typedef struct px_admin_ops {
  void *ctx;
  /** A new reference to an array of job summaries, or NULL with `err`. */
  json_t *(*status)(void *ctx, char *err, size_t errlen);
  /** A new reference to the job for `name`, or NULL with `err`. */
  json_t *(*show)(void *ctx, const char *name, char *err, size_t errlen);
  /** Clears the backoff of `name` (NULL: every job) and schedules it now.
   *  0, or -1 with `err`. */
  int (*retry)(void *ctx, const char *name, char *err, size_t errlen);
  /** Renews `name` now even when it is not due. 0 once started, or -1
   *  with `err`. */
  int (*renew)(void *ctx, const char *name, char *err, size_t errlen);
  /** Starts revoking `name`'s certificate with `reason` (an RFC 5280
   *  §5.3.1 CRLReason code) and ordering a replacement. 0: the operation
   *  took `reply` (never NULL) and answers it once the CA has answered;
   *  -1 with `err` when it could not start (the reply is not taken). */
  int (*revoke)(void *ctx, const char *name, int reason, px_admin_reply *reply, char *err,
                size_t errlen);
  /** Reopens the log files (logrotate). 0, or -1 with `err`. */
  int (*reopen)(void *ctx, char *err, size_t errlen);
  /** Re-reads the configuration (a command of the proxy, which registers
   *  it: acme/ knows nothing of what it does). 0 with a summary and any
   *  warnings in `msg`, or -1 with the errors (file:line: key: ...) in
   *  `msg`, one per line. It may take a few milliseconds (files are read). */
  int (*reload)(void *ctx, char *msg, size_t cap);
} px_admin_ops;

typedef struct px_admin_options {
  const char *path;       /**< the socket's path (required) */
  size_t max_connections; /**< open at once; more are closed at accept (16) */
  size_t max_request;     /**< bytes in the request line (4096) */
  uint64_t timeout_ms;    /**< a connection's whole life (5000) */
  /** How long revoke waits for its outcome: the default and the bound of
   *  a request's "wait" (45000). */
  uint64_t max_wait_ms;
} px_admin_options;

typedef struct px_admin px_admin;

/**
 * Listens on `o->path` on `loop`. A stale socket file (nothing answers) is
 * removed first; the start is refused when a server answers there, when
 * the path is something other than a socket, or when it cannot be bound.
 * `ops` is copied.
 */
px_admin *px_admin_start(uv_loop_t *loop, const px_admin_options *o, const px_admin_ops *ops,
                         char *err, size_t errlen);

/**
 * Stops listening, removes the socket file (when it is still the one this
 * server bound), and closes open connections; memory is freed from the
 * close callbacks, so keep running the loop.
 */
void px_admin_close(px_admin *a);

/**
 * Answers a deferred command with `body` (consumed; an object with an
 * "error" member is a failure) and frees `r`. When the connection has
 * closed or was answered already (the wait passed), `body` is dropped.
 */
void px_admin_reply_send(px_admin_reply *r, json_t *body);

/**
 * Parses an RFC 5280 §5.3.1 CRLReason name that RFC 8555 §7.6 lets an
 * ACME client send ("unspecified", "keyCompromise", "affiliationChanged",
 * "superseded", "cessationOfOperation"). Returns its code, or -1.
 */
int px_admin_reason_parse(const char *s);

/** The `reopen` operation whoever hosts the socket offers: reopens the log
 *  files (tls/log.h px_log_reopen) and logs it, as SIGUSR1 does. */
int px_admin_reopen_logs(void *ctx, char *err, size_t errlen);

#endif
