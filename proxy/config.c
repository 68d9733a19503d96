/*
 * Configuration loading: libyaml's document API gives every node its line,
 * so each error names file, line and key. All errors are collected before
 * giving up. Values (durations, sizes, addresses) are parsed in
 * config_values.c.
 */
#include "proxy/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "proxy/config_values.h"

typedef struct loader {
  const char *file;
  FILE *errout;
  int nerrors;
  yaml_document_t doc;
  px_config *cfg;
} loader;

static void error_at(loader *L, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void error_at(loader *L, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  int line = n ? (int)n->start_mark.line + 1 : 1;
  fprintf(L->errout, "%s:%d: %s: %s\n", L->file, line, key, msg);
  L->nerrors++;
}

static yaml_node_t *node(loader *L, int id) { return yaml_document_get_node(&L->doc, id); }

static const char *scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Edit distance, for "did you mean" hints on unknown keys. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return 99;
  size_t d[41][41];
  for (size_t i = 0; i <= la; i++) d[i][0] = i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

/* Checks that a mapping has only `known` keys (NULL-terminated). */
static int check_keys(loader *L, yaml_node_t *map, const char *path, const char *const *known) {
  if (map->type != YAML_MAPPING_NODE) {
    error_at(L, map, path, "expected a mapping");
    return -1;
  }
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = node(L, p->key);
    const char *name = scalar(k);
    int ok = 0;
    const char *hint = NULL;
    for (const char *const *kn = known; name && *kn && !ok; kn++) {
      if (strcmp(name, *kn) == 0) ok = 1;
      else if (distance(name, *kn) <= 2) hint = *kn;
    }
    if (ok) continue;
    char key[256];
    snprintf(key, sizeof(key), "%s%s%s", path, path[0] ? "." : "", name ? name : "?");
    if (hint)
      error_at(L, k, key, "unknown key '%s' (did you mean '%s'?)", name ? name : "?", hint);
    else
      error_at(L, k, key, "unknown key '%s'", name ? name : "?");
  }
  return 0;
}

static yaml_node_t *get(loader *L, yaml_node_t *map, const char *key) {
  if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    const char *k = scalar(node(L, p->key));
    if (k && strcmp(k, key) == 0) return node(L, p->value);
  }
  return NULL;
}

static int get_bool(loader *L, yaml_node_t *n, const char *key, int *out) {
  const char *s = scalar(n);
  /* YAML 1.1 booleans, in any case ("False" is what many generators write). */
  if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0))
    *out = 1;
  else if (s && (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0))
    *out = 0;
  else {
    error_at(L, n, key, "expected true or false");
    return -1;
  }
  return 0;
}

static char *get_string(loader *L, yaml_node_t *n, const char *key) {
  const char *s = scalar(n);
  if (s == NULL || s[0] == '\0') {
    error_at(L, n, key, "expected a non-empty string");
    return NULL;
  }
  char *d = strdup(s);
  if (d == NULL) error_at(L, n, key, "out of memory");
  return d;
}

/* Calls `fn` for a scalar or for each item of a sequence of scalars. */
typedef int (*item_fn)(loader *L, yaml_node_t *n, const char *key, size_t index, void *arg);
static size_t for_each_item(loader *L, yaml_node_t *n, const char *key, item_fn fn, void *arg) {
  char k[256];
  if (n->type == YAML_SCALAR_NODE) {
    snprintf(k, sizeof(k), "%s", key);
    fn(L, n, k, 0, arg);
    return 1;
  }
  if (n->type != YAML_SEQUENCE_NODE) {
    error_at(L, n, key, "expected a string or a list of strings");
    return 0;
  }
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++, i++) {
    snprintf(k, sizeof(k), "%s[%zu]", key, i);
    fn(L, node(L, *it), k, i, arg);
  }
  return i;
}

