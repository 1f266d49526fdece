/* Collecting errors with their FILE:LINE, and printing them in file order. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf_int.h"

const char *conf_setting_file(const struct conf_ctx *c, const config_setting_t *s)
{
	const char *f = s == NULL ? NULL : config_setting_source_file(s);

	if (f == NULL)
		return c->path;
	return f;
}

/*
 * libconfig names an included file as the @include wrote it, but opened it
 * under the include directory: name it the way it was opened.
 */
static char *display_file(struct conf_ctx *c, const char *file)
{
	char *out;

	if (file == NULL)
		file = c->path;
	if (strcmp(file, c->path) == 0 || file[0] == '/' || c->incdir == NULL)
		return conf_strdup(c, file);
	if (asprintf(&out, "%s/%s", c->incdir, file) == -1) {
		c->oom = true;
		return NULL;
	}
	return out;
}

char *conf_source_line(struct conf_ctx *c, const char *file, unsigned line)
{
	char *path = display_file(c, file), *text = NULL;
	size_t cap = 0;
	unsigned n = 0;
	FILE *f;

	if (path == NULL || line == 0 || (f = fopen(path, "r")) == NULL) {
		free(path);
		return NULL;
	}
	while (n < line && getline(&text, &cap, f) != -1)
		n++;
	fclose(f);
	free(path);
	if (n < line) {
		free(text);
		return NULL;
	}
	return text;
}

static void err_add(struct conf_ctx *c, const char *file, int line, const char *fmt, va_list ap)
{
	struct conf_msg *m;

	if (c->nmsgs == c->capmsgs) {
		size_t cap = c->capmsgs ? c->capmsgs * 2 : 16;
		struct conf_msg *n = realloc(c->msgs, cap * sizeof(*n));

		if (n == NULL) {
			c->oom = true;
			return;
		}
		c->msgs = n;
		c->capmsgs = cap;
	}
	m = &c->msgs[c->nmsgs];
	m->line = line;
	m->seq = c->nmsgs;
	m->file = display_file(c, file);
	if (vasprintf(&m->text, fmt, ap) == -1 || m->file == NULL) {
		if (m->file != NULL)
			free(m->file);
		c->oom = true;
		return;
	}
	c->nmsgs++;
}

void conf_err_at(struct conf_ctx *c, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_add(c, file, line, fmt, ap);
	va_end(ap);
}

void conf_err(struct conf_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
	va_list ap;
	int line = s == NULL ? 1 : (int)config_setting_source_line(s);

	va_start(ap, fmt);
	err_add(c, s == NULL ? NULL : config_setting_source_file(s), line ? line : 1, fmt, ap);
	va_end(ap);
}

/* The main file first, then included files in the order errors named them. */
static size_t file_rank(const struct conf_ctx *c, const struct conf_msg *m)
{
	if (strcmp(m->file, c->path) == 0)
		return 0;
	for (size_t i = 0; i < c->nmsgs; i++)
		if (strcmp(c->msgs[i].file, m->file) == 0)
			return i + 1;
	return c->nmsgs + 1;
}

static int msg_cmp(const void *a, const void *b)
{
	const struct conf_msg *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t conf_err_flush(struct conf_ctx *c)
{
	size_t n = c->nmsgs;

	for (size_t i = 0; i < n; i++)
		c->msgs[i].rank = file_rank(c, &c->msgs[i]);
	if (n > 1)
		qsort(c->msgs, n, sizeof(*c->msgs), msg_cmp);
	for (size_t i = 0; i < n; i++) {
		if (c->errs != NULL && c->msgs[i].line > 0)
			fprintf(c->errs, "%s:%d: %s\n", c->msgs[i].file, c->msgs[i].line,
			        c->msgs[i].text);
		else if (c->errs != NULL) /* about the whole file, e.g. it cannot be read */
			fprintf(c->errs, "%s: %s\n", c->msgs[i].file, c->msgs[i].text);
		free(c->msgs[i].file);
		free(c->msgs[i].text);
	}
	if (c->oom && c->errs != NULL)
		fprintf(c->errs, "%s: out of memory\n", c->path);
	free(c->msgs);
	c->msgs = NULL;
	c->nmsgs = c->capmsgs = 0;
	return n + (c->oom ? 1 : 0);
}

char *conf_strdup(struct conf_ctx *c, const char *s)
{
	char *d = strdup(s);

	if (d == NULL)
		c->oom = true;
	return d;
}

void conf_set_str(struct conf_ctx *c, char **dst, const char *s)
{
	char *d = conf_strdup(c, s);

	free(*dst);
	*dst = d;
}

const char *conf_label(char *buf, const char *prefix, const char *name)
{
	if (prefix[0] == '\0')
		snprintf(buf, CONF_LABEL_MAX, "%s", name);
	else
		snprintf(buf, CONF_LABEL_MAX, "%s.%s", prefix, name);
	return buf;
}
