/*
 * Some C APIs take a non-const pointer to data they only read: libuv's
 * uv_buf_t, nghttp2's header name/value pairs, libyaml's node lookups,
 * OPENSSL_cleanse on a BIO's contents. px_unconst passes such a pointer
 * without a cast that -Wcast-qual would flag; every use is a place where
 * the callee is known not to write through it.
 */
#ifndef PX_TLS_UNCONST_H
#define PX_TLS_UNCONST_H

/** `p` as a non-const pointer, for an API that will not write through it. */
static inline void *px_unconst(const void *p) {
  union {
    const void *c;
    void *m;
  } u = {.c = p};
  return u.m;
}

#endif
