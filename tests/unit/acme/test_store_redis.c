/*
 * Unit tests for acme/store_redis.c, store_open.c and store_copy.c against
 * a real redis-server this test starts on a free port (build.sh installs
 * it): items, encryption at rest, locks, challenge TTL, quarantine, list,
 * the update channel, AUTH, and Redis going away and coming back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "acme/cache_load.h"
#include "acme/store.h"
#include "acme/store_copy.h"
#include "acme/store_open.h"
#include "acme/store_redis.h"

static pid_t server_pid = -1;
static int server_port;
static char url[64];
static char tmpdir[64];

/* ---- the redis-server ---------------------------------------------------- */

static int free_port(void) {
  struct sockaddr_in a = {0};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM, 0), port;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A raw connection, for looking at what the store wrote. */
static redisContext *raw(void) {
  struct timeval tv = {2, 0};
  redisContext *c = redisConnectWithTimeout("127.0.0.1", server_port, tv);
  assert_non_null(c);
  if (c->err) {
    redisFree(c);
    return NULL;
  }
  return c;
}

static void start_server(void) {
  char port[16];
  snprintf(port, sizeof(port), "%d", server_port);
  server_pid = fork();
  assert_true(server_pid >= 0);
  if (server_pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
           "--appendonly", "no", "--dir", tmpdir, (char *)NULL);
    _exit(127);
  }
  /* Poll until it answers PING (at most 10 s). */
  for (int i = 0; i < 1000; i++) {
    redisContext *c = raw();
    if (c != NULL) {
      redisReply *r = redisCommand(c, "PING");
      int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
      if (r) freeReplyObject(r);
      redisFree(c);
      if (ok) return;
    }
    assert_int_equal(waitpid(server_pid, NULL, WNOHANG), 0); /* still running */
    sleep_ms(10);
  }
  fail_msg("redis-server did not answer on port %d", server_port);
}

static void stop_server(void) {
  if (server_pid <= 0) return;
  kill(server_pid, SIGKILL);
  waitpid(server_pid, NULL, 0);
  server_pid = -1;
}

static int on_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int group_setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/px-redis-XXXXXX");
  assert_non_null(mkdtemp(tmpdir));
  server_port = free_port();
  snprintf(url, sizeof(url), "redis://127.0.0.1:%d", server_port);
  start_server();
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  stop_server();
  nftw(tmpdir, on_rm, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* Every test starts on an empty server. */
static int setup(void **state) {
  (void)state;
  redisContext *c = raw();
  assert_non_null(c);
  freeReplyObject(redisCommand(c, "FLUSHALL"));
  redisFree(c);
  return 0;
}

static redisReply *raw_cmd(const char *fmt, const char *arg) {
  redisContext *c = raw();
  assert_non_null(c);
  redisReply *r = redisCommand(c, fmt, arg);
  assert_non_null(r);
  redisFree(c);
  return r;
}

static long long raw_int(const char *fmt, const char *arg) {
  redisReply *r = raw_cmd(fmt, arg);
  long long v = r->integer;
  assert_int_equal(r->type, REDIS_REPLY_INTEGER);
  freeReplyObject(r);
  return v;
}

static px_store *open_redis(const char *key_file, int64_t stale, int64_t challenge_ttl) {
  px_store_redis_options o = {0};
  px_store *s = NULL;
  char err[300] = "";
  o.url = url;
  o.key_file = key_file;
  o.lock_stale_after = stale;
  o.challenge_ttl = challenge_ttl;
  o.timeout_ms = 1000;
  int rc = px_store_redis_open(&o, &s, err, sizeof(err));
  if (rc != 0) fail_msg("open: %d %s", rc, err);
  return s;
}

static void write_file(const char *path, const void *data, size_t len) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, data, len), (ssize_t)len);
  close(fd);
}

static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0w"
    "\n-----END PRIVATE KEY-----\n";

/* ---- items --------------------------------------------------------------- */

