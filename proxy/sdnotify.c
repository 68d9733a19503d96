#include "proxy/sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int px_sd_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return 0;
  /* sd_notify(3): an absolute path, or '@' for the abstract namespace
   * (unix(7): sun_path starts with a NUL byte, the name is not terminated). */
  if (path[0] != '/' && path[0] != '@') return -EAFNOSUPPORT;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  size_t len = strlen(path);
  if (len > sizeof(sa.sun_path) - (path[0] == '/')) return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, len);
  if (path[0] == '@') sa.sun_path[0] = '\0';
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
  int err = n < 0 ? errno : 0;
  close(fd);
  return err ? -err : 1;
}
