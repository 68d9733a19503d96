/* Unit tests for acme/problem.c: the retry table and Retry-After. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "acme/proto/problem.h"

#define URN "urn:ietf:params:acme:error:"

static void test_classify(void **state) {
  static const char *const permanent[] = {"malformed",
                                          "unauthorized",
                                          "rejectedIdentifier",
                                          "caa",
                                          "dns",
                                          "connection",
                                          "incorrectResponse",
                                          "userActionRequired",
                                          "externalAccountRequired",
                                          "badCSR",
                                          "tls",
                                          "accountDoesNotExist",
                                          "badSignatureAlgorithm",
                                          "unsupportedIdentifier",
                                          "compound"};
  char type[128];
  (void)state;
  assert_int_equal(px_acme_problem_classify(URN "badNonce", 400), PX_ACME_RETRY_NONCE);
  assert_int_equal(px_acme_problem_classify(URN "rateLimited", 429), PX_ACME_RETRY_AFTER);
  assert_int_equal(px_acme_problem_classify(URN "serverInternal", 500), PX_ACME_RETRY_AFTER);
  for (size_t i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++) {
    snprintf(type, sizeof(type), URN "%s", permanent[i]);
    if (px_acme_problem_classify(type, 403) != PX_ACME_PERMANENT)
      fail_msg("%s should be permanent", permanent[i]);
  }
  /* 5xx and unknown types go by status. */
  assert_int_equal(px_acme_problem_classify(NULL, 503), PX_ACME_RETRY_AFTER);
  assert_int_equal(px_acme_problem_classify(NULL, 502), PX_ACME_RETRY_AFTER);
  assert_int_equal(px_acme_problem_classify(URN "malformed", 503), PX_ACME_RETRY_AFTER);
  assert_int_equal(px_acme_problem_classify(URN "somethingNew", 400), PX_ACME_PERMANENT);
  assert_int_equal(px_acme_problem_classify("about:blank", 404), PX_ACME_PERMANENT);
  /* badNonce only counts in the ACME namespace. */
  assert_int_equal(px_acme_problem_classify("urn:other:badNonce", 400), PX_ACME_PERMANENT);
}

static void test_parse(void **state) {
  const char *body = "{\"type\":\"" URN "rejectedIdentifier\",\"detail\":\"no \\\"evil\\\"\\n"
                     "name\",\"status\":400,\"subproblems\":[{\"type\":\"" URN "dns\"},{}]}";
  px_acme_problem p;
  char msg[256];
  (void)state;
  assert_int_equal(px_acme_problem_parse(body, strlen(body), 400, &p), 0);
  assert_string_equal(p.type, URN "rejectedIdentifier");
  /* Quotes and the newline are escaped so the detail cannot forge log lines. */
  assert_string_equal(p.detail, "no \\\"evil\\\"\\x0aname");
  assert_int_equal(p.status, 400);
  assert_int_equal(p.subproblems, 2);
  assert_int_equal(p.retry, PX_ACME_PERMANENT);
  px_acme_problem_message(&p, msg, sizeof(msg));
  assert_string_equal(msg,
                      "rejectedIdentifier (HTTP 400): no \\\"evil\\\"\\x0aname (2 subproblems)");

  assert_int_equal(px_acme_problem_parse("<html>", 6, 502, &p), -EINVAL);
  assert_int_equal(p.status, 502);
  assert_int_equal(p.retry, PX_ACME_RETRY_AFTER);
  assert_int_equal(px_acme_problem_parse(NULL, 0, 400, &p), -EINVAL);
  assert_int_equal(p.retry, PX_ACME_PERMANENT);
}

static void test_bounded_strings(void **state) {
  char body[4096];
  px_acme_problem p;
  size_t n;
  (void)state;
  n = (size_t)snprintf(body, sizeof(body), "{\"type\":\"" URN "badNonce\",\"detail\":\"");
  memset(body + n, 'x', 2000);
  memcpy(body + n + 2000, "\"}", 3);
  assert_int_equal(px_acme_problem_parse(body, strlen(body), 400, &p), 0);
  assert_int_equal(strlen(p.detail), PX_ACME_PROBLEM_DETAIL_MAX - 1);
  assert_int_equal(p.retry, PX_ACME_RETRY_NONCE);
}

static void test_user_action_required(void **state) {
  const char *body = "{\"type\":\"" URN "userActionRequired\",\"detail\":\"Terms changed\","
                     "\"instance\":\"https://ca.example/tos-agree\"}";
  px_acme_problem p;
  char msg[256];
  (void)state;
  assert_int_equal(px_acme_problem_parse(body, strlen(body), 403, &p), 0);
  assert_int_equal(p.retry, PX_ACME_PERMANENT);
  px_acme_problem_message(&p, msg, sizeof(msg));
  assert_non_null(strstr(msg, "https://ca.example/tos-agree"));
  assert_int_equal(strncmp(msg, "userActionRequired (HTTP 403)", 29), 0);
  /* Truncation keeps a terminated string. */
  assert_int_equal(px_acme_problem_message(&p, msg, 10), 9);
  assert_int_equal(strlen(msg), 9);
}

static void test_retry_after(void **state) {
  /* 2015-10-21T07:28:00Z = 1445412480 */
  const int64_t now = 1445412480 - 120;
  (void)state;
  assert_int_equal(px_acme_retry_after("120", 3, now), 120);
  assert_int_equal(px_acme_retry_after(" 0 ", 3, now), 0);
  assert_int_equal(px_acme_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 29, now), 120);
  assert_int_equal(px_acme_retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", 33, now), 120);
  assert_int_equal(px_acme_retry_after("Wed Oct 21 07:28:00 2015", 24, now), 120);
  /* In the past: now. */
  assert_int_equal(px_acme_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 29, now + 1000), 0);
  /* Absent or garbage: the default. */
  assert_int_equal(px_acme_retry_after(NULL, 0, now), PX_ACME_RETRY_AFTER_DEFAULT);
  assert_int_equal(px_acme_retry_after("", 0, now), PX_ACME_RETRY_AFTER_DEFAULT);
  assert_int_equal(px_acme_retry_after("-5", 2, now), PX_ACME_RETRY_AFTER_DEFAULT);
  assert_int_equal(px_acme_retry_after("soon", 4, now), PX_ACME_RETRY_AFTER_DEFAULT);
  assert_int_equal(px_acme_retry_after("12abc", 5, now), PX_ACME_RETRY_AFTER_DEFAULT);
  /* Capped. */
  assert_int_equal(px_acme_retry_after("999999999999999999999999", 24, now),
                   PX_ACME_RETRY_AFTER_MAX);
  assert_int_equal(px_acme_retry_after("Wed, 21 Oct 2099 07:28:00 GMT", 29, now),
                   PX_ACME_RETRY_AFTER_MAX);
  /* Not NUL-terminated: only len bytes count. */
  assert_int_equal(px_acme_retry_after("3000", 2, now), 30);
}

static void test_short_type(void **state) {
  (void)state;
  assert_string_equal(px_acme_problem_short_type(URN "caa"), "caa");
  assert_string_equal(px_acme_problem_short_type("about:blank"), "about:blank");
  assert_string_equal(px_acme_problem_short_type(NULL), "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_classify),        cmocka_unit_test(test_parse),
      cmocka_unit_test(test_bounded_strings), cmocka_unit_test(test_user_action_required),
      cmocka_unit_test(test_retry_after),     cmocka_unit_test(test_short_type),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
