/*
 * Certificate events: what happened to a certificate (obtained, renewed,
 * failed, expiring, revoked), told to the operator in three ways:
 *   - a log line, always;
 *   - `events.command`: a program run with the event in PORTICO_*
 *     environment variables (uv_spawn, never a shell), killed after a
 *     timeout, a bounded number at once and a bounded queue behind them;
 *   - `events.webhook`: a JSON POST of the same event to a plain http://
 *     URL, with a timeout and a few retries with backoff.
 * The command and the webhook are rate-limited per name: an event identical
 * (same type, same first name) to one sent less than `min_interval_ms` ago
 * is suppressed and counted, and the count travels with the next one sent;
 * a `failed` event for an attempt already reported is dropped.
 *
 * Everything runs on the loop given to px_events_new (the manager's), and
 * nothing blocks it. Error convention: constructors return NULL and write a
 * sentence to `err`; px_events_emit never fails (what it cannot deliver it
 * logs and counts as dropped).
 */
#ifndef PX_ACME_LIFE_EVENTS_H
#define PX_ACME_LIFE_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Event types, in the order of px_event_type_name(). */
typedef enum px_event_type {
  PX_EVENT_OBTAINED = 0, /**< a first certificate for these names */
  PX_EVENT_RENEWED,      /**< a replacement for a certificate that was serving */
  PX_EVENT_FAILED,       /**< an order attempt failed */
  PX_EVENT_EXPIRING,     /**< under a third of the lifetime left and renewal failing */
  PX_EVENT_REVOKED,      /**< the certificate was revoked */
  PX_EVENT_NTYPES
} px_event_type;

/** One event. Strings are borrowed for the duration of px_events_emit. */
typedef struct px_event {
  px_event_type type;
  const char *const *names; /**< the certificate's names; names[0] keys the rate limit */
  size_t nnames;
  int64_t not_after;      /**< Unix seconds; 0 when there is no certificate */
  const char *error;      /**< the CA's problem detail or our own sentence; NULL */
  const char *error_type; /**< the problem type URN (RFC 8555 §6.7); NULL */
  unsigned attempt;       /**< consecutive failed attempts including this one; 0 n/a */
  int64_t next_attempt;   /**< Unix seconds of the next try (failed); 0 n/a */
} px_event;

/** Configuration; zero fields take the defaults given. */
typedef struct px_events_options {
  const char *const *command;  /**< argv, NULL-terminated; NULL: no command */
  uint64_t command_timeout_ms; /**< kill the command's process group after (30000) */
  size_t command_max_running;  /**< commands at once (4) */
  const char *webhook;         /**< http://host[:port]/path; NULL: no webhook */
  uint64_t webhook_timeout_ms; /**< per attempt (10000) */
  unsigned webhook_retries;    /**< further attempts after a failure (2; -1u for none) */
  uint64_t webhook_backoff_ms; /**< first retry delay, doubled each time (1000) */
  size_t webhook_max_running;  /**< POSTs in flight at once (4) */
  size_t queue_max;            /**< deliveries waiting for a slot, per kind (256) */
  uint64_t min_interval_ms;    /**< per-name repeat suppression window (300000) */
  /** Clock for the rate limit and timestamps, in Unix ms; NULL: the real one.
   *  Tests inject one. */
  uint64_t (*now_ms)(void *arg);
  void *now_arg;
} px_events_options;

/** Counters, per event type, since px_events_new. */
typedef struct px_events_counters {
  uint64_t emitted[PX_EVENT_NTYPES];    /**< px_events_emit calls */
  uint64_t suppressed[PX_EVENT_NTYPES]; /**< held back by the rate limit */
  uint64_t dropped[PX_EVENT_NTYPES];    /**< deliveries lost to a full queue */
  uint64_t command_failed;              /**< non-zero exit, signal, timeout, spawn error */
  uint64_t webhook_failed;              /**< gave up after the last retry */
} px_events_counters;

typedef struct px_events px_events;

/** "obtained", "renewed", "failed", "expiring", "revoked"; "?" out of range. */
const char *px_event_type_name(px_event_type t);

/**
 * Creates the notifier on `loop` (the options are copied). Returns NULL with
 * a sentence in `err` for a webhook URL that is not http://, an empty
 * command, or no memory.
 */
px_events *px_events_new(uv_loop_t *loop, const px_events_options *opts, char *err, size_t errlen);

/**
 * Reports `e`: logs it, then (rate limit permitting) queues the command and
 * the webhook. Call on the loop's thread; it never blocks or fails.
 */
void px_events_emit(px_events *ev, const px_event *e);

/** Deliveries queued or running (commands and webhooks together). */
size_t px_events_pending(const px_events *ev);

/** Copies the counters into `out`. */
void px_events_get_counters(const px_events *ev, px_events_counters *out);

/**
 * Stops: queued deliveries are dropped, running commands are killed, and
 * the object frees itself once its handles are closed and its POSTs have
 * returned (each within its timeout), so keep running the loop.
 */
void px_events_close(px_events *ev);

/**
 * Builds the JSON body the webhook receives (and tests check): a malloc'd
 * NUL-terminated string, or NULL without memory. `suppressed` is the count
 * of identical events held back since the last one sent; `now` Unix ms.
 */
char *px_event_to_json(const px_event *e, uint64_t suppressed, uint64_t now_ms);

#endif
