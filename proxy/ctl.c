#include "proxy/ctl.h"

#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "proxy/config.h"
#include "proxy/listen_lock.h"

/* A status of 100,000 certificates is some tens of MiB; the bound only
 * stops a runaway peer. */
#define MAX_RESPONSE (256u * 1024 * 1024)
#define IO_TIMEOUT_S 60
/* revoke's --wait, at most: the server bounds it lower (admin.h). */
#define WAIT_MAX_S 3600
/* The exit status when the server's wait passed before the outcome. */
#define EXIT_PENDING 3

typedef struct ctl_args {
  const char *config;
  const char *socket;
  const char *cmd;
  const char *name;
  const char *reason;
  long wait_s; /* revoke --wait; 0: the server's default */
  int all;
  int json;
} ctl_args;

static void usage(FILE *out) {
  fprintf(out, "usage: portico ctl [-c CONFIG | --socket PATH] COMMAND\n"
               "  status [--json]              one line per certificate\n"
               "  show NAME [--json]           a certificate's job and its event history\n"
               "  retry NAME | retry --all     clear the backoff and try now\n"
               "  renew NAME                   renew now, even when not due\n"
               "  revoke NAME [--reason R] [--wait S]\n"
               "                               revoke (R: unspecified, keyCompromise,\n"
               "                               affiliationChanged, superseded,\n"
               "                               cessationOfOperation) and wait for the\n"
               "                               CA's answer (at most S seconds), then replace\n"
               "  reopen                       reopen the log files (as SIGUSR1 does)\n"
               "  reload                       re-read the configuration file; exits 1\n"
               "                               with its errors when it is refused\n"
               "The socket is --socket PATH, else admin.socket of CONFIG (by default\n"
               "admin-<first listen address>.sock in the runtime directory), else the\n"
               "only admin socket in the default runtime directory.\n");
}

/* Returns 0, or -1 for bad usage. */
static int parse_args(int argc, char **argv, ctl_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *s = argv[i];
    int has_value = i + 1 < argc;
    if ((strcmp(s, "-c") == 0 || strcmp(s, "--config") == 0) && has_value) {
      a->config = argv[++i];
    } else if (strcmp(s, "--socket") == 0 && has_value) {
      a->socket = argv[++i];
    } else if (strcmp(s, "--reason") == 0 && has_value) {
      a->reason = argv[++i];
    } else if (strcmp(s, "--wait") == 0 && has_value) {
      char *end;
      errno = 0;
      a->wait_s = strtol(argv[++i], &end, 10);
      if (errno || end == argv[i] || *end || a->wait_s <= 0 || a->wait_s > WAIT_MAX_S) return -1;
    } else if (strcmp(s, "--all") == 0) {
      a->all = 1;
    } else if (strcmp(s, "--json") == 0) {
      a->json = 1;
    } else if (s[0] == '-') {
      return -1;
    } else if (a->cmd == NULL) {
      a->cmd = s;
    } else if (a->name == NULL) {
      a->name = s;
    } else {
      return -1;
    }
  }
  if (a->cmd == NULL || (a->config && a->socket)) return -1;
  int wants_name =
      strcmp(a->cmd, "show") == 0 || strcmp(a->cmd, "renew") == 0 || strcmp(a->cmd, "revoke") == 0;
  int extra = a->reason || a->wait_s;
  if (strcmp(a->cmd, "status") == 0) return a->name || a->all || extra ? -1 : 0;
  if (strcmp(a->cmd, "reopen") == 0 || strcmp(a->cmd, "reload") == 0)
    return a->name || a->all || extra || a->json ? -1 : 0;
  if (strcmp(a->cmd, "retry") == 0) return (a->name != NULL) == a->all || extra ? -1 : 0;
  if (!wants_name || a->name == NULL || a->all) return -1;
  if ((a->reason || a->wait_s) && strcmp(a->cmd, "revoke") != 0) return -1;
  if (a->json && strcmp(a->cmd, "show") != 0) return -1;
  return 0;
}

/* Without -c or --socket: the one admin socket in the default runtime
 * directory (each instance has its own, named after its first listen
 * address), or a sentence saying why not. */