static void test_items_round_trip(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0);
  char *data = NULL;
  size_t len = 0;

  assert_true(px_store_is_redis(s));
  assert_int_equal(px_store_cert_exists(s, "example.com"), 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), -ENOENT);
  assert_int_equal(px_store_cert_save(s, "Example.COM", PX_STORE_CERT_PEM, "CERT", 4), 0);
  assert_int_equal(px_store_cert_exists(s, "example.com"), 1);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), 0);
  assert_int_equal(len, 4);
  assert_string_equal(data, "CERT");
  px_store_data_free(data, len);
  /* The layout: prefix, group, normalized id, aspect; wildcards as fs. */
  assert_int_equal(raw_int("EXISTS %s", "portico:certs:example.com:cert.pem"), 1);
  assert_int_equal(px_store_cert_save(s, "*.example.com", PX_STORE_META_JSON, "{}", 2), 0);
  assert_int_equal(raw_int("EXISTS %s", "portico:certs:_wildcard.example.com:meta.json"), 1);
  assert_int_equal(raw_int("EXISTS %s", "portico:version"), 1);
  /* A save replaces the value; binary data survives. */
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "A\0B", 3), 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), 0);
  assert_int_equal(len, 3);
  assert_memory_equal(data, "A\0B", 3);
  px_store_data_free(data, len);
  /* Accounts by directory URL, failures, challenges. */
  assert_int_equal(s->ops->save(s, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_JSON,
                                "{\"kid\":1}", 9),
                   0);
  assert_int_equal(
      s->ops->exists(s, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_JSON), 1);
  assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, "a.example.com", NULL, "{}", 2), 0);
  assert_int_equal(raw_int("EXISTS %s", "portico:failures:a.example.com"), 1);
  assert_int_equal(s->ops->remove(s, PX_STORE_FAILURES, "a.example.com", NULL), 0);
  assert_int_equal(s->ops->remove(s, PX_STORE_FAILURES, "a.example.com", NULL), -ENOENT);
  /* Refused before any command: bad names, aspects, tokens, sizes. */
  assert_int_equal(px_store_cert_save(s, "../x", PX_STORE_CERT_PEM, "x", 1), -EINVAL);
  assert_int_equal(px_store_cert_save(s, "a_b.example.com", PX_STORE_CERT_PEM, "x", 1), -EINVAL);
  assert_int_equal(px_store_cert_save(s, "example.com", "other", "x", 1), -EINVAL);
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, "tok:en", NULL, "x", 1), -EINVAL);
  assert_int_equal(s->ops->save(s, PX_STORE_FAILURES, "example.com", "x", "x", 1), -EINVAL);
  char *big = calloc(1, PX_STORE_READ_MAX + 1);
  assert_int_equal(
      px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, big, PX_STORE_READ_MAX + 1), -EFBIG);
  free(big);
  px_store_close(s);
}

static void test_prefix_and_db(void **state) {
  (void)state;
  char u[80], err[300];
  px_store_redis_options o = {0};
  px_store *s = NULL;
  snprintf(u, sizeof(u), "%s/3", url);
  o.url = u;
  o.prefix = "fleet-a:";
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "C", 1), 0);
  px_store_close(s);
  assert_int_equal(raw_int("EXISTS %s", "fleet-a:certs:example.com:cert.pem"), 0); /* db 0 */
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "SELECT 3"));
  redisReply *r = redisCommand(c, "EXISTS fleet-a:certs:example.com:cert.pem");
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  freeReplyObject(redisCommand(c, "FLUSHDB"));
  redisFree(c);
}

/* ---- encryption at rest -------------------------------------------------- */

