/*
 * HTTP/1.x heads and body framing (RFC 9112), for the routing front: what a
 * request asks for, and where each request and response ends, so that the
 * next request on a keep-alive connection can be routed on its own.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http.h"

/* tchar of RFC 9110: the characters of a method or a field name. */
static bool is_tchar(unsigned char ch)
{
	return isalnum(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A field value's characters: visible, obs-text, space and tab. */
static bool is_vchar(unsigned char ch)
{
	return ch == '\t' || (ch >= ' ' && ch != 0x7f);
}

/*
 * The line of BUF (N bytes) that starts at *POS: *LINE, *LLEN without its
 * CR LF (a bare LF ends a line too), *POS past it. -1 when its LF has not
 * come yet.
 */
static int next_line(const char *buf, size_t n, size_t *pos, const char **line, size_t *llen)
{
	const char *lf = *pos < n ? memchr(buf + *pos, '\n', n - *pos) : NULL;

	if (lf == NULL)
		return -1;
	*line = buf + *pos;
	*llen = (size_t)(lf - *line);
	if (*llen > 0 && (*line)[*llen - 1] == '\r')
		(*llen)--;
	*pos = (size_t)(lf - buf) + 1;
	return 0;
}

static bool token_eq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Facts of the fields that decide framing, gathered before they are judged. */
struct fields {
	bool has_length, has_te, te_chunked, keep_alive, conn_close, conn_upgrade, has_upgrade;
	bool has_host;
	uint64_t length;
};

static void trim(const char **v, size_t *len)
{
	while (*len > 0 && (**v == ' ' || **v == '\t'))
		(*v)++, (*len)--;
	while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
		(*len)--;
}

/* Call FN for each comma-separated element of V, trimmed, empty ones skipped. */
static int each_token(const char *v, size_t len, int (*fn)(const char *, size_t, struct fields *),
                      struct fields *f)
{
	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t tl = comma != NULL ? (size_t)(comma - v) : len;
		const char *t = v;
		size_t l = tl;

		trim(&t, &l);
		if (l > 0 && fn(t, l, f) == -1)
			return -1;
		v += tl;
		len -= tl;
		if (comma != NULL)
			v++, len--;
	}
	return 0;
}

static int conn_token(const char *t, size_t l, struct fields *f)
{
	if (token_eq(t, l, "close"))
		f->conn_close = true;
	else if (token_eq(t, l, "keep-alive"))
		f->keep_alive = true;
	else if (token_eq(t, l, "upgrade"))
		f->conn_upgrade = true;
	return 0;
}

/* Only the last coding matters: chunked must be it, and only once. */
static int te_token(const char *t, size_t l, struct fields *f)
{
	if (f->te_chunked)
		return -1; /* a coding after chunked */
	f->te_chunked = token_eq(t, l, "chunked");
	return 0;
}

/* 1*DIGIT, and the same value each time it is given. */
static int content_length(const char *v, size_t len, struct fields *f)
{
	uint64_t n = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]) || n > (UINT64_MAX >> 4) / 10)
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (f->has_length && f->length != n)
		return -1;
	f->has_length = true;
	f->length = n;
	return 0;
}

static int host_field(const char *v, size_t len, struct fields *f, struct http_head *h)
{
	if (f->has_host || len >= sizeof(h->host))
		return -1;
	f->has_host = true;
	memcpy(h->host, v, len);
	h->host[len] = '\0';
	return 0;
}

/* One field line: name ":" OWS value OWS. */
static int field_line(const char *line, size_t llen, struct fields *f, struct http_head *h)
{
	const char *colon = memchr(line, ':', llen), *v;
	size_t nlen, vlen;

	if (colon == NULL || colon == line)
		return -1;
	nlen = (size_t)(colon - line);
	for (size_t i = 0; i < nlen; i++) /* a space before the colon, a folded line */
		if (!is_tchar((unsigned char)line[i]))
			return -1;
	v = colon + 1;
	vlen = llen - nlen - 1;
	for (size_t i = 0; i < vlen; i++)
		if (!is_vchar((unsigned char)v[i]))
			return -1;
	trim(&v, &vlen);
	if (token_eq(line, nlen, "content-length"))
		return content_length(v, vlen, f);
	if (token_eq(line, nlen, "transfer-encoding")) {
		f->has_te = true;
		return each_token(v, vlen, te_token, f);
	}
	if (token_eq(line, nlen, "connection"))
		return each_token(v, vlen, conn_token, f);
	if (token_eq(line, nlen, "upgrade"))
		f->has_upgrade = true;
	if (token_eq(line, nlen, "host"))
		return host_field(v, vlen, f, h);
	return 0;
}

