/*
 * Per-name settings for on-demand names (docs/on-demand.md, "Per-name
 * settings"): the on-demand ask endpoint may answer, for each name, whether
 * port 80 redirects and whether HTTPS answers carry HSTS. Those answers
 * override the settings of the `tls: on_demand` site the name falls under.
 */
#ifndef PX_SITE_PREFS_H
#define PX_SITE_PREFS_H

#include "acme/manager.h"
#include "proxy/config.h"

/**
 * 1 with the ask endpoint's settings for `host` in *out when `site` is a
 * `tls: on_demand` site and the certificate manager holds settings for that
 * name; 0 when the site's own settings apply. Takes the manager's lock, so
 * it is asked only for on-demand sites.
 */
int px_site_prefs_get(px_acme_manager *acme, const px_site *site, const char *host,
                      px_acme_site_prefs *out);

/**
 * The HSTS a response on `site` for `host` carries over HTTPS: the site's
 * (NULL when off), or the name's own from the ask endpoint, built in
 * `scratch`.
 */
const px_hsts *px_site_prefs_hsts(px_acme_manager *acme, const px_site *site, const char *host,
                                  px_hsts *scratch);

#endif
