#include "acme/life/events.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "acme/life/command.h"
#include "acme/transport.h"
#include "tls/log.h"

/* Bounds on what one event carries into a child's environment, a log line
 * or a POST body: a CA's problem detail is short, and a name list is at
 * most 100 names of 253 bytes (RFC 8555 sets no limit; CAs do). */
#define MAX_ERROR_BYTES 1024
#define MAX_INHERITED_ENV 512
#define RATE_BUCKETS 1024
#define RATE_MAX_ENTRIES 65536
#define NAME_CAP 254   /* one name: 253 bytes (RFC 1035 §2.3.4) and a NUL */
#define NAMES_CAP 8192 /* the space-separated list, truncated beyond */

static const char *const type_names[PX_EVENT_NTYPES] = {"obtained", "renewed", "failed", "expiring",
                                                        "revoked"};

typedef enum kind { KIND_COMMAND = 0, KIND_WEBHOOK = 1 } kind;

/* A delivery waiting in a queue or running: the command's environment or
 * the webhook's body, plus what the log lines about it need. */
typedef struct delivery {
  struct delivery *next;
  px_events *ev;
  px_event_type type;
  char name[NAME_CAP];
  char **env; /* command: NULL-terminated, malloc'd strings */
  char *body; /* webhook: JSON */
  size_t body_len;
  /* running state */
  px_command *cmd;  /* the running command, or NULL */
  uv_timer_t timer; /* a webhook's timeout and backoff */
  int closes;
  unsigned tries;
  int in_flight; /* a POST whose callback has not run yet */
} delivery;

typedef struct rate_entry {
  struct rate_entry *next;
  px_event_type type;
  uint64_t last_sent_ms;
  unsigned last_attempt;
  uint64_t suppressed;
  char name[];
} rate_entry;

typedef struct queue {
  delivery *head, *tail;
  size_t len;
  size_t running;
} queue;

struct px_events {
  uv_loop_t *loop;
  char **command; /* NULL-terminated copy */
  char *webhook;
  px_events_options o;
  queue q[2];
  delivery *running; /* every delivery that holds handles or a POST */
  rate_entry *rate[RATE_BUCKETS];
  size_t nrate;
  px_events_counters counters;
  int closing;
};

static void maybe_free(px_events *ev);
static void pump(px_events *ev, kind k);

const char *px_event_type_name(px_event_type t) {
  return (unsigned)t < PX_EVENT_NTYPES ? type_names[t] : "?";
}

