#include "acme/ask.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/transport.h"

typedef struct ask_ctx {
  px_acme_ask_cb cb;
  void *arg;
} ask_ctx;

static void on_answer(void *arg, const char *err, px_acme_response *r) {
  ask_ctx *a = arg;
  char why[640];
  int allowed = 0;
  if (err) {
    /* err names the URL and the system error (acme/transport.c). */
    snprintf(why, sizeof(why),
             "the on_demand.ask endpoint failed: %s; check on_demand.ask and that its server is "
             "running",
             err);
  } else {
    allowed = r->status >= 200 && r->status < 300;
    snprintf(why, sizeof(why), "ask endpoint answered %d", r->status);
  }
  px_acme_response_free(r);
  a->cb(a->arg, allowed, why);
  free(a);
}

int px_acme_ask(uv_loop_t *loop, const char *url, const char *name, uint64_t timeout_ms,
                px_acme_ask_cb cb, void *arg) {
  if (strncmp(url, "http://", 7) != 0) return -EINVAL;
  size_t cap = strlen(url) + strlen(name) + 16;
  char *full = malloc(cap);
  ask_ctx *a = malloc(sizeof(*a));
  if (full == NULL || a == NULL) {
    free(full);
    free(a);
    return -ENOMEM;
  }
  /* A validated name is [a-z0-9.-] only: it needs no escaping in a query. */
  snprintf(full, cap, "%s%sdomain=%s", url, strchr(url, '?') ? "&" : "?", name);
  a->cb = cb;
  a->arg = arg;
  int r = px_acme_request(loop, NULL, "GET", full, NULL, NULL, 0, timeout_ms, on_answer, a);
  free(full);
  if (r != 0) free(a);
  return r;
}
