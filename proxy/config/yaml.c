/*
 * The YAML helpers every config section uses (proxy/config/loader.h).
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

void px_cfg_error_at(loader *L, const yaml_node_t *n, const char *key, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  int line = n ? (int)n->start_mark.line + 1 : 1;
  fprintf(L->errout, "%s:%d: %s: %s\n", L->file, line, key, msg);
  L->nerrors++;
}

yaml_node_t *px_cfg_node(loader *L, int id) { return yaml_document_get_node(&L->doc, id); }

const char *px_cfg_scalar(const yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Edit distance, for "did you mean" hints on unknown keys. */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 40 || lb > 40) return 99;
  size_t d[41][41];
  for (size_t i = 0; i <= la; i++)
    d[i][0] = i;
  for (size_t j = 0; j <= lb; j++)
    d[0][j] = j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
      d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
    }
  return d[la][lb];
}

/* Checks that a mapping has only `known` keys (NULL-terminated). */
int px_cfg_check_keys(loader *L, yaml_node_t *map, const char *path, const char *const *known) {
  if (map->type != YAML_MAPPING_NODE) {
    px_cfg_error_at(L, map, path, "expected a mapping");
    return -1;
  }
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = px_cfg_node(L, p->key);
    const char *name = px_cfg_scalar(k);
    int ok = 0;
    const char *hint = NULL;
    for (const char *const *kn = known; name && *kn && !ok; kn++) {
      if (strcmp(name, *kn) == 0)
        ok = 1;
      else if (distance(name, *kn) <= 2)
        hint = *kn;
    }
    if (ok) continue;
    char key[256];
    snprintf(key, sizeof(key), "%s%s%s", path, path[0] ? "." : "", name ? name : "?");
    if (hint)
      px_cfg_error_at(L, k, key, "unknown key '%s' (did you mean '%s'?)", name ? name : "?", hint);
    else
      px_cfg_error_at(L, k, key, "unknown key '%s'", name ? name : "?");
  }
  return 0;
}

/* Every mapping in the document, at any depth, must not repeat a key: YAML
 * says keys are unique, and libyaml keeps both pairs, so `get` would
 * silently use the first and drop the second. `seen` marks nodes already
 * walked, so an alias (or an alias cycle) is walked once; depth is bounded. */
void px_cfg_check_duplicate_keys(loader *L, yaml_node_t *n, const char *path, unsigned char *seen,
                                 int depth) {
  if (n == NULL || depth > 64) return;
  size_t id = (size_t)(n - L->doc.nodes.start);
  if (seen[id]) return;
  seen[id] = 1;
  char k[256];
  if (n->type == YAML_SEQUENCE_NODE) {
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
      snprintf(k, sizeof(k), "%s[%zu]", path, i);
      px_cfg_check_duplicate_keys(L, px_cfg_node(L, *it), k, seen, depth + 1);
    }
    return;
  }
  if (n->type != YAML_MAPPING_NODE) return;
  yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
  for (yaml_node_pair_t *p = start; p < top; p++) {
    yaml_node_t *kn = px_cfg_node(L, p->key);
    const char *name = px_cfg_scalar(kn);
    snprintf(k, sizeof(k), "%s%s%s", path, path[0] ? "." : "", name ? name : "?");
    for (yaml_node_pair_t *q = start; name && q < p; q++) {
      yaml_node_t *first = px_cfg_node(L, q->key);
      const char *other = px_cfg_scalar(first);
      if (other && strcmp(other, name) == 0) {
        px_cfg_error_at(L, kn, k, "duplicate key '%s' (first at line %d)", name,
                        (int)first->start_mark.line + 1);
        break;
      }
    }
    px_cfg_check_duplicate_keys(L, px_cfg_node(L, p->value), k, seen, depth + 1);
  }
}

yaml_node_t *px_cfg_get(loader *L, yaml_node_t *map, const char *key) {
  if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    const char *k = px_cfg_scalar(px_cfg_node(L, p->key));
    if (k && strcmp(k, key) == 0) return px_cfg_node(L, p->value);
  }
  return NULL;
}

int px_cfg_get_bool(loader *L, yaml_node_t *n, const char *key, int *out) {
  const char *s = px_cfg_scalar(n);
  /* YAML 1.1 booleans, in any case ("False" is what many generators write). */
  if (s && (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0 || strcasecmp(s, "on") == 0))
    *out = 1;
  else if (s &&
           (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0 || strcasecmp(s, "off") == 0))
    *out = 0;
  else {
    px_cfg_error_at(L, n, key, "expected true or false");
    return -1;
  }
  return 0;
}

char *px_cfg_get_string(loader *L, yaml_node_t *n, const char *key) {
  const char *s = px_cfg_scalar(n);
  if (s == NULL || s[0] == '\0') {
    px_cfg_error_at(L, n, key, "expected a non-empty string");
    return NULL;
  }
  char *d = strdup(s);
  if (d == NULL) px_cfg_error_at(L, n, key, "out of memory");
  return d;
}

/* Calls `fn` for a scalar or for each item of a sequence of scalars. */
size_t px_cfg_for_each_item(loader *L, yaml_node_t *n, const char *key, item_fn fn, void *arg) {
  char k[256];
  if (n->type == YAML_SCALAR_NODE) {
    snprintf(k, sizeof(k), "%s", key);
    fn(L, n, k, 0, arg);
    return 1;
  }
  if (n->type != YAML_SEQUENCE_NODE) {
    px_cfg_error_at(L, n, key, "expected a string or a list of strings");
    return 0;
  }
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
       it++, i++) {
    snprintf(k, sizeof(k), "%s[%zu]", key, i);
    fn(L, px_cfg_node(L, *it), k, i, arg);
  }
  return i;
}

size_t px_cfg_count_items(yaml_node_t *n) {
  if (n->type == YAML_SCALAR_NODE) return 1;
  if (n->type == YAML_SEQUENCE_NODE)
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  return 0;
}
