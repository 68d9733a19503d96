/* Copies one store into another (acme/store_copy.h). */
#include "acme/store_copy.h"

#include <errno.h>
#include <string.h>

#include "acme/store_internal.h"

/* The groups and the files ("aspects") of their items; NULL: the item is
 * a single value. */
static const char *const account_aspects[] = {PX_STORE_ACCOUNT_JSON, PX_STORE_ACCOUNT_KEY, NULL};
static const char *const cert_aspects[] = {PX_STORE_CERT_PEM, PX_STORE_KEY_PEM, PX_STORE_META_JSON,
                                           NULL};
static const char *const single[] = {NULL};

static const struct {
  px_store_group group;
  const char *const *aspects;
} groups[] = {
    {PX_STORE_ACCOUNTS, account_aspects},
    {PX_STORE_CERTS, cert_aspects},
    {PX_STORE_FAILURES, single},
    {PX_STORE_CHALLENGES, single},
    {PX_STORE_JOBS, single},
    {PX_STORE_DNS, single},
};

typedef struct copy_state {
  px_store *src, *dst;
  px_store_group group;
  const char *const *aspects;
  px_store_copy_counts *counts;
  FILE *errout;
} copy_state;

/* Copies one value; 1 when copied, 0 when absent, negative on error. */
static int copy_value(copy_state *c, const char *name, const char *aspect) {
  char *data = NULL;
  size_t len = 0;
  int rc = c->src->ops->load(c->src, c->group, name, aspect, &data, &len);
  const char *step = "read";
  if (rc == -ENOENT) return 0;
  if (rc == 0) {
    step = "write";
    rc = c->dst->ops->save(c->dst, c->group, name, aspect, data, len);
  }
  px_store_data_free(data, len);
  if (rc != 0) {
    fprintf(c->errout, "store copy: %s %s%s%s: cannot %s: %s\n", px_store_group_name(c->group),
            name, aspect ? " " : "", aspect ? aspect : "", step, strerror(-rc));
    return rc;
  }
  return 1;
}

static int copy_item(void *arg, const char *name) {
  copy_state *c = arg;
  const char *const *aspect = c->aspects;
  int copied = 0;
  /* Each aspect in turn; a single-value group's list is just {NULL}. */
  do {
    int rc = copy_value(c, name, *aspect);
    if (rc < 0) {
      c->counts->errors++;
    } else if (rc > 0) {
      c->counts->files++;
      copied = 1;
    }
  } while (*aspect != NULL && *++aspect != NULL);
  if (copied) c->counts->items[c->group]++;
  return 0;
}

int px_store_copy(px_store *src, px_store *dst, px_store_copy_counts *counts, FILE *errout) {
  memset(counts, 0, sizeof(*counts));
  if (src->ops->list == NULL) return -ENOTSUP;
  for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
    copy_state c = {src, dst, groups[g].group, groups[g].aspects, counts, errout};
    int rc = src->ops->list(src, groups[g].group, copy_item, &c);
    if (rc < 0) {
      fprintf(errout, "store copy: cannot list %s: %s\n", px_store_group_name(groups[g].group),
              strerror(-rc));
      return rc;
    }
  }
  return counts->errors > 0 ? -EIO : 0;
}
