/*
 * The job record: setters that keep it bounded and log-safe, its JSON form,
 * and the migration from the failure records.
 */
#include "acme/life/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "acme/names.h"

/* Latest time accepted from a file: 9999-12-31T23:59:59Z. */
#define TIME_MAX INT64_C(253402300799)

static const char *const state_names[] = {"pending", "valid", "renewing", "failed", "expired"};
#define NSTATES (sizeof(state_names) / sizeof(state_names[0]))

const char *px_job_state_name(px_job_state state) {
  return (unsigned)state < NSTATES ? state_names[state] : "unknown";
}

/* A malloc'd copy of at most `max` bytes of `s`, bytes outside printable
 * ASCII replaced by '?'; NULL for NULL or "". Sets *oom on failure. */
static char *safe_dup(const char *s, size_t max, int *oom) {
  size_t n;
  char *d;
  if (s == NULL || s[0] == '\0') return NULL;
  n = strnlen(s, max);
  d = malloc(n + 1);
  if (d == NULL) {
    *oom = 1;
    return NULL;
  }
  for (size_t i = 0; i < n; i++)
    d[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  d[n] = '\0';
  return d;
}

/* Replaces *dst with a safe copy of `s`; -1 (and *dst unchanged) on OOM. */
static int set_string(char **dst, const char *s, size_t max) {
  int oom = 0;
  char *copy = safe_dup(s, max, &oom);
  if (oom) return -1;
  free(*dst);
  *dst = copy;
  return 0;
}

void px_job_init(px_job *job) {
  memset(job, 0, sizeof(*job));
  job->state = PX_JOB_PENDING;
  job->key_type = PX_ACME_KEY_P256;
  job->next_reason = PX_RENEW_ONE_THIRD;
  job->redirect_http = -1;
  job->hsts = -1;
}

static void free_names(px_job *job) {
  for (size_t i = 0; i < job->nnames; i++)
    free(job->names[i]);
  free(job->names);
  job->names = NULL;
  job->nnames = 0;
}

static void clear_error(px_job_error *e) {
  free(e->type);
  free(e->detail);
  memset(e, 0, sizeof(*e));
}

void px_job_dispose(px_job *job) {
  free_names(job);
  free(job->profile);
  free(job->cert_id);
  free(job->explanation_url);
  clear_error(&job->last_error);
  for (size_t i = 0; i < PX_JOB_EVENTS_MAX; i++)
    free(job->_events[i].detail);
  px_job_init(job);
}

/* A name as the cache keys it: normalised, optionally "*." and one. */
static int name_ok(const char *name) { return px_acme_cert_name_ok(name); }

int px_job_set_names(px_job *job, const char *const *names, size_t n) {
  char **copy;
  if (n == 0 || n > PX_JOB_NAMES_MAX) return -1;
  for (size_t i = 0; i < n; i++) {
    if (names[i] == NULL || !name_ok(names[i])) return -1;
    for (size_t k = 0; k < i; k++)
      if (strcmp(names[i], names[k]) == 0) return -1;
  }
  copy = calloc(n, sizeof(*copy));
  if (copy == NULL) return -1;
  for (size_t i = 0; i < n; i++) {
    copy[i] = strdup(names[i]);
    if (copy[i] == NULL) {
      for (size_t k = 0; k < i; k++)
        free(copy[k]);
      free(copy);
      return -1;
    }
  }
  free_names(job);
  job->names = copy;
  job->nnames = n;
  return 0;
}

int px_job_set_profile(px_job *job, const char *profile) {
  return set_string(&job->profile, profile, PX_JOB_PROFILE_MAX);
}

int px_job_set_certificate(px_job *job, int64_t not_before, int64_t not_after,
                           const char *cert_id) {
  if (set_string(&job->cert_id, cert_id, PX_JOB_CERT_ID_MAX) != 0) return -1;
  job->not_before = not_before;
  job->not_after = not_after;
  job->obtained_at = 0; /* the caller that obtained it says when */
  job->state = PX_JOB_VALID;
  job->has_window = 0;
  job->window_start = job->window_end = job->ari_fetched = job->ari_next_poll = 0;
  free(job->explanation_url);
  job->explanation_url = NULL;
  px_job_clear_backoff(job);
  return 0;
}

int px_job_set_window(px_job *job, int64_t start, int64_t end, const char *explanation_url,
                      int64_t now, int64_t next_poll) {
  if (end <= start) return -1;
  if (set_string(&job->explanation_url, explanation_url, PX_JOB_URL_MAX) != 0) return -1;
  job->has_window = 1;
  job->window_start = start;
  job->window_end = end;
  job->ari_fetched = now;
  job->ari_next_poll = next_poll;
  return 0;
}

static int is_rate_limited(const char *type) {
  return type != NULL && strcmp(px_acme_problem_short_type(type), "rateLimited") == 0;
}

int px_job_record_failure(px_job *job, int64_t now, const px_acme_problem *problem,
                          const char *message, int64_t retry_after) {
  px_job_error e;
  int oom = 0;
  char line[PX_JOB_DETAIL_MAX + 1];

  memset(&e, 0, sizeof(e));
  if (problem != NULL) {
    e.type = safe_dup(problem->type, PX_JOB_TYPE_MAX, &oom);
    e.detail = safe_dup(problem->detail, PX_JOB_DETAIL_MAX, &oom);
    e.status = problem->status;
    e.rate_limited = is_rate_limited(problem->type);
    px_acme_problem_message(problem, line, sizeof(line));
  } else {
    e.detail = safe_dup(message, PX_JOB_DETAIL_MAX, &oom);
    snprintf(line, sizeof(line), "%s", message ? message : "failed");
  }
  if (oom) {
    clear_error(&e);
    return -1;
  }
  clear_error(&job->last_error);
  job->last_error = e;
  if (job->failures < UINT32_MAX) job->failures++;
  job->last_failure = now;
  job->retry_after = retry_after;
  job->state = job->not_after == 0     ? PX_JOB_FAILED
               : job->not_after <= now ? PX_JOB_EXPIRED
                                       : PX_JOB_FAILED;
  return px_job_add_event(job, now, "failed", line);
}

void px_job_clear_backoff(px_job *job) {
  job->failures = 0;
  job->last_failure = 0;
  job->retry_after = 0;
}

static int kind_ok(const char *kind) {
  size_t n = kind ? strlen(kind) : 0;
  if (n == 0 || n > PX_JOB_EVENT_KIND_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((kind[i] >= 'a' && kind[i] <= 'z') || kind[i] == '-')) return 0;
  return 1;
}

int px_job_add_event(px_job *job, int64_t at, const char *kind, const char *detail) {
  px_job_event *ev;
  int oom = 0;
  char *copy;
  if (!kind_ok(kind)) return -1;
  copy = safe_dup(detail, PX_JOB_DETAIL_MAX, &oom);
  if (oom) return -1;
  if (job->_nevents == PX_JOB_EVENTS_MAX) {
    /* Full: the oldest slot becomes the newest. */
    ev = &job->_events[job->_event_first];
    job->_event_first = (job->_event_first + 1) % PX_JOB_EVENTS_MAX;
    free(ev->detail);
  } else {
    ev = &job->_events[(job->_event_first + job->_nevents) % PX_JOB_EVENTS_MAX];
    job->_nevents++;
  }
  ev->at = at;
  memcpy(ev->kind, kind, strlen(kind) + 1);
  ev->detail = copy;
  return 0;
}

size_t px_job_event_count(const px_job *job) { return job->_nevents; }

const px_job_event *px_job_event_at(const px_job *job, size_t i) {
  if (i >= job->_nevents) return NULL;
  return &job->_events[(job->_event_first + i) % PX_JOB_EVENTS_MAX];
}

void px_job_renew_input(const px_job *job, int64_t now, px_renew_input *out) {
  memset(out, 0, sizeof(*out));
  out->not_before = job->not_before;
  out->not_after = job->not_after;
  out->has_window = job->has_window;
  out->window_start = job->window_start;
  out->window_end = job->window_end;
  out->failures = job->failures;
  out->last_failure = job->last_failure;
  out->retry_after = job->retry_after;
  out->obtained_at = job->obtained_at;
  out->now = now;
}

int64_t px_job_schedule(px_job *job, int64_t now, const px_life_rand *rnd) {
  px_renew_input in;
  px_renew_plan plan;
  px_job_renew_input(job, now, &in);
  plan = px_renew_at(&in, rnd);
  job->next_run = plan.at;
  job->next_reason = plan.reason;
  return plan.at;
}

/* --- JSON ---------------------------------------------------------------- */

/* Adds `key` as a string when `value` is set. */
static int put_string(json_t *obj, const char *key, const char *value) {
  if (value == NULL) return 0;
  return json_object_set_new(obj, key, json_string(value));
}

static int put_time(json_t *obj, const char *key, int64_t value) {
  return json_object_set_new(obj, key, json_integer((json_int_t)value));
}

static json_t *encode_events(const px_job *job) {
  json_t *arr = json_array();
  for (size_t i = 0; arr != NULL && i < job->_nevents; i++) {
    const px_job_event *ev = px_job_event_at(job, i);
    json_t *e = json_object();
    if (e == NULL || put_time(e, "at", ev->at) || put_string(e, "kind", ev->kind) ||
        put_string(e, "detail", ev->detail) || json_array_append_new(arr, e)) {
      json_decref(e);
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

char *px_job_to_json(const px_job *job) {
  json_t *root, *names, *ari = NULL, *err = NULL, *events;
  char *out = NULL;
  int bad = 0;

  if (job->nnames == 0) return NULL;
  root = json_object();
  names = json_array();
  events = encode_events(job);
  if (root == NULL || names == NULL || events == NULL) bad = 1;
  for (size_t i = 0; !bad && i < job->nnames; i++)
    bad = json_array_append_new(names, json_string(job->names[i])) != 0;
  if (!bad && job->has_window) {
    ari = json_object();
    bad = ari == NULL || put_time(ari, "start", job->window_start) ||
          put_time(ari, "end", job->window_end) || put_time(ari, "fetched", job->ari_fetched) ||
          put_time(ari, "next_poll", job->ari_next_poll) ||
          put_string(ari, "explanation_url", job->explanation_url);
  }
  if (!bad && (job->last_error.type != NULL || job->last_error.detail != NULL)) {
    err = json_object();
    bad = err == NULL || put_string(err, "type", job->last_error.type) ||
          put_string(err, "detail", job->last_error.detail) ||
          json_object_set_new(err, "status", json_integer(job->last_error.status)) ||
          json_object_set_new(err, "rate_limited", json_boolean(job->last_error.rate_limited));
  }
  if (!bad) {
    bad = json_object_set_new(root, "version", json_integer(PX_JOB_VERSION)) ||
          json_object_set(root, "names", names) ||
          put_string(root, "key_type", px_acme_key_type_name(job->key_type)) ||
          put_string(root, "profile", job->profile) ||
          put_string(root, "state", px_job_state_name(job->state)) ||
          put_time(root, "not_before", job->not_before) ||
          put_time(root, "not_after", job->not_after) ||
          put_time(root, "obtained_at", job->obtained_at) ||
          put_string(root, "cert_id", job->cert_id) ||
          (ari != NULL && json_object_set(root, "ari", ari)) ||
          put_time(root, "next_run", job->next_run) ||
          put_string(root, "next_reason", px_renew_reason_name(job->next_reason)) ||
          json_object_set_new(root, "failures", json_integer(job->failures)) ||
          put_time(root, "last_failure", job->last_failure) ||
          put_time(root, "retry_after", job->retry_after) ||
          (err != NULL && json_object_set(root, "last_error", err)) ||
          put_time(root, "last_seen", job->last_seen) || json_object_set(root, "events", events) ||
          (job->redirect_http >= 0 &&
           json_object_set_new(root, "redirect_http", json_boolean(job->redirect_http))) ||
          (job->hsts >= 0 && put_time(root, "hsts", job->hsts));
  }
  if (!bad) out = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(names);
  json_decref(ari);
  json_decref(err);
  json_decref(events);
  json_decref(root);
  return out;
}

/* An optional time member: absent is 0; present must be an integer in
 * [0, TIME_MAX]. */
static int get_time(json_t *obj, const char *key, int64_t *out) {
  json_t *v = json_object_get(obj, key);
  *out = 0;
  if (v == NULL) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > TIME_MAX)
    return -1;
  *out = (int64_t)json_integer_value(v);
  return 0;
}

/* An optional string member, at most `max` bytes and without NUL bytes:
 * absent leaves *out NULL. */
static int get_string(json_t *obj, const char *key, size_t max, char **out) {
  json_t *v = json_object_get(obj, key);
  if (v == NULL) return 0;
  if (!json_is_string(v) || json_string_length(v) > max ||
      strlen(json_string_value(v)) != json_string_length(v))
    return -1;
  return set_string(out, json_string_value(v), max);
}

static int decode_names(px_job *job, json_t *arr) {
  const char *names[PX_JOB_NAMES_MAX];
  size_t n = json_array_size(arr);
  if (!json_is_array(arr) || n == 0 || n > PX_JOB_NAMES_MAX) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *v = json_array_get(arr, i);
    if (!json_is_string(v) || json_string_length(v) > PX_ACME_NAME_MAX + 2) return -1;
    names[i] = json_string_value(v);
  }
  return px_job_set_names(job, names, n);
}

static int decode_ari(px_job *job, json_t *ari) {
  int64_t start, end, fetched, next_poll;
  char *url = NULL;
  int rc;
  if (ari == NULL) return 0;
  if (!json_is_object(ari) || get_time(ari, "start", &start) || get_time(ari, "end", &end) ||
      get_time(ari, "fetched", &fetched) || get_time(ari, "next_poll", &next_poll) ||
      get_string(ari, "explanation_url", PX_JOB_URL_MAX, &url))
    return -1;
  rc = px_job_set_window(job, start, end, url, fetched, next_poll);
  free(url);
  return rc;
}

static int decode_error(px_job *job, json_t *err) {
  json_t *status, *rl;
  if (err == NULL) return 0;
  status = json_object_get(err, "status");
  rl = json_object_get(err, "rate_limited");
  if (!json_is_object(err) || get_string(err, "type", PX_JOB_TYPE_MAX, &job->last_error.type) ||
      get_string(err, "detail", PX_JOB_DETAIL_MAX, &job->last_error.detail) ||
      (status != NULL && (!json_is_integer(status) || json_integer_value(status) < 0 ||
                          json_integer_value(status) > 999)) ||
      (rl != NULL && !json_is_boolean(rl)))
    return -1;
  job->last_error.status = status ? (int)json_integer_value(status) : 0;
  job->last_error.rate_limited = json_is_true(rl);
  return 0;
}

static int decode_events(px_job *job, json_t *arr) {
  size_t n;
  if (arr == NULL) return 0;
  n = json_array_size(arr);
  if (!json_is_array(arr) || n > PX_JOB_EVENTS_MAX) return -1;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_array_get(arr, i), *kind = json_object_get(e, "kind");
    char *detail = NULL;
    int64_t at;
    int rc;
    if (!json_is_object(e) || !json_is_string(kind) || get_time(e, "at", &at) ||
        get_string(e, "detail", PX_JOB_DETAIL_MAX, &detail))
      return -1;
    rc = px_job_add_event(job, at, json_string_value(kind), detail);
    free(detail);
    if (rc != 0) return -1;
  }
  return 0;
}

/* Index of `s` among the names a function gives for 0..n-1, or -1. */
static int lookup(json_t *v, const char *(*name_of)(int), int n) {
  if (!json_is_string(v)) return -1;
  for (int i = 0; i < n; i++)
    if (strcmp(json_string_value(v), name_of(i)) == 0) return i;
  return -1;
}

/* The ask endpoint's per-name settings: absent members stay -1. */
static int decode_site(px_job *job, json_t *root) {
  json_t *v = json_object_get(root, "redirect_http");
  if (v != NULL && !json_is_boolean(v)) return -1;
  if (v != NULL) job->redirect_http = json_is_true(v);
  if (json_object_get(root, "hsts") == NULL) return 0;
  return get_time(root, "hsts", &job->hsts);
}

static const char *state_name_of(int i) { return px_job_state_name((px_job_state)i); }
static const char *reason_name_of(int i) { return px_renew_reason_name((px_renew_reason)i); }

int px_job_from_json(const char *json, size_t len, px_job *job) {
  json_t *root, *version, *failures, *v;
  int state, reason, key_type, rc = -1;

  px_job_dispose(job);
  if (json == NULL || len > PX_JOB_JSON_MAX) return -1;
  root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
  if (!json_is_object(root)) goto done;
  version = json_object_get(root, "version");
  if (!json_is_integer(version) || json_integer_value(version) < 1 ||
      json_integer_value(version) > PX_JOB_VERSION)
    goto done;
  if (decode_names(job, json_object_get(root, "names")) != 0) goto done;
  v = json_object_get(root, "key_type");
  key_type = json_is_string(v) ? px_acme_key_type_parse(json_string_value(v)) : -1;
  state = lookup(json_object_get(root, "state"), state_name_of, (int)NSTATES);
  v = json_object_get(root, "next_reason");
  reason = v == NULL ? (int)PX_RENEW_ONE_THIRD : lookup(v, reason_name_of, PX_RENEW_REASON_COUNT);
  failures = json_object_get(root, "failures");
  if (key_type < 0 || state < 0 || reason < 0 ||
      (failures != NULL && (!json_is_integer(failures) || json_integer_value(failures) < 0 ||
                            json_integer_value(failures) > UINT32_MAX)))
    goto done;
  job->key_type = (px_acme_key_type)key_type;
  job->state = (px_job_state)state;
  job->next_reason = (px_renew_reason)reason;
  job->failures = failures ? (unsigned)json_integer_value(failures) : 0;
  if (get_string(root, "profile", PX_JOB_PROFILE_MAX, &job->profile) ||
      get_string(root, "cert_id", PX_JOB_CERT_ID_MAX, &job->cert_id) ||
      get_time(root, "not_before", &job->not_before) ||
      get_time(root, "not_after", &job->not_after) ||
      get_time(root, "obtained_at", &job->obtained_at) ||
      get_time(root, "next_run", &job->next_run) ||
      get_time(root, "last_failure", &job->last_failure) ||
      get_time(root, "retry_after", &job->retry_after) ||
      get_time(root, "last_seen", &job->last_seen) || decode_site(job, root) ||
      decode_ari(job, json_object_get(root, "ari")) ||
      decode_error(job, json_object_get(root, "last_error")) ||
      decode_events(job, json_object_get(root, "events")))
    goto done;
  rc = 0;
done:
  json_decref(root);
  if (rc != 0) px_job_dispose(job);
  return rc;
}

/* --- migration ------------------------------------------------------------- */

/* Reads the legacy meta.json: {"names": [...], "issued_at", "not_after", ...}. */
static int migrate_meta(px_job *job, const char *name, const char *meta, size_t meta_len) {
  json_t *root;
  int rc = -1;
  if (meta_len > PX_JOB_JSON_MAX) return -1;
  root = json_loadb(meta, meta_len, JSON_REJECT_DUPLICATES, NULL);
  if (json_is_object(root) && get_time(root, "issued_at", &job->not_before) == 0 &&
      get_time(root, "not_after", &job->not_after) == 0 && job->not_after > 0) {
    json_t *names = json_object_get(root, "names");
    rc = names == NULL ? 0 : decode_names(job, names);
    /* The certificate is stored under its first name: a meta.json that
     * names another is not this certificate's. */
    if (rc == 0 && strcmp(job->names[0], name) != 0) rc = -1;
  }
  json_decref(root);
  return rc;
}

int px_job_migrate(px_job *job, const char *name, const px_acme_backoff *failure, const char *meta,
                   size_t meta_len, int64_t now) {
  char line[128];
  px_job_dispose(job);
  if (name == NULL || px_job_set_names(job, &name, 1) != 0) goto fail;
  if (meta != NULL && migrate_meta(job, name, meta, meta_len) != 0) goto fail;
  if (job->not_after > 0) job->state = job->not_after <= now ? PX_JOB_EXPIRED : PX_JOB_VALID;
  if (failure != NULL && failure->failures > 0) {
    job->failures = failure->failures;
    job->last_failure = failure->last_failure;
    if (set_string(&job->last_error.detail, failure->last_error, PX_JOB_DETAIL_MAX) != 0) goto fail;
    if (job->not_after == 0) job->state = PX_JOB_FAILED;
  }
  snprintf(line, sizeof(line), "from %s%s", meta ? "meta.json" : "nothing",
           failure ? " and the failure record" : "");
  if (px_job_add_event(job, now, "migrated", line) != 0) goto fail;
  return 0;
fail:
  px_job_dispose(job);
  return -1;
}
