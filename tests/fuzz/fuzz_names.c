/*
 * Name normalisation of what clients send: px_acme_name_normalize (SNI and
 * names that become storage paths and ACME identifiers), the proxy's Host
 * normaliser (px_http_normalize_host) and the config's host patterns.
 *
 * Oracle beyond the sanitizers: a normalised name normalises to itself, has
 * the length returned, and holds only [a-z0-9.-] (so it is a safe path
 * component); the error code always has a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/names.h"
#include "proxy/config/values.h"
#include "proxy/http.h"

static void check_idempotent(const char *name, int len) {
  char again[PX_ACME_NAME_MAX + 1];
  if ((size_t)len != strlen(name) || len > PX_ACME_NAME_MAX) abort();
  if (name[0] == '.' || strstr(name, "..") || strchr(name, '/')) abort();
  for (int i = 0; i < len; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
          name[i] == '.' || name[i] == '-'))
      abort();
  int n = px_acme_name_normalize(name, (size_t)len, again, sizeof(again));
  if (n != len || strcmp(again, name) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  char out[PX_ACME_NAME_MAX + 1];
  int n = px_acme_name_normalize(in, size, out, sizeof(out));
  if (n >= 0)
    check_idempotent(out, n);
  else if (px_acme_name_strerror(n) == NULL)
    abort();
  /* A small buffer must be refused, never overrun. */
  char tiny[8];
  n = px_acme_name_normalize(in, size, tiny, sizeof(tiny));
  if (n >= (int)sizeof(tiny)) abort();

  char host[256];
  int h = px_http_normalize_host(in, size, host, sizeof(host));
  if (h >= 0 && ((size_t)h != strlen(host) || h >= (int)sizeof(host))) abort();

  /* The config's patterns take a C string. */
  char *s = malloc(size + 1);
  if (s == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  char pattern[256];
  if (px_cfg_normalize_host_pattern(s, pattern, sizeof(pattern)) == NULL &&
      strlen(pattern) >= sizeof(pattern))
    abort();
  free(s);
  return 0;
}
