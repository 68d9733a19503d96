/*
 * The `acme:` and `on_demand:` sections (acme/config.h).
 */
#include "acme/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acme/proto/client.h"
#include "acme/proto/key.h"

/* Let's Encrypt production (RFC 8555 §7.1.1 directory). */
#define DEFAULT_DIRECTORY "https://acme-v02.api.letsencrypt.org/directory"

static void report(const px_acme_config_reader *r, const void *n, const char *key, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static void report(const px_acme_config_reader *r, const void *n, const char *key, const char *fmt,
                   ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  r->error(r->arg, n, key, msg);
}

static int parse_duration(const px_acme_config_reader *r, const char *s, int64_t *out);

/* Replaces *dst with the non-empty string at `map`.`name`, when present. */
static void set_string(const px_acme_config_reader *r, const void *map, const char *name,
                       const char *path, char **dst) {
  const void *v = r->get(r->arg, map, name);
  if (v == NULL) return;
  char key[96];
  snprintf(key, sizeof(key), "%s.%s", path, name);
  free(*dst);
  *dst = NULL;
  const char *s = r->scalar(r->arg, v);
  if (s == NULL || s[0] == '\0') {
    report(r, v, key, "expected a non-empty string");
    return;
  }
  if ((*dst = strdup(s)) == NULL) report(r, v, key, "out of memory");
}

int px_acme_config_defaults(px_acme_settings *a, px_on_demand_settings *o) {
  memset(a, 0, sizeof(*a));
  memset(o, 0, sizeof(*o));
  a->key_type = PX_ACME_KEY_P256;
  a->challenges[0] = PX_ACME_TLS_ALPN_01;
  a->challenges[1] = PX_ACME_HTTP_01;
  o->rate_count = 20;
  o->rate_window_ms = 60000;
  o->max_pending = 100;
  o->cache_size = 10000;
  o->forget_after_s = 30 * 86400;
  a->renew_rate = 10;
  a->lock_stale_after = 300;
  a->directory = strdup(DEFAULT_DIRECTORY);
  return a->directory ? 0 : -ENOMEM;
}

static void load_challenges(const px_acme_config_reader *r, const void *v, px_acme_settings *a) {
  int ch[2] = {0, 0};
  size_t n = r->nitems(r->arg, v);
  if (n == 0 || n > 2) {
    report(r, v, "acme.challenges", "expected a list of tls-alpn-01 and/or http-01");
  } else {
    int is_list = r->scalar(r->arg, v) == NULL;
    for (size_t i = 0; i < n; i++) {
      const void *it = r->item(r->arg, v, i);
      const char *s = r->scalar(r->arg, it);
      int t = s && strcmp(s, "tls-alpn-01") == 0 ? PX_ACME_TLS_ALPN_01
              : s && strcmp(s, "http-01") == 0   ? PX_ACME_HTTP_01
                                                 : 0;
      if (t == 0) {
        char key[64];
        snprintf(key, sizeof(key), is_list ? "acme.challenges[%zu]" : "acme.challenges", i);
        report(r, it, key, "\"%s\" is not tls-alpn-01 or http-01 (each at most once)", s ? s : "");
      }
      ch[i] = t;
    }
  }
  if (ch[0] && ch[0] == ch[1]) report(r, v, "acme.challenges", "a challenge type is listed twice");
  a->challenges[0] = ch[0];
  a->challenges[1] = ch[1];
}

void px_acme_config_load_acme(const px_acme_config_reader *r, const void *n, px_acme_settings *a) {
  static const char *const keys[] = {
      "directory", "email",      "accept_terms", "ca_file",          "key_type", "challenges",
      "eab",       "renew_rate", "profile",      "lock_stale_after", NULL};
  if (r->check_keys(r->arg, n, "acme", keys) != 0) return;
  set_string(r, n, "directory", "acme", &a->directory);
  if (a->directory && strncmp(a->directory, "https://", 8) != 0)
    report(r, r->get(r->arg, n, "directory"), "acme.directory", "must be an https:// URL");
  set_string(r, n, "email", "acme", &a->email);
  set_string(r, n, "ca_file", "acme", &a->ca_file);
  if (a->ca_file && access(a->ca_file, R_OK) != 0)
    report(r, r->get(r->arg, n, "ca_file"), "acme.ca_file", "cannot read %s: %s", a->ca_file,
           strerror(errno));
  const void *v;
  if ((v = r->get(r->arg, n, "accept_terms")))
    r->boolean(r->arg, v, "acme.accept_terms", &a->accept_terms);
  if ((v = r->get(r->arg, n, "key_type"))) {
    const char *s = r->scalar(r->arg, v);
    int t = s ? px_acme_key_type_parse(s) : -1;
    if (t < 0)
      report(r, v, "acme.key_type", "expected p256, p384, rsa2048, rsa3072 or rsa4096");
    else
      a->key_type = t;
  }
  if ((v = r->get(r->arg, n, "challenges"))) load_challenges(r, v, a);
  if ((v = r->get(r->arg, n, "renew_rate"))) {
    uint64_t x = 0;
    const char *s = r->scalar(r->arg, v);
    const char *why = s ? r->count(s, &x) : "expected a number";
    if (why == NULL && (x < 1 || x > 100000)) why = "is out of range (1 to 100000 per minute)";
    if (why)
      report(r, v, "acme.renew_rate", "\"%s\" %s", s ? s : "", why);
    else
      a->renew_rate = (unsigned)x;
  }
  if ((v = r->get(r->arg, n, "lock_stale_after"))) {
    const char *s = r->scalar(r->arg, v);
    int64_t d = 0;
    if (s == NULL || parse_duration(r, s, &d) != 0 || d < 3 || d > 86400)
      report(r, v, "acme.lock_stale_after",
             "\"%s\" is not a duration from 3 s to a day (e.g. \"300s\", \"5m\")", s ? s : "");
    else
      a->lock_stale_after = d;
  }
  set_string(r, n, "profile", "acme", &a->profile);
  if (a->profile) {
    /* RFC 8555 profiles extension: a token; also keeps the log and the
     * job file clean. */
    size_t len = strlen(a->profile);
    int ok = len <= 64;
    for (size_t i = 0; ok && i < len; i++) {
      char c = a->profile[i];
      ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
    }
    if (!ok)
      report(r, r->get(r->arg, n, "profile"), "acme.profile",
             "expected a profile name such as classic or shortlived ([A-Za-z0-9._-], at most 64)");
  }
  if ((v = r->get(r->arg, n, "eab"))) {
    static const char *const ek[] = {"kid", "hmac_key", NULL};
    if (r->check_keys(r->arg, v, "acme.eab", ek) == 0) {
      set_string(r, v, "kid", "acme.eab", &a->eab_kid);
      set_string(r, v, "hmac_key", "acme.eab", &a->eab_hmac_key);
      if (!a->eab_kid != !a->eab_hmac_key) report(r, v, "acme.eab", "needs both kid and hmac_key");
    }
  }
}

/* "20/min", "5/s", "100/h" or a bare count per minute. */
static const char *parse_rate(const px_acme_config_reader *r, const char *s, uint64_t *count,
                              uint64_t *window_ms) {
  char num[32];
  const char *slash = strchr(s, '/');
  size_t n = slash ? (size_t)(slash - s) : strlen(s);
  if (n == 0 || n >= sizeof(num)) return "is not a rate (e.g. \"20/min\")";
  memcpy(num, s, n);
  num[n] = '\0';
  if (r->count(num, count) != NULL || *count == 0) return "is not a rate (e.g. \"20/min\")";
  const char *unit = slash ? slash + 1 : "min";
  if (strcmp(unit, "s") == 0)
    *window_ms = 1000;
  else if (strcmp(unit, "min") == 0 || strcmp(unit, "m") == 0)
    *window_ms = 60000;
  else if (strcmp(unit, "h") == 0)
    *window_ms = 3600000;
  else
    return "has an unknown unit (use /s, /min or /h)";
  return NULL;
}

/* "30d", "12h", "90m", "45s" or bare seconds; 0 on success. */
static int parse_duration(const px_acme_config_reader *r, const char *s, int64_t *out) {
  char num[32];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof(num)) return -1;
  int64_t mult = 1;
  char last = s[n - 1];
  if (last == 'd' || last == 'h' || last == 'm' || last == 's') {
    mult = last == 'd' ? 86400 : last == 'h' ? 3600 : last == 'm' ? 60 : 1;
    n--;
  }
  if (n == 0) return -1;
  memcpy(num, s, n);
  num[n] = '\0';
  uint64_t x;
  if (r->count(num, &x) != NULL || x > (uint64_t)3650 * 86400 / (uint64_t)mult) return -1;
  *out = (int64_t)x * mult;
  return 0;
}

