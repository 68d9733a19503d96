/*
 * Dropping root (docs/operations.md, "Privilege drop"). Started as root with
 * `user:` set, portico becomes that user before it opens a log, takes a
 * listen lock, reads a certificate or the cache, or starts a thread, and
 * keeps one capability, CAP_NET_BIND_SERVICE, so its workers (and a later
 * reload) can bind ports below 1024. Nothing else of root remains: no uid
 * 0 in any of real, effective or saved ids, no other capability.
 */
#ifndef PX_PRIVDROP_H
#define PX_PRIVDROP_H

#include <stddef.h>

#include "proxy/config.h"

/**
 * Becomes `cfg->user` (and `cfg->group`, else the user's primary group, with
 * the user's supplementary groups). Does nothing when `user` is unset, or
 * when portico already runs as that user. Before switching it pins
 * `cfg->runtime_dir` to the directory root would use (the default depends
 * on the uid) and creates the runtime and storage directories, owned by the
 * user, when they do not exist yet; existing ones are left as they are.
 * Call it while the process has one thread. 0, or -1 with a sentence in
 * `err` (not root and another user; a failed switch).
 */
int px_drop_privileges(px_config *cfg, char *err, size_t errlen);

#endif