static size_t count_items(yaml_node_t *n) {
  if (n->type == YAML_SCALAR_NODE) return 1;
  if (n->type == YAML_SEQUENCE_NODE) return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  return 0;
}

/* ---- listen ---------------------------------------------------------------- */

static int listen_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_listen_addr *a = &((px_listen_addr *)arg)[i];
  const char *s = scalar(n);
  const char *why = s ? px_cfg_parse_listen(s, &a->ss, &a->sslen) : "expected a string";
  if (why) {
    error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  a->text = strdup(s);
  return 0;
}

static void load_listen_list(loader *L, yaml_node_t *n, const char *key, px_listen_addr **out,
                             size_t *count) {
  size_t cnt = count_items(n);
  if (cnt == 0) {
    error_at(L, n, key, "expected an address or a list of addresses");
    return;
  }
  *out = calloc(cnt, sizeof(px_listen_addr));
  if (*out == NULL) return;
  *count = for_each_item(L, n, key, listen_item, *out);
}

static void load_listen(loader *L, yaml_node_t *n) {
  static const char *const keys[] = {"https", "http", NULL};
  if (check_keys(L, n, "listen", keys) != 0) return;
  yaml_node_t *v;
  if ((v = get(L, n, "https"))) load_listen_list(L, v, "listen.https", &L->cfg->https, &L->cfg->nhttps);
  if ((v = get(L, n, "http"))) load_listen_list(L, v, "listen.http", &L->cfg->http, &L->cfg->nhttp);
}

/* ---- timeouts and limits ------------------------------------------------- */

typedef struct limit_key {
  const char *name;
  int kind; /* 0 duration (ms), 1 size, 2 count */
  size_t offset;
  uint64_t min, max;
} limit_key;

#define LIM(f) offsetof(px_limits, f)

static const limit_key timeout_keys[] = {
    {"handshake", 0, LIM(handshake_timeout_ms), 1, 3600000},
    {"request_header", 0, LIM(header_timeout_ms), 1, 3600000},
    {"keepalive", 0, LIM(keepalive_timeout_ms), 1, 86400000},
    {"request_body", 0, LIM(body_timeout_ms), 1, 86400000},
    {"send", 0, LIM(send_timeout_ms), 1, 86400000},
    {"upstream_connect", 0, LIM(upstream_connect_timeout_ms), 1, 3600000},
    {"upstream_read", 0, LIM(upstream_read_timeout_ms), 1, 86400000},
    {"upstream_idle", 0, LIM(upstream_idle_timeout_ms), 1, 86400000},
    {"drain", 0, LIM(drain_timeout_ms), 1, 86400000},
    {"on_demand", 0, LIM(on_demand_timeout_ms), 1, 3600000},
    {"websocket_idle", 0, LIM(websocket_idle_timeout_ms), 1, 86400000},
    {NULL, 0, 0, 0, 0},
};

static const limit_key limit_keys[] = {
    {"max_connections", 2, LIM(max_connections), 1, 10000000},
    {"max_header_bytes", 1, LIM(max_header_bytes), 1024, 1048576},
    {"max_headers", 2, LIM(max_headers), 1, 256},
    {"max_body", 1, LIM(max_body_bytes), 0, UINT64_MAX},
    {"upstream_pool", 2, LIM(upstream_pool_size), 0, 100000},
    {"buffer", 1, LIM(buffer_size), 4096, 16777216},
    {NULL, 0, 0, 0, 0},
};

