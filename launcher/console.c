/*
 * A guest's console: written to <state_dir>/<name>.console, cut at each
 * boot (the previous run's kept as <name>.console.1) and at CONSOLE_FILE_MAX
 * bytes, and cut into lines: for the console probe, the fail pattern
 * (fail = "console:REGEX", which ends a boot at once), and the lines that
 * look like an error, quoted when a boot fails (a usage dump's last line
 * says the least).
 */
#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "backend.h"
#include "core.h"
#include "log.h"

#define CONSOLE_LINE_MAX 4096
#define CONSOLE_LAST_MAX 200
#define CONSOLE_FILE_MAX (1 << 20)
#define CONSOLE_ERRORS 3

struct console {
	int fd;
	size_t written;
	size_t len;
	char line[CONSOLE_LINE_MAX];
	char last[CONSOLE_LAST_MAX];
	char errors[CONSOLE_ERRORS][CONSOLE_LAST_MAX]; /* the first lines that look like errors */
	int nerrors;
	regex_t fail;
	bool has_fail;
	bool failed; /* a line matched the fail pattern: fail_line */
	char fail_line[CONSOLE_LAST_MAX];
};

/* Words of a line that says something went wrong, in any case. */
static const char *const console_error_words[] = {
    "error",  "panic", "fail",   "fault",     "abort",   "assert",
    "cannot", "can't", "unable", "denied",    "invalid", "not found",
    "usage",  "fatal", "oops",   "exception", "illegal", "unknown"};

static int console_file_open(struct instance *inst, const char *path)
{
	char old[4096 + 8];
	int fd;

	/* The previous run's console, for whoever reads why it ended. */
	snprintf(old, sizeof(old), "%s.1", path);
	if (rename(path, old) == -1 && errno == ENOENT && launcher_mkdir_p(inst->state_dir) == -1)
		return -1;
	fd = open(path, O_WRONLY | O_TRUNC | O_CREAT | O_CLOEXEC, 0640);
	if (fd == -1)
		log_warn("%s: console %s", inst->svc->name, path);
	return fd;
}

int console_path(const struct instance *inst, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.console", inst->state_dir, inst->svc->name);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

struct console *console_open(struct instance *inst)
{
	struct console *c;
	char path[4096];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->fd = console_path(inst, path, sizeof(path)) == 0 ? console_file_open(inst, path) : -1;
	/* Checked at load: a failure here is out of memory. */
	if (inst->svc->fail_re != NULL &&
	    regcomp(&c->fail, inst->svc->fail_re, REG_EXTENDED | REG_NOSUB) == 0)
		c->has_fail = true;
	return c;
}

void console_close(struct console *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	if (c->has_fail)
		regfree(&c->fail);
	free(c);
}

static void console_write(struct console *c, const char *buf, size_t len)
{
	static const char cut[] = "\n[beckon: console cut here, at 1 MiB]\n";
	ssize_t n;

	if (c->fd != -1 && c->written + len > CONSOLE_FILE_MAX) {
		len = CONSOLE_FILE_MAX - c->written;
		if (write(c->fd, buf, len) >= 0 && write(c->fd, cut, sizeof(cut) - 1) >= 0)
			log_debug("console cut at %d bytes", CONSOLE_FILE_MAX);
		close(c->fd);
		c->fd = -1; /* the probe still reads it all */
		return;
	}
	c->written += len;
	while (c->fd != -1 && len > 0) {
		if ((n = write(c->fd, buf, len)) == -1) {
			if (errno == EINTR)
				continue;
			log_warn("console write");
			close(c->fd);
			c->fd = -1; /* keep probing without the file */
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* LINE, printable and cut, into OUT. */
static void console_printable(char out[CONSOLE_LAST_MAX], const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len && i < CONSOLE_LAST_MAX - 1; i++)
		out[i] = (line[i] >= 0x20 && line[i] < 0x7f) ? line[i] : '?';
	out[i] = '\0';
}

static bool console_looks_bad(const char *line)
{
	for (size_t i = 0; i < sizeof(console_error_words) / sizeof(console_error_words[0]); i++)
		if (strcasestr(line, console_error_words[i]) != NULL)
			return true;
	return false;
}

/* Remember the last line, and the first that look like errors, for boot failure messages. */
static void console_keep_last(struct console *c)
{
	if (c->len == 0)
		return;
	console_printable(c->last, c->line, c->len);
	if (c->nerrors < CONSOLE_ERRORS && console_looks_bad(c->line))
		console_printable(c->errors[c->nerrors++], c->line, c->len);
}

/* A line is complete: strip "\r", match it, start the next. */
static void console_line_done(struct instance *inst, struct console *c, bool complete)
{
	if (c->len > 0 && c->line[c->len - 1] == '\r')
		c->len--;
	c->line[c->len] = '\0';
	console_keep_last(c);
	if (c->has_fail && !c->failed && inst->state == INST_BOOTING &&
	    regexec(&c->fail, c->line, 0, NULL, complete ? 0 : REG_NOTEOL) == 0) {
		/* Acted on once the read is done (launcher_inst_console): it frees us. */
		c->failed = true;
		console_printable(c->fail_line, c->line, c->len);
	} else if (inst->probe != NULL && !c->failed) {
		probe_console_line(inst->probe, c->line, complete);
	}
	c->len = 0;
}

void console_feed(struct instance *inst, const char *buf, size_t len)
{
	struct console *c = inst->console;
	size_t i;

	if (c == NULL)
		return;
	console_write(c, buf, len);
	for (i = 0; i < len; i++) {
		if (buf[i] == '\n') {
			console_line_done(inst, c, true);
			continue;
		}
		if (c->len == CONSOLE_LINE_MAX - 1)
			console_line_done(inst, c, false); /* an endless line: match in pieces */
		c->line[c->len++] = buf[i] ? buf[i] : ' ';
	}
	if (c->len > 0 && inst->probe != NULL && !c->failed) {
		/* A partial line (a prompt, or the rest is still coming). */
		c->line[c->len] = '\0';
		probe_console_line(inst->probe, c->line, false);
	}
}

const char *console_last_line(const struct console *c)
{
	return c->last;
}

void console_describe(const struct console *c, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < c->nerrors && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s\"%s\"", i ? ", " : "",
		                         c->errors[i]);
	if (c->last[0] != '\0' && used < len &&
	    (c->nerrors == 0 || strcmp(c->last, c->errors[c->nerrors - 1]) != 0))
		snprintf(buf + used, len - used, "%slast: \"%s\"", used ? "; " : "", c->last);
}

void launcher_inst_console(struct instance *inst, const char *buf, size_t len)
{
	char why[CONSOLE_LAST_MAX + 64];

	console_feed(inst, buf, len);
	if (inst->console != NULL && inst->console->failed && inst->state == INST_BOOTING) {
		snprintf(why, sizeof(why), "the console matched fail = \"console:%s\": \"%s\"",
		         inst->svc->fail_re, inst->console->fail_line);
		launcher_inst_failed(inst, why);
	}
}
