/*
 * The quick start: `portico --from app.example.com --to 127.0.0.1:8080`
 * serves one site with a certificate from an ACME CA and no config file.
 * The options become a configuration document that goes through the same
 * loader and validation as a file (px_config_load_buffer), so a bad --to
 * is refused with the same message a bad `upstreams:` item gets.
 * docs/operations.md, "Quick start", lists the options and defaults.
 */
#ifndef PX_QUICKSTART_H
#define PX_QUICKSTART_H

#include <stdio.h>

#include "proxy/config.h"

/** How many argv items `arg` takes as a quick-start option: 1 for a
 *  flag (--staging), 2 for an option with a value, 0 when it is not one. */
int px_quickstart_option(const char *arg);

/**
 * Builds the configuration from the quick-start options in `argv` (other
 * items are skipped: main reads them). Creates the default storage
 * directory's parents. Returns the loaded config, or NULL after printing
 * each error to `errout` (`*nerrors` gets the count).
 */
px_config *px_quickstart_load(int argc, char **argv, FILE *errout, int *nerrors);

#endif
