/*
 * The filesystem store. Layout and rules: docs/cache.md.
 *
 * Safety rests on two things: every path component comes from a validated
 * name, token or fixed aspect (checked before any system call), and every
 * write is temp file + fsync + rename + fsync of the directory, so a reader
 * on any instance sees the old file or the new one, never a torn one.
 */
#include "acme/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "acme/names.h"
#include "acme/store_internal.h"
#include "tls/ipname.h"
#include "tls/log.h"

#define HOST_MAX 64
#define OWNER_MAX 128
#define TOKEN_MAX 128
#define CA_ID_MAX (HOST_MAX + 1 + 16 + 1)
/* "_wildcard." + a name, or a CA id: the longest path component. */
#define COMPONENT_MAX (10 + PX_ACME_NAME_MAX + 1)
_Static_assert(COMPONENT_MAX <= PX_STORE_ID_MAX, "store ids fit PX_STORE_ID_MAX");

typedef struct fs_store {
  px_store base;
  char root[PATH_MAX / 2];
  char host[HOST_MAX + 1];
  int64_t stale_after;
  int64_t (*now)(void *);
  void *now_arg;
  int (*fault)(void *, const char *);
  void *fault_arg;
} fs_store;

static const char *const group_dirs[] = {"accounts",   "certs", "failures",
                                         "challenges", "jobs",  "dns"};

/* ---- names to path components (no system calls) ------------------------ */

static int name_component(const char *name, char *out, size_t cap) {
  char norm[PX_ACME_NAME_MAX + 1];
  const char *base = name;
  int wildcard = 0, n;

  if (name == NULL) return -EINVAL;
  if (px_ip_name_is(name)) {
    /* An IPv4 name is a file name as it is (its last label is numeric, so
     * it is never a DNS name's). An IPv6 one loses its brackets and has
     * ':' written as '-' (a '-' is never in IPv6 text): "[2001:db8::1]"
     * is "_ip6.2001-db8--1". */
    if (name[0] != '[') {
      n = snprintf(out, cap, "%s", name);
    } else {
      size_t len = strlen(name), o = 0;
      if (cap < len + 4) return -EINVAL;
      memcpy(out, "_ip6.", 5);
      o = 5;
      for (size_t i = 1; i + 1 < len; i++)
        out[o++] = name[i] == ':' ? '-' : name[i];
      out[o] = '\0';
      n = (int)o;
    }
    return n > 0 && (size_t)n < cap ? 0 : -EINVAL;
  }
  if (strncmp(name, "*.", 2) == 0) {
    base = name + 2;
    wildcard = 1;
  }
  n = px_acme_name_normalize(base, strlen(base), norm, sizeof(norm));
  if (n < 0) return -EINVAL;
  /* The only '_' on disk is ours: a client can never send one. */
  n = snprintf(out, cap, "%s%s", wildcard ? "_wildcard." : "", norm);
  return n > 0 && (size_t)n < cap ? 0 : -EINVAL;
}

/* http-01 tokens are base64url (RFC 8555 §8.3); no dots, so never "..". */
static int token_component(const char *token, char *out, size_t cap) {
  size_t n = token == NULL ? 0 : strnlen(token, TOKEN_MAX + 1), i;
  if (n == 0 || n > TOKEN_MAX || n >= cap) return -EINVAL;
  for (i = 0; i < n; i++) {
    char c = token[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
          c == '_'))
      return -EINVAL;
  }
  memcpy(out, token, n + 1);
  return 0;
}

int px_store_ca_id(const char *url, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  uint8_t digest[SHA256_DIGEST_LENGTH];
  const char *p, *end, *at;
  size_t o = 0, i;

  if (url == NULL || cap < CA_ID_MAX) return -EINVAL;
  p = strstr(url, "://");
  if (p == NULL) return -EINVAL;
  p += 3;
  end = p + strcspn(p, "/?#");
  at = memchr(p, '@', (size_t)(end - p));
  if (at != NULL) p = at + 1; /* never put userinfo on disk */
  for (; p < end && o < HOST_MAX; p++) {
    char c = *p;
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c == ':')
      c = '_';
    else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
      c = '-';
    out[o++] = c;
  }
  /* The hash suffix below keeps even a host of dots from being "..". */
  if (o == 0) {
    memcpy(out, "ca", 2);
    o = 2;
  }
  out[o++] = '-';
  SHA256((const uint8_t *)url, strlen(url), digest);
  for (i = 0; i < 8; i++) {
    out[o++] = hex[digest[i] >> 4];
    out[o++] = hex[digest[i] & 15];
  }
  out[o] = '\0';
  return 0;
}

