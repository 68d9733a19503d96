/*
 * What the stores (store_fs.c, store_redis.c) share: the one mapping from a
 * group, name and aspect to the identifier an item is stored under, so both
 * refuse exactly the same names and a name listed by one is accepted by the
 * other (`portico store copy`).
 */
#ifndef PX_ACME_STORE_INTERNAL_H
#define PX_ACME_STORE_INTERNAL_H

#include <stddef.h>

#include "acme/store.h"

/** Longest identifier px_store_item_id writes, with its NUL. */
#define PX_STORE_ID_MAX 264

/** The group's name in the layout ("accounts", "certs", ...), or NULL for
 *  a value outside the enum. */
const char *px_store_group_name(px_store_group g);

/**
 * Checks `aspect` for group `g` and writes the item's identifier to `out`:
 * a normalized DNS name ("*." stored as "_wildcard."), an http-01 token, or
 * for an account the CA id of its directory URL (a CA id itself is accepted
 * too, which is what `list` returns). -EINVAL for anything else, before any
 * I/O.
 */
int px_store_item_id(px_store_group g, const char *name, const char *aspect, char *out, size_t cap);

/** The name that px_store_item_id maps to `id` (the inverse, for `list`);
 *  -EINVAL when `id` is not one px_store_item_id would write. */
int px_store_name_of_id(px_store_group g, const char *id, char *out, size_t cap);

#endif
