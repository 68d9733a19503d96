/* Unit tests for acme/life/job.c: the record's setters, its JSON round
 * trip, strict decoding of damaged files, the event ring, and migration
 * from the failure records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/life/job.h"

#define T0 INT64_C(1700000000)
#define DAY INT64_C(86400)

static void full_job(px_job *j) {
  const char *names[] = {"example.com", "www.example.com", "*.example.com"};
  px_acme_problem p;
  px_job_init(j);
  assert_int_equal(px_job_set_names(j, names, 3), 0);
  j->key_type = PX_ACME_KEY_RSA3072;
  assert_int_equal(px_job_set_profile(j, "shortlived"), 0);
  assert_int_equal(
      px_job_set_certificate(j, T0, T0 + 6 * DAY, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"), 0);
  assert_int_equal(px_job_set_window(j, T0 + 3 * DAY, T0 + 4 * DAY, "https://ca.example/why",
                                     T0 + 60, T0 + 12 * 3600),
                   0);
  j->last_seen = T0 + 100;
  memset(&p, 0, sizeof(p));
  snprintf(p.type, sizeof(p.type), "urn:ietf:params:acme:error:rateLimited");
  snprintf(p.detail, sizeof(p.detail), "too many certificates (5) for \"example.com\"");
  p.status = 429;
  assert_int_equal(px_job_record_failure(j, T0 + 3 * DAY, &p, NULL, T0 + 3 * DAY + 3600), 0);
  assert_int_equal(px_job_add_event(j, T0 + 5, "renewed", "serial 01"), 0);
  j->next_run = T0 + 3 * DAY + 3600;
  j->next_reason = PX_RENEW_RETRY_AFTER;
}

static void test_round_trip(void **state) {
  px_job a, b;
  char *json, *again;
  (void)state;
  full_job(&a);
  assert_int_equal(a.state, PX_JOB_FAILED);
  assert_int_equal(a.failures, 1);
  assert_true(a.last_error.rate_limited);
  json = px_job_to_json(&a);
  assert_non_null(json);
  px_job_init(&b);
  assert_int_equal(px_job_from_json(json, strlen(json), &b), 0);
  assert_int_equal(b.nnames, 3);
  assert_string_equal(b.names[2], "*.example.com");
  assert_int_equal(b.key_type, PX_ACME_KEY_RSA3072);
  assert_string_equal(b.profile, "shortlived");
  assert_int_equal(b.state, PX_JOB_FAILED);
  assert_int_equal(b.not_before, T0);
  assert_int_equal(b.not_after, T0 + 6 * DAY);
  assert_string_equal(b.cert_id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  assert_true(b.has_window);
  assert_int_equal(b.window_start, T0 + 3 * DAY);
  assert_int_equal(b.window_end, T0 + 4 * DAY);
  assert_int_equal(b.ari_fetched, T0 + 60);
  assert_int_equal(b.ari_next_poll, T0 + 12 * 3600);
  assert_string_equal(b.explanation_url, "https://ca.example/why");
  assert_int_equal(b.next_run, T0 + 3 * DAY + 3600);
  assert_int_equal(b.next_reason, PX_RENEW_RETRY_AFTER);
  assert_int_equal(b.failures, 1);
  assert_int_equal(b.last_failure, T0 + 3 * DAY);
  assert_int_equal(b.retry_after, T0 + 3 * DAY + 3600);
  assert_string_equal(b.last_error.type, "urn:ietf:params:acme:error:rateLimited");
  assert_string_equal(b.last_error.detail, "too many certificates (5) for \"example.com\"");
  assert_int_equal(b.last_error.status, 429);
  assert_true(b.last_error.rate_limited);
  assert_int_equal(b.last_seen, T0 + 100);
  assert_int_equal(px_job_event_count(&b), 2);
  assert_string_equal(px_job_event_at(&b, 0)->kind, "failed");
  assert_non_null(strstr(px_job_event_at(&b, 0)->detail, "rateLimited"));
  assert_string_equal(px_job_event_at(&b, 1)->kind, "renewed");
  assert_int_equal(px_job_event_at(&b, 1)->at, T0 + 5);
  assert_null(px_job_event_at(&b, 2));
  /* The encoding is canonical: encoding the decoded job gives the same bytes. */
  again = px_job_to_json(&b);
  assert_string_equal(json, again);
  free(again);
  free(json);
  px_job_dispose(&a);
  px_job_dispose(&b);

  /* A minimal job (no window, no error, no events) round-trips too. */
  const char *one = "a.example";
  px_job_init(&a);
  assert_null(px_job_to_json(&a)); /* no names: nothing to write */
  assert_int_equal(px_job_set_names(&a, &one, 1), 0);
  json = px_job_to_json(&a);
  assert_int_equal(px_job_from_json(json, strlen(json), &b), 0);
  assert_int_equal(b.state, PX_JOB_PENDING);
  assert_false(b.has_window);
  assert_null(b.last_error.type);
  assert_null(b.profile);
  free(json);
  px_job_dispose(&a);
  px_job_dispose(&b);
}