static char *only_socket_here(FILE *errout) {
  px_config none = {0};
  char dir[4096], pattern[4200];
  px_listen_lock_dir(&none, dir, sizeof(dir));
  snprintf(pattern, sizeof(pattern), "%s/admin-*.sock", dir);
  glob_t g;
  int r = glob(pattern, 0, NULL, &g);
  char *path = NULL;
  if (r == 0 && g.gl_pathc == 1)
    path = strdup(g.gl_pathv[0]);
  else if (r == 0)
    fprintf(errout,
            "portico ctl: %zu admin sockets in %s (several instances run here); "
            "say which with -c CONFIG or --socket PATH\n",
            (size_t)g.gl_pathc, dir);
  else
    fprintf(errout,
            "portico ctl: portico is not running (no admin socket in %s); "
            "give -c CONFIG or --socket PATH if it uses another\n",
            dir);
  if (r == 0) globfree(&g);
  return path;
}

/* The socket's path, malloc'd: --socket, else from the configuration. */
static char *socket_path(const ctl_args *a, FILE *errout) {
  if (a->socket) return strdup(a->socket);
  if (a->config == NULL) return only_socket_here(errout);
  int nerrors = 0;
  px_config *cfg = px_config_load(a->config, errout, &nerrors);
  if (cfg == NULL) {
    fprintf(errout, "%s: %d error%s\n", a->config, nerrors, nerrors == 1 ? "" : "s");
    return NULL;
  }
  /* admin.socket, which the loader defaults (px_config admin.socket). */
  char *path = cfg->control.admin_socket ? strdup(cfg->control.admin_socket) : NULL;
  if (cfg->control.admin_off)
    fprintf(errout, "portico ctl: the admin socket is off in %s (admin.socket: off)\n", a->config);
  px_config_free(cfg);
  return path;
}

/* Connects, or prints why not and returns -1. Reads wait `wait_s` more
 * than the usual timeout (a command that waits for its outcome). */
static int dial(const char *path, long wait_s, FILE *errout) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof(sa.sun_path)) {
    fprintf(errout, "portico ctl: the socket path %s is too long\n", path);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    fprintf(errout, "portico ctl: %s\n", strerror(errno));
    return -1;
  }
  struct timeval tv = {.tv_sec = IO_TIMEOUT_S + wait_s};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  tv.tv_sec = IO_TIMEOUT_S;
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) return fd;
  int e = errno;
  close(fd);
  if (e == ENOENT || e == ECONNREFUSED)
    fprintf(errout, "portico ctl: portico is not running (no admin socket at %s)\n", path);
  else if (e == EACCES || e == EPERM)
    fprintf(errout, "portico ctl: permission denied on %s (run as the user portico runs as)\n",
            path);
  else
    fprintf(errout, "portico ctl: cannot connect to the admin socket at %s: %s\n", path,
            strerror(e));
  return -1;
}

/* Sends the request line and parses the one response line; NULL after
 * printing why. */
static json_t *exchange(int fd, json_t *req, const char *path, FILE *errout) {
  char *line = json_dumps(req, JSON_COMPACT);
  if (line == NULL) return NULL;
  size_t len = strlen(line);
  line[len] = '\n'; /* replaces the NUL: the buffer holds len + 1 bytes */
  size_t off = 0;
  while (off <= len) {
    /* MSG_NOSIGNAL: a server that closed early is an error, not SIGPIPE. */
    ssize_t n = send(fd, line + off, len + 1 - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += (size_t)n;
  }
  free(line);
  size_t cap = 65536, got = 0;
  char *buf = malloc(cap);
  ssize_t n = 0;
  while (buf && got < MAX_RESPONSE) {
    if (got == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) break;
      buf = bigger;
      cap *= 2;
    }
    if ((n = read(fd, buf + got, cap - got)) <= 0) break;
    got += (size_t)n;
  }
  json_error_t je;
  json_t *resp = buf && n == 0 ? json_loadb(buf, got, 0, &je) : NULL;
  free(buf);
  if (resp == NULL)
    fprintf(errout, "portico ctl: no valid answer from %s%s%s\n", path, n < 0 ? ": " : "",
            n < 0 ? strerror(errno) : "");
  return resp;
}

/* Prints `s` with control bytes shown as '?': text from the CA or a peer
 * must not drive the terminal. */
static void put_clean(FILE *out, const char *s, int width) {
  int n = 0;
  for (; s && *s; s++, n++)
    fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
  for (; n < width; n++)
    fputc(' ', out);
}

