/* px_sd_notify: nothing without $NOTIFY_SOCKET, a refusal for an address
 * that is neither a path nor '@', and the exact datagram on a path socket
 * and on an abstract one (what systemd reads). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/sdnotify.h"

static void test_unset_and_bad_addresses(void **state) {
  unsetenv("NOTIFY_SOCKET");
  assert_int_equal(px_sd_notify("READY=1"), 0);
  setenv("NOTIFY_SOCKET", "", 1);
  assert_int_equal(px_sd_notify("READY=1"), 0);
  setenv("NOTIFY_SOCKET", "relative/notify", 1);
  assert_int_equal(px_sd_notify("READY=1"), -EAFNOSUPPORT);
  char longpath[200];
  memset(longpath, 'x', sizeof(longpath) - 1);
  longpath[0] = '/';
  longpath[sizeof(longpath) - 1] = '\0';
  setenv("NOTIFY_SOCKET", longpath, 1);
  assert_int_equal(px_sd_notify("READY=1"), -ENAMETOOLONG);
  setenv("NOTIFY_SOCKET", "/nonexistent-dir-px/notify", 1);
  assert_true(px_sd_notify("READY=1") < 0); /* nobody listens: the error, not a crash */
  unsetenv("NOTIFY_SOCKET");
}

/* Binds a datagram socket at `name` ('@' for abstract), points
 * $NOTIFY_SOCKET at it, sends, and checks the bytes that arrive. */
static void roundtrip(const char *name) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  assert_true(fd >= 0);
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  size_t len = strlen(name);
  memcpy(sa.sun_path, name, len);
  if (name[0] == '@') sa.sun_path[0] = '\0';
  assert_int_equal(
      bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
      0);
  setenv("NOTIFY_SOCKET", name, 1);
  assert_int_equal(px_sd_notify("READY=1\nSTATUS=up"), 1);
  char buf[64];
  ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  assert_int_equal(n, 17);
  assert_memory_equal(buf, "READY=1\nSTATUS=up", 17);
  close(fd);
  unsetenv("NOTIFY_SOCKET");
}

static void test_path_and_abstract(void **state) {
  char path[64];
  snprintf(path, sizeof(path), "/tmp/px-notify-%ld.sock", (long)getpid());
  unlink(path);
  roundtrip(path);
  unlink(path);
  char abstract[64];
  snprintf(abstract, sizeof(abstract), "@px-notify-%ld", (long)getpid());
  roundtrip(abstract);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unset_and_bad_addresses),
      cmocka_unit_test(test_path_and_abstract),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
