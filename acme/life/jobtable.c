/*
 * The manager's table of jobs (acme/life/jobtable.h).
 */
#include "acme/life/jobtable.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acme/backoff.h"
#include "acme/proto/key.h"
#include "tls/log.h"

int px_job_table_init(px_job_table *t) {
  memset(t, 0, sizeof(*t));
  t->_by_name = px_namemap_new(PX_JOB_TABLE_MAX, NULL);
  return t->_by_name ? 0 : -ENOMEM;
}

static void clear_pending(px_job_entry *e) {
  free(e->pending_cert);
  if (e->pending_key) px_acme_key_pem_free(e->pending_key, e->pending_key_len);
  e->pending_cert = e->pending_key = NULL;
  e->pending_cert_len = e->pending_key_len = 0;
}

void px_job_table_dispose(px_job_table *t) {
  for (size_t i = 0; i < t->_n; i++) {
    px_job_dispose(&t->_all[i]->job);
    clear_pending(t->_all[i]);
    free(t->_all[i]);
  }
  free(t->_all);
  px_namemap_free(t->_by_name);
  memset(t, 0, sizeof(*t));
}

px_job_entry *px_job_table_find(px_job_table *t, const char *name) {
  return px_namemap_get(t->_by_name, name, NULL);
}

size_t px_job_table_count(const px_job_table *t) { return t->_n; }

px_job_entry *px_job_table_at(px_job_table *t, size_t i) { return i < t->_n ? t->_all[i] : NULL; }

int px_job_table_reindex(px_job_table *t, px_job_entry *e) {
  for (size_t i = 0; i < e->job.nnames; i++)
    if (px_namemap_put(t->_by_name, e->job.names[i], e, 0) != 0) return -ENOMEM;
  return 0;
}

/* Reads ROOT/jobs/<name>.json; 1 when a valid job was read. A corrupt one
 * is set aside so it is rebuilt. */
static int load_job(px_store *s, const char *name, px_job *job) {
  char *data = NULL;
  size_t len = 0;
  if (s->ops->load(s, PX_STORE_JOBS, name, NULL, &data, &len) != 0) return 0;
  int rc = px_job_from_json(data, len, job);
  px_store_data_free(data, len);
  if (rc == 0) return 1;
  px_log(PX_LOG_WARN, "cache: job file for %s set aside (not a valid job); rebuilding it", name);
  s->ops->quarantine(s, PX_STORE_JOBS, name, NULL);
  return 0;
}

/* A job from the records of caches older than jobs (failures/, meta.json). */
static int migrate_job(px_store *s, const char *name, px_job *job, int64_t now) {
  px_acme_backoff b, *bp = NULL;
  char *data = NULL, *meta = NULL;
  size_t len = 0, mlen = 0;
  if (s->ops->load(s, PX_STORE_FAILURES, name, NULL, &data, &len) == 0) {
    if (px_acme_backoff_from_json(data, len, &b) == 0) bp = &b;
    px_store_data_free(data, len);
  }
  if (px_store_cert_exists(s, name)) px_store_cert_load(s, name, PX_STORE_META_JSON, &meta, &mlen);
  int rc = px_job_migrate(job, name, bp, meta, mlen, now);
  if (rc != 0 && meta) rc = px_job_migrate(job, name, bp, NULL, 0, now); /* garbage meta.json */
  if (meta) px_store_data_free(meta, mlen);
  return rc;
}

static int same_names(const px_job *job, const char *const *names, size_t n) {
  if (job->nnames != n) return 0;
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (j < job->nnames && strcmp(job->names[j], names[i]) != 0)
      j++;
    if (j == job->nnames) return 0;
  }
  return 1;
}