static void load_limit_group(loader *L, yaml_node_t *n, const char *group, const limit_key *keys) {
  const char *names[16];
  size_t k = 0;
  for (const limit_key *lk = keys; lk->name; lk++) names[k++] = lk->name;
  names[k] = NULL;
  if (check_keys(L, n, group, names) != 0) return;
  for (const limit_key *lk = keys; lk->name; lk++) {
    yaml_node_t *v = get(L, n, lk->name);
    if (v == NULL) continue;
    char key[96];
    snprintf(key, sizeof(key), "%s.%s", group, lk->name);
    const char *s = scalar(v);
    uint64_t val = 0;
    const char *why = s == NULL ? "expected a value"
                      : lk->kind == 0 ? px_cfg_parse_duration_ms(s, &val)
                      : lk->kind == 1 ? px_cfg_parse_size(s, &val)
                                      : px_cfg_parse_count(s, &val);
    if (why == NULL && (val < lk->min || val > lk->max)) why = "is out of range";
    if (why) {
      error_at(L, v, key, "\"%s\" %s", s ? s : "", why);
      continue;
    }
    char *field = (char *)&L->cfg->limits + lk->offset;
    if (lk->kind == 0 || lk->offset == LIM(max_body_bytes))
      *(uint64_t *)field = val;
    else
      *(size_t *)field = (size_t)val;
  }
}

void px_limits_defaults(px_limits *l) {
  l->handshake_timeout_ms = 10000;
  l->header_timeout_ms = 10000;
  l->keepalive_timeout_ms = 75000;
  l->body_timeout_ms = 60000;
  l->send_timeout_ms = 60000;
  l->upstream_connect_timeout_ms = 5000;
  l->upstream_read_timeout_ms = 60000;
  l->upstream_idle_timeout_ms = 30000;
  l->drain_timeout_ms = 30000;
  l->on_demand_timeout_ms = 60000;
  l->websocket_idle_timeout_ms = 300000;
  l->max_connections = 10000;
  l->max_header_bytes = 32768;
  l->max_headers = 100;
  l->max_body_bytes = 1ULL << 30;
  l->upstream_pool_size = 1024;
  l->buffer_size = 65536;
}

/* ---- sites ----------------------------------------------------------------- */

static void load_hsts(loader *L, yaml_node_t *n, const char *key, px_hsts *h) {
  if (n->type == YAML_SCALAR_NODE) {
    int on;
    if (get_bool(L, n, key, &on) != 0) return;
    h->enabled = on;
    h->max_age = PX_HSTS_DEFAULT_MAX_AGE;
    h->include_subdomains = 0;
    h->preload = 0;
    return;
  }
  static const char *const keys[] = {"max_age", "include_subdomains", "preload", NULL};
  if (check_keys(L, n, key, keys) != 0) return;
  char k[128];
  h->enabled = 1;
  h->max_age = PX_HSTS_DEFAULT_MAX_AGE;
  yaml_node_t *v;
  if ((v = get(L, n, "max_age"))) {
    uint64_t age;
    snprintf(k, sizeof(k), "%s.max_age", key);
    const char *why = scalar(v) ? px_cfg_parse_count(scalar(v), &age) : "expected a number";
    /* Two years is the most any browser honours and what preload lists ask. */
    if (why == NULL && age > 63072000) why = "is over 63072000 (two years)";
    if (why)
      error_at(L, v, k, "%s", why);
    else
      h->max_age = (int64_t)age;
  }
  if ((v = get(L, n, "include_subdomains"))) {
    snprintf(k, sizeof(k), "%s.include_subdomains", key);
    get_bool(L, v, k, &h->include_subdomains);
  }
  if ((v = get(L, n, "preload"))) {
    snprintf(k, sizeof(k), "%s.preload", key);
    get_bool(L, v, k, &h->preload);
  }
}

static int host_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_site *site = arg;
  const char *s = scalar(n);
  char norm[256];
  const char *why = s ? px_cfg_normalize_host_pattern(s, norm, sizeof(norm)) : "expected a string";
  if (why) {
    error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  site->hosts[site->nhosts++] = strdup(norm);
  return 0;
}

static int upstream_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_site *site = arg;
  px_upstream_addr *u = &site->upstreams[site->nupstreams];
  const char *s = scalar(n);
  const char *why = s ? px_cfg_parse_upstream(s, &u->ss, &u->sslen, &u->is_unix) : "expected a string";
  if (why) {
    error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  u->text = strdup(s);
  site->nupstreams++;
  return 0;
}

