/*
 * Unit tests for the serving side of tls/ (tls_server.c, tls_conn.c):
 * in-memory handshakes between a px_tls_conn and a BoringSSL client with
 * memory BIOs. Keys and self-signed certificates are generated here into a
 * mkdtemp directory, so the test needs no files from tests/data.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/bio.h>
#include <openssl/ec_key.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/log.h"
#include "tls/tls.h"
#include "tls/tls_client.h"

/* The generated certificates: index = the spec index in the servers. */
enum { CERT_A, CERT_W, CERT_ANY, NCERTS };

typedef struct fixture {
  char dir[64];
  char cert_file[NCERTS][96];
  char key_file[NCERTS][96];
  X509 *cert[NCERTS];
  px_tls_server *named;     /* a.test, *.w.test */
  px_tls_server *catch_all; /* a.test, *.w.test, "*" */
  SSL_CTX *client_ctx;
  SSL_SESSION *session; /* the last session the client was handed */
} fixture;

static const char *const hosts_a[] = {"a.test"};
static const char *const hosts_w[] = {"*.w.test"};
static const char *const hosts_any[] = {"*"};
static const char *const alpn[] = {"h2", "http/1.1"};

/* --- certificate generation --------------------------------------------- */

static EVP_PKEY *new_p256_key(void) {
  EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  EVP_PKEY *pkey = EVP_PKEY_new();
  assert_non_null(ec);
  assert_non_null(pkey);
  assert_int_equal(EC_KEY_generate_key(ec), 1);
  assert_int_equal(EVP_PKEY_assign_EC_KEY(pkey, ec), 1);
  return pkey;
}

/* A self-signed certificate for `san` (a dNSName), valid for a day. */
static X509 *new_self_signed(EVP_PKEY *key, const char *san, long serial) {
  X509 *x = X509_new();
  assert_non_null(x);
  assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
  assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
  assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
  assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
  X509_NAME *name = X509_get_subject_name(x);
  assert_int_equal(
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const uint8_t *)san, -1, -1, 0), 1);
  assert_int_equal(X509_set_issuer_name(x, name), 1);
  assert_int_equal(X509_set_pubkey(x, key), 1);

  GENERAL_NAMES *gens = GENERAL_NAMES_new();
  GENERAL_NAME *gen = GENERAL_NAME_new();
  ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
  assert_non_null(gens);
  assert_non_null(gen);
  assert_non_null(ia5);
  assert_int_equal(ASN1_STRING_set(ia5, san, (int)strlen(san)), 1);
  GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
  assert_true(sk_GENERAL_NAME_push(gens, gen) > 0);
  assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
  GENERAL_NAMES_free(gens);

  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  return x;
}

static void write_file(const char *path, const char *data) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(fputs(data, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *key) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  if (x) assert_int_equal(PEM_write_X509(f, x), 1);
  if (key) assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
  assert_int_equal(fclose(f), 0);
}

static void path_in(char *out, size_t cap, const fixture *fx, const char *file) {
  int n = snprintf(out, cap, "%s/%s", fx->dir, file);
  assert_true(n > 0 && (size_t)n < cap);
}

static px_tls_server *make_server(const fixture *fx, size_t ncerts, char *err, size_t errlen) {
  const char *const *hosts[NCERTS] = {hosts_a, hosts_w, hosts_any};
  px_tls_cert_spec specs[NCERTS];
  memset(specs, 0, sizeof(specs));
  for (size_t i = 0; i < ncerts; i++) {
    specs[i].cert_file = fx->cert_file[i];
    specs[i].key_file = fx->key_file[i];
    specs[i].hosts = hosts[i];
    specs[i].nhosts = 1;
  }
  px_tls_server_opts opts = {.alpn = alpn, .nalpn = 2};
  return px_tls_server_new(specs, ncerts, &opts, err, errlen);
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess) {
  fixture *fx = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
  SSL_SESSION_free(fx->session);
  fx->session = sess; /* we keep the reference we are given */
  return 1;
}

