/* Config parsing: a full valid file, JSON input, defaults, inheritance, and
 * every error path with its file:line:key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>

#include "proxy/config.h"
#include "tls/challenge_cert.h"

static char cert_path[256], key_path[256], storage_path[256];

/* Loads `text` and returns the config; the errors printed go to *errors. */
static px_config *load(const char *text, char **errors, int *nerr) {
  size_t len = 0;
  FILE *mem = open_memstream(errors, &len);
  px_config *cfg = px_config_load_buffer("t.yaml", text, strlen(text), mem, nerr);
  fclose(mem);
  return cfg;
}

/* Asserts that `text` fails with a message containing `expect`. */
static void expect_error(const char *text, const char *expect) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(text, &errors, &n);
  if (cfg != NULL || strstr(errors, expect) == NULL) {
    fprintf(stderr, "config:\n%s\nerrors:\n%s\nexpected: %s\n", text, errors, expect);
    fail();
  }
  assert_true(n >= 1);
  free(errors);
}

static int setup(void **state) {
  char dir[] = "/tmp/px-config-XXXXXX";
  assert_non_null(mkdtemp(dir));
  snprintf(cert_path, sizeof(cert_path), "%s/c.pem", dir);
  snprintf(key_path, sizeof(key_path), "%s/k.pem", dir);
  snprintf(storage_path, sizeof(storage_path), "%s/cache", dir); /* created at start-up only */
  /* The loader checks the pair as start-up does, so it must be a real one:
   * any self-signed certificate with its key will do. */
  px_tls_challenge_cert cc;
  assert_int_equal(px_tls_challenge_cert_new("t.test", "ka", 2, 1700000000, &cc), 0);
  FILE *f = fopen(cert_path, "w");
  assert_true(PEM_write(f, "CERTIFICATE", "", cc.cert_der, (long)cc.cert_len) > 0);
  fclose(f);
  f = fopen(key_path, "w");
  assert_true(PEM_write(f, "PRIVATE KEY", "", cc.key_der, (long)cc.key_len) > 0);
  fclose(f);
  px_tls_challenge_cert_dispose(&cc);
  return 0;
}