/* "HTTP/1.0" or "HTTP/1.1". */
static int version(const char *s, size_t len, struct http_head *h)
{
	if (len != 8 || memcmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1'))
		return -1;
	h->minor = s[7] - '0';
	return 0;
}

/* The path of an absolute-form target: after "scheme://authority". */
static int absolute_path(const char *t, size_t len, struct http_head *h)
{
	const char *p = memchr(t, ':', len), *slash;

	if (p == NULL || (size_t)(p - t) + 3 > len || memcmp(p, "://", 3) != 0)
		return -1;
	p += 3;
	slash = memchr(p, '/', len - (size_t)(p - t));
	if (slash != NULL) {
		h->path_off += (size_t)(slash - t);
		h->path_len = len - (size_t)(slash - t);
	} else {
		h->path_len = 0; /* routed as "/" */
	}
	return 0;
}

/* The request-target's path: origin form, absolute form or "*". */
static int target_path(const char *buf, struct http_head *h)
{
	const char *t = buf + h->target_off, *end;

	h->path_off = h->target_off;
	h->path_len = h->target_len;
	if (t[0] == '*' && h->target_len == 1 && strcmp(h->method, "OPTIONS") == 0)
		h->path_len = 0;
	else if (t[0] != '/' && absolute_path(t, h->target_len, h) == -1)
		return -1;
	/* The query is no part of the path. */
	if ((end = memchr(buf + h->path_off, '?', h->path_len)) != NULL)
		h->path_len = (size_t)(end - (buf + h->path_off));
	return 0;
}

/* method SP request-target SP HTTP-version */
static int request_line(const char *buf, const char *line, size_t llen, struct http_head *h)
{
	const char *sp1 = memchr(line, ' ', llen), *sp2;
	size_t mlen;

	if (sp1 == NULL || sp1 == line || (mlen = (size_t)(sp1 - line)) >= sizeof(h->method))
		return -1;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)line[i]))
			return -1;
	memcpy(h->method, line, mlen);
	h->method[mlen] = '\0';
	sp2 = memchr(sp1 + 1, ' ', llen - mlen - 1);
	if (sp2 == NULL || sp2 == sp1 + 1)
		return -1;
	for (const char *p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
			return -1;
	h->target_off = (size_t)(sp1 + 1 - buf);
	h->target_len = (size_t)(sp2 - sp1 - 1);
	if (strcmp(h->method, "CONNECT") == 0) /* a tunnel to anywhere: not ours to give */
		return -1;
	if (version(sp2 + 1, llen - (size_t)(sp2 + 1 - line), h) == -1)
		return -1;
	return target_path(buf, h);
}

/* HTTP-version SP 3DIGIT [SP reason] */
static int status_line(const char *line, size_t llen, struct http_head *h)
{
	if (llen < 12 || version(line, 8, h) == -1 || line[8] != ' ')
		return -1;
	for (int i = 9; i < 12; i++)
		if (!isdigit((unsigned char)line[i]))
			return -1;
	h->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	if (h->status < 100 || (llen > 12 && line[12] != ' '))
		return -1;
	for (size_t i = 12; i < llen; i++)
		if (!is_vchar((unsigned char)line[i]))
			return -1;
	return 0;
}

