#include "proxy/site_prefs.h"

int px_site_prefs_get(px_acme_manager *acme, const px_site *site, const char *host,
                      px_acme_site_prefs *out) {
  if (acme == NULL || site == NULL || site->tls_mode != PX_SITE_TLS_ON_DEMAND) return 0;
  return px_acme_manager_site_prefs(acme, host, out);
}

const px_hsts *px_site_prefs_hsts(px_acme_manager *acme, const px_site *site, const char *host,
                                  px_hsts *scratch) {
  px_acme_site_prefs p;
  if (!px_site_prefs_get(acme, site, host, &p) || p.hsts < 0)
    return site->hsts.enabled ? &site->hsts : NULL;
  if (p.hsts == 0) return NULL;
  /* The answer sets the max-age only: includeSubDomains and preload cover
   * names portico never asked about (RFC 6797 §6.1.2), so they stay off. */
  *scratch = (px_hsts){.enabled = 1, .max_age = p.hsts};
  return scratch;
}
