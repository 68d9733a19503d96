/*
 * The PROXY protocol header (HAProxy's "PROXY protocol" specification,
 * versions 1 and 2) that an L4 load balancer sends before the client's
 * bytes, so the proxy behind it learns the client's address. Pure: no I/O,
 * fed from a buffer, fuzzed by tests/fuzz/fuzz_proxy_protocol.c.
 *
 * Error convention: px_proxy_parse returns the header's length, 0 when
 * more bytes are needed, or -1 when the bytes are not a valid header (the
 * connection is closed: nothing after a broken header can be trusted).
 */
#ifndef PX_PROXY_PROTOCOL_H
#define PX_PROXY_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

/** Longest version 1 header, "\r\n" included (spec §2.1). */
#define PX_PROXY_V1_MAX 107

/** Longest version 2 header accepted: the 16-byte preamble plus addresses
 *  and TLVs. The format allows 64 KiB; load balancers send well under
 *  a few hundred bytes, so more is refused rather than buffered. */
#define PX_PROXY_V2_MAX 1024

/** What a header says about the connection. */
typedef struct px_proxy_header {
  int version;     /**< 1 or 2 */
  int local;       /**< LOCAL (v2) or UNKNOWN (v1) or a non-TCP family: keep the
                        connection's own addresses */
  int family;      /**< AF_INET or AF_INET6 when !local */
  uint8_t src[16]; /**< the client's address: 4 or 16 bytes */
  uint16_t src_port;
} px_proxy_header;

/** Parses the header at the start of `buf` (`len` bytes received so far). */
long px_proxy_parse(const uint8_t *buf, size_t len, px_proxy_header *out);

#endif
