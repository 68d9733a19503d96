/*
 * The process-wide error log and the access log.
 *
 * It lives in tls/ because tls is the bottom of the module chain
 * (tls <- acme <- proxy) and every module logs. Lines go to stderr (or the
 * log.error file, which then takes descriptor 2) as
 *   2026-11-23T10:00:00.123Z info message
 * or, with log.format json, as {"time":"...","level":"info","msg":"..."}
 * (docs/logging.md).
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

/** log.format: json makes every error-log line one JSON object,
 *  {"time":"...","level":"info","msg":"..."}; 0 is the text format. */
void px_log_set_json(int on);

/** True when log.format is json (the access log follows it too). */
int px_log_json(void);

/** Writes the current UTC time as 2026-11-23T10:00:00.123Z; returns its length. */
size_t px_log_time(char *out, size_t cap);

/** Writes one error-log line at `level`. Thread-safe (one write(2) a line). */
void px_log(px_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Parses "error|warn|info|debug"; returns -1 for anything else. */
int px_log_level_parse(const char *s);

/**
 * Opens the access log: "stdout", "stderr", "off", or a file path (appended,
 * created 0640). Returns 0 or a negative errno.
 */
int px_access_log_open(const char *target);

/**
 * Sends the error log to `target`: "stderr" (the default) or a file path
 * (appended, created 0640), which then takes descriptor 2. 0 or a
 * negative errno.
 */
int px_error_log_open(const char *target);

/**
 * Reopens the error and access log files by their paths (SIGUSR1 and
 * `portico ctl reopen`, for logrotate); stdout and stderr targets are left
 * alone. Lines written meanwhile go whole to the old file or the new.
 * 0, or a negative errno with a sentence in `err` (may be NULL).
 */
int px_log_reopen(char *err, size_t errlen);

/** Longest access-log line; longer ones are cut (fields are bounded first). */
#define PX_ACCESS_LINE_MAX 16384

/** True when access logging is on. */
int px_access_log_enabled(void);

/** Writes one preformatted access-log line (a newline is added). Thread-safe. */
void px_access_log_write(const char *line, size_t len);

/** Copies `s` into `out` (capacity `cap`), escaping quotes, backslashes and
 *  control bytes so a client-chosen string cannot forge log lines.
 *  Returns the length written (always NUL-terminated, truncated if needed). */
size_t px_log_escape(char *out, size_t cap, const char *s, size_t len);

/** Copies `s` into `out` as the inside of a JSON string (RFC 8259 §7):
 *  quotes and backslashes escaped, every byte below 0x20 or from 0x7f up
 *  written as \u00XX, so the result is ASCII and always valid JSON.
 *  Truncates between escapes; always NUL-terminated; returns the length. */
size_t px_log_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