static int setup(void **state) {
  static const char *const names[NCERTS] = {"a.test", "*.w.test", "fallback.test"};
  static const char *const files[NCERTS] = {"a", "w", "any"};
  fixture *fx = calloc(1, sizeof(*fx));
  assert_non_null(fx);
  snprintf(fx->dir, sizeof(fx->dir), "/tmp/px_test_tls.XXXXXX");
  assert_non_null(mkdtemp(fx->dir));

  fx->client_ctx = SSL_CTX_new(TLS_method());
  assert_non_null(fx->client_ctx);
  X509_STORE *store = SSL_CTX_get_cert_store(fx->client_ctx);
  for (int i = 0; i < NCERTS; i++) {
    char name[32];
    EVP_PKEY *key = new_p256_key();
    fx->cert[i] = new_self_signed(key, names[i], 100 + i);
    snprintf(name, sizeof(name), "%s.crt", files[i]);
    path_in(fx->cert_file[i], sizeof(fx->cert_file[i]), fx, name);
    snprintf(name, sizeof(name), "%s.key", files[i]);
    path_in(fx->key_file[i], sizeof(fx->key_file[i]), fx, name);
    write_pem(fx->cert_file[i], fx->cert[i], NULL);
    write_pem(fx->key_file[i], NULL, key);
    EVP_PKEY_free(key);
    assert_int_equal(X509_STORE_add_cert(store, fx->cert[i]), 1);
  }

  /* The client trusts exactly the generated certificates and keeps the
   * sessions it is handed (tickets) for the resumption test. */
  SSL_CTX_set_verify(fx->client_ctx, SSL_VERIFY_PEER, NULL);
  SSL_CTX_set_session_cache_mode(fx->client_ctx,
                                 SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_sess_set_new_cb(fx->client_ctx, on_new_session);
  SSL_CTX_set_app_data(fx->client_ctx, fx);

  char err[256] = "";
  fx->named = make_server(fx, 2, err, sizeof(err));
  assert_non_null(fx->named);
  fx->catch_all = make_server(fx, 3, err, sizeof(err));
  assert_non_null(fx->catch_all);
  *state = fx;
  return 0;
}

static void remove_file(const char *path) {
  if (path[0]) unlink(path);
}

static int teardown(void **state) {
  fixture *fx = *state;
  px_tls_server_free(fx->named);
  px_tls_server_free(fx->catch_all);
  SSL_SESSION_free(fx->session);
  SSL_CTX_free(fx->client_ctx);
  for (int i = 0; i < NCERTS; i++) {
    X509_free(fx->cert[i]);
    remove_file(fx->cert_file[i]);
    remove_file(fx->key_file[i]);
  }
  char path[128];
  static const char *const extra[] = {"garbage.pem", "mismatch.key"};
  for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
    path_in(path, sizeof(path), fx, extra[i]);
    remove_file(path);
  }
  rmdir(fx->dir);
  free(fx);
  return 0;
}

/* --- an in-memory client ------------------------------------------------ */

typedef struct client {
  SSL *ssl;
  BIO *rbio, *wbio; /* owned by ssl */
  int alert;        /* the last alert the client received, or -1 */
} client;

static void on_client_info(const SSL *ssl, int where, int value) {
  client *cl = SSL_get_app_data(ssl);
  if (where & SSL_CB_READ_ALERT) cl->alert = value & 0xff;
}

/* `sni` NULL sends no server_name; `protos` is ALPN in wire format or NULL. */
static void client_init(client *cl, fixture *fx, const char *sni, uint16_t max_version,
                        const char *protos) {
  cl->alert = -1;
  cl->ssl = SSL_new(fx->client_ctx);
  cl->rbio = BIO_new(BIO_s_mem());
  cl->wbio = BIO_new(BIO_s_mem());
  assert_non_null(cl->ssl);
  assert_non_null(cl->rbio);
  assert_non_null(cl->wbio);
  SSL_set_bio(cl->ssl, cl->rbio, cl->wbio);
  SSL_set_connect_state(cl->ssl);
  SSL_set_app_data(cl->ssl, cl);
  SSL_set_info_callback(cl->ssl, on_client_info);
  if (sni) assert_int_equal(SSL_set_tlsext_host_name(cl->ssl, sni), 1);
  if (max_version) assert_int_equal(SSL_set_max_proto_version(cl->ssl, max_version), 1);
  if (protos)
    assert_int_equal(SSL_set_alpn_protos(cl->ssl, (const uint8_t *)protos, strlen(protos)), 0);
}

static void client_dispose(client *cl) { SSL_free(cl->ssl); }

/* Moves ciphertext both ways; returns how many bytes moved. */
static size_t pump(client *cl, px_tls_conn *s) {
  static char buf[16384];
  size_t moved = 0;
  int n;
  while ((n = BIO_read(cl->wbio, buf, sizeof(buf))) > 0) {
    assert_int_equal(px_tls_conn_feed(s, buf, (size_t)n), PX_TLS_OK);
    moved += (size_t)n;
  }
  size_t m;
  const char *out = px_tls_conn_output(s, &m);
  assert_non_null(out);
  if (m > 0) {
    assert_int_equal(BIO_write(cl->rbio, out, (int)m), (int)m);
    px_tls_conn_consume_output(s, m);
    moved += m;
  }
  return moved;
}

/* Runs both handshakes to the end. Returns 1 when both completed, 0 when
 * either failed; *server_result is the last px_tls_conn_handshake result. */
