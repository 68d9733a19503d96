/*
 * The label -> slot table (proxy/metrics_slots.h): two append-only arrays
 * of labels, each with an open-addressing hash index (linear probing, at
 * most half full) that only the writer reads.
 */
#include "proxy/metrics_slots.h"

#include <stdlib.h>
#include <string.h>

typedef struct up_label {
  uint32_t site; /* site slot */
  char *addr;
} up_label;

struct px_mslots {
  size_t site_cap, up_cap;
  char **sites;   /* site_cap labels */
  up_label *ups;  /* up_cap labels */
  size_t nsites;  /* published with release order */
  size_t nups;    /* likewise */
  uint32_t *sidx; /* hash index of `sites`: slot + 1, 0 when empty */
  uint32_t *uidx; /* hash index of `ups` */
  size_t smask, umask;
};

/* FNV-1a: labels come from the configuration, not from clients. */
static uint64_t hash_str(uint64_t h, const char *s) {
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211u;
  return h;
}
#define FNV_BASIS 14695981039346656037u

/* A power of two at least twice `cap`: the index stays at most half full. */
static size_t index_size(size_t cap) {
  size_t n = 16;
  while (n < 2 * cap)
    n <<= 1;
  return n;
}

px_mslots *px_mslots_new(size_t site_cap, size_t up_cap) {
  if (site_cap >= PX_MSLOT_NONE || up_cap >= PX_MSLOT_NONE) return NULL;
  px_mslots *t = calloc(1, sizeof(*t));
  if (t == NULL) return NULL;
  t->site_cap = site_cap;
  t->up_cap = up_cap;
  size_t ns = index_size(site_cap), nu = index_size(up_cap);
  t->smask = ns - 1;
  t->umask = nu - 1;
  t->sites = calloc(site_cap ? site_cap : 1, sizeof(char *));
  t->ups = calloc(up_cap ? up_cap : 1, sizeof(up_label));
  t->sidx = calloc(ns, sizeof(uint32_t));
  t->uidx = calloc(nu, sizeof(uint32_t));
  if (t->sites == NULL || t->ups == NULL || t->sidx == NULL || t->uidx == NULL) {
    px_mslots_free(t);
    return NULL;
  }
  return t;
}

void px_mslots_free(px_mslots *t) {
  if (t == NULL) return;
  for (size_t i = 0; i < t->nsites; i++)
    free(t->sites[i]);
  for (size_t i = 0; i < t->nups; i++)
    free(t->ups[i].addr);
  free(t->sites);
  free(t->ups);
  free(t->sidx);
  free(t->uidx);
  free(t);
}

int px_mslots_site(px_mslots *t, const char *label, uint32_t *slot) {
  size_t i = (size_t)hash_str(FNV_BASIS, label) & t->smask;
  for (; t->sidx[i]; i = (i + 1) & t->smask)
    if (strcmp(t->sites[t->sidx[i] - 1], label) == 0) {
      *slot = t->sidx[i] - 1;
      return 0;
    }
  *slot = PX_MSLOT_NONE;
  if (t->nsites == t->site_cap) return 0;
  char *copy = strdup(label);
  if (copy == NULL) return -1;
  t->sites[t->nsites] = copy;
  t->sidx[i] = (uint32_t)t->nsites + 1;
  *slot = (uint32_t)t->nsites;
  __atomic_store_n(&t->nsites, t->nsites + 1, __ATOMIC_RELEASE);
  return 0;
}

int px_mslots_upstream(px_mslots *t, uint32_t site_slot, const char *addr, uint32_t *slot) {
  *slot = PX_MSLOT_NONE;
  if (site_slot == PX_MSLOT_NONE) return 0;
  size_t i =
      (size_t)hash_str(FNV_BASIS ^ ((uint64_t)site_slot * 0x9e3779b97f4a7c15u), addr) & t->umask;
  for (; t->uidx[i]; i = (i + 1) & t->umask) {
    const up_label *u = &t->ups[t->uidx[i] - 1];
    if (u->site == site_slot && strcmp(u->addr, addr) == 0) {
      *slot = t->uidx[i] - 1;
      return 0;
    }
  }
  if (t->nups == t->up_cap) return 0;
  char *copy = strdup(addr);
  if (copy == NULL) return -1;
  t->ups[t->nups] = (up_label){site_slot, copy};
  t->uidx[i] = (uint32_t)t->nups + 1;
  *slot = (uint32_t)t->nups;
  __atomic_store_n(&t->nups, t->nups + 1, __ATOMIC_RELEASE);
  return 0;
}

size_t px_mslots_nsites(const px_mslots *t) {
  return __atomic_load_n(&t->nsites, __ATOMIC_ACQUIRE);
}

size_t px_mslots_nupstreams(const px_mslots *t) {
  return __atomic_load_n(&t->nups, __ATOMIC_ACQUIRE);
}

const char *px_mslots_site_label(const px_mslots *t, size_t slot) { return t->sites[slot]; }

void px_mslots_upstream_labels(const px_mslots *t, size_t slot, const char **site,
                               const char **addr) {
  *site = t->sites[t->ups[slot].site];
  *addr = t->ups[slot].addr;
}

size_t px_mslots_site_cap(const px_mslots *t) { return t->site_cap; }
size_t px_mslots_upstream_cap(const px_mslots *t) { return t->up_cap; }
