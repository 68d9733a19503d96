/*
 * The `user:` and `group:` keys: who portico becomes after start-up when it
 * is started as root (proxy/privdrop.c). Both must exist on this machine
 * when the file is loaded, so a typo is a config error, not a start as root.
 */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>

#include "proxy/config/loader.h"

void px_cfg_load_user(loader *L, yaml_node_t *root) {
  px_config *cfg = L->cfg;
  yaml_node_t *v;
  if ((v = px_cfg_get(L, root, "user"))) {
    cfg->user = px_cfg_get_string(L, v, "user");
    if (cfg->user && getpwnam(cfg->user) == NULL)
      px_cfg_error_at(L, v, "user",
                      "no such user \"%s\" on this machine (create it, or remove "
                      "the key to keep the user portico was started as)",
                      cfg->user);
  }
  if ((v = px_cfg_get(L, root, "group"))) {
    cfg->group = px_cfg_get_string(L, v, "group");
    if (cfg->group && getgrnam(cfg->group) == NULL)
      px_cfg_error_at(L, v, "group", "no such group \"%s\" on this machine", cfg->group);
    else if (cfg->group && cfg->user == NULL)
      px_cfg_error_at(L, v, "group", "applies only with user: set");
  }
}
