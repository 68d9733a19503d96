/*
 * The Redis store (acme/store_redis.h, docs/fleet.md).
 *
 * Keys, all under the prefix P:
 *   P version                        "1", as ROOT/version of the fs store
 *   P <group>:<id>:<aspect>          an account's or certificate's file
 *   P <group>:<id>                   a failure record or challenge (TTL)
 *   P locks:<id>                     issuance lock: a token, with a TTL
 *   P quarantine:<group>:<id>:...    an item set aside, with a TTL
 *   P updates                        the pub/sub channel of certificate updates
 * where <id> is px_store_item_id's (the fs store's directory or file name).
 *
 * Private keys (account.key, key.pem) are sealed with AES-256-GCM when a
 * key file is configured: "PXE1" || nonce(12) || ciphertext+tag, with the
 * key's name (without the prefix) as associated data, so a value moved to
 * another key does not open.
 */
#include "acme/store_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/aead.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include "acme/store_internal.h"
#include "tls/log.h"

#define HOST_MAX 255
#define PREFIX_MAX 64
#define OWNER_MAX 128
#define SECRET_MAX 512
#define KEY_MAX (PREFIX_MAX + 16 + PX_STORE_ID_MAX + 32 + 48)
#define SEAL_MAGIC "PXE1"
#define SEAL_NONCE 12
#define SEAL_TAG 16 /* AES-GCM's tag */
#define SEAL_OVERHEAD (4 + SEAL_NONCE + SEAL_TAG)
/* After a failed connect, calls fail at once for this long (ms), so a
 * blackholed server costs one timeout, not one per call. */
#define RECONNECT_PAUSE_MS 1000
/* At most one error line per this many ms (the rest are counted). */
#define LOG_INTERVAL_MS 5000
#define SCAN_COUNT "1000"

typedef struct redis_store {
  px_store base;
  pthread_mutex_t lock; /* guards ctx and the log state */
  redisContext *ctx;
  int64_t retry_at; /* monotonic ms before which no reconnect is tried */
  int last_error;   /* the error of the last failed connect */
  int failing;      /* an error was logged and no success since */
  int64_t log_at;   /* monotonic ms of the last error line */
  unsigned suppressed;
  pthread_mutex_t sub_lock; /* guards sub */
  redisContext *sub;
  char host[HOST_MAX + 1]; /* Redis host, port and db, for logs */
  int port, db;
  char user[128];
  char password[SECRET_MAX + 1];
  int has_password;
  char prefix[PREFIX_MAX + 1];
  uint8_t seal_key[32];
  int has_seal_key;
  int64_t lock_ttl_ms, challenge_ttl_s;
  int timeout_ms;
  char token_base[96]; /* "<host>:<pid>:<random>:" + owner makes a lock token */
} redis_store;

static const px_store_ops redis_ops;

/* ---- logging and errors -------------------------------------------------- */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One error line naming the server, at most every LOG_INTERVAL_MS. Called
 * with rs->lock held. The message never holds the password. */
