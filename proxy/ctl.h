/*
 * `portico ctl`: the operator's client for the admin socket of a running
 * portico (acme/life/admin.h describes the protocol).
 *
 *   portico ctl [-c CONFIG | --socket PATH] status [--json]
 *   portico ctl [-c CONFIG | --socket PATH] show NAME [--json]
 *   portico ctl [-c CONFIG | --socket PATH] retry NAME|--all
 *   portico ctl [-c CONFIG | --socket PATH] renew NAME
 *   portico ctl [-c CONFIG | --socket PATH] revoke NAME [--reason R]
 *
 * The socket is --socket PATH, else `<storage>/admin.sock` of the
 * configuration given with -c, else /var/lib/portico/admin.sock (the
 * default storage).
 */
#ifndef PX_PROXY_CTL_H
#define PX_PROXY_CTL_H

#include <stdio.h>

/**
 * Runs the ctl subcommand; `argv[0]` is "ctl". Output goes to `out`,
 * messages to `errout`. Returns the process exit status: 0 on success,
 * 1 when portico is not running, the name is unknown or the command
 * failed, 2 for bad usage (after printing the usage).
 */
int px_ctl_main(int argc, char **argv, FILE *out, FILE *errout);

#endif
