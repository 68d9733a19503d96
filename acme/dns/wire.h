/*
 * DNS messages on the wire (RFC 1035 §4): building queries and RFC 2136
 * UPDATE messages, and reading answers with every length checked against
 * the bytes received. Names are dotted strings without the trailing dot,
 * at most PX_DNS_NAME_MAX bytes.
 *
 * Error convention (acme/errors.h): 0 or a length on success, a negative
 * errno on failure (-EINVAL for a name or message it cannot use, -ENOSPC
 * when the output buffer is too small, -EBADMSG for a malformed answer).
 */
#ifndef PX_ACME_DNS_WIRE_H
#define PX_ACME_DNS_WIRE_H

#include <stddef.h>
#include <stdint.h>

/** Longest dotted name (RFC 1035 §2.3.4). */
#define PX_DNS_NAME_MAX 253
/** Largest message sent or read (TCP allows 65535; nothing here needs more). */
#define PX_DNS_MSG_MAX 65535
/** Most resource records read from one answer. */
#define PX_DNS_RR_MAX 64

/* RR types and classes used here. */
enum {
  PX_DNS_A = 1,
  PX_DNS_NS = 2,
  PX_DNS_CNAME = 5,
  PX_DNS_SOA = 6,
  PX_DNS_TXT = 16,
  PX_DNS_AAAA = 28,
  PX_DNS_TSIG = 250,
  PX_DNS_CAA = 257,
  PX_DNS_IN = 1,
  PX_DNS_NONE = 254,
  PX_DNS_ANY = 255,
};

/* RCODEs (RFC 1035 §4.1.1, RFC 2136 §2.2, RFC 8945 §3). */
enum {
  PX_DNS_NOERROR = 0,
  PX_DNS_FORMERR = 1,
  PX_DNS_SERVFAIL = 2,
  PX_DNS_NXDOMAIN = 3,
  PX_DNS_NOTIMP = 4,
  PX_DNS_REFUSED = 5,
  PX_DNS_NOTAUTH = 9,
  PX_DNS_NOTZONE = 10,
  PX_DNS_BADSIG = 16,
  PX_DNS_BADKEY = 17,
  PX_DNS_BADTIME = 18,
};

/** A message being built: bytes and the section counts, kept in the
 *  header as records are added. */
typedef struct px_dns_msg {
  uint8_t buf[PX_DNS_MSG_MAX];
  size_t len;
} px_dns_msg;

/** One resource record of a parsed answer: rdata points into the message. */
typedef struct px_dns_rr {
  char name[PX_DNS_NAME_MAX + 1];
  uint16_t type, cls;
  uint32_t ttl;
  size_t rdata_off; /**< offset of the rdata in the message */
  uint16_t rdlen;
  int section; /**< 1 answer, 2 authority, 3 additional */
} px_dns_rr;

/** A parsed answer. */
typedef struct px_dns_answer {
  uint16_t id, flags;
  int rcode; /**< the header's RCODE */
  int tc;    /**< truncated (RFC 1035 §4.1.1): ask again over TCP */
  px_dns_rr rr[PX_DNS_RR_MAX];
  size_t nrr;      /**< records kept (at most PX_DNS_RR_MAX; more are skipped) */
  size_t tsig_off; /**< offset of the TSIG record (the last additional), 0 when none */
  uint16_t arcount;
} px_dns_answer;

/** Starts a query for `name`/`type` (class IN) with `id`; `rd` asks a
 *  resolver to recurse. 0 or -EINVAL. */
int px_dns_build_query(px_dns_msg *m, uint16_t id, const char *name, uint16_t type, int rd);

/** Starts an UPDATE (RFC 2136 §2) of `zone` with `id` and no prerequisite. */
int px_dns_build_update(px_dns_msg *m, uint16_t id, const char *zone);

/** Adds an update RR: TXT `text` at `name` (RFC 2136 §2.5.1 with class IN
 *  and `ttl`; §2.5.4 "delete an RR from an RRset" with `del`). */
int px_dns_update_txt(px_dns_msg *m, const char *name, const char *text, uint32_t ttl, int del);

/** Writes `name` in wire form (lowercase, uncompressed) at `out`; the
 *  length, or a negative errno. */
int px_dns_name_to_wire(const char *name, uint8_t *out, size_t cap);

/** Parses `len` bytes of an answer. 0, or -EBADMSG. */
int px_dns_parse(const uint8_t *msg, size_t len, px_dns_answer *a);

/** An exchange's answer, parsed into a new px_dns_answer (free()): NULL
 *  with `*err` set to "out of memory" or "the DNS server sent a malformed
 *  answer". */
px_dns_answer *px_dns_parse_new(const uint8_t *msg, size_t len, const char **err);

/** Reads the domain name at `off` of `msg` (compression allowed, bounded)
 *  into `out` (PX_DNS_NAME_MAX + 1); the offset after it, or -EBADMSG. */
int px_dns_read_name(const uint8_t *msg, size_t len, size_t off, char *out);

/** The concatenated character-strings of a TXT rdata (RFC 1035 §3.3.14)
 *  into `out`; the length, or -EBADMSG / -ENOSPC. */
int px_dns_txt_text(const uint8_t *msg, size_t len, const px_dns_rr *rr, char *out, size_t cap);

/** A CAA rdata (RFC 8659 §4.1): its flags, tag and value (NUL-terminated,
 *  truncated to their buffers). 0 or -EBADMSG. */
int px_dns_caa(const uint8_t *msg, size_t len, const px_dns_rr *rr, int *flags, char *tag,
               size_t tag_cap, char *value, size_t value_cap);

/** A short name for an RCODE ("NOERROR", "NOTAUTH", ...). */
const char *px_dns_rcode_name(int rcode);

/** Compares dotted names without regard to case or a trailing dot. */
int px_dns_name_eq(const char *a, const char *b);

/** 1 when `name` is `zone` or below it. */
int px_dns_name_in_zone(const char *name, const char *zone);

#endif
