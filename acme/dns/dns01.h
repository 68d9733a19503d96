/*
 * The dns-01 challenge's DNS side (RFC 8555 §8.4): putting the TXT record
 * at _acme-challenge.NAME, waiting until the servers that matter answer
 * with it, and removing it afterwards, on the manager's uv loop.
 *
 *   present: follow a CNAME at _acme-challenge.NAME (bounded; the record is
 *            written at the target, in the target's zone), find the zone
 *            (acme.dns.zone when it holds the name, else the SOA), note the
 *            record in the store (crash recovery), write it (RFC 2136
 *            UPDATE signed with TSIG, or the hook `command present NAME
 *            VALUE`), then query each propagation server until every one
 *            returns the value, within propagation_timeout.
 *   cleanup: remove the record (RFC 2136 delete of that one RR, or `command
 *            cleanup NAME VALUE`) and the store's note.
 *   recover: at start-up, remove every record the store still notes (left
 *            by a process that died between write and cleanup).
 *
 * Error convention (acme/errors.h): constructors return NULL with a
 * sentence; present's callback gets `err` NULL or a sentence, never from
 * inside px_dns01_present and never after px_dns01_cleanup.
 */
#ifndef PX_ACME_DNS_DNS01_H
#define PX_ACME_DNS_DNS01_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "acme/dns/tsig.h"
#include "acme/store.h"

/** CNAMEs followed from _acme-challenge.NAME before giving up. */
#define PX_DNS01_CNAME_MAX 8
/** Most propagation servers (acme.dns.resolvers). */
#define PX_DNS01_RESOLVERS_MAX 8

/** acme.dns.provider */
typedef enum px_dns01_provider {
  PX_DNS01_NONE = 0,
  PX_DNS01_RFC2136,
  PX_DNS01_HOOK,
} px_dns01_provider;

typedef struct px_dns01_options {
  px_dns01_provider provider;
  struct sockaddr_storage server; /**< rfc2136: the primary taking updates */
  const char *zone;               /**< or NULL: found from the SOA */
  px_dns_tsig_key key;            /**< rfc2136 */
  char *const *command;           /**< hook: argv, NULL-terminated (borrowed) */
  uint64_t command_timeout_ms;    /**< hook: one run (60000) */
  uint64_t propagation_timeout_ms;
  struct sockaddr_storage resolvers[PX_DNS01_RESOLVERS_MAX];
  size_t nresolvers;
  uint64_t query_timeout_ms; /**< one DNS exchange (5000) */
  uint32_t ttl;              /**< of the TXT record (60) */
  px_store *store;           /**< notes of written records */
} px_dns01_options;

typedef struct px_dns01 px_dns01;
typedef struct px_dns01_op px_dns01_op;

/** Called once per present: err NULL when every server answers with it. */
typedef void (*px_dns01_cb)(void *arg, const char *err);

/** Creates the provider (options copied, the key too). NULL when out of memory. */
px_dns01 *px_dns01_new(uv_loop_t *loop, const px_dns01_options *o);

/**
 * Puts `value` at _acme-challenge.`name` (a wildcard's base name) and
 * waits for propagation. NULL when out of memory (cb not called). The
 * record stays until px_dns01_cleanup(op).
 */
px_dns01_op *px_dns01_present(px_dns01 *d, const char *name, const char *value, px_dns01_cb cb,
                              void *arg);

/** Removes the record of `op` (if written) and forgets `op`; the callback
 *  is not called after this. */
void px_dns01_cleanup(px_dns01_op *op);

/** Removes the records the store still notes. */
void px_dns01_recover(px_dns01 *d);

/** Stops everything (records being removed stay noted for the next start)
 *  and frees `d` once its handles have closed; keep running the loop. */
void px_dns01_free(px_dns01 *d);

#endif
