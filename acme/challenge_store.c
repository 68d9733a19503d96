/*
 * Challenge material in the store (acme/challenge_store.h).
 */
#include "acme/challenge_store.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *type_name(px_acme_challenge_type t) {
  return t == PX_ACME_TLS_ALPN_01 ? "tls-alpn-01" : "http-01";
}

int px_challenge_id(px_acme_challenge_type type, const char *name, const char *token, char *out,
                    size_t cap) {
  if (type == PX_ACME_HTTP_01) {
    if (token == NULL || strlen(token) >= cap) return -EINVAL;
    strcpy(out, token); /* the store checks its characters */
    return 0;
  }
  if (name == NULL || cap < 5 + 2 * SHA256_DIGEST_LENGTH + 1) return -EINVAL;
  uint8_t d[SHA256_DIGEST_LENGTH];
  SHA256((const uint8_t *)name, strlen(name), d);
  memcpy(out, "alpn-", 5);
  for (size_t i = 0; i < sizeof(d); i++)
    snprintf(out + 5 + 2 * i, 3, "%02x", d[i]);
  return 0;
}

int px_challenge_save(px_store *s, px_acme_challenge_type type, const char *name, const char *token,
                      const char *key_authorization) {
  char id[PX_CHALLENGE_ID_MAX];
  int rc = px_challenge_id(type, name, token, id, sizeof(id));
  if (rc != 0) return rc;
  json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "type", type_name(type), "name", name, "token",
                        token ? token : "", "key_authorization", key_authorization);
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  if (text == NULL) return -ENOMEM;
  rc = s->ops->save(s, PX_STORE_CHALLENGES, id, NULL, text, strlen(text));
  free(text);
  return rc;
}

int px_challenge_remove(px_store *s, px_acme_challenge_type type, const char *name,
                        const char *token) {
  char id[PX_CHALLENGE_ID_MAX];
  int rc = px_challenge_id(type, name, token, id, sizeof(id));
  return rc != 0 ? rc : s->ops->remove(s, PX_STORE_CHALLENGES, id, NULL);
}

int px_challenge_load(px_store *s, const char *id, px_challenge_item *out) {
  memset(out, 0, sizeof(*out));
  char *data = NULL;
  size_t len = 0;
  int rc = s->ops->load(s, PX_STORE_CHALLENGES, id, NULL, &data, &len);
  if (rc != 0) return rc;
  json_t *j = json_loadb(data, len, 0, NULL);
  px_store_data_free(data, len);
  const char *type = NULL, *name = NULL, *token = NULL, *ka = NULL;
  if (j == NULL ||
      json_unpack(j, "{s:s,s:s,s:s,s:s}", "type", &type, "name", &name, "token", &token,
                  "key_authorization", &ka) != 0 ||
      (strcmp(type, "http-01") != 0 && strcmp(type, "tls-alpn-01") != 0)) {
    json_decref(j);
    return -EBADMSG;
  }
  out->type = strcmp(type, "http-01") == 0 ? PX_ACME_HTTP_01 : PX_ACME_TLS_ALPN_01;
  out->name = strdup(name);
  out->token = strdup(token);
  out->key_authorization = strdup(ka);
  json_decref(j);
  if (!out->name || !out->token || !out->key_authorization) {
    px_challenge_item_dispose(out);
    return -ENOMEM;
  }
  return 0;
}

void px_challenge_item_dispose(px_challenge_item *it) {
  free(it->name);
  free(it->token);
  free(it->key_authorization);
  memset(it, 0, sizeof(*it));
}
