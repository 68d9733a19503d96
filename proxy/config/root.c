/*
 * The top level of the config file: storage, log, defaults, the acme: and on_demand:
 * sections (read by acme/config.c through a reader), and px_config_load.
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acme/store_open.h"
#include "proxy/config/values.h"
#include "proxy/listen_lock.h"
#include "tls/unconst.h"

static const void *reader_get(void *arg, const void *map, const char *key) {
  return px_cfg_get(arg, px_unconst(map), key);
}

static int reader_check_keys(void *arg, const void *map, const char *path,
                             const char *const *known) {
  return px_cfg_check_keys(arg, px_unconst(map), path, known);
}

static const char *reader_scalar(void *arg, const void *n) { return px_cfg_scalar(n); }

static int reader_boolean(void *arg, const void *n, const char *key, int *out) {
  return px_cfg_get_bool(arg, px_unconst(n), key, out);
}

static size_t reader_nitems(void *arg, const void *n) { return px_cfg_count_items(px_unconst(n)); }

static const void *reader_item(void *arg, const void *n, size_t i) {
  const yaml_node_t *y = n;
  if (y->type != YAML_SEQUENCE_NODE) return y;
  return px_cfg_node(arg, y->data.sequence.items.start[i]);
}

static void reader_error(void *arg, const void *n, const char *key, const char *msg) {
  px_cfg_error_at(arg, n, key, "%s", msg);
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

/* Refuses, without creating anything, a path start-up could not open or
 * create: `want_dir` for a directory portico creates (storage, mkdir of the
 * last component), else a file it appends to (the access log). */
