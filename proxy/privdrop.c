#include "proxy/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "acme/store_open.h"
#include "proxy/listen_lock.h"
#include "tls/log.h"

/* Creates `dir` (one level) for the user; an existing one is not touched. */
static int make_dir_for(const char *what, const char *dir, uid_t uid, gid_t gid, char *err,
                        size_t errlen) {
  if (mkdir(dir, 0700) != 0) {
    if (errno == EEXIST) return 0;
    snprintf(err, errlen, "%s %s: cannot create it: %s", what, dir, strerror(errno));
    return -1;
  }
  if (chown(dir, uid, gid) != 0) {
    snprintf(err, errlen, "%s %s: cannot give it to uid %u: %s", what, dir, (unsigned)uid,
             strerror(errno));
    return -1;
  }
  return 0;
}

/* Keeps CAP_NET_BIND_SERVICE alone in the permitted and effective sets
 * (capabilities(7)); PR_SET_KEEPCAPS kept the permitted set across setuid.
 * The raw system call spares a libcap dependency. */
static int keep_bind_capability(void) {
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof(data));
  data[0].permitted = data[0].effective = 1u << CAP_NET_BIND_SERVICE;
  return (int)syscall(SYS_capset, &hdr, data);
}

int px_drop_privileges(px_config *cfg, char *err, size_t errlen) {
  if (cfg->user == NULL) return 0;
  struct passwd *pw = getpwnam(cfg->user);
  if (pw == NULL) {
    snprintf(err, errlen, "user: no such user \"%s\"", cfg->user);
    return -1;
  }
  uid_t uid = pw->pw_uid;
  gid_t gid = pw->pw_gid;
  if (cfg->group) {
    struct group *gr = getgrnam(cfg->group);
    if (gr == NULL) {
      snprintf(err, errlen, "group: no such group \"%s\"", cfg->group);
      return -1;
    }
    gid = gr->gr_gid;
  }
  if (geteuid() != 0) {
    if (geteuid() == uid && (cfg->group == NULL || getegid() == gid)) return 0;
    snprintf(err, errlen,
             "user: %s: portico runs as uid %u, not root, and cannot become uid %u; start it as "
             "root, or as that user, or remove the key",
             cfg->user, (unsigned)geteuid(), (unsigned)uid);
    return -1;
  }
  /* The default runtime directory depends on the uid: keep root's. */
  if (cfg->runtime_dir == NULL) {
    char dir[4096];
    px_listen_lock_dir(cfg, dir, sizeof(dir));
    if ((cfg->runtime_dir = strdup(dir)) == NULL) {
      snprintf(err, errlen, "out of memory");
      return -1;
    }
  }
  if (make_dir_for("runtime_dir", cfg->runtime_dir, uid, gid, err, errlen) != 0) return -1;
  int any_acme = 0; /* only then is the storage directory used */
  for (size_t i = 0; i < cfg->nsites; i++)
    any_acme |= cfg->sites[i].tls_mode == PX_SITE_TLS_ACME ||
                cfg->sites[i].tls_mode == PX_SITE_TLS_ON_DEMAND;
  if (any_acme && cfg->storage && !px_store_is_url(cfg->storage) &&
      make_dir_for("storage", cfg->storage, uid, gid, err, errlen) != 0)
    return -1;
  const char *step = "prctl(PR_SET_KEEPCAPS)";
  if (prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) goto fail;
  /* Groups first: after setuid there is no right left to change them. */
  step = "initgroups";
  if (initgroups(cfg->user, gid) != 0) goto fail;
  step = "setgid";
  if (setgid(gid) != 0) goto fail;
  step = "setuid";
  if (setuid(uid) != 0) goto fail; /* as root: real, effective and saved */
  step = "capset";
  if (keep_bind_capability() != 0) goto fail;
  step = "prctl(PR_SET_KEEPCAPS, 0)";
  if (prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L) != 0) goto fail;
  if (setuid(0) == 0) { /* must be impossible now */
    snprintf(err, errlen, "user: %s: root could be regained after the switch", cfg->user);
    return -1;
  }
  px_log(PX_LOG_INFO, "running as user %s (uid %u, gid %u), keeping only CAP_NET_BIND_SERVICE",
         cfg->user, (unsigned)uid, (unsigned)gid);
  return 0;
fail:
  snprintf(err, errlen, "user: %s: %s failed: %s", cfg->user, step, strerror(errno));
  return -1;
}
