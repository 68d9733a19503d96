/* Unit tests for tls/tls_buf.c: the ciphertext queues and their BIO. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/bio.h>

#include "tls/tls_internal.h"

static void fill(char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (char)((i * 31 + seed) & 0xff);
}

/* Bytes come out in order across growth, partial reads and front reclaim. */
static void test_queue_keeps_order(void **state) {
  (void)state;
  px__tls_buf b = {0};
  static char in[300000], out[300000];
  fill(in, sizeof(in), 7);
  size_t wrote = 0, read = 0;
  while (read < sizeof(in)) {
    size_t w = wrote + 5000 <= sizeof(in) ? 5000 : sizeof(in) - wrote;
    if (w) {
      assert_int_equal(px__tls_buf_append(&b, in + wrote, w), 0);
      wrote += w;
    }
    size_t r = b.len < 3333 ? b.len : 3333; /* slower than the writer */
    memcpy(out + read, b.data + b.off, r);
    px__tls_buf_consume(&b, r);
    read += r;
  }
  assert_memory_equal(in, out, sizeof(in));
  assert_int_equal(b.len, 0);
  assert_int_equal(b.off, 0); /* an empty queue starts over at the front */
  px__tls_buf_release(&b);
  assert_null(b.data);
}

/* Appending into a queue whose front was consumed reuses that room. */
static void test_front_is_reclaimed_before_growing(void **state) {
  (void)state;
  px__tls_buf b = {0};
  char chunk[3000];
  fill(chunk, sizeof(chunk), 1);
  for (int i = 0; i < 4; i++)
    assert_int_equal(px__tls_buf_append(&b, chunk, 1000), 0);
  size_t cap = b.cap;
  px__tls_buf_consume(&b, 3000);
  assert_int_equal(px__tls_buf_append(&b, chunk, 3000 > cap - 1000 ? cap - 1000 : 3000), 0);
  assert_int_equal(b.cap, cap);
  assert_int_equal(b.off, 0);
  px__tls_buf_release(&b);
}

/* The BIO: reads drain the queue and an empty queue asks to retry (what
 * BoringSSL turns into SSL_ERROR_WANT_READ); writes append; PENDING is the
 * queued length. */
static void test_bio_reads_writes_and_retries(void **state) {
  (void)state;
  px__tls_buf b = {0};
  BIO *bio = px__tls_buf_bio(&b);
  assert_non_null(bio);
  char buf[16];
  assert_int_equal(BIO_read(bio, buf, sizeof(buf)), -1);
  assert_true(BIO_should_retry(bio) && BIO_should_read(bio));
  assert_int_equal(BIO_write(bio, "hello world", 11), 11);
  assert_int_equal(BIO_pending(bio), 11);
  assert_int_equal(BIO_read(bio, buf, 5), 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(BIO_read(bio, buf, sizeof(buf)), 6);
  assert_memory_equal(buf, " world", 6);
  assert_int_equal(BIO_pending(bio), 0);
  assert_int_equal(BIO_flush(bio), 1);
  BIO_free(bio);
  px__tls_buf_release(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_keeps_order),
      cmocka_unit_test(test_front_is_reclaimed_before_growing),
      cmocka_unit_test(test_bio_reads_writes_and_retries),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
