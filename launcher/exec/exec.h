/* The exec backend: a service that is a process of our own (exec.command). */
#ifndef BECKON_LAUNCHER_EXEC_H
#define BECKON_LAUNCHER_EXEC_H

#include <stddef.h>

struct backend_ops;
struct backend_vars;

extern const struct backend_ops backend_exec_ops;

/*
 * Split TEMPLATE into a NULL-terminated argv, substituting {image} and the
 * rest from VARS (backend.h). Single and double quotes group words; a backslash escapes
 * the next character outside single quotes. A placeholder expands inside its
 * word as is, in quotes too, except an unquoted {cmdline}, which is split
 * into words (its own quotes honoured) like the rest of the command. Braces
 * that are no {lowercase} word ("${x}", "{ a; }") are plain text; an unknown
 * {word} is an error. NULL on an error, with the reason in ERR.
 */
char **backend_exec_argv(const char *template, const struct backend_vars *vars, char *err,
                         size_t errlen);
void backend_exec_argv_free(char **argv);

#endif
