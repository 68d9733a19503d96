/*
 * The persisted record of one certificate's lifecycle (ROOT/jobs/<name>.json
 * once wired): what it covers, its validity, the CA's ARI window, the next
 * run, the failure record with the CA's last problem document, and a short
 * event history. It replaces the failure record (acme/backoff.h), and
 * px_job_migrate builds one from that record and a certificate's meta.json.
 *
 * Times are int64_t seconds since the Unix epoch (UTC); 0 means "never" or
 * "unknown". Strings are malloc'd, bounded when set, and stored log-safe
 * (bytes outside printable ASCII become '?'), so they can be logged as they
 * are.
 *
 * Error convention: 0 on success, -1 on refusal (bad input, a bound
 * exceeded, out of memory). A job is left valid (disposable) after any
 * failure.
 */
#ifndef PX_ACME_LIFE_JOB_H
#define PX_ACME_LIFE_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "acme/backoff.h"
#include "acme/life/renew.h"
#include "acme/proto/key.h"
#include "acme/proto/problem.h"

/** The JSON format's version; a file with a higher one is refused. */
#define PX_JOB_VERSION 1
/** Largest job file decoded. */
#define PX_JOB_JSON_MAX (64 * 1024)
/** Most names on one certificate (Let's Encrypt's limit). */
#define PX_JOB_NAMES_MAX 100
/** Events kept; older ones are dropped. */
#define PX_JOB_EVENTS_MAX 20
/** Bounds on stored strings, in bytes without the NUL. */
#define PX_JOB_PROFILE_MAX 64
#define PX_JOB_URL_MAX 1024
#define PX_JOB_CERT_ID_MAX 135
#define PX_JOB_TYPE_MAX 127
#define PX_JOB_DETAIL_MAX 511
#define PX_JOB_EVENT_KIND_MAX 23

/** Where a certificate is in its life. */
typedef enum px_job_state {
  PX_JOB_PENDING = 0, /**< no certificate yet; the first order is due or running */
  PX_JOB_VALID,       /**< a certificate is served; renewal is scheduled */
  PX_JOB_RENEWING,    /**< a renewal order is running; the old one is served */
  PX_JOB_FAILED,      /**< the last attempt failed; a retry is scheduled */
  PX_JOB_EXPIRED,     /**< the certificate has expired and none replaced it */
} px_job_state;

/** The CA's last problem document, as the operator should see it. */
typedef struct px_job_error {
  char *type;       /**< full URN, or NULL when there is no error */
  char *detail;     /**< the CA's detail (or our own message), or NULL */
  int status;       /**< HTTP status, 0 when none */
  int rate_limited; /**< non-zero for urn:ietf:params:acme:error:rateLimited */
} px_job_error;

/** One entry of the history. */
typedef struct px_job_event {
  int64_t at;                           /**< when it happened */
  char kind[PX_JOB_EVENT_KIND_MAX + 1]; /**< [a-z-]: obtained, renewed, failed, ... */
  char *detail;                         /**< a log-safe line, or NULL */
} px_job_event;

/** The record. Initialise with px_job_init, release with px_job_dispose. */
typedef struct px_job {
  char **names;  /**< the certificate's names, names[0] names the job */
  size_t nnames; /**< 1 .. PX_JOB_NAMES_MAX */
  px_acme_key_type key_type;
  char *profile; /**< the ACME profile asked for, or NULL */
  px_job_state state;
  int64_t not_before, not_after; /**< the current certificate's validity, 0 without one */
  int64_t obtained_at; /**< when this instance obtained it, by its own clock (0: unknown) */
  char *cert_id;       /**< its ARI certificate ID (for `replaces`), or NULL */
  /* ARI (RFC 9773). */
  int has_window;                   /**< non-zero when the window below is set */
  int64_t window_start, window_end; /**< the CA's suggestedWindow */
  int64_t ari_fetched;              /**< when the window was fetched */
  int64_t ari_next_poll;            /**< when to fetch it again */
  char *explanation_url;            /**< the CA's explanationURL, or NULL */
  /* Schedule. */
  int64_t next_run;            /**< when the scheduler should act on this job */
  px_renew_reason next_reason; /**< why next_run is what it is */
  /* Failures (Let's Encrypt integration guide: 1 min, 10 min, 100 min, 1 day). */
  unsigned failures;    /**< consecutive failures */
  int64_t last_failure; /**< when the last one happened */
  int64_t retry_after;  /**< the CA's Retry-After: no attempt before this */
  px_job_error last_error;
  /* On-demand names: when a handshake last asked for one (forget_after). */
  int64_t last_seen;
  /* On-demand names: the ask endpoint's per-name settings (acme/ask.h),
   * -1 where it said nothing and the site's setting applies. */
  int redirect_http; /**< 1, 0 or -1 */
  int64_t hsts;      /**< max-age seconds, 0 off, or -1 */
  /* History: a ring of the last PX_JOB_EVENTS_MAX events; use px_job_event_at. */
  px_job_event _events[PX_JOB_EVENTS_MAX];
  size_t _event_first, _nevents;
} px_job;

