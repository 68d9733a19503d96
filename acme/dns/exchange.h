/*
 * One DNS request and its answer on a uv loop: over UDP, resent a few
 * times within the timeout, and again over TCP when the answer is
 * truncated (RFC 1035 §4.2.1, RFC 7766 §5). No system resolver is used:
 * servers are IP addresses.
 *
 * Error convention (acme/errors.h): the callback gets `err` NULL and the
 * answer bytes, or a sentence; it is never called from inside
 * px_dns_exchange_start, and never after px_dns_exchange_cancel.
 */
#ifndef PX_ACME_DNS_EXCHANGE_H
#define PX_ACME_DNS_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

/** Parses "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53" or "2001:db8::1"
 *  (port 53 when absent). 0, or -EINVAL. */
int px_dns_addr_parse(const char *s, struct sockaddr_storage *out);

/** Writes "ip:port" for logs. */
void px_dns_addr_str(const struct sockaddr_storage *a, char *out, size_t cap);

typedef struct px_dns_exchange px_dns_exchange;

/** Where the answer goes: `msg`/`len` are valid during the call only. */
typedef void (*px_dns_exchange_cb)(void *arg, const char *err, const uint8_t *msg, size_t len);

/**
 * Sends `msg` (`len` bytes, copied) to `server` and waits at most
 * `timeout_ms` for an answer with the same ID from that address. NULL when
 * out of memory (then `cb` is not called).
 */
px_dns_exchange *px_dns_exchange_start(uv_loop_t *loop, const struct sockaddr_storage *server,
                                       const uint8_t *msg, size_t len, uint64_t timeout_ms,
                                       px_dns_exchange_cb cb, void *arg);

/** Stops it: `cb` is not called; the memory goes once the handles close. */
void px_dns_exchange_cancel(px_dns_exchange *x);

#endif
