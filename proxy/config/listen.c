/*
 * The `listen:` section: addresses for HTTPS and plain HTTP.
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/config/values.h"

static int listen_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_listen_addr *a = &((px_listen_addr *)arg)[i];
  const char *s = px_cfg_scalar(n);
  const char *why = s ? px_cfg_parse_listen(s, &a->ss, &a->sslen) : "expected a string";
  if (why) {
    px_cfg_error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  a->text = strdup(s);
  if (a->text == NULL) {
    px_cfg_error_at(L, n, key, "out of memory");
    return -1;
  }
  return 0;
}

static void load_listen_list(loader *L, yaml_node_t *n, const char *key, px_listen_addr **out,
                             size_t *count) {
  size_t cnt = px_cfg_count_items(n);
  if (cnt == 0) {
    px_cfg_error_at(L, n, key, "expected an address or a list of addresses");
    return;
  }
  *out = calloc(cnt, sizeof(px_listen_addr));
  if (*out == NULL) return;
  *count = px_cfg_for_each_item(L, n, key, listen_item, *out);
}

void px_cfg_load_listen(loader *L, yaml_node_t *n) {
  static const char *const keys[] = {"https", "http", NULL};
  if (px_cfg_check_keys(L, n, "listen", keys) != 0) return;
  yaml_node_t *v;
  if ((v = px_cfg_get(L, n, "https")))
    load_listen_list(L, v, "listen.https", &L->cfg->https, &L->cfg->nhttps);
  if ((v = px_cfg_get(L, n, "http")))
    load_listen_list(L, v, "listen.http", &L->cfg->http, &L->cfg->nhttp);
}