void px_acme_config_load_on_demand(const px_acme_config_reader *r, const void *n,
                                   px_on_demand_settings *o) {
  static const char *const keys[] = {"ask",        "rate",         "max_pending",
                                     "cache_size", "forget_after", NULL};
  if (r->check_keys(r->arg, n, "on_demand", keys) != 0) return;
  set_string(r, n, "ask", "on_demand", &o->ask);
  if (o->ask && strncmp(o->ask, "http://", 7) != 0 && strncmp(o->ask, "https://", 8) != 0)
    report(r, r->get(r->arg, n, "ask"), "on_demand.ask", "must be an http:// URL");
  if (o->ask && strncmp(o->ask, "https://", 8) == 0)
    report(r, r->get(r->arg, n, "ask"), "on_demand.ask",
           "https is not supported for ask; use a local http:// endpoint");
  const void *v;
  if ((v = r->get(r->arg, n, "rate"))) {
    const char *s = r->scalar(r->arg, v);
    const char *why = s ? parse_rate(r, s, &o->rate_count, &o->rate_window_ms) : "expected a rate";
    if (why) report(r, v, "on_demand.rate", "\"%s\" %s", s ? s : "", why);
  }
  if ((v = r->get(r->arg, n, "forget_after"))) {
    const char *s = r->scalar(r->arg, v);
    int64_t d = 0;
    if (s == NULL || parse_duration(r, s, &d) != 0 || d < 60)
      report(r, v, "on_demand.forget_after",
             "\"%s\" is not a duration of at least a minute (e.g. \"30d\", \"12h\", \"90m\")",
             s ? s : "");
    else
      o->forget_after_s = d;
  }
  const char *names[2] = {"max_pending", "cache_size"};
  size_t *dst[2] = {&o->max_pending, &o->cache_size};
  for (int i = 0; i < 2; i++) {
    if ((v = r->get(r->arg, n, names[i])) == NULL) continue;
    uint64_t x;
    char key[64];
    snprintf(key, sizeof(key), "on_demand.%s", names[i]);
    const char *s = r->scalar(r->arg, v);
    const char *why = s ? r->count(s, &x) : "expected a number";
    if (why == NULL && (x < 1 || x > 10000000)) why = "is out of range";
    if (why)
      report(r, v, key, "\"%s\" %s", s ? s : "", why);
    else
      *dst[i] = (size_t)x;
  }
}