static int aspect_ok(px_store_group g, const char *aspect) {
  switch (g) {
  case PX_STORE_ACCOUNTS:
    return aspect != NULL && (strcmp(aspect, PX_STORE_ACCOUNT_JSON) == 0 ||
                              strcmp(aspect, PX_STORE_ACCOUNT_KEY) == 0);
  case PX_STORE_CERTS:
    return aspect != NULL &&
           (strcmp(aspect, PX_STORE_CERT_PEM) == 0 || strcmp(aspect, PX_STORE_KEY_PEM) == 0 ||
            strcmp(aspect, PX_STORE_META_JSON) == 0);
  case PX_STORE_FAILURES:
  case PX_STORE_CHALLENGES:
  case PX_STORE_JOBS:
  case PX_STORE_DNS:
    return aspect == NULL;
  }
  return 0;
}

const char *px_store_group_name(px_store_group g) {
  return (unsigned)g < sizeof(group_dirs) / sizeof(group_dirs[0]) ? group_dirs[g] : NULL;
}

/* A CA id as px_store_ca_id writes it: [a-z0-9._-]{1,64}, '-', 16 hex. */
static int ca_id_ok(const char *id) {
  size_t n = strnlen(id, CA_ID_MAX), i;
  if (n < 18 || n >= CA_ID_MAX || id[n - 17] != '-') return 0;
  for (i = 0; i < n; i++) {
    char c = id[i];
    int hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    if (i >= n - 16 ? !hex
                    : !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
                        c == '_'))
      return 0;
  }
  return 1;
}

static int item_component(px_store_group g, const char *name, char *out, size_t cap) {
  if (g == PX_STORE_ACCOUNTS) {
    /* A CA id (what list returns) stands for itself; a URL is hashed. */
    if (name != NULL && strstr(name, "://") == NULL) {
      if (!ca_id_ok(name) || strlen(name) >= cap) return -EINVAL;
      memcpy(out, name, strlen(name) + 1);
      return 0;
    }
    return px_store_ca_id(name, out, cap);
  }
  if (g == PX_STORE_CHALLENGES || g == PX_STORE_DNS) return token_component(name, out, cap);
  return name_component(name, out, cap);
}

int px_store_item_id(px_store_group g, const char *name, const char *aspect, char *out,
                     size_t cap) {
  if (px_store_group_name(g) == NULL || !aspect_ok(g, aspect)) return -EINVAL;
  return item_component(g, name, out, cap);
}

int px_store_name_of_id(px_store_group g, const char *id, char *out, size_t cap) {
  char again[COMPONENT_MAX];
  int n;
  if (px_store_group_name(g) == NULL || id == NULL) return -EINVAL;
  int named = g == PX_STORE_CERTS || g == PX_STORE_FAILURES || g == PX_STORE_JOBS;
  if (named && strncmp(id, "_wildcard.", 10) == 0) {
    n = snprintf(out, cap, "*.%s", id + 10);
  } else if (named && strncmp(id, "_ip6.", 5) == 0) {
    n = snprintf(out, cap, "[%s]", id + 5);
    for (int i = 1; n > 0 && (size_t)n < cap && i < n - 1; i++)
      if (out[i] == '-') out[i] = ':';
  } else
    n = snprintf(out, cap, "%s", id);
  if (n <= 0 || (size_t)n >= cap) return -EINVAL;
  /* Only an id that maps back to itself: a stray file is not an item. */
  if (item_component(g, out, again, sizeof(again)) != 0 || strcmp(again, id) != 0) return -EINVAL;
  return 0;
}

