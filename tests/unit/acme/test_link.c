/* Unit tests for acme/link.c: Link header values as RFC 8288 §3 writes
 * them (relation lists, quoting, several links per field). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/link.h"
#include "tls/unconst.h"

/* A response whose Link fields are `values` (NULL-terminated). */
static px_acme_response with_links(const char *const *values) {
  px_acme_response r = {0};
  for (; *values && r.nlinks < PX_ACME_MAX_LINKS; values++)
    r.links[r.nlinks++] = px_unconst(*values);
  return r;
}

/* Checks the first target for `rel` is `want` (NULL: there is none). */
static void expect(const char *const *values, const char *rel, const char *want) {
  px_acme_response r = with_links(values);
  char *got = px_acme_link(&r, rel, NULL);
  if (want == NULL) {
    if (got) fail_msg("rel %s: expected nothing, got %s", rel, got);
    return;
  }
  if (got == NULL) fail_msg("rel %s: expected %s, got nothing", rel, want);
  assert_string_equal(got, want);
  free(got);
}

static void test_forms(void **state) {
  (void)state;
  const char *quoted[] = {"<https://ca/issuer>;rel=\"up\"", NULL};
  const char *bare[] = {"<https://ca/issuer>; rel=up", NULL};
  const char *spaced[] = {"<https://ca/issuer> ; rel = \"up\"", NULL};
  const char *upper[] = {"<https://ca/issuer>;REL=\"UP\"", NULL};
  expect(quoted, "up", "https://ca/issuer");
  expect(bare, "up", "https://ca/issuer");
  expect(spaced, "up", "https://ca/issuer");
  expect(upper, "up", "https://ca/issuer"); /* relation types are case-insensitive */
}

/* "rel=update" is not "up"; a space-separated list is searched word by word. */
static void test_whole_words(void **state) {
  (void)state;
  const char *update[] = {"<https://ca/a>;rel=\"update\"", NULL};
  const char *update_bare[] = {"<https://ca/a>;rel=update", NULL};
  const char *upper_half[] = {"<https://ca/a>;rel=\"upper\"", NULL};
  const char *listed[] = {"<https://ca/a>;rel=\"index up\"", NULL};
  const char *in_uri[] = {"<https://ca/rel=up>;rel=\"next\"", NULL};
  const char *title[] = {"<https://ca/a>;title=\"rel=up\";rel=next", NULL};
  expect(update, "up", NULL);
  expect(update_bare, "up", NULL);
  expect(upper_half, "up", NULL);
  expect(listed, "up", "https://ca/a");
  expect(in_uri, "up", NULL);
  expect(title, "up", NULL);
}

/* Several links in one field, and several fields, found in turn. */
static void test_several(void **state) {
  (void)state;
  const char *values[] = {"<https://ca/dir>;rel=\"index\", <https://ca/alt1>;rel=\"alternate\"",
                          "<https://ca/alt2>;rel=\"alternate\";title=\"a, b\"",
                          "<https://ca/up>;rel=\"up\"", NULL};
  px_acme_response r = with_links(values);
  size_t pos = 0;
  char *a = px_acme_link(&r, "alternate", &pos);
  char *b = px_acme_link(&r, "alternate", &pos);
  char *c = px_acme_link(&r, "alternate", &pos);
  assert_string_equal(a, "https://ca/alt1");
  assert_string_equal(b, "https://ca/alt2");
  assert_null(c);
  free(a);
  free(b);
  expect(values, "up", "https://ca/up");
  expect(values, "index", "https://ca/dir");
}

/* Malformed values give nothing rather than a guess. */
static void test_malformed(void **state) {
  (void)state;
  const char *no_brackets[] = {"https://ca/a;rel=up", NULL};
  const char *unclosed[] = {"<https://ca/a;rel=up", NULL};
  const char *junk_after[] = {"<https://ca/a> junk;rel=up", NULL};
  const char *empty[] = {"", NULL};
  expect(no_brackets, "up", NULL);
  expect(unclosed, "up", NULL);
  expect(junk_after, "up", NULL);
  expect(empty, "up", NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_forms),
      cmocka_unit_test(test_whole_words),
      cmocka_unit_test(test_several),
      cmocka_unit_test(test_malformed),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