static int handshake(client *cl, px_tls_conn *s, int *server_result) {
  int cdone = 0, sr = PX_TLS_WANT_READ;
  for (int round = 0; round < 16; round++) {
    if (!cdone) {
      int r = SSL_do_handshake(cl->ssl);
      if (r == 1) {
        cdone = 1;
      } else if (SSL_get_error(cl->ssl, r) != SSL_ERROR_WANT_READ) {
        pump(cl, s);
        *server_result = sr;
        return 0;
      }
    }
    if (sr != PX_TLS_OK) sr = px_tls_conn_handshake(s);
    size_t moved = pump(cl, s);
    if (sr == PX_TLS_ERROR || sr == PX_TLS_PENDING) {
      /* Let the client read the alert the server queued. */
      if (sr == PX_TLS_ERROR) SSL_do_handshake(cl->ssl);
      *server_result = sr;
      return 0;
    }
    if (cdone && sr == PX_TLS_OK && moved == 0) break;
  }
  *server_result = sr;
  return cdone && sr == PX_TLS_OK;
}

/* The client reads everything pending (e.g. TLS 1.3 NewSessionTicket). */
static void client_drain(client *cl, px_tls_conn *s) {
  char b[64];
  pump(cl, s);
  int r = SSL_read(cl->ssl, b, sizeof(b));
  assert_true(r <= 0);
  assert_int_equal(SSL_get_error(cl->ssl, r), SSL_ERROR_WANT_READ);
}

/* Handshake against `srv` expecting success with `expected` as the peer
 * certificate; returns the connection (the caller frees it). */
static px_tls_conn *connect_ok(fixture *fx, px_tls_server *srv, client *cl, const char *sni,
                               uint16_t max_version, const char *protos, X509 *expected) {
  int sr;
  px_tls_conn *s = px_tls_conn_new(srv);
  assert_non_null(s);
  client_init(cl, fx, sni, max_version, protos);
  assert_int_equal(handshake(cl, s, &sr), 1);
  assert_int_equal(sr, PX_TLS_OK);
  assert_int_equal(SSL_get_verify_result(cl->ssl), X509_V_OK);
  X509 *peer = SSL_get_peer_certificate(cl->ssl);
  assert_non_null(peer);
  assert_int_equal(X509_cmp(peer, expected), 0);
  X509_free(peer);
  return s;
}

/* Expects the handshake to fail with an unrecognized_name alert (RFC 6066 §3). */
static void connect_refused(fixture *fx, px_tls_server *srv, const char *sni) {
  client cl;
  int sr;
  px_tls_conn *s = px_tls_conn_new(srv);
  assert_non_null(s);
  client_init(&cl, fx, sni, 0, NULL);
  assert_int_equal(handshake(&cl, s, &sr), 0);
  assert_int_equal(sr, PX_TLS_ERROR);
  assert_int_equal(cl.alert, SSL_AD_UNRECOGNIZED_NAME);
  assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()), SSL_R_TLSV1_ALERT_UNRECOGNIZED_NAME);
  ERR_clear_error();
  client_dispose(&cl);
  px_tls_conn_free(s);
}

static void connect_expect(fixture *fx, px_tls_server *srv, const char *sni, int which,
                           const char *want_sni) {
  client cl;
  px_tls_conn *s = connect_ok(fx, srv, &cl, sni, 0, NULL, fx->cert[which]);
  assert_string_equal(px_tls_conn_sni(s), want_sni);
  client_dispose(&cl);
  px_tls_conn_free(s);
}

/* --- tests -------------------------------------------------------------- */

static void test_lookup(void **state) {
  fixture *fx = *state;
  assert_int_equal(px_tls_server_lookup(fx->named, "a.test"), CERT_A);
  assert_int_equal(px_tls_server_lookup(fx->named, "x.w.test"), CERT_W);
  assert_int_equal(px_tls_server_lookup(fx->named, "w.test"), -1);
  assert_int_equal(px_tls_server_lookup(fx->named, "a.b.w.test"), -1);
  assert_int_equal(px_tls_server_lookup(fx->named, "b.test"), -1);
  assert_int_equal(px_tls_server_lookup(fx->named, ".w.test"), -1);
  assert_int_equal(px_tls_server_lookup(fx->catch_all, "a.test"), CERT_A);
  assert_int_equal(px_tls_server_lookup(fx->catch_all, "x.w.test"), CERT_W);
  assert_int_equal(px_tls_server_lookup(fx->catch_all, "w.test"), CERT_ANY);
  assert_int_equal(px_tls_server_lookup(fx->catch_all, "b.test"), CERT_ANY);
}

static void test_exact_and_case(void **state) {
  fixture *fx = *state;
  connect_expect(fx, fx->named, "a.test", CERT_A, "a.test");
  connect_expect(fx, fx->named, "A.Test", CERT_A, "a.test");
}

static void test_wildcard(void **state) {
  fixture *fx = *state;
  connect_expect(fx, fx->named, "x.w.test", CERT_W, "x.w.test");
  connect_refused(fx, fx->named, "w.test");
  connect_refused(fx, fx->named, "a.b.w.test");
}

