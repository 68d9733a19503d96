/*
 * The configuration loader (px_config_load_buffer): libyaml's parser and
 * document model, then every section's checks, including the duplicate-key
 * walk over aliases. Paths in the input are only read (stat, access, and the
 * certificate loader's fopen); nothing is created.
 *
 * Oracle beyond the sanitizers: an accepted config has what the rest of
 * portico relies on (something to listen on, sites with hosts and upstreams,
 * workers in 1..256) and its warnings print.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "proxy/config.h"

static FILE *devnull;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL) abort();
  int nerrors = 0;
  px_config *cfg = px_config_load_buffer("fuzz.yaml", (const char *)data, size, devnull, &nerrors);
  if (cfg == NULL) {
    if (nerrors == 0) abort();
    return 0;
  }
  if (nerrors != 0 || cfg->nhttps + cfg->nhttp == 0 || cfg->nsites == 0 || cfg->workers < 1 ||
      cfg->workers > 256)
    abort();
  for (size_t i = 0; i < cfg->nsites; i++)
    if (cfg->sites[i].nhosts == 0 || cfg->sites[i].nupstreams == 0) abort();
  px_config_warnings(cfg, devnull);
  px_config_free(cfg);
  return 0;
}