static int request_framing(const struct fields *f, struct http_head *h)
{
	if ((h->minor == 1 && !f->has_host) || (f->has_te && f->has_length))
		return -1;
	if (f->has_te && !f->te_chunked)
		return -1; /* no way to tell where it ends */
	if (f->has_te)
		h->body = HTTP_BODY_CHUNKED;
	else if (f->has_length && f->length > 0)
		h->body = HTTP_BODY_LENGTH;
	h->length = f->length;
	h->close = f->conn_close || (h->minor == 0 && !f->keep_alive);
	h->upgrade = f->has_upgrade && f->conn_upgrade;
	return 0;
}

static int response_framing(const struct fields *f, const char *method, struct http_head *h)
{
	bool bodyless =
	    strcmp(method, "HEAD") == 0 || h->status < 200 || h->status == 204 || h->status == 304;

	if (f->has_te && f->has_length)
		return -1;
	if (bodyless)
		h->body = HTTP_BODY_NONE;
	else if (f->has_te)
		h->body = f->te_chunked ? HTTP_BODY_CHUNKED : HTTP_BODY_CLOSE;
	else if (f->has_length)
		h->body = f->length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
	else
		h->body = HTTP_BODY_CLOSE;
	h->length = f->length;
	h->upgrade = h->status == 101;
	h->close = f->conn_close || (h->minor == 0 && !f->keep_alive) || h->body == HTTP_BODY_CLOSE;
	return 0;
}

/* Not even a start line yet: what there is must still look like one. */
static enum http_rc partial(const char *buf, size_t n, size_t len, size_t max)
{
	for (size_t i = 0; i < n; i++)
		if (!is_vchar((unsigned char)buf[i]) && buf[i] != '\r')
			return HTTP_BAD;
	return len >= max ? HTTP_TOO_BIG : HTTP_MORE;
}

static enum http_rc parse_head(const char *buf, size_t len, size_t max, const char *method,
                               struct http_head *h)
{
	size_t n = len < max ? len : max, pos = 0, llen;
	struct fields f;
	const char *line;
	int rc;

	memset(h, 0, sizeof(*h));
	memset(&f, 0, sizeof(f));
	if (n == 0) /* an empty evbuffer pulls up to NULL */
		return max == 0 ? HTTP_TOO_BIG : HTTP_MORE;
	/* Empty lines before a request line are ignored (RFC 9112, 2.2). */
	do {
		if (next_line(buf, n, &pos, &line, &llen) == -1)
			return partial(buf + pos, n - pos, len, max);
	} while (llen == 0 && method == NULL && pos <= 8);
	rc = method == NULL ? request_line(buf, line, llen, h) : status_line(line, llen, h);
	if (rc == -1 || memchr(line, '\r', llen) != NULL)
		return HTTP_BAD;
	for (;;) {
		if (next_line(buf, n, &pos, &line, &llen) == -1)
			return len >= max ? HTTP_TOO_BIG : HTTP_MORE;
		if (llen == 0)
			break;
		if (field_line(line, llen, &f, h) == -1)
			return HTTP_BAD;
	}
	h->len = pos;
	rc = method == NULL ? request_framing(&f, h) : response_framing(&f, method, h);
	return rc == -1 ? HTTP_BAD : HTTP_DONE;
}

enum http_rc http_parse_request(const char *buf, size_t len, size_t max, struct http_head *h)
{
	return parse_head(buf, len, max, NULL, h);
}

enum http_rc http_parse_response(const char *buf, size_t len, size_t max, const char *method,
                                 struct http_head *h)
{
	return parse_head(buf, len, max, method != NULL ? method : "GET", h);
}

/* Where a chunked body is. */
enum {
	CH_SIZE,      /* the chunk size's hex digits */
	CH_EXT,       /* a chunk extension, up to the line's end */
	CH_SIZE_LF,   /* the LF after the size line's CR */
	CH_DATA,      /* b->left bytes of data */
	CH_DATA_CR,   /* the CR LF after the data */
	CH_DATA_LF,   /* its LF */
	CH_TRAILER,   /* the start of a trailer line, or the empty last line */
	CH_TRAILER_L, /* within a trailer line */
	CH_LAST_LF,   /* the LF of the empty last line */
};

/* Longest chunk-size digits, extension or trailer line taken. */
#define HTTP_CHUNK_LINE_MAX 4096

