/* The argv vector the exec and QEMU backends build: see argvec.h. */
#include <stdlib.h>

#include "argvec.h"

void argvec_add(struct argvec *a, char *s)
{
	char **n;

	if (s == NULL) {
		a->failed = true;
		return;
	}
	if (a->n + 2 > a->cap) {
		a->cap = a->cap ? a->cap * 2 : 32;
		if ((n = realloc(a->v, a->cap * sizeof(*n))) == NULL) {
			free(s);
			a->failed = true;
			return;
		}
		a->v = n;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

void argvec_free(char **v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; v[i] != NULL; i++)
		free(v[i]);
	free(v);
}
