/*
 * The per-name backoff record portico keeps on disk (acme/backoff.c): a file
 * in the storage directory, so whatever is there (a crash mid-write, an
 * operator's edit, a disk error) is parsed at start-up.
 *
 * Oracle beyond the sanitizers: an accepted record serialises and parses back
 * to the same record, and its strings stay NUL-terminated in their fields.
 *
 * The job record that replaces it has its own driver (fuzz_job_json.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/backoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_acme_backoff b;
  if (px_acme_backoff_from_json((const char *)data, size, &b) != 0) return 0;
  if (!memchr(b.name, 0, sizeof(b.name)) || !memchr(b.last_error, 0, sizeof(b.last_error))) abort();
  px_acme_backoff_ready(&b, 1700000000);
  char *json = px_acme_backoff_to_json(&b);
  if (json == NULL) return 0;
  px_acme_backoff again;
  if (px_acme_backoff_from_json(json, strlen(json), &again) != 0) abort();
  if (strcmp(again.name, b.name) != 0 || again.failures != b.failures ||
      again.last_failure != b.last_failure || again.next_attempt != b.next_attempt ||
      strcmp(again.last_error, b.last_error) != 0)
    abort();
  free(json);
  return 0;
}
