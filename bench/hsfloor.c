/*
 * hsfloor: the handshake floor of the TLS library itself, for scenario 3.
 *
 * Runs full TLS 1.3 handshakes between a client and a server in one thread
 * over in-memory BIO pairs (no sockets, no kernel, no HTTP) and times only
 * the server's calls with the thread CPU clock. The server is set up as
 * portico's is: the same ECDSA P-256 certificate, TLS 1.3, one session
 * ticket sent at the end of the handshake. The client offers X25519 first,
 * as h2load (OpenSSL) does.
 *
 * The result is the most handshakes per CPU-second any server built on this
 * BoringSSL could reach with this certificate: the crypto ceiling that
 * `bssl speed` implies, plus what the library spends on transcript hashing,
 * key schedule, record protection, ticket sealing and allocation.
 *
 *   hsfloor CERT.pem KEY.pem [SECONDS]
 * prints one JSON object: handshakes, server_cpu_s, per_cpu_s, group, sigalg.
 */
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double thread_cpu(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SSL_CTX *server_ctx(const char *cert, const char *key) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_use_certificate_chain_file(ctx, cert) ||
      !SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) ||
      !SSL_CTX_set_num_tickets(ctx, 1)) {
    fprintf(stderr, "hsfloor: cannot load %s / %s\n", cert, key);
    ERR_print_errors_fp(stderr);
    exit(1);
  }
  return ctx;
}

static SSL_CTX *client_ctx(void) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_method());
  if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) exit(1);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* every handshake is a full one */
  return ctx;
}

/* One full handshake; adds the server's CPU time to *server_cpu. Returns 0
 * when both sides finished and the session was not resumed. */
static int one_handshake(SSL_CTX *sctx, SSL_CTX *cctx, double *server_cpu, uint16_t *group,
                         uint16_t *sigalg) {
  BIO *cbio, *sbio;
  if (!BIO_new_bio_pair(&cbio, 0, &sbio, 0)) return -1;
  SSL *client = SSL_new(cctx);
  SSL_set_bio(client, cbio, cbio);
  SSL_set_connect_state(client);
  SSL_set_tlsext_host_name(client, "bench.test");

  double t0 = thread_cpu();
  SSL *server = SSL_new(sctx);
  SSL_set_bio(server, sbio, sbio);
  SSL_set_accept_state(server);
  *server_cpu += thread_cpu() - t0;

  int cdone = 0, sdone = 0, rounds = 0;
  while ((!cdone || !sdone) && rounds++ < 16) {
    if (!cdone) {
      int r = SSL_do_handshake(client);
      if (r == 1)
        cdone = 1;
      else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ)
        break;
    }
    if (!sdone) {
      t0 = thread_cpu();
      int r = SSL_do_handshake(server);
      if (r == 1) {
        /* As portico does: a zero-byte write sends the ticket now. */
        SSL_write(server, "", 0);
        sdone = 1;
      }
      *server_cpu += thread_cpu() - t0;
      if (r != 1 && SSL_get_error(server, r) != SSL_ERROR_WANT_READ) break;
    }
  }
  int ok = cdone && sdone && !SSL_session_reused(client);
  *group = SSL_get_curve_id(server);
  *sigalg = SSL_get_peer_signature_algorithm(client);
  SSL_free(client);
  t0 = thread_cpu();
  SSL_free(server);
  *server_cpu += thread_cpu() - t0;
  return ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: hsfloor CERT.pem KEY.pem [SECONDS]\n");
    return 2;
  }
  double secs = argc > 3 ? atof(argv[3]) : 2.0;
  SSL_CTX *sctx = server_ctx(argv[1], argv[2]);
  SSL_CTX *cctx = client_ctx();
  double server_cpu = 0, start = wall();
  long n = 0;
  uint16_t group = 0, sigalg = 0;
  while (wall() - start < secs) {
    if (one_handshake(sctx, cctx, &server_cpu, &group, &sigalg) != 0) {
      fprintf(stderr, "hsfloor: handshake %ld failed\n", n);
      ERR_print_errors_fp(stderr);
      return 1;
    }
    n++;
  }
  printf("{\"handshakes\": %ld, \"server_cpu_s\": %.4f, \"per_cpu_s\": %.1f, "
         "\"group\": \"%s\", \"sigalg\": \"%s\"}\n",
         n, server_cpu, server_cpu > 0 ? (double)n / server_cpu : 0.0,
         SSL_get_curve_name(group) ? SSL_get_curve_name(group) : "?",
         SSL_get_signature_algorithm_name(sigalg, 0) ? SSL_get_signature_algorithm_name(sigalg, 0)
                                                     : "?");
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
  return 0;
}