static void test_full_config(void **state) {
  char text[2048];
  snprintf(text, sizeof(text),
           "listen:\n"
           "  https: [\"0.0.0.0:443\", \"[::]:443\"]\n"
           "  http: \"127.0.0.1:80\"\n"
           "workers: 3\n"
           "storage: %s\n"
           "log: {level: debug, access: off}\n"
           "defaults: {redirect_http: false, hsts: true}\n"
           "timeouts: {handshake: 500ms, request_header: 2s, keepalive: 1m, upstream_read: 1h}\n"
           "limits: {max_connections: 50, max_header_bytes: 16k, max_headers: 64, max_body: 0, "
           "buffer: 1m}\n"
           "sites:\n"
           "  - hosts: [App.Example.COM, \"*.app.example.com\"]\n"
           "    upstreams: [\"127.0.0.1:8080\", \"[::1]:9090\", \"unix:/run/app.sock\"]\n"
           "    tls: {cert: %s, key: %s}\n"
           "    redirect_http: true\n"
           "    hsts: {max_age: 100, include_subdomains: true}\n"
           "  - hosts: [\"*\"]\n"
           "    upstreams: [\"localhost:81\"]\n"
           "    tls: on_demand\n",
           storage_path, cert_path, key_path);
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(text, &errors, &n);
  if (cfg == NULL) fprintf(stderr, "%s", errors);
  assert_non_null(cfg);
  assert_int_equal(n, 0);
  assert_int_equal(cfg->nhttps, 2);
  assert_int_equal(cfg->https[1].ss.ss_family, AF_INET6);
  assert_int_equal(cfg->nhttp, 1);
  assert_int_equal(cfg->workers, 3);
  assert_string_equal(cfg->storage, storage_path);
  assert_string_equal(cfg->access_log, "off");
  assert_int_equal(cfg->log_level, 3);
  assert_int_equal(cfg->limits.handshake_timeout_ms, 500);
  assert_int_equal(cfg->limits.header_timeout_ms, 2000);
  assert_int_equal(cfg->limits.keepalive_timeout_ms, 60000);
  assert_int_equal(cfg->limits.upstream_read_timeout_ms, 3600000);
  assert_int_equal(cfg->limits.upstream_connect_timeout_ms, 5000); /* default kept */
  assert_int_equal(cfg->limits.max_connections, 50);
  assert_int_equal(cfg->limits.max_header_bytes, 16384);
  assert_int_equal(cfg->limits.max_headers, 64);
  assert_int_equal(cfg->limits.max_body_bytes, 0);
  assert_int_equal(cfg->limits.buffer_size, 1048576);
  assert_int_equal(cfg->nsites, 2);
  px_site *s = &cfg->sites[0];
  assert_string_equal(s->hosts[0], "app.example.com");
  assert_string_equal(s->hosts[1], "*.app.example.com");
  assert_int_equal(s->nupstreams, 3);
  assert_true(s->upstreams[2].is_unix);
  assert_int_equal(s->tls_mode, PX_SITE_TLS_FILES);
  assert_string_equal(s->cert_file, cert_path);
  assert_true(s->redirect_http);
  assert_true(s->hsts.enabled);
  assert_int_equal(s->hsts.max_age, 100);
  assert_true(s->hsts.include_subdomains);
  assert_int_equal(s->line, 11);
  /* The second site inherits the defaults. */
  s = &cfg->sites[1];
  assert_int_equal(s->tls_mode, PX_SITE_TLS_ON_DEMAND);
  assert_false(s->redirect_http);
  assert_true(s->hsts.enabled);
  assert_int_equal(s->hsts.max_age, 5184000);
  free(errors);
  px_config_free(cfg);
}

static void test_json_and_defaults(void **state) {
  const char *text =
      "{\"listen\": {\"http\": \"127.0.0.1:8080\"}, \"sites\": [{\"hosts\": [\"a.test\"], "
      "\"upstreams\": [\"127.0.0.1:9000\"]}]}";
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(text, &errors, &n);
  assert_non_null(cfg);
  assert_int_equal(cfg->limits.header_timeout_ms, 10000);
  assert_int_equal(cfg->limits.max_header_bytes, 32768);
  assert_int_equal(cfg->limits.max_body_bytes, 1ULL << 30);
  assert_true(cfg->workers >= 1);
  assert_string_equal(cfg->storage, "/var/lib/portico");
  assert_int_equal(cfg->sites[0].tls_mode, PX_SITE_TLS_NONE);
  assert_true(cfg->sites[0].redirect_http);
  assert_false(cfg->sites[0].hsts.enabled);
  assert_null(cfg->metrics.text); /* admin.metrics is off by default */
  free(errors);
  px_config_free(cfg);
  cfg = load("listen: {http: \"127.0.0.1:8080\"}\nadmin: {metrics: \"127.0.0.1:9180\"}\n"
             "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:1\"]\n",
             &errors, &n);
  assert_non_null(cfg);
  assert_string_equal(cfg->metrics.text, "127.0.0.1:9180");
  free(errors);
  px_config_free(cfg);
}

#define SITE "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:1\"]\n"
#define HTTP "listen: {http: \"127.0.0.1:80\"}\n"

