/*
 * http_parse.c: a strict reader of HTTP/1.x request heads (RFC 9112).
 * Lines end in LF or CRLF; the request line is METHOD SP TARGET SP
 * HTTP/1.0|1.1; header names are tokens followed by a colon.  Character
 * classes come from a table and lines are found with memchr (one rep scasb):
 * under the emulating KVM here a per-byte loop costs microseconds a byte.
 */
#include "http_int.h"

#define C_TCHAR 1 /* RFC 9110 token characters */
#define C_VCHAR 2 /* visible ASCII: what a request target is made of */
#define C_VALUE 4 /* what a header value may hold: VCHAR, space, tab (not checked now) */

#define T (C_TCHAR | C_VCHAR | C_VALUE)
#define V (C_VCHAR | C_VALUE)

/* Every visible ASCII character, in order, once. */
static const uint8_t http_class[256] = {
    ['\t'] = C_VALUE,  [' '] = C_VALUE, ['!'] = T,         ['"'] = V,         ['#' ... '\''] = T,
    ['('] = V,         [')'] = V,       ['*'] = T,         ['+'] = T,         [','] = V,
    ['-'] = T,         ['.'] = T,       ['/'] = V,         ['0' ... '9'] = T, [':' ... '@'] = V,
    ['A' ... 'Z'] = T, ['['] = V,       ['\\'] = V,        [']'] = V,         ['^'] = T,
    ['_'] = T,         ['`'] = T,       ['a' ... 'z'] = T, ['{'] = V,         ['|'] = T,
    ['}'] = V,         ['~'] = T,
};

static bool http_is(char c, uint8_t cls)
{
	return http_class[(uint8_t)c] & cls;
}

/* Is every byte of [s, e) in the class? */
static bool http_all(const char *s, const char *e, uint8_t cls)
{
	for (; s < e; s++)
		if (!http_is(*s, cls))
			return false;
	return true;
}

/*
 * The next line of the head: [*p, its LF) less a CR, advancing *p past the
 * LF.  -1 if no LF has arrived yet.
 */
static long http_line(const char **p, const char *end, const char **line)
{
	const char *s = *p, *e = memchr(s, '\n', (size_t)(end - s));

	if (!e)
		return -1;
	*line = s;
	*p = e + 1;
	if (e > s && e[-1] == '\r')
		e--;
	return e - s;
}

bool http_plausible(const char *d, size_t len)
{
	const char *sp = memchr(d, ' ', len);

	/* A method: tokens up to the first space. */
	return len == 0 || http_all(d, sp ? sp : d + len, C_TCHAR);
}

/* "HTTP/1.0" or "HTTP/1.1" at p (8 bytes): one 8-byte compare, not a byte loop. */
static int http_version(const char *p)
{
	uint64_t v = load64(p);

	if ((v & 0x00ffffffffffffffULL) != (load64("HTTP/1.x") & 0x00ffffffffffffffULL))
		return -1;
	return p[7] == '0' ? 0 : p[7] == '1' ? 1 : -1;
}

static int http_request_line(struct http_req *r, const char *l, size_t n)
{
	const char *sp1, *sp2, *end = l + n;
	int minor;

	sp1 = memchr(l, ' ', n);
	if (!sp1 || sp1 == l || !http_all(l, sp1, C_TCHAR))
		return -1;
	sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
	if (!sp2 || sp2 == sp1 + 1 || !http_all(sp1 + 1, sp2, C_VCHAR))
		return -1;
	if (end - sp2 != 9 || (minor = http_version(sp2 + 1)) < 0)
		return -1;
	r->http10 = minor == 0;
	r->method = (sp1 - l == 3 && l[0] == 'G' && l[1] == 'E' && l[2] == 'T') ? M_GET
	            : (sp1 - l == 4 && load32(l) == load32("HEAD"))             ? M_HEAD
	                                                                        : M_OTHER;
	r->path = sp1 + 1;
	r->path_len = (size_t)(sp2 - r->path);
	if (r->path[0] != '/' && !(r->path_len == 1 && r->path[0] == '*'))
		return -1; /* absolute-form is for proxies */
	return 0;
}

/* Does the comma-separated header value list hold this token? */
static bool http_has_token(const char *v, size_t n, const char *tok)
{
	size_t i = 0, s, tl = strlen(tok);

	while (i < n) {
		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		if (i - s == tl && lib_strncaseeq(v + s, tok, tl))
			return true;
	}
	return false;
}

static bool http_name_is(const char *l, size_t n, const char *name, size_t len)
{
	return n == len && lib_strncaseeq(l, name, len);
}

static int http_header(struct http_req *r, const char *l, size_t n)
{
	const char *end = l + n, *c = memchr(l, ':', n), *v;
	size_t nl;
	int64_t len;

	/*
	 * No colon, an empty name, or a space before the colon (or folding):
	 * malformed.  Values are not checked byte by byte (that would be most
	 * of the parsing cost here): only three are read, and those strictly.
	 */
	if (!c || c == l || !http_all(l, c, C_TCHAR))
		return -1;
	nl = (size_t)(c - l);
	for (v = c + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (http_name_is(l, nl, "connection", 10)) {
		r->close |= http_has_token(v, (size_t)(end - v), "close");
		r->keep_alive |= http_has_token(v, (size_t)(end - v), "keep-alive");
	} else if (http_name_is(l, nl, "content-length", 14)) {
		len = lib_atou(&v, end);
		if (len < 0 || v != end)
			return -1;
		r->has_body |= len > 0;
	} else if (http_name_is(l, nl, "transfer-encoding", 17)) {
		r->has_body = true;
	}
	return 0;
}

long http_parse(struct http_req *r, const char *d, size_t len)
{
	const char *p = d, *end = d + len, *l;
	long n;

	memset(r, 0, sizeof(*r));
	if ((n = http_line(&p, end, &l)) < 0)
		return 0;
	if (http_request_line(r, l, (size_t)n) < 0)
		return -1;
	while ((n = http_line(&p, end, &l)) > 0)
		if (http_header(r, l, (size_t)n) < 0)
			return -1;
	return n < 0 ? 0 : p - d;
}
