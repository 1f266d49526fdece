/*
 * The service manager's readiness protocol (sd_notify(3)): one datagram
 * "READY=1" and the like to the AF_UNIX socket $NOTIFY_SOCKET names.
 */
#ifndef BECKON_NOTIFY_H
#define BECKON_NOTIFY_H

/*
 * Send STATE ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=...", several
 * joined by newlines). Nothing when $NOTIFY_SOCKET is unset; 0, or -1 with
 * a warning logged when it is set and the datagram did not go.
 */
int notify_send(const char *state);

#endif