void px_acme_config_dispose(px_acme_settings *a, px_on_demand_settings *o) {
  free(a->directory);
  free(a->email);
  free(a->ca_file);
  free(a->eab_kid);
  free(a->eab_hmac_key);
  free(a->profile);
  free(o->ask);
  memset(a, 0, sizeof(*a));
  memset(o, 0, sizeof(*o));
}

/* ---- admin: and events: (operator control and notifications) ---------- */

/* sockaddr_un's sun_path holds 108 bytes on Linux, the NUL included. */
#define SOCKET_PATH_MAX 107
/* Most arguments in events.command. */
#define COMMAND_ARGS_MAX 64

void px_control_config_load_admin(const px_acme_config_reader *r, const void *n,
                                  px_control_settings *c) {
  static const char *const keys[] = {"socket", NULL};
  if (r->check_keys(r->arg, n, "admin", keys) != 0) return;
  const void *v = r->get(r->arg, n, "socket");
  if (v == NULL) return;
  const char *s = r->scalar(r->arg, v);
  free(c->admin_socket);
  c->admin_socket = NULL;
  c->admin_off = 0;
  if (s && (strcmp(s, "off") == 0 || strcmp(s, "false") == 0)) {
    c->admin_off = 1;
    return;
  }
  if (s == NULL || s[0] == '\0')
    report(r, v, "admin.socket", "expected a path, or off");
  else if (strlen(s) > SOCKET_PATH_MAX)
    report(r, v, "admin.socket", "the path is longer than %d bytes (a Unix socket's limit)",
           SOCKET_PATH_MAX);
  else if ((c->admin_socket = strdup(s)) == NULL)
    report(r, v, "admin.socket", "out of memory");
}

