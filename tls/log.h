/*
 * The process-wide error log and the access log.
 *
 * It lives in tls/ because tls is the bottom of the module chain
 * (tls <- acme <- proxy) and every module logs. Lines go to stderr as
 *   2026-11-23T10:00:00.123Z level=info msg="..."
 * Nothing secret is ever passed here: keys, key authorizations, EAB HMACs
 * and JWS payloads are never formatted into a log line.
 */
#ifndef PX_LOG_H
#define PX_LOG_H

#include <stdarg.h>
#include <stdio.h>

typedef enum px_log_level {
  PX_LOG_ERROR = 0,
  PX_LOG_WARN = 1,
  PX_LOG_INFO = 2,
  PX_LOG_DEBUG = 3,
} px_log_level;

/** Sets the most verbose level that is written (default: info). */
void px_log_set_level(px_log_level level);

/** True when a line at this level would be written. */
int px_log_enabled(px_log_level level);

/** Writes one error-log line at `level`. Thread-safe (one write(2) a line). */
void px_log(px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Parses "error|warn|info|debug"; returns -1 for anything else. */
int px_log_level_parse(const char *s);

/**
 * Opens the access log: "stdout", "stderr", "off", or a file path (appended,
 * created 0640). Returns 0 or a negative errno.
 */
int px_access_log_open(const char *target);

/** True when access logging is on. */
int px_access_log_enabled(void);

/** Writes one preformatted access-log line (a newline is added). Thread-safe. */
void px_access_log_write(const char *line, size_t len);

/** Copies `s` into `out` (capacity `cap`), escaping quotes, backslashes and
 *  control bytes so a client-chosen string cannot forge log lines.
 *  Returns the length written (always NUL-terminated, truncated if needed). */
size_t px_log_escape(char *out, size_t cap, const char *s, size_t len);

#endif