/* Fills `dir` (the directory holding the item) and `file` (its name). */
static int item_path(fs_store *fs, px_store_group g, const char *name, const char *aspect,
                     char *dir, size_t dir_cap, char *file, size_t file_cap) {
  char comp[COMPONENT_MAX];
  int rc, n;

  rc = px_store_item_id(g, name, aspect, comp, sizeof(comp));
  if (rc != 0) return rc;
  if (g == PX_STORE_ACCOUNTS || g == PX_STORE_CERTS) {
    n = snprintf(dir, dir_cap, "%s/%s/%s", fs->root, group_dirs[g], comp);
    rc = snprintf(file, file_cap, "%s", aspect);
  } else {
    n = snprintf(dir, dir_cap, "%s/%s", fs->root, group_dirs[g]);
    rc = snprintf(file, file_cap, "%s%s", comp,
                  g == PX_STORE_FAILURES || g == PX_STORE_JOBS ? ".json" : "");
  }
  return n > 0 && (size_t)n < dir_cap && rc > 0 && (size_t)rc < file_cap ? 0 : -ENAMETOOLONG;
}

static int join(char *out, size_t cap, const char *dir, const char *file) {
  int n = snprintf(out, cap, "%s/%s", dir, file);
  return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

/* ---- file primitives ----------------------------------------------------- */

static int fault(fs_store *fs, const char *step) {
  return fs->fault != NULL && fs->fault(fs->fault_arg, step) != 0;
}

static int64_t now_of(fs_store *fs) {
  return fs->now != NULL ? fs->now(fs->now_arg) : (int64_t)time(NULL);
}

/* mkdir -p below the root, each level 0700. */
static int make_dirs(fs_store *fs, const char *dir) {
  char buf[PATH_MAX];
  size_t root_len = strlen(fs->root), i, n = strlen(dir);

  if (n >= sizeof(buf)) return -ENAMETOOLONG;
  memcpy(buf, dir, n + 1);
  for (i = root_len + 1; i <= n; i++) {
    if (buf[i] != '/' && buf[i] != '\0') continue;
    buf[i] = '\0';
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return -errno;
    buf[i] = i == n ? '\0' : '/';
  }
  return 0;
}

static int fsync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
  if (fd < 0) return -errno;
  if (fsync(fd) != 0 && errno != EINVAL) rc = -errno;
  close(fd);
  return rc;
}

static void random_hex(char *out, size_t bytes) {
  static const char hex[] = "0123456789abcdef";
  uint8_t r[16];
  size_t i;
  if (bytes > sizeof(r)) bytes = sizeof(r);
  RAND_bytes(r, bytes);
  for (i = 0; i < bytes; i++) {
    out[2 * i] = hex[r[i] >> 4];
    out[2 * i + 1] = hex[r[i] & 15];
  }
  out[2 * bytes] = '\0';
}

static int write_all(fs_store *fs, int fd, const uint8_t *p, size_t len) {
  size_t limit = len;
  int inject = fault(fs, "write");

  if (inject) limit = len / 2; /* a torn write: half the bytes, then an error */
  while (limit > 0) {
    ssize_t w = write(fd, p, limit);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    limit -= (size_t)w;
  }
  return inject ? -EIO : 0;
}

/* Temp file in the same directory (O_EXCL, random suffix), fsync, rename
 * over the target, fsync the directory (docs/cache.md, "Rules"). */
static int atomic_write(fs_store *fs, const char *dir, const char *file, const void *data,
                        size_t len) {
  char tmp[PATH_MAX], final[PATH_MAX], suffix[33], tmpname[NAME_MAX + 1];
  int fd = -1, rc;

  rc = make_dirs(fs, dir);
  if (rc != 0) return rc;
  random_hex(suffix, 8);
  if (snprintf(tmpname, sizeof(tmpname), ".tmp.%s.%s", file, suffix) >= (int)sizeof(tmpname))
    return -ENAMETOOLONG;
  if ((rc = join(tmp, sizeof(tmp), dir, tmpname)) != 0 ||
      (rc = join(final, sizeof(final), dir, file)) != 0)
    return rc;
  if (fault(fs, "open")) return -EIO;
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return -errno;
  /* The umask can only narrow 0600, but set it exactly anyway. */
  if (fchmod(fd, 0600) != 0) {
    rc = -errno;
    goto fail;
  }
  if ((rc = write_all(fs, fd, data, len)) != 0) goto fail;
  if (fault(fs, "fsync")) {
    rc = -EIO;
    goto fail;
  }
  if (fsync(fd) != 0) {
    rc = -errno;
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    rc = -errno;
    goto fail;
  }
  fd = -1;
  if (fault(fs, "rename")) {
    rc = -EIO;
    goto fail;
  }
  if (rename(tmp, final) != 0) {
    rc = -errno;
    goto fail;
  }
  return fsync_dir(dir);
fail:
  if (fd >= 0) close(fd);
  unlink(tmp);
  return rc;
}

