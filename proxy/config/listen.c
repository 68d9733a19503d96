/*
 * The `listen:` section: addresses for HTTPS and plain HTTP.
 */
#include "proxy/config/loader.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proxy/config/values.h"

typedef struct listen_list {
  px_listen_addr *addrs;
  int proxy_protocol; /* the section's default for this kind */
} listen_list;

/* An item is an address, or {address: ADDR, proxy_protocol: BOOL} to set
 * the PROXY protocol for that listener alone. */
static int listen_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  listen_list *list = arg;
  px_listen_addr *a = &list->addrs[i];
  a->proxy_protocol = list->proxy_protocol;
  char k[300];
  if (n->type == YAML_MAPPING_NODE) {
    static const char *const keys[] = {"address", "proxy_protocol", NULL};
    if (px_cfg_check_keys(L, n, key, keys) != 0) return -1;
    yaml_node_t *pp = px_cfg_get(L, n, "proxy_protocol");
    snprintf(k, sizeof(k), "%s.proxy_protocol", key);
    if (pp && px_cfg_get_bool(L, pp, k, &a->proxy_protocol) != 0) return -1;
    yaml_node_t *addr = px_cfg_get(L, n, "address");
    if (addr == NULL) {
      px_cfg_error_at(L, n, key, "a listener given as a mapping needs an address");
      return -1;
    }
    snprintf(k, sizeof(k), "%s.address", key);
    n = addr;
    key = k;
  }
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

static void load_listen_list(loader *L, yaml_node_t *n, const char *key, int proxy_protocol,
                             px_listen_addr **out, size_t *count) {
  size_t cnt = n->type == YAML_MAPPING_NODE ? 1 : px_cfg_count_items(n);
  if (cnt == 0) {
    px_cfg_error_at(L, n, key, "expected an address or a list of addresses");
    return;
  }
  *out = calloc(cnt, sizeof(px_listen_addr));
  if (*out == NULL) return;
  listen_list list = {*out, proxy_protocol};
  if (n->type == YAML_MAPPING_NODE) { /* one listener given as a mapping */
    listen_item(L, n, key, 0, &list);
    *count = 1;
    return;
  }
  *count = px_cfg_for_each_item(L, n, key, listen_item, &list);
}

void px_cfg_load_listen(loader *L, yaml_node_t *n) {
  static const char *const keys[] = {"https", "http", "https_proxy_protocol", "http_proxy_protocol",
                                     NULL};
  if (px_cfg_check_keys(L, n, "listen", keys) != 0) return;
  yaml_node_t *v;
  int pp_https = 0, pp_http = 0;
  if ((v = px_cfg_get(L, n, "https_proxy_protocol")))
    px_cfg_get_bool(L, v, "listen.https_proxy_protocol", &pp_https);
  if ((v = px_cfg_get(L, n, "http_proxy_protocol")))
    px_cfg_get_bool(L, v, "listen.http_proxy_protocol", &pp_http);
  if ((v = px_cfg_get(L, n, "https")))
    load_listen_list(L, v, "listen.https", pp_https, &L->cfg->https, &L->cfg->nhttps);
  if ((v = px_cfg_get(L, n, "http")))
    load_listen_list(L, v, "listen.http", pp_http, &L->cfg->http, &L->cfg->nhttp);
}

/* Whether a and b would take the same port: same family and port, and the
 * same address or a wildcard on either side. */
static int same_socket(const px_listen_addr *a, const struct sockaddr_storage *b) {
  if (a->ss.ss_family != b->ss_family) return 0;
  if (b->ss_family == AF_INET) {
    const struct sockaddr_in *x = (const void *)&a->ss, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           (x->sin_addr.s_addr == y->sin_addr.s_addr || x->sin_addr.s_addr == INADDR_ANY ||
            y->sin_addr.s_addr == INADDR_ANY);
  }
  const struct sockaddr_in6 *x = (const void *)&a->ss, *y = (const void *)b;
  return x->sin6_port == y->sin6_port &&
         (memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 ||
          IN6_IS_ADDR_UNSPECIFIED(&x->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&y->sin6_addr));
}

void px_cfg_load_metrics(loader *L, yaml_node_t *admin) {
  if (admin->type != YAML_MAPPING_NODE) return; /* px_control_config_load_admin said so */
  yaml_node_t *v = px_cfg_get(L, admin, "metrics");
  if (v == NULL) return;
  const char *s = px_cfg_scalar(v);
  if (s && (strcmp(s, "off") == 0 || strcmp(s, "false") == 0)) return;
  px_listen_addr a = {0};
  if (s == NULL) {
    px_cfg_error_at(L, v, "admin.metrics", "expected an address (e.g. \"127.0.0.1:9180\") or off");
    return;
  }
  const char *why = px_cfg_parse_listen(s, &a.ss, &a.sslen);
  if (why) {
    px_cfg_error_at(L, v, "admin.metrics", "\"%s\" %s", s, why);
    return;
  }
  /* The metrics are for the operator, never served on a public listener. */
  px_config *cfg = L->cfg;
  for (size_t i = 0; i < cfg->nhttps + cfg->nhttp; i++) {
    const px_listen_addr *l = i < cfg->nhttps ? &cfg->https[i] : &cfg->http[i - cfg->nhttps];
    if (same_socket(l, &a.ss)) {
      px_cfg_error_at(L, v, "admin.metrics",
                      "\"%s\" takes the port of the public listener %s; give it its own address "
                      "(e.g. 127.0.0.1:9180)",
                      s, l->text);
      return;
    }
  }
  if ((a.text = strdup(s)) == NULL) {
    px_cfg_error_at(L, v, "admin.metrics", "out of memory");
    return;
  }
  cfg->metrics = a;
}