static uint64_t now_ms(const px_events *ev) {
  if (ev->o.now_ms) return ev->o.now_ms(ev->o.now_arg);
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* RFC 3339 §5.6 in UTC, e.g. 2026-11-30T19:00:00Z. */
static void rfc3339(char *out, size_t cap, int64_t unix_s) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The names, space separated, truncated at `cap`. */
static void join_names(char *out, size_t cap, const px_event *e) {
  size_t n = 0;
  out[0] = '\0';
  for (size_t i = 0; i < e->nnames && n + 1 < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "", e->names[i]);
}

static const char *first_name(const px_event *e) {
  return e->nnames > 0 && e->names[0] ? e->names[0] : "";
}

char *px_event_to_json(const px_event *e, uint64_t suppressed, uint64_t now) {
  json_t *o = json_object(), *names = json_array();
  if (o == NULL || names == NULL) {
    json_decref(o);
    json_decref(names);
    return NULL;
  }
  for (size_t i = 0; i < e->nnames; i++)
    json_array_append_new(names, json_string(e->names[i]));
  char ts[32];
  json_object_set_new(o, "event", json_string(px_event_type_name(e->type)));
  json_object_set_new(o, "names", names);
  rfc3339(ts, sizeof(ts), (int64_t)(now / 1000));
  json_object_set_new(o, "time", json_string(ts));
  if (e->not_after) {
    rfc3339(ts, sizeof(ts), e->not_after);
    json_object_set_new(o, "not_after", json_string(ts));
  }
  if (e->error)
    json_object_set_new(o, "error", json_stringn(e->error, strnlen(e->error, MAX_ERROR_BYTES)));
  if (e->error_type) json_object_set_new(o, "error_type", json_string(e->error_type));
  if (e->attempt) json_object_set_new(o, "attempt", json_integer(e->attempt));
  if (e->next_attempt) {
    rfc3339(ts, sizeof(ts), e->next_attempt);
    json_object_set_new(o, "next_attempt", json_string(ts));
  }
  json_object_set_new(o, "suppressed", json_integer((json_int_t)suppressed));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

/* ---- rate limit ----------------------------------------------------------- */

static size_t rate_hash(px_event_type type, const char *name) {
  size_t h = 2166136261u ^ (size_t)type; /* FNV-1a */
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    h = (h ^ *p) * 16777619u;
  return h % RATE_BUCKETS;
}

/* Forgets entries whose window has passed (their pending counts are lost:
 * the table is full, which only a storm across many names does). */
static void rate_prune(px_events *ev, uint64_t now) {
  for (size_t b = 0; b < RATE_BUCKETS; b++) {
    for (rate_entry **p = &ev->rate[b]; *p;) {
      if (now - (*p)->last_sent_ms >= ev->o.min_interval_ms) {
        rate_entry *dead = *p;
        *p = dead->next;
        free(dead);
        ev->nrate--;
      } else {
        p = &(*p)->next;
      }
    }
  }
}

/* Decides whether `e` goes out. Returns 1 and the count held back before it
 * in *suppressed, or 0 when it is held back. */
static int rate_admit(px_events *ev, const px_event *e, uint64_t now, uint64_t *suppressed) {
  const char *name = first_name(e);
  size_t b = rate_hash(e->type, name);
  rate_entry *r = ev->rate[b];
  while (r && (r->type != e->type || strcmp(r->name, name) != 0))
    r = r->next;
  if (r) {
    int same_attempt = e->type == PX_EVENT_FAILED && e->attempt && e->attempt == r->last_attempt;
    if (same_attempt || now - r->last_sent_ms < ev->o.min_interval_ms) {
      r->suppressed++;
      return 0;
    }
  } else {
    if (ev->nrate >= RATE_MAX_ENTRIES) rate_prune(ev, now);
    if (ev->nrate >= RATE_MAX_ENTRIES) {
      *suppressed = 0; /* no room to remember it: deliver, unlimited */
      return 1;
    }
    size_t len = strlen(name);
    r = calloc(1, sizeof(*r) + len + 1);
    if (r == NULL) {
      *suppressed = 0;
      return 1;
    }
    memcpy(r->name, name, len + 1);
    r->type = e->type;
    r->next = ev->rate[b];
    ev->rate[b] = r;
    ev->nrate++;
  }
  *suppressed = r->suppressed;
  r->suppressed = 0;
  r->last_sent_ms = now;
  r->last_attempt = e->attempt;
  return 1;
}

/* ---- deliveries ----------------------------------------------------------- */

static void delivery_free(delivery *d) {
  if (d->env)
    for (char **p = d->env; *p; p++)
      free(*p);
  free(d->env);
  free(d->body);
  free(d);
}

static void unlink_running(px_events *ev, delivery *d) {
  for (delivery **p = &ev->running; *p; p = &(*p)->next) {
    if (*p == d) {
      *p = d->next;
      return;
    }
  }
}

/* A delivery is over: free it, start the next. */
static void delivery_done(delivery *d) {
  px_events *ev = d->ev;
  kind k = d->env ? KIND_COMMAND : KIND_WEBHOOK;
  unlink_running(ev, d);
  ev->q[k].running--;
  delivery_free(d);
  if (ev->closing)
    maybe_free(ev);
  else
    pump(ev, k);
}

/* The last handle of a finished webhook delivery closed. */
static void on_delivery_closed(uv_handle_t *h) {
  delivery *d = h->data;
  if (--d->closes > 0) return;
  delivery_done(d);
}

static int push_env(char **env, size_t *n, const char *key, const char *value) {
  size_t len = strlen(key) + strlen(value) + 2;
  char *s = malloc(len);
  if (s == NULL) return -1;
  snprintf(s, len, "%s=%s", key, value);
  env[(*n)++] = s;
  return 0;
}

/* The child's environment: ours (minus any PORTICO_* an outer caller set,
 * so a stale value cannot pass for the event's) plus the event's. */
static char **build_env(const px_event *e, uint64_t suppressed, uint64_t now) {
  size_t inherited = 0;
  while (environ && environ[inherited] && inherited < MAX_INHERITED_ENV)
    inherited++;
  char **env = calloc(inherited + 12, sizeof(char *));
  if (env == NULL) return NULL;
  size_t n = 0;
  int bad = 0;
  for (size_t i = 0; i < inherited && !bad; i++) {
    if (strncmp(environ[i], "PORTICO_", 8) == 0) continue;
    if ((env[n] = strdup(environ[i])) == NULL)
      bad = 1;
    else
      n++;
  }
  char names[NAMES_CAP], num[32], ts[32], errbuf[MAX_ERROR_BYTES + 1];
  join_names(names, sizeof(names), e);
  bad |= push_env(env, &n, "PORTICO_EVENT", px_event_type_name(e->type));
  bad |= push_env(env, &n, "PORTICO_NAMES", names);
  rfc3339(ts, sizeof(ts), (int64_t)(now / 1000));
  bad |= push_env(env, &n, "PORTICO_TIME", ts);
  if (e->not_after) {
    rfc3339(ts, sizeof(ts), e->not_after);
    bad |= push_env(env, &n, "PORTICO_NOT_AFTER", ts);
  }
  if (e->error) {
    snprintf(errbuf, sizeof(errbuf), "%s", e->error);
    bad |= push_env(env, &n, "PORTICO_ERROR", errbuf);
  }
  if (e->error_type) bad |= push_env(env, &n, "PORTICO_ERROR_TYPE", e->error_type);
  if (e->attempt) {
    snprintf(num, sizeof(num), "%u", e->attempt);
    bad |= push_env(env, &n, "PORTICO_ATTEMPT", num);
  }
  if (e->next_attempt) {
    rfc3339(ts, sizeof(ts), e->next_attempt);
    bad |= push_env(env, &n, "PORTICO_NEXT_ATTEMPT", ts);
  }
  snprintf(num, sizeof(num), "%llu", (unsigned long long)suppressed);
  bad |= push_env(env, &n, "PORTICO_SUPPRESSED", num);
  env[n] = NULL;
  if (bad) {
    for (size_t i = 0; i < n; i++)
      free(env[i]);
    free(env);
    return NULL;
  }
  return env;
}

static void on_command_done(void *arg, const px_command_result *r) {
  delivery *d = arg;
  px_events *ev = d->ev;
  d->cmd = NULL;
  const char *what = px_event_type_name(d->type);
  if (r->spawn_err) {
    ev->counters.command_failed++;
    px_log(PX_LOG_WARN, "events.command (%s for %s): cannot run %s: %s", what, d->name,
           ev->command[0], r->spawn_err);
  } else if (r->timed_out && ev->closing) {
    px_log(PX_LOG_INFO, "events.command (%s for %s): stopped, portico is shutting down", what,
           d->name);
  } else if (r->timed_out) {
    ev->counters.command_failed++;
    px_log(PX_LOG_WARN, "events.command (%s for %s): killed after %llu ms", what, d->name,
           (unsigned long long)ev->o.command_timeout_ms);
  } else if (r->signal) {
    ev->counters.command_failed++;
    px_log(PX_LOG_WARN, "events.command (%s for %s): ended by signal %d", what, d->name, r->signal);
  } else if (r->status != 0) {
    ev->counters.command_failed++;
    px_log(PX_LOG_WARN, "events.command (%s for %s): exit status %lld", what, d->name,
           (long long)r->status);
  } else {
    px_log(PX_LOG_INFO, "events.command (%s for %s): exit status 0", what, d->name);
  }
  delivery_done(d);
}

/* The program runs without a shell, in its own process group, killed
 * after the timeout (life/command.h). */
static void start_command(px_events *ev, delivery *d) {
  d->cmd = px_command_run(ev->loop, ev->command, d->env, ev->o.command_timeout_ms, 0,
                          on_command_done, d);
  if (d->cmd == NULL) {
    ev->counters.command_failed++;
    px_log(PX_LOG_WARN, "events.command (%s for %s): out of memory", px_event_type_name(d->type),
           d->name);
    delivery_done(d);
  }
}

static void send_webhook(delivery *d);
static void on_backoff(uv_timer_t *t);

static void finish_webhook(delivery *d) {
  d->closes = 1;
  uv_close((uv_handle_t *)&d->timer, on_delivery_closed);
}

static void on_webhook_answer(void *arg, const char *err, px_acme_response *r) {
  delivery *d = arg;
  px_events *ev = d->ev;
  d->in_flight = 0;
  char why[160];
  int ok = 0;
  if (err) {
    snprintf(why, sizeof(why), "%s", err);
  } else {
    ok = r->status >= 200 && r->status < 300;
    snprintf(why, sizeof(why), "answered %d", r->status);
  }
  px_acme_response_free(r);
  const char *what = px_event_type_name(d->type);
  if (ok) {
    px_log(PX_LOG_DEBUG, "events.webhook (%s for %s): %s", what, d->name, why);
    finish_webhook(d);
    return;
  }
  /* The URL is not logged: it may carry a token in its path or query. */
  if (ev->closing || d->tries > ev->o.webhook_retries) {
    ev->counters.webhook_failed++;
    px_log(PX_LOG_WARN, "events.webhook (%s for %s): %s; giving up after %u attempt(s)", what,
           d->name, why, d->tries);
    finish_webhook(d);
    return;
  }
  uint64_t delay = ev->o.webhook_backoff_ms << (d->tries - 1 < 16 ? d->tries - 1 : 16);
  px_log(PX_LOG_INFO, "events.webhook (%s for %s): %s; retrying in %llu ms", what, d->name, why,
         (unsigned long long)delay);
  uv_timer_start(&d->timer, on_backoff, delay, 0);
}

/* One attempt of the POST (the first, or one after a backoff). */
static void send_webhook(delivery *d) {
  px_events *ev = d->ev;
  d->tries++;
  d->in_flight = 1;
  if (px_acme_request(ev->loop, NULL, "POST", ev->webhook, "application/json", d->body, d->body_len,
                      ev->o.webhook_timeout_ms, on_webhook_answer, d) != 0) {
    d->in_flight = 0;
    ev->counters.webhook_failed++;
    px_log(PX_LOG_WARN, "events.webhook (%s for %s): cannot send the request",
           px_event_type_name(d->type), d->name);
    finish_webhook(d);
  }
}

static void on_backoff(uv_timer_t *t) { send_webhook(t->data); }

static void start_webhook(px_events *ev, delivery *d) {
  uv_timer_init(ev->loop, &d->timer);
  d->timer.data = d;
  send_webhook(d);
}

/* Starts queued deliveries while slots are free. */
static void pump(px_events *ev, kind k) {
  queue *q = &ev->q[k];
  size_t max = k == KIND_COMMAND ? ev->o.command_max_running : ev->o.webhook_max_running;
  while (q->head && q->running < max && !ev->closing) {
    delivery *d = q->head;
    q->head = d->next;
    if (q->head == NULL) q->tail = NULL;
    q->len--;
    q->running++;
    d->next = ev->running;
    ev->running = d;
    if (k == KIND_COMMAND)
      start_command(ev, d);
    else
      start_webhook(ev, d);
  }
}

static void enqueue(px_events *ev, kind k, delivery *d) {
  queue *q = &ev->q[k];
  if (q->len >= ev->o.queue_max) {
    ev->counters.dropped[d->type]++;
    px_log(PX_LOG_WARN, "events.%s: %zu deliveries already waiting; %s for %s dropped",
           k == KIND_COMMAND ? "command" : "webhook", q->len, px_event_type_name(d->type), d->name);
    delivery_free(d);
    return;
  }
  if (q->tail)
    q->tail->next = d;
  else
    q->head = d;
  q->tail = d;
  q->len++;
  pump(ev, k);
}

static delivery *new_delivery(px_events *ev, const px_event *e) {
  delivery *d = calloc(1, sizeof(*d));
  if (d == NULL) return NULL;
  d->ev = ev;
  d->type = e->type;
  snprintf(d->name, sizeof(d->name), "%s", first_name(e));
  return d;
}

static void log_event(const px_event *e) {
  char names[NAMES_CAP], err[MAX_ERROR_BYTES + 1], na[32] = "-", attempt[32] = "";
  join_names(names, sizeof(names), e);
  err[0] = '\0';
  /* The CA's detail is text from the network: escape it. */
  if (e->error) px_log_escape(err, sizeof(err), e->error, strnlen(e->error, MAX_ERROR_BYTES));
  if (e->not_after) rfc3339(na, sizeof(na), e->not_after);
  if (e->attempt) snprintf(attempt, sizeof(attempt), ", attempt %u", e->attempt);
  px_log_level level =
      e->type == PX_EVENT_FAILED || e->type == PX_EVENT_EXPIRING ? PX_LOG_WARN : PX_LOG_INFO;
  px_log(level, "event: %s for %s (not_after %s%s)%s%s%s", px_event_type_name(e->type), names, na,
         attempt, e->error ? ": \"" : "", err, e->error ? "\"" : "");
}

void px_events_emit(px_events *ev, const px_event *e) {
  if ((unsigned)e->type >= PX_EVENT_NTYPES || ev->closing) return;
  ev->counters.emitted[e->type]++;
  log_event(e);
  if (ev->command == NULL && ev->webhook == NULL) return;
  uint64_t now = now_ms(ev), suppressed = 0;
  if (!rate_admit(ev, e, now, &suppressed)) {
    ev->counters.suppressed[e->type]++;
    px_log(PX_LOG_DEBUG, "event: %s for %s held back by the rate limit",
           px_event_type_name(e->type), first_name(e));
    return;
  }
  if (ev->command) {
    delivery *d = new_delivery(ev, e);
    if (d && (d->env = build_env(e, suppressed, now)) != NULL) {
      enqueue(ev, KIND_COMMAND, d);
    } else {
      free(d);
      ev->counters.dropped[e->type]++;
    }
  }
  if (ev->webhook) {
    delivery *d = new_delivery(ev, e);
    if (d && (d->body = px_event_to_json(e, suppressed, now)) != NULL) {
      d->body_len = strlen(d->body);
      enqueue(ev, KIND_WEBHOOK, d);
    } else {
      free(d);
      ev->counters.dropped[e->type]++;
    }
  }
}

size_t px_events_pending(const px_events *ev) {
  size_t n = 0;
  for (const delivery *d = ev->running; d; d = d->next)
    n++;
  return n + ev->q[KIND_COMMAND].len + ev->q[KIND_WEBHOOK].len;
}

void px_events_get_counters(const px_events *ev, px_events_counters *out) { *out = ev->counters; }

px_events *px_events_new(uv_loop_t *loop, const px_events_options *opts, char *err, size_t errlen) {
  if (opts->command && opts->command[0] == NULL) {
    snprintf(err, errlen, "events.command: the command is empty");
    return NULL;
  }
  if (opts->webhook && strncmp(opts->webhook, "http://", 7) != 0) {
    snprintf(err, errlen, "events.webhook: only http:// URLs are supported");
    return NULL;
  }
  px_events *ev = calloc(1, sizeof(*ev));
  if (ev == NULL) goto nomem;
  ev->loop = loop;
  ev->o = *opts;
  ev->o.command = NULL;
  ev->o.webhook = NULL;
  if (!ev->o.command_timeout_ms) ev->o.command_timeout_ms = 30000;
  if (!ev->o.command_max_running) ev->o.command_max_running = 4;
  if (!ev->o.webhook_timeout_ms) ev->o.webhook_timeout_ms = 10000;
  if (!ev->o.webhook_retries) ev->o.webhook_retries = 2;
  if (ev->o.webhook_retries == (unsigned)-1) ev->o.webhook_retries = 0;
  if (!ev->o.webhook_backoff_ms) ev->o.webhook_backoff_ms = 1000;
  if (!ev->o.webhook_max_running) ev->o.webhook_max_running = 4;
  if (!ev->o.queue_max) ev->o.queue_max = 256;
  if (!ev->o.min_interval_ms) ev->o.min_interval_ms = 300000;
  if (opts->command) {
    size_t n = 0;
    while (opts->command[n])
      n++;
    if ((ev->command = calloc(n + 1, sizeof(char *))) == NULL) goto nomem;
    for (size_t i = 0; i < n; i++)
      if ((ev->command[i] = strdup(opts->command[i])) == NULL) goto nomem;
  }
  if (opts->webhook && (ev->webhook = strdup(opts->webhook)) == NULL) goto nomem;
  return ev;
nomem:
  snprintf(err, errlen, "events: out of memory");
  if (ev) {
    ev->closing = 1;
    maybe_free(ev);
  }
  return NULL;
}

/* Frees the object once nothing it started is left. */
static void maybe_free(px_events *ev) {
  if (ev->running) return;
  for (int k = 0; k < 2; k++) {
    while (ev->q[k].head) {
      delivery *d = ev->q[k].head;
      ev->q[k].head = d->next;
      delivery_free(d);
    }
  }
  for (size_t b = 0; b < RATE_BUCKETS; b++) {
    while (ev->rate[b]) {
      rate_entry *r = ev->rate[b];
      ev->rate[b] = r->next;
      free(r);
    }
  }
  if (ev->command)
    for (char **p = ev->command; *p; p++)
      free(*p);
  free(ev->command);
  free(ev->webhook);
  free(ev);
}

void px_events_close(px_events *ev) {
  if (ev == NULL || ev->closing) return;
  ev->closing = 1;
  for (delivery *d = ev->running; d; d = d->next) {
    if (d->closes) continue; /* already closing */
    if (d->env) {
      px_command_expire(d->cmd); /* killed; its callback ends the delivery */
    } else if (!d->in_flight) {
      uv_timer_stop(&d->timer); /* waiting to retry: stop now */
      finish_webhook(d);
    }
    /* a POST in flight ends within its timeout and closes then */
  }
  maybe_free(ev);
}
