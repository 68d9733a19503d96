/*
 * Address ranges for `trusted_proxies` (docs/config.md): "10.0.0.0/8",
 * "2001:db8::/32", or a bare address (a /32 or /128). IPv4-mapped IPv6
 * addresses (::ffff:a.b.c.d, what a dual-stack listener reports for an
 * IPv4 peer) match IPv4 ranges.
 *
 * Error convention: px_cidr_parse returns NULL or a static phrase that
 * completes "\"VALUE\" ..." in a config error.
 */
#ifndef PX_CIDR_H
#define PX_CIDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** One range: family AF_INET or AF_INET6, the network's bytes, the prefix. */
typedef struct px_cidr {
  int family;
  uint8_t addr[16]; /**< 4 bytes used for AF_INET; host bits are zero */
  int prefix;
} px_cidr;

/** Parses "ADDR" or "ADDR/PREFIX". Host bits set below the prefix are an
 *  error (a typo such as 10.0.0.1/8 usually means something else). */
const char *px_cidr_parse(const char *s, px_cidr *out);

/** True when the address (`family`, 4 or 16 bytes at `addr`) is inside
 *  one of `n` ranges. */
int px_cidr_match(const px_cidr *list, size_t n, int family, const uint8_t *addr);

/** px_cidr_match for a socket address (AF_INET or AF_INET6; others: 0). */
int px_cidr_match_sockaddr(const px_cidr *list, size_t n, const struct sockaddr *sa);

#endif
