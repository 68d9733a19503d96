/* The sites the HTTP fuzz drivers route to. */
#ifndef PX_FUZZ_SITES_H
#define PX_FUZZ_SITES_H

#include "proxy/config.h"

/**
 * A config with sites a.test and *.w.test, plus a "*" site when
 * `with_catch_all`; loaded once per process (aborts if it does not load).
 */
const px_config *fuzz_sites(int with_catch_all);

#endif
