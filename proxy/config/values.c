#include "proxy/config/values.h"
#include "tls/ipname.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

const char *px_cfg_parse_count(const char *s, uint64_t *out) {
  if (s[0] == '\0') return "is not a number";
  uint64_t n = 0;
  for (const char *p = s; *p; p++) {
    if (*p < '0' || *p > '9') return "is not a whole number";
    if (n > (UINT64_MAX - 9) / 10) return "is too large";
    n = n * 10 + (uint64_t)(*p - '0');
  }
  *out = n;
  return NULL;
}

/* Splits "123unit" into a number and a unit. */
static const char *number_and_unit(const char *s, uint64_t *n, const char **unit) {
  size_t i = 0;
  uint64_t v = 0;
  if (s[0] < '0' || s[0] > '9') return "is not a number";
  for (; s[i] >= '0' && s[i] <= '9'; i++) {
    if (v > (UINT64_MAX - 9) / 10) return "is too large";
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *n = v;
  *unit = s + i;
  return NULL;
}

static const char *scale(uint64_t n, uint64_t mul, uint64_t *out) {
  if (mul && n > UINT64_MAX / mul) return "is too large";
  *out = n * mul;
  return NULL;
}

const char *px_cfg_parse_duration_ms(const char *s, uint64_t *out_ms) {
  uint64_t n;
  const char *unit;
  const char *why = number_and_unit(s, &n, &unit);
  if (why) return why;
  if (strcmp(unit, "") == 0 || strcmp(unit, "s") == 0) return scale(n, 1000, out_ms);
  if (strcmp(unit, "ms") == 0) return scale(n, 1, out_ms);
  if (strcmp(unit, "m") == 0) return scale(n, 60000, out_ms);
  if (strcmp(unit, "h") == 0) return scale(n, 3600000, out_ms);
  return "is not a duration (use ms, s, m or h, e.g. \"10s\")";
}

const char *px_cfg_parse_size(const char *s, uint64_t *out) {
  uint64_t n;
  const char *unit;
  const char *why = number_and_unit(s, &n, &unit);
  if (why) return why;
  if (strcmp(unit, "") == 0) return scale(n, 1, out);
  if (strcmp(unit, "k") == 0 || strcmp(unit, "K") == 0) return scale(n, 1024, out);
  if (strcmp(unit, "m") == 0 || strcmp(unit, "M") == 0) return scale(n, 1024 * 1024, out);
  if (strcmp(unit, "g") == 0 || strcmp(unit, "G") == 0) return scale(n, 1024 * 1024 * 1024, out);
  return "is not a size (use bytes or k, m, g, e.g. \"64k\")";
}

int px_cfg_parse_log_level(const char *s) {
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

/* Splits "host:port" / "[v6]:port" into host and a valid port. */
static const char *split_host_port(const char *s, char *host, size_t cap, int *port, int *v6) {
  const char *colon;
  *v6 = s[0] == '[';
  if (*v6) {
    const char *close = strchr(s, ']');
    if (close == NULL || close[1] != ':') return "is not [address]:port";
    if ((size_t)(close - s - 1) >= cap) return "has an address that is too long";
    memcpy(host, s + 1, (size_t)(close - s - 1));
    host[close - s - 1] = '\0';
    colon = close + 1;
  } else {
    colon = strrchr(s, ':');
    if (colon == NULL || colon == s) return "is not host:port";
    if ((size_t)(colon - s) >= cap) return "has a host that is too long";
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (strchr(host, ':')) return "needs brackets around an IPv6 address ([::1]:443)";
  }
  uint64_t p;
  if (px_cfg_parse_count(colon + 1, &p) != NULL || p < 1 || p > 65535)
    return "has no valid port (1-65535)";
  *port = (int)p;
  return NULL;
}

static const char *numeric_addr(const char *host, int port, int v6, struct sockaddr_storage *ss,
                                socklen_t *len) {
  memset(ss, 0, sizeof(*ss));
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return "is not a valid IPv6 address";
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    *len = sizeof(*a);
    return NULL;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return "is not a numeric IPv4 address";
  a->sin_family = AF_INET;
  a->sin_port = htons((uint16_t)port);
  *len = sizeof(*a);
  return NULL;
}

const char *px_cfg_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len) {
  char host[128];
  int port, v6;
  const char *why = split_host_port(s, host, sizeof(host), &port, &v6);
  return why ? why : numeric_addr(host, port, v6, ss, len);
}

const char *px_cfg_parse_upstream(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                                  int *is_unix) {
  *is_unix = 0;
  if (strncmp(s, "unix:", 5) == 0) {
    const char *path = s + 5;
    struct sockaddr_un *a = (struct sockaddr_un *)ss;
    if (path[0] != '/') return "needs an absolute path (unix:/run/app.sock)";
    if (strlen(path) >= sizeof(a->sun_path)) return "has a socket path that is too long";
    memset(ss, 0, sizeof(*ss));
    a->sun_family = AF_UNIX;
    memcpy(a->sun_path, path, strlen(path) + 1);
    *len = sizeof(*a);
    *is_unix = 1;
    return NULL;
  }
  char host[256];
  int port, v6;
  const char *why = split_host_port(s, host, sizeof(host), &port, &v6);
  if (why) return why;
  if (numeric_addr(host, port, v6, ss, len) == NULL) return NULL;
  if (v6) return "is not a valid IPv6 address";
  /* A name is resolved once, at load: backends that move need a reload. */
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) return "does not resolve";
  memset(ss, 0, sizeof(*ss));
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = (socklen_t)res->ai_addrlen;
  if (ss->ss_family == AF_INET)
    ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
  freeaddrinfo(res);
  return NULL;
}

const char *px_cfg_normalize_host_pattern(const char *s, char *out, size_t cap) {
  if (strcmp(s, "*") == 0) {
    snprintf(out, cap, "*");
    return NULL;
  }
  size_t n = strlen(s), i = 0, o = 0;
  if (n == 0) return "is empty";
  /* An address, IPv6 with or without brackets, kept in the form a Host
   * header carries it ("[2001:db8::1]", RFC 3986 §3.2.2) so routing
   * compares it as it compares a name. */
  if (px_ip_name_normalize(s, n, out, cap) > 0) return NULL;
  if (n > 253 || n + 1 > cap) return "is longer than 253 characters";
  if (s[0] == '*') {
    if (s[1] != '.') return "is not a valid wildcard (use \"*.example.com\")";
    out[o++] = '*';
    out[o++] = '.';
    i = 2;
  }
  size_t label = 0, dots = 0;
  for (; i < n; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
    if (c == '.') {
      if (label == 0 || out[o - 1] == '-') return "has an empty label or one ending in '-'";
      label = 0;
      dots++;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-') {
      if (c == '-' && label == 0) return "has a label starting with '-'";
      if (++label > 63) return "has a label longer than 63 characters";
    } else {
      return "is not a host name (letters, digits, '-' and '.' only; \"*.\" for a wildcard)";
    }
    out[o++] = c;
  }
  if (label == 0 || out[o - 1] == '-') return "has an empty label or one ending in '-'";
  if (dots == 0 && s[0] != '*') return "needs at least one dot (use \"*\" for every other name)";
  out[o] = '\0';
  return NULL;
}
