/*
 * dns-01 in the manager: the provider built from acme.dns, the client's
 * dns hooks, and the start-up removal of records an earlier run left
 * (acme/manager_internal.h, acme/dns/dns01.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/dns/caa.h"
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
  if (m->o.caa_identities && (o.nresolvers || o.provider == PX_DNS01_RFC2136)) {
    m->caa_on = 1;
    m->caa_rd = o.nresolvers > 0;
    m->caa_server = o.nresolvers ? o.resolvers[0] : o.server;
  }
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

typedef struct caa_req {
  px_acme_manager *m;
  px__acme_attempt *a;
  void (*done)(px_acme_manager *m, px__acme_attempt *a, int allowed);
} caa_req;

static void on_caa(void *arg, const char *err, int allowed, const char *where, const char *found) {
  caa_req *q = arg;
  px_acme_manager *m = q->m;
  px__acme_attempt *a = q->a;
  void (*done)(px_acme_manager *, px__acme_attempt *, int) = q->done;
  free(q);
  if (atomic_load(&m->stopping)) { /* the client is gone: no order */
    px__acme_attempt_free(a);
    return;
  }
  if (err) {
    px_log(PX_LOG_WARN, "on-demand: the CAA check of %s failed (%s); ordering: the CA checks CAA",
           a->names[0], err);
    allowed = 1;
  } else if (!allowed) {
    char ours[256];
    size_t o = 0;
    ours[0] = '\0';
    for (size_t i = 0; m->o.caa_identities[i] && o < sizeof(ours); i++) {
      int n = snprintf(ours + o, sizeof(ours) - o, "%s%s", i ? ", " : "", m->o.caa_identities[i]);
      if (n > 0) o += (size_t)n;
    }
    px_log(PX_LOG_WARN,
           "on-demand: refused %s before ordering: the CAA records at %s (RFC 8659) allow %s, "
           "not this CA (acme.caa_identities: %s)",
           a->names[0], where, found[0] ? found : "no CA", ours);
  } else {
    px_log(PX_LOG_DEBUG, "on-demand: CAA allows this CA for %s%s%s", a->names[0],
           where[0] ? " at " : " (no CAA records)", where);
  }
  done(m, a, allowed);
}

int px__acme_caa_start(px_acme_manager *m, px__acme_attempt *a,
                       void (*done)(px_acme_manager *m, px__acme_attempt *a, int allowed)) {
  if (!m->caa_on) return -1;
  caa_req *q = malloc(sizeof(*q));
  if (q == NULL) return -1;
  q->m = m;
  q->a = a;
  q->done = done;
  if (px_dns_caa_check(&m->loop, &m->caa_server, m->caa_rd, a->names[0], m->o.caa_identities, 5000,
                       on_caa, q) != 0) {
    free(q);
    return -1;
  }
  return 0;
}