static void load_command(const px_acme_config_reader *r, const void *v, px_control_settings *c) {
  size_t n = r->nitems(r->arg, v);
  int is_list = r->scalar(r->arg, v) == NULL;
  if (n == 0 || n > COMMAND_ARGS_MAX) {
    report(r, v, "events.command", "expected a list: the program, then its arguments (at most %d)",
           COMMAND_ARGS_MAX);
    return;
  }
  if (!is_list && strchr(r->scalar(r->arg, v), ' ')) {
    /* No shell runs it: a line with spaces would be taken as one file name. */
    report(r, v, "events.command",
           "\"%s\" is run without a shell; give a list: [program, argument, ...]",
           r->scalar(r->arg, v));
    return;
  }
  char **argv = calloc(n + 1, sizeof(char *));
  if (argv == NULL) {
    report(r, v, "events.command", "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    const void *it = r->item(r->arg, v, i);
    const char *s = r->scalar(r->arg, it);
    char key[48];
    snprintf(key, sizeof(key), "events.command[%zu]", i);
    if (s == NULL || (i == 0 && s[0] == '\0'))
      report(r, it, key, i == 0 ? "expected the program's name or path" : "expected a string");
    else if ((argv[i] = strdup(s)) == NULL)
      report(r, it, key, "out of memory");
    if (argv[i] == NULL) {
      for (size_t j = 0; j < i; j++)
        free(argv[j]);
      free(argv);
      return;
    }
  }
  c->events_command = argv;
}

void px_control_config_load_events(const px_acme_config_reader *r, const void *n,
                                   px_control_settings *c) {
  static const char *const keys[] = {"command", "webhook", "timeout", NULL};
  if (r->check_keys(r->arg, n, "events", keys) != 0) return;
  const void *v;
  if ((v = r->get(r->arg, n, "command"))) load_command(r, v, c);
  set_string(r, n, "webhook", "events", &c->events_webhook);
  if (c->events_webhook && strncmp(c->events_webhook, "http://", 7) != 0) {
    report(r, r->get(r->arg, n, "webhook"), "events.webhook",
           strncmp(c->events_webhook, "https://", 8) == 0
               ? "https is not supported; use a local http:// receiver"
               : "must be an http:// URL");
  } else if (c->events_webhook && c->events_webhook[7] == '\0') {
    report(r, r->get(r->arg, n, "webhook"), "events.webhook", "has no host");
  }
  if ((v = r->get(r->arg, n, "timeout"))) {
    const char *s = r->scalar(r->arg, v);
    int64_t d = 0;
    if (s == NULL || parse_duration(r, s, &d) != 0 || d < 1 || d > 3600)
      report(r, v, "events.timeout",
             "\"%s\" is not a duration from 1 s to 1 h (e.g. \"30s\", \"2m\")", s ? s : "");
    else
      c->events_timeout_ms = (uint64_t)d * 1000;
  }
}

void px_control_config_dispose(px_control_settings *c) {
  free(c->admin_socket);
  for (size_t i = 0; c->events_command && c->events_command[i]; i++)
    free(c->events_command[i]);
  free(c->events_command);
  free(c->events_webhook);
  memset(c, 0, sizeof(*c));
}

/* ---- what a reload cannot change ------------------------------------------ */

static int str_differs(const char *a, const char *b) {
  if (a == NULL || b == NULL) return a != b;
  return strcmp(a, b) != 0;
}

static int argv_differs(char *const *a, char *const *b) {
  if (a == NULL || b == NULL) return a != b;
  size_t i = 0;
  for (; a[i] && b[i]; i++)
    if (strcmp(a[i], b[i]) != 0) return 1;
  return a[i] != b[i];
}

size_t px_acme_config_changed_keys(const px_acme_settings *a0, const px_on_demand_settings *o0,
                                   const px_control_settings *c0, const px_acme_settings *a1,
                                   const px_on_demand_settings *o1, const px_control_settings *c1,
                                   const char **keys, size_t cap) {
  const struct {
    const char *key;
    int differs;
  } all[] = {
      {"acme.directory", str_differs(a0->directory, a1->directory)},
      {"acme.email", str_differs(a0->email, a1->email)},
      {"acme.accept_terms", a0->accept_terms != a1->accept_terms},
      {"acme.ca_file", str_differs(a0->ca_file, a1->ca_file)},
      {"acme.key_type", a0->key_type != a1->key_type},
      {"acme.challenges",
       a0->challenges[0] != a1->challenges[0] || a0->challenges[1] != a1->challenges[1]},
      {"acme.eab",
       str_differs(a0->eab_kid, a1->eab_kid) || str_differs(a0->eab_hmac_key, a1->eab_hmac_key)},
      {"acme.renew_rate", a0->renew_rate != a1->renew_rate},
      {"acme.profile", str_differs(a0->profile, a1->profile)},
      {"acme.lock_stale_after", a0->lock_stale_after != a1->lock_stale_after},
      {"on_demand.ask", str_differs(o0->ask, o1->ask)},
      {"on_demand.rate",
       o0->rate_count != o1->rate_count || o0->rate_window_ms != o1->rate_window_ms},
      {"on_demand.max_pending", o0->max_pending != o1->max_pending},
      {"on_demand.cache_size", o0->cache_size != o1->cache_size},
      {"on_demand.forget_after", o0->forget_after_s != o1->forget_after_s},
      {"admin.socket",
       str_differs(c0->admin_socket, c1->admin_socket) || c0->admin_off != c1->admin_off},
      {"events.command", argv_differs(c0->events_command, c1->events_command)},
      {"events.webhook", str_differs(c0->events_webhook, c1->events_webhook)},
      {"events.timeout", c0->events_timeout_ms != c1->events_timeout_ms},
  };
  size_t n = 0;
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
    if (!all[i].differs) continue;
    if (n < cap) keys[n] = all[i].key;
    n++;
  }
  return n;
}
