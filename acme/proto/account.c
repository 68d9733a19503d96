/*
 * The ACME account (RFC 8555 §7.3): loaded from the store, per CA
 * directory, or created once (with the contact, the terms agreement and
 * external account binding, §7.3.4) and saved there.
 *
 * One account per CA per store, whatever the number of instances: the
 * creation runs under a store lock named after the CA, and the store is
 * read again once it is held (another instance may have just saved one).
 * Within one client, orders that need the account while one is being
 * created wait for it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme/proto/jws.h"
#include "acme/proto/order_internal.h"
#include "tls/log.h"

static void save_account(px_acme_client *c) {
  size_t klen = 0;
  char *pem = px_acme_key_to_pem(c->account_key, &klen);
  json_t *j = json_pack("{s:s,s:s}", "kid", c->kid, "directory", c->o.directory_url);
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  px_store *s = c->o.store;
  if (pem == NULL || text == NULL)
    px_log(PX_LOG_ERROR, "acme: cannot save the account %s: out of memory", c->kid);
  int rc = 0;
  if (pem)
    rc = s->ops->save(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_KEY, pem, klen);
  if (text && rc == 0)
    rc = s->ops->save(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_JSON, text,
                      strlen(text));
  /* The account stays usable from memory; the next start registers again. */
  if (rc != 0)
    px_log(PX_LOG_ERROR,
           "acme: cannot save the account %s in the cache: %s (check the storage "
           "directory's space and permissions)",
           c->kid, strerror(-rc));
  if (pem) px_acme_key_pem_free(pem, klen);
  free(text);
}

/* Loads the account of this CA from the cache; 1 when found. */
static int load_account(px_acme_client *c) {
  char *key = NULL, *meta = NULL;
  size_t klen = 0, mlen = 0;
  px_store *s = c->o.store;
  if (s->ops->load(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_KEY, &key, &klen) !=
      0)
    return 0;
  if (s->ops->load(s, PX_STORE_ACCOUNTS, c->o.directory_url, PX_STORE_ACCOUNT_JSON, &meta, &mlen) !=
      0) {
    px_store_data_free(key, klen);
    return 0;
  }
  c->account_key = px_acme_key_from_pem(key, klen);
  json_t *j = json_loadb(meta, mlen, 0, NULL);
  const char *kid = px__acme_json_str(j, "kid");
  if (kid) c->kid = strdup(kid);
  json_decref(j);
  px_store_data_free(key, klen);
  px_store_data_free(meta, mlen);
  if (c->account_key == NULL || c->kid == NULL) {
    px_acme_key_free(c->account_key);
    c->account_key = NULL;
    free(c->kid);
    c->kid = NULL;
    return 0;
  }
  return 1;
}

/* How often an order looks again while the account is being created
 * (by another order of ours, or another instance), and for how long. */
#define ACCOUNT_WAIT_MS 250
#define ACCOUNT_WAIT_MAX 480 /* 2 minutes */
#define ACCOUNT_LOCK_OWNER "account"

/* The lock's name: a DNS name no certificate can have (RFC 2606 .invalid),
 * unique per CA directory URL. */
static int account_lock_name(const px_acme_client *c, char *out, size_t cap) {
  char id[160];
  if (px_store_ca_id(c->o.directory_url, id, sizeof(id)) != 0) return -EINVAL;
  const char *dash = strrchr(id, '-'); /* "-" and 16 hex digits of the URL's SHA-256 */
  snprintf(out, cap, "account-%s.portico.invalid", dash ? dash + 1 : "0");
  return 0;
}

void px__acme_account_unlock(px_acme_client *c) {
  char name[96];
  if (!c->account_locked) return;
  c->account_locked = 0;
  if (account_lock_name(c, name, sizeof(name)) == 0)
    c->o.store->ops->lock_release(c->o.store, name, ACCOUNT_LOCK_OWNER);
}

static void on_account_wait(uv_timer_t *t) { px__acme_account_ensure(t->data); }

/* Waits for the account another order or instance is creating; 0 when the
 * order goes on waiting, -1 when it has waited too long (it failed). */
static int account_wait(px__acme_order *o, const char *who) {
  if (++o->account_waits > ACCOUNT_WAIT_MAX) {
    px__acme_order_fail(o, "%s has been creating the ACME account for 2 minutes; giving up", who);
    return -1;
  }
  px__acme_order_later(o, ACCOUNT_WAIT_MS, on_account_wait);
  return 0;
}