static void test_errors(void **state) {
  expect_error(HTTP "bogus: 1\n" SITE, "t.yaml:2: bogus: unknown key 'bogus'");
  expect_error(HTTP "admin: {metrics: \"localhost:9180\"}\n" SITE,
               "t.yaml:2: admin.metrics: \"localhost:9180\" is not a numeric IPv4 address");
  expect_error(HTTP "admin: {metrics: \"127.0.0.1:80\"}\n" SITE,
               "admin.metrics: \"127.0.0.1:80\" takes the port of the public listener");
  expect_error("listen: {http: \"0.0.0.0:80\"}\nadmin: {metrics: \"127.0.0.1:80\"}\n" SITE,
               "takes the port of the public listener 0.0.0.0:80");
  expect_error(HTTP "admin: {metrics: [1]}\n" SITE, "admin.metrics: expected an address");
  expect_error(HTTP "workres: 2\n" SITE, "unknown key 'workres' (did you mean 'workers'?)");
  expect_error(HTTP "workers: 0\n" SITE, "t.yaml:2: workers: expected auto or a number");
  expect_error(HTTP "workers: [1]\n" SITE, "workers: expected auto");
  expect_error("listen: {http: \"1.2.3.4\"}\n" SITE,
               "t.yaml:1: listen.http: \"1.2.3.4\" is not host:port");
  expect_error("listen: {http: \"1.2.3.4:0\"}\n" SITE, "has no valid port");
  expect_error("listen: {http: \"example.com:80\"}\n" SITE, "is not a numeric IPv4 address");
  expect_error("listen: {http: [\"127.0.0.1:80\", \"::1:80\"]}\n" SITE, "listen.http[1]");
  expect_error("listen: {}\n" SITE, "nothing to listen on");
  expect_error("listen: {https: \"127.0.0.1:443\"}\n" SITE,
               "listen.https: no site has a certificate");
  expect_error(HTTP "log: {level: loud}\n" SITE,
               "t.yaml:2: log.level: expected error, warn, info or debug");
  expect_error(HTTP "timeouts: {keepalive: 5 minutes}\n" SITE,
               "t.yaml:2: timeouts.keepalive: \"5 minutes\" is not a duration");
  expect_error(HTTP "timeouts: {keepalive: 0}\n" SITE, "timeouts.keepalive: \"0\" is out of range");
  expect_error(HTTP "timeouts: {keepalive: 99999999999999999999}\n" SITE, "is too large");
  expect_error(HTTP "limits: {buffer: 12q}\n" SITE, "limits.buffer: \"12q\" is not a size");
  expect_error(HTTP "limits: {max_headers: 1000}\n" SITE,
               "limits.max_headers: \"1000\" is out of range");
  expect_error(HTTP "limits: {max_bdy: 1}\n" SITE, "did you mean 'max_body'?");
  expect_error(HTTP, "t.yaml:1: sites: expected a list of sites");
  expect_error(HTTP "sites: []\n", "t.yaml:2: sites: the list is empty: add at least one site");
  expect_error(HTTP "sites:\n  - upstreams: [\"127.0.0.1:1\"]\n",
               "sites[0].hosts: a site needs at least one host");
  expect_error(HTTP "sites:\n  - hosts: [a.test]\n",
               "sites[0].upstreams: a site needs at least one upstream");
  expect_error(HTTP "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:99999\"]\n",
               "t.yaml:4: sites[0].upstreams[0]: \"127.0.0.1:99999\" has no valid port");
  expect_error(HTTP "sites:\n  - hosts: [a.test]\n    upstreams: [\"unix:run.sock\"]\n",
               "needs an absolute path");
  expect_error(HTTP "sites:\n  - hosts: [\"a_b.test\"]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "sites[0].hosts[0]: \"a_b.test\" is not a host name");
  expect_error(HTTP "sites:\n  - hosts: [nodot]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "needs at least one dot");
  expect_error(HTTP "sites:\n  - hosts: [\"a..b\"]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "empty label");
  expect_error(HTTP "sites:\n  - hosts: [\"-a.test\"]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "starting with '-'");
  expect_error(HTTP "sites:\n  - hosts: [\"*a.test\"]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "not a valid wildcard");
  expect_error(HTTP SITE "  - hosts: [b.test, A.TEST]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "sites[1].hosts: \"a.test\" is already served by sites[0]");
  expect_error(HTTP "sites:\n  - hosts: [\"*\"]\n    upstreams: [\"127.0.0.1:1\"]\n  - hosts: "
                    "[\"*\", b.test]\n    upstreams: [\"127.0.0.1:1\"]\n",
               "only one site may use the host \"*\"");
  expect_error(HTTP SITE "    tls: letsencrypt\n",
               "sites[0].tls: \"letsencrypt\" is not one of acme, on_demand");
  expect_error(HTTP SITE "    tls: {cert: /nonexistent.pem}\n", "sites[0].tls.key: missing");
  expect_error(HTTP SITE "    tls: {cert: /nonexistent.pem, key: /nonexistent.key}\n",
               "sites[0].tls.cert: cannot read /nonexistent.pem");
  expect_error(HTTP SITE "    redirect_http: maybe\n",
               "sites[0].redirect_http: expected true or false");
  expect_error(HTTP SITE "    hsts: {max_age: 99999999}\n",
               "sites[0].hsts.max_age: is over 63072000");
  expect_error(HTTP SITE "    hsts: {maxage: 1}\n", "sites[0].hsts.maxage: unknown key");
  expect_error(HTTP SITE "    color: blue\n", "t.yaml:5: sites[0].color: unknown key 'color'");
  expect_error(HTTP "acme: {directory: http://ca.test/dir}\n" SITE,
               "t.yaml:2: acme.directory: must be an https:// URL");
  expect_error(HTTP "acme: {key_type: ed25519}\n" SITE,
               "acme.key_type: expected p256, p384, rsa2048");
  expect_error(HTTP "acme: {challenges: [dns-01]}\n" SITE,
               "acme.challenges: lists dns-01, which needs acme.dns");
  expect_error(HTTP "acme: {challenges: [dns-02]}\n" SITE,
               "acme.challenges[0]: \"dns-02\" is not tls-alpn-01, http-01 or dns-01");
  expect_error(HTTP "acme: {dns: {provider: route53}}\n" SITE,
               "acme.dns.provider: \"route53\" is not rfc2136 or hook");
  expect_error(HTTP "acme: {dns: {provider: hook, command: \"/bin/hook --zone x\"}}\n" SITE,
               "acme.dns.command: \"/bin/hook --zone x\" is run without a shell");
  expect_error(HTTP "acme: {challenges: [http-01, http-01]}\n" SITE, "listed twice");
  expect_error(HTTP "acme: {eab: {kid: x}}\n" SITE, "acme.eab: needs both kid and hmac_key");
  expect_error(HTTP "acme: {ca_file: /nonexistent.pem}\n" SITE,
               "acme.ca_file: cannot read /nonexistent.pem");
  expect_error(HTTP "acme: {emial: a@b.c}\n" SITE, "did you mean 'email'?");
  expect_error(HTTP "on_demand: {rate: 20/fortnight}\n" SITE,
               "on_demand.rate: \"20/fortnight\" has an unknown unit");
  expect_error(HTTP "on_demand: {rate: many}\n" SITE, "on_demand.rate: \"many\" is not a rate");
  expect_error(HTTP "on_demand: {ask: \"https://ask.test/\"}\n" SITE,
               "on_demand.ask: https is not supported");
  expect_error(HTTP "on_demand: {max_pending: 0}\n" SITE,
               "on_demand.max_pending: \"0\" is out of range");
  expect_error("listen: [\n", "t.yaml:2: (syntax)");
  expect_error("", "the file is empty");
}

static void test_all_errors_collected(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(HTTP "foo: 1\nbar: 2\n" SITE "    hsts: perhaps\n", &errors, &n);
  assert_null(cfg);
  assert_int_equal(n, 3);
  assert_non_null(strstr(errors, "t.yaml:2: foo"));
  assert_non_null(strstr(errors, "t.yaml:3: bar"));
  assert_non_null(strstr(errors, "t.yaml:7: sites[0].hsts"));
  free(errors);
}

static void test_acme_sections(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(
      HTTP "acme: {directory: \"https://ca.test/dir\", email: ops@example.com, accept_terms: true,"
           " key_type: p384, challenges: [http-01]}\n"
           "on_demand: {ask: \"http://127.0.0.1:9000/allow\", rate: 5/s, max_pending: 7}\n"
           "timeouts: {on_demand: 20s}\n" SITE "    tls: on_demand\n",
      &errors, &n);
  if (cfg == NULL) fprintf(stderr, "%s", errors);
  assert_non_null(cfg);
  assert_string_equal(cfg->acme.directory, "https://ca.test/dir");
  assert_string_equal(cfg->acme.email, "ops@example.com");
  assert_true(cfg->acme.accept_terms);
  assert_int_equal(cfg->acme.challenges[0], 2); /* http-01 */
  assert_int_equal(cfg->acme.challenges[1], 0);
  assert_string_equal(cfg->on_demand.ask, "http://127.0.0.1:9000/allow");
  assert_int_equal(cfg->on_demand.rate_count, 5);
  assert_int_equal(cfg->on_demand.rate_window_ms, 1000);
  assert_int_equal(cfg->on_demand.max_pending, 7);
  assert_int_equal(cfg->limits.on_demand_timeout_ms, 20000);
  assert_int_equal(cfg->sites[0].tls_mode, PX_SITE_TLS_ON_DEMAND);
  free(errors);
  px_config_free(cfg);
  /* Defaults: Let's Encrypt, tls-alpn-01 then http-01, 20/min, 100 pending. */
  errors = NULL;
  cfg = load(HTTP SITE, &errors, &n);
  assert_string_equal(cfg->acme.directory, "https://acme-v02.api.letsencrypt.org/directory");
  assert_int_equal(cfg->acme.challenges[0], 1);
  assert_int_equal(cfg->acme.challenges[1], 2);
  assert_int_equal(cfg->on_demand.rate_count, 20);
  assert_int_equal(cfg->on_demand.rate_window_ms, 60000);
  assert_int_equal(cfg->on_demand.max_pending, 100);
  assert_int_equal(cfg->acme.renew_rate, 10);
  assert_null(cfg->acme.profile);
  assert_int_equal(cfg->on_demand.forget_after_s, 30 * 86400);
  assert_int_equal(cfg->acme.lock_stale_after, 300);
  free(errors);
  px_config_free(cfg);
}

static void test_lifecycle_keys(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(HTTP "acme: {renew_rate: 250, profile: shortlived, lock_stale_after: 5s}\n"
                             "on_demand: {forget_after: 12h}\n" SITE "    tls: on_demand\n",
                        &errors, &n);
  if (cfg == NULL) fprintf(stderr, "%s", errors);
  assert_non_null(cfg);
  assert_int_equal(cfg->acme.renew_rate, 250);
  assert_string_equal(cfg->acme.profile, "shortlived");
  assert_int_equal(cfg->acme.lock_stale_after, 5);
  assert_int_equal(cfg->on_demand.forget_after_s, 12 * 3600);
  free(errors);
  px_config_free(cfg);
  expect_error(HTTP "acme: {renew_rate: 0}\n" SITE, "acme.renew_rate");
  expect_error(HTTP "acme: {renew_rate: many}\n" SITE, "acme.renew_rate");
  expect_error(HTTP "acme: {profile: \"a b\"}\n" SITE, "acme.profile");
  expect_error(HTTP "acme: {lock_stale_after: 2s}\n" SITE, "acme.lock_stale_after");
  expect_error(HTTP "acme: {lock_stale_after: soon}\n" SITE, "acme.lock_stale_after");
  expect_error(HTTP "on_demand: {forget_after: 10s}\n" SITE, "on_demand.forget_after");
  expect_error(HTTP "on_demand: {forget_after: 3x}\n" SITE, "on_demand.forget_after");
}

/* `user:` and `group:` name accounts of this machine (root exists on every
 * one); a missing one, or a group without a user, is an error. */
static void test_user_keys(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load(HTTP "user: root\ngroup: root\n" SITE, &errors, &n);
  assert_non_null(cfg);
  assert_string_equal(cfg->user, "root");
  assert_string_equal(cfg->group, "root");
  free(errors);
  px_config_free(cfg);
  expect_error(HTTP "user: no-such-user-px\n" SITE, "user: no such user \"no-such-user-px\"");
  expect_error(HTTP "user: root\ngroup: no-such-group-px\n" SITE, "group: no such group");
  expect_error(HTTP "group: root\n" SITE, "group: applies only with user: set");
}

static void test_control_keys(void **state) {
  char *errors = NULL;
  int n = 0;
  /* Defaults: a socket per instance in the runtime directory (never under
   * a storage that instances share), no command, no webhook. */
  px_config *cfg = load(HTTP "storage: /srv/p\nruntime_dir: /run/px\n" SITE, &errors, &n);
  assert_non_null(cfg);
  assert_string_equal(cfg->control.admin_socket, "/run/px/admin-127.0.0.1_80.sock");
  assert_null(cfg->control.events_command);
  assert_null(cfg->control.events_webhook);
  assert_int_equal(cfg->control.events_timeout_ms, 0);
  free(errors);
  px_config_free(cfg);
  cfg = load(HTTP "admin: {socket: /run/portico.sock}\n"
                  "events:\n  command: [/usr/local/bin/notify, --to, ops]\n"
                  "  webhook: \"http://127.0.0.1:9000/hook\"\n  timeout: 2m\n" SITE,
             &errors, &n);
  if (cfg == NULL) fprintf(stderr, "%s", errors);
  assert_non_null(cfg);
  assert_string_equal(cfg->control.admin_socket, "/run/portico.sock");
  assert_string_equal(cfg->control.events_command[0], "/usr/local/bin/notify");
  assert_string_equal(cfg->control.events_command[2], "ops");
  assert_null(cfg->control.events_command[3]);
  assert_string_equal(cfg->control.events_webhook, "http://127.0.0.1:9000/hook");
  assert_int_equal(cfg->control.events_timeout_ms, 120000);
  free(errors);
  px_config_free(cfg);
  cfg = load(HTTP "admin: {socket: off}\n" SITE, &errors, &n);
  assert_non_null(cfg);
  assert_null(cfg->control.admin_socket);
  assert_true(cfg->control.admin_off);
  free(errors);
  px_config_free(cfg);
  expect_error(HTTP "admin: {socket: \"\"}\n" SITE, "t.yaml:2: admin.socket: expected a path");
  expect_error(HTTP "admin: {sock: x}\n" SITE, "admin.sock");
  expect_error(HTTP "events: {command: \"notify --all\"}\n" SITE,
               "t.yaml:2: events.command: \"notify --all\" is run without a shell");
  expect_error(HTTP "events: {command: []}\n" SITE, "events.command: expected a list");
  expect_error(HTTP "events: {webhook: \"https://hooks.example/x\"}\n" SITE,
               "events.webhook: https is not supported");
  expect_error(HTTP "events: {webhook: \"ftp://x\"}\n" SITE, "events.webhook: must be an http://");
  expect_error(HTTP "events: {timeout: 0s}\n" SITE, "events.timeout");
  expect_error(HTTP "events: {timeout: 2h}\n" SITE, "events.timeout");
}

static void test_unreadable_file(void **state) {
  char *errors = NULL;
  size_t len;
  int n = 0;
  FILE *mem = open_memstream(&errors, &len);
  assert_null(px_config_load("/nonexistent/portico.yaml", mem, &n));
  fclose(mem);
  assert_int_equal(n, 1);
  assert_non_null(strstr(errors, "/nonexistent/portico.yaml: cannot read: No such file"));
  free(errors);
}

static void test_hsts_warnings(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg =
      load(HTTP SITE "    hsts: {max_age: 31536000, include_subdomains: true, preload: true}\n",
           &errors, &n);
  assert_non_null(cfg);
  char *out = NULL;
  size_t len;
  FILE *mem = open_memstream(&out, &len);
  assert_int_equal(px_config_warnings(cfg, mem), 2);
  fclose(mem);
  assert_non_null(
      strstr(out, "t.yaml:3: sites[0].hsts: warning: for 31536000 seconds (365 days) after a "
                  "browser sees this site, it will refuse to connect to a.test and all their "
                  "subdomains over plain HTTP, and its user can no longer click through a "
                  "certificate error for them."));
  assert_non_null(strstr(out, "sites[0].hsts.preload: warning"));
  free(out);
  free(errors);
  px_config_free(cfg);
}

/* trusted_proxies, the PROXY protocol per listener, log.format and
 * log.request_id_header (docs/logging.md). */
static void test_edge_keys(void **state) {
  char *errors = NULL;
  int n = 0;
  px_config *cfg = load("listen:\n"
                        "  https_proxy_protocol: true\n"
                        "  http: [\"127.0.0.1:8080\", {address: \"127.0.0.1:8081\", "
                        "proxy_protocol: true}]\n"
                        "  https: {address: \"127.0.0.1:8443\", proxy_protocol: false}\n"
                        "trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
                        "timeouts: {proxy_header: 2s}\n"
                        "log: {format: json, request_id_header: X-Trace}\n"
                        "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:9\"]\n"
                        "    tls: {cert: /nonexistent, key: /nonexistent}\n",
                        &errors, &n);
  /* The certificate files do not exist: those errors alone (the mapping
   * form of an https listener and every new key are accepted). */
  assert_null(cfg);
  if (n != 2) fprintf(stderr, "%s", errors);
  assert_int_equal(n, 2);
  assert_non_null(strstr(errors, "sites[0].tls"));
  free(errors);
  errors = NULL;
  cfg = load("listen:\n"
             "  http_proxy_protocol: true\n"
             "  http: [\"127.0.0.1:8080\", {address: \"127.0.0.1:8081\", proxy_protocol: false}]\n"
             "trusted_proxies: [10.0.0.0/8, \"::1\"]\n"
             "timeouts: {proxy_header: 2s}\n"
             "log: {format: json, request_id_header: X-Trace}\n"
             "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:9\"]\n",
             &errors, &n);
  if (cfg == NULL) fprintf(stderr, "%s", errors);
  assert_non_null(cfg);
  assert_int_equal(cfg->nhttp, 2);
  assert_true(cfg->http[0].proxy_protocol);
  assert_false(cfg->http[1].proxy_protocol);
  assert_string_equal(cfg->http[1].text, "127.0.0.1:8081");
  assert_int_equal(cfg->ntrusted_proxies, 2);
  assert_int_equal(cfg->limits.proxy_header_timeout_ms, 2000);
  assert_true(cfg->log_json);
  assert_string_equal(cfg->request_id_header, "X-Trace");
  px_config_free(cfg);
  free(errors);
  errors = NULL;
  /* Errors name the line and key. */
  cfg = load("listen:\n  http: [{proxy_protocol: true}]\n"
             "trusted_proxies: [10.0.0.0/8, 10.0.0.1/8]\n"
             "sites:\n  - hosts: [a.test]\n    upstreams: [\"127.0.0.1:9\"]\n",
             &errors, &n);
  assert_null(cfg);
  assert_non_null(strstr(errors, "t.yaml:2: listen.http[0]: a listener given as a mapping needs"));
  assert_non_null(strstr(errors, "t.yaml:3: trusted_proxies[1]: \"10.0.0.1/8\" has host bits"));
  free(errors);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_full_config),     cmocka_unit_test(test_json_and_defaults),
      cmocka_unit_test(test_errors),          cmocka_unit_test(test_all_errors_collected),
      cmocka_unit_test(test_unreadable_file), cmocka_unit_test(test_hsts_warnings),
      cmocka_unit_test(test_acme_sections),   cmocka_unit_test(test_lifecycle_keys),
      cmocka_unit_test(test_control_keys),    cmocka_unit_test(test_user_keys),
      cmocka_unit_test(test_edge_keys),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
