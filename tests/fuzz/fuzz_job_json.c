/*
 * The per-certificate job record (acme/life/job.c): a file in the storage
 * directory (jobs/), so whatever is there (a crash mid-write, an operator's
 * edit, a disk error, another version's fields) is parsed at start-up.
 *
 * Oracle beyond the sanitizers: an accepted record serialises, parses back,
 * and serialises again to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "acme/life/job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_job job;
  px_job_init(&job);
  if (px_job_from_json((const char *)data, size, &job) != 0) {
    px_job_dispose(&job);
    return 0;
  }
  char *json = px_job_to_json(&job);
  px_job_dispose(&job);
  if (json == NULL) return 0;
  px_job again;
  px_job_init(&again);
  if (px_job_from_json(json, strlen(json), &again) != 0) abort();
  char *json2 = px_job_to_json(&again);
  px_job_dispose(&again);
  if (json2 == NULL || strcmp(json, json2) != 0) abort();
  free(json);
  free(json2);
  return 0;
}
