#include "proxy/listen_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *px_listen_lock_dir(const px_config *cfg, char *buf, size_t cap) {
  /* Local to the machine, never the storage directory: a cache shared over
   * NFS must not make two machines' listeners exclude each other. */
  const char *env;
  if (cfg->runtime_dir)
    snprintf(buf, cap, "%s", cfg->runtime_dir);
  else if ((env = getenv("RUNTIME_DIRECTORY")) && *env) /* systemd's RuntimeDirectory= */
    snprintf(buf, cap, "%s", env);
  else if (geteuid() == 0)
    snprintf(buf, cap, "/run/portico");
  else if ((env = getenv("XDG_RUNTIME_DIR")) && *env)
    snprintf(buf, cap, "%s/portico", env);
  else
    snprintf(buf, cap, "/tmp/portico-%u", (unsigned)geteuid());
  return buf;
}

void px_listen_file_name(const char *prefix, const char *addr, const char *suffix, char *out,
                         size_t cap) {
  size_t n = (size_t)snprintf(out, cap, "%s", prefix);
  for (const char *p = addr; *p && n + strlen(suffix) + 1 < cap; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '.' || c == '-';
    out[n++] = ok ? c : '_';
  }
  snprintf(out + n, cap - n, "%s", suffix);
}

/* The locks this process holds: the address text and the locked file's
 * descriptor (closing it releases the lock). */
typedef struct held_lock {
  char *addr;
  int fd;
} held_lock;
static held_lock *held;
static size_t nheld;

static int is_held(const char *addr) {
  for (size_t i = 0; i < nheld; i++)
    if (strcmp(held[i].addr, addr) == 0) return 1;
  return 0;
}

static int remember(const char *addr, int fd) {
  held_lock *n = realloc(held, (nheld + 1) * sizeof(*n));
  if (n == NULL) return -1;
  held = n;
  if ((held[nheld].addr = strdup(addr)) == NULL) return -1;
  held[nheld++].fd = fd;
  return 0;
}

static int lock_one(int dirfd, const char *dir, const char *addr, char *err, size_t errlen) {
  char name[160];
  px_listen_file_name("listen-", addr, ".lock", name, sizeof(name));
  int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    snprintf(err, errlen, "listen %s: cannot open the lock file %s/%s: %s", addr, dir, name,
             strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    char holder[48] = "";
    if (pid[0]) snprintf(holder, sizeof(holder), " (pid %s)", pid);
    snprintf(err, errlen,
             "listen %s: another portico%s is already listening on this address (lock %s/%s); "
             "stop it first, or give this one other addresses",
             addr, holder, dir, name);
    close(fd);
    return -1;
  }
  char pid[32];
  int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
  /* The pid is only for the other process's message: the lock holds
   * whether or not it could be written. */
  if (ftruncate(fd, 0) == 0) (void)!pwrite(fd, pid, (size_t)len, 0);
  /* fd stays open: the lock lasts as long as the process, or until a
   * reload removes the address. Without memory to note it, it is simply
   * held until exit. */
  remember(addr, fd);
  return 0;
}

static int cfg_has(const px_config *cfg, const char *addr) {
  for (size_t i = 0; i < cfg->nhttps; i++)
    if (strcmp(cfg->https[i].text, addr) == 0) return 1;
  for (size_t i = 0; i < cfg->nhttp; i++)
    if (strcmp(cfg->http[i].text, addr) == 0) return 1;
  return 0;
}

void px_listen_lock_keep_only(const px_config *cfg) {
  size_t kept = 0;
  for (size_t i = 0; i < nheld; i++) {
    if (cfg_has(cfg, held[i].addr)) {
      held[kept++] = held[i];
      continue;
    }
    close(held[i].fd);
    free(held[i].addr);
  }
  nheld = kept;
}

/* Locks each address of `cfg` not held yet; stops at the first failure. */
static int lock_missing(const px_config *cfg, char *err, size_t errlen) {
  char dir[512];
  px_listen_lock_dir(cfg, dir, sizeof(dir));
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "runtime_dir %s: cannot create it: %s", dir, strerror(errno));
    return -1;
  }
  int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (dirfd < 0) {
    snprintf(err, errlen, "runtime_dir %s: %s", dir, strerror(errno));
    return -1;
  }
  int r = 0;
  for (size_t i = 0; r == 0 && i < cfg->nhttps; i++)
    if (!is_held(cfg->https[i].text)) r = lock_one(dirfd, dir, cfg->https[i].text, err, errlen);
  for (size_t i = 0; r == 0 && i < cfg->nhttp; i++)
    if (!is_held(cfg->http[i].text)) r = lock_one(dirfd, dir, cfg->http[i].text, err, errlen);
  close(dirfd);
  return r;
}

int px_listen_lock_all(const px_config *cfg, char *err, size_t errlen) {
  return lock_missing(cfg, err, errlen);
}

int px_listen_lock_add(const px_config *cfg, char *err, size_t errlen) {
  size_t before = nheld;
  if (lock_missing(cfg, err, errlen) == 0) return 0;
  while (nheld > before) { /* give back what this call took */
    nheld--;
    close(held[nheld].fd);
    free(held[nheld].addr);
  }
  return -1;
}
