#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static int log_verbose;

void log_init(int verbose)
{
	log_verbose = verbose;
}

static void log_vline(const char *level, const char *fmt, va_list ap, int err)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32], msg[1024];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (err)
		fprintf(stderr, "%s.%03ldZ %s: %s: %s\n", stamp, ts.tv_nsec / 1000000, level, msg,
		        strerror(err));
	else
		fprintf(stderr, "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000, level, msg);
}

#define LOG_BODY(level, err)                                                                       \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vline(level, fmt, ap, err);                                                    \
		va_end(ap);                                                                        \
	} while (0)

void log_warn(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY("warning", err);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY("warning", 0);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY("info", 0);
}

void log_debug(const char *fmt, ...)
{
	if (log_verbose < 1)
		return;
	LOG_BODY("debug", 0);
}

void fatal(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY("fatal", err);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY("fatal", 0);
	exit(1);
}
