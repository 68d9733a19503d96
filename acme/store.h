/*
 * The on-disk cache: an interface (like mod_md's md_store) and its
 * filesystem implementation (store_fs.c). docs/cache.md describes the
 * layout. The cache is the source of truth shared by every instance that
 * mounts it; memory is only a cache of it.
 *
 * Error convention (acme/errors.h): 0 (or a count/flag where stated) on
 * success, a negative errno on failure. -EINVAL always means a name, token
 * or aspect was refused before any system call was made.
 *
 * Every call does blocking file I/O: run it on the certificate-manager
 * thread or the threadpool, never on a worker loop.
 */
#ifndef PX_ACME_STORE_H
#define PX_ACME_STORE_H

#include <stddef.h>
#include <stdint.h>

/** The layout version written to ROOT/version. */
#define PX_STORE_VERSION "1"
/** Largest file the store will read. */
#define PX_STORE_READ_MAX (1024 * 1024)
/** Default age after which a lock whose timestamp stopped moving is stale. */
#define PX_STORE_LOCK_STALE_DEFAULT 300

/** The kinds of things the cache holds. */
typedef enum px_store_group {
  PX_STORE_ACCOUNTS,   /**< name: the CA's directory URL */
  PX_STORE_CERTS,      /**< name: a DNS name or "*." + one */
  PX_STORE_FAILURES,   /**< name: as for CERTS; aspect NULL (read only to migrate
                            old caches to jobs) */
  PX_STORE_CHALLENGES, /**< name: an http-01 token, or "alpn-" + hex SHA-256 of a name
                            (acme/challenge_store.h); aspect NULL */
  PX_STORE_JOBS,       /**< name: as for CERTS (a job's first name); aspect NULL;
                            ROOT/jobs/<name>.json, 0600 (acme/life/job.h) */
  PX_STORE_DNS,        /**< name: "txt-" + hex, a dns-01 TXT record written and not yet
                            removed (acme/dns/dns01.h); aspect NULL */
} px_store_group;

/* The files ("aspects") of an account and of a certificate. */
#define PX_STORE_ACCOUNT_JSON "account.json"
#define PX_STORE_ACCOUNT_KEY "account.key"
#define PX_STORE_CERT_PEM "cert.pem"
#define PX_STORE_KEY_PEM "key.pem"
#define PX_STORE_META_JSON "meta.json"

typedef struct px_store px_store;

/** The operations every store implements. */
typedef struct px_store_ops {
  /** 1 when the item exists, 0 when not (a stat, never a read). */
  int (*exists)(px_store *s, px_store_group g, const char *name, const char *aspect);
  /** Reads an item (at most PX_STORE_READ_MAX bytes) into a malloc'd,
   *  NUL-terminated buffer; free it with px_store_data_free. */
  int (*load)(px_store *s, px_store_group g, const char *name, const char *aspect, char **data,
              size_t *len);
  /** Replaces an item atomically: readers see the old or the new bytes. */
  int (*save)(px_store *s, px_store_group g, const char *name, const char *aspect, const void *data,
              size_t len);
  /** Deletes an item; -ENOENT when absent. */
  int (*remove)(px_store *s, px_store_group g, const char *name, const char *aspect);
  /** Moves a corrupt item aside, out of the way of the next load. */
  int (*quarantine)(px_store *s, px_store_group g, const char *name, const char *aspect);
  /** Takes the cross-instance issuance lock for a name: 0, or -EBUSY while
   *  another owner holds it and it is not stale. */
  int (*lock_acquire)(px_store *s, const char *name, const char *owner);
  /** Proves the holder is alive (rewrites the timestamp); -EPERM if the lock
   *  is not ours, -ENOENT if it is gone. */
  int (*lock_refresh)(px_store *s, const char *name, const char *owner);
  /** Releases the lock only if we hold it; -EPERM otherwise. */
  int (*lock_release)(px_store *s, const char *name, const char *owner);
  /** Frees the store. */
  void (*destroy)(px_store *s);
  /** Optional (NULL when a store cannot): calls `fn` once for each item of
   *  group `g` with a name that load and save of any store accept (an
   *  account's is its CA id, see px_store_ca_id); `fn` returning non-zero
   *  stops the walk. Returns the number of names visited or a negative errno. */
  int (*list)(px_store *s, px_store_group g, int (*fn)(void *arg, const char *name), void *arg);
} px_store_ops;

/** Every store starts with this. */
struct px_store {
  const px_store_ops *ops;
};

/** Options of the filesystem store. Zero means the default. */
typedef struct px_store_fs_options {
  const char *root;         /**< cache directory, created 0700 if missing */
  int64_t lock_stale_after; /**< seconds; default PX_STORE_LOCK_STALE_DEFAULT */
  const char *host;         /**< recorded in locks; default gethostname() */
  /** Clock for lock timestamps (tests); default time(). */
  int64_t (*now)(void *arg);
  void *now_arg;
  /** Fault injection for tests: called before "open", "write", "fsync" and
   *  "rename" of an atomic write; non-zero makes that step fail with -EIO
   *  ("write" fails after writing half the bytes). */
  int (*fault)(void *arg, const char *step);
  void *fault_arg;
} px_store_fs_options;

/** Opens (creating if needed) the cache at opt->root and checks
 *  ROOT/version; -EPROTO when it holds another layout version. */
int px_store_fs_open(const px_store_fs_options *opt, px_store **out);

/** Writes the filesystem-safe id of a CA directory URL (host[_port] plus
 *  the first 16 hex digits of its SHA-256) to `out`. */
int px_store_ca_id(const char *directory_url, char *out, size_t cap);

/** Wipes and frees data returned by load (it may hold a key). */
void px_store_data_free(char *data, size_t len);

/** True when a certificate for `name` is in the cache: one stat, cheap
 *  enough for startup with 100,000 names. */
static inline int px_store_cert_exists(px_store *s, const char *name) {
  return s->ops->exists(s, PX_STORE_CERTS, name, PX_STORE_CERT_PEM);
}

/** Loads one file (aspect) of a certificate. */
static inline int px_store_cert_load(px_store *s, const char *name, const char *aspect, char **data,
                                     size_t *len) {
  return s->ops->load(s, PX_STORE_CERTS, name, aspect, data, len);
}

/** Saves one file (aspect) of a certificate atomically. */
static inline int px_store_cert_save(px_store *s, const char *name, const char *aspect,
                                     const void *data, size_t len) {
  return s->ops->save(s, PX_STORE_CERTS, name, aspect, data, len);
}

/** Closes a store (NULL is fine). */
static inline void px_store_close(px_store *s) {
  if (s != NULL) s->ops->destroy(s);
}

#endif
