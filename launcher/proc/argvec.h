/*
 * A growing NULL-terminated vector of strings: the argv that the exec and
 * QEMU backends build (launcher-internal).
 */
#ifndef BECKON_LAUNCHER_ARGVEC_H
#define BECKON_LAUNCHER_ARGVEC_H

#include <stdbool.h>
#include <stddef.h>

struct argvec {
	char **v; /* NULL-terminated; NULL while empty */
	size_t n, cap;
	bool failed; /* out of memory: a word is missing, v is only fit to free */
};

/*
 * Append S, which the vector owns from then on (freed at once when it
 * cannot be added). S NULL, an allocation that failed, marks it failed.
 */
void argvec_add(struct argvec *a, char *s);

/* Free V, as an argvec built it, and its strings; NULL is fine. */
void argvec_free(char **v);

#endif
