/*
 * Writing to a libuv stream without blocking and without copying what the
 * kernel takes at once: uv_try_write first, then a single queued copy of the
 * rest. Used for both client and upstream sockets.
 */
#ifndef PX_STREAM_WRITE_H
#define PX_STREAM_WRITE_H

#include <stddef.h>
#include <uv.h>

/**
 * Writes `len` bytes to `s`. What the socket does not take now is copied and
 * queued; `*pending` grows by that amount and `cb` runs when it is written
 * (the owner is `req->handle->data`). Returns 0 or a negative errno.
 */
int px_stream_write(uv_stream_t *s, const void *data, size_t len, size_t *pending, uv_write_cb cb);

/** In the write callback: frees the request and returns its byte count. */
size_t px_stream_write_done(uv_write_t *req);

#endif
