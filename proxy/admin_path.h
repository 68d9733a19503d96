/*
 * Where the admin socket lives when `admin.socket` is not set: in the
 * storage directory, shared by `portico` and `portico ctl`; but when
 * storage is a URL (redis://...), there is no directory to put it in, so it
 * goes to the runtime directory (runtime_dir's default, as the listen-address
 * locks, proxy/listen_lock.h).
 */
#ifndef PX_ADMIN_PATH_H
#define PX_ADMIN_PATH_H

#include <stddef.h>

#include "proxy/config.h"

/** Writes the default admin socket path of `cfg` to `buf`; returns `buf`. */
const char *px_admin_socket_default(const px_config *cfg, char *buf, size_t cap);

#endif