/* Prints `text` line by line, each after `prefix`, cleaned as put_clean
 * does (a reload's answer holds one line per error or warning). */
static void put_lines(FILE *out, const char *prefix, const char *text) {
  char line[1024];
  while (*text) {
    size_t n = strcspn(text, "\n");
    snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) ? n : sizeof(line) - 1), text);
    fputs(prefix, out);
    put_clean(out, line, 0);
    fputc('\n', out);
    text += n + (text[n] == '\n');
  }
}

/* A member as display text: strings as they are, numbers, "-" for none. */
static char *field_text(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  if (v == NULL || json_is_null(v)) return strdup("-");
  if (json_is_string(v)) return strdup(json_string_value(v)[0] ? json_string_value(v) : "-");
  if (json_is_array(v)) { /* names */
    size_t cap = 1, i;
    json_t *x;
    json_array_foreach(v, i, x) cap += strlen(json_string_value(x) ? json_string_value(x) : "") + 1;
    char *s = calloc(1, cap);
    size_t n = 0;
    json_array_foreach(v, i, x) {
      if (s == NULL) break;
      n += (size_t)snprintf(s + n, cap - n, "%s%s", i ? "," : "",
                            json_string_value(x) ? json_string_value(x) : "");
    }
    return s;
  }
  return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static const char *const status_keys[] = {"names", "not_after", "next_run",  "next_reason",
                                          "state", "failures",  "last_error"};
static const char *const status_heads[] = {"NAMES", "NOT AFTER", "NEXT RENEWAL", "WHY",
                                           "STATE", "FAILURES",  "LAST ERROR"};
#define NCOLS (sizeof(status_keys) / sizeof(status_keys[0]))

static int print_status(json_t *jobs, FILE *out) {
  if (!json_is_array(jobs)) return -1;
  size_t rows = json_array_size(jobs);
  if (rows == 0) {
    fprintf(out, "no certificates\n");
    return 0;
  }
  char **cells = calloc(rows * NCOLS, sizeof(char *));
  if (cells == NULL) return -1;
  int width[NCOLS];
  for (size_t c = 0; c < NCOLS; c++)
    width[c] = (int)strlen(status_heads[c]);
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < NCOLS; c++) {
      char *s = field_text(json_array_get(jobs, r), status_keys[c]);
      cells[r * NCOLS + c] = s;
      if (s && (int)strlen(s) > width[c]) width[c] = (int)strlen(s);
    }
  }
  /* The last column is not padded: no trailing blanks. */
  for (size_t c = 0; c < NCOLS; c++) {
    put_clean(out, status_heads[c], c + 1 < NCOLS ? width[c] + 2 : 0);
  }
  fputc('\n', out);
  for (size_t r = 0; r < rows; r++) {
    for (size_t c = 0; c < NCOLS; c++) {
      put_clean(out, cells[r * NCOLS + c], c + 1 < NCOLS ? width[c] + 2 : 0);
      free(cells[r * NCOLS + c]);
    }
    fputc('\n', out);
  }
  free(cells);
  return 0;
}

static void print_field(FILE *out, const char *label, json_t *job, const char *key) {
  char *s = field_text(job, key);
  fprintf(out, "%-14s ", label);
  put_clean(out, s, 0);
  fputc('\n', out);
  free(s);
}

static int print_show(json_t *job, FILE *out) {
  if (!json_is_object(job)) return -1;
  static const char *const known[] = {"names",     "state",      "not_before",
                                      "not_after", "next_run",   "next_reason",
                                      "failures",  "last_error", "events"};
  const char *key;
  json_t *v;
  for (size_t i = 0; i + 1 < sizeof(known) / sizeof(known[0]); i++) {
    char label[32];
    snprintf(label, sizeof(label), "%s:", known[i]);
    print_field(out, label, job, known[i]);
  }
  /* Members this client does not know yet, as they are. */
  json_object_foreach(job, key, v) {
    size_t i = 0;
    while (i < sizeof(known) / sizeof(known[0]) && strcmp(known[i], key) != 0)
      i++;
    if (i < sizeof(known) / sizeof(known[0])) continue;
    char label[64];
    snprintf(label, sizeof(label), "%s:", key);
    print_field(out, label, job, key);
  }
  json_t *events = json_object_get(job, "events");
  size_t i;
  json_t *e;
  if (json_array_size(events)) fprintf(out, "events:\n");
  json_array_foreach(events, i, e) {
    char *t = field_text(e, "time"), *what = field_text(e, "event"),
         *detail = field_text(e, "detail");
    fputs("  ", out);
    put_clean(out, t, 22);
    put_clean(out, what, 10);
    put_clean(out, strcmp(detail, "-") ? detail : "", 0);
    fputc('\n', out);
    free(t);
    free(what);
    free(detail);
  }
  return 0;
}

