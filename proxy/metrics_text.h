/*
 * The Prometheus text exposition format, version 0.0.4: the lines a scrape
 * of /metrics returns. Pure: no I/O, no clock, no threads.
 *
 *   # HELP portico_requests_total Requests proxied to a site.
 *   # TYPE portico_requests_total counter
 *   portico_requests_total{site="example.com",protocol="h2",code="2xx"} 12
 *
 * Label values are escaped (backslash, double quote, line feed) and HELP
 * texts too (backslash, line feed), as the format requires. The output is
 * bounded: past `max` bytes the text is marked failed and stops growing.
 *
 * Error convention: functions return nothing; px_mtext.failed says whether
 * the text is whole (memory or the bound ran out).
 */
#ifndef PX_METRICS_TEXT_H
#define PX_METRICS_TEXT_H

#include <stddef.h>
#include <stdint.h>

/** The Content-Type of this format. */
#define PX_MTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/** A growing text. */
typedef struct px_mtext {
  char *buf;
  size_t len, cap, max;
  int failed; /**< out of memory, or `max` reached */
} px_mtext;

/** An empty text that will hold at most `max` bytes. */
void px_mtext_init(px_mtext *t, size_t max);
/** Frees the text. */
void px_mtext_dispose(px_mtext *t);

/**
 * Writes `v` as a label value into `out` (NUL-terminated, truncated to
 * cap): `\` as `\\`, `"` as `\"`, a line feed as `\n`. Returns the length
 * the whole escaped value needs (as snprintf does).
 */
size_t px_mtext_escape_label(char *out, size_t cap, const char *v);

/** The # HELP and # TYPE lines of a family. `type` is counter, gauge or
 *  histogram. */
void px_mtext_family(px_mtext *t, const char *name, const char *type, const char *help);

/**
 * One sample line: `name` then `suffix` (may be ""), the labels as pairs
 * (labels[0] name, labels[1] value, ...; `nlabels` pairs; values escaped
 * here), and an integer value.
 */
void px_mtext_sample_u64(px_mtext *t, const char *name, const char *suffix,
                         const char *const *labels, size_t nlabels, uint64_t v);

/** The same with a real value (NaN and infinities as the format spells them). */
void px_mtext_sample_f64(px_mtext *t, const char *name, const char *suffix,
                         const char *const *labels, size_t nlabels, double v);

/**
 * A histogram's samples: `_bucket` lines with cumulative counts and an `le`
 * label (after `labels`) for each bound then +Inf, `_sum` and `_count`.
 * `buckets` holds nbounds + 1 counts, not cumulative, the last for values
 * above every bound.
 */
void px_mtext_histogram(px_mtext *t, const char *name, const char *const *labels, size_t nlabels,
                        const double *bounds, size_t nbounds, const uint64_t *buckets, double sum);

#endif
