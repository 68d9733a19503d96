/*
 * The dns-01 challenge's DNS side (acme/dns/dns01.h).
 */
#include "acme/dns/dns01.h"

#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/dns/exchange.h"
#include "acme/dns/wire.h"
#include "acme/life/command.h"
#include "tls/log.h"
#include "tls/unconst.h"

/* Propagation polls: the first after this, doubling up to the cap. */
#define POLL_FIRST_MS 250
#define POLL_MAX_MS 5000
/* Longest TXT value (a base64url SHA-256 is 43). */
#define VALUE_MAX 128

typedef enum step {
  S_CNAME,     /* following _acme-challenge.NAME */
  S_SOA,       /* finding the zone */
  S_WRITE,     /* the UPDATE or `present` in flight */
  S_NS,        /* finding the zone's authoritative servers */
  S_NSADDR,    /* ... and the address of one without glue */
  S_PROPAGATE, /* polling the servers */
  S_READY,     /* visible; waiting for cleanup */
  S_DELETE,    /* the delete or `cleanup` in flight */
} step;

struct px_dns01 {
  uv_loop_t *loop;
  px_dns01_options o;
  px_dns01_op *ops;
  int freeing;
};

struct px_dns01_op {
  px_dns01 *d;
  px_dns01_op *next;
  step st;
  char name[PX_DNS_NAME_MAX + 1]; /* where the record goes (the CNAME target) */
  char zone[PX_DNS_NAME_MAX + 1];
  char value[VALUE_MAX + 1];
  char note[80]; /* the store's id of our note, "" when none */
  int cnames;
  int written;  /* the write was sent: it may have been applied */
  int cleanup;  /* px_dns01_cleanup was called */
  int recovery; /* removing a record a previous run left */
  px_dns_exchange *x;
  px_command *cmd;
  uv_timer_t timer;
  int timer_open;
  uint8_t mac[PX_DNS_TSIG_MAC_MAX];
  size_t mac_len;
  struct sockaddr_storage prop[PX_DNS01_RESOLVERS_MAX]; /* where propagation is checked */
  size_t nprop;
  char ns[PX_DNS01_RESOLVERS_MAX][PX_DNS_NAME_MAX + 1]; /* NS names still without an address */
  size_t nns, ns_i;
  size_t prop_i;    /* the server being asked */
  unsigned prop_ok; /* bit i: server i answered with the value */
  uint64_t delay;
  uint64_t deadline; /* uv_now of the propagation deadline */
  px_dns01_cb cb;
  void *arg;
};

static void step_on(px_dns01_op *op);
static void start_delete(px_dns01_op *op);
static void step_on_timer(uv_timer_t *t) { step_on(t->data); }

/* ---- the op's life ---- */

static void unlink_op(px_dns01_op *op) {
  for (px_dns01_op **p = &op->d->ops; *p; p = &(*p)->next)
    if (*p == op) {
      *p = op->next;
      return;
    }
}

static void on_timer_closed(uv_handle_t *h) { free(h->data); }

static void op_free(px_dns01_op *op) {
  unlink_op(op);
  if (op->timer_open) {
    op->timer_open = 0;
    uv_close((uv_handle_t *)&op->timer, on_timer_closed);
  } else {
    free(op);
  }
}

/* Hands the outcome of present to the caller (once). */
static void report(px_dns01_op *op, const char *err) {
  px_dns01_cb cb = op->cb;
  op->cb = NULL;
  if (cb) cb(op->arg, err);
}