static void test_private_keys_encrypted(void **state) {
  (void)state;
  char hex_path[96], raw_path[96], other_path[96], *data = NULL;
  size_t len = 0;
  uint8_t rawkey[32];
  snprintf(hex_path, sizeof(hex_path), "%s/key.hex", tmpdir);
  snprintf(raw_path, sizeof(raw_path), "%s/key.raw", tmpdir);
  snprintf(other_path, sizeof(other_path), "%s/other.hex", tmpdir);
  write_file(hex_path, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 65);
  for (int i = 0; i < 32; i++)
    rawkey[i] = (uint8_t)i; /* the same key, raw */
  write_file(raw_path, rawkey, 32);
  write_file(other_path, "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", 64);

  px_store *s = open_redis(hex_path, 0, 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, key_pem, strlen(key_pem)),
                   0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "CERT", 4), 0);
  assert_int_equal(s->ops->save(s, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_KEY,
                                key_pem, strlen(key_pem)),
                   0);
  /* What a dump shows: neither PEM nor the plaintext. */
  redisReply *r = raw_cmd("GET %s", "portico:certs:example.com:key.pem");
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  assert_true(r->len > strlen(key_pem));
  assert_memory_equal(r->str, "PXE1", 4);
  assert_null(memmem(r->str, r->len, "BEGIN", 5));
  assert_null(memmem(r->str, r->len, "MIGHAgEAMBMG", 12));
  char first[512];
  size_t first_len = r->len;
  memcpy(first, r->str, r->len);
  freeReplyObject(r);
  /* The certificate itself is public and stays as it is. */
  r = raw_cmd("GET %s", "portico:certs:example.com:cert.pem");
  assert_string_equal(r->str, "CERT");
  freeReplyObject(r);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_KEY_PEM, &data, &len), 0);
  assert_int_equal(len, strlen(key_pem));
  assert_string_equal(data, key_pem);
  px_store_data_free(data, len);
  /* A new random nonce per write: the same key seals differently. */
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_KEY_PEM, key_pem, strlen(key_pem)),
                   0);
  r = raw_cmd("GET %s", "portico:certs:example.com:key.pem");
  assert_int_equal(r->len, first_len);
  assert_true(memcmp(r->str, first, first_len) != 0);
  freeReplyObject(r);
  /* However short the key: one byte seals and opens. */
  assert_int_equal(px_store_cert_save(s, "short.example.com", PX_STORE_KEY_PEM, "k", 1), 0);
  r = raw_cmd("GET %s", "portico:certs:short.example.com:key.pem");
  assert_int_equal(r->len, 4 + 12 + 1 + 16);
  freeReplyObject(r);
  assert_int_equal(px_store_cert_load(s, "short.example.com", PX_STORE_KEY_PEM, &data, &len), 0);
  assert_int_equal(len, 1);
  assert_string_equal(data, "k");
  px_store_data_free(data, len);
  px_store_close(s);

  /* The raw form of the same key opens it. */
  s = open_redis(raw_path, 0, 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_KEY_PEM, &data, &len), 0);
  assert_string_equal(data, key_pem);
  px_store_data_free(data, len);
  px_store_close(s);
  /* Another key, or none, does not. */
  s = open_redis(other_path, 0, 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_KEY_PEM, &data, &len), -EBADMSG);
  assert_null(data);
  px_store_close(s);
  s = open_redis(NULL, 0, 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_KEY_PEM, &data, &len), -ENOKEY);
  px_store_close(s);
  /* A sealed value moved to another name does not open there. */
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "COPY portico:certs:example.com:key.pem "
                                  "portico:certs:other.example.com:key.pem"));
  redisFree(c);
  s = open_redis(hex_path, 0, 0);
  assert_int_equal(px_store_cert_load(s, "other.example.com", PX_STORE_KEY_PEM, &data, &len),
                   -EBADMSG);
  px_store_close(s);
  /* Loading for serving with the wrong key sets nothing aside: the key
   * file is wrong, not the certificate. */
  s = open_redis(other_path, 0, 0);
  assert_null(px_acme_cache_load_cert(s, "example.com"));
  assert_int_equal(raw_int("EXISTS %s", "portico:certs:example.com:key.pem"), 1);
  assert_int_equal(raw_int("EXISTS %s", "portico:certs:example.com:cert.pem"), 1);
  px_store_close(s);
  /* A malformed key file is refused at open. */
  write_file(other_path, "not-hex", 7);
  px_store_redis_options o = {0};
  char err[300];
  o.url = url;
  o.key_file = other_path;
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "storage_key_file"));
}

/* ---- locks --------------------------------------------------------------- */

static void test_locks(void **state) {
  (void)state;
  px_store *a = open_redis(NULL, 300, 0), *b = open_redis(NULL, 300, 0);
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "order"), 0);
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "order"), 0); /* ours again */
  long long pttl = raw_int("PTTL %s", "portico:locks:example.com");
  assert_true(pttl > 290000 && pttl <= 300000);
  /* Another owner, in this store or another instance's. */
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "other"), -EBUSY);
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "order"), -EBUSY);
  assert_int_equal(b->ops->lock_refresh(b, "example.com", "order"), -EPERM);
  assert_int_equal(b->ops->lock_release(b, "example.com", "order"), -EPERM);
  assert_int_equal(raw_int("EXISTS %s", "portico:locks:example.com"), 1);
  assert_int_equal(a->ops->lock_refresh(a, "example.com", "order"), 0);
  assert_int_equal(a->ops->lock_release(a, "example.com", "order"), 0);
  assert_int_equal(a->ops->lock_release(a, "example.com", "order"), -ENOENT);
  assert_int_equal(a->ops->lock_refresh(a, "example.com", "order"), -ENOENT);
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "order"), 0);
  assert_int_equal(b->ops->lock_release(b, "example.com", "order"), 0);
  assert_int_equal(a->ops->lock_acquire(a, "bad_name", "order"), -EINVAL);
  assert_int_equal(a->ops->lock_acquire(a, "example.com", ""), -EINVAL);
  px_store_close(a);
  px_store_close(b);
}