/* revoke's success: the CA's confirmation, and whether a replacement was
 * ordered. */
static void print_revoked(const ctl_args *a, json_t *resp, FILE *out) {
  char *serial = field_text(resp, "serial"), *reason = field_text(resp, "reason");
  fputs("revoked the certificate for ", out);
  put_clean(out, a->name, 0);
  fputs(" (serial ", out);
  put_clean(out, serial, 0);
  fputs(", reason ", out);
  put_clean(out, reason, 0);
  fputs(")\n", out);
  if (json_is_true(json_object_get(resp, "replacement"))) {
    fputs("a replacement is ordered now; the revoked certificate is served until it arrives "
          "(see `portico ctl show ",
          out);
    put_clean(out, a->name, 0);
    fputs("`)\n", out);
  }
  free(serial);
  free(reason);
}

static json_t *build_request(const ctl_args *a) {
  json_t *req = json_pack("{s:s}", "cmd", a->cmd);
  if (req == NULL) return NULL;
  if (a->name) json_object_set_new(req, "name", json_string(a->name));
  if (a->all) json_object_set_new(req, "all", json_true());
  if (a->reason) json_object_set_new(req, "reason", json_string(a->reason));
  if (a->wait_s) json_object_set_new(req, "wait", json_integer(a->wait_s));
  return req;
}

/* Prints the answer; returns the exit status. */
static int report(const ctl_args *a, json_t *resp, FILE *out, FILE *errout) {
  const char *error =
      json_is_object(resp) ? json_string_value(json_object_get(resp, "error")) : NULL;
  if (error) {
    put_lines(errout, "portico ctl: ", error);
    /* The server's wait passed (or it stopped): the outcome is unknown. */
    return json_is_true(json_object_get(resp, "pending")) ? EXIT_PENDING : 1;
  }
  int r = 0;
  if (a->json) {
    char *s = json_dumps(resp, JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (s) fprintf(out, "%s\n", s);
    free(s);
  } else if (strcmp(a->cmd, "status") == 0) {
    r = print_status(resp, out);
  } else if (strcmp(a->cmd, "show") == 0) {
    r = print_show(resp, out);
  } else if (strcmp(a->cmd, "retry") == 0) {
    fprintf(out, "retry scheduled for %s\n", a->all ? "every certificate" : a->name);
  } else if (strcmp(a->cmd, "renew") == 0) {
    fprintf(out, "renewal started for %s\n", a->name);
  } else if (strcmp(a->cmd, "reopen") == 0) {
    fprintf(out, "log files reopened\n");
  } else if (strcmp(a->cmd, "reload") == 0) {
    const char *m = json_string_value(json_object_get(resp, "message"));
    put_lines(out, "", m ? m : "reloaded");
  } else {
    print_revoked(a, resp, out);
  }
  if (r != 0) fprintf(errout, "portico ctl: the answer has an unexpected shape\n");
  return r ? 1 : 0;
}

int px_ctl_main(int argc, char **argv, FILE *out, FILE *errout) {
  ctl_args a = {0};
  if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    usage(out);
    return 0;
  }
  if (parse_args(argc, argv, &a) != 0) {
    usage(errout);
    return 2;
  }
  char *path = socket_path(&a, errout);
  if (path == NULL) return 1;
  int status = 1;
  int fd = dial(path, a.wait_s, errout);
  json_t *req = fd >= 0 ? build_request(&a) : NULL;
  json_t *resp = req ? exchange(fd, req, path, errout) : NULL;
  if (resp) status = report(&a, resp, out, errout);
  json_decref(resp);
  json_decref(req);
  if (fd >= 0) close(fd);
  free(path);
  return status;
}
