/* http_int.h: the parsed request, shared by http.c and http_parse.c. */
#ifndef GUEST_HTTP_INT_H
#define GUEST_HTTP_INT_H

#include "lib.h"

enum http_method { M_GET, M_HEAD, M_OTHER };

struct http_req {
	enum http_method method;
	const char *path;
	size_t path_len;
	bool http10, close, keep_alive, has_body;
};

/*
 * Parse the request head at the start of d[0..len): its length (through the
 * blank line), 0 if it has not all arrived, -1 if it is malformed.  Lines
 * already seen are not judged twice only in cost: a head that trickles in is
 * parsed again from the top (http.c skips that until a new line arrives).
 */
long http_parse(struct http_req *r, const char *d, size_t len);
/* Could d[0..len) be the start of a request line?  False for junk, at once. */
bool http_plausible(const char *d, size_t len);

#endif