static void test_lock_takeover_after_ttl(void **state) {
  (void)state;
  px_store *a = open_redis(NULL, 1, 0), *b = open_redis(NULL, 1, 0);
  struct timespec t0, t1;
  int rc = -EBUSY;
  assert_int_equal(a->ops->lock_acquire(a, "example.com", "order"), 0);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  assert_int_equal(b->ops->lock_acquire(b, "example.com", "order"), -EBUSY);
  /* A refreshes no more (killed): B gets the lock once the TTL ran out. */
  for (int i = 0; i < 300 && rc == -EBUSY; i++) {
    rc = b->ops->lock_acquire(b, "example.com", "order");
    if (rc == -EBUSY) sleep_ms(10);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  assert_int_equal(rc, 0);
  long elapsed = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
  assert_true(elapsed >= 900);
  /* The old holder cannot refresh or release the new holder's lock. */
  assert_int_equal(a->ops->lock_refresh(a, "example.com", "order"), -EPERM);
  assert_int_equal(a->ops->lock_release(a, "example.com", "order"), -EPERM);
  assert_int_equal(b->ops->lock_release(b, "example.com", "order"), 0);
  px_store_close(a);
  px_store_close(b);
}

/* ---- challenges, quarantine, list ---------------------------------------- */

static void test_challenge_ttl(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0);
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, "tok_EN-1", NULL, "tok.thumb", 9), 0);
  long long ttl = raw_int("PTTL %s", "portico:challenges:tok_EN-1");
  assert_true(ttl > 3590000 && ttl <= 3600000);
  px_store_close(s);
  s = open_redis(NULL, 0, 1);
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, "short", NULL, "x", 1), 0);
  assert_int_equal(s->ops->exists(s, PX_STORE_CHALLENGES, "short", NULL), 1);
  int exists = 1;
  for (int i = 0; i < 300 && exists == 1; i++) {
    exists = s->ops->exists(s, PX_STORE_CHALLENGES, "short", NULL);
    if (exists == 1) sleep_ms(10);
  }
  assert_int_equal(exists, 0);
  px_store_close(s);
}

static void test_quarantine(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "junk", 4), 0);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, "example.com", PX_STORE_CERT_PEM), 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), -ENOENT);
  redisReply *r = raw_cmd("KEYS %s", "portico:quarantine:certs:example.com:cert.pem:*");
  assert_int_equal(r->elements, 1);
  long long ttl = raw_int("TTL %s", r->element[0]->str);
  assert_true(ttl > 0 && ttl <= PX_STORE_REDIS_QUARANTINE_TTL);
  redisReply *v = raw_cmd("GET %s", r->element[0]->str);
  assert_string_equal(v->str, "junk");
  freeReplyObject(v);
  freeReplyObject(r);
  assert_int_equal(s->ops->quarantine(s, PX_STORE_CERTS, "example.com", PX_STORE_CERT_PEM),
                   -ENOENT);
  px_store_close(s);
}

typedef struct names {
  char v[16][80];
  int n;
} names;

static int collect(void *arg, const char *name) {
  names *ns = arg;
  assert_true(ns->n < 16);
  snprintf(ns->v[ns->n++], sizeof(ns->v[0]), "%s", name);
  return 0;
}

/* An address's key uses the fs store's id: no ':' inside the item id, so
 * the key's fields stay apart, and list maps it back. */
