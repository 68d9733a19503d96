/*
 * Copying every item of one store into another (`portico store copy`):
 * accounts, certificates with all their files, failure records and
 * challenge material, fs to Redis or back.
 */
#ifndef PX_ACME_STORE_COPY_H
#define PX_ACME_STORE_COPY_H

#include <stddef.h>
#include <stdio.h>

#include "acme/store.h"

/** Room for every px_store_group value. */
#define PX_STORE_COPY_GROUPS 8

/** What a copy did. */
typedef struct px_store_copy_counts {
  size_t items[PX_STORE_COPY_GROUPS]; /**< names copied, by px_store_group */
  size_t files;                       /**< values (aspects) written */
  size_t errors;                      /**< values that could not be read or written */
} px_store_copy_counts;

/**
 * Copies every item of `src` into `dst`, overwriting what `dst` holds under
 * the same names and leaving its other items alone. An item that cannot be
 * read or written is reported on `errout` (its name and the error) and
 * counted, and the copy goes on. Returns 0 when everything was copied,
 * -EIO when some items failed, or a negative errno when a group could not
 * be listed (-ENOTSUP: `src` cannot list).
 */
int px_store_copy(px_store *src, px_store *dst, px_store_copy_counts *counts, FILE *errout);

#endif
