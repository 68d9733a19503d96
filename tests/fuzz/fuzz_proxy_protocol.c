/*
 * The PROXY protocol header parser (proxy/proxy_protocol.c), fed what a
 * peer sends first on a PROXY protocol listener.
 *
 * Oracle beyond the sanitizers: an accepted header is no longer than the
 * version's bound, every shorter prefix of it asks for more bytes (so a
 * header split across reads is parsed the same), parsing exactly its bytes
 * gives the same result, and a PROXY result has an IPv4 or IPv6 family.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/proxy_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_proxy_header h, again;
  long n = px_proxy_parse(data, size, &h);
  if (n < -1 || (n > 0 && (size_t)n > size)) abort();
  if (n <= 0) return 0;
  if (n > (h.version == 1 ? PX_PROXY_V1_MAX : PX_PROXY_V2_MAX)) abort();
  if (!h.local && h.family != AF_INET && h.family != AF_INET6) abort();
  for (size_t len = 0; len < (size_t)n; len++)
    if (px_proxy_parse(data, len, &again) != 0) abort();
  if (px_proxy_parse(data, (size_t)n, &again) != n || again.local != h.local ||
      again.family != h.family || memcmp(again.src, h.src, sizeof(h.src)) != 0 ||
      again.src_port != h.src_port)
    abort();
  return 0;
}