static void test_ip_names(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0);
  names ns = {0};
  assert_int_equal(px_store_cert_save(s, "[2001:db8::1]", PX_STORE_CERT_PEM, "x", 1), 0);
  redisContext *c = raw();
  redisReply *r = redisCommand(c, "EXISTS portico:certs:_ip6.2001-db8--1:cert.pem");
  assert_int_equal(r->integer, 1);
  freeReplyObject(r);
  redisFree(c);
  assert_int_equal(s->ops->list(s, PX_STORE_CERTS, collect, &ns), 1);
  assert_string_equal(ns.v[0], "[2001:db8::1]");
  px_store_close(s);
}

static void test_list(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0);
  names ns = {0};
  char *data = NULL;
  size_t len = 0;
  static const char *const aspects[] = {PX_STORE_CERT_PEM, PX_STORE_KEY_PEM, PX_STORE_META_JSON};
  for (int i = 0; i < 3; i++)
    assert_int_equal(px_store_cert_save(s, "a.example.com", aspects[i], "x", 1), 0);
  assert_int_equal(px_store_cert_save(s, "*.b.example.com", PX_STORE_CERT_PEM, "x", 1), 0);
  assert_int_equal(
      s->ops->save(s, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_KEY, "k", 1), 0);
  assert_int_equal(s->ops->save(s, PX_STORE_CHALLENGES, "tok1", NULL, "x", 1), 0);
  assert_int_equal(s->ops->lock_acquire(s, "c.example.com", "o"), 0); /* not an item */
  /* Keys that are not items are skipped. */
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "SET portico:certs:Bad_Name:cert.pem x"));
  freeReplyObject(redisCommand(c, "SET other:certs:z.example.com:cert.pem x"));
  redisFree(c);

  assert_int_equal(s->ops->list(s, PX_STORE_CERTS, collect, &ns), 2);
  assert_int_equal(ns.n, 2);
  assert_string_equal(ns.v[0], "*.b.example.com");
  assert_string_equal(ns.v[1], "a.example.com");
  ns.n = 0;
  assert_int_equal(s->ops->list(s, PX_STORE_ACCOUNTS, collect, &ns), 1);
  /* An account is listed by its CA id, which load accepts as its name. */
  assert_int_equal(s->ops->load(s, PX_STORE_ACCOUNTS, ns.v[0], PX_STORE_ACCOUNT_KEY, &data, &len),
                   0);
  assert_string_equal(data, "k");
  px_store_data_free(data, len);
  ns.n = 0;
  assert_int_equal(s->ops->list(s, PX_STORE_CHALLENGES, collect, &ns), 1);
  assert_string_equal(ns.v[0], "tok1");
  ns.n = 0;
  assert_int_equal(s->ops->list(s, PX_STORE_FAILURES, collect, &ns), 0);
  px_store_close(s);
}

/* ---- update channel ------------------------------------------------------ */

static void test_update_channel(void **state) {
  (void)state;
  px_store *a = open_redis(NULL, 0, 0), *b = open_redis(NULL, 0, 0);
  char name[256];
  assert_int_equal(px_store_redis_publish(a, "example.com"), 0); /* nobody listens yet */
  assert_true(px_store_redis_subscribe(b) >= 0);
  assert_int_equal(px_store_redis_wait_update(b, 0, name, sizeof(name)), 0);
  assert_int_equal(px_store_redis_publish(a, "example.com"), 1);
  assert_int_equal(px_store_redis_publish(a, "*.example.org"), 1);
  assert_int_equal(px_store_redis_wait_update(b, 2000, name, sizeof(name)), 1);
  assert_string_equal(name, "example.com");
  assert_int_equal(px_store_redis_wait_update(b, 2000, name, sizeof(name)), 1);
  assert_string_equal(name, "*.example.org");
  /* Nothing more: the wait times out. */
  assert_int_equal(px_store_redis_wait_update(b, 50, name, sizeof(name)), 0);
  /* Another prefix is another channel; junk on ours is skipped. */
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "PUBLISH other:updates example.net"));
  freeReplyObject(redisCommand(c, "PUBLISH portico:updates ../../etc"));
  redisFree(c);
  assert_int_equal(px_store_redis_wait_update(b, 100, name, sizeof(name)), 0);
  assert_int_equal(px_store_redis_publish(a, "bad_name"), -EINVAL);
  px_store *fs = NULL;
  char dir[96], err[200];
  snprintf(dir, sizeof(dir), "%s/fs-pub", tmpdir);
  assert_int_equal(px_store_open(dir, NULL, &fs, err, sizeof(err)), 0);
  assert_int_equal(px_store_redis_publish(fs, "example.com"), -ENOTSUP);
  px_store_close(fs);
  px_store_close(a);
  px_store_close(b);
}

