#include "tls/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PX_LOG_INFO;
static atomic_int log_json;
static int access_fd = -1;
/* The files behind the logs, for px_log_reopen; NULL for stdout/stderr.
 * Written at start-up before any thread logs, then only read. */
static char *access_path, *error_path;
static pthread_mutex_t reopen_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void px_log_set_level(px_log_level level) { atomic_store(&log_level, (int)level); }

void px_log_set_json(int on) { atomic_store(&log_json, on != 0); }

int px_log_json(void) { return atomic_load(&log_json); }

int px_log_enabled(px_log_level level) { return (int)level <= atomic_load(&log_level); }

int px_log_level_parse(const char *s) {
  for (int i = 0; i < 4; i++)
    if (strcmp(s, level_names[i]) == 0) return i;
  return -1;
}

/* Writes the whole buffer; a short write to a pipe is retried so lines from
 * several threads never interleave mid-line for lines under PIPE_BUF. */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

size_t px_log_time(char *out, size_t cap) {
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  n += (size_t)snprintf(out + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
  return n;
}

void px_log(px_log_level level, const char *fmt, ...) {
  if (!px_log_enabled(level)) return;
  char line[2048];
  size_t n = px_log_time(line, sizeof(line));
  va_list ap;
  va_start(ap, fmt);
  if (px_log_json()) {
    /* {"time":"...","level":"info","msg":"..."}: the message is escaped
     * whole, so whatever a caller formatted into it stays one string. */
    char msg[1536], time[40];
    memcpy(time, line, n + 1);
    int m = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t mlen = m < 0 ? 0 : (size_t)m >= sizeof(msg) ? sizeof(msg) - 1 : (size_t)m;
    n = (size_t)snprintf(line, sizeof(line), "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", time,
                         level_names[level]);
    n += px_log_json_escape(line + n, sizeof(line) - n - 3, msg, mlen);
    line[n++] = '"';
    line[n++] = '}';
    line[n++] = '\n';
    write_all(STDERR_FILENO, line, n);
    return;
  }
  n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_names[level]);
  int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += (size_t)m;
  if (n > sizeof(line) - 2) n = sizeof(line) - 2;
  line[n++] = '\n';
  write_all(STDERR_FILENO, line, n);
}

static int open_log_file(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  return fd < 0 ? -errno : fd;
}

static int remember(char **slot, const char *path) {
  free(*slot);
  *slot = path ? strdup(path) : NULL;
  return path && *slot == NULL ? -ENOMEM : 0;
}

int px_error_log_open(const char *target) {
  if (target == NULL || strcmp(target, "stderr") == 0) return remember(&error_path, NULL);
  int fd = open_log_file(target);
  if (fd < 0) return fd;
  /* The file takes descriptor 2, so whatever else writes to stderr (a
   * sanitizer, a library) lands in it too, and a reopen is one dup2. */
  int r = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
  close(fd);
  return r ? r : remember(&error_path, target);
}

int px_access_log_open(const char *target) {
  if (target == NULL || strcmp(target, "off") == 0) {
    access_fd = -1;
  } else if (strcmp(target, "stdout") == 0) {
    access_fd = STDOUT_FILENO;
  } else if (strcmp(target, "stderr") == 0) {
    access_fd = STDERR_FILENO;
  } else {
    int fd = open_log_file(target);
    if (fd < 0) return fd;
    access_fd = fd;
    return remember(&access_path, target);
  }
  return remember(&access_path, NULL);
}

/* Opens `path` anew and puts it in place of descriptor `fd` with dup2,
 * which swaps atomically: a thread writing a line meanwhile writes it
 * whole to the old file or the new one. */
static int reopen_one(const char *path, int fd) {
  int nfd = open_log_file(path);
  if (nfd < 0) return nfd;
  int r = dup2(nfd, fd) < 0 ? -errno : 0;
  close(nfd);
  return r;
}

int px_log_reopen(char *err, size_t errlen) {
  pthread_mutex_lock(&reopen_lock);
  int r = 0;
  if (err && errlen) err[0] = '\0';
  if (error_path && (r = reopen_one(error_path, STDERR_FILENO)) != 0 && err)
    snprintf(err, errlen, "cannot reopen %s: %s", error_path, strerror(-r));
  int a = 0;
  if (access_path && access_fd >= 0 && (a = reopen_one(access_path, access_fd)) != 0 && err &&
      r == 0)
    snprintf(err, errlen, "cannot reopen %s: %s", access_path, strerror(-a));
  pthread_mutex_unlock(&reopen_lock);
  return r ? r : a;
}

int px_access_log_enabled(void) { return access_fd >= 0; }

void px_access_log_write(const char *line, size_t len) {
  if (access_fd < 0) return;
  char buf[PX_ACCESS_LINE_MAX + 1];
  if (len > sizeof(buf) - 1) len = sizeof(buf) - 1;
  memcpy(buf, line, len);
  buf[len++] = '\n';
  write_all(access_fd, buf, len);
}

/* Escapes quotes, backslashes and every byte outside printable ASCII:
 * as \xNN in the text format, as \u00XX inside a JSON string (RFC 8259
 * §7 requires control characters escaped; escaping 0x7f and up too keeps a
 * line ASCII and valid JSON whatever bytes a client sent, invalid UTF-8
 * included). Truncates between escapes, never inside one. */
static size_t escape(char *out, size_t cap, const char *s, size_t len, int json) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0, wide = json ? 6 : 4;
  if (cap == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      if (o + 2 >= cap) break;
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      if (o + wide >= cap) break;
      memcpy(out + o, json ? "\\u00" : "\\x", wide - 2);
      o += wide - 2;
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      if (o + 1 >= cap) break;
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
  return o;
}

size_t px_log_escape(char *out, size_t cap, const char *s, size_t len) {
  return escape(out, cap, s, len, 0);
}

size_t px_log_json_escape(char *out, size_t cap, const char *s, size_t len) {
  return escape(out, cap, s, len, 1);
}