/** An empty job: no names, PENDING, key type P-256, no per-name settings. */
void px_job_init(px_job *job);

/** Frees everything the job holds and leaves it as px_job_init does. */
void px_job_dispose(px_job *job);

/** Replaces the names. Each must be a normalised DNS name (lowercase, no
 *  trailing dot; px_acme_name_normalize) or "*." and one; 1 to
 *  PX_JOB_NAMES_MAX of them, without duplicates. */
int px_job_set_names(px_job *job, const char *const *names, size_t n);

/** Sets the profile (NULL or "" clears it). */
int px_job_set_profile(px_job *job, const char *profile);

/** Records a new certificate: validity, ARI ID (NULL or "" when none); the
 *  state becomes VALID, the failures and the ARI window are cleared (the
 *  window was the old certificate's). */
int px_job_set_certificate(px_job *job, int64_t not_before, int64_t not_after, const char *cert_id);

/** Records a fetched ARI window (RFC 9773 §4.2) at `now`, with the next
 *  poll time and the explanationURL (NULL or "" for none). */
int px_job_set_window(px_job *job, int64_t start, int64_t end, const char *explanation_url,
                      int64_t now, int64_t next_poll);

/**
 * Records a failed attempt at `now`: failures + 1, last_failure, the CA's
 * problem (NULL with a `message` of our own, such as a save error), and
 * retry_after as an absolute time (0 for none). The state becomes FAILED,
 * or EXPIRED when the current certificate has expired; a failed renewal
 * still serves the current certificate. Adds a "failed" event.
 */
int px_job_record_failure(px_job *job, int64_t now, const px_acme_problem *problem,
                          const char *message, int64_t retry_after);

/** Clears the backoff (after a success, or an operator's retry); the last
 *  error stays for the operator to read. */
void px_job_clear_backoff(px_job *job);

/** Appends an event; the oldest is dropped when PX_JOB_EVENTS_MAX are held.
 *  `kind` must be 1..PX_JOB_EVENT_KIND_MAX characters of [a-z-]. */
int px_job_add_event(px_job *job, int64_t at, const char *kind, const char *detail);

/** Events held (at most PX_JOB_EVENTS_MAX). */
size_t px_job_event_count(const px_job *job);

/** The i-th event, oldest first; NULL when i is out of range. */
const px_job_event *px_job_event_at(const px_job *job, size_t i);

/** The renew_at input for this job at `now`. */
void px_job_renew_input(const px_job *job, int64_t now, px_renew_input *out);

/** Computes the next run with px_renew_at and stores it (next_run,
 *  next_reason). Returns next_run. */
int64_t px_job_schedule(px_job *job, int64_t now, const px_life_rand *rnd);

/** The state's name: pending, valid, renewing, failed, expired. */
const char *px_job_state_name(px_job_state state);

/** Encodes the job as JSON (malloc'd, NUL-terminated); NULL when out of
 *  memory or the job has no names. */
char *px_job_to_json(const px_job *job);

/**
 * Decodes a job written by px_job_to_json into `job` (which is disposed
 * first). Strict: at most PX_JOB_JSON_MAX bytes, a JSON object with
 * "version" 1..PX_JOB_VERSION, valid names, known state and key type,
 * numbers in range, strings within their bounds, at most
 * PX_JOB_EVENTS_MAX events. Unknown members are ignored (a newer minor
 * writer). On -1 the job is empty.
 */
int px_job_from_json(const char *json, size_t len, px_job *job);

/**
 * Builds a job for a certificate cached before jobs existed (ROOT/failures/
 * and certs/<name>/meta.json). `name` becomes the only name unless `meta`
 * lists names; `failure` (NULL when there is none) gives the failure count,
 * the last failure and its message; `meta` (NULL/0 when absent) gives the
 * names and not_after, and its "issued_at" stands in for not_before until
 * the certificate itself is read (px_job_set_certificate). A job with a
 * certificate is VALID (EXPIRED when not_after <= now), else PENDING, or
 * FAILED with failures. Adds a "migrated" event. -1 when `name` is invalid
 * or `meta` is present but malformed.
 */
int px_job_migrate(px_job *job, const char *name, const px_acme_backoff *failure, const char *meta,
                   size_t meta_len, int64_t now);

#endif