static void test_setters_refuse(void **state) {
  px_job j;
  const char *bad1[] = {"Example.com"}, *bad2[] = {"a..b"}, *bad3[] = {"x.example", "x.example"},
             *bad4[] = {"**.example.com"}, *bad5[] = {"../etc"}, *ok[] = {"x.example"};
  char *many[PX_JOB_NAMES_MAX + 1];
  (void)state;
  px_job_init(&j);
  assert_int_equal(px_job_set_names(&j, ok, 1), 0);
  assert_int_equal(px_job_set_names(&j, bad1, 1), -1);
  assert_int_equal(px_job_set_names(&j, bad2, 1), -1);
  assert_int_equal(px_job_set_names(&j, bad3, 2), -1);
  assert_int_equal(px_job_set_names(&j, bad4, 1), -1);
  assert_int_equal(px_job_set_names(&j, bad5, 1), -1);
  assert_int_equal(px_job_set_names(&j, ok, 0), -1);
  assert_string_equal(j.names[0], "x.example"); /* unchanged by the refusals */
  for (int i = 0; i <= PX_JOB_NAMES_MAX; i++) {
    many[i] = malloc(32);
    snprintf(many[i], 32, "n%d.example", i);
  }
  assert_int_equal(px_job_set_names(&j, (const char *const *)many, PX_JOB_NAMES_MAX + 1), -1);
  assert_int_equal(px_job_set_names(&j, (const char *const *)many, PX_JOB_NAMES_MAX), 0);
  for (int i = 0; i <= PX_JOB_NAMES_MAX; i++)
    free(many[i]);
  assert_int_equal(px_job_set_window(&j, T0, T0, NULL, T0, T0), -1);
  assert_int_equal(px_job_add_event(&j, T0, "Bad Kind", NULL), -1);
  assert_int_equal(px_job_add_event(&j, T0, "", NULL), -1);
  assert_int_equal(px_job_add_event(&j, T0, "a-very-long-kind-name-xyz", NULL), -1);
  /* Control bytes are made log-safe; long strings are cut to their bound. */
  char longs[2000];
  memset(longs, 'u', sizeof(longs) - 1);
  longs[sizeof(longs) - 1] = '\0';
  assert_int_equal(px_job_add_event(&j, T0, "note", "a\nb\x1b[31m\xc3\xa9"), 0);
  assert_string_equal(px_job_event_at(&j, 0)->detail, "a?b?[31m??");
  assert_int_equal(px_job_set_profile(&j, longs), 0);
  assert_int_equal(strlen(j.profile), PX_JOB_PROFILE_MAX);
  assert_int_equal(px_job_record_failure(&j, T0, NULL, longs, 0), 0);
  assert_int_equal(strlen(j.last_error.detail), PX_JOB_DETAIL_MAX);
  assert_false(j.last_error.rate_limited);
  px_job_dispose(&j);
}