/* ---- Redis away ---------------------------------------------------------- */

static void test_redis_restart(void **state) {
  (void)state;
  px_store *s = open_redis(NULL, 0, 0), *sub = open_redis(NULL, 0, 0);
  char *data = NULL, name[256];
  size_t len = 0;
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "C", 1), 0);
  assert_true(px_store_redis_subscribe(sub) >= 0);
  stop_server();
  /* Errors come back at once, as negative errnos. */
  int rc = px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len);
  assert_true(rc == -ECONNRESET || rc == -ECONNREFUSED);
  assert_null(data);
  rc = px_store_cert_exists(s, "example.com");
  assert_int_equal(rc, -ECONNREFUSED);
  assert_int_equal(s->ops->lock_acquire(s, "example.com", "o"), -ECONNREFUSED);
  rc = px_store_redis_wait_update(sub, 100, name, sizeof(name));
  assert_true(rc < 0);
  start_server(); /* empty: --save "" */
  /* The next calls reconnect (after the short pause that follows a failed
   * connect). */
  rc = -ECONNREFUSED;
  for (int i = 0; i < 300 && rc < 0; i++) {
    rc = px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "D", 1);
    if (rc < 0) sleep_ms(10);
  }
  assert_int_equal(rc, 0);
  assert_int_equal(px_store_cert_load(s, "example.com", PX_STORE_CERT_PEM, &data, &len), 0);
  assert_string_equal(data, "D");
  px_store_data_free(data, len);
  assert_true(px_store_redis_subscribe(sub) >= 0);
  assert_int_equal(px_store_redis_publish(s, "example.com"), 1);
  assert_int_equal(px_store_redis_wait_update(sub, 2000, name, sizeof(name)), 1);
  px_store_close(s);
  px_store_close(sub);
}

static void test_open_while_down(void **state) {
  (void)state;
  char u[64], err[300];
  px_store_redis_options o = {0};
  px_store *s = NULL;
  snprintf(u, sizeof(u), "redis://127.0.0.1:%d/0", free_port());
  o.url = u;
  /* Not reachable: the open succeeds (instances start and serve what they
   * have) and every call reports the error. */
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), 0);
  assert_int_equal(px_store_cert_exists(s, "example.com"), -ECONNREFUSED);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "x", 1), -ECONNREFUSED);
  px_store_close(s);
}

/* ---- AUTH and URLs ------------------------------------------------------- */

static void test_auth(void **state) {
  (void)state;
  char pw[96], u[96], err[300];
  px_store_redis_options o = {0};
  px_store *s = NULL;
  snprintf(pw, sizeof(pw), "%s/password", tmpdir);
  write_file(pw, "s3cret-pw\n", 10);
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "ACL SETUSER alice on >alice-pw ~* &* +@all"));
  freeReplyObject(redisCommand(c, "CONFIG SET requirepass s3cret-pw"));
  redisFree(c);

  o.url = url;
  /* Without the password: refused at open, the error says why. */
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), -EACCES);
  assert_non_null(strstr(err, "authentication"));
  o.password_file = pw;
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), 0);
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "x", 1), 0);
  px_store_close(s);
  /* A user from the URL, and a wrong password that is never echoed. */
  snprintf(u, sizeof(u), "redis://alice@127.0.0.1:%d/0", server_port);
  o.url = u;
  write_file(pw, "wrong-pw", 8);
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), -EACCES);
  assert_null(strstr(err, "wrong-pw"));
  write_file(pw, "alice-pw", 8);
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), 0);
  assert_int_equal(px_store_cert_exists(s, "example.com"), 1);
  px_store_close(s);
  o.password_file = NULL;
  assert_int_equal(px_store_redis_open(&o, &s, err, sizeof(err)), -EINVAL); /* user, no password */

  c = raw();
  freeReplyObject(redisCommand(c, "AUTH s3cret-pw"));
  freeReplyObject(redisCommand(c, "CONFIG SET requirepass %s", ""));
  freeReplyObject(redisCommand(c, "ACL DELUSER alice"));
  redisFree(c);
}

