/*
 * IP address literals as portico names them: the site host, the certificate
 * name in the cache and job, and the key of the challenge material.
 *
 * The canonical text is inet_ntop's (RFC 5952 for IPv6), an IPv6 address in
 * brackets ("[2001:db8::1]", the form a Host header carries, RFC 3986
 * §3.2.2), an IPv4 address in dotted decimal ("192.0.2.1"). The ACME
 * identifier (RFC 8738 §3) is the same text without brackets.
 *
 * Error convention: a length (>= 0) or -1; nothing is logged.
 */
#ifndef PX_TLS_IPNAME_H
#define PX_TLS_IPNAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** Room for the longest canonical IP name with its NUL (46 + brackets). */
#define PX_IP_NAME_MAX 48

/**
 * Reads an IPv4 literal ("192.0.2.1") or an IPv6 one with or without
 * brackets ("::1", "[::1]") and writes its canonical name. Returns its
 * length, or -1 when `in` is not an IP literal (or `cap` is too small).
 */
int px_ip_name_normalize(const char *in, size_t len, char *out, size_t cap);

/** 4 or 16 (the address's bytes in `out`) when `name` is a canonical IP
 *  name, else 0. */
int px_ip_name_bytes(const char *name, uint8_t out[16]);

/** Whether `name` is a canonical IP name. */
int px_ip_name_is(const char *name);

/** The ACME identifier value of a canonical IP name: the text without
 *  brackets (RFC 8738 §3). Returns its length or -1. */
int px_ip_name_bare(const char *name, char *out, size_t cap);

/**
 * Maps the reverse-DNS name a CA sends as SNI when validating tls-alpn-01
 * for an address (RFC 8738 §6: "4.3.2.1.in-addr.arpa", or 32 nibbles and
 * "ip6.arpa"; one trailing dot allowed, lowercase) back to the canonical IP
 * name. Returns its length, or -1 when `sni` is not such a name.
 */
int px_ip_name_from_reverse(const char *sni, char *out, size_t cap);

/** The canonical IP name of a socket address (an IPv4-mapped IPv6 address
 *  gives its IPv4 name). Returns its length or -1. */
int px_ip_name_from_sockaddr(const struct sockaddr *sa, char *out, size_t cap);

#endif
