/*
 * The systemd readiness protocol (sd_notify(3)) without libsystemd: one
 * datagram of newline-separated VAR=VALUE lines to the unix socket named by
 * $NOTIFY_SOCKET. A unit with Type=notify (dist/portico.service) starts
 * dependent units only after READY=1, and shows STATUS= in `systemctl
 * status`. Outside systemd $NOTIFY_SOCKET is unset and nothing is sent.
 */
#ifndef PX_SDNOTIFY_H
#define PX_SDNOTIFY_H

/**
 * Sends `state` (for example "READY=1\nSTATUS=serving", "STOPPING=1",
 * "RELOADING=1\nMONOTONIC_USEC=...") to $NOTIFY_SOCKET: a path, or an
 * abstract socket when it starts with '@'. Returns 1 when sent, 0 when
 * $NOTIFY_SOCKET is unset or empty, or a negative errno (an unusable
 * address or a failed send). Safe from any thread; it blocks at most for
 * one local datagram.
 */
int px_sd_notify(const char *state);

#endif