static void test_urls_and_dispatch(void **state) {
  (void)state;
  px_store_options o = {0};
  px_store *s = NULL;
  char err[300], dir[96], kf[96];

  assert_int_equal(px_store_open("rediss://127.0.0.1:6380/0", NULL, &s, err, sizeof(err)),
                   -ENOTSUP);
  assert_non_null(strstr(err, "stunnel"));
  assert_int_equal(px_store_open("redis://user:pw@127.0.0.1/0", NULL, &s, err, sizeof(err)),
                   -EINVAL);
  assert_null(strstr(err, "pw@"));
  assert_non_null(strstr(err, "storage_password_file"));
  assert_int_equal(px_store_open("redis://127.0.0.1:99999", NULL, &s, err, sizeof(err)), -EINVAL);
  assert_int_equal(px_store_open("redis://127.0.0.1:1/x", NULL, &s, err, sizeof(err)), -EINVAL);
  assert_int_equal(px_store_open("redis://:6379", NULL, &s, err, sizeof(err)), -EINVAL);
  assert_int_equal(px_store_open("memcached://x", NULL, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "unknown scheme"));
  assert_null(s);

  /* A path is the filesystem store; Redis options there are refused. */
  snprintf(dir, sizeof(dir), "%s/fs-open", tmpdir);
  assert_int_equal(px_store_open(dir, NULL, &s, err, sizeof(err)), 0);
  assert_false(px_store_is_redis(s));
  assert_non_null(s->ops->list);
  px_store_close(s);
  snprintf(kf, sizeof(kf), "%s/k", tmpdir);
  o.key_file = kf;
  assert_int_equal(px_store_open(dir, &o, &s, err, sizeof(err)), -EINVAL);
  assert_non_null(strstr(err, "storage_key_file"));
  o.key_file = NULL;
  o.prefix = "p:";
  assert_int_equal(px_store_open(url, &o, &s, err, sizeof(err)), 0);
  assert_true(px_store_is_redis(s));
  assert_int_equal(px_store_cert_save(s, "example.com", PX_STORE_CERT_PEM, "x", 1), 0);
  assert_int_equal(raw_int("EXISTS %s", "p:certs:example.com:cert.pem"), 1);
  px_store_close(s);
  /* Another layout version under the prefix is refused. */
  redisContext *c = raw();
  freeReplyObject(redisCommand(c, "SET v2:version 2"));
  redisFree(c);
  o.prefix = "v2:";
  assert_int_equal(px_store_open(url, &o, &s, err, sizeof(err)), -EPROTO);
  assert_non_null(strstr(err, "version"));
}

/* ---- copy ---------------------------------------------------------------- */