static void test_event_ring(void **state) {
  px_job j, k;
  const char *one = "ring.example";
  char detail[32], *json;
  (void)state;
  px_job_init(&j);
  assert_int_equal(px_job_set_names(&j, &one, 1), 0);
  for (int i = 0; i < 53; i++) {
    snprintf(detail, sizeof(detail), "event %d", i);
    assert_int_equal(px_job_add_event(&j, T0 + i, "note", detail), 0);
    assert_int_equal(px_job_event_count(&j), i + 1 < PX_JOB_EVENTS_MAX ? i + 1 : PX_JOB_EVENTS_MAX);
  }
  /* The last 20 are kept, oldest first: events 33..52. */
  for (size_t i = 0; i < PX_JOB_EVENTS_MAX; i++) {
    snprintf(detail, sizeof(detail), "event %zu", 33 + i);
    assert_string_equal(px_job_event_at(&j, i)->detail, detail);
    assert_int_equal(px_job_event_at(&j, i)->at, T0 + 33 + (int64_t)i);
  }
  json = px_job_to_json(&j);
  px_job_init(&k);
  assert_int_equal(px_job_from_json(json, strlen(json), &k), 0);
  assert_int_equal(px_job_event_count(&k), PX_JOB_EVENTS_MAX);
  assert_string_equal(px_job_event_at(&k, 0)->detail, "event 33");
  assert_string_equal(px_job_event_at(&k, 19)->detail, "event 52");
  free(json);
  px_job_dispose(&j);
  px_job_dispose(&k);
}

static int decode(const char *s) {
  px_job j;
  int rc;
  px_job_init(&j);
  rc = px_job_from_json(s, strlen(s), &j);
  if (rc != 0) assert_int_equal(j.nnames, 0); /* left empty */
  px_job_dispose(&j);
  return rc;
}

#define BASE "\"version\":1,\"names\":[\"a.example\"],\"key_type\":\"p256\",\"state\":\"valid\""

static void test_strict_decoding(void **state) {
  px_job a;
  char *json;
  (void)state;
  assert_int_equal(decode("{" BASE "}"), 0);
  /* Unknown members are ignored (a newer writer). */
  assert_int_equal(decode("{" BASE ",\"shiny\":{\"x\":[1,2]}}"), 0);
  const char *bad[] = {
      "",
      "garbage",
      "[]",
      "null",
      "{}",
      "{\"version\":2,\"names\":[\"a.example\"],\"key_type\":\"p256\",\"state\":\"valid\"}",
      "{\"version\":0,\"names\":[\"a.example\"],\"key_type\":\"p256\",\"state\":\"valid\"}",
      "{\"version\":\"1\",\"names\":[\"a.example\"],\"key_type\":\"p256\",\"state\":\"valid\"}",
      "{\"version\":1,\"names\":[],\"key_type\":\"p256\",\"state\":\"valid\"}",
      "{\"version\":1,\"names\":[\"../x\"],\"key_type\":\"p256\",\"state\":\"valid\"}",
      "{\"version\":1,\"names\":[\"a.example\"],\"key_type\":\"dsa\",\"state\":\"valid\"}",
      "{\"version\":1,\"names\":[\"a.example\"],\"key_type\":\"p256\",\"state\":\"happy\"}",
      "{\"version\":1,\"names\":[\"a.example\"],\"key_type\":\"p256\"}",
      "{" BASE ",\"not_after\":-1}",
      "{" BASE ",\"not_after\":1e10}",
      "{" BASE ",\"not_after\":\"soon\"}",
      "{" BASE ",\"not_after\":99999999999999}",
      "{" BASE ",\"failures\":-3}",
      "{" BASE ",\"failures\":4294967296}",
      "{" BASE ",\"next_reason\":\"whim\"}",
      "{" BASE ",\"ari\":{\"start\":5,\"end\":4}}",
      "{" BASE ",\"ari\":[]}",
      "{" BASE ",\"last_error\":{\"status\":1000}}",
      "{" BASE ",\"last_error\":{\"rate_limited\":1}}",
      "{" BASE ",\"last_error\":{\"type\":5}}",
      "{" BASE ",\"events\":{}}",
      "{" BASE ",\"events\":[{\"at\":1,\"kind\":\"BAD\"}]}",
      "{" BASE ",\"events\":[{\"at\":1}]}",
      "{" BASE ",\"profile\":\"a\\u0000b\"}",
      "{" BASE ",\"state\":\"valid\"}", /* duplicate key */
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    if (decode(bad[i]) != -1) fail_msg("accepted: %s", bad[i]);
  }

  /* 21 events is over the bound. */
  char buf[4096];
  size_t n = (size_t)snprintf(buf, sizeof(buf), "{" BASE ",\"events\":[");
  for (int i = 0; i < 21; i++)
    n +=
        (size_t)snprintf(buf + n, sizeof(buf) - n, "%s{\"at\":%d,\"kind\":\"x\"}", i ? "," : "", i);
  snprintf(buf + n, sizeof(buf) - n, "]}");
  assert_int_equal(decode(buf), -1);

  /* Every truncation of a valid file is refused, never a crash. */
  full_job(&a);
  json = px_job_to_json(&a);
  for (size_t len = 0; len < strlen(json); len++) {
    px_job j;
    px_job_init(&j);
    assert_int_equal(px_job_from_json(json, len, &j), -1);
    px_job_dispose(&j);
  }
  /* Flipping bytes never crashes (the result may or may not decode). */
  for (size_t i = 0; i < strlen(json); i++) {
    char *copy = strdup(json);
    px_job j;
    copy[i] = (char)(copy[i] ^ 0x5a);
    px_job_init(&j);
    if (px_job_from_json(copy, strlen(copy), &j) == 0) assert_true(j.nnames >= 1);
    px_job_dispose(&j);
    free(copy);
  }
  free(json);
  px_job_dispose(&a);

  /* Oversized input is refused before parsing. */
  size_t big = PX_JOB_JSON_MAX + 1;
  char *huge = malloc(big + 1);
  memset(huge, ' ', big);
  memcpy(huge, "{" BASE "}", strlen("{" BASE "}"));
  huge[big] = '\0';
  px_job_init(&a);
  assert_int_equal(px_job_from_json(huge, big, &a), -1);
  assert_int_equal(px_job_from_json(huge, PX_JOB_JSON_MAX, &a), 0);
  px_job_dispose(&a);
  free(huge);
}