/* Bounded read of an open file, which must be a regular file. */
static int read_fd(int fd, char **data, size_t *len) {
  struct stat st;
  char *buf = NULL;
  size_t got = 0;
  int rc = 0;

  if (fstat(fd, &st) != 0) return -errno;
  if (!S_ISREG(st.st_mode)) return -EINVAL;
  if (st.st_size > PX_STORE_READ_MAX) return -EFBIG;
  buf = malloc((size_t)st.st_size + 1);
  if (buf == NULL) return -ENOMEM;
  /* The file may change size under us (another instance): stop at the
   * size we allocated and treat a longer file as a concurrent rewrite. */
  while (got < (size_t)st.st_size) {
    ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      rc = -errno;
      free(buf);
      return rc;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  buf[got] = '\0';
  *data = buf;
  *len = got;
  return 0;
}

/* Bounded read of a regular file, never through a symlink. */
static int read_file(const char *path, char **data, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc;
  if (fd < 0) return -errno;
  rc = read_fd(fd, data, len);
  close(fd);
  return rc;
}

/* Every file is 0600 and every directory 0700 (docs/cache.md): a loaded
 * item open to group or others (a key copied in by hand, a umask) is
 * narrowed, with a warning; when that is not possible (another owner) it
 * is refused, since a key others can read is no longer secret. */
static int repair_mode(int fd, const char *path, mode_t want) {
  struct stat st;
  if (fstat(fd, &st) != 0) return -errno;
  if ((st.st_mode & 077) == 0) return 0;
  if (fchmod(fd, want) != 0) {
    int rc = -errno;
    px_log(PX_LOG_ERROR, "cache: %s has mode %04o and cannot be set to %04o (%s); refused", path,
           (unsigned)(st.st_mode & 07777), (unsigned)want, strerror(-rc));
    return -EACCES;
  }
  px_log(PX_LOG_WARN, "cache: %s had mode %04o; set to %04o (the cache holds private keys)", path,
         (unsigned)(st.st_mode & 07777), (unsigned)want);
  return 0;
}

/* Opens `dir` (the root or below it) for openat(), following no symlink
 * below the root: each level is opened with O_NOFOLLOW|O_DIRECTORY, so
 * certs/<name> planted as a symlink to another directory is -ELOOP. The
 * last level's mode is repaired to 0700. */
static int open_dir_nofollow(fs_store *fs, const char *dir) {
  size_t root_len = strlen(fs->root);
  const char *p = dir + root_len;
  int fd;

  if (strncmp(dir, fs->root, root_len) != 0 || (*p != '/' && *p != '\0')) return -EINVAL;
  /* The root is the operator's own path: it may be a symlink. */
  fd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  while (*p == '/') {
    char comp[NAME_MAX + 1];
    size_t n;
    int next;
    p++;
    n = strcspn(p, "/");
    if (n == 0 || n > NAME_MAX) {
      close(fd);
      return -EINVAL;
    }
    memcpy(comp, p, n);
    comp[n] = '\0';
    p += n;
    next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      int rc = -errno;
      close(fd);
      /* ENOTDIR: a symlink to a file, or a file where a directory goes. */
      if (rc == -ELOOP || rc == -ENOTDIR) {
        px_log(PX_LOG_WARN,
               "cache: %.*s is a symlink or not a directory; refused (reads never "
               "follow a symlink)",
               (int)(p - dir), dir);
        return -ELOOP;
      }
      return rc;
    }
    close(fd);
    fd = next;
  }
  if (strcmp(dir, fs->root) != 0) {
    int rc = repair_mode(fd, dir, 0700);
    if (rc != 0) {
      close(fd);
      return rc;
    }
  }
  return fd;
}