void http_body_init(struct http_body *b, const struct http_head *h)
{
	memset(b, 0, sizeof(*b));
	b->kind = h->body;
	b->left = h->length;
	b->state = CH_SIZE;
	b->done = h->body == HTTP_BODY_NONE;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = (char)tolower((unsigned char)ch);
	return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The size line has ended: data, or the trailer after the last chunk. */
static void size_done(struct http_body *b)
{
	b->state = b->left > 0 ? CH_DATA : CH_TRAILER;
	b->n = 0;
}

/* One byte of the chunked coding outside the data. -1 when it is wrong. */
static int chunk_byte(struct http_body *b, char ch)
{
	int v;

	switch (b->state) {
	case CH_SIZE:
		if ((v = hexval(ch)) >= 0 && b->n < 15) {
			b->left = b->left * 16 + (uint64_t)v;
			b->n++;
			return 0;
		}
		if (b->n == 0 || v >= 0)
			return -1;
		if (ch == ';' || ch == ' ' || ch == '\t')
			b->state = CH_EXT;
		else if (ch == '\r')
			b->state = CH_SIZE_LF;
		else if (ch == '\n')
			size_done(b);
		else
			return -1;
		return 0;
	case CH_EXT:
		if (ch == '\r')
			b->state = CH_SIZE_LF;
		else if (ch == '\n')
			size_done(b);
		else if (++b->n > HTTP_CHUNK_LINE_MAX)
			return -1;
		return 0;
	case CH_SIZE_LF:
		if (ch != '\n')
			return -1;
		size_done(b);
		return 0;
	case CH_DATA_CR:
		if (ch == '\n') {
			b->state = CH_SIZE;
			return 0;
		}
		b->state = CH_DATA_LF;
		return ch == '\r' ? 0 : -1;
	case CH_DATA_LF:
		b->state = CH_SIZE;
		return ch == '\n' ? 0 : -1;
	case CH_TRAILER:
		if (ch == '\n')
			b->done = true;
		else if (ch == '\r')
			b->state = CH_LAST_LF;
		else
			b->state = CH_TRAILER_L;
		return 0;
	case CH_TRAILER_L:
		if (ch == '\n')
			b->state = CH_TRAILER, b->n = 0;
		else if (++b->n > HTTP_CHUNK_LINE_MAX)
			return -1;
		return 0;
	case CH_LAST_LF:
		b->done = true;
		return ch == '\n' ? 0 : -1;
	}
	return -1;
}

static ssize_t chunked_feed(struct http_body *b, const char *buf, size_t len)
{
	size_t i = 0;

	while (i < len && !b->done) {
		if (b->state == CH_DATA) {
			size_t k = len - i < b->left ? len - i : (size_t)b->left;

			b->left -= k;
			i += k;
			if (b->left == 0)
				b->state = CH_DATA_CR;
			continue;
		}
		if (chunk_byte(b, buf[i++]) == -1)
			return -1;
	}
	return (ssize_t)i;
}

ssize_t http_body_feed(struct http_body *b, const char *buf, size_t len)
{
	size_t k;

	if (b->done)
		return 0;
	switch (b->kind) {
	case HTTP_BODY_NONE:
		return 0;
	case HTTP_BODY_LENGTH:
		k = len < b->left ? len : (size_t)b->left;
		b->left -= k;
		b->done = b->left == 0;
		return (ssize_t)k;
	case HTTP_BODY_CHUNKED:
		return chunked_feed(b, buf, len);
	case HTTP_BODY_CLOSE:
		return (ssize_t)len;
	}
	return -1;
}

int http_route(const char *path, size_t len, const char *const *prefixes, size_t n)
{
	size_t best_len = 0;
	int best = -1;

	if (len == 0) /* "*", or an absolute-form target with no path */
		path = "/", len = 1;
	for (size_t i = 0; i < n; i++) {
		size_t plen = strlen(prefixes[i]);

		if (plen <= len && memcmp(path, prefixes[i], plen) == 0 &&
		    (best == -1 || plen > best_len)) {
			best = (int)i;
			best_len = plen;
		}
	}
	return best;
}
