#include "proxy/quickstart.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Let's Encrypt's staging directory (production is acme.directory's default). */
#define LE_STAGING "https://acme-staging-v02.api.letsencrypt.org/directory"

static const char *const flags[] = {"--staging", NULL};
static const char *const valued[] = {"--from",         "--to",          "--ca",
                                     "--ca-root",      "--email",       "--storage",
                                     "--listen-https", "--listen-http", NULL};

int px_quickstart_option(const char *arg) {
  for (size_t i = 0; flags[i]; i++)
    if (strcmp(arg, flags[i]) == 0) return 1;
  for (size_t i = 0; valued[i]; i++)
    if (strcmp(arg, valued[i]) == 0) return 2;
  return 0;
}

/* mkdir -p of `path`'s parent, 0700 for what it creates: the state
 * directory may not exist yet on a fresh account. */
static void make_parents(const char *path) {
  char buf[4096];
  if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) return;
  char *slash = strrchr(buf, '/');
  if (slash == NULL || slash == buf) return;
  *slash = '\0';
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    (void)mkdir(buf, 0700);
    *p = '/';
  }
  (void)mkdir(buf, 0700);
}

/* The user's state directory (XDG Base Directory): $XDG_STATE_HOME/portico,
 * else ~/.local/state/portico; root's is /var/lib/portico as in a file. */
static char *default_storage(void) {
  char buf[4096];
  const char *env;
  if (geteuid() == 0)
    snprintf(buf, sizeof(buf), "/var/lib/portico");
  else if ((env = getenv("XDG_STATE_HOME")) && env[0] == '/')
    snprintf(buf, sizeof(buf), "%s/portico", env);
  else if ((env = getenv("HOME")) && env[0] == '/')
    snprintf(buf, sizeof(buf), "%s/.local/state/portico", env);
  else
    return NULL;
  return strdup(buf);
}

/* Appends `s` to the list under `key` in `obj`. */
static void add_item(json_t *obj, const char *key, const char *s) {
  json_t *a = json_object_get(obj, key);
  if (a == NULL) json_object_set_new(obj, key, a = json_array());
  json_array_append_new(a, json_string(s));
}

px_config *px_quickstart_load(int argc, char **argv, FILE *errout, int *nerrors) {
  json_t *site = json_object(), *listen = json_object(), *acme = json_object();
  char *storage = NULL;
  int staging = 0;
  const char *ca = NULL;
  *nerrors = 0;
  for (int i = 1; i < argc; i++) {
    int n = px_quickstart_option(argv[i]);
    if (n == 0) continue;
    if (n == 2 && i + 1 >= argc) {
      fprintf(errout, "portico: %s needs a value\n", argv[i]);
      (*nerrors)++;
      break;
    }
    const char *opt = argv[i], *val = n == 2 ? argv[i + 1] : NULL;
    i += n - 1;
    if (strcmp(opt, "--staging") == 0)
      staging = 1;
    else if (strcmp(opt, "--from") == 0)
      add_item(site, "hosts", val);
    else if (strcmp(opt, "--to") == 0)
      add_item(site, "upstreams", val);
    else if (strcmp(opt, "--ca") == 0)
      ca = val;
    else if (strcmp(opt, "--ca-root") == 0)
      json_object_set_new(acme, "ca_file", json_string(val));
    else if (strcmp(opt, "--email") == 0)
      json_object_set_new(acme, "email", json_string(val));
    else if (strcmp(opt, "--storage") == 0) {
      free(storage);
      storage = strdup(val);
    } else if (strcmp(opt, "--listen-https") == 0)
      add_item(listen, "https", val);
    else if (strcmp(opt, "--listen-http") == 0)
      add_item(listen, "http", val);
  }
  if (ca && staging) {
    fprintf(errout, "portico: --ca and --staging do not combine\n");
    (*nerrors)++;
  }
  if (json_object_get(site, "hosts") == NULL || json_object_get(site, "upstreams") == NULL) {
    fprintf(errout, "portico: the quick start needs --from NAME and at least one --to ADDRESS\n");
    (*nerrors)++;
  }
  if (storage == NULL && (storage = default_storage()) == NULL) {
    fprintf(errout, "portico: no state directory (set HOME or XDG_STATE_HOME, or give "
                    "--storage DIR)\n");
    (*nerrors)++;
  }
  px_config *cfg = NULL;
  if (*nerrors == 0) {
    if (json_object_get(listen, "https") == NULL) add_item(listen, "https", "0.0.0.0:443");
    if (json_object_get(listen, "http") == NULL) add_item(listen, "http", "0.0.0.0:80");
    if (ca || staging) json_object_set_new(acme, "directory", json_string(ca ? ca : LE_STAGING));
    /* Asking for a certificate this way is agreeing to the CA's terms, as
     * with `caddy reverse-proxy`; main logs which CA it is. */
    json_object_set_new(acme, "accept_terms", json_true());
    json_object_set_new(site, "tls", json_string("acme"));
    json_object_set_new(site, "redirect_http", json_true());
    json_t *doc = json_object();
    json_object_set(doc, "listen", listen);
    json_object_set_new(doc, "storage", json_string(storage));
    json_object_set(doc, "acme", acme);
    json_object_set_new(doc, "sites", json_pack("[O]", site));
    /* JSON is YAML: the loader reads it as it reads a file, one key a line. */
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(doc);
    if (text == NULL) {
      fprintf(errout, "portico: out of memory\n");
      (*nerrors)++;
    } else {
      make_parents(storage);
      cfg = px_config_load_buffer("(command line)", text, strlen(text), errout, nerrors);
      free(text);
    }
  }
  json_decref(site);
  json_decref(listen);
  json_decref(acme);
  free(storage);
  return cfg;
}
