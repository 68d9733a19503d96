/*
 * portico: a TLS-terminating reverse proxy.
 *
 *   portico -c FILE            run
 *   portico -c FILE --check    validate the configuration and exit
 *   portico --from NAME --to ADDR   quick start without a file (proxy/quickstart.h)
 *   portico ctl ...            talk to a running portico (proxy/ctl.h)
 *   portico store copy SRC DST copy a certificate store (proxy/store_cmd.h)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "proxy/config.h"
#include "proxy/ctl.h"
#include "proxy/listen_lock.h"
#include "proxy/privdrop.h"
#include "proxy/quickstart.h"
#include "proxy/sdnotify.h"
#include "proxy/server.h"
#include "proxy/store_cmd.h"
#include "tls/log.h"

#define PORTICO_VERSION "0.1.0"

static px_server server;
static uv_signal_t sig_term, sig_int, sig_usr1, sig_hup;
static int stopping;

/* SIGHUP: re-read the configuration (docs/reload.md); the outcome is
 * logged by px_server_reload. */
static void on_hup(uv_signal_t *s, int signum) {
  (void)s;
  (void)signum;
  char msg[4096];
  px_server_reload(&server, msg, sizeof(msg));
}

static void usage(FILE *out) {
  fprintf(out, "usage: portico -c FILE [--check]\n"
               "       portico --from NAME --to HOST:PORT [--to ...] [--staging | --ca URL]\n"
               "               [--ca-root FILE] [--email ADDR] [--storage DIR]\n"
               "               [--listen-https ADDR] [--listen-http ADDR] [--check]\n"
               "       portico ctl [-c FILE | --socket PATH] "
               "status|show|retry|renew|revoke|reopen|reload ...\n"
               "       portico store copy [OPTIONS] SRC DST\n"
               "  -c, --config FILE  configuration file (YAML or JSON)\n"
               "  --check            validate the configuration, print errors and warnings, exit\n"
               "  --version          print the version\n");
}

static void on_signal(uv_signal_t *s, int signum) {
  if (stopping++) {
    px_log(PX_LOG_WARN, "second signal: exiting without waiting for in-flight requests");
    _exit(1);
  }
  px_log(PX_LOG_INFO, "%s: no longer accepting; draining in-flight requests",
         signum == SIGTERM ? "SIGTERM" : "SIGINT");
  px_sd_notify("STOPPING=1");
  px_server_stop(&server);
  /* Unref so the main loop ends; a second signal still arrives. */
  uv_unref((uv_handle_t *)&sig_term);
  uv_unref((uv_handle_t *)&sig_int);
  uv_unref((uv_handle_t *)&sig_hup);
}

/* A second SIGTERM/SIGINT once the signal handles are closed (the last of
 * the teardown): exit at once with status 1, as on_signal does, rather than
 * die of the signal. */
static void on_late_signal(int signum) {
  (void)signum;
  _exit(1);
}

