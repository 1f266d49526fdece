/*
 * HTTP/1.x framing for the proxy's routing fronts: request and response
 * heads, and where a message's body ends (Content-Length, chunked). Pure:
 * no I/O, no allocation; the caller hands in the bytes it has. Strict where
 * a lenient reading would let two parties disagree on where a message ends
 * (request smuggling): both Content-Length and Transfer-Encoding, two
 * different lengths, folded lines and spaces before a colon are errors.
 */
#ifndef BECKON_PROXY_HTTP_H
#define BECKON_PROXY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What a parse says. */
enum http_rc {
	HTTP_MORE = 0,     /* the head is not complete yet: read more */
	HTTP_DONE = 1,     /* parsed */
	HTTP_BAD = -1,     /* malformed: answer 400 (or 502 for a response) */
	HTTP_TOO_BIG = -2, /* no end within the limit: answer 431 */
};

/* How a message's body is delimited. */
enum http_body_kind {
	HTTP_BODY_NONE,    /* no body */
	HTTP_BODY_LENGTH,  /* Content-Length bytes */
	HTTP_BODY_CHUNKED, /* chunked transfer coding */
	HTTP_BODY_CLOSE,   /* until the sender closes (responses only) */
};

#define HTTP_METHOD_MAX 16
#define HTTP_HOST_MAX 256

/* A parsed head. Offsets are into the buffer that was parsed. */
struct http_head {
	size_t len;                    /* of the head, its empty line included */
	int minor;                     /* HTTP/1.MINOR: 0 or 1 */
	char method[HTTP_METHOD_MAX];  /* requests */
	size_t target_off, target_len; /* requests: the request-target as sent */
	size_t path_off, path_len;     /* requests: its path ("*" for OPTIONS *) */
	char host[HTTP_HOST_MAX];      /* requests: the Host field, "" when none */
	int status;                    /* responses: 100..599 */
	enum http_body_kind body;
	uint64_t length; /* HTTP_BODY_LENGTH */
	bool close;      /* the sender will close after this message */
	bool upgrade;    /* requests: Upgrade asked; responses: 101 */
};

/*
 * Parse the request head at the start of BUF (LEN bytes, of which at most
 * MAX may be the head). HTTP_DONE fills H.
 */
enum http_rc http_parse_request(const char *buf, size_t len, size_t max, struct http_head *h);

/*
 * Parse a response head, the answer to a request for METHOD (a HEAD's
 * answer has no body).
 */
enum http_rc http_parse_response(const char *buf, size_t len, size_t max, const char *method,
                                 struct http_head *h);

/* Where a body ends, fed the bytes as they come. */
struct http_body {
	enum http_body_kind kind;
	uint64_t left; /* bytes left of the body or of this chunk's data */
	int state;     /* chunked: where in the coding (http.c) */
	unsigned n;    /* chunked: characters in the current size or trailer line */
	bool done;
};

/* Start counting the body H announces. */
void http_body_init(struct http_body *b, const struct http_head *h);

/*
 * Feed LEN bytes: how many of them belong to the body (the rest is the next
 * message), -1 when a chunked body is malformed. b->done once it ended.
 */
ssize_t http_body_feed(struct http_body *b, const char *buf, size_t len);

/*
 * The route for PATH (LEN bytes) among N prefixes: the index of the
 * longest prefix PATH begins with, -1 when none does.
 */
int http_route(const char *path, size_t len, const char *const *prefixes, size_t n);

#endif
