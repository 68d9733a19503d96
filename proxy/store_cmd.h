/*
 * `portico store`: offline operations on a certificate store.
 *
 *   portico store copy [OPTIONS] SRC DST
 *
 * SRC and DST are `storage` values: a cache directory or redis://... .
 * Options for a Redis side (docs/fleet.md): --prefix P, --password-file F,
 * --key-file F apply to both sides; --src-... and --dst-... to one.
 */
#ifndef PX_PROXY_STORE_CMD_H
#define PX_PROXY_STORE_CMD_H

#include <stdio.h>

/**
 * Runs the store subcommand; `argv[0]` is "store". A report goes to `out`,
 * errors to `errout`. Returns the exit status: 0 when everything was
 * copied, 1 when a store could not be opened or some items failed, 2 for
 * bad usage.
 */
int px_store_cmd_main(int argc, char **argv, FILE *out, FILE *errout);

#endif