static void load_tls(loader *L, yaml_node_t *n, const char *key, px_site *site) {
  const char *s = scalar(n);
  if (s) {
    if (strcmp(s, "acme") == 0) site->tls_mode = PX_SITE_TLS_ACME;
    else if (strcmp(s, "on_demand") == 0) site->tls_mode = PX_SITE_TLS_ON_DEMAND;
    else error_at(L, n, key, "\"%s\" is not one of acme, on_demand or {cert, key}", s);
    return;
  }
  static const char *const keys[] = {"cert", "key", NULL};
  if (check_keys(L, n, key, keys) != 0) return;
  char k[128];
  const char *names[2] = {"cert", "key"};
  char **dst[2] = {&site->cert_file, &site->key_file};
  for (int i = 0; i < 2; i++) {
    snprintf(k, sizeof(k), "%s.%s", key, names[i]);
    yaml_node_t *v = get(L, n, names[i]);
    if (v == NULL) {
      error_at(L, n, k, "missing (a certificate needs both cert and key)");
      continue;
    }
    *dst[i] = get_string(L, v, k);
    if (*dst[i] && access(*dst[i], R_OK) != 0)
      error_at(L, v, k, "cannot read %s: %s", *dst[i], strerror(errno));
  }
  site->tls_mode = PX_SITE_TLS_FILES;
}

static void load_site(loader *L, yaml_node_t *n, size_t idx, int def_redirect, const px_hsts *def_hsts) {
  static const char *const keys[] = {"hosts", "upstreams", "tls", "redirect_http", "hsts", NULL};
  char path[64], k[96];
  snprintf(path, sizeof(path), "sites[%zu]", idx);
  px_site *site = &L->cfg->sites[idx];
  site->line = (int)n->start_mark.line + 1;
  site->redirect_http = def_redirect;
  site->hsts = *def_hsts;
  if (check_keys(L, n, path, keys) != 0) return;
  yaml_node_t *v;
  snprintf(k, sizeof(k), "%s.hosts", path);
  if ((v = get(L, n, "hosts")) && count_items(v) > 0) {
    site->hosts = calloc(count_items(v), sizeof(char *));
    if (site->hosts) for_each_item(L, v, k, host_item, site);
  } else {
    error_at(L, v ? v : n, k, "a site needs at least one host");
  }
  snprintf(k, sizeof(k), "%s.upstreams", path);
  if ((v = get(L, n, "upstreams")) && count_items(v) > 0) {
    site->upstreams = calloc(count_items(v), sizeof(px_upstream_addr));
    if (site->upstreams) for_each_item(L, v, k, upstream_item, site);
  } else {
    error_at(L, v ? v : n, k, "a site needs at least one upstream");
  }
  if ((v = get(L, n, "tls"))) {
    snprintf(k, sizeof(k), "%s.tls", path);
    load_tls(L, v, k, site);
  }
  if ((v = get(L, n, "redirect_http"))) {
    snprintf(k, sizeof(k), "%s.redirect_http", path);
    get_bool(L, v, k, &site->redirect_http);
  }
  if ((v = get(L, n, "hsts"))) {
    snprintf(k, sizeof(k), "%s.hsts", path);
    load_hsts(L, v, k, &site->hsts);
  }
}

/* Hosts must be unique across sites, and only one site may be "*". */
static void check_duplicate_hosts(loader *L, yaml_node_t *sites_node) {
  px_config *cfg = L->cfg;
  for (size_t a = 0; a < cfg->nsites; a++)
    for (size_t i = 0; i < cfg->sites[a].nhosts; i++)
      for (size_t b = a; b < cfg->nsites; b++)
        for (size_t j = (b == a ? i + 1 : 0); j < cfg->sites[b].nhosts; j++) {
          if (strcmp(cfg->sites[a].hosts[i], cfg->sites[b].hosts[j]) != 0) continue;
          char k[64];
          snprintf(k, sizeof(k), "sites[%zu].hosts", b);
          yaml_node_t fake = {0};
          fake.start_mark.line = (size_t)cfg->sites[b].line - 1;
          error_at(L, &fake, k, "\"%s\" is already served by sites[%zu] (line %d)",
                   cfg->sites[a].hosts[i], a, cfg->sites[a].line);
        }
}

