/*
 * Challenge material in the store (docs/cache.md, docs/fleet.md), so the
 * instance the CA happens to reach can answer for an order another
 * instance placed:
 *
 *  - http-01: the item is the token (RFC 8555 §8.3), found by the token
 *    the CA asks for;
 *  - tls-alpn-01: the CA's ClientHello names only the domain (RFC 8737
 *    §3), so the item is "alpn-" and the SHA-256 of the name in hex; the
 *    challenge certificate is built from the key authorization by
 *    whichever instance the CA reaches.
 *
 * The value is JSON: {"type","name","token","key_authorization"}. On Redis
 * it expires after an hour; on a directory the instance that published it
 * removes it when the authorization ends.
 *
 * Blocking store I/O: the certificate-manager thread only. Error
 * convention: acme/errors.h.
 */
#ifndef PX_ACME_CHALLENGE_STORE_H
#define PX_ACME_CHALLENGE_STORE_H

#include <stddef.h>

#include "acme/proto/client.h"
#include "acme/store.h"

/** Longest item id (the tls-alpn-01 one), with its NUL. */
#define PX_CHALLENGE_ID_MAX 80

/** Challenge material as read back from the store (all malloc'd). */
typedef struct px_challenge_item {
  px_acme_challenge_type type;
  char *name;
  char *token;
  char *key_authorization;
} px_challenge_item;

/** The store id of a challenge: the token for http-01, "alpn-<sha256 of
 *  name>" for tls-alpn-01. 0, or -EINVAL. */
int px_challenge_id(px_acme_challenge_type type, const char *name, const char *token, char *out,
                    size_t cap);

/** Saves the material under its id. 0 or a negative errno. */
int px_challenge_save(px_store *s, px_acme_challenge_type type, const char *name, const char *token,
                      const char *key_authorization);

/** Removes it; -ENOENT when it was not there. */
int px_challenge_remove(px_store *s, px_acme_challenge_type type, const char *name,
                        const char *token);

/** Loads the item stored under `id`: 0, -ENOENT, -EBADMSG (not ours: not
 *  JSON of that shape), or the store's error. */
int px_challenge_load(px_store *s, const char *id, px_challenge_item *out);

/** Frees what px_challenge_load filled in. */
void px_challenge_item_dispose(px_challenge_item *it);

#endif
