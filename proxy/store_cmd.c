#include "proxy/store_cmd.h"

#include <errno.h>
#include <string.h>

#include "acme/store_copy.h"
#include "acme/store_open.h"
#include "acme/store_redis.h"

/* The Redis options of one side of the copy. */
typedef struct side {
  const char *storage;
  px_store_options opts;
} side;

static void usage(FILE *out) {
  fprintf(out, "usage: portico store copy [OPTIONS] SRC DST\n"
               "  Copies every account, certificate (with its key and metadata), failure\n"
               "  record and challenge from SRC to DST; each is a cache directory or a\n"
               "  redis://[user@]host[:port][/db] URL. DST keeps items SRC does not have.\n"
               "  --prefix P             key prefix of a Redis side (default portico:)\n"
               "  --password-file F      Redis AUTH password, read from F\n"
               "  --key-file F           storage_key_file: private keys encrypted in Redis\n"
               "  --src-prefix, --src-password-file, --src-key-file, --dst-prefix,\n"
               "  --dst-password-file, --dst-key-file: the same for one side only\n");
}

/* Sets option `name` (without "--", "src-" or "dst-") on `o`; 0 or -1. */
static int set_option(px_store_options *o, const char *name, const char *value) {
  if (strcmp(name, "prefix") == 0)
    o->prefix = value;
  else if (strcmp(name, "password-file") == 0)
    o->password_file = value;
  else if (strcmp(name, "key-file") == 0)
    o->key_file = value;
  else
    return -1;
  return 0;
}

/* Parses the arguments after "copy"; 0, or -1 for bad usage. */
static int parse_copy(int argc, char **argv, side *src, side *dst) {
  px_store_options both = {0};
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strncmp(s, "--", 2) == 0) {
      if (i + 1 >= argc) return -1;
      const char *v = argv[++i];
      int rc = strncmp(s, "--src-", 6) == 0   ? set_option(&src->opts, s + 6, v)
               : strncmp(s, "--dst-", 6) == 0 ? set_option(&dst->opts, s + 6, v)
                                              : set_option(&both, s + 2, v);
      if (rc != 0) return -1;
    } else if (src->storage == NULL) {
      src->storage = s;
    } else if (dst->storage == NULL) {
      dst->storage = s;
    } else {
      return -1;
    }
  }
  if (src->storage == NULL || dst->storage == NULL) return -1;
  /* The shared options go to whichever side is Redis. */
  side *sides[] = {src, dst};
  for (int k = 0; k < 2; k++) {
    px_store_options *o = &sides[k]->opts;
    if (strncmp(sides[k]->storage, "redis", 5) != 0) continue;
    if (o->prefix == NULL) o->prefix = both.prefix;
    if (o->password_file == NULL) o->password_file = both.password_file;
    if (o->key_file == NULL) o->key_file = both.key_file;
  }
  return 0;
}

static px_store *open_side(const side *s, const char *which, FILE *errout) {
  px_store *store = NULL;
  char err[400];
  if (px_store_open(s->storage, &s->opts, &store, err, sizeof(err)) != 0) {
    fprintf(errout, "portico store copy: %s: %s\n", which, err);
    return NULL;
  }
  /* A Redis store opens while the server is away (an instance keeps
   * serving); a copy would only fail item by item, so stop here. */
  int rc = px_store_cert_exists(store, "reachable.invalid");
  if (rc < 0) {
    fprintf(errout, "portico store copy: %s %s: %s\n", which,
            px_store_is_redis(store) ? "(redis)" : s->storage, strerror(-rc));
    px_store_close(store);
    return NULL;
  }
  return store;
}

static int copy_main(int argc, char **argv, FILE *out, FILE *errout) {
  side src = {0}, dst = {0};
  px_store_copy_counts n;
  int status = 1;

  if (parse_copy(argc, argv, &src, &dst) != 0) {
    usage(errout);
    return 2;
  }
  px_store *from = open_side(&src, "SRC", errout), *to = NULL;
  if (from != NULL) to = open_side(&dst, "DST", errout);
  if (from != NULL && to != NULL) {
    int rc = px_store_copy(from, to, &n, errout);
    fprintf(out,
            "copied %zu account%s, %zu certificate%s, %zu job%s, %zu failure record%s, "
            "%zu challenge%s (%zu values); %zu error%s\n",
            n.items[PX_STORE_ACCOUNTS], n.items[PX_STORE_ACCOUNTS] == 1 ? "" : "s",
            n.items[PX_STORE_CERTS], n.items[PX_STORE_CERTS] == 1 ? "" : "s",
            n.items[PX_STORE_JOBS], n.items[PX_STORE_JOBS] == 1 ? "" : "s",
            n.items[PX_STORE_FAILURES], n.items[PX_STORE_FAILURES] == 1 ? "" : "s",
            n.items[PX_STORE_CHALLENGES], n.items[PX_STORE_CHALLENGES] == 1 ? "" : "s", n.files,
            n.errors, n.errors == 1 ? "" : "s");
    if (rc == 0 && px_store_is_redis(to) && dst.opts.key_file == NULL &&
        (n.items[PX_STORE_ACCOUNTS] > 0 || n.items[PX_STORE_CERTS] > 0))
      fprintf(out, "note: private keys are stored unencrypted in DST (no --key-file)\n");
    status = rc == 0 ? 0 : 1;
  }
  px_store_close(from);
  px_store_close(to);
  return status;
}

int px_store_cmd_main(int argc, char **argv, FILE *out, FILE *errout) {
  if (argc >= 2 && strcmp(argv[1], "copy") == 0) return copy_main(argc - 2, argv + 2, out, errout);
  if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
    usage(out);
    return 0;
  }
  usage(errout);
  return 2;
}