static void test_catch_all(void **state) {
  fixture *fx = *state;
  connect_expect(fx, fx->catch_all, "unknown.test", CERT_ANY, "unknown.test");
  connect_expect(fx, fx->catch_all, "a.b.w.test", CERT_ANY, "a.b.w.test");
  connect_expect(fx, fx->catch_all, "a.test", CERT_A, "a.test");
}

static void test_unknown_name_alert(void **state) {
  fixture *fx = *state;
  /* The debug log line gives the reason and the client-chosen name escaped. */
  char path[128], line[512] = "";
  path_in(path, sizeof(path), fx, "debug.log");
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600), saved = dup(STDERR_FILENO);
  assert_true(fd >= 0 && saved >= 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  px_log_set_level(PX_LOG_DEBUG);
  connect_refused(fx, fx->named, "unknown\"\x01.test");
  px_log_set_level(PX_LOG_INFO);
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  assert_true(pread(fd, line, sizeof(line) - 1, 0) > 0);
  close(fd);
  unlink(path);
  assert_non_null(strstr(line, "sni=\"unknown\\\"\\x01.test\": no certificate"));
  connect_refused(fx, fx->named, "unknown.test");
  connect_refused(fx, fx->named, NULL);
  /* Without SNI even a catch-all certificate is not served. */
  connect_refused(fx, fx->catch_all, NULL);
}

static void check_alpn(fixture *fx, const char *offer, const char *want) {
  client cl;
  px_tls_conn *s = connect_ok(fx, fx->named, &cl, "a.test", 0, offer, fx->cert[CERT_A]);
  const uint8_t *p;
  unsigned len;
  SSL_get0_alpn_selected(cl.ssl, &p, &len);
  if (want == NULL) {
    assert_null(px_tls_conn_alpn(s));
    assert_int_equal(len, 0);
  } else {
    assert_string_equal(px_tls_conn_alpn(s), want);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(p, want, len);
  }
  client_dispose(&cl);
  px_tls_conn_free(s);
}

static void test_alpn(void **state) {
  fixture *fx = *state;
  check_alpn(fx, "\x08http/1.1", "http/1.1");
  /* Server preference: h2 first even when the client lists it last. */
  check_alpn(fx, "\x08http/1.1\x02h2", "h2");
  /* No overlap: the handshake goes on without ALPN. */
  check_alpn(fx, "\x06spdy/3", NULL);
  check_alpn(fx, NULL, NULL);
}

static void check_version(fixture *fx, uint16_t max, const char *want) {
  client cl;
  px_tls_conn *s = connect_ok(fx, fx->named, &cl, "x.w.test", max, NULL, fx->cert[CERT_W]);
  assert_string_equal(px_tls_conn_version(s), want);
  assert_int_equal(SSL_version(cl.ssl), max ? max : TLS1_3_VERSION);
  assert_int_equal(px_tls_conn_resumed(s), 0);
  client_dispose(&cl);
  px_tls_conn_free(s);
}

static void test_versions(void **state) {
  fixture *fx = *state;
  check_version(fx, TLS1_2_VERSION, "TLSv1.2");
  check_version(fx, TLS1_3_VERSION, "TLSv1.3");
  check_version(fx, 0, "TLSv1.3");
}

static void test_tls11_refused(void **state) {
  fixture *fx = *state;
  client cl;
  int sr;
  px_tls_conn *s = px_tls_conn_new(fx->named);
  assert_non_null(s);
  client_init(&cl, fx, "a.test", TLS1_1_VERSION, NULL);
  assert_int_equal(SSL_set_min_proto_version(cl.ssl, TLS1_VERSION), 1);
  assert_int_equal(handshake(&cl, s, &sr), 0);
  assert_int_equal(sr, PX_TLS_ERROR);
  ERR_clear_error();
  client_dispose(&cl);
  px_tls_conn_free(s);
}

static void fill(uint8_t *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    p[i] = (uint8_t)((i * 31u + seed) ^ (i >> 9));
}

/* Client -> server: `n` bytes, read back through px_tls_conn_read. */
static void client_to_server(client *cl, px_tls_conn *s, const uint8_t *data, size_t n,
                             uint8_t *got) {
  size_t off = 0;
  assert_int_equal(SSL_write(cl->ssl, data, (int)n), (int)n);
  pump(cl, s);
  for (;;) {
    int r = px_tls_conn_read(s, got + off, n - off < 5000 ? n - off : 5000);
    if (r == PX_TLS_WANT_READ) break;
    assert_true(r > 0);
    off += (size_t)r;
    if (off == n) break;
  }
  assert_int_equal(off, n);
  assert_memory_equal(got, data, n);
  assert_int_equal(px_tls_conn_read(s, got, 1), PX_TLS_WANT_READ);
}