static void test_migration(void **state) {
  px_job j;
  px_acme_backoff b;
  const char *meta = "{\"alternates\":[],\"issued_at\":1700000000,\"names\":[\"m.example\","
                     "\"www.m.example\"],\"not_after\":1707776000,\"serial\":\"0a\"}";
  (void)state;
  px_job_init(&j);
  /* A certificate and no failure record: VALID. */
  assert_int_equal(px_job_migrate(&j, "m.example", NULL, meta, strlen(meta), T0 + DAY), 0);
  assert_int_equal(j.state, PX_JOB_VALID);
  assert_int_equal(j.nnames, 2);
  assert_string_equal(j.names[1], "www.m.example");
  assert_int_equal(j.not_before, 1700000000);
  assert_int_equal(j.not_after, 1707776000);
  assert_int_equal(j.failures, 0);
  assert_string_equal(px_job_event_at(&j, 0)->kind, "migrated");
  /* It then schedules by the one-third rule. */
  px_life_rand sys = px_life_rand_system();
  px_job_schedule(&j, T0 + DAY, &sys);
  assert_int_equal(j.next_reason, PX_RENEW_ONE_THIRD);
  assert_in_range(j.next_run, 1707776000 - 30 * DAY - DAY, 1707776000 - 30 * DAY + DAY);

  /* A failure record and a certificate: VALID, with the backoff carried over. */
  px_acme_backoff_init(&b, "m.example");
  px_acme_backoff_fail(&b, T0, "dns (HTTP 400): NXDOMAIN");
  px_acme_backoff_fail(&b, T0 + 60, "dns (HTTP 400): NXDOMAIN");
  assert_int_equal(px_job_migrate(&j, "m.example", &b, meta, strlen(meta), T0 + 100), 0);
  assert_int_equal(j.state, PX_JOB_VALID);
  assert_int_equal(j.failures, 2);
  assert_int_equal(j.last_failure, T0 + 60);
  assert_string_equal(j.last_error.detail, "dns (HTTP 400): NXDOMAIN");
  /* The backoff carries on where it was: the 2nd failure waits 10 min. */
  px_job_schedule(&j, T0 + 100, &sys);
  /* (Not due yet by the one-third rule either, so that wins.) */
  assert_int_equal(j.next_reason, PX_RENEW_ONE_THIRD);

  /* A failure record only: FAILED, next run at the backoff's time. */
  assert_int_equal(px_job_migrate(&j, "m.example", &b, NULL, 0, T0 + 100), 0);
  assert_int_equal(j.state, PX_JOB_FAILED);
  assert_int_equal(j.nnames, 1);
  assert_int_equal(j.not_after, 0);
  px_job_schedule(&j, T0 + 100, &sys);
  assert_int_equal(j.next_reason, PX_RENEW_BACKOFF);
  assert_int_equal(j.next_run, T0 + 60 + 600);

  /* An expired certificate: EXPIRED. */
  assert_int_equal(px_job_migrate(&j, "m.example", NULL, meta, strlen(meta), 1707776000), 0);
  assert_int_equal(j.state, PX_JOB_EXPIRED);

  /* Neither: PENDING. */
  assert_int_equal(px_job_migrate(&j, "m.example", NULL, NULL, 0, T0), 0);
  assert_int_equal(j.state, PX_JOB_PENDING);

  /* Refusals: a bad name, garbage meta, a meta for another name. */
  assert_int_equal(px_job_migrate(&j, "../m", NULL, NULL, 0, T0), -1);
  assert_int_equal(j.nnames, 0);
  assert_int_equal(px_job_migrate(&j, "m.example", NULL, "{garbage", 8, T0), -1);
  assert_int_equal(px_job_migrate(&j, "m.example", NULL, "{}", 2, T0), -1);
  assert_int_equal(px_job_migrate(&j, "other.example", NULL, meta, strlen(meta), T0), -1);
  px_job_dispose(&j);
}

