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

#include "acme/dns/dns01.h"
#include "acme/dns/exchange.h"
#include "acme/dns/tsig.h"
#include "acme/names.h"
#include "acme/proto/client.h"
#include "acme/proto/key.h"

/* Most arguments in events.command and acme.dns.command. */
#define COMMAND_ARGS_MAX 64

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
  int ch[3] = {0, 0, 0};
  size_t n = r->nitems(r->arg, v);
  if (n == 0 || n > 3) {
    report(r, v, "acme.challenges", "expected a list of tls-alpn-01, http-01 and/or dns-01");
  } else {
    int is_list = r->scalar(r->arg, v) == NULL;
    for (size_t i = 0; i < n; i++) {
      const void *it = r->item(r->arg, v, i);
      const char *s = r->scalar(r->arg, it);
      int t = s && strcmp(s, "tls-alpn-01") == 0 ? PX_ACME_TLS_ALPN_01
              : s && strcmp(s, "http-01") == 0   ? PX_ACME_HTTP_01
              : s && strcmp(s, "dns-01") == 0    ? PX_ACME_DNS_01
                                                 : 0;
      if (t == 0) {
        char key[64];
        snprintf(key, sizeof(key), is_list ? "acme.challenges[%zu]" : "acme.challenges", i);
        report(r, it, key, "\"%s\" is not tls-alpn-01, http-01 or dns-01 (each at most once)",
               s ? s : "");
      }
      ch[i] = t;
    }
  }
  for (int i = 0; i < 3; i++)
    for (int k = i + 1; k < 3; k++)
      if (ch[i] && ch[i] == ch[k])
        report(r, v, "acme.challenges", "a challenge type is listed twice");
  memcpy(a->challenges, ch, sizeof(ch));
}

static char **load_argv(const px_acme_config_reader *r, const void *v, const char *name);

/* A NULL-terminated list of strings at `v`, each checked by `check` (a
 * phrase completing "\"VALUE\" ...", or NULL). */
