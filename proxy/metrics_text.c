/*
 * The Prometheus text exposition format 0.0.4 (proxy/metrics_text.h).
 */
#include "proxy/metrics_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Most labels on one sample, `le` included. */
#define MAX_LABELS 8

void px_mtext_init(px_mtext *t, size_t max) {
  memset(t, 0, sizeof(*t));
  t->max = max;
}

void px_mtext_dispose(px_mtext *t) {
  free(t->buf);
  memset(t, 0, sizeof(*t));
}

static int reserve(px_mtext *t, size_t more) {
  if (t->failed) return -1;
  if (t->len + more + 1 > t->max) {
    t->failed = 1;
    return -1;
  }
  if (t->len + more + 1 <= t->cap) return 0;
  size_t cap = t->cap ? t->cap : 4096;
  while (cap < t->len + more + 1)
    cap *= 2;
  if (cap > t->max) cap = t->max;
  char *b = realloc(t->buf, cap);
  if (b == NULL) {
    t->failed = 1;
    return -1;
  }
  t->buf = b;
  t->cap = cap;
  return 0;
}

static void put(px_mtext *t, const char *s, size_t n) {
  if (reserve(t, n) != 0) return;
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

static void puts_(px_mtext *t, const char *s) { put(t, s, strlen(s)); }

/* The escape of `c` in a label value (`quote`) or a HELP text, or NULL
 * when it stands for itself. */
static const char *escape_of(char c, int quote) {
  return c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '"' && quote ? "\\\"" : NULL;
}

static void put_escaped(px_mtext *t, const char *s, int quote) {
  for (const char *p = s; *p; p++) {
    const char *rep = escape_of(*p, quote);
    put(t, rep ? rep : p, rep ? 2 : 1);
  }
}

size_t px_mtext_escape_label(char *out, size_t cap, const char *v) {
  size_t n = 0, w = 0;
  int cut = 0;
  for (const char *p = v; *p; p++) {
    const char *rep = escape_of(*p, 1);
    size_t k = rep ? 2 : 1;
    if (!cut && w + k < cap) {
      memcpy(out + w, rep ? rep : p, k);
      w += k;
    } else {
      cut = 1; /* never half an escape */
    }
    n += k;
  }
  if (cap) out[w] = '\0';
  return n;
}

void px_mtext_family(px_mtext *t, const char *name, const char *type, const char *help) {
  puts_(t, "# HELP ");
  puts_(t, name);
  put(t, " ", 1);
  put_escaped(t, help, 0);
  puts_(t, "\n# TYPE ");
  puts_(t, name);
  put(t, " ", 1);
  puts_(t, type);
  put(t, "\n", 1);
}

static void put_head(px_mtext *t, const char *name, const char *suffix, const char *const *labels,
                     size_t nlabels) {
  puts_(t, name);
  puts_(t, suffix);
  if (nlabels == 0) return;
  put(t, "{", 1);
  for (size_t i = 0; i < nlabels; i++) {
    if (i) put(t, ",", 1);
    puts_(t, labels[2 * i]);
    put(t, "=\"", 2);
    put_escaped(t, labels[2 * i + 1], 1);
    put(t, "\"", 1);
  }
  put(t, "}", 1);
}

void px_mtext_sample_u64(px_mtext *t, const char *name, const char *suffix,
                         const char *const *labels, size_t nlabels, uint64_t v) {
  char num[32];
  int n = snprintf(num, sizeof(num), " %llu\n", (unsigned long long)v);
  put_head(t, name, suffix, labels, nlabels);
  put(t, num, (size_t)n);
}

/* A real number as the format spells it: Go's ParseFloat reads %.17g
 * exactly; "+Inf", "-Inf" and "NaN" are the format's own words. */
static int format_f64(char *out, size_t cap, double v) {
  if (isnan(v)) return snprintf(out, cap, "NaN");
  if (isinf(v)) return snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
  /* The shortest of %.15g and %.17g that reads back the same. */
  int n = snprintf(out, cap, "%.15g", v);
  if (strtod(out, NULL) != v) n = snprintf(out, cap, "%.17g", v);
  return n;
}

void px_mtext_sample_f64(px_mtext *t, const char *name, const char *suffix,
                         const char *const *labels, size_t nlabels, double v) {
  char num[40];
  format_f64(num, sizeof(num), v);
  put_head(t, name, suffix, labels, nlabels);
  put(t, " ", 1);
  puts_(t, num);
  put(t, "\n", 1);
}

void px_mtext_histogram(px_mtext *t, const char *name, const char *const *labels, size_t nlabels,
                        const double *bounds, size_t nbounds, const uint64_t *buckets, double sum) {
  if (nlabels >= MAX_LABELS) {
    t->failed = 1;
    return;
  }
  const char *l[2 * MAX_LABELS];
  if (nlabels) memcpy(l, labels, 2 * nlabels * sizeof(*l));
  char le[40];
  l[2 * nlabels] = "le";
  l[2 * nlabels + 1] = le;
  uint64_t cum = 0;
  for (size_t i = 0; i <= nbounds; i++) {
    cum += buckets[i];
    format_f64(le, sizeof(le), i < nbounds ? bounds[i] : INFINITY);
    px_mtext_sample_u64(t, name, "_bucket", l, nlabels + 1, cum);
  }
  px_mtext_sample_f64(t, name, "_sum", labels, nlabels, sum);
  px_mtext_sample_u64(t, name, "_count", labels, nlabels, cum);
}