static void log_error(redis_store *rs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_error(redis_store *rs, const char *fmt, ...) {
  char msg[300];
  va_list ap;
  int64_t now = mono_ms();
  rs->failing = 1;
  if (rs->log_at != 0 && now - rs->log_at < LOG_INTERVAL_MS) {
    rs->suppressed++;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (rs->suppressed > 0)
    px_log(PX_LOG_ERROR, "store redis://%s:%d/%d: %s (%u similar errors not shown)", rs->host,
           rs->port, rs->db, msg, rs->suppressed);
  else
    px_log(PX_LOG_ERROR, "store redis://%s:%d/%d: %s", rs->host, rs->port, rs->db, msg);
  rs->log_at = now;
  rs->suppressed = 0;
}

/* The errno behind a hiredis connection error. hiredis 0.14 keeps only the
 * strerror() text of I/O errors, so it is matched back. */
static int context_errno(const redisContext *c) {
  static const int known[] = {ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH,  ENETUNREACH,
                              ECONNRESET,   EPIPE,     EADDRNOTAVAIL, ECONNABORTED};
  if (c == NULL) return -ENOMEM;
  if (c->err == REDIS_ERR_EOF) return -ECONNRESET;
  if (c->err == REDIS_ERR_OOM) return -ENOMEM;
  if (c->err == REDIS_ERR_PROTOCOL) return -EPROTO;
  if (c->err == REDIS_ERR_IO) {
    /* A command timeout on a blocking socket reads as EAGAIN. */
    if (strcmp(c->errstr, strerror(EAGAIN)) == 0) return -ETIMEDOUT;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
      if (strcmp(c->errstr, strerror(known[i])) == 0) return -known[i];
    return -EIO;
  }
  return -EHOSTUNREACH; /* REDIS_ERR_OTHER: name resolution and the like */
}

/* The errno for an error reply ("NOAUTH ...", "WRONGPASS ...", ...). */
static int reply_errno(const redisReply *r) {
  static const struct {
    const char *code;
    int err;
  } codes[] = {{"NOAUTH", EACCES},  {"WRONGPASS", EACCES}, {"NOPERM", EACCES},
               {"LOADING", EAGAIN}, {"BUSY", EAGAIN},      {"READONLY", EROFS},
               {"OOM", ENOSPC},     {"MASTERDOWN", EAGAIN}};
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
    size_t n = strlen(codes[i].code);
    if (r->len >= n && strncmp(r->str, codes[i].code, n) == 0) return -codes[i].err;
  }
  return -EIO;
}

/* ---- connection ---------------------------------------------------------- */

/* A command, built up argument by argument (binary-safe). */
typedef struct args {
  const char *v[8];
  size_t len[8];
  int n;
} args;

static void arg(args *a, const void *p, size_t len) {
  a->v[a->n] = p;
  a->len[a->n++] = len;
}

static void arg_s(args *a, const char *s) { arg(a, s, strlen(s)); }

/* Runs one command on `c`; 0 with the reply, or a negative errno. An error
 * reply is freed and returned as its errno, with its text in `why`. */
static int command(redisContext *c, args *a, redisReply **out, char *why, size_t cap) {
  redisReply *r = redisCommandArgv(c, a->n, a->v, a->len);
  *out = NULL;
  if (r == NULL) {
    snprintf(why, cap, "%s", c->errstr);
    return context_errno(c);
  }
  if (r->type == REDIS_REPLY_ERROR) {
    int rc = reply_errno(r);
    snprintf(why, cap, "%.*s", (int)(r->len > 200 ? 200 : r->len), r->str);
    freeReplyObject(r);
    return rc;
  }
  *out = r;
  return 0;
}

/* Connects, authenticates and selects the database. Returns the context
 * or NULL with the errno in *rc and the reason in `why`. */
static redisContext *connect_to(redis_store *rs, int *rc, char *why, size_t cap) {
  struct timeval tv = {rs->timeout_ms / 1000, (rs->timeout_ms % 1000) * 1000};
  redisContext *c = redisConnectWithTimeout(rs->host, rs->port, tv);
  redisReply *r = NULL;
  char db[16];
  args a = {0};

  if (c == NULL || c->err) {
    *rc = context_errno(c);
    snprintf(why, cap, "cannot connect: %s", c != NULL ? c->errstr : "out of memory");
    if (c != NULL) redisFree(c);
    return NULL;
  }
  redisSetTimeout(c, tv);
  if (rs->has_password) {
    arg_s(&a, "AUTH");
    if (rs->user[0] != '\0') arg_s(&a, rs->user);
    arg_s(&a, rs->password);
    *rc = command(c, &a, &r, why, cap);
    if (*rc != 0) {
      /* The reply text names neither the password nor its length. */
      char reason[220];
      snprintf(reason, sizeof(reason), "%s", why);
      snprintf(why, cap, "AUTH failed: %s", reason);
      redisFree(c);
      return NULL;
    }
    freeReplyObject(r);
  }
  if (rs->db != 0) {
    a.n = 0;
    snprintf(db, sizeof(db), "%d", rs->db);
    arg_s(&a, "SELECT");
    arg_s(&a, db);
    *rc = command(c, &a, &r, why, cap);
    if (*rc != 0) {
      redisFree(c);
      return NULL;
    }
    freeReplyObject(r);
  }
  *rc = 0;
  return c;
}

/* Runs a command on the store's connection, connecting first if needed.
 * After a connection error the connection is dropped (the next call
 * reconnects) and the error is logged. Called with rs->lock held. */
static int run_locked(redis_store *rs, args *a, redisReply **out) {
  char why[256];
  int rc;

  *out = NULL;
  if (rs->ctx == NULL) {
    if (mono_ms() < rs->retry_at) return rs->last_error;
    rs->ctx = connect_to(rs, &rc, why, sizeof(why));
    if (rs->ctx == NULL) {
      rs->last_error = rc;
      rs->retry_at = mono_ms() + RECONNECT_PAUSE_MS;
      log_error(rs, "%s; the store is unavailable until it answers", why);
      return rc;
    }
    if (rs->failing)
      px_log(PX_LOG_INFO, "store redis://%s:%d/%d: reachable again", rs->host, rs->port, rs->db);
    rs->failing = 0;
  }
  rc = command(rs->ctx, a, out, why, sizeof(why));
  if (rc != 0 && rs->ctx->err != 0) {
    log_error(rs, "%s failed: %s; reconnecting at the next call", a->v[0], why);
    redisFree(rs->ctx);
    rs->ctx = NULL;
  } else if (rc != 0) {
    log_error(rs, "%s failed: %s", a->v[0], why);
  }
  return rc;
}

static int run(redis_store *rs, args *a, redisReply **out) {
  pthread_mutex_lock(&rs->lock);
  int rc = run_locked(rs, a, out);
  pthread_mutex_unlock(&rs->lock);
  return rc;
}

/* Runs a command whose reply is an integer; returns it (>= 0 expected) or
 * a negative errno. */
static int run_int(redis_store *rs, args *a, long long *value) {
  redisReply *r;
  int rc = run(rs, a, &r);
  if (rc != 0) return rc;
  rc = r->type == REDIS_REPLY_INTEGER ? 0 : -EPROTO;
  *value = r->integer;
  freeReplyObject(r);
  return rc;
}

/* ---- keys and sealing ---------------------------------------------------- */

/* Writes "<group>:<id>[:<aspect>]" (the key without the prefix) to out. */
static int item_key(px_store_group g, const char *name, const char *aspect, char *out, size_t cap) {
  char id[PX_STORE_ID_MAX];
  int rc = px_store_item_id(g, name, aspect, id, sizeof(id)), n;
  if (rc != 0) return rc;
  n = snprintf(out, cap, "%s:%s%s%s", px_store_group_name(g), id, aspect ? ":" : "",
               aspect ? aspect : "");
  return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int prefixed(const redis_store *rs, const char *key, char *out, size_t cap) {
  int n = snprintf(out, cap, "%s%s", rs->prefix, key);
  return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static int is_private_key(const char *aspect) {
  return aspect != NULL &&
         (strcmp(aspect, PX_STORE_KEY_PEM) == 0 || strcmp(aspect, PX_STORE_ACCOUNT_KEY) == 0);
}

static int is_sealed(const char *data, size_t len) {
  return len >= SEAL_OVERHEAD && memcmp(data, SEAL_MAGIC, 4) == 0;
}

/* Seals `data` for `key` into a malloc'd buffer. */
static int seal(const redis_store *rs, const char *key, const void *data, size_t len, uint8_t **out,
                size_t *out_len) {
  EVP_AEAD_CTX ctx;
  size_t cap = len + SEAL_OVERHEAD, n = 0;
  uint8_t *buf = malloc(cap);
  int ok;

  if (buf == NULL) return -ENOMEM;
  memcpy(buf, SEAL_MAGIC, 4);
  RAND_bytes(buf + 4, SEAL_NONCE);
  if (!EVP_AEAD_CTX_init(&ctx, EVP_aead_aes_256_gcm(), rs->seal_key, sizeof(rs->seal_key),
                         EVP_AEAD_DEFAULT_TAG_LENGTH, NULL)) {
    free(buf);
    return -EIO;
  }
  ok = EVP_AEAD_CTX_seal(&ctx, buf + 4 + SEAL_NONCE, &n, cap - 4 - SEAL_NONCE, buf + 4, SEAL_NONCE,
                         data, len, (const uint8_t *)key, strlen(key));
  EVP_AEAD_CTX_cleanup(&ctx);
  if (!ok) {
    free(buf);
    return -EIO;
  }
  *out = buf;
  *out_len = 4 + SEAL_NONCE + n;
  return 0;
}

/* Opens a sealed value into `out` (capacity at least len); -EBADMSG when
 * it does not open with our key (another key, or tampered with). */
static int unseal(const redis_store *rs, const char *key, const char *data, size_t len, char *out,
                  size_t *out_len) {
  EVP_AEAD_CTX ctx;
  const uint8_t *p = (const uint8_t *)data;
  int ok;
  if (!EVP_AEAD_CTX_init(&ctx, EVP_aead_aes_256_gcm(), rs->seal_key, sizeof(rs->seal_key),
                         EVP_AEAD_DEFAULT_TAG_LENGTH, NULL))
    return -EIO;
  ok = EVP_AEAD_CTX_open(&ctx, (uint8_t *)out, out_len, len, p + 4, SEAL_NONCE, p + 4 + SEAL_NONCE,
                         len - 4 - SEAL_NONCE, (const uint8_t *)key, strlen(key));
  EVP_AEAD_CTX_cleanup(&ctx);
  return ok ? 0 : -EBADMSG;
}

/* ---- store operations ---------------------------------------------------- */

/* Runs "CMD <key of the item>", whose reply is an integer. */
static int item_int_command(redis_store *rs, const char *cmd, px_store_group g, const char *name,
                            const char *aspect, long long *n) {
  char key[KEY_MAX], full[KEY_MAX];
  args a = {0};
  int rc = item_key(g, name, aspect, key, sizeof(key));
  if (rc != 0 || (rc = prefixed(rs, key, full, sizeof(full))) != 0) return rc;
  arg_s(&a, cmd);
  arg_s(&a, full);
  return run_int(rs, &a, n);
}

static int redis_exists(px_store *s, px_store_group g, const char *name, const char *aspect) {
  long long n = 0;
  int rc = item_int_command((redis_store *)s, "EXISTS", g, name, aspect, &n);
  return rc != 0 ? rc : n > 0;
}

/* Turns a GET reply into the caller's buffer, opening a sealed key. */
static int load_value(redis_store *rs, const char *key, const char *aspect, const redisReply *r,
                      char **data, size_t *len) {
  /* Only keys are ever sealed: a certificate is returned as it is. */
  int sealed = is_private_key(aspect) && is_sealed(r->str, r->len), rc = 0;
  char *buf;

  if (r->len > PX_STORE_READ_MAX + (sealed ? SEAL_OVERHEAD : 0)) return -EFBIG;
  buf = malloc(r->len + 1);
  if (buf == NULL) return -ENOMEM;
  if (sealed) {
    if (!rs->has_seal_key) {
      pthread_mutex_lock(&rs->lock);
      log_error(rs, "%s%s is encrypted and no storage_key_file is set", rs->prefix, key);
      pthread_mutex_unlock(&rs->lock);
      free(buf);
      return -ENOKEY;
    }
    rc = unseal(rs, key, r->str, r->len, buf, len);
    if (rc != 0) {
      pthread_mutex_lock(&rs->lock);
      log_error(rs, "%s%s does not decrypt with storage_key_file (another key, or altered)",
                rs->prefix, key);
      pthread_mutex_unlock(&rs->lock);
      free(buf);
      return rc;
    }
  } else {
    if (rs->has_seal_key && is_private_key(aspect))
      px_log(PX_LOG_WARN, "store: %s%s is stored unencrypted; it is encrypted when next saved",
             rs->prefix, key);
    memcpy(buf, r->str, r->len);
    *len = r->len;
  }
  buf[*len] = '\0';
  *data = buf;
  return 0;
}

static int redis_load(px_store *s, px_store_group g, const char *name, const char *aspect,
                      char **data, size_t *len) {
  redis_store *rs = (redis_store *)s;
  char key[KEY_MAX], full[KEY_MAX];
  redisReply *r;
  args a = {0};
  int rc = item_key(g, name, aspect, key, sizeof(key));

  *data = NULL;
  *len = 0;
  if (rc != 0 || (rc = prefixed(rs, key, full, sizeof(full))) != 0) return rc;
  arg_s(&a, "GET");
  arg_s(&a, full);
  if ((rc = run(rs, &a, &r)) != 0) return rc;
  if (r->type == REDIS_REPLY_NIL)
    rc = -ENOENT;
  else if (r->type != REDIS_REPLY_STRING)
    rc = -EPROTO;
  else
    rc = load_value(rs, key, aspect, r, data, len);
  if (r->type == REDIS_REPLY_STRING && is_private_key(aspect)) OPENSSL_cleanse(r->str, r->len);
  freeReplyObject(r);
  return rc;
}

static int redis_save(px_store *s, px_store_group g, const char *name, const char *aspect,
                      const void *data, size_t len) {
  redis_store *rs = (redis_store *)s;
  char key[KEY_MAX], full[KEY_MAX], ttl[24];
  uint8_t *sealed = NULL;
  size_t sealed_len = 0;
  redisReply *r;
  args a = {0};
  int rc = item_key(g, name, aspect, key, sizeof(key));

  if (rc != 0 || (rc = prefixed(rs, key, full, sizeof(full))) != 0) return rc;
  if (len > PX_STORE_READ_MAX) return -EFBIG; /* we could not read it back */
  if (rs->has_seal_key && is_private_key(aspect)) {
    if ((rc = seal(rs, key, data, len, &sealed, &sealed_len)) != 0) return rc;
    data = sealed;
    len = sealed_len;
  }
  /* One SET: a reader sees the old value or the new one. */
  arg_s(&a, "SET");
  arg_s(&a, full);
  arg(&a, data, len);
  if (g == PX_STORE_CHALLENGES) {
    snprintf(ttl, sizeof(ttl), "%lld", (long long)rs->challenge_ttl_s);
    arg_s(&a, "EX");
    arg_s(&a, ttl);
  }
  rc = run(rs, &a, &r);
  free(sealed);
  if (rc == 0) freeReplyObject(r);
  return rc;
}

static int redis_remove(px_store *s, px_store_group g, const char *name, const char *aspect) {
  long long n = 0;
  int rc = item_int_command((redis_store *)s, "DEL", g, name, aspect, &n);
  return rc != 0 ? rc : n > 0 ? 0 : -ENOENT;
}

/* Renames the item to a quarantine key that expires. */
static const char quarantine_lua[] = "if redis.call('exists', KEYS[1]) == 0 then return 0 end "
                                     "redis.call('rename', KEYS[1], KEYS[2]) "
                                     "redis.call('expire', KEYS[2], ARGV[1]) return 1";

static int redis_quarantine(px_store *s, px_store_group g, const char *name, const char *aspect) {
  redis_store *rs = (redis_store *)s;
  char key[KEY_MAX], full[KEY_MAX], qkey[KEY_MAX + PREFIX_MAX + 48], ttl[24];
  uint8_t rnd[4];
  long long n = 0;
  args a = {0};
  int rc = item_key(g, name, aspect, key, sizeof(key));

  if (rc != 0 || (rc = prefixed(rs, key, full, sizeof(full))) != 0) return rc;
  RAND_bytes(rnd, sizeof(rnd));
  /* The key stays sealed as it was: quarantine:<group>:<id>:<aspect>:<time>.<random> */
  snprintf(qkey, sizeof(qkey), "%squarantine:%s:%lld.%02x%02x%02x%02x", rs->prefix, key,
           (long long)time(NULL), rnd[0], rnd[1], rnd[2], rnd[3]);
  snprintf(ttl, sizeof(ttl), "%d", PX_STORE_REDIS_QUARANTINE_TTL);
  arg_s(&a, "EVAL");
  arg_s(&a, quarantine_lua);
  arg_s(&a, "2");
  arg_s(&a, full);
  arg_s(&a, qkey);
  arg_s(&a, ttl);
  rc = run_int(rs, &a, &n);
  if (rc == 0 && n > 0)
    px_log(PX_LOG_WARN, "store: %s%s moved to %s (kept %d days)", rs->prefix, key, qkey,
           PX_STORE_REDIS_QUARANTINE_TTL / 86400);
  return rc != 0 ? rc : n > 0 ? 0 : -ENOENT;
}

/* ---- locks --------------------------------------------------------------- */

/* Takes the lock, or extends it when it already holds our token. */
static const char acquire_lua[] =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end "
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end return 0";
/* Compare-and-set: 1 done, 0 another holder's, -1 no lock. */
static const char refresh_lua[] =
    "local v = redis.call('get', KEYS[1]) if not v then return -1 end "
    "if v ~= ARGV[1] then return 0 end redis.call('pexpire', KEYS[1], ARGV[2]) return 1";
static const char release_lua[] =
    "local v = redis.call('get', KEYS[1]) if not v then return -1 end "
    "if v ~= ARGV[1] then return 0 end redis.call('del', KEYS[1]) return 1";

/* Runs one of the lock scripts for `name` with our token for `owner`. */
static int lock_script(redis_store *rs, const char *script, const char *name, const char *owner,
                       long long *result) {
  char id[PX_STORE_ID_MAX], key[KEY_MAX], token[sizeof(rs->token_base) + OWNER_MAX + 1], ttl[24];
  args a = {0};
  int rc;

  if (owner == NULL || owner[0] == '\0' || strlen(owner) > OWNER_MAX) return -EINVAL;
  rc = px_store_item_id(PX_STORE_CERTS, name, PX_STORE_CERT_PEM, id, sizeof(id));
  if (rc != 0) return rc;
  if (snprintf(key, sizeof(key), "%slocks:%s", rs->prefix, id) >= (int)sizeof(key))
    return -ENAMETOOLONG;
  snprintf(token, sizeof(token), "%s%s", rs->token_base, owner);
  snprintf(ttl, sizeof(ttl), "%lld", (long long)rs->lock_ttl_ms);
  arg_s(&a, "EVAL");
  arg_s(&a, script);
  arg_s(&a, "1");
  arg_s(&a, key);
  arg_s(&a, token);
  arg_s(&a, ttl);
  return run_int(rs, &a, result);
}

static int redis_lock_acquire(px_store *s, const char *name, const char *owner) {
  long long r = 0;
  int rc = lock_script((redis_store *)s, acquire_lua, name, owner, &r);
  return rc != 0 ? rc : r == 1 ? 0 : -EBUSY;
}

/* Runs a compare-and-set script: 0, -EPERM (another holder's), -ENOENT. */
static int lock_holder_script(px_store *s, const char *script, const char *name,
                              const char *owner) {
  long long r = 0;
  int rc = lock_script((redis_store *)s, script, name, owner, &r);
  if (rc != 0) return rc;
  return r == 1 ? 0 : r == 0 ? -EPERM : -ENOENT;
}

static int redis_lock_refresh(px_store *s, const char *name, const char *owner) {
  return lock_holder_script(s, refresh_lua, name, owner);
}

static int redis_lock_release(px_store *s, const char *name, const char *owner) {
  return lock_holder_script(s, release_lua, name, owner);
}

/* ---- list ---------------------------------------------------------------- */

typedef struct id_list {
  char **v;
  size_t n, cap;
} id_list;

static int id_list_add(id_list *l, const char *id, size_t len) {
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 256;
    char **v = realloc(l->v, cap * sizeof(*v));
    if (v == NULL) return -ENOMEM;
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n] = strndup(id, len);
  return l->v[l->n++] == NULL ? -ENOMEM : 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes `s` to out with the glob characters of MATCH escaped. */
static void glob_escape(const char *s, char *out, size_t cap) {
  size_t o = 0;
  for (; *s != '\0' && o + 2 < cap; s++) {
    if (strchr("*?[]\\", *s) != NULL) out[o++] = '\\';
    out[o++] = *s;
  }
  out[o] = '\0';
}

/* SCANs the keys of group g (never KEYS, which blocks the server) and
 * collects the distinct ids. */
static int scan_ids(redis_store *rs, px_store_group g, id_list *ids) {
  char match[2 * PREFIX_MAX + 32], head[PREFIX_MAX + 32], cursor[32] = "0";
  size_t head_len;
  int rc;

  glob_escape(rs->prefix, match, sizeof(match) - 32);
  snprintf(match + strlen(match), 32, "%s:*", px_store_group_name(g));
  head_len = (size_t)snprintf(head, sizeof(head), "%s%s:", rs->prefix, px_store_group_name(g));
  do {
    redisReply *r;
    args a = {0};
    arg_s(&a, "SCAN");
    arg_s(&a, cursor);
    arg_s(&a, "MATCH");
    arg_s(&a, match);
    arg_s(&a, "COUNT");
    arg_s(&a, SCAN_COUNT);
    if ((rc = run(rs, &a, &r)) != 0) return rc;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
      freeReplyObject(r);
      return -EPROTO;
    }
    snprintf(cursor, sizeof(cursor), "%.*s", (int)r->element[0]->len, r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements && rc == 0; i++) {
      const redisReply *k = r->element[1]->element[i];
      const char *id, *end;
      if (k->type != REDIS_REPLY_STRING || k->len <= head_len ||
          memcmp(k->str, head, head_len) != 0)
        continue;
      id = k->str + head_len;
      end = memchr(id, ':', k->len - head_len);
      rc = id_list_add(ids, id, end != NULL ? (size_t)(end - id) : k->len - head_len);
    }
    freeReplyObject(r);
  } while (rc == 0 && strcmp(cursor, "0") != 0);
  return rc;
}

static int redis_list(px_store *s, px_store_group g, int (*fn)(void *, const char *), void *arg) {
  redis_store *rs = (redis_store *)s;
  char name[PX_STORE_ID_MAX + 2];
  id_list ids = {0};
  int rc, count = 0;

  if (px_store_group_name(g) == NULL) return -EINVAL;
  rc = scan_ids(rs, g, &ids);
  if (rc == 0 && ids.n > 0) qsort(ids.v, ids.n, sizeof(*ids.v), cmp_str);
  /* fn runs without the connection's lock: it may use this store. */
  for (size_t i = 0; rc == 0 && i < ids.n; i++) {
    if (i > 0 && strcmp(ids.v[i], ids.v[i - 1]) == 0) continue;
    if (px_store_name_of_id(g, ids.v[i], name, sizeof(name)) != 0) continue;
    count++;
    if (fn(arg, name) != 0) break;
  }
  for (size_t i = 0; i < ids.n; i++)
    free(ids.v[i]);
  free(ids.v);
  return rc != 0 ? rc : count;
}

/* ---- pub/sub ------------------------------------------------------------- */

int px_store_is_redis(const px_store *s) { return s != NULL && s->ops == &redis_ops; }

/* PUBLISH `payload` on <prefix>updates: the number of receivers. */
static int publish(redis_store *rs, const char *payload) {
  char channel[PREFIX_MAX + 16];
  long long n = 0;
  args a = {0};
  int rc;
  snprintf(channel, sizeof(channel), "%supdates", rs->prefix);
  arg_s(&a, "PUBLISH");
  arg_s(&a, channel);
  arg_s(&a, payload);
  rc = run_int(rs, &a, &n);
  return rc != 0 ? rc : (int)(n > 1000000 ? 1000000 : n);
}

int px_store_redis_publish(px_store *s, const char *name) {
  char id[PX_STORE_ID_MAX];
  int rc;

  if (!px_store_is_redis(s)) return -ENOTSUP;
  rc = px_store_item_id(PX_STORE_CERTS, name, PX_STORE_CERT_PEM, id, sizeof(id));
  if (rc != 0) return rc;
  return publish((redis_store *)s, name);
}

int px_store_redis_publish_challenge(px_store *s, const char *id) {
  char check[PX_STORE_ID_MAX], payload[PX_STORE_ID_MAX + 16];
  int rc;

  if (!px_store_is_redis(s)) return -ENOTSUP;
  rc = px_store_item_id(PX_STORE_CHALLENGES, id, NULL, check, sizeof(check));
  if (rc != 0) return rc;
  snprintf(payload, sizeof(payload), "%s%s", PX_STORE_REDIS_CHALLENGE_MSG, id);
  return publish((redis_store *)s, payload);
}

static void drop_sub(redis_store *rs) {
  if (rs->sub != NULL) redisFree(rs->sub);
  rs->sub = NULL;
}

/* Called with sub_lock held. */
static int subscribe_locked(redis_store *rs) {
  char why[256], channel[PREFIX_MAX + 16];
  redisReply *r;
  args a = {0};
  int rc;

  if (rs->sub != NULL) return rs->sub->fd;
  rs->sub = connect_to(rs, &rc, why, sizeof(why));
  if (rs->sub == NULL) {
    pthread_mutex_lock(&rs->lock);
    log_error(rs, "update channel: %s", why);
    pthread_mutex_unlock(&rs->lock);
    return rc;
  }
  snprintf(channel, sizeof(channel), "%supdates", rs->prefix);
  arg_s(&a, "SUBSCRIBE");
  arg_s(&a, channel);
  rc = command(rs->sub, &a, &r, why, sizeof(why));
  if (rc != 0) {
    drop_sub(rs);
    return rc;
  }
  freeReplyObject(r);
  return rs->sub->fd;
}

int px_store_redis_subscribe(px_store *s) {
  redis_store *rs = (redis_store *)s;
  int rc;
  if (!px_store_is_redis(s)) return -ENOTSUP;
  pthread_mutex_lock(&rs->sub_lock);
  rc = subscribe_locked(rs);
  pthread_mutex_unlock(&rs->sub_lock);
  return rc;
}

/* 1 with the name when `r` is a message of a valid certificate name. */
static int take_message(const redisReply *r, char *name, size_t cap) {
  char id[PX_STORE_ID_MAX];
  const redisReply *m;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
      r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
      r->element[2]->type != REDIS_REPLY_STRING)
    return 0;
  m = r->element[2];
  if (m->len >= cap || m->len >= PX_STORE_ID_MAX + 16) return 0;
  memcpy(name, m->str, m->len);
  name[m->len] = '\0';
  if (strncmp(name, PX_STORE_REDIS_CHALLENGE_MSG, strlen(PX_STORE_REDIS_CHALLENGE_MSG)) == 0)
    return px_store_item_id(PX_STORE_CHALLENGES, name + strlen(PX_STORE_REDIS_CHALLENGE_MSG), NULL,
                            id, sizeof(id)) == 0;
  return px_store_item_id(PX_STORE_CERTS, name, PX_STORE_CERT_PEM, id, sizeof(id)) == 0;
}

static int wait_locked(redis_store *rs, int timeout_ms, char *name, size_t cap) {
  int64_t deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  int rc = subscribe_locked(rs);
  if (rc < 0) return rc;
  for (;;) {
    void *reply = NULL;
    struct pollfd p = {rs->sub->fd, POLLIN, 0};
    int64_t left;
    if (redisGetReplyFromReader(rs->sub, &reply) != REDIS_OK) break;
    if (reply != NULL) {
      int got = take_message(reply, name, cap);
      freeReplyObject(reply);
      if (got) return 1;
      continue;
    }
    left = deadline - mono_ms();
    rc = poll(&p, 1, left > 0 ? (int)left : 0);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return -errno;
    if (rc == 0) return 0;
    if (redisBufferRead(rs->sub) != REDIS_OK) break;
  }
  rc = context_errno(rs->sub);
  pthread_mutex_lock(&rs->lock);
  log_error(rs, "update channel: %s; resubscribing at the next call", rs->sub->errstr);
  pthread_mutex_unlock(&rs->lock);
  drop_sub(rs);
  return rc;
}

int px_store_redis_wait_update(px_store *s, int timeout_ms, char *name, size_t cap) {
  redis_store *rs = (redis_store *)s;
  int rc;
  if (!px_store_is_redis(s)) return -ENOTSUP;
  if (name == NULL || cap == 0) return -EINVAL;
  pthread_mutex_lock(&rs->sub_lock);
  rc = wait_locked(rs, timeout_ms, name, cap);
  pthread_mutex_unlock(&rs->sub_lock);
  return rc;
}

/* ---- open and close ------------------------------------------------------ */

static void redis_destroy(px_store *s) {
  redis_store *rs = (redis_store *)s;
  if (rs->ctx != NULL) redisFree(rs->ctx);
  drop_sub(rs);
  pthread_mutex_destroy(&rs->lock);
  pthread_mutex_destroy(&rs->sub_lock);
  OPENSSL_cleanse(rs, sizeof(*rs));
  free(rs);
}

static const px_store_ops redis_ops = {
    redis_exists,       redis_load,         redis_save,         redis_remove,  redis_quarantine,
    redis_lock_acquire, redis_lock_refresh, redis_lock_release, redis_destroy, redis_list,
};

/* Parses redis://[user@]host[:port][/db]; a password in the URL is refused
 * (it would end up in logs and `ps`): it goes in a file. */
static int parse_url(redis_store *rs, const char *url, char *err, size_t errlen) {
  const char *p, *at, *end, *host_end, *colon;
  size_t n;

  if (strncmp(url, "rediss://", 9) == 0) {
    snprintf(err, errlen,
             "rediss:// is not supported: this build's hiredis (0.14) has no TLS; run a local "
             "TLS tunnel (stunnel) and point storage at redis://127.0.0.1:PORT (docs/fleet.md)");
    return -ENOTSUP;
  }
  if (strncmp(url, "redis://", 8) != 0) {
    snprintf(err, errlen, "not a redis:// URL");
    return -EINVAL;
  }
  p = url + 8;
  end = p + strcspn(p, "/?#");
  at = memchr(p, '@', (size_t)(end - p));
  if (at != NULL) {
    if (memchr(p, ':', (size_t)(at - p)) != NULL) {
      snprintf(err, errlen, "a password in the URL is refused: put it in storage_password_file");
      return -EINVAL;
    }
    n = (size_t)(at - p);
    if (n == 0 || n >= sizeof(rs->user)) {
      snprintf(err, errlen, "bad user name in the URL");
      return -EINVAL;
    }
    memcpy(rs->user, p, n);
    rs->user[n] = '\0';
    p = at + 1;
  }
  rs->port = 6379;
  if (*p == '[') { /* [IPv6]:port */
    host_end = memchr(p, ']', (size_t)(end - p));
    if (host_end == NULL) {
      snprintf(err, errlen, "bad IPv6 address in the URL");
      return -EINVAL;
    }
    p++;
    colon = host_end + 1 < end && host_end[1] == ':' ? host_end + 1 : NULL;
  } else {
    colon = memchr(p, ':', (size_t)(end - p));
    host_end = colon != NULL ? colon : end;
  }
  n = (size_t)(host_end - p);
  if (n == 0 || n > HOST_MAX) {
    snprintf(err, errlen, "no host in the URL");
    return -EINVAL;
  }
  memcpy(rs->host, p, n);
  rs->host[n] = '\0';
  if (colon != NULL) {
    char *stop;
    long port = strtol(colon + 1, &stop, 10);
    if (stop != end || port < 1 || port > 65535) {
      snprintf(err, errlen, "bad port in the URL");
      return -EINVAL;
    }
    rs->port = (int)port;
  } else if (*host_end == ']' && host_end + 1 != end) {
    snprintf(err, errlen, "bad port in the URL");
    return -EINVAL;
  }
  if (*end == '/' && end[1] != '\0') {
    char *stop;
    long db = strtol(end + 1, &stop, 10);
    if (*stop != '\0' || db < 0 || db > 1000000 || end[1] < '0' || end[1] > '9') {
      snprintf(err, errlen, "bad database number in the URL (redis://host:port/DB)");
      return -EINVAL;
    }
    rs->db = (int)db;
  } else if (*end != '\0' && strcmp(end, "/") != 0) {
    snprintf(err, errlen, "unexpected '%c' in the URL", *end);
    return -EINVAL;
  }
  return 0;
}

/* Reads a small secret file (at most `cap` bytes). Warns when others may
 * read it. */
static int read_secret(const char *path, const char *what, uint8_t *buf, size_t cap, size_t *len,
                       char *err, size_t errlen) {
  struct stat st;
  ssize_t got;
  int fd = open(path, O_RDONLY | O_CLOEXEC), rc;
  if (fd < 0) {
    rc = -errno;
    snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return rc;
  }
  if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
    px_log(PX_LOG_WARN, "%s %s has mode %04o: others may read it; use 0600", what, path,
           (unsigned)(st.st_mode & 07777));
  got = read(fd, buf, cap);
  rc = got < 0 ? -errno : 0;
  close(fd);
  if (rc != 0 || (size_t)got == cap) {
    snprintf(err, errlen, "%s %s: %s", what, path, rc != 0 ? strerror(-rc) : "too long");
    return rc != 0 ? rc : -EFBIG;
  }
  *len = (size_t)got;
  return 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* The key file: exactly 32 raw bytes, or 64 hex digits (a newline after
 * them is fine). */
static int load_seal_key(redis_store *rs, const char *path, char *err, size_t errlen) {
  uint8_t buf[130];
  size_t len = 0;
  int rc = read_secret(path, "storage_key_file", buf, sizeof(buf), &len, err, errlen);
  if (rc != 0) return rc;
  if (len == 32) {
    memcpy(rs->seal_key, buf, 32);
  } else {
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
      len--;
    for (size_t i = 0; len == 64 && i < 32; i++) {
      int hi = hex_value((char)buf[2 * i]), lo = hex_value((char)buf[2 * i + 1]);
      if (hi < 0 || lo < 0) len = 0;
      rs->seal_key[i] = (uint8_t)(hi << 4 | lo);
    }
    if (len != 64) {
      OPENSSL_cleanse(buf, sizeof(buf));
      snprintf(err, errlen, "storage_key_file %s: not 32 bytes nor 64 hex digits", path);
      return -EINVAL;
    }
  }
  OPENSSL_cleanse(buf, sizeof(buf));
  rs->has_seal_key = 1;
  return 0;
}

static int load_password(redis_store *rs, const char *path, char *err, size_t errlen) {
  size_t len = 0;
  int rc = read_secret(path, "storage_password_file", (uint8_t *)rs->password,
                       sizeof(rs->password) - 1, &len, err, errlen);
  if (rc != 0) return rc;
  rs->password[len] = '\0';
  rs->password[strcspn(rs->password, "\r\n")] = '\0';
  if (rs->password[0] == '\0') {
    snprintf(err, errlen, "storage_password_file %s is empty", path);
    return -EINVAL;
  }
  rs->has_password = 1;
  return 0;
}

/* Writes <prefix>version when absent and refuses another layout version. */
static int check_version(redis_store *rs, char *err, size_t errlen) {
  char key[PREFIX_MAX + 16];
  redisReply *r;
  args a = {0};
  int rc;

  snprintf(key, sizeof(key), "%sversion", rs->prefix);
  arg_s(&a, "SET");
  arg_s(&a, key);
  arg_s(&a, PX_STORE_VERSION);
  arg_s(&a, "NX");
  if ((rc = run(rs, &a, &r)) != 0) return rc;
  freeReplyObject(r);
  a.n = 0;
  arg_s(&a, "GET");
  arg_s(&a, key);
  if ((rc = run(rs, &a, &r)) != 0) return rc;
  if (r->type == REDIS_REPLY_STRING && strcmp(r->str, PX_STORE_VERSION) != 0) {
    snprintf(err, errlen, "%s holds layout version '%.16s', this portico writes %s", key, r->str,
             PX_STORE_VERSION);
    rc = -EPROTO;
  }
  freeReplyObject(r);
  return rc;
}

int px_store_redis_open(const px_store_redis_options *opt, px_store **out, char *err,
                        size_t errlen) {
  char hostname[64] = "unknown";
  uint8_t rnd[8];
  redis_store *rs;
  int rc;

  *out = NULL;
  if (opt == NULL || opt->url == NULL) {
    snprintf(err, errlen, "no URL");
    return -EINVAL;
  }
  rs = calloc(1, sizeof(*rs));
  if (rs == NULL) {
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  pthread_mutex_init(&rs->lock, NULL);
  pthread_mutex_init(&rs->sub_lock, NULL);
  rs->base.ops = &redis_ops;
  rc = parse_url(rs, opt->url, err, errlen);
  if (rc == 0 &&
      snprintf(rs->prefix, sizeof(rs->prefix), "%s",
               opt->prefix ? opt->prefix : PX_STORE_REDIS_PREFIX) >= (int)sizeof(rs->prefix)) {
    snprintf(err, errlen, "storage_prefix is longer than %d bytes", PREFIX_MAX);
    rc = -EINVAL;
  }
  if (rc == 0 && opt->password_file != NULL)
    rc = load_password(rs, opt->password_file, err, errlen);
  if (rc == 0 && rs->user[0] != '\0' && !rs->has_password) {
    snprintf(err, errlen, "a user in the URL needs storage_password_file");
    rc = -EINVAL;
  }
  if (rc == 0 && opt->key_file != NULL) rc = load_seal_key(rs, opt->key_file, err, errlen);
  if (rc != 0) {
    redis_destroy(&rs->base);
    return rc;
  }
  rs->lock_ttl_ms =
      1000 * (opt->lock_stale_after > 0 ? opt->lock_stale_after : PX_STORE_LOCK_STALE_DEFAULT);
  rs->challenge_ttl_s = opt->challenge_ttl > 0 ? opt->challenge_ttl : PX_STORE_REDIS_CHALLENGE_TTL;
  rs->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : PX_STORE_REDIS_TIMEOUT_MS;
  if (opt->host != NULL)
    snprintf(hostname, sizeof(hostname), "%s", opt->host);
  else
    gethostname(hostname, sizeof(hostname) - 1);
  RAND_bytes(rnd, sizeof(rnd));
  /* Unique per open store: two stores (or processes) never share a token. */
  snprintf(rs->token_base, sizeof(rs->token_base),
           "%.40s:%ld:%02x%02x%02x%02x%02x%02x%02x%02x:", hostname, (long)getpid(), rnd[0], rnd[1],
           rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
  rc = check_version(rs, err, errlen);
  if (rc == -EPROTO || rc == -EACCES) {
    if (rc == -EACCES)
      snprintf(err, errlen, "redis://%s:%d: authentication refused", rs->host, rs->port);
    redis_destroy(&rs->base);
    return rc;
  }
  if (rc != 0)
    px_log(PX_LOG_WARN,
           "store redis://%s:%d/%d: not reachable yet (%s); carrying on, the next "
           "call retries",
           rs->host, rs->port, rs->db, strerror(-rc));
  *out = &rs->base;
  return 0;
}