/* Server -> client: one px_tls_conn_write of `n` bytes. */
static void server_to_client(client *cl, px_tls_conn *s, const uint8_t *data, size_t n,
                             uint8_t *got) {
  size_t off = 0;
  assert_int_equal(px_tls_conn_write(s, data, n), PX_TLS_OK);
  assert_true(px_tls_conn_output_len(s) > n);
  pump(cl, s);
  assert_int_equal(px_tls_conn_output_len(s), 0);
  while (off < n) {
    int r = SSL_read(cl->ssl, got + off, (int)(n - off));
    assert_true(r > 0);
    off += (size_t)r;
  }
  assert_memory_equal(got, data, n);
}

static void exchange(fixture *fx, uint16_t max_version) {
  enum { BIG = 1 << 20 };
  uint8_t *data = malloc(BIG), *got = malloc(BIG);
  assert_non_null(data);
  assert_non_null(got);
  fill(data, BIG, max_version);
  client cl;
  px_tls_conn *s = connect_ok(fx, fx->named, &cl, "a.test", max_version, NULL, fx->cert[CERT_A]);
  client_drain(&cl, s);

  client_to_server(&cl, s, (const uint8_t *)"ping", 4, got);
  server_to_client(&cl, s, (const uint8_t *)"pong", 4, got);
  px_tls_conn_compact(s); /* idle: the buffers go, the session stays */
  client_to_server(&cl, s, data, BIG, got);
  px_tls_conn_compact(s);
  server_to_client(&cl, s, data, BIG, got);
  assert_int_equal(px_tls_conn_write(s, data, 0), PX_TLS_OK);

  /* close_notify from the client ends the server's reads. */
  assert_true(SSL_shutdown(cl.ssl) >= 0);
  pump(&cl, s);
  assert_int_equal(px_tls_conn_read(s, got, 16), PX_TLS_CLOSED);
  /* Our close_notify reaches the client. */
  px_tls_conn_shutdown(s);
  assert_true(px_tls_conn_output_len(s) > 0);
  pump(&cl, s);
  assert_int_equal(SSL_read(cl.ssl, got, 16), 0);
  assert_int_equal(SSL_get_error(cl.ssl, 0), SSL_ERROR_ZERO_RETURN);

  client_dispose(&cl);
  px_tls_conn_free(s);
  free(data);
  free(got);
}

static void test_application_data(void **state) {
  fixture *fx = *state;
  exchange(fx, TLS1_3_VERSION);
  exchange(fx, TLS1_2_VERSION);
}

/* Small writes (a response head, then a short body) leave as one TLS
 * record; a large write after them keeps the order. */
static void test_small_writes_share_a_record(void **state) {
  fixture *fx = *state;
  client cl;
  px_tls_conn *s =
      connect_ok(fx, fx->catch_all, &cl, "x.w.test", TLS1_3_VERSION, NULL, fx->cert[CERT_W]);
  client_drain(&cl, s); /* the ticket, sent with the handshake */
  assert_int_equal(px_tls_conn_output_len(s), 0);
  static uint8_t data[200 + 23 + 50000], got[sizeof(data)];
  for (size_t i = 0; i < sizeof(data); i++)
    data[i] = (uint8_t)(i * 7);
  assert_int_equal(px_tls_conn_write(s, data, 200), PX_TLS_OK);
  assert_int_equal(px_tls_conn_write(s, data + 200, 23), PX_TLS_OK);
  /* One TLS 1.3 record: a 5-byte header, the plaintext, its content type
   * byte and a 16-byte AEAD tag (RFC 8446 §5.2). */
  assert_int_equal(px_tls_conn_output_len(s), 5 + 223 + 1 + 16);
  assert_int_equal(px_tls_conn_write(s, data + 223, 50000), PX_TLS_OK);
  pump(&cl, s);
  size_t off = 0;
  while (off < sizeof(data)) {
    int r = SSL_read(cl.ssl, got + off, (int)(sizeof(data) - off));
    assert_true(r > 0);
    off += (size_t)r;
  }
  assert_memory_equal(got, data, sizeof(data));
  client_dispose(&cl);
  px_tls_conn_free(s);
}

