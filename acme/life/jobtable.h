/*
 * The manager's table of jobs (acme/life/job.h), one per certificate:
 * found by any of its names, iterated in insertion order, loaded from and
 * saved to the cache (ROOT/jobs/<name>.json). A job for a certificate
 * cached before jobs existed is built from its failure record and
 * meta.json (px_job_migrate) on first load.
 *
 * Manager thread only. Error convention: acme/errors.h.
 */
#ifndef PX_ACME_LIFE_JOBTABLE_H
#define PX_ACME_LIFE_JOBTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "acme/life/job.h"
#include "acme/namemap.h"
#include "acme/store.h"
#include "tls/cert.h"

/** One certificate's job and what the manager keeps beside it. */
typedef struct px_job_entry {
  px_job job;            /**< the persisted record */
  int group;             /**< index of its `tls: acme` site, or -1 for an on-demand name */
  int running;           /**< an order (or ARI fetch) for it is in flight */
  int ari_fetching;      /**< what runs is an ARI fetch, not an order */
  int resolve_after_ari; /**< a handshake waits: look the names up when the fetch ends */
  int granted;           /**< renew_rate granted it a start at its heap key */
  int waiting_ca;        /**< waits for the CA to answer again (not a failure of its own) */
  int names_changed;     /**< the site's hosts changed: order for the new set at once */
  int forgotten;         /**< on-demand, not seen for forget_after: not renewed */
  /* Saves that failed: retried with backoff, the certificate meanwhile
   * served from memory. */
  int job_dirty;                    /**< the job file is not saved */
  char *pending_cert, *pending_key; /**< PEMs not yet saved (the key is wiped on free) */
  size_t pending_cert_len, pending_key_len;
  unsigned save_failures;
  int64_t save_retry_at;
  int64_t seen_saved;     /**< when last_seen was last written */
  int force;              /**< an operator asked for a renewal now */
  int64_t expired_logged; /**< when "expired, still served" was last logged */
  int64_t expiring_sent;  /**< when the `expiring` event was last emitted */
  void *owner;            /**< the manager (for callbacks) */
  size_t _slot;           /**< the scheduler's waiting-heap position */
  size_t _bslot;          /**< the scheduler's backlog-heap position */
} px_job_entry;

/** The table. Fields are private. */
typedef struct px_job_table {
  px_namemap *_by_name; /* every name of every job -> entry */
  px_job_entry **_all;
  size_t _n, _cap;
} px_job_table;

/** Most jobs held (and names indexed). */
#define PX_JOB_TABLE_MAX 1000000

/** An empty table; -ENOMEM. */
int px_job_table_init(px_job_table *t);
/** Frees every entry. */
void px_job_table_dispose(px_job_table *t);

/** The job that covers `name`, or NULL. */
px_job_entry *px_job_table_find(px_job_table *t, const char *name);
/** Jobs held. */
size_t px_job_table_count(const px_job_table *t);
/** The i-th job (insertion order), or NULL past the end: for listing all. */
px_job_entry *px_job_table_at(px_job_table *t, size_t i);

/**
 * The job for `names` (names[0] names the file): found in the table, else
 * loaded from ROOT/jobs/<names[0]>.json, else migrated from the failure
 * record and meta.json, else new (PENDING). A corrupt job file is
 * quarantined and rebuilt. Returns the entry (now in the table), or NULL
 * (out of memory, invalid name: logged).
 */
px_job_entry *px_job_table_get(px_job_table *t, px_store *s, const char *const *names, size_t n,
                               int group, int64_t now);

/** Indexes the job's names (after px_job_set_names changed them). */
int px_job_table_reindex(px_job_table *t, px_job_entry *e);

/**
 * Saves the job to the cache. On failure: logged as an error with the
 * reason, a "save-failed" event, job_dirty set (the scheduler retries with
 * backoff). Returns 0 or the store's negative errno.
 */
int px_job_table_save(px_store *s, px_job_entry *e, int64_t now);

/**
 * Saves a new certificate's key then chain (each atomically), keeping them
 * in the entry when a save fails (logged, "save-failed" event, retried
 * with backoff by px_job_table_retry_saves). 0 or a negative errno.
 */
int px_job_table_save_cert(px_store *s, px_job_entry *e, const char *cert_pem, size_t cert_len,
                           const char *key_pem, size_t key_len, int64_t now);

/** Retries the saves that failed (certificate, then job). 0 when nothing
 *  is pending any more. */
int px_job_table_retry_saves(px_store *s, px_job_entry *e, int64_t now);

#endif