/* Reads an item: its directory without following a symlink at any level,
 * then the file with openat(O_NOFOLLOW); loose modes are repaired. */
static int read_item(fs_store *fs, const char *dir, const char *file, const char *path, char **data,
                     size_t *len) {
  int dfd = open_dir_nofollow(fs, dir), fd, rc;
  if (dfd < 0) return dfd;
  fd = openat(dfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  rc = fd < 0 ? -errno : 0;
  close(dfd);
  if (rc != 0) return rc;
  rc = repair_mode(fd, path, 0600);
  if (rc == 0) rc = read_fd(fd, data, len);
  close(fd);
  return rc;
}

void px_store_data_free(char *data, size_t len) {
  if (data == NULL) return;
  OPENSSL_cleanse(data, len);
  free(data);
}

/* ---- store operations ---------------------------------------------------- */

/* The directory, file name and full path of an item. */
typedef struct item_paths {
  char dir[PATH_MAX];
  char file[NAME_MAX + 1];
  char path[PATH_MAX];
} item_paths;

static int paths_of(px_store *s, px_store_group g, const char *name, const char *aspect,
                    item_paths *ip) {
  int rc = item_path((fs_store *)s, g, name, aspect, ip->dir, sizeof(ip->dir), ip->file,
                     sizeof(ip->file));
  return rc != 0 ? rc : join(ip->path, sizeof(ip->path), ip->dir, ip->file);
}

static int fs_exists(px_store *s, px_store_group g, const char *name, const char *aspect) {
  struct stat st;
  item_paths ip;
  int rc = paths_of(s, g, name, aspect, &ip);
  if (rc != 0) return rc;
  if (stat(ip.path, &st) == 0) return 1;
  return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
}

static int fs_load(px_store *s, px_store_group g, const char *name, const char *aspect, char **data,
                   size_t *len) {
  item_paths ip;
  int rc = paths_of(s, g, name, aspect, &ip);
  *data = NULL;
  *len = 0;
  return rc != 0 ? rc : read_item((fs_store *)s, ip.dir, ip.file, ip.path, data, len);
}

static int fs_save(px_store *s, px_store_group g, const char *name, const char *aspect,
                   const void *data, size_t len) {
  item_paths ip;
  int rc = paths_of(s, g, name, aspect, &ip);
  if (rc != 0) return rc;
  if (len > PX_STORE_READ_MAX) return -EFBIG; /* we could not read it back */
  return atomic_write((fs_store *)s, ip.dir, ip.file, data, len);
}

static int fs_remove(px_store *s, px_store_group g, const char *name, const char *aspect) {
  item_paths ip;
  int rc = paths_of(s, g, name, aspect, &ip);
  if (rc != 0) return rc;
  if (unlink(ip.path) != 0) return -errno;
  return fsync_dir(ip.dir);
}

/* True when the directory of an account or certificate is a symlink. */
static int symlinked_item_dir(px_store_group g, const char *dir) {
  struct stat st;
  if (g != PX_STORE_ACCOUNTS && g != PX_STORE_CERTS) return 0;
  return lstat(dir, &st) == 0 && S_ISLNK(st.st_mode);
}

static int fs_quarantine(px_store *s, px_store_group g, const char *name, const char *aspect) {
  fs_store *fs = (fs_store *)s;
  char qdir[PATH_MAX], qname[NAME_MAX + 1], qpath[PATH_MAX], suffix[17];
  const char *base;
  item_paths ip;
  int rc = paths_of(s, g, name, aspect, &ip);

  if (rc != 0) return rc;
  if (snprintf(qdir, sizeof(qdir), "%s/quarantine", fs->root) >= (int)sizeof(qdir))
    return -ENAMETOOLONG;
  if ((rc = make_dirs(fs, qdir)) != 0) return rc;
  random_hex(suffix, 4);
  /* <group>.<component>.<file>.<time>.<random>: unique, and says what it was. */
  base = strrchr(ip.dir, '/') + 1;
  if (snprintf(qname, sizeof(qname), "%s.%s.%s.%lld.%s", group_dirs[g],
               g == PX_STORE_ACCOUNTS || g == PX_STORE_CERTS ? base : "-", ip.file,
               (long long)now_of(fs), suffix) >= (int)sizeof(qname))
    return -ENAMETOOLONG;
  if ((rc = join(qpath, sizeof(qpath), qdir, qname)) != 0) return rc;
  if (symlinked_item_dir(g, ip.dir)) {
    /* certs/<name> planted as a symlink: move the link itself aside (the
     * files it points at belong to someone else), and the next save makes
     * a real directory. */
    if (snprintf(qname, sizeof(qname), "%s.%s.symlink.%lld.%s", group_dirs[g], base,
                 (long long)now_of(fs), suffix) >= (int)sizeof(qname) ||
        (rc = join(qpath, sizeof(qpath), qdir, qname)) != 0)
      return rc != 0 ? rc : -ENAMETOOLONG;
    if (rename(ip.dir, qpath) != 0) return -errno;
    px_log(PX_LOG_WARN, "cache: %s was a symlink; moved to %s", ip.dir, qpath);
    return fsync_dir(qdir);
  }
  if (rename(ip.path, qpath) != 0) return -errno;
  rc = fsync_dir(ip.dir);
  return rc != 0 ? rc : fsync_dir(qdir);
}

/* ---- locks --------------------------------------------------------------- */

typedef struct lock_info {
  char owner[OWNER_MAX + 1];
  char host[HOST_MAX + 1];
  long long pid;
  int64_t ts;
} lock_info;

static char *lock_json(fs_store *fs, const char *owner) {
  json_t *j = json_pack("{s:s, s:I, s:s, s:I}", "owner", owner, "pid", (json_int_t)getpid(), "host",
                        fs->host, "ts", (json_int_t)now_of(fs));
  char *text = j == NULL ? NULL : json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(j);
  return text;
}

/* Reads a lock. A lock being written can be empty for a moment: then its
 * mtime stands in for the timestamp and the owner is unknown. */
static int lock_read(const char *path, lock_info *li) {
  char *data = NULL;
  size_t len = 0;
  struct stat st;
  json_t *j;
  const char *owner = "", *host = "";
  json_int_t pid = 0, ts = 0;
  int rc;

  memset(li, 0, sizeof(*li));
  if (stat(path, &st) != 0) return -errno;
  li->ts = (int64_t)st.st_mtime;
  rc = read_file(path, &data, &len);
  if (rc != 0) return rc;
  j = json_loadb(data, len, 0, NULL);
  free(data);
  if (j != NULL && json_unpack(j, "{s:s, s:I, s:s, s:I}", "owner", &owner, "pid", &pid, "host",
                               &host, "ts", &ts) == 0) {
    snprintf(li->owner, sizeof(li->owner), "%s", owner);
    snprintf(li->host, sizeof(li->host), "%s", host);
    li->pid = pid;
    li->ts = ts;
  }
  json_decref(j);
  return 0;
}

static int lock_is_ours(fs_store *fs, const lock_info *li, const char *owner) {
  return strcmp(li->owner, owner) == 0 && strcmp(li->host, fs->host) == 0 &&
         li->pid == (long long)getpid();
}

static int lock_create(const char *path, const char *text) {
  size_t len = strlen(text);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  ssize_t w;
  if (fd < 0) return -errno;
  w = write(fd, text, len);
  if (w < 0 || (size_t)w != len || fsync(fd) != 0) {
    int rc = w < 0 ? -errno : -EIO;
    close(fd);
    unlink(path);
    return rc;
  }
  close(fd);
  return 0;
}

/* Breaks a stale lock without ever deleting a fresh one: move it aside,
 * check that what we moved is what we judged stale, and if another waiter
 * replaced it in between, put theirs back (link fails if yet another lock
 * has appeared, which is then the valid one). */
static int lock_break(const char *dir, const char *path, const lock_info *stale) {
  char aside[PATH_MAX], name[NAME_MAX + 1], suffix[17];
  lock_info moved;
  int rc;

  random_hex(suffix, 8);
  snprintf(name, sizeof(name), ".stale.%s", suffix);
  if ((rc = join(aside, sizeof(aside), dir, name)) != 0) return rc;
  if (rename(path, aside) != 0) return errno == ENOENT ? 0 : -errno;
  rc = lock_read(aside, &moved);
  if (rc == 0 && (moved.ts != stale->ts || strcmp(moved.owner, stale->owner) != 0 ||
                  moved.pid != stale->pid || strcmp(moved.host, stale->host) != 0)) {
    if (link(aside, path) != 0 && errno != EEXIST)
      rc = -errno;
    else
      rc = -EBUSY;
  }
  unlink(aside);
  return rc;
}

static int lock_paths(fs_store *fs, const char *name, char *dir, size_t dcap, char *path,
                      size_t pcap) {
  char comp[COMPONENT_MAX], file[COMPONENT_MAX + 8];
  int rc = name_component(name, comp, sizeof(comp));
  if (rc != 0) return rc;
  snprintf(file, sizeof(file), "%s.lock", comp);
  if (snprintf(dir, dcap, "%s/locks", fs->root) >= (int)dcap) return -ENAMETOOLONG;
  return join(path, pcap, dir, file);
}

static int owner_ok(const char *owner) {
  return owner != NULL && owner[0] != '\0' && strlen(owner) <= OWNER_MAX;
}

static int fs_lock_acquire(px_store *s, const char *name, const char *owner) {
  fs_store *fs = (fs_store *)s;
  char dir[PATH_MAX], path[PATH_MAX];
  char *text;
  lock_info li;
  int rc, attempt;

  if (!owner_ok(owner)) return -EINVAL;
  if ((rc = lock_paths(fs, name, dir, sizeof(dir), path, sizeof(path))) != 0) return rc;
  if ((rc = make_dirs(fs, dir)) != 0) return rc;
  text = lock_json(fs, owner);
  if (text == NULL) return -ENOMEM;
  for (attempt = 0; attempt < 2; attempt++) {
    rc = lock_create(path, text);
    if (rc != -EEXIST) break;
    rc = lock_read(path, &li);
    if (rc == -ENOENT) continue; /* released meanwhile */
    if (rc != 0) break;
    if (lock_is_ours(fs, &li, owner)) {
      rc = 0;
      break;
    }
    if (now_of(fs) - li.ts <= fs->stale_after) {
      rc = -EBUSY;
      break;
    }
    rc = lock_break(dir, path, &li);
    if (rc != 0) break;
    rc = -EBUSY;
  }
  free(text);
  if (rc == 0) fsync_dir(dir);
  return rc;
}

/* Finds our lock for `name`: 0 when it is there and ours, -EPERM when it
 * belongs to someone else, -ENOENT when there is none. */
static int lock_find_ours(fs_store *fs, const char *name, const char *owner, char *dir, size_t dcap,
                          char *path, size_t pcap) {
  lock_info li;
  int rc;

  if (!owner_ok(owner)) return -EINVAL;
  if ((rc = lock_paths(fs, name, dir, dcap, path, pcap)) != 0 || (rc = lock_read(path, &li)) != 0)
    return rc;
  return lock_is_ours(fs, &li, owner) ? 0 : -EPERM;
}

static int fs_lock_refresh(px_store *s, const char *name, const char *owner) {
  fs_store *fs = (fs_store *)s;
  char dir[PATH_MAX], path[PATH_MAX], *text;
  int rc = lock_find_ours(fs, name, owner, dir, sizeof(dir), path, sizeof(path));

  if (rc != 0) return rc;
  text = lock_json(fs, owner);
  if (text == NULL) return -ENOMEM;
  /* Replaced atomically, so a waiter never reads a half-written lock. */
  rc = atomic_write(fs, dir, strrchr(path, '/') + 1, text, strlen(text));
  free(text);
  return rc;
}

static int fs_lock_release(px_store *s, const char *name, const char *owner) {
  fs_store *fs = (fs_store *)s;
  char dir[PATH_MAX], path[PATH_MAX];
  int rc = lock_find_ours(fs, name, owner, dir, sizeof(dir), path, sizeof(path));

  if (rc != 0) return rc;
  if (unlink(path) != 0) return -errno;
  return fsync_dir(dir);
}

static void fs_destroy(px_store *s) { free(s); }

/* Walks one group's directory: accounts and certificates are directories,
 * failures and jobs "<id>.json" files, challenges "<token>" files. Temp files and
 * anything that is not an item's id are skipped. */
static int fs_list(px_store *s, px_store_group g, int (*fn)(void *, const char *), void *arg) {
  fs_store *fs = (fs_store *)s;
  char dir[PATH_MAX], id[NAME_MAX + 1], name[COMPONENT_MAX + 2];
  const char *group = px_store_group_name(g);
  struct dirent *e;
  DIR *d;
  int count = 0;

  if (group == NULL) return -EINVAL;
  if (snprintf(dir, sizeof(dir), "%s/%s", fs->root, group) >= (int)sizeof(dir))
    return -ENAMETOOLONG;
  d = opendir(dir);
  if (d == NULL) return errno == ENOENT ? 0 : -errno;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    int is_dir = e->d_type == DT_DIR;
    if (e->d_name[0] == '.' || n >= sizeof(id)) continue;
    memcpy(id, e->d_name, n + 1);
    if (g == PX_STORE_FAILURES || g == PX_STORE_JOBS) {
      if (n < 6 || strcmp(id + n - 5, ".json") != 0) continue;
      id[n - 5] = '\0';
    }
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      char path[PATH_MAX];
      if (join(path, sizeof(path), dir, e->d_name) != 0 || lstat(path, &st) != 0) continue;
      is_dir = S_ISDIR(st.st_mode);
    }
    if (is_dir != (g == PX_STORE_ACCOUNTS || g == PX_STORE_CERTS)) continue;
    if (px_store_name_of_id(g, id, name, sizeof(name)) != 0) continue;
    count++;
    if (fn(arg, name) != 0) break;
  }
  closedir(d);
  return count;
}

