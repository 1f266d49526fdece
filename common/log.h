/*
 * Logging to stderr, one line an event: timestamp, level, message; into
 * the journal, its <N> priority instead of the timestamp.
 */
#ifndef BECKON_LOG_H
#define BECKON_LOG_H

#include <stdarg.h>

/* Set the verbosity: 0 info and above, 1 adds debug. */
void log_init(int verbose);

/* Warnings with ("_warn") and without ("_warnx") strerror(errno) appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Startup failures and broken invariants only: log and exit 1. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
