/*
 * The unavailable answer's text (unavail.c): pure, unit-tested in
 * tests/unit/test_unavail.c.
 */
#ifndef BECKON_PROXY_UNAVAIL_H
#define BECKON_PROXY_UNAVAIL_H

#include <stddef.h>

#include "conf.h"

/*
 * The HTTP answer U makes: its status line, Retry-After (whole seconds,
 * rounded up; none for 0), Content-Type, Content-Length, Cache-Control:
 * no-store, Connection: close, and the body. *LEN bytes, malloc'd; NULL on
 * ENOMEM.
 */
char *unavail_render(const struct conf_unavailable *u, size_t *len);

#endif