/* Present failed: what was written is removed, the caller hears why. */
static void fail(px_dns01_op *op, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(px_dns01_op *op, const char *fmt, ...) {
  char msg[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  op->st = S_READY;
  report(op, msg);
  /* The caller calls cleanup, which removes what may have been written. */
}

/* Where CNAMEs and SOAs are asked: the first resolver, else the primary. */
static const struct sockaddr_storage *lookup_server(const px_dns01 *d) {
  if (d->o.nresolvers) return &d->o.resolvers[0];
  return d->o.provider == PX_DNS01_RFC2136 ? &d->o.server : NULL;
}

static size_t prop_count(const px_dns01_op *op) { return op->nprop; }

static const struct sockaddr_storage *prop_server(const px_dns01_op *op, size_t i) {
  return &op->prop[i];
}

/* ---- the store's notes (crash recovery) ---- */

static void note_id(const px_dns01_op *op, char *out, size_t cap) {
  static const char hex[] = "0123456789abcdef";
  uint8_t dg[SHA256_DIGEST_LENGTH];
  char in[PX_DNS_NAME_MAX + VALUE_MAX + 2];
  snprintf(in, sizeof(in), "%s %s", op->name, op->value);
  SHA256((const uint8_t *)in, strlen(in), dg);
  size_t o = (size_t)snprintf(out, cap, "txt-");
  for (size_t i = 0; i < 16 && o + 2 < cap; i++) {
    out[o++] = hex[dg[i] >> 4];
    out[o++] = hex[dg[i] & 15];
  }
  out[o] = '\0';
}

static void note_save(px_dns01_op *op) {
  px_store *s = op->d->o.store;
  if (s == NULL) return;
  json_t *j = json_pack("{s:s, s:s, s:s}", "name", op->name, "value", op->value, "zone", op->zone);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  note_id(op, op->note, sizeof(op->note));
  int rc = text ? s->ops->save(s, PX_STORE_DNS, op->note, NULL, text, strlen(text)) : -ENOMEM;
  free(text);
  if (rc != 0) {
    px_log(PX_LOG_WARN,
           "dns-01: cannot note the TXT record at %s in the store (%s); a crash before its "
           "removal would leave it",
           op->name, strerror(-rc));
    op->note[0] = '\0';
  }
}

static void note_remove(px_dns01_op *op) {
  px_store *s = op->d->o.store;
  if (s == NULL || op->note[0] == '\0') return;
  int rc = s->ops->remove(s, PX_STORE_DNS, op->note, NULL);
  if (rc != 0 && rc != -ENOENT)
    px_log(PX_LOG_WARN, "dns-01: cannot remove the store's note of %s: %s", op->name,
           strerror(-rc));
  op->note[0] = '\0';
}

/* ---- DNS exchanges ---- */

static void on_answer(void *arg, const char *err, const uint8_t *msg, size_t len);

static uint16_t new_id(void) {
  uint16_t id;
  RAND_bytes((uint8_t *)&id, sizeof(id));
  return id;
}

static int send_msg(px_dns01_op *op, const struct sockaddr_storage *to, const px_dns_msg *m) {
  uint64_t t = op->d->o.query_timeout_ms;
  if (op->st == S_PROPAGATE) { /* a silent server does not stretch the deadline */
    uint64_t now = uv_now(op->d->loop);
    uint64_t left = op->deadline > now ? op->deadline - now : 0;
    if (left + 100 < t) t = left + 100;
  }
  op->x = px_dns_exchange_start(op->d->loop, to, m->buf, m->len, t, on_answer, op);
  return op->x ? 0 : -ENOMEM;
}

static int send_query(px_dns01_op *op, const struct sockaddr_storage *to, const char *name,
                      uint16_t type) {
  px_dns_msg *m = malloc(sizeof(*m));
  if (m == NULL) return -ENOMEM;
  /* Recursion is asked of resolvers, not of the primary (it answers for
   * its zones either way). */
  int rd = op->d->o.nresolvers > 0;
  int r = px_dns_build_query(m, new_id(), name, type, rd);
  if (r == 0) r = send_msg(op, to, m);
  free(m);
  return r;
}

/* The RFC 2136 UPDATE adding (or deleting) our one TXT record. */
static int send_update(px_dns01_op *op, int del) {
  px_dns01 *d = op->d;
  px_dns_msg *m = malloc(sizeof(*m));
  if (m == NULL) return -ENOMEM;
  int r = px_dns_build_update(m, new_id(), op->zone);
  if (r == 0) r = px_dns_update_txt(m, op->name, op->value, d->o.ttl, del);
  if (r == 0) r = px_dns_tsig_sign(m, &d->o.key, (int64_t)time(NULL), op->mac, &op->mac_len);
  if (r == 0) r = send_msg(op, &d->o.server, m);
  free(m);
  return r;
}

/* What the server said to an UPDATE: NULL when applied, else why not. */
static const char *update_result(px_dns01_op *op, const uint8_t *msg, size_t len,
                                 const px_dns_answer *a, char *why, size_t cap) {
  if (cap < 1200) return "internal error: message buffer too small";
  px_dns01 *d = op->d;
  char srv[64];
  px_dns_addr_str(&d->o.server, srv, sizeof(srv));
  int terr = 0;
  int v = px_dns_tsig_verify(msg, len, a, &d->o.key, op->mac, op->mac_len, &terr);
  if (terr == PX_DNS_BADSIG || terr == PX_DNS_BADKEY || terr == PX_DNS_BADTIME) {
    snprintf(why, cap,
             "the DNS server %s refused the TSIG signature of key %s: %s (check "
             "acme.dns.tsig: its name, algorithm and secret must match the server's key%s)",
             srv, d->o.key.name, px_dns_rcode_name(terr),
             terr == PX_DNS_BADTIME ? ", and both clocks" : "");
    return why;
  }
  if (a->rcode == PX_DNS_NOTAUTH && v != 0) {
    snprintf(why, cap,
             "the DNS server %s refused the update of zone %s: NOTAUTH, the TSIG key %s is not "
             "allowed to update it (check acme.dns.tsig and the zone's allow-update)",
             srv, op->zone, d->o.key.name);
    return why;
  }
  if (a->rcode != PX_DNS_NOERROR) {
    snprintf(why, cap, "the DNS server %s refused the update of %s in zone %s: %s", srv, op->name,
             op->zone, px_dns_rcode_name(a->rcode));
    return why;
  }
  if (v != 0) {
    snprintf(why, cap,
             "the DNS server %s answered the update without a valid TSIG signature (%s); the "
             "answer cannot be trusted",
             srv, v == -ENOENT ? "none" : "wrong MAC");
    return why;
  }
  return NULL;
}

/* 1 when the TXT answer holds our value. */
static int has_value(const px_dns01_op *op, const uint8_t *msg, size_t len,
                     const px_dns_answer *a) {
  char text[512];
  for (size_t i = 0; i < a->nrr; i++) {
    const px_dns_rr *rr = &a->rr[i];
    if (rr->section != 1 || rr->type != PX_DNS_TXT) continue;
    if (px_dns_txt_text(msg, len, rr, text, sizeof(text)) >= 0 && strcmp(text, op->value) == 0)
      return 1;
  }
  return 0;
}

static void on_poll_timer(uv_timer_t *t);

static void poll_next(px_dns01_op *op) {
  px_dns01 *d = op->d;
  size_t n = prop_count(op);
  while (op->prop_i < n && (op->prop_ok & (1u << op->prop_i)))
    op->prop_i++;
  if (op->prop_i < n) {
    if (send_query(op, prop_server(op, op->prop_i), op->name, PX_DNS_TXT) != 0)
      fail(op, "out of memory");
    return;
  }
  if (op->prop_ok == (1u << n) - 1) {
    px_log(PX_LOG_INFO, "dns-01: TXT record at %s visible at %zu server%s", op->name, n,
           n == 1 ? "" : "s");
    op->st = S_READY;
    report(op, NULL);
    return;
  }
  uint64_t now = uv_now(d->loop);
  if (now >= op->deadline) {
    char srv[64] = "?";
    for (size_t i = 0; i < n; i++)
      if (!(op->prop_ok & (1u << i))) {
        px_dns_addr_str(prop_server(op, i), srv, sizeof(srv));
        break;
      }
    fail(op,
         "the TXT record at %s was not visible at %s within acme.dns.propagation_timeout (%llu s)",
         op->name, srv, (unsigned long long)(d->o.propagation_timeout_ms / 1000));
    return;
  }
  uint64_t wait = op->delay;
  if (now + wait > op->deadline) wait = op->deadline - now;
  op->delay = op->delay * 2 > POLL_MAX_MS ? POLL_MAX_MS : op->delay * 2;
  op->prop_i = 0;
  uv_timer_start(&op->timer, on_poll_timer, wait, 0);
}

static void on_poll_timer(uv_timer_t *t) { poll_next(t->data); }

static void poll_servers(px_dns01_op *op);

/* Adds an authoritative server's address (the primary's port: portico
 * reaches every server of the zone the way it reaches the primary). */
static void add_prop(px_dns01_op *op, const uint8_t *ip, int v6) {
  if (op->nprop >= PX_DNS01_RESOLVERS_MAX) return;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  in_port_t port = op->d->o.server.ss_family == AF_INET6
                       ? ((const struct sockaddr_in6 *)&op->d->o.server)->sin6_port
                       : ((const struct sockaddr_in *)&op->d->o.server)->sin_port;
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = port;
    memcpy(&a->sin6_addr, ip, 16);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = port;
    memcpy(&a->sin_addr, ip, 4);
  }
  for (size_t i = 0; i < op->nprop; i++)
    if (memcmp(&op->prop[i], &ss, sizeof(ss)) == 0) return;
  op->prop[op->nprop++] = ss;
}

/* A/AAAA records at `owner` in the answer (any section) become servers;
 * 1 when one did. */
static int take_addresses(px_dns01_op *op, const uint8_t *msg, size_t len, const px_dns_answer *a,
                          const char *owner) {
  int found = 0;
  for (size_t i = 0; i < a->nrr; i++) {
    const px_dns_rr *rr = &a->rr[i];
    if (!px_dns_name_eq(rr->name, owner) || rr->rdata_off + rr->rdlen > len) continue;
    if (rr->type == PX_DNS_A && rr->rdlen == 4) {
      add_prop(op, msg + rr->rdata_off, 0);
      found = 1;
    } else if (rr->type == PX_DNS_AAAA && rr->rdlen == 16) {
      add_prop(op, msg + rr->rdata_off, 1);
      found = 1;
    }
  }
  return found;
}

/* The next NS name without glue, or the polls once every name is done. */
static void next_ns_address(px_dns01_op *op) {
  if (op->ns_i < op->nns) {
    op->st = S_NSADDR;
    if (send_query(op, &op->d->o.server, op->ns[op->ns_i], PX_DNS_A) != 0)
      fail(op, "out of memory");
    return;
  }
  if (op->nprop == 0) { /* no NS answer: the primary is what we know */
    op->prop[0] = op->d->o.server;
    op->nprop = 1;
  }
  px_log(PX_LOG_DEBUG, "dns-01: checking %s at %zu authoritative server%s of %s", op->name,
         op->nprop, op->nprop == 1 ? "" : "s", op->zone);
  poll_servers(op);
}

/* The NS answer of the zone: names, with their glue when given. */
static void on_ns(px_dns01_op *op, const uint8_t *msg, size_t len, const px_dns_answer *a) {
  char ns[PX_DNS_NAME_MAX + 1];
  for (size_t i = 0; i < a->nrr; i++) {
    const px_dns_rr *rr = &a->rr[i];
    if (rr->section != 1 || rr->type != PX_DNS_NS || !px_dns_name_eq(rr->name, op->zone)) continue;
    if (px_dns_read_name(msg, len, rr->rdata_off, ns) < 0) continue;
    if (!take_addresses(op, msg, len, a, ns) && op->nns < PX_DNS01_RESOLVERS_MAX)
      memcpy(op->ns[op->nns++], ns, sizeof(ns));
  }
  op->ns_i = 0;
  next_ns_address(op);
}

/* Where propagation is checked: acme.dns.resolvers; else, for rfc2136,
 * the zone's authoritative servers (its NS records, asked of the
 * primary); a hook without resolvers is trusted once it exits 0. */
static void start_propagation(px_dns01_op *op) {
  px_dns01 *d = op->d;
  op->nprop = 0;
  if (d->o.nresolvers) {
    memcpy(op->prop, d->o.resolvers, d->o.nresolvers * sizeof(op->prop[0]));
    op->nprop = d->o.nresolvers;
    poll_servers(op);
  } else if (d->o.provider == PX_DNS01_RFC2136) {
    op->st = S_NS;
    op->nns = 0;
    if (send_query(op, &d->o.server, op->zone, PX_DNS_NS) != 0) fail(op, "out of memory");
  } else {
    op->st = S_READY;
    report(op, NULL);
  }
}

/* Polls every server in op->prop until each returns the value. */
static void poll_servers(px_dns01_op *op) {
  px_dns01 *d = op->d;
  op->st = S_PROPAGATE;
  op->prop_i = 0;
  op->prop_ok = 0;
  op->delay = POLL_FIRST_MS;
  op->deadline = uv_now(d->loop) + d->o.propagation_timeout_ms;
  poll_next(op);
}

/* ---- the hook ---- */

static void on_hook(void *arg, const px_command_result *r) {
  px_dns01_op *op = arg;
  op->cmd = NULL;
  char why[PX_COMMAND_OUTPUT_MAX + 200];
  const char *verb = op->st == S_DELETE ? "cleanup" : "present";
  const char *prog = op->d->o.command[0];
  int ok = r->spawn_err == NULL && !r->timed_out && r->signal == 0 && r->status == 0;
  if (r->spawn_err)
    snprintf(why, sizeof(why), "acme.dns.command %s: cannot run %s: %s", verb, prog, r->spawn_err);
  else if (r->timed_out)
    snprintf(why, sizeof(why), "acme.dns.command %s %s: killed after %llu ms%s%s", verb, op->name,
             (unsigned long long)op->d->o.command_timeout_ms, r->output[0] ? "; it said: " : "",
             r->output);
  else if (!ok)
    snprintf(why, sizeof(why), "acme.dns.command %s %s: %s %lld%s%s", verb, op->name,
             r->signal ? "ended by signal" : "exit status",
             r->signal ? (long long)r->signal : (long long)r->status,
             r->output[0] ? "; it said: " : "", r->output);
  if (op->st == S_DELETE) {
    if (ok) {
      px_log(PX_LOG_INFO, "dns-01: removed the TXT record at %s (hook)", op->name);
      note_remove(op);
    } else {
      px_log(PX_LOG_WARN, "dns-01: %s; the record stays noted and is removed at the next start",
             why);
    }
    op_free(op);
    return;
  }
  op->written = 1;
  if (op->cleanup) {
    start_delete(op);
    return;
  }
  if (!ok) {
    fail(op, "%s", why);
    return;
  }
  px_log(PX_LOG_INFO, "dns-01: TXT record at %s written (hook)", op->name);
  start_propagation(op);
}

static int run_hook(px_dns01_op *op, const char *verb) {
  px_dns01 *d = op->d;
  size_t n = 0;
  while (d->o.command[n])
    n++;
  char **argv = calloc(n + 4, sizeof(char *));
  if (argv == NULL) return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    argv[i] = d->o.command[i];
  argv[n] = px_unconst(verb);
  argv[n + 1] = op->name;
  argv[n + 2] = op->value;
  op->cmd = px_command_run(d->loop, argv, NULL, d->o.command_timeout_ms, 1, on_hook, op);
  free(argv);
  return op->cmd ? 0 : -ENOMEM;
}

/* ---- the steps ---- */

static void write_record(px_dns01_op *op) {
  op->st = S_WRITE;
  note_save(op);
  int r = op->d->o.provider == PX_DNS01_HOOK ? run_hook(op, "present") : send_update(op, 0);
  if (r != 0) fail(op, "cannot write the TXT record at %s: %s", op->name, strerror(-r));
}

static void start_delete(px_dns01_op *op) {
  op->st = S_DELETE;
  int r = op->d->o.provider == PX_DNS01_HOOK ? run_hook(op, "cleanup") : send_update(op, 1);
  if (r != 0) {
    px_log(PX_LOG_WARN, "dns-01: cannot remove the TXT record at %s: %s", op->name, strerror(-r));
    op_free(op);
  }
}

/* The zone is known or found: the record can be written. */
static void find_zone(px_dns01_op *op) {
  px_dns01 *d = op->d;
  if (d->o.provider == PX_DNS01_HOOK) { /* the hook knows its zones */
    write_record(op);
    return;
  }
  if (d->o.zone && px_dns_name_in_zone(op->name, d->o.zone)) {
    snprintf(op->zone, sizeof(op->zone), "%s", d->o.zone);
    write_record(op);
    return;
  }
  op->st = S_SOA;
  if (send_query(op, lookup_server(d), op->name, PX_DNS_SOA) != 0) fail(op, "out of memory");
}

static void step_on(px_dns01_op *op) {
  px_dns01 *d = op->d;
  op->st = S_CNAME;
  if (lookup_server(d) == NULL) { /* a hook without resolvers: no lookups */
    find_zone(op);
    return;
  }
  if (send_query(op, lookup_server(d), op->name, PX_DNS_CNAME) != 0) fail(op, "out of memory");
}

static void on_answer(void *arg, const char *err, const uint8_t *msg, size_t len) {
  px_dns01_op *op = arg;
  px_dns01 *d = op->d;
  op->x = NULL;
  px_dns_answer *a = err ? NULL : px_dns_parse_new(msg, len, &err);
  char why[1200], target_buf[PX_DNS_NAME_MAX + 1];
  switch (op->st) {
  case S_DELETE: {
    const char *no = err ? err : update_result(op, msg, len, a, why, sizeof(why));
    if (no) {
      px_log(PX_LOG_WARN,
             "dns-01: cannot remove the TXT record at %s: %s; it stays noted and is removed at "
             "the next start",
             op->name, no);
    } else {
      px_log(PX_LOG_INFO, "dns-01: removed the TXT record at %s", op->name);
      note_remove(op);
    }
    op_free(op);
    break;
  }
  case S_WRITE: {
    const char *no = err ? err : update_result(op, msg, len, a, why, sizeof(why));
    /* A refusal wrote nothing; no answer may mean it was applied. */
    op->written = err != NULL || no == NULL;
    if (op->cleanup) {
      if (op->written)
        start_delete(op);
      else
        px_dns01_cleanup(op);
      break;
    }
    if (no) {
      fail(op, "%s", no);
      break;
    }
    px_log(PX_LOG_INFO, "dns-01: TXT record at %s written in zone %s", op->name, op->zone);
    start_propagation(op);
    break;
  }
  case S_NS:
  case S_NSADDR:
    if (op->cleanup) {
      start_delete(op);
    } else if (op->st == S_NS) {
      if (err == NULL && a->rcode == PX_DNS_NOERROR)
        on_ns(op, msg, len, a);
      else
        next_ns_address(op); /* no NS answer: the primary alone */
    } else {
      if (err == NULL && a->rcode == PX_DNS_NOERROR)
        take_addresses(op, msg, len, a, op->ns[op->ns_i]);
      op->ns_i++;
      next_ns_address(op);
    }
    break;
  case S_PROPAGATE:
    if (op->cleanup) {
      start_delete(op);
    } else {
      if (err == NULL && a->rcode == PX_DNS_NOERROR && has_value(op, msg, len, a))
        op->prop_ok |= 1u << op->prop_i;
      op->prop_i++;
      poll_next(op);
    }
    break;
  case S_CNAME:
  case S_SOA:
    if (op->cleanup) {
      op_free(op);
      break;
    }
    if (err) {
      fail(op, "looking up %s: %s", op->name, err);
      break;
    }
    if (a->rcode != PX_DNS_NOERROR && a->rcode != PX_DNS_NXDOMAIN) {
      fail(op, "looking up %s: the DNS server answered %s", op->name, px_dns_rcode_name(a->rcode));
      break;
    }
    if (op->st == S_CNAME) {
      const char *target = NULL;
      for (size_t i = 0; i < a->nrr && !target; i++)
        if (a->rr[i].section == 1 && a->rr[i].type == PX_DNS_CNAME &&
            px_dns_name_eq(a->rr[i].name, op->name)) {
          if (px_dns_read_name(msg, len, a->rr[i].rdata_off, target_buf) > 0) target = target_buf;
        }
      if (target == NULL) {
        find_zone(op);
      } else if (++op->cnames > PX_DNS01_CNAME_MAX) {
        fail(op, "more than %d CNAMEs from _acme-challenge: stopped at %s", PX_DNS01_CNAME_MAX,
             op->name);
      } else {
        px_log(PX_LOG_INFO, "dns-01: %s is a CNAME to %s: the record goes there", op->name, target);
        memcpy(op->name, target_buf, sizeof(op->name));
        step_on(op);
      }
      break;
    }
    /* S_SOA: the SOA's owner is the zone (in the answer at an apex, in the
     * authority section below one: RFC 2308 §2). */
    op->zone[0] = '\0';
    for (size_t i = 0; i < a->nrr; i++)
      if (a->rr[i].type == PX_DNS_SOA && a->rr[i].section <= 2 &&
          px_dns_name_in_zone(op->name, a->rr[i].name))
        snprintf(op->zone, sizeof(op->zone), "%s", a->rr[i].name);
    if (op->zone[0] == '\0') {
      char srv[64];
      px_dns_addr_str(lookup_server(d), srv, sizeof(srv));
      fail(op, "cannot find the zone of %s: %s answered without its SOA (set acme.dns.zone)",
           op->name, srv);
      break;
    }
    write_record(op);
    break;
  case S_READY:
    break;
  }
  free(a);
}

/* ---- public ---- */

px_dns01 *px_dns01_new(uv_loop_t *loop, const px_dns01_options *o) {
  px_dns01 *d = calloc(1, sizeof(*d));
  if (d == NULL) return NULL;
  d->loop = loop;
  d->o = *o;
  if (d->o.propagation_timeout_ms == 0) d->o.propagation_timeout_ms = 120000;
  if (d->o.query_timeout_ms == 0) d->o.query_timeout_ms = 5000;
  if (d->o.command_timeout_ms == 0) d->o.command_timeout_ms = 60000;
  if (d->o.ttl == 0) d->o.ttl = 60;
  if (d->o.nresolvers > PX_DNS01_RESOLVERS_MAX) d->o.nresolvers = PX_DNS01_RESOLVERS_MAX;
  return d;
}

static px_dns01_op *op_new(px_dns01 *d, const char *name, const char *value) {
  px_dns01_op *op = calloc(1, sizeof(*op));
  if (op == NULL || strlen(name) > PX_DNS_NAME_MAX || strlen(value) > VALUE_MAX) {
    free(op);
    return NULL;
  }
  op->d = d;
  snprintf(op->name, sizeof(op->name), "%s", name);
  snprintf(op->value, sizeof(op->value), "%s", value);
  uv_timer_init(d->loop, &op->timer);
  op->timer.data = op;
  op->timer_open = 1;
  op->next = d->ops;
  d->ops = op;
  return op;
}

px_dns01_op *px_dns01_present(px_dns01 *d, const char *name, const char *value, px_dns01_cb cb,
                              void *arg) {
  char fqdn[PX_DNS_NAME_MAX + 1];
  if (d->freeing) return NULL;
  /* RFC 8555 §8.4: the record is at "_acme-challenge." + the name, the
   * base name for a wildcard (its identifier has no "*."). */
  int n = snprintf(fqdn, sizeof(fqdn), "_acme-challenge.%s", name);
  if (n < 0 || (size_t)n >= sizeof(fqdn)) return NULL;
  px_dns01_op *op = op_new(d, fqdn, value);
  if (op == NULL) return NULL;
  op->cb = cb;
  op->arg = arg;
  /* Started from the loop, never inside this call (acme/errors.h). */
  uv_timer_start(&op->timer, step_on_timer, 0, 0);
  return op;
}

void px_dns01_cleanup(px_dns01_op *op) {
  if (op == NULL) return;
  op->cb = NULL;
  op->cleanup = 1;
  if (op->x || op->cmd) return; /* the step in flight goes on to the removal */
  uv_timer_stop(&op->timer);
  if (op->written) {
    start_delete(op);
  } else {
    note_remove(op);
    op_free(op);
  }
}

typedef struct id_list {
  char **ids;
  size_t n, cap;
} id_list;

static int on_listed(void *arg, const char *id) {
  id_list *l = arg;
  if (strncmp(id, "txt-", 4) != 0 || l->n >= 10000) return 0;
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    char **ids = realloc(l->ids, cap * sizeof(char *));
    if (ids == NULL) return 0;
    l->ids = ids;
    l->cap = cap;
  }
  if ((l->ids[l->n] = strdup(id)) != NULL) l->n++;
  return 0;
}

