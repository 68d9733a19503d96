#include "tls/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PX_LOG_INFO;
static int access_fd = -1;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void px_log_set_level(px_log_level level) { atomic_store(&log_level, (int)level); }

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

static size_t format_time(char *out, size_t cap) {
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
  size_t n = format_time(line, sizeof(line));
  n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_names[level]);
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  n += (size_t)m;
  if (n > sizeof(line) - 2) n = sizeof(line) - 2;
  line[n++] = '\n';
  write_all(STDERR_FILENO, line, n);
}

int px_access_log_open(const char *target) {
  if (target == NULL || strcmp(target, "off") == 0) {
    access_fd = -1;
  } else if (strcmp(target, "stdout") == 0) {
    access_fd = STDOUT_FILENO;
  } else if (strcmp(target, "stderr") == 0) {
    access_fd = STDERR_FILENO;
  } else {
    int fd = open(target, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    access_fd = fd;
  }
  return 0;
}

int px_access_log_enabled(void) { return access_fd >= 0; }

void px_access_log_write(const char *line, size_t len) {
  if (access_fd < 0) return;
  char buf[4096];
  if (len > sizeof(buf) - 1) len = sizeof(buf) - 1;
  memcpy(buf, line, len);
  buf[len++] = '\n';
  write_all(access_fd, buf, len);
}

size_t px_log_escape(char *out, size_t cap, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  if (cap == 0) return 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      if (o + 2 >= cap) break;
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      if (o + 4 >= cap) break;
      out[o++] = '\\';
      out[o++] = 'x';
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
