/*
 * Running an operator's program on the manager's loop: uv_spawn without a
 * shell, in its own process group (killed whole after a timeout), its
 * stderr either joining portico's own or captured (bounded) for the
 * caller's message. Used by events.command (life/events.c) and the dns-01
 * hook (dns/dns01.c).
 *
 * Error convention (acme/errors.h): the callback gets how the program
 * ended; it is never called from inside px_command_run, and never after
 * px_command_kill.
 */
#ifndef PX_ACME_LIFE_COMMAND_H
#define PX_ACME_LIFE_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Bytes of stderr kept when captured; more are dropped. */
#define PX_COMMAND_OUTPUT_MAX 1024

/** How the program ended. */
typedef struct px_command_result {
  int64_t status;        /**< exit status (0 on success) */
  int signal;            /**< the signal that ended it, or 0 */
  int timed_out;         /**< killed after the timeout */
  const char *spawn_err; /**< it could not be started (uv_strerror), or NULL */
  const char *output;    /**< captured stderr (NUL-terminated, bounded), or "" */
} px_command_result;

typedef struct px_command px_command;

typedef void (*px_command_cb)(void *arg, const px_command_result *r);

/**
 * Runs argv[0] with `argv` (NULL-terminated) and `env` (NULL: ours). With
 * `capture`, stderr is read into a bounded buffer and stdout dropped;
 * without, both go to portico's stderr. NULL when out of memory (`cb` not called).
 */
px_command *px_command_run(uv_loop_t *loop, char *const *argv, char *const *env,
                           uint64_t timeout_ms, int capture, px_command_cb cb, void *arg);

/** Kills the program's process group; `cb` is not called. The memory goes
 *  once the handles close. */
void px_command_kill(px_command *c);

/** Kills the program's process group as its timeout would: `cb` is still
 *  called (with timed_out). */
void px_command_expire(px_command *c);

/** The pid of a running program (0 once it ended). */
int px_command_pid(const px_command *c);

#endif