/* SIGUSR1: reopen the log files (logrotate renamed them). */
static void on_reopen_signal(uv_signal_t *s, int signum) {
  char err[512];
  if (px_log_reopen(err, sizeof(err)) != 0)
    px_log(PX_LOG_ERROR, "SIGUSR1: %s", err);
  else
    px_log(PX_LOG_INFO, "SIGUSR1: log files reopened");
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "ctl") == 0)
    return px_ctl_main(argc - 1, argv + 1, stdout, stderr);
  if (argc > 1 && strcmp(argv[1], "store") == 0)
    return px_store_cmd_main(argc - 1, argv + 1, stdout, stderr);
  const char *file = NULL;
  int check = 0, quick = 0;
  for (int i = 1; i < argc; i++) {
    if (px_quickstart_option(argv[i])) {
      quick = 1; /* read by px_quickstart_load */
      i += px_quickstart_option(argv[i]) - 1;
    } else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
      file = argv[++i];
    } else if (strcmp(argv[i], "--check") == 0) {
      check = 1;
    } else if (strcmp(argv[i], "--version") == 0) {
      printf("portico %s\n", PORTICO_VERSION);
      return 0;
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "portico: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if ((file == NULL) == (quick == 0)) {
    if (file) fprintf(stderr, "portico: -c and the quick-start options do not combine\n");
    usage(stderr);
    return 2;
  }
  int nerrors = 0;
  px_config *cfg = quick ? px_quickstart_load(argc, argv, stderr, &nerrors)
                         : px_config_load(file, stderr, &nerrors);
  if (quick) file = "(command line)";
  if (cfg == NULL) {
    fprintf(stderr, "%s: %d error%s\n", file, nerrors, nerrors == 1 ? "" : "s");
    return 1;
  }
  if (check) {
    int nwarn = px_config_warnings(cfg, stdout);
    printf("%s: configuration ok%s\n", file, nwarn ? " (with warnings)" : "");
    px_config_free(cfg);
    return 0;
  }
  px_log_set_level((px_log_level)cfg->log_level);
  px_log_set_json(cfg->log_json);
  /* Before any log file, lock, certificate, cache or thread (privdrop.h). */
  char drop_err[768];
  if (px_drop_privileges(cfg, drop_err, sizeof(drop_err)) != 0) {
    px_log(PX_LOG_ERROR, "%s", drop_err);
    px_config_free(cfg);
    return 1;
  }
  int r = px_error_log_open(cfg->error_log);
  if (r != 0) {
    px_log(PX_LOG_ERROR, "log.error: cannot open %s: %s", cfg->error_log, uv_strerror(r));
    px_config_free(cfg);
    return 1;
  }
  if (quick)
    px_log(PX_LOG_INFO, "quick start: certificates from %s (requesting one accepts its terms)",
           cfg->acme.directory);
  px_config_warnings(cfg, stderr);
  r = px_access_log_open(cfg->access_log);
  if (r != 0) {
    px_log(PX_LOG_ERROR, "log.access: cannot open %s: %s", cfg->access_log, uv_strerror(r));
    px_config_free(cfg);
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  char lock_err[768];
  if (px_listen_lock_all(cfg, lock_err, sizeof(lock_err)) != 0) {
    px_log(PX_LOG_ERROR, "%s", lock_err);
    px_config_free(cfg);
    return 1;
  }
  if (px_server_init(&server, cfg) != 0) {
    px_server_dispose(&server);
    px_config_free(cfg);
    return 1;
  }
  uv_loop_t *loop = uv_default_loop();
  uv_signal_init(loop, &sig_term);
  uv_signal_init(loop, &sig_int);
  uv_signal_start(&sig_term, on_signal, SIGTERM);
  uv_signal_start(&sig_int, on_signal, SIGINT);
  uv_signal_init(loop, &sig_usr1);
  uv_signal_start(&sig_usr1, on_reopen_signal, SIGUSR1);
  uv_unref((uv_handle_t *)&sig_usr1); /* it never keeps the loop running */
  uv_signal_init(loop, &sig_hup);
  uv_signal_start(&sig_hup, on_hup, SIGHUP);
  int status = 0;
  if (px_server_start(&server, loop) != 0) {
    status = 1;
  } else {
    px_log(PX_LOG_INFO, "portico %s ready: %zu https and %zu http listeners, %d workers",
           PORTICO_VERSION, cfg->nhttps, cfg->nhttp, server.nworkers);
    /* Listeners are bound and the certificates (files and the cache) are
     * loaded: px_server_start returned after both. */
    char state[128];
    snprintf(state, sizeof(state),
             "READY=1\nMAINPID=%ld\nSTATUS=serving %zu https and %zu http listeners",
             (long)getpid(), cfg->nhttps, cfg->nhttp);
    px_sd_notify(state);
    uv_run(loop, UV_RUN_DEFAULT);
  }
  px_server_join(&server);
  uv_close((uv_handle_t *)&sig_term, NULL);
  uv_close((uv_handle_t *)&sig_int, NULL);
  uv_close((uv_handle_t *)&sig_usr1, NULL);
  uv_close((uv_handle_t *)&sig_hup, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  if (stopping) {
    signal(SIGTERM, on_late_signal);
    signal(SIGINT, on_late_signal);
  }
  uv_loop_close(loop);
  px_server_dispose(&server);
  px_config_free(cfg);
  if (status == 0) px_log(PX_LOG_INFO, "stopped");
  return status;
}
