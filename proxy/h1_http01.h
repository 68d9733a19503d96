/*
 * Port 80's answer to the CA's http-01 validation request (RFC 8555 §8.3):
 * the key authorization of a pending challenge, from memory; when it is not
 * there, the request waits while the certificate manager reads the shared
 * store (another instance may have placed the order), then gets the answer
 * or a 404. A part of the HTTP/1.1 session (h1.c).
 */
#ifndef PX_H1_HTTP01_H
#define PX_H1_HTTP01_H

#include "proxy/conn.h"

/**
 * Answers the challenge request for `token` on `host`. With `may_wait`
 * (a request without a body) it may instead leave the request waiting for
 * the manager: then 0, and px_h1_http01_resolved answers it. 1 when the
 * response is queued.
 */
int px_h1_http01_answer(px_conn *c, const char *host, const char *token, int may_wait);

/** The manager has read the store for `key` (a token, or a name): a request
 *  waiting for that token is answered and the connection goes on. */
void px_h1_http01_resolved(px_conn *c, const char *key);

/** The wait outlasted timeouts.request_header: 503, and the connection closes
 *  (the manager is stuck on the store). */
void px_h1_http01_timeout(px_conn *c);

#endif