static const px_store_ops fs_ops = {
    fs_exists,       fs_load,         fs_save,         fs_remove,  fs_quarantine,
    fs_lock_acquire, fs_lock_refresh, fs_lock_release, fs_destroy, fs_list,
};

/* ROOT/version: "1". Anything else is a layout this code does not know. */
static int check_version(fs_store *fs) {
  char path[PATH_MAX], *data = NULL;
  size_t len = 0;
  int rc;

  if ((rc = join(path, sizeof(path), fs->root, "version")) != 0) return rc;
  rc = read_file(path, &data, &len);
  if (rc == -ENOENT)
    return atomic_write(fs, fs->root, "version", PX_STORE_VERSION "\n",
                        strlen(PX_STORE_VERSION) + 1);
  if (rc != 0) return rc;
  while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
    data[--len] = '\0';
  rc = strcmp(data, PX_STORE_VERSION) == 0 ? 0 : -EPROTO;
  free(data);
  return rc;
}

int px_store_fs_open(const px_store_fs_options *opt, px_store **out) {
  fs_store *fs;
  size_t n;
  int rc;

  *out = NULL;
  if (opt == NULL || opt->root == NULL || opt->root[0] == '\0') return -EINVAL;
  n = strlen(opt->root);
  while (n > 1 && opt->root[n - 1] == '/')
    n--;
  fs = calloc(1, sizeof(*fs));
  if (fs == NULL) return -ENOMEM;
  if (n >= sizeof(fs->root)) {
    free(fs);
    return -ENAMETOOLONG;
  }
  fs->base.ops = &fs_ops;
  memcpy(fs->root, opt->root, n);
  fs->root[n] = '\0';
  fs->stale_after = opt->lock_stale_after > 0 ? opt->lock_stale_after : PX_STORE_LOCK_STALE_DEFAULT;
  fs->now = opt->now;
  fs->now_arg = opt->now_arg;
  fs->fault = opt->fault;
  fs->fault_arg = opt->fault_arg;
  if (opt->host != NULL)
    snprintf(fs->host, sizeof(fs->host), "%s", opt->host);
  else if (gethostname(fs->host, sizeof(fs->host)) != 0)
    snprintf(fs->host, sizeof(fs->host), "unknown");
  fs->host[HOST_MAX] = '\0';
  if (mkdir(fs->root, 0700) != 0 && errno != EEXIST) {
    rc = -errno;
    free(fs);
    return rc;
  }
  rc = check_version(fs);
  if (rc != 0) {
    free(fs);
    return rc;
  }
  *out = &fs->base;
  return 0;
}