static void resume(fixture *fx, uint16_t max_version) {
  client cl;
  SSL_SESSION_free(fx->session);
  fx->session = NULL;
  px_tls_conn *s =
      connect_ok(fx, fx->catch_all, &cl, "x.w.test", max_version, NULL, fx->cert[CERT_W]);
  /* The NewSessionTicket (RFC 8446 §4.6.1) is in the output since the
   * handshake; the client reads it with the data. */
  uint8_t got[8];
  server_to_client(&cl, s, (const uint8_t *)"hi", 2, got);
  client_drain(&cl, s);
  assert_int_equal(px_tls_conn_resumed(s), 0);
  assert_non_null(fx->session);
  client_dispose(&cl);
  px_tls_conn_free(s);

  /* A new connection object (as another worker would create) resumes. */
  px_tls_conn *s2 = px_tls_conn_new(fx->catch_all);
  int sr;
  assert_non_null(s2);
  client_init(&cl, fx, "x.w.test", max_version, NULL);
  assert_int_equal(SSL_set_session(cl.ssl, fx->session), 1);
  assert_int_equal(handshake(&cl, s2, &sr), 1);
  assert_int_equal(px_tls_conn_resumed(s2), 1);
  assert_int_equal(SSL_session_reused(cl.ssl), 1);
  assert_string_equal(px_tls_conn_sni(s2), "x.w.test");
  client_dispose(&cl);
  px_tls_conn_free(s2);
}

static void test_resumption(void **state) {
  fixture *fx = *state;
  resume(fx, TLS1_3_VERSION);
  resume(fx, TLS1_2_VERSION);
}

static void expect_load_error(const char *cert_file, const char *key_file, const char *want1,
                              const char *want2) {
  static const char *const hosts[] = {"a.test"};
  px_tls_cert_spec spec = {
      .cert_file = cert_file, .key_file = key_file, .hosts = hosts, .nhosts = 1};
  char err[512] = "";
  assert_null(px_tls_server_new(&spec, 1, NULL, err, sizeof(err)));
  assert_non_null(strstr(err, want1));
  if (want2) assert_non_null(strstr(err, want2));
  ERR_clear_error();
}

static void test_load_errors(void **state) {
  fixture *fx = *state;
  char garbage[128], mismatch[128], missing[128];
  path_in(garbage, sizeof(garbage), fx, "garbage.pem");
  path_in(mismatch, sizeof(mismatch), fx, "mismatch.key");
  path_in(missing, sizeof(missing), fx, "missing.pem");
  write_file(garbage,
             "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n");

  /* The key of another certificate: both files are named. */
  expect_load_error(fx->cert_file[CERT_A], fx->key_file[CERT_W], fx->cert_file[CERT_A],
                    fx->key_file[CERT_W]);
  expect_load_error(fx->cert_file[CERT_A], fx->key_file[CERT_W], "does not match", NULL);
  /* Garbage where the certificate or the key should be. */
  expect_load_error(garbage, fx->key_file[CERT_A], garbage, NULL);
  expect_load_error(fx->cert_file[CERT_A], garbage, garbage, NULL);
  /* A certificate where the key should be. */
  write_pem(mismatch, fx->cert[CERT_A], NULL);
  expect_load_error(fx->cert_file[CERT_A], mismatch, mismatch, NULL);
  /* Files that are not there. */
  expect_load_error(missing, fx->key_file[CERT_A], missing, NULL);
  expect_load_error(fx->cert_file[CERT_A], missing, missing, NULL);
  /* A directory. */
  expect_load_error(fx->dir, fx->key_file[CERT_A], "is not a regular file", NULL);
  /* A chain cut short inside its second certificate: an error, not the
   * leaf alone (a PEM error is the end of input only as "no start line"). */
  char truncated[128], pem[8192];
  path_in(truncated, sizeof(truncated), fx, "truncated.pem");
  FILE *f = fopen(fx->cert_file[CERT_A], "r");
  assert_non_null(f);
  size_t n = fread(pem, 1, sizeof(pem) / 2, f);
  fclose(f);
  f = fopen(fx->cert_file[CERT_W], "r");
  assert_non_null(f);
  n += fread(pem + n, 1, 200, f); /* the BEGIN line and some base64 */
  fclose(f);
  pem[n] = '\0';
  write_file(truncated, pem);
  expect_load_error(truncated, fx->key_file[CERT_A], "certificate 2 of the chain does not parse",
                    NULL);
}

/* --- the dynamic-certificate hook (on demand, tls-alpn-01) -------------- */

typedef struct dyn_state {
  fixture *fx;
  int ready;   /* lookup answers with the certificate once set */
  int lookups; /* how often lookup ran */
  int refuse;  /* lookup refuses the name */
} dyn_state;

static px_tls_cert *load_cert(const fixture *fx, int which) {
  char err[256];
  px_tls_cert *c =
      px_tls_cert_load_files(fx->cert_file[which], fx->key_file[which], err, sizeof(err));
  assert_non_null(c);
  return c;
}

static int on_dyn_lookup(void *arg, const char *name, size_t spec, px_tls_cert **out) {
  dyn_state *d = arg;
  d->lookups++;
  assert_int_equal(spec, 0);
  assert_string_equal(name, "d.test");
  if (d->refuse) return -1;
  if (!d->ready) return 0;
  *out = load_cert(d->fx, CERT_A);
  return 1;
}

