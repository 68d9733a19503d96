/*
 * Parsers for the scalar values of the configuration. Each returns NULL on
 * success or a static phrase that completes "\"VALUE\" ..." in an error.
 */
#ifndef PX_CONFIG_VALUES_H
#define PX_CONFIG_VALUES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/** 60 days (RFC 6797 max-age), the default the product card sets. */
#define PX_HSTS_DEFAULT_MAX_AGE 5184000

/** A whole number ("100"). */
const char *px_cfg_parse_count(const char *s, uint64_t *out);

/** A duration: whole seconds ("10") or with a unit: "500ms", "10s", "2m", "1h". */
const char *px_cfg_parse_duration_ms(const char *s, uint64_t *out_ms);

/** A size: bytes ("65536") or with a binary unit: "16k", "1m", "1g". */
const char *px_cfg_parse_size(const char *s, uint64_t *out);

/** "error" | "warn" | "info" | "debug" -> 0..3, or -1. */
int px_cfg_parse_log_level(const char *s);

/** A listen address: "a.b.c.d:port" or "[v6]:port", numeric only. */
const char *px_cfg_parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len);

/** An upstream: like a listen address, "name:port" (resolved now), or "unix:/path". */
const char *px_cfg_parse_upstream(const char *s, struct sockaddr_storage *ss, socklen_t *len,
                                  int *is_unix);

/**
 * A site host pattern: "*", "*.example.com" or "example.com". Lowercases
 * into `out`. Labels are [a-z0-9-], 1..63 long, not starting or ending with
 * '-'; total <= 253; at least one dot.
 */
const char *px_cfg_normalize_host_pattern(const char *s, char *out, size_t cap);

#endif
