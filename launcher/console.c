/*
 * A guest's console: appended to <state_dir>/<name>.console and cut into
 * lines for the console probe (a line may arrive over several reads).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "internal.h"
#include "log.h"

#define CONSOLE_LINE_MAX 4096
#define CONSOLE_LAST_MAX 200

struct console {
	int fd;
	size_t len;
	char line[CONSOLE_LINE_MAX];
	char last[CONSOLE_LAST_MAX];
};

struct console *console_open(struct instance *inst)
{
	struct console *c;
	char path[4096];

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s.console", inst->state_dir, inst->svc->name);
	c->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (c->fd == -1 && errno == ENOENT && launcher_mkdir_p(inst->state_dir) == 0)
		c->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (c->fd == -1)
		log_warn("%s: console %s", inst->svc->name, path);
	return c;
}

void console_close(struct console *c)
{
	if (c == NULL)
		return;
	if (c->fd != -1)
		close(c->fd);
	free(c);
}

static void console_write(struct console *c, const char *buf, size_t len)
{
	ssize_t n;

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

/* Remember the last line, printable, for boot failure messages. */
static void console_keep_last(struct console *c)
{
	size_t i;

	if (c->len == 0)
		return;
	for (i = 0; i < c->len && i < CONSOLE_LAST_MAX - 1; i++)
		c->last[i] = (c->line[i] >= 0x20 && c->line[i] < 0x7f) ? c->line[i] : '?';
	c->last[i] = '\0';
}

/* A line is complete: strip "\r", match it, start the next. */
static void console_line_done(struct instance *inst, struct console *c, bool complete)
{
	if (c->len > 0 && c->line[c->len - 1] == '\r')
		c->len--;
	c->line[c->len] = '\0';
	console_keep_last(c);
	if (inst->probe != NULL)
		probe_console_line(inst->probe, c->line, complete);
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
	if (c->len > 0 && inst->probe != NULL) {
		/* A partial line (a prompt, or the rest is still coming). */
		c->line[c->len] = '\0';
		probe_console_line(inst->probe, c->line, false);
	}
}

const char *console_last_line(const struct console *c)
{
	return c->last;
}

void launcher_inst_console(struct instance *inst, const char *buf, size_t len)
{
	console_feed(inst, buf, len);
}