static void on_new_account(px__acme_order *o, const char *err, px_acme_response *r) {
  px_acme_client *c = o->c;
  c->account_creating = 0;
  if (err) {
    px__acme_account_unlock(c);
    px__acme_order_fail(o, "%s", err);
    return;
  }
  if (r->location == NULL) {
    px_acme_response_free(r);
    px__acme_order_fail(o, "the CA did not say where the account is");
    return;
  }
  int rc = px__acme_set_str(&c->kid, r->location);
  px_acme_response_free(r);
  if (rc != 0) {
    px__acme_account_unlock(c);
    px__acme_order_fail(o, "out of memory");
    return;
  }
  save_account(c);
  px__acme_account_unlock(c);
  px_log(PX_LOG_INFO, "acme: account created at %s", c->kid);
  px__acme_order_new(o);
}

void px__acme_account_ensure(px__acme_order *o) {
  px_acme_client *c = o->c;
  if (c->kid) {
    px__acme_order_new(o);
    return;
  }
  if (!c->skip_cached_account && load_account(c)) {
    px_log(PX_LOG_INFO, "acme: using the cached account %s", c->kid);
    px__acme_order_new(o);
    return;
  }
  if (c->terms && !c->o.accept_terms) {
    px__acme_order_fail(
        o, "the CA requires agreeing to its terms of service (%s): set acme.accept_terms: true",
        c->terms);
    return;
  }
  if (c->eab_required && !c->o.eab_kid) {
    px__acme_order_fail(o, "the CA requires external account binding: set acme.eab");
    return;
  }
  if (c->account_creating) { /* another order of ours is at it */
    account_wait(o, "another order");
    return;
  }
  char lock[96];
  px_store *s = c->o.store;
  int lrc = account_lock_name(c, lock, sizeof(lock));
  if (lrc == 0) lrc = s->ops->lock_acquire(s, lock, ACCOUNT_LOCK_OWNER);
  if (lrc == -EBUSY) {
    if (o->account_waits == 0)
      px_log(PX_LOG_INFO, "acme: another instance is creating the account; waiting for it");
    account_wait(o, "another instance");
    return;
  }
  if (lrc != 0) {
    px__acme_order_fail(o, "cannot take the account lock in the store: %s", strerror(-lrc));
    return;
  }
  c->account_locked = 1;
  /* Read again under the lock: another instance may have saved one. */
  if (load_account(c)) {
    if (!c->skip_cached_account || !c->forgotten_kid || strcmp(c->kid, c->forgotten_kid) != 0) {
      px__acme_account_unlock(c);
      c->skip_cached_account = 0;
      px_log(PX_LOG_INFO, "acme: using the account %s another instance created", c->kid);
      px__acme_order_new(o);
      return;
    }
    free(c->kid); /* the one the CA forgot */
    c->kid = NULL;
    px_acme_key_free(c->account_key);
    c->account_key = NULL;
  }
  c->account_creating = 1;
  px__acme_order_step(o, "new account");
  px_acme_key_free(c->account_key);
  c->account_key = px_acme_account_key_generate();
  json_t *p = json_pack("{s:b}", "termsOfServiceAgreed", c->o.accept_terms ? 1 : 0);
  if (c->account_key == NULL || p == NULL) {
    json_decref(p);
    c->account_creating = 0;
    px__acme_account_unlock(c);
    px__acme_order_fail(o, "cannot generate the account key");
    return;
  }
  if (c->o.email) {
    char contact[300];
    snprintf(contact, sizeof(contact), "mailto:%s", c->o.email);
    json_object_set_new(p, "contact", json_pack("[s]", contact));
  }
  if (c->o.eab_kid) {
    json_t *eab =
        px_acme_jws_eab(c->account_key, c->o.eab_kid, c->o.eab_hmac_key, c->url_new_account);
    if (eab == NULL) {
      json_decref(p);
      c->account_creating = 0;
      px__acme_account_unlock(c);
      px__acme_order_fail(o, "acme.eab.hmac_key is not valid base64url");
      return;
    }
    json_object_set_new(p, "externalAccountBinding", eab);
  }
  char *payload = json_dumps(p, JSON_COMPACT);
  json_decref(p);
  if (payload == NULL) {
    c->account_creating = 0;
    px__acme_account_unlock(c);
    px__acme_order_fail(o, "out of memory");
    return;
  }
  px__acme_post(o, c->url_new_account, payload, 0, on_new_account);
  free(payload);
}

void px__acme_account_reset(px__acme_order *o) {
  px_acme_client *c = o->c;
  free(c->forgotten_kid);
  c->forgotten_kid = c->kid ? strdup(c->kid) : NULL;
  free(c->kid);
  c->kid = NULL;
  px_acme_key_free(c->account_key);
  c->account_key = NULL;
  c->skip_cached_account = 1;
  px__acme_account_ensure(o);
}
