/*
 * The byte queues between a connection's socket and its SSL object, and the
 * BIO that lets BoringSSL read and write them.
 *
 * BoringSSL's memory BIO moves the unread rest to the front on every read
 * and clears the memory it grows into; with a 1 MiB response taken out in
 * slabs, those moves were a third of the CPU. Here a read only advances an
 * offset, the front is reclaimed when the queue empties or an append needs
 * the room, and the caller can hand the queued ciphertext to the socket in
 * place (px_tls_conn_output).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls_internal.h"

/* Queues start at one block; released blocks are kept per thread, since a
 * keep-alive connection releases its queues after every request (so that
 * idle connections hold none) and takes them again for the next. */
#define BLOCK 4096
#define BLOCK_CACHE 64
static __thread char *block_cache[BLOCK_CACHE];
static __thread size_t blocks_cached;

void px_tls_thread_cleanup(void) {
  while (blocks_cached)
    free(block_cache[--blocks_cached]);
}

int px__tls_buf_append(px__tls_buf *b, const void *data, size_t n) {
  if (n == 0) return 0;
  if (b->cap == 0 && n <= BLOCK && blocks_cached) {
    b->data = block_cache[--blocks_cached];
    b->cap = BLOCK;
  }
  if (b->off + b->len + n > b->cap) {
    if (b->off) { /* reclaim the consumed front first */
      memmove(b->data, b->data + b->off, b->len);
      b->off = 0;
    }
    if (b->len + n > b->cap) {
      size_t cap = b->cap ? b->cap : BLOCK;
      while (cap < b->len + n)
        cap *= 2;
      char *p = realloc(b->data, cap);
      if (p == NULL) return -1;
      b->data = p;
      b->cap = cap;
    }
  }
  memcpy(b->data + b->off + b->len, data, n);
  b->len += n;
  return 0;
}

void px__tls_buf_consume(px__tls_buf *b, size_t n) {
  if (n > b->len) n = b->len;
  b->off += n;
  b->len -= n;
  if (b->len == 0) b->off = 0;
}

void px__tls_buf_release(px__tls_buf *b) {
  if (b->cap == BLOCK && blocks_cached < BLOCK_CACHE)
    block_cache[blocks_cached++] = b->data;
  else
    free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}

/* ---- the BIO ---------------------------------------------------------------- */

static int buf_write(BIO *bio, const char *in, int len) {
  if (len <= 0) return 0;
  return px__tls_buf_append(BIO_get_data(bio), in, (size_t)len) == 0 ? len : -1;
}

static int buf_read(BIO *bio, char *out, int len) {
  px__tls_buf *b = BIO_get_data(bio);
  BIO_clear_retry_flags(bio);
  if (b->len == 0) {
    BIO_set_retry_read(bio); /* SSL_ERROR_WANT_READ */
    return -1;
  }
  size_t n = (size_t)len < b->len ? (size_t)len : b->len;
  memcpy(out, b->data + b->off, n);
  px__tls_buf_consume(b, n);
  return (int)n;
}

static long buf_ctrl(BIO *bio, int cmd, long larg, void *parg) {
  px__tls_buf *b = BIO_get_data(bio);
  switch (cmd) {
  case BIO_CTRL_FLUSH:
    return 1; /* the caller sends the queue */
  case BIO_CTRL_PENDING:
    return b ? (long)b->len : 0;
  default:
    return 0;
  }
}

static int buf_create(BIO *bio) {
  BIO_set_init(bio, 1);
  return 1;
}

static BIO_METHOD *buf_method;
static pthread_once_t buf_method_once = PTHREAD_ONCE_INIT;

static void make_method(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | 0x0400 /* source/sink */, "portico queue");
  if (m && BIO_meth_set_write(m, buf_write) && BIO_meth_set_read(m, buf_read) &&
      BIO_meth_set_ctrl(m, buf_ctrl) && BIO_meth_set_create(m, buf_create))
    buf_method = m;
}

BIO *px__tls_buf_bio(px__tls_buf *b) {
  pthread_once(&buf_method_once, make_method);
  if (buf_method == NULL) return NULL;
  BIO *bio = BIO_new(buf_method);
  if (bio) BIO_set_data(bio, b);
  return bio;
}
