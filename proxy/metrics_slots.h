/*
 * The label -> slot table of the metrics registry (proxy/metrics.h): each
 * site label and each (site, upstream address) pair gets a slot the first
 * time a configuration generation names it, and keeps it for the life of
 * the process, so its counters stay under its labels across reloads
 * (docs/metrics.md). The number of slots is fixed when the table is made.
 *
 * One writer at a time (start, then reloads under the reload lock) adds
 * slots; any thread may read the slots published so far (their count is
 * stored with release order after the labels are written, and loaded with
 * acquire order). Labels are copied: they outlive the configuration that
 * named them.
 *
 * Error convention: 0, or -1 when out of memory.
 */
#ifndef PX_METRICS_SLOTS_H
#define PX_METRICS_SLOTS_H

#include <stddef.h>
#include <stdint.h>

/** The slot of a series the table has no room for: not counted. */
#define PX_MSLOT_NONE UINT32_MAX

typedef struct px_mslots px_mslots;

/** A table of at most `site_cap` site slots and `up_cap` upstream slots
 *  (each below PX_MSLOT_NONE). NULL when out of memory. */
px_mslots *px_mslots_new(size_t site_cap, size_t up_cap);

/** Frees the table and its labels (NULL is fine). */
void px_mslots_free(px_mslots *t);

/** The slot of site `label` in `*slot`, made now if it is new, or
 *  PX_MSLOT_NONE when the table is full. */
int px_mslots_site(px_mslots *t, const char *label, uint32_t *slot);

/** The slot of upstream `addr` of the site in `site_slot` in `*slot`, made
 *  now if it is new; PX_MSLOT_NONE when the table is full or `site_slot` is
 *  PX_MSLOT_NONE. */
int px_mslots_upstream(px_mslots *t, uint32_t site_slot, const char *addr, uint32_t *slot);

/** Site slots in use (any thread). */
size_t px_mslots_nsites(const px_mslots *t);

/** Upstream slots in use (any thread). */
size_t px_mslots_nupstreams(const px_mslots *t);

/** The label of site slot `slot` (< px_mslots_nsites). */
const char *px_mslots_site_label(const px_mslots *t, size_t slot);

/** The site label and address of upstream slot `slot` (< px_mslots_nupstreams). */
void px_mslots_upstream_labels(const px_mslots *t, size_t slot, const char **site,
                               const char **addr);

/** The fixed capacities. */
size_t px_mslots_site_cap(const px_mslots *t);
size_t px_mslots_upstream_cap(const px_mslots *t);

#endif
