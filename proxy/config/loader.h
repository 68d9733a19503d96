/*
 * The config loader's shared parts (internal to proxy/config/): the loader
 * state and the YAML helpers every section uses. libyaml's document API
 * gives every node its line, so each error names file, line and key; all
 * errors are collected before giving up.
 */
#ifndef PX_CONFIG_LOADER_H
#define PX_CONFIG_LOADER_H

#include <stdio.h>
#include <yaml.h>

#include "proxy/config.h"

typedef struct loader {
  const char *file;
  FILE *errout;
  int nerrors;
  yaml_document_t doc;
  px_config *cfg;
} loader;

/** Reports an error at node `n` (its line) under `key`; counts it. */
void px_cfg_error_at(loader *L, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** The node with id `id`. */
yaml_node_t *px_cfg_node(loader *L, int id);

/** A scalar's text, or NULL when `n` is not a scalar. */
const char *px_cfg_scalar(const yaml_node_t *n);

/** Reports every key of mapping `map` that is not in `known` (NULL-ended),
 *  suggesting the closest known one. 0, or -1 when `map` is not a mapping. */
int px_cfg_check_keys(loader *L, yaml_node_t *map, const char *path, const char *const *known);

/** Reports a key repeated in any mapping below `n`, naming both lines. */
void px_cfg_check_duplicate_keys(loader *L, yaml_node_t *n, const char *path, unsigned char *seen,
                                 int depth);

/** The value of `key` in mapping `map`, or NULL. */
yaml_node_t *px_cfg_get(loader *L, yaml_node_t *map, const char *key);

/** Parses a boolean (true/false, yes/no, on/off). 0, or -1 after an error. */
int px_cfg_get_bool(loader *L, yaml_node_t *n, const char *key, int *out);

/** A malloc'd copy of a non-empty string scalar, or NULL after an error. */
char *px_cfg_get_string(loader *L, yaml_node_t *n, const char *key);

/** Called by px_cfg_for_each_item for each scalar. */
typedef int (*item_fn)(loader *L, yaml_node_t *n, const char *key, size_t index, void *arg);

/** Calls `fn` for a scalar, or for each item of a sequence of scalars;
 *  returns how many succeeded. */
size_t px_cfg_for_each_item(loader *L, yaml_node_t *n, const char *key, item_fn fn, void *arg);

/** Items in a sequence (1 for a scalar). */
size_t px_cfg_count_items(yaml_node_t *n);

/* The sections. */

/** `listen:` (listen.c). */
void px_cfg_load_listen(loader *L, yaml_node_t *n);
/* admin.metrics in the `admin:` mapping `admin` (after listen:). */
void px_cfg_load_metrics(loader *L, yaml_node_t *admin);

/** `trusted_proxies:` (edge.c). */
void px_cfg_load_trusted_proxies(loader *L, yaml_node_t *n);

/** `log.format` and `log.request_id_header` (edge.c). */
void px_cfg_load_log_edge(loader *L, yaml_node_t *log);

/** `timeouts:` and `limits:` (limits.c). */
void px_cfg_load_timeouts(loader *L, yaml_node_t *n);
void px_cfg_load_limits(loader *L, yaml_node_t *n);

/** An `hsts:` value: true/false, a max-age, or a mapping (sites.c). */
void px_cfg_load_hsts(loader *L, yaml_node_t *n, const char *key, px_hsts *h);

/** One item of `sites:` (sites.c). */
void px_cfg_load_site(loader *L, yaml_node_t *n, size_t idx, int def_redirect,
                      const px_hsts *def_hsts);

/** `user:` and `group:` (user.c). */
void px_cfg_load_user(loader *L, yaml_node_t *root);

/** A name claimed by two sites is an error naming both (sites.c). */
void px_cfg_check_duplicate_hosts(loader *L, yaml_node_t *sites_node);

#endif
