#include "proxy/util/stream_write.h"
#include "tls/unconst.h"

#include <stdlib.h>
#include <string.h>

typedef struct queued_write {
  uv_write_t req;
  size_t len;
  char data[];
} queued_write;

int px_stream_write(uv_stream_t *s, const void *data, size_t len, size_t *pending, uv_write_cb cb) {
  const char *p = data;
  if (len == 0) return 0;
  /* Order matters: only write directly when nothing is queued before us. */
  if (*pending == 0) {
    uv_buf_t b = uv_buf_init(px_unconst(p), (unsigned)len);
    int n = uv_try_write(s, &b, 1);
    if (n == (int)len) return 0;
    if (n > 0) {
      p += n;
      len -= (size_t)n;
    } else if (n != UV_EAGAIN && n != UV_ENOSYS) {
      return n;
    }
  }
  queued_write *w = malloc(sizeof(*w) + len);
  if (w == NULL) return UV_ENOMEM;
  w->len = len;
  memcpy(w->data, p, len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  int r = uv_write(&w->req, s, &b, 1, cb);
  if (r != 0) {
    free(w);
    return r;
  }
  *pending += len;
  return 0;
}

size_t px_stream_write_done(uv_write_t *req) {
  queued_write *w = (queued_write *)req;
  size_t len = w->len;
  free(w);
  return len;
}