px_job_entry *px_job_table_get(px_job_table *t, px_store *s, const char *const *names, size_t n,
                               int group, int64_t now) {
  px_job_entry *e = px_job_table_find(t, names[0]);
  if (e) return e;
  if (t->_n >= PX_JOB_TABLE_MAX) {
    px_log(PX_LOG_ERROR, "acme: more than %d certificates; %s is not tracked", PX_JOB_TABLE_MAX,
           names[0]);
    return NULL;
  }
  if (t->_n == t->_cap) {
    size_t cap = t->_cap ? t->_cap * 2 : 64;
    px_job_entry **all = realloc(t->_all, cap * sizeof(*all));
    if (all == NULL) return NULL;
    t->_all = all;
    t->_cap = cap;
  }
  e = calloc(1, sizeof(*e));
  if (e == NULL) return NULL;
  px_job_init(&e->job);
  e->group = group;
  e->_slot = e->_bslot = (size_t)-1;
  if (!load_job(s, names[0], &e->job) && migrate_job(s, names[0], &e->job, now) != 0) {
    px_log(PX_LOG_ERROR, "acme: cannot make a job for %s", names[0]);
    px_job_dispose(&e->job);
    free(e);
    return NULL;
  }
  if (!same_names(&e->job, names, n)) {
    /* A `tls: acme` site's hosts changed (or a migrated job knew one
     * name): the job now covers the configured set. */
    if (e->job.not_after > 0 && group >= 0) e->names_changed = 1;
    if (px_job_set_names(&e->job, names, n) != 0) {
      px_log(PX_LOG_ERROR, "acme: invalid names for %s", names[0]);
      px_job_dispose(&e->job);
      free(e);
      return NULL;
    }
  }
  if (e->job.last_seen == 0) e->job.last_seen = now;
  t->_all[t->_n++] = e;
  if (px_job_table_reindex(t, e) != 0) return NULL; /* kept in _all; freed at dispose */
  return e;
}

static void save_failed(px_job_entry *e, const char *what, int rc, int64_t now) {
  char line[200];
  snprintf(line, sizeof(line), "cannot save the %s: %s", what, strerror(-rc));
  px_log(PX_LOG_ERROR,
         "cache: cannot save the %s for %s: %s; the certificate is served from memory and the "
         "save is retried (check the storage directory's space and permissions)",
         what, e->job.names[0], strerror(-rc));
  px_job_add_event(&e->job, now, "save-failed", line);
  if (e->save_failures < 1000) e->save_failures++;
  e->save_retry_at = now + px_acme_backoff_next(e->save_failures);
}

int px_job_table_save(px_store *s, px_job_entry *e, int64_t now) {
  char *json = px_job_to_json(&e->job);
  int rc =
      json ? s->ops->save(s, PX_STORE_JOBS, e->job.names[0], NULL, json, strlen(json)) : -ENOMEM;
  free(json);
  if (rc != 0) {
    e->job_dirty = 1;
    save_failed(e, "job record", rc, now);
    return rc;
  }
  e->job_dirty = 0;
  if (e->pending_cert == NULL) e->save_failures = 0;
  return 0;
}

int px_job_table_save_cert(px_store *s, px_job_entry *e, const char *cert_pem, size_t cert_len,
                           const char *key_pem, size_t key_len, int64_t now) {
  const char *name = e->job.names[0];
  /* Key first, then the certificate: a reader that sees the new
   * certificate always finds its key (each write is atomic). */
  int rc = px_store_cert_save(s, name, PX_STORE_KEY_PEM, key_pem, key_len);
  if (rc == 0) rc = px_store_cert_save(s, name, PX_STORE_CERT_PEM, cert_pem, cert_len);
  if (rc == 0) {
    if (e->pending_cert != cert_pem) clear_pending(e);
    return 0;
  }
  save_failed(e, "certificate", rc, now);
  if (e->pending_cert != cert_pem) {
    clear_pending(e);
    e->pending_cert = malloc(cert_len + 1);
    e->pending_key = malloc(key_len + 1);
    if (e->pending_cert == NULL || e->pending_key == NULL) {
      clear_pending(e);
      return rc;
    }
    memcpy(e->pending_cert, cert_pem, cert_len);
    e->pending_cert[cert_len] = '\0';
    memcpy(e->pending_key, key_pem, key_len);
    e->pending_key[key_len] = '\0';
    e->pending_cert_len = cert_len;
    e->pending_key_len = key_len;
  }
  return rc;
}

int px_job_table_retry_saves(px_store *s, px_job_entry *e, int64_t now) {
  if (e->pending_cert) {
    if (px_job_table_save_cert(s, e, e->pending_cert, e->pending_cert_len, e->pending_key,
                               e->pending_key_len, now) != 0)
      return -EAGAIN;
    clear_pending(e);
    px_log(PX_LOG_INFO, "cache: certificate for %s saved after earlier failures", e->job.names[0]);
    e->job_dirty = 1;
  }
  if (e->job_dirty && px_job_table_save(s, e, now) != 0) return -EAGAIN;
  e->save_failures = 0;
  return 0;
}
