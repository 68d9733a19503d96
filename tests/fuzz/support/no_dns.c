/*
 * Every fuzz driver is linked with -Wl,--wrap=getaddrinfo: an upstream
 * "name:port" in a fuzzed config would otherwise send random names to the
 * resolver (slow, and queries leaving the machine). Only numeric hosts
 * resolve here; a name fails at once, as one that does not resolve.
 */
#include <netdb.h>
#include <stddef.h>

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                       struct addrinfo **res) {
  struct addrinfo h = {0};
  if (hints) h = *hints;
  h.ai_flags |= AI_NUMERICHOST;
  return __real_getaddrinfo(node, service, &h, res);
}
