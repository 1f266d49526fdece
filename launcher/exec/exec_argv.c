/*
 * The exec backend's command line: a template split into argv with simple
 * shell-like quoting, placeholders substituted. No shell runs, so a value
 * (an image path, a name) can never be read as shell syntax.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "argvec.h"
#include "backend.h"
#include "proc.h"
#include "exec.h"

struct argv_build {
	struct argvec av;
	char *word; /* the word being built */
	size_t len, wcap;
	bool started; /* a word is open, even if empty ("" makes one) */
	char *err;
	size_t errlen;
	bool failed;
};

static void ab_fail(struct argv_build *b, const char *msg)
{
	if (!b->failed)
		snprintf(b->err, b->errlen, "%s", msg);
	b->failed = true;
}

static void ab_putc(struct argv_build *b, char ch)
{
	char *n;

	b->started = true;
	if (b->len + 1 >= b->wcap) {
		b->wcap = b->wcap ? b->wcap * 2 : 64;
		if ((n = realloc(b->word, b->wcap)) == NULL) {
			ab_fail(b, "out of memory");
			return;
		}
		b->word = n;
	}
	b->word[b->len++] = ch;
	b->word[b->len] = '\0';
}

static void ab_puts(struct argv_build *b, const char *s)
{
	b->started = true;
	while (*s)
		ab_putc(b, *s++);
}

static void ab_end_word(struct argv_build *b)
{
	if (!b->started)
		return;
	if (b->word == NULL && (b->word = strdup("")) == NULL) {
		ab_fail(b, "out of memory");
		return;
	}
	argvec_add(&b->av, b->word); /* the vector owns the word now */
	if (b->av.failed)
		ab_fail(b, "out of memory");
	b->word = NULL;
	b->len = b->wcap = 0;
	b->started = false;
}

static void split(struct argv_build *b, const char *s, const struct backend_vars *v);

/* A "{": a placeholder, or plain text when not one ("${x}", "{ cmd; }"). */
static const char *expand(struct argv_build *b, const char *s, const char *start,
                          const struct backend_vars *v, bool quoted)
{
	const char *val;
	size_t len = backend_placeholder_at(s, start);
	bool is_cmdline;

	if (v == NULL || len == 0) {
		ab_putc(b, *s);
		return s + 1;
	}
	if ((val = backend_placeholder(s, len, v, &is_cmdline)) == NULL) {
		char msg[80];
		snprintf(msg, sizeof(msg), "unknown placeholder %.*s", (int)len, s);
		ab_fail(b, msg);
		return s + 1;
	}
	if (is_cmdline && !quoted)
		split(b, val, NULL); /* several arguments */
	else if (*val || quoted)
		ab_puts(b, val);
	return s + len;
}

/*
 * Split S into words; V NULL when S is a substituted value (no placeholders).
 * Placeholders are substituted inside quotes too, single ones included: the
 * config string is in double quotes, so single quotes are what is written.
 */
static void split(struct argv_build *b, const char *s, const struct backend_vars *v)
{
	const char *start = s;
	char quote = 0;

	while (*s && !b->failed) {
		if (*s == '{') {
			s = expand(b, s, start, v, quote != 0);
		} else if (quote == '\'' && *s != '\'') {
			ab_putc(b, *s++);
		} else if (*s == quote) {
			quote = 0;
			s++;
		} else if (!quote && (*s == '\'' || *s == '"')) {
			quote = *s++;
			b->started = true;
		} else if (*s == '\\' && s[1] && (!quote || strchr("\"\\", s[1]))) {
			ab_putc(b, s[1]);
			s += 2;
		} else if (!quote && strchr(" \t\n", *s)) {
			ab_end_word(b);
			s++;
		} else {
			ab_putc(b, *s++);
		}
	}
	if (quote)
		ab_fail(b, "unterminated quote");
}

char **backend_exec_argv(const char *template, const struct backend_vars *vars, char *err,
                         size_t errlen)
{
	struct argv_build b = {.err = err, .errlen = errlen};

	split(&b, template, vars);
	ab_end_word(&b);
	if (!b.failed && b.av.n == 0)
		ab_fail(&b, "empty command");
	if (b.failed) {
		free(b.word);
		argvec_free(b.av.v);
		return NULL;
	}
	return b.av.v;
}

void backend_exec_argv_free(char **argv)
{
	argvec_free(argv);
}