/* ---- the acme: and on_demand: sections are read by acme/config.c ---- */

static const void *reader_get(void *arg, const void *map, const char *key) {
  return get(arg, (yaml_node_t *)map, key);
}

static int reader_check_keys(void *arg, const void *map, const char *path, const char *const *known) {
  return check_keys(arg, (yaml_node_t *)map, path, known);
}

static const char *reader_scalar(void *arg, const void *n) { return scalar(n); }

static int reader_boolean(void *arg, const void *n, const char *key, int *out) {
  return get_bool(arg, (yaml_node_t *)n, key, out);
}

static size_t reader_nitems(void *arg, const void *n) { return count_items((yaml_node_t *)n); }

static const void *reader_item(void *arg, const void *n, size_t i) {
  const yaml_node_t *y = n;
  if (y->type != YAML_SEQUENCE_NODE) return y;
  return node(arg, y->data.sequence.items.start[i]);
}

static void reader_error(void *arg, const void *n, const char *key, const char *msg) {
  error_at(arg, n, key, "%s", msg);
}

static px_acme_config_reader acme_reader(loader *L) {
  px_acme_config_reader r = {.arg = L,
                             .get = reader_get,
                             .check_keys = reader_check_keys,
                             .scalar = reader_scalar,
                             .boolean = reader_boolean,
                             .nitems = reader_nitems,
                             .item = reader_item,
                             .count = px_cfg_parse_count,
                             .error = reader_error};
  return r;
}