static char **load_strings(const px_acme_config_reader *r, const void *v, const char *name,
                           size_t max, const char *(*check)(const char *), size_t *count) {
  size_t n = r->nitems(r->arg, v);
  int is_list = r->scalar(r->arg, v) == NULL;
  if (n == 0 || n > max) {
    report(r, v, name, "expected a list of 1 to %zu strings", max);
    return NULL;
  }
  char **out = calloc(n + 1, sizeof(char *));
  if (out == NULL) {
    report(r, v, name, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const void *it = r->item(r->arg, v, i);
    const char *s = r->scalar(r->arg, it);
    char key[96];
    snprintf(key, sizeof(key), is_list ? "%s[%zu]" : "%s", name, i);
    const char *why = s == NULL || s[0] == '\0' ? "is not a string" : check ? check(s) : NULL;
    if (why)
      report(r, it, key, "\"%s\" %s", s ? s : "", why);
    else
      out[i] = strdup(s);
    if (out[i] == NULL) {
      for (size_t j = 0; j < i; j++)
        free(out[j]);
      free(out);
      return NULL;
    }
  }
  if (count) *count = n;
  return out;
}

static void free_strings(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static const char *check_addr(const char *s) {
  struct sockaddr_storage ss;
  return px_dns_addr_parse(s, &ss) == 0
             ? NULL
             : "is not an IP address with an optional port (\"192.0.2.53:53\", "
               "\"[2001:db8::53]:53\"); names are not resolved";
}

static const char *check_caa_domain(const char *s) {
  char norm[PX_ACME_NAME_MAX + 1];
  return px_acme_name_normalize(s, strlen(s), norm, sizeof(norm)) >= 0
             ? NULL
             : "is not a domain name (an issuer domain as in CAA, such as letsencrypt.org)";
}

/* acme.dns (docs/dns-01.md). */
static void load_dns(const px_acme_config_reader *r, const void *n, px_acme_dns_settings *d) {
  static const char *const keys[] = {
      "provider", "server", "zone", "tsig", "command", "propagation_timeout", "resolvers", NULL};
  if (r->check_keys(r->arg, n, "acme.dns", keys) != 0) return;
  const void *v = r->get(r->arg, n, "provider");
  const char *s = v ? r->scalar(r->arg, v) : NULL;
  if (v == NULL) {
    report(r, n, "acme.dns.provider", "is required: rfc2136 or hook");
    return;
  }
  d->provider = s && strcmp(s, "rfc2136") == 0 ? PX_DNS01_RFC2136
                : s && strcmp(s, "hook") == 0  ? PX_DNS01_HOOK
                                               : 0;
  if (d->provider == 0) {
    report(r, v, "acme.dns.provider", "\"%s\" is not rfc2136 or hook", s ? s : "");
    d->provider = -1; /* reported: wildcards are not reported again */
    return;
  }
  set_string(r, n, "zone", "acme.dns", &d->zone);
  if (d->zone && check_caa_domain(d->zone))
    report(r, r->get(r->arg, n, "zone"), "acme.dns.zone", "\"%s\" is not a domain name", d->zone);
  set_string(r, n, "server", "acme.dns", &d->server);
  if (d->server && check_addr(d->server))
    report(r, r->get(r->arg, n, "server"), "acme.dns.server", "\"%s\" %s", d->server,
           check_addr(d->server));
  if ((v = r->get(r->arg, n, "resolvers")))
    d->resolvers = load_strings(r, v, "acme.dns.resolvers", PX_DNS01_RESOLVERS_MAX, check_addr,
                                &d->nresolvers);
  d->propagation_timeout = 120;
  if ((v = r->get(r->arg, n, "propagation_timeout"))) {
    s = r->scalar(r->arg, v);
    int64_t t = 0;
    if (s == NULL || parse_duration(r, s, &t) != 0 || t < 1 || t > 3600)
      report(r, v, "acme.dns.propagation_timeout",
             "\"%s\" is not a duration from 1 s to 1 h (e.g. \"120s\", \"5m\")", s ? s : "");
    else
      d->propagation_timeout = t;
  }
  if (d->provider == PX_DNS01_HOOK) {
    if ((v = r->get(r->arg, n, "command")))
      d->command = load_argv(r, v, "acme.dns.command");
    else
      report(r, n, "acme.dns.command", "is required with provider: hook");
    if (r->get(r->arg, n, "tsig"))
      report(r, r->get(r->arg, n, "tsig"), "acme.dns.tsig", "is for provider: rfc2136");
    return;
  }
  if (r->get(r->arg, n, "command"))
    report(r, r->get(r->arg, n, "command"), "acme.dns.command", "is for provider: hook");
  if (d->server == NULL) report(r, n, "acme.dns.server", "is required with provider: rfc2136");
  const void *t = r->get(r->arg, n, "tsig");
  if (t == NULL) {
    report(r, n, "acme.dns.tsig", "is required with provider: rfc2136 ({name, secret_file})");
    return;
  }
  static const char *const tk[] = {"name", "algorithm", "secret_file", NULL};
  if (r->check_keys(r->arg, t, "acme.dns.tsig", tk) != 0) return;
  set_string(r, t, "name", "acme.dns.tsig", &d->tsig_name);
  if (d->tsig_name == NULL) report(r, t, "acme.dns.tsig.name", "is required");
  d->tsig_algorithm = PX_DNS_HMAC_SHA256;
  if ((v = r->get(r->arg, t, "algorithm"))) {
    s = r->scalar(r->arg, v);
    int alg = s ? px_dns_tsig_alg_parse(s) : -1;
    if (alg < 0)
      report(r, v, "acme.dns.tsig.algorithm",
             "\"%s\" is not a known algorithm: hmac-sha256, hmac-sha512 or hmac-sha1", s ? s : "");
    else
      d->tsig_algorithm = alg;
  }
  set_string(r, t, "secret_file", "acme.dns.tsig", &d->tsig_secret_file);
  if (d->tsig_secret_file == NULL) {
    report(r, t, "acme.dns.tsig.secret_file", "is required");
  } else {
    px_dns_tsig_key k;
    char why[512];
    memset(&k, 0, sizeof(k));
    if (px_dns_tsig_key_load(d->tsig_secret_file, &k, why, sizeof(why)) != 0)
      report(r, r->get(r->arg, t, "secret_file"), "acme.dns.tsig.secret_file", "%s", why);
    px_dns_tsig_key_wipe(&k);
  }
}

void px_acme_config_load_acme(const px_acme_config_reader *r, const void *n, px_acme_settings *a) {
  static const char *const keys[] = {"directory",
                                     "email",
                                     "accept_terms",
                                     "ca_file",
                                     "key_type",
                                     "challenges",
                                     "eab",
                                     "renew_rate",
                                     "profile",
                                     "lock_stale_after",
                                     "dns",
                                     "caa_identities",
                                     "preferred_chain",
                                     NULL};
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
  if ((v = r->get(r->arg, n, "dns"))) load_dns(r, v, &a->dns);
  if ((v = r->get(r->arg, n, "caa_identities")))
    a->caa_identities = load_strings(r, v, "acme.caa_identities", 16, check_caa_domain, NULL);
  if (v && a->dns.provider > 0 && a->dns.server == NULL && a->dns.nresolvers == 0)
    report(r, v, "acme.caa_identities",
           "needs a DNS server to ask: acme.dns.resolvers (or provider rfc2136's server)");
  else if (v && a->dns.provider == 0)
    report(r, v, "acme.caa_identities",
           "needs acme.dns (its resolvers, or provider rfc2136's server, are asked for CAA)");
  for (int i = 0; i < 3; i++)
    if (a->challenges[i] == PX_ACME_DNS_01 && a->dns.provider == 0)
      report(r, r->get(r->arg, n, "challenges"), "acme.challenges",
             "lists dns-01, which needs acme.dns (provider rfc2136 or hook; docs/dns-01.md)");
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
  set_string(r, n, "preferred_chain", "acme", &a->preferred_chain);
  if (a->preferred_chain && strlen(a->preferred_chain) > 128)
    report(r, r->get(r->arg, n, "preferred_chain"), "acme.preferred_chain",
           "is longer than a certificate's common name (64; at most 128 accepted)");
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
  free(a->preferred_chain);
  free(a->dns.server);
  free(a->dns.zone);
  free(a->dns.tsig_name);
  free(a->dns.tsig_secret_file);
  free_strings(a->dns.command);
  free_strings(a->dns.resolvers);
  free_strings(a->caa_identities);
  free(o->ask);
  memset(a, 0, sizeof(*a));
  memset(o, 0, sizeof(*o));
}

/* ---- admin: and events: (operator control and notifications) ---------- */

/* sockaddr_un's sun_path holds 108 bytes on Linux, the NUL included. */
#define SOCKET_PATH_MAX 107

void px_control_config_load_admin(const px_acme_config_reader *r, const void *n,
                                  px_control_settings *c) {
  /* admin.metrics is the proxy's (proxy/config/listen.c reads it). */
  static const char *const keys[] = {"socket", "metrics", NULL};
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

/* A program and its arguments, run without a shell: a NULL-terminated argv,
 * or NULL (reported under `name`). */
static char **load_argv(const px_acme_config_reader *r, const void *v, const char *name) {
  size_t n = r->nitems(r->arg, v);
  int is_list = r->scalar(r->arg, v) == NULL;
  if (n == 0 || n > COMMAND_ARGS_MAX) {
    report(r, v, name, "expected a list: the program, then its arguments (at most %d)",
           COMMAND_ARGS_MAX);
    return NULL;
  }
  if (!is_list && strchr(r->scalar(r->arg, v), ' ')) {
    /* No shell runs it: a line with spaces would be taken as one file name. */
    report(r, v, name, "\"%s\" is run without a shell; give a list: [program, argument, ...]",
           r->scalar(r->arg, v));
    return NULL;
  }
  char **argv = calloc(n + 1, sizeof(char *));
  if (argv == NULL) {
    report(r, v, name, "out of memory");
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    const void *it = r->item(r->arg, v, i);
    const char *s = r->scalar(r->arg, it);
    char key[64];
    snprintf(key, sizeof(key), "%s[%zu]", name, i);
    if (s == NULL || (i == 0 && s[0] == '\0'))
      report(r, it, key, i == 0 ? "expected the program's name or path" : "expected a string");
    else if ((argv[i] = strdup(s)) == NULL)
      report(r, it, key, "out of memory");
    if (argv[i] == NULL) {
      for (size_t j = 0; j < i; j++)
        free(argv[j]);
      free(argv);
      return NULL;
    }
  }
  return argv;
}

void px_control_config_load_events(const px_acme_config_reader *r, const void *n,
                                   px_control_settings *c) {
  static const char *const keys[] = {"command", "webhook", "timeout", NULL};
  if (r->check_keys(r->arg, n, "events", keys) != 0) return;
  const void *v;
  if ((v = r->get(r->arg, n, "command"))) c->events_command = load_argv(r, v, "events.command");
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
  free_strings(c->events_command);
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
