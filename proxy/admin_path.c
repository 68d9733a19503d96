/* The admin socket's default path (proxy/admin_path.h). */
#include "proxy/admin_path.h"

#include <stdio.h>

#include "acme/store_open.h"
#include "proxy/listen_lock.h"

const char *px_admin_socket_default(const px_config *cfg, char *buf, size_t cap) {
  if (!px_store_is_url(cfg->storage)) {
    snprintf(buf, cap, "%s/admin.sock", cfg->storage);
    return buf;
  }
  char dir[4096];
  snprintf(buf, cap, "%s/admin.sock", px_listen_lock_dir(cfg, dir, sizeof(dir)));
  return buf;
}