static void load_root(loader *L, yaml_node_t *root) {
  static const char *const keys[] = {"listen", "workers", "storage", "log", "defaults", "timeouts",
                                     "limits", "sites", "acme", "on_demand", "admin",
                                     "events", NULL};
  px_config *cfg = L->cfg;
  if (root == NULL) {
    error_at(L, NULL, "(file)", "the file is empty");
    return;
  }
  if (check_keys(L, root, "", keys) != 0) return;
  yaml_node_t *v;
  if ((v = get(L, root, "listen"))) load_listen(L, v);
  if ((v = get(L, root, "workers"))) {
    const char *s = scalar(v);
    uint64_t n;
    if (s && strcmp(s, "auto") == 0)
      cfg->workers = 0;
    else if (s && px_cfg_parse_count(s, &n) == NULL && n >= 1 && n <= 256)
      cfg->workers = (int)n;
    else
      error_at(L, v, "workers", "expected auto or a number from 1 to 256");
  }
  if ((v = get(L, root, "storage"))) {
    free(cfg->storage);
    cfg->storage = get_string(L, v, "storage");
  }
  if ((v = get(L, root, "log"))) {
    static const char *const lk[] = {"level", "access", NULL};
    if (check_keys(L, v, "log", lk) == 0) {
      yaml_node_t *x;
      if ((x = get(L, v, "level"))) {
        int lvl = scalar(x) ? px_cfg_parse_log_level(scalar(x)) : -1;
        if (lvl < 0) error_at(L, x, "log.level", "expected error, warn, info or debug");
        else cfg->log_level = lvl;
      }
      if ((x = get(L, v, "access"))) {
        free(cfg->access_log);
        cfg->access_log = get_string(L, x, "log.access");
      }
    }
  }
  int def_redirect = 1;
  px_hsts def_hsts = {0, PX_HSTS_DEFAULT_MAX_AGE, 0, 0};
  if ((v = get(L, root, "defaults"))) {
    static const char *const dk[] = {"redirect_http", "hsts", NULL};
    if (check_keys(L, v, "defaults", dk) == 0) {
      yaml_node_t *x;
      if ((x = get(L, v, "redirect_http"))) get_bool(L, x, "defaults.redirect_http", &def_redirect);
      if ((x = get(L, v, "hsts"))) load_hsts(L, x, "defaults.hsts", &def_hsts);
    }
  }
  if ((v = get(L, root, "timeouts"))) load_limit_group(L, v, "timeouts", timeout_keys);
  if ((v = get(L, root, "limits"))) load_limit_group(L, v, "limits", limit_keys);
  px_acme_config_reader reader = acme_reader(L);
  if ((v = get(L, root, "acme"))) px_acme_config_load_acme(&reader, v, &cfg->acme);
  if ((v = get(L, root, "on_demand"))) px_acme_config_load_on_demand(&reader, v, &cfg->on_demand);
  if ((v = get(L, root, "admin"))) px_control_config_load_admin(&reader, v, &cfg->control);
  if ((v = get(L, root, "events"))) px_control_config_load_events(&reader, v, &cfg->control);
  yaml_node_t *sites = get(L, root, "sites");
  if (sites && sites->type == YAML_SEQUENCE_NODE) {
    size_t n = (size_t)(sites->data.sequence.items.top - sites->data.sequence.items.start);
    cfg->sites = calloc(n ? n : 1, sizeof(px_site));
    if (cfg->sites) {
      for (size_t i = 0; i < n; i++) {
        load_site(L, node(L, sites->data.sequence.items.start[i]), i, def_redirect, &def_hsts);
        cfg->nsites++;
      }
    }
    check_duplicate_hosts(L, sites);
    size_t catch_alls = 0;
    for (size_t i = 0; i < cfg->nsites; i++)
      for (size_t j = 0; j < cfg->sites[i].nhosts; j++) catch_alls += strcmp(cfg->sites[i].hosts[j], "*") == 0;
    if (catch_alls > 1) error_at(L, sites, "sites", "only one site may use the host \"*\"");
  } else {
    error_at(L, sites ? sites : root, "sites", "expected a list of sites");
  }
  if (cfg->nhttps == 0 && cfg->nhttp == 0)
    error_at(L, root, "listen", "nothing to listen on: set listen.https and/or listen.http");
  if (cfg->nhttps > 0) {
    int any_tls = 0;
    for (size_t i = 0; i < cfg->nsites; i++) any_tls |= cfg->sites[i].tls_mode != PX_SITE_TLS_NONE;
    if (!any_tls && cfg->nsites > 0)
      error_at(L, get(L, root, "listen"), "listen.https", "no site has a certificate (tls)");
  }
}