static void check_creatable(loader *L, yaml_node_t *n, const char *key, const char *path,
                            int want_dir) {
  struct stat st;
  if (stat(path, &st) == 0) {
    if (!want_dir && S_ISDIR(st.st_mode))
      px_cfg_error_at(L, n, key, "%s is a directory", path);
    else if (want_dir && !S_ISDIR(st.st_mode))
      px_cfg_error_at(L, n, key, "%s is not a directory", path);
    else if (access(path, want_dir ? W_OK | X_OK : W_OK) != 0)
      px_cfg_error_at(L, n, key, "cannot write %s: %s", path, strerror(errno));
    return;
  }
  if (errno != ENOENT) {
    px_cfg_error_at(L, n, key, "cannot open %s: %s", path, strerror(errno));
    return;
  }
  char dir[4096];
  size_t plen = strlen(path);
  while (plen > 1 && path[plen - 1] == '/')
    plen--; /* "dir/" names dir */
  const char *slash = memrchr(path, '/', plen);
  size_t dlen = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
  if (dlen >= sizeof(dir)) {
    px_cfg_error_at(L, n, key, "the path is too long");
    return;
  }
  memcpy(dir, slash == NULL ? "." : path, dlen);
  dir[dlen] = '\0';
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    px_cfg_error_at(L, n, key, "cannot create %s: directory %s does not exist", path, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    px_cfg_error_at(L, n, key, "cannot create %s in %s: %s", path, dir, strerror(errno));
}

/* The Redis store's settings (docs/fleet.md): only with a redis:// storage;
 * the files must be readable now, as at start-up. */
static void load_storage_options(loader *L, yaml_node_t *root) {
  static const char *const names[] = {"storage_prefix", "storage_password_file",
                                      "storage_key_file"};
  char **fields[] = {&L->cfg->storage_prefix, &L->cfg->storage_password_file,
                     &L->cfg->storage_key_file};
  const char *storage = L->cfg->storage;
  int redis = storage != NULL && strncmp(storage, "redis://", 8) == 0;
  yaml_node_t *v;
  if (storage != NULL && strncmp(storage, "rediss://", 9) == 0)
    px_cfg_error_at(L, px_cfg_get(L, root, "storage"), "storage",
                    "rediss:// is not supported (this build's hiredis has no TLS): run a local TLS "
                    "tunnel such as stunnel and use redis://127.0.0.1:PORT (docs/fleet.md)");
  else if (storage != NULL && !redis && px_store_is_url(storage))
    px_cfg_error_at(L, px_cfg_get(L, root, "storage"), "storage",
                    "expected a directory or redis://[user@]host[:port][/db]");
  for (size_t i = 0; i < 3; i++) {
    if ((v = px_cfg_get(L, root, names[i])) == NULL) continue;
    free(*fields[i]);
    *fields[i] = px_cfg_get_string(L, v, names[i]);
    if (!redis)
      px_cfg_error_at(L, v, names[i], "applies only to a redis:// storage");
    else if (i > 0 && *fields[i] != NULL && access(*fields[i], R_OK) != 0)
      px_cfg_error_at(L, v, names[i], "cannot read %s: %s", *fields[i], strerror(errno));
  }
}

static void load_root(loader *L, yaml_node_t *root) {
  static const char *const keys[] = {
      "listen",           "workers",     "storage", "storage_prefix",  "storage_password_file",
      "storage_key_file", "runtime_dir", "log",     "defaults",        "timeouts",
      "limits",           "sites",       "acme",    "on_demand",       "admin",
      "events",           "user",        "group",   "trusted_proxies", NULL};
  px_config *cfg = L->cfg;
  if (root == NULL) {
    px_cfg_error_at(L, NULL, "(file)", "the file is empty");
    return;
  }
  if (px_cfg_check_keys(L, root, "", keys) != 0) return;
  yaml_node_t *v;
  if ((v = px_cfg_get(L, root, "listen"))) px_cfg_load_listen(L, v);
  if ((v = px_cfg_get(L, root, "workers"))) {
    const char *s = px_cfg_scalar(v);
    uint64_t n;
    if (s && strcmp(s, "auto") == 0)
      cfg->workers = 0;
    else if (s && px_cfg_parse_count(s, &n) == NULL && n >= 1 && n <= 256)
      cfg->workers = (int)n;
    else
      px_cfg_error_at(L, v, "workers", "expected auto or a number from 1 to 256");
  }
  px_cfg_load_user(L, root);
  if ((v = px_cfg_get(L, root, "runtime_dir")))
    cfg->runtime_dir = px_cfg_get_string(L, v, "runtime_dir");
  if ((v = px_cfg_get(L, root, "storage"))) {
    free(cfg->storage);
    cfg->storage = px_cfg_get_string(L, v, "storage");
  }
  load_storage_options(L, root);
  if ((v = px_cfg_get(L, root, "log"))) {
    static const char *const lk[] = {"level", "access", "error", "format", "request_id_header",
                                     NULL};
    if (px_cfg_check_keys(L, v, "log", lk) == 0) {
      yaml_node_t *x;
      if ((x = px_cfg_get(L, v, "level"))) {
        int lvl = px_cfg_scalar(x) ? px_cfg_parse_log_level(px_cfg_scalar(x)) : -1;
        if (lvl < 0)
          px_cfg_error_at(L, x, "log.level", "expected error, warn, info or debug");
        else
          cfg->log_level = lvl;
      }
      if ((x = px_cfg_get(L, v, "access"))) {
        free(cfg->access_log);
        cfg->access_log = px_cfg_get_string(L, x, "log.access");
        const char *t = cfg->access_log;
        if (t && strcmp(t, "off") != 0 && strcmp(t, "stdout") != 0 && strcmp(t, "stderr") != 0)
          check_creatable(L, x, "log.access", t, 0);
      }
      if ((x = px_cfg_get(L, v, "error"))) {
        free(cfg->error_log);
        cfg->error_log = px_cfg_get_string(L, x, "log.error");
        if (cfg->error_log && strcmp(cfg->error_log, "stderr") != 0)
          check_creatable(L, x, "log.error", cfg->error_log, 0);
      }
      px_cfg_load_log_edge(L, v);
    }
  }
  int def_redirect = 1;
  px_hsts def_hsts = {0, PX_HSTS_DEFAULT_MAX_AGE, 0, 0};
  if ((v = px_cfg_get(L, root, "defaults"))) {
    static const char *const dk[] = {"redirect_http", "hsts", NULL};
    if (px_cfg_check_keys(L, v, "defaults", dk) == 0) {
      yaml_node_t *x;
      if ((x = px_cfg_get(L, v, "redirect_http")))
        px_cfg_get_bool(L, x, "defaults.redirect_http", &def_redirect);
      if ((x = px_cfg_get(L, v, "hsts"))) px_cfg_load_hsts(L, x, "defaults.hsts", &def_hsts);
    }
  }
  if ((v = px_cfg_get(L, root, "trusted_proxies"))) px_cfg_load_trusted_proxies(L, v);
  if ((v = px_cfg_get(L, root, "timeouts"))) px_cfg_load_timeouts(L, v);
  if ((v = px_cfg_get(L, root, "limits"))) px_cfg_load_limits(L, v);
  px_acme_config_reader reader = acme_reader(L);
  if ((v = px_cfg_get(L, root, "acme"))) px_acme_config_load_acme(&reader, v, &cfg->acme);
  if ((v = px_cfg_get(L, root, "on_demand")))
    px_acme_config_load_on_demand(&reader, v, &cfg->on_demand);
  if ((v = px_cfg_get(L, root, "admin"))) {
    px_control_config_load_admin(&reader, v, &cfg->control);
    px_cfg_load_metrics(L, v);
  }
  if ((v = px_cfg_get(L, root, "events"))) px_control_config_load_events(&reader, v, &cfg->control);
  yaml_node_t *sites = px_cfg_get(L, root, "sites");
  if (sites && sites->type == YAML_SEQUENCE_NODE) {
    size_t n = (size_t)(sites->data.sequence.items.top - sites->data.sequence.items.start);
    cfg->sites = calloc(n ? n : 1, sizeof(px_site));
    if (cfg->sites) {
      for (size_t i = 0; i < n; i++) {
        px_cfg_load_site(L, px_cfg_node(L, sites->data.sequence.items.start[i]), i, def_redirect,
                         &def_hsts);
        cfg->nsites++;
      }
    }
    /* A proxy without a site answers every request 404 and every
     * handshake unrecognized_name: surely not what was meant. */
    if (n == 0) px_cfg_error_at(L, sites, "sites", "the list is empty: add at least one site");
    px_cfg_check_duplicate_hosts(L, sites);
    size_t catch_alls = 0;
    for (size_t i = 0; i < cfg->nsites; i++)
      for (size_t j = 0; j < cfg->sites[i].nhosts; j++)
        catch_alls += strcmp(cfg->sites[i].hosts[j], "*") == 0;
    if (catch_alls > 1) px_cfg_error_at(L, sites, "sites", "only one site may use the host \"*\"");
  } else {
    px_cfg_error_at(L, sites ? sites : root, "sites", "expected a list of sites");
  }
  if (cfg->nhttps == 0 && cfg->nhttp == 0)
    px_cfg_error_at(L, root, "listen", "nothing to listen on: set listen.https and/or listen.http");
  if (cfg->nhttps > 0) {
    int any_tls = 0;
    for (size_t i = 0; i < cfg->nsites; i++)
      any_tls |= cfg->sites[i].tls_mode != PX_SITE_TLS_NONE;
    if (!any_tls && cfg->nsites > 0)
      px_cfg_error_at(L, px_cfg_get(L, root, "listen"), "listen.https",
                      "no site has a certificate (tls)");
  }
  /* The certificate manager creates the storage directory at start-up when
   * a site has ACME certificates. */
  int any_acme = 0;
  for (size_t i = 0; i < cfg->nsites; i++) {
    px_tls_mode m = cfg->sites[i].tls_mode;
    any_acme |= m == PX_SITE_TLS_ACME || m == PX_SITE_TLS_ON_DEMAND;
  }
  if (any_acme && cfg->storage && !px_store_is_url(cfg->storage))
    check_creatable(L, px_cfg_get(L, root, "storage"), "storage", cfg->storage, 1);
}

/* admin.socket's default: admin-<first listen address>.sock in the local
 * runtime directory, one per instance (listen addresses are one instance's
 * each on a machine). Not under storage: instances sharing a cache (over
 * NFS, too) would take each other's socket for a stale one. */
static int set_admin_default(px_config *cfg) {
  px_control_settings *c = &cfg->control;
  if (c->admin_off || c->admin_socket) return 0;
  const char *addr = cfg->nhttps && cfg->https[0].text ? cfg->https[0].text
                     : cfg->nhttp && cfg->http[0].text ? cfg->http[0].text
                                                       : "none";
  char dir[4096], name[160];
  px_listen_lock_dir(cfg, dir, sizeof(dir));
  px_listen_file_name("admin-", addr, ".sock", name, sizeof(name));
  size_t cap = strlen(dir) + strlen(name) + 2;
  if ((c->admin_socket = malloc(cap)) == NULL) return -1;
  snprintf(c->admin_socket, cap, "%s/%s", dir, name);
  return 0;
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
  L.cfg->error_log = strdup("stderr");
  L.cfg->request_id_header = strdup("X-Request-Id");
  if (L.cfg->file == NULL || L.cfg->storage == NULL || L.cfg->access_log == NULL ||
      L.cfg->error_log == NULL || L.cfg->request_id_header == NULL) {
    fprintf(errout, "%s: out of memory\n", name);
    L.nerrors++;
  }
  L.cfg->log_level = 2; /* info */
  px_limits_defaults(&L.cfg->limits);
  if (px_acme_config_defaults(&L.cfg->acme, &L.cfg->on_demand) != 0) {
    fprintf(errout, "%s: out of memory\n", name);
    L.nerrors++;
  }
  size_t nnodes = (size_t)(L.doc.nodes.top - L.doc.nodes.start);
  unsigned char *seen = calloc(nnodes ? nnodes : 1, 1);
  if (seen)
    px_cfg_check_duplicate_keys(&L, yaml_document_get_root_node(&L.doc), "", seen, 0);
  else
    px_cfg_error_at(&L, NULL, "(file)", "out of memory");
  free(seen);
  load_root(&L, yaml_document_get_root_node(&L.doc));
  if (set_admin_default(L.cfg) != 0) {
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
            "%s:%d: sites[%zu].hsts: warning: for %lld seconds (%lld days) after a browser "
            "sees this site, it will refuse to connect to %s%s over plain HTTP, and its user "
            "can no longer click through a certificate error for them. This cannot be "
            "withdrawn before max_age runs out: make sure HTTPS works for every one of these "
            "names first.\n",
            cfg->file, s->line, i, (long long)s->hsts.max_age, (long long)(s->hsts.max_age / 86400),
            hosts, s->hsts.include_subdomains ? " and all their subdomains" : "");
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
  for (size_t i = 0; i < cfg->nhttps; i++)
    free(cfg->https[i].text);
  for (size_t i = 0; i < cfg->nhttp; i++)
    free(cfg->http[i].text);
  free(cfg->https);
  free(cfg->metrics.text);
  free(cfg->http);
  for (size_t i = 0; i < cfg->nsites; i++) {
    px_site *s = &cfg->sites[i];
    for (size_t j = 0; j < s->nhosts; j++)
      free(s->hosts[j]);
    for (size_t j = 0; j < s->nupstreams; j++)
      free(s->upstreams[j].text);
    free(s->hosts);
    free(s->upstreams);
    free(s->cert_file);
    free(s->key_file);
  }
  free(cfg->sites);
  px_acme_config_dispose(&cfg->acme, &cfg->on_demand);
  px_control_config_dispose(&cfg->control);
  free(cfg->storage);
  free(cfg->runtime_dir);
  free(cfg->user);
  free(cfg->group);
  free(cfg->storage_prefix);
  free(cfg->storage_password_file);
  free(cfg->storage_key_file);
  free(cfg->access_log);
  free(cfg->error_log);
  free(cfg->request_id_header);
  free(cfg->trusted_proxies);
  free(cfg->file);
  free(cfg);
}