/* Stands in for an RFC 8737 challenge certificate: any cert will do here. */
static int on_dyn_challenge(void *arg, const char *name, px_tls_cert **out) {
  dyn_state *d = arg;
  if (strcmp(name, "d.test") != 0) return -1;
  *out = load_cert(d->fx, CERT_W);
  return 1;
}

/* Which names a certificate covers: SAN entries, RFC 6125 §6.4.3 wildcards. */
static void test_cert_covers(void **state) {
  fixture *fx = *state;
  px_tls_cert *a = load_cert(fx, CERT_A), *w = load_cert(fx, CERT_W);
  assert_true(px_tls_cert_covers(a, "a.test"));
  assert_false(px_tls_cert_covers(a, "b.test"));
  assert_false(px_tls_cert_covers(a, "x.a.test"));
  assert_false(px_tls_cert_covers(a, "test"));
  assert_true(px_tls_cert_covers(w, "x.w.test"));
  assert_true(px_tls_cert_covers(w, "*.w.test"));
  assert_false(px_tls_cert_covers(w, "w.test"));     /* the "*" is one label, never none */
  assert_false(px_tls_cert_covers(w, "a.b.w.test")); /* nor two */
  assert_false(px_tls_cert_covers(w, "x.ww.test"));
  assert_false(px_tls_cert_covers(a, "*.test"));
  px_tls_cert_unref(a);
  px_tls_cert_unref(w);
}

static void test_dynamic(void **state) {
  fixture *fx = *state;
  static const char *const hosts[] = {"d.test"};
  px_tls_cert_spec spec = {.dynamic = 1, .hosts = hosts, .nhosts = 1};
  dyn_state d = {.fx = fx};
  px_tls_server_opts opts = {
      .alpn = alpn,
      .nalpn = 2,
      .dynamic = {.lookup = on_dyn_lookup, .challenge = on_dyn_challenge, .arg = &d}};
  char err[256] = "";
  px_tls_server *srv = px_tls_server_new(&spec, 1, &opts, err, sizeof(err));
  assert_non_null(srv);
  assert_int_equal(px_tls_server_lookup(srv, "d.test"), PX_TLS_LOOKUP_DYNAMIC);
  assert_int_equal(px_tls_server_lookup(srv, "e.test"), -1);

  /* Not ready: the handshake pauses, then resumes where it stopped. */
  client cl;
  int sr;
  px_tls_conn *s = px_tls_conn_new(srv);
  assert_non_null(s);
  client_init(&cl, fx, "d.test", 0, "\x08http/1.1");
  assert_int_equal(handshake(&cl, s, &sr), 0);
  assert_int_equal(sr, PX_TLS_PENDING);
  assert_int_equal(px_tls_conn_handshake(s), PX_TLS_PENDING);
  d.ready = 1;
  assert_int_equal(handshake(&cl, s, &sr), 1);
  assert_int_equal(d.lookups, 3);
  assert_int_equal(px_tls_conn_is_acme_challenge(s), 0);
  assert_string_equal(px_tls_conn_alpn(s), "http/1.1");
  X509 *peer = SSL_get_peer_certificate(cl.ssl);
  assert_int_equal(X509_cmp(peer, fx->cert[CERT_A]), 0);
  X509_free(peer);
  client_dispose(&cl);
  px_tls_conn_free(s);

  /* A refused name gets unrecognized_name like an unknown one. */
  d.refuse = 1;
  connect_refused(fx, srv, "d.test");

  /* A client offering acme-tls/1 gets the challenge certificate and that
   * protocol, whatever else it offers (RFC 8737 §3). */
  s = px_tls_conn_new(srv);
  assert_non_null(s);
  client_init(&cl, fx, "d.test", 0,
              "\x0a"
              "acme-tls/1\x08http/1.1");
  assert_int_equal(handshake(&cl, s, &sr), 1);
  assert_int_equal(px_tls_conn_is_acme_challenge(s), 1);
  assert_string_equal(px_tls_conn_alpn(s), "acme-tls/1");
  peer = SSL_get_peer_certificate(cl.ssl);
  assert_int_equal(X509_cmp(peer, fx->cert[CERT_W]), 0);
  X509_free(peer);
  client_dispose(&cl);
  px_tls_conn_free(s);

  px_tls_server_free(srv);
}

/* --- the client side of the filter (tls_client.c) ------------------------- */

/* Moves the ciphertext `from` has queued into `to`; the bytes moved. */
static size_t move_output(px_tls_conn *from, px_tls_conn *to) {
  size_t n;
  const char *p = px_tls_conn_output(from, &n);
  assert_non_null(p);
  if (n) {
    assert_int_equal(px_tls_conn_feed(to, p, n), PX_TLS_OK);
    px_tls_conn_consume_output(from, n);
  }
  return n;
}

/* Runs a client filter against a server filter until neither can go on;
 * the client's result, the server's in *server_result. */