px_config *px_config_load_buffer(const char *name, const char *data, size_t len, FILE *errout,
                                 int *nerrors) {
  loader L = {0};
  L.file = name;
  L.errout = errout;
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
  if (!yaml_parser_load(&parser, &L.doc)) {
    fprintf(errout, "%s:%d: (syntax): %s%s%s\n", name, (int)parser.problem_mark.line + 1,
            parser.problem ? parser.problem : "invalid YAML", parser.context ? " " : "",
            parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    *nerrors = 1;
    return NULL;
  }
  yaml_parser_delete(&parser);
  L.cfg = calloc(1, sizeof(px_config));
  if (L.cfg == NULL) {
    yaml_document_delete(&L.doc);
    *nerrors = 1;
    return NULL;
  }
  L.cfg->file = strdup(name);
  L.cfg->storage = strdup("/var/lib/portico");
  L.cfg->access_log = strdup("stdout");
  L.cfg->log_level = 2; /* info */
  px_limits_defaults(&L.cfg->limits);
  if (px_acme_config_defaults(&L.cfg->acme, &L.cfg->on_demand) != 0) {
    fprintf(errout, "%s: out of memory\n", name);
    L.nerrors++;
  }
  load_root(&L, yaml_document_get_root_node(&L.doc));
  if (px_control_config_finish(&L.cfg->control, L.cfg->storage) != 0) {
    fprintf(errout, "%s: out of memory\n", name);
    L.nerrors++;
  }
  yaml_document_delete(&L.doc);
  if (L.cfg->workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    L.cfg->workers = n > 0 ? (int)(n > 256 ? 256 : n) : 1;
  }
  *nerrors = L.nerrors;
  if (L.nerrors) {
    px_config_free(L.cfg);
    return NULL;
  }
  return L.cfg;
}

px_config *px_config_load(const char *path, FILE *errout, int *nerrors) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(errout, "%s: cannot read: %s\n", path, strerror(errno));
    *nerrors = 1;
    return NULL;
  }
  /* A config over 4 MiB is a mistake, not a config. */
  size_t cap = 4 << 20, len = 0;
  char *buf = malloc(cap);
  if (buf) len = fread(buf, 1, cap, f);
  int too_big = buf && len == cap && fgetc(f) != EOF;
  int failed = buf == NULL || ferror(f);
  fclose(f);
  if (failed || too_big) {
    fprintf(errout, "%s: cannot read: %s\n", path, too_big ? "larger than 4 MiB" : strerror(errno));
    free(buf);
    *nerrors = 1;
    return NULL;
  }
  px_config *cfg = px_config_load_buffer(path, buf, len, errout, nerrors);
  free(buf);
  return cfg;
}

int px_config_warnings(const px_config *cfg, FILE *out) {
  int n = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    const px_site *s = &cfg->sites[i];
    if (!s->hsts.enabled) continue;
    char hosts[512] = "";
    size_t off = 0;
    for (size_t j = 0; j < s->nhosts && off < sizeof(hosts) - 1; j++)
      off += (size_t)snprintf(hosts + off, sizeof(hosts) - off, "%s%s", j ? ", " : "", s->hosts[j]);
    fprintf(out,
            "%s:%d: sites[%zu].hsts: warning: HSTS tells browsers to refuse plain HTTP for %s%s "
            "for %lld seconds (%lld days); once a browser has seen it, it cannot be withdrawn "
            "before it expires, so make sure HTTPS works for every one of these names first.\n",
            cfg->file, s->line, i, hosts, s->hsts.include_subdomains ? " and all their subdomains" : "",
            (long long)s->hsts.max_age, (long long)(s->hsts.max_age / 86400));
    n++;
    if (s->hsts.preload) {
      fprintf(out,
              "%s:%d: sites[%zu].hsts.preload: warning: preload asks browsers to ship these names "
              "as HTTPS-only; leaving the list takes months. Preload lists require "
              "include_subdomains and max_age >= 31536000.\n",
              cfg->file, s->line, i);
      n++;
    }
  }
  return n;
}

void px_config_free(px_config *cfg) {
  if (cfg == NULL) return;
  for (size_t i = 0; i < cfg->nhttps; i++) free(cfg->https[i].text);
  for (size_t i = 0; i < cfg->nhttp; i++) free(cfg->http[i].text);
  free(cfg->https);
  free(cfg->http);
  for (size_t i = 0; i < cfg->nsites; i++) {
    px_site *s = &cfg->sites[i];
    for (size_t j = 0; j < s->nhosts; j++) free(s->hosts[j]);
    for (size_t j = 0; j < s->nupstreams; j++) free(s->upstreams[j].text);
    free(s->hosts);
    free(s->upstreams);
    free(s->cert_file);
    free(s->key_file);
  }
  free(cfg->sites);
  px_acme_config_dispose(&cfg->acme, &cfg->on_demand);
  px_control_config_dispose(&cfg->control);
  free(cfg->storage);
  free(cfg->access_log);
  free(cfg->file);
  free(cfg);
}