static void test_failure_and_success(void **state) {
  px_job j;
  const char *one = "f.example";
  px_life_rand sys = px_life_rand_system();
  (void)state;
  px_job_init(&j);
  assert_int_equal(px_job_set_names(&j, &one, 1), 0);
  assert_int_equal(px_job_set_certificate(&j, T0, T0 + 90 * DAY, NULL), 0);
  for (int i = 0; i < 4; i++)
    assert_int_equal(px_job_record_failure(&j, T0 + 61 * DAY, NULL, "save failed: ENOSPC", 0), 0);
  assert_int_equal(j.state, PX_JOB_FAILED);
  assert_int_equal(j.failures, 4);
  px_job_schedule(&j, T0 + 61 * DAY, &sys);
  assert_int_equal(j.next_reason, PX_RENEW_BACKOFF);
  assert_int_equal(j.next_run, T0 + 62 * DAY);
  /* Past expiry, a failure leaves the job EXPIRED. */
  assert_int_equal(px_job_record_failure(&j, T0 + 91 * DAY, NULL, "x", 0), 0);
  assert_int_equal(j.state, PX_JOB_EXPIRED);
  /* A new certificate clears backoff and the old window, keeps the error. */
  assert_int_equal(px_job_set_window(&j, T0, T0 + 1, NULL, T0, T0), 0);
  assert_int_equal(px_job_set_certificate(&j, T0 + 91 * DAY, T0 + 181 * DAY, "id.x"), 0);
  assert_int_equal(j.state, PX_JOB_VALID);
  assert_int_equal(j.failures, 0);
  assert_false(j.has_window);
  assert_string_equal(j.last_error.detail, "x");
  assert_string_equal(px_job_state_name(PX_JOB_RENEWING), "renewing");
  px_job_dispose(&j);
}

/* The ask endpoint's per-name settings: written only when set, read back,
 * and a wrong type refuses the file. */
static void test_site_settings(void **state) {
  (void)state;
  px_job j, back;
  const char *names[] = {"shop.example"};
  px_job_init(&j);
  px_job_init(&back);
  assert_int_equal(j.redirect_http, -1);
  assert_int_equal(j.hsts, -1);
  assert_int_equal(px_job_set_names(&j, names, 1), 0);
  char *json = px_job_to_json(&j);
  assert_null(strstr(json, "redirect_http"));
  assert_null(strstr(json, "hsts"));
  free(json);
  j.redirect_http = 0;
  j.hsts = 600;
  json = px_job_to_json(&j);
  assert_non_null(strstr(json, "\"redirect_http\":false"));
  assert_non_null(strstr(json, "\"hsts\":600"));
  assert_int_equal(px_job_from_json(json, strlen(json), &back), 0);
  assert_int_equal(back.redirect_http, 0);
  assert_int_equal(back.hsts, 600);
  free(json);
  const char *bad = "{\"version\":1,\"names\":[\"shop.example\"],\"key_type\":\"p256\","
                    "\"state\":\"pending\",\"redirect_http\":\"no\"}";
  assert_int_equal(px_job_from_json(bad, strlen(bad), &back), -1);
  px_job_dispose(&j);
  px_job_dispose(&back);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_setters_refuse),
      cmocka_unit_test(test_site_settings),       cmocka_unit_test(test_event_ring),
      cmocka_unit_test(test_strict_decoding),     cmocka_unit_test(test_migration),
      cmocka_unit_test(test_failure_and_success),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
