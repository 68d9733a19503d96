/*
 * http-01 answers on port 80 (proxy/h1_http01.h).
 */
#include "proxy/h1_http01.h"

#include <stdio.h>
#include <string.h>

#include "acme/manager.h"
#include "proxy/h1.h"
#include "proxy/metrics.h"
#include "proxy/util/access.h"

/* Writes the key authorization as the response body (RFC 8555 §8.3: the
 * body is the key authorization, nothing else). */
static void send_answer(px_conn *c, const char *host, const char *ka, int n) {
  px_h1 *h1 = px_h1_of(c);
  char buf[1024];
  int len = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     "Content-Length: %d\r\nCache-Control: no-store\r\n\r\n%s",
                     n, ka);
  px_access_entry e = {.host = host,
                       .method = h1->head->method,
                       .path = h1->head->target,
                       .status = 200,
                       .bytes = (uint64_t)len};
  px_conn_access_fields(c, &e);
  px_access_set_head(&e, h1->head, 0);
  px_access_log(&e);
  px_metrics_local(c->w->metrics, 0, 200);
  px_conn_write(c, buf, (size_t)len);
}

/* The answer from memory: its length in `ka`, -1 (404), or
 * PX_ACME_HTTP01_READING. */
static int look_up(px_conn *c, const char *host, const char *token, char *ka, size_t cap) {
  px_acme_manager *m = c->w->env.acme;
  return m ? px_acme_manager_http01(m, host, token, ka, cap) : -1;
}

int px_h1_http01_answer(px_conn *c, const char *host, const char *token, int may_wait) {
  px_h1 *h1 = px_h1_of(c);
  char ka[512];
  int n = look_up(c, host, token, ka, sizeof(ka));
  if (n == PX_ACME_HTTP01_READING && may_wait && strlen(token) < sizeof(h1->http01_token)) {
    /* Bounded by the session's timer; the manager resolves the token
     * whatever it finds (px_acme_manager_http01). */
    strcpy(h1->http01_token, token);
    h1->http01_wait = 1;
    c->state = PX_CONN_ACTIVE;
    px_conn_set_timer(c, c->wg->cfg->limits.header_timeout_ms);
    return 0;
  }
  if (n < 0)
    px_h1_respond(c, 404, NULL, 0);
  else
    send_answer(c, host, ka, n);
  return 1;
}

void px_h1_http01_resolved(px_conn *c, const char *key) {
  px_h1 *h1 = px_h1_of(c);
  if (!h1->http01_wait || strcmp(h1->http01_token, key) != 0) return;
  char ka[512];
  int n = look_up(c, h1->req_host, h1->http01_token, ka, sizeof(ka));
  if (n == PX_ACME_HTTP01_READING) return; /* read again meanwhile: its answer follows */
  h1->http01_wait = 0;
  if (n < 0)
    px_h1_respond(c, 404, NULL, 0);
  else
    send_answer(c, h1->req_host, ka, n);
  if (!c->closed) px_h1_exchange_done(c, llhttp_should_keep_alive(&h1->parser));
}

void px_h1_http01_timeout(px_conn *c) {
  px_h1 *h1 = px_h1_of(c);
  h1->http01_wait = 0;
  px_h1_respond(c, 503, NULL, 1);
}