static void on_recover_timer(uv_timer_t *t) { start_delete(t->data); }

/* One noted record: read it and start its removal. */
static void recover_one(px_dns01 *d, const char *id) {
  px_store *s = d->o.store;
  char *data = NULL;
  size_t len = 0;
  if (s->ops->load(s, PX_STORE_DNS, id, NULL, &data, &len) != 0) return;
  json_t *j = json_loadb(data, len, 0, NULL);
  free(data);
  const char *name = json_string_value(json_object_get(j, "name"));
  const char *value = json_string_value(json_object_get(j, "value"));
  const char *zone = json_string_value(json_object_get(j, "zone"));
  px_dns01_op *op = name && value && zone ? op_new(d, name, value) : NULL;
  if (op == NULL) {
    px_log(PX_LOG_WARN, "dns-01: the store's note dns/%s cannot be read; removed", id);
    s->ops->remove(s, PX_STORE_DNS, id, NULL);
  } else {
    snprintf(op->zone, sizeof(op->zone), "%s", zone);
    snprintf(op->note, sizeof(op->note), "%s", id);
    op->written = 1;
    op->cleanup = 1;
    op->recovery = 1;
    px_log(PX_LOG_INFO, "dns-01: removing the TXT record at %s left by an earlier run", name);
    uv_timer_start(&op->timer, on_recover_timer, 0, 0);
  }
  json_decref(j);
}

void px_dns01_recover(px_dns01 *d) {
  px_store *s = d->o.store;
  if (s == NULL || s->ops->list == NULL) return;
  id_list l = {0};
  s->ops->list(s, PX_STORE_DNS, on_listed, &l);
  for (size_t i = 0; i < l.n; i++) {
    recover_one(d, l.ids[i]);
    free(l.ids[i]);
  }
  free(l.ids);
}

void px_dns01_free(px_dns01 *d) {
  if (d == NULL) return;
  d->freeing = 1;
  while (d->ops) {
    px_dns01_op *op = d->ops;
    if (op->x) px_dns_exchange_cancel(op->x);
    if (op->cmd) px_command_kill(op->cmd);
    op->x = NULL;
    op->cmd = NULL;
    op->cb = NULL;
    op_free(op);
  }
  px_dns_tsig_key_wipe(&d->o.key);
  free(d);
}