static int filters_handshake(px_tls_conn *cl, px_tls_conn *sv, int *server_result) {
  int cr = PX_TLS_WANT_READ, sr = PX_TLS_WANT_READ;
  for (int round = 0; round < 10 && (cr == PX_TLS_WANT_READ || sr == PX_TLS_WANT_READ); round++) {
    if (cr == PX_TLS_WANT_READ) cr = px_tls_conn_handshake(cl);
    size_t a = move_output(cl, sv);
    if (sr == PX_TLS_WANT_READ) sr = px_tls_conn_handshake(sv);
    size_t b = move_output(sv, cl);
    if (round > 0 && a == 0 && b == 0) break;
  }
  *server_result = sr;
  return cr;
}

static void test_client_trusted(void **state) {
  fixture *fx = *state;
  char err[256] = "";
  px_tls_client *t = px_tls_client_new(fx->cert_file[CERT_A], err, sizeof(err));
  assert_non_null(t);
  px_tls_conn *cl = px_tls_client_conn_new(t, "a.test");
  px_tls_conn *sv = px_tls_conn_new(fx->named);
  assert_non_null(cl);
  assert_non_null(sv);
  int sr;
  assert_int_equal(filters_handshake(cl, sv, &sr), PX_TLS_OK);
  assert_int_equal(sr, PX_TLS_OK);
  assert_null(px_tls_conn_verify_error(cl));
  assert_string_equal(px_tls_conn_sni(sv), "a.test");
  char buf[16];
  assert_int_equal(px_tls_conn_write(cl, "ping", 4), PX_TLS_OK);
  move_output(cl, sv);
  assert_int_equal(px_tls_conn_read(sv, buf, sizeof(buf)), 4);
  assert_memory_equal(buf, "ping", 4);
  assert_int_equal(px_tls_conn_write(sv, "pong", 4), PX_TLS_OK);
  move_output(sv, cl);
  assert_int_equal(px_tls_conn_read(cl, buf, sizeof(buf)), 4);
  assert_memory_equal(buf, "pong", 4);
  px_tls_conn_shutdown(sv);
  move_output(sv, cl);
  assert_int_equal(px_tls_conn_read(cl, buf, sizeof(buf)), PX_TLS_CLOSED);
  px_tls_conn_free(cl);
  px_tls_conn_free(sv);
  px_tls_client_free(t);
}

/* A server the client does not trust, or whose certificate names another
 * host, fails the handshake, and the client can say it was trust. */
static void expect_untrusted(fixture *fx, const char *ca_file, px_tls_server *srv,
                             const char *host) {
  char err[256] = "";
  px_tls_client *t = px_tls_client_new(ca_file, err, sizeof(err));
  assert_non_null(t);
  px_tls_conn *cl = px_tls_client_conn_new(t, host);
  px_tls_conn *sv = px_tls_conn_new(srv);
  assert_non_null(cl);
  assert_non_null(sv);
  int sr;
  assert_int_equal(filters_handshake(cl, sv, &sr), PX_TLS_ERROR);
  /* BoringSSL's sentence: an unknown issuer, a self-signed certificate,
   * or a host mismatch. */
  assert_non_null(px_tls_conn_verify_error(cl));
  assert_true(strlen(px_tls_conn_verify_error(cl)) > 10);
  px_tls_conn_free(cl);
  px_tls_conn_free(sv);
  px_tls_client_free(t);
}

static void test_client_untrusted(void **state) {
  fixture *fx = *state;
  expect_untrusted(fx, fx->cert_file[CERT_W], fx->named, "a.test");
  /* The catch-all certificate names fallback.test, not other.test. */
  expect_untrusted(fx, fx->cert_file[CERT_ANY], fx->catch_all, "other.test");
}

static void test_client_bad_ca_file(void **state) {
  fixture *fx = *state;
  char err[256] = "";
  assert_null(px_tls_client_new(fx->key_file[CERT_A], err, sizeof(err)));
  assert_non_null(strstr(err, fx->key_file[CERT_A]));
  assert_non_null(strstr(err, "no usable PEM certificates"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_lookup),
      cmocka_unit_test(test_exact_and_case),
      cmocka_unit_test(test_wildcard),
      cmocka_unit_test(test_catch_all),
      cmocka_unit_test(test_unknown_name_alert),
      cmocka_unit_test(test_alpn),
      cmocka_unit_test(test_versions),
      cmocka_unit_test(test_tls11_refused),
      cmocka_unit_test(test_application_data),
      cmocka_unit_test(test_small_writes_share_a_record),
      cmocka_unit_test(test_resumption),
      cmocka_unit_test(test_load_errors),
      cmocka_unit_test(test_dynamic),
      cmocka_unit_test(test_cert_covers),
      cmocka_unit_test(test_client_trusted),
      cmocka_unit_test(test_client_untrusted),
      cmocka_unit_test(test_client_bad_ca_file),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
