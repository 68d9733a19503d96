/*
 * The on-demand policy (docs/on-demand.md): which names a
 * handshake may ask a certificate for. In order: the name check (before
 * any disk or network work), `on_demand.max_pending` (names waiting on
 * issuance at once), the operator's `ask` endpoint, and
 * `on_demand.rate` when an order is about to be placed.
 */
#include <errno.h>
#include <string.h>

#include "acme/ask.h"
#include "acme/life/issue.h"
#include "acme/manager_internal.h"
#include "acme/names.h"
#include "tls/log.h"

/* How long the ask endpoint has to answer. */
#define ASK_TIMEOUT_MS 5000

int px__acme_ondemand_check_name(const char *name) {
  char norm[256];
  int n = px_acme_name_normalize(name, strlen(name), norm, sizeof(norm));
  if (n < 0 || strcmp(norm, name) != 0) {
    /* Refused before any disk or network work (docs/cache.md, "Rules": names). */
    px_log(PX_LOG_DEBUG, "on-demand: refused invalid name \"%s\": %s", name,
           n < 0 ? px_acme_name_strerror(n) : "not normalised");
    return -EINVAL;
  }
  return 0;
}

int px__acme_ondemand_check_room(px_acme_manager *m, const char *name) {
  if (px_namemap_size(m->inflight) < m->o.on_demand.max_pending) return 0;
  px_log(PX_LOG_WARN, "on-demand: refused %s: on_demand.max_pending (%zu) names are waiting", name,
         m->o.on_demand.max_pending);
  return -EBUSY;
}

static void on_ask(void *arg, int allowed, const char *why, const px_acme_site_prefs *prefs) {
  px__acme_attempt *a = arg;
  if (!allowed) {
    /* A 2xx whose settings could not be read is the operator's bug: warn. */
    px_log(strstr(why, "cannot read") ? PX_LOG_WARN : PX_LOG_INFO, "on-demand: refused %s: %s",
           a->names[0], why);
    px__metrics_refused(a->m, PX_ACME_REFUSED_ASK);
    px__acme_refuse(a->m, a->names, a->nnames, px__acme_now_ms() + PX__ACME_REFUSAL_TTL_MS);
    px__acme_attempt_free(a);
    return;
  }
  a->asked = 1;
  a->prefs = *prefs;
  px__acme_obtain(a->m, a);
}

void px__acme_ondemand_start(px_acme_manager *m, px__acme_attempt *a) {
  if (m->o.on_demand.ask) {
    if (px_acme_ask(&m->loop, m->o.on_demand.ask, a->names[0], ASK_TIMEOUT_MS, on_ask, a) != 0)
      on_ask(a, 0, "bad ask URL", NULL);
    return;
  }
  px__acme_obtain(m, a);
}

int px__acme_ondemand_rate_take(px_acme_manager *m, const px__acme_attempt *a) {
  int64_t now = px__acme_now_ms();
  if (now - m->rate_window_start >= (int64_t)m->o.on_demand.rate_window_ms) {
    m->rate_window_start = now;
    m->rate_used = 0;
  }
  if (a->group < 0 && m->rate_used >= m->o.on_demand.rate_count) {
    px_log(PX_LOG_WARN, "on-demand: refused %s: on_demand.rate (%llu per %llu s) reached",
           a->names[0], (unsigned long long)m->o.on_demand.rate_count,
           (unsigned long long)(m->o.on_demand.rate_window_ms / 1000));
    px__metrics_refused(m, PX_ACME_REFUSED_RATE);
    return -EAGAIN;
  }
  m->rate_used++;
  return 0;
}
