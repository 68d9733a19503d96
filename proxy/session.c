#include "proxy/session.h"

#include <string.h>

#include "proxy/conn.h"
#include "proxy/h1.h"
#include "proxy/h2.h"

int px_session_start(px_conn *c, const char *alpn) {
  if (alpn == NULL || strcmp(alpn, "h2") != 0) return c->session ? 0 : px_h1_start(c);
  /* The HTTP/1.1 session set up at accept has read nothing yet. */
  if (c->session) {
    c->session_ops->close(c);
    c->session_ops->free(c);
  }
  return px_h2_start(c);
}
