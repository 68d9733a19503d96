/*
 * What portico needs to know about the machines in front of it and the
 * logs it writes: `trusted_proxies` (whose forwarding headers and PROXY
 * protocol headers are believed), `log.format` and `log.request_id_header`
 * (docs/logging.md).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/config/loader.h"
#include "proxy/util/request_id.h"

static int trusted_item(loader *L, yaml_node_t *n, const char *key, size_t i, void *arg) {
  px_cidr *list = arg;
  const char *s = px_cfg_scalar(n);
  const char *why = s ? px_cidr_parse(s, &list[i]) : "expected an address or address/prefix";
  if (why) {
    px_cfg_error_at(L, n, key, "\"%s\" %s", s ? s : "", why);
    return -1;
  }
  return 0;
}

void px_cfg_load_trusted_proxies(loader *L, yaml_node_t *n) {
  px_config *cfg = L->cfg;
  size_t cnt = px_cfg_count_items(n);
  if (cnt == 0) {
    /* An empty list is allowed: it trusts nobody, as the default does. */
    if (n->type == YAML_SEQUENCE_NODE) return;
    px_cfg_error_at(L, n, "trusted_proxies", "expected a list of addresses or address/prefix");
    return;
  }
  cfg->trusted_proxies = calloc(cnt, sizeof(px_cidr));
  if (cfg->trusted_proxies == NULL) {
    px_cfg_error_at(L, n, "trusted_proxies", "out of memory");
    return;
  }
  px_cfg_for_each_item(L, n, "trusted_proxies", trusted_item, cfg->trusted_proxies);
  cfg->ntrusted_proxies = cnt;
}

void px_cfg_load_log_edge(loader *L, yaml_node_t *log) {
  px_config *cfg = L->cfg;
  yaml_node_t *x;
  if ((x = px_cfg_get(L, log, "format"))) {
    const char *s = px_cfg_scalar(x);
    if (s && strcmp(s, "json") == 0)
      cfg->log_json = 1;
    else if (s && strcmp(s, "text") == 0)
      cfg->log_json = 0;
    else
      px_cfg_error_at(L, x, "log.format", "expected text or json");
  }
  if ((x = px_cfg_get(L, log, "request_id_header"))) {
    const char *s = px_cfg_scalar(x);
    free(cfg->request_id_header);
    cfg->request_id_header = NULL;
    if (s == NULL) {
      px_cfg_error_at(L, x, "log.request_id_header", "expected a header name or \"\"");
    } else if (s[0] != '\0') {
      /* A token (RFC 9110 §5.6.2), and none of the fields portico writes
       * itself or that frame the request. */
      const char *why = px_request_id_check_header_name(s);
      if (why)
        px_cfg_error_at(L, x, "log.request_id_header", "\"%s\" %s", s, why);
      else if ((cfg->request_id_header = strdup(s)) == NULL)
        px_cfg_error_at(L, x, "log.request_id_header", "out of memory");
    }
  }
}
