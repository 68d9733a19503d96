#include "proxy/util/request_id.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* tchar (RFC 9110 §5.6.2). */
static int is_tchar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

const char *px_request_id_check_header_name(const char *name) {
  static const char *const reserved[] = {"host",
                                         "content-length",
                                         "transfer-encoding",
                                         "connection",
                                         "upgrade",
                                         "te",
                                         "trailer",
                                         "keep-alive",
                                         "expect",
                                         "forwarded",
                                         "x-forwarded-for",
                                         "x-forwarded-proto",
                                         "x-forwarded-host",
                                         "proxy-connection",
                                         NULL};
  size_t len = strlen(name);
  if (len == 0 || len > 64) return "must be 1 to 64 characters";
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)name[i])) return "is not a header field name";
  for (const char *const *r = reserved; *r; r++)
    if (strcasecmp(name, *r) == 0) return "is a field portico sets or frames requests with";
  return NULL;
}

int px_request_id_valid(const char *v, size_t len) {
  if (len == 0 || len > PX_REQUEST_ID_MAX) return 0;
  for (size_t i = 0; i < len; i++)
    if (!is_tchar((unsigned char)v[i])) return 0;
  return 1;
}

/* Random bytes come from getrandom(2) a block at a time per thread: one
 * system call per 256 requests rather than one each. */
#define POOL 4096
static __thread uint8_t pool[POOL];
static __thread size_t pool_left;

static void refill(void) {
  size_t got = 0;
  while (got < POOL) {
    ssize_t n = getrandom(pool + got, POOL - got, 0);
    if (n <= 0) break;
    got += (size_t)n;
  }
  if (got < POOL) {
    /* getrandom cannot fail once the pool is seeded; should it, ids stay
     * unique enough for logs from the time, the pid and a counter. */
    static __thread uint64_t counter;
    for (size_t i = got; i < POOL; i++)
      pool[i] = (uint8_t)((uint64_t)time(NULL) ^ ((uint64_t)getpid() << 8) ^ (++counter * 0x9e37));
  }
  pool_left = POOL;
}

void px_request_id_generate(char out[PX_REQUEST_ID_GENERATED + 1]) {
  static const char hex[] = "0123456789abcdef";
  if (pool_left < 16) refill();
  const uint8_t *b = pool + POOL - pool_left;
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[b[i] >> 4];
    out[2 * i + 1] = hex[b[i] & 15];
  }
  out[PX_REQUEST_ID_GENERATED] = '\0';
  pool_left -= 16;
}

size_t px_request_id_take(const px_http_head *h, const char *name,
                          char out[PX_REQUEST_ID_MAX + 1]) {
  const px_header *f = h && name ? px_http_find(h, name) : NULL;
  if (f && px_request_id_valid(f->value, f->value_len)) {
    memcpy(out, f->value, f->value_len);
    out[f->value_len] = '\0';
    return f->value_len;
  }
  px_request_id_generate(out);
  return PX_REQUEST_ID_GENERATED;
}
