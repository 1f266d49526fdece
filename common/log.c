/*
 * Logging to stderr, one line an event. On a terminal or into a file a
 * line carries its own UTC timestamp and level; when stderr is the
 * journal's stream (systemd says so in $JOURNAL_STREAM, "DEV:INO" of the
 * stream it gave us), the journal stamps each line itself and reads a
 * "<N>" prefix as its priority, so the line carries that and no time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

static int log_verbose;
static int log_journal;

/* stderr is the stream $JOURNAL_STREAM names (not merely inherited from a unit). */
static int log_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (env == NULL || sscanf(env, "%llu:%llu", &dev, &ino) != 2)
		return 0;
	if (fstat(2, &st) == -1)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(int verbose)
{
	log_verbose = verbose;
	log_journal = log_is_journal();
}

static void log_vline(int prio, const char *level, const char *fmt, va_list ap, int err)
{
	struct timespec ts;
	struct tm tm;
	char stamp[48], msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal) {
		snprintf(stamp, sizeof(stamp), "<%d>", prio);
	} else {
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(stamp, 24, "%Y-%m-%dT%H:%M:%S", &tm);
		snprintf(stamp + strlen(stamp), sizeof(stamp) - strlen(stamp), ".%03ldZ ",
		         ts.tv_nsec / 1000000);
	}
	if (err)
		fprintf(stderr, "%s%s: %s: %s\n", stamp, level, msg, strerror(err));
	else
		fprintf(stderr, "%s%s: %s\n", stamp, level, msg);
}

#define LOG_BODY(prio, level, err)                                                                 \
	do {                                                                                       \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_vline(prio, level, fmt, ap, err);                                              \
		va_end(ap);                                                                        \
	} while (0)

void log_warn(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY(LOG_WARNING, "warning", err);
}

void log_warnx(const char *fmt, ...)
{
	LOG_BODY(LOG_WARNING, "warning", 0);
}

void log_info(const char *fmt, ...)
{
	LOG_BODY(LOG_INFO, "info", 0);
}

void log_debug(const char *fmt, ...)
{
	if (log_verbose < 1)
		return;
	LOG_BODY(LOG_DEBUG, "debug", 0);
}

void fatal(const char *fmt, ...)
{
	int err = errno;
	LOG_BODY(LOG_CRIT, "fatal", err);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	LOG_BODY(LOG_CRIT, "fatal", 0);
	exit(1);
}
