/*
 * dns-01 in the manager: the provider built from acme.dns, the client's
 * dns hooks, and the start-up removal of records an earlier run left
 * (acme/manager_internal.h, acme/dns/dns01.h).
 */
#include <stdio.h>
#include <string.h>

#include "acme/dns/dns01.h"
#include "acme/dns/exchange.h"
#include "acme/manager_internal.h"
#include "tls/log.h"

static void *on_dns_present(void *arg, const char *name, const char *value,
                            px_acme_dns_ready_cb ready, void *order) {
  px_acme_manager *m = arg;
  if (m->dns == NULL) return NULL;
  return px_dns01_present(m->dns, name, value, ready, order);
}

static void on_dns_cleanup(void *arg, void *handle) {
  (void)arg;
  px_dns01_cleanup(handle);
}

int px__acme_dns_init(px_acme_manager *m, char *err, size_t errlen) {
  const px_acme_dns_settings *s = m->o.dns;
  if (s == NULL || s->provider <= 0) return 0;
  px_dns01_options o;
  memset(&o, 0, sizeof(o));
  o.provider = (px_dns01_provider)s->provider;
  o.zone = s->zone;
  o.command = s->command;
  o.propagation_timeout_ms = (uint64_t)s->propagation_timeout * 1000;
  o.store = m->store;
  if (o.provider == PX_DNS01_RFC2136) {
    if (s->server == NULL || px_dns_addr_parse(s->server, &o.server) != 0 || s->tsig_name == NULL ||
        s->tsig_secret_file == NULL) {
      snprintf(err, errlen, "acme.dns: rfc2136 needs server and tsig");
      return -1;
    }
    snprintf(o.key.name, sizeof(o.key.name), "%s", s->tsig_name);
    o.key.alg = s->tsig_algorithm ? (px_dns_tsig_alg)s->tsig_algorithm : PX_DNS_HMAC_SHA256;
    char why[512];
    if (px_dns_tsig_key_load(s->tsig_secret_file, &o.key, why, sizeof(why)) != 0) {
      snprintf(err, errlen, "acme.dns.tsig.secret_file: %s", why);
      return -1;
    }
  } else if (o.command == NULL) {
    snprintf(err, errlen, "acme.dns: hook needs command");
    return -1;
  }
  for (size_t i = 0; i < s->nresolvers && o.nresolvers < PX_DNS01_RESOLVERS_MAX; i++)
    if (px_dns_addr_parse(s->resolvers[i], &o.resolvers[o.nresolvers]) == 0) o.nresolvers++;
  m->dns = px_dns01_new(&m->loop, &o);
  px_dns_tsig_key_wipe(&o.key);
  if (m->dns == NULL) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  m->o.client.hooks.dns_present = on_dns_present;
  m->o.client.hooks.dns_cleanup = on_dns_cleanup;
  /* A wildcard is offered dns-01 alone: it is used even when
   * acme.challenges does not list it, after the listed ones. */
  int listed = 0, n = 0;
  for (; n < PX_ACME_CHALLENGES_MAX && m->o.client.challenges[n]; n++)
    listed |= m->o.client.challenges[n] == PX_ACME_DNS_01;
  if (!listed && n < PX_ACME_CHALLENGES_MAX) m->o.client.challenges[n] = PX_ACME_DNS_01;
  return 0;
}

void px__acme_dns_start(px_acme_manager *m) {
  if (m->dns) px_dns01_recover(m->dns);
}

void px__acme_dns_close(px_acme_manager *m) {
  px_dns01_free(m->dns);
  m->dns = NULL;
}