static void test_copy_fs_redis_fs(void **state) {
  (void)state;
  char dir1[96], dir2[96], kf[96], err[300], *data = NULL;
  size_t len = 0;
  px_store *fs1 = NULL, *fs2 = NULL, *r = NULL;
  px_store_options ro = {0};
  px_store_copy_counts n;

  snprintf(dir1, sizeof(dir1), "%s/copy-src", tmpdir);
  snprintf(dir2, sizeof(dir2), "%s/copy-back", tmpdir);
  snprintf(kf, sizeof(kf), "%s/copy.key", tmpdir);
  write_file(kf, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 64);
  assert_int_equal(px_store_open(dir1, NULL, &fs1, err, sizeof(err)), 0);
  assert_int_equal(px_store_cert_save(fs1, "a.example.com", PX_STORE_CERT_PEM, "CA", 2), 0);
  assert_int_equal(
      px_store_cert_save(fs1, "a.example.com", PX_STORE_KEY_PEM, key_pem, strlen(key_pem)), 0);
  assert_int_equal(px_store_cert_save(fs1, "a.example.com", PX_STORE_META_JSON, "{}", 2), 0);
  assert_int_equal(px_store_cert_save(fs1, "*.w.example.com", PX_STORE_CERT_PEM, "CW", 2), 0);
  assert_int_equal(fs1->ops->save(fs1, PX_STORE_ACCOUNTS, "https://ca.test/dir",
                                  PX_STORE_ACCOUNT_KEY, key_pem, strlen(key_pem)),
                   0);
  assert_int_equal(
      fs1->ops->save(fs1, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_JSON, "{}", 2),
      0);
  assert_int_equal(fs1->ops->save(fs1, PX_STORE_FAILURES, "f.example.com", NULL, "{}", 2), 0);
  assert_int_equal(fs1->ops->save(fs1, PX_STORE_CHALLENGES, "tok1", NULL, "ka", 2), 0);

  /* What the directory's list skips: temp files, stray names, a file
   * where an item's directory goes. */
  static const char *const strays[] = {"certs/.tmp.x",           "certs/Bad_Name",
                                       "failures/x.example.com", "challenges/.tmp.cert.pem.1",
                                       "accounts/not-a-ca-id",   "certs/file.example.com"};
  for (size_t i = 0; i < sizeof(strays) / sizeof(strays[0]); i++) {
    char path[160];
    snprintf(path, sizeof(path), "%s/%s", dir1, strays[i]);
    write_file(path, "x", 1);
  }
  ro.key_file = kf;
  assert_int_equal(px_store_open(url, &ro, &r, err, sizeof(err)), 0);
  assert_int_equal(px_store_copy(fs1, r, &n, stderr), 0);
  assert_int_equal(n.items[PX_STORE_CERTS], 2);
  assert_int_equal(n.items[PX_STORE_ACCOUNTS], 1);
  assert_int_equal(n.items[PX_STORE_FAILURES], 1);
  assert_int_equal(n.items[PX_STORE_CHALLENGES], 1);
  assert_int_equal(n.files, 4 + 2 + 1 + 1);
  assert_int_equal(n.errors, 0);
  /* In Redis: sealed keys, expiring challenges, the same account id. */
  redisReply *v = raw_cmd("GET %s", "portico:certs:a.example.com:key.pem");
  assert_null(memmem(v->str, v->len, "BEGIN", 5));
  freeReplyObject(v);
  assert_true(raw_int("TTL %s", "portico:challenges:tok1") > 0);
  assert_int_equal(
      r->ops->load(r, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_KEY, &data, &len),
      0);
  assert_string_equal(data, key_pem);
  px_store_data_free(data, len);

  /* And back into an empty directory: the same bytes. */
  assert_int_equal(px_store_open(dir2, NULL, &fs2, err, sizeof(err)), 0);
  assert_int_equal(px_store_copy(r, fs2, &n, stderr), 0);
  assert_int_equal(n.files, 8);
  assert_int_equal(px_store_cert_load(fs2, "a.example.com", PX_STORE_KEY_PEM, &data, &len), 0);
  assert_string_equal(data, key_pem);
  px_store_data_free(data, len);
  assert_int_equal(px_store_cert_load(fs2, "*.w.example.com", PX_STORE_CERT_PEM, &data, &len), 0);
  assert_string_equal(data, "CW");
  px_store_data_free(data, len);
  assert_int_equal(fs2->ops->exists(fs2, PX_STORE_FAILURES, "f.example.com", NULL), 1);
  assert_int_equal(fs2->ops->exists(fs2, PX_STORE_CHALLENGES, "tok1", NULL), 1);
  assert_int_equal(
      fs2->ops->exists(fs2, PX_STORE_ACCOUNTS, "https://ca.test/dir", PX_STORE_ACCOUNT_JSON), 1);
  px_store_close(fs1);
  px_store_close(fs2);
  px_store_close(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup(test_items_round_trip, setup),
      cmocka_unit_test_setup(test_prefix_and_db, setup),
      cmocka_unit_test_setup(test_private_keys_encrypted, setup),
      cmocka_unit_test_setup(test_locks, setup),
      cmocka_unit_test_setup(test_lock_takeover_after_ttl, setup),
      cmocka_unit_test_setup(test_challenge_ttl, setup),
      cmocka_unit_test_setup(test_quarantine, setup),
      cmocka_unit_test_setup(test_list, setup),
      cmocka_unit_test_setup(test_ip_names, setup),
      cmocka_unit_test_setup(test_update_channel, setup),
      cmocka_unit_test_setup(test_auth, setup),
      cmocka_unit_test_setup(test_urls_and_dispatch, setup),
      cmocka_unit_test_setup(test_copy_fs_redis_fs, setup),
      cmocka_unit_test_setup(test_open_while_down, setup),
      cmocka_unit_test_setup(test_redis_restart, setup),
  };
  signal(SIGPIPE, SIG_IGN);
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
