/*
 * http.c: HTTP/1.1 for GET and HEAD with keep-alive and pipelining.  A
 * request head must fit the connection's receive buffer (TCP_RXBUF); one
 * that does not, or that does not parse, gets 400 and the connection is
 * closed.  Requests with a body are answered and the connection closed, so
 * we never have to find where the body ends.
 */
#include "http.h"
#include "net.h"
#include "tcp.h"

#define RESP_MAX 512 /* the largest response we build, head and body */

enum http_method { M_GET, M_HEAD, M_OTHER };

struct http_req {
	enum http_method method;
	const char *path;
	size_t path_len;
	bool http10, close, keep_alive, has_body;
};

struct http_buf {
	char d[RESP_MAX];
	size_t n;
};

static uint64_t http_count; /* GET / served: shows up in the body; HEAD does not count */

static void buf_str(struct http_buf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->n + n <= sizeof(b->d)) {
		memcpy(b->d + b->n, s, n);
		b->n += n;
	}
}

static void buf_num(struct http_buf *b, uint64_t v)
{
	if (b->n + 20 <= sizeof(b->d))
		b->n += lib_utoa(b->d + b->n, v);
}

/* ---- parsing ---- */

/* RFC 9110 tchar: what method and header names are made of. */
static bool http_tchar(char c)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	size_t i;

	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	for (i = 0; i < sizeof(extra) - 1; i++)
		if (c == extra[i])
			return true;
	return false;
}

/* The end of the request head (past its blank line), 0 if not there yet. */
static size_t http_head_end(const char *d, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (d[i] != '\n')
			continue;
		if (d[i + 1] == '\n')
			return i + 2;
		if (d[i + 1] == '\r' && i + 2 < len && d[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Bytes no request head may hold: a binary stream is refused at once. */
static bool http_junk(const char *d, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)d[i];
		if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c >= 0x7f)
			return true;
	}
	return false;
}

/* One line of the head: [*p, eol) without its CR; advances *p past the LF. */
static size_t http_line(const char **p, const char *end, const char **line)
{
	const char *s = *p, *e = s;

	while (e < end && *e != '\n')
		e++;
	*line = s;
	*p = e < end ? e + 1 : e;
	if (e > s && e[-1] == '\r')
		e--;
	return (size_t)(e - s);
}

static int http_request_line(struct http_req *r, const char *l, size_t n)
{
	const char *sp1, *sp2, *end = l + n;

	for (sp1 = l; sp1 < end && *sp1 != ' '; sp1++)
		if (!http_tchar(*sp1))
			return -1;
	if (sp1 == l || sp1 == end)
		return -1;
	for (sp2 = sp1 + 1; sp2 < end && *sp2 != ' '; sp2++)
		if ((unsigned char)*sp2 <= 0x20)
			return -1;
	if (sp2 == sp1 + 1 || end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7))
		return -1;
	if (sp2[8] != '0' && sp2[8] != '1')
		return -1;
	r->http10 = sp2[8] == '0';
	r->method = (sp1 - l == 3 && !memcmp(l, "GET", 3))    ? M_GET
		    : (sp1 - l == 4 && !memcmp(l, "HEAD", 4)) ? M_HEAD
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

static int http_header(struct http_req *r, const char *l, size_t n)
{
	const char *c = l, *v, *end = l + n;

	while (c < end && *c != ':') {
		if (!http_tchar(*c))
			return -1; /* includes obsolete line folding and "name :" */
		c++;
	}
	if (c == l || c == end)
		return -1;
	for (v = c + 1; v < end && (*v == ' ' || *v == '\t'); v++)
		;
	if ((size_t)(c - l) == 10 && lib_strncaseeq(l, "connection", 10)) {
		r->close |= http_has_token(v, (size_t)(end - v), "close");
		r->keep_alive |= http_has_token(v, (size_t)(end - v), "keep-alive");
	} else if ((size_t)(c - l) == 14 && lib_strncaseeq(l, "content-length", 14)) {
		int64_t len = lib_atou(&v, end);
		if (len < 0 || v != end)
			return -1;
		r->has_body |= len > 0;
	} else if ((size_t)(c - l) == 17 && lib_strncaseeq(l, "transfer-encoding", 17)) {
		r->has_body = true;
	}
	return 0;
}

static int http_parse(struct http_req *r, const char *d, size_t len)
{
	const char *p = d, *end = d + len, *l;
	size_t n;

	memset(r, 0, sizeof(*r));
	n = http_line(&p, end, &l);
	if (http_request_line(r, l, n) < 0)
		return -1;
	while ((n = http_line(&p, end, &l)) > 0)
		if (http_header(r, l, n) < 0)
			return -1;
	return 0;
}

/* ---- answering ---- */

static bool http_path_is(const struct http_req *r, const char *s)
{
	size_t n = r->path_len, i;

	for (i = 0; i < n; i++)
		if (r->path[i] == '?' || r->path[i] == '#')
			n = i;
	return n == strlen(s) && !memcmp(r->path, s, n);
}

static void http_respond(struct tcp_pcb *pcb, int code, const char *body, size_t blen,
			 bool head_only, bool close, bool http10)
{
	static const char *reason[] = {[0] = "OK", [1] = "Bad Request", [2] = "Not Found",
				       [3] = "Method Not Allowed"};
	struct http_buf b;
	int ri = code == 200 ? 0 : code == 400 ? 1 : code == 404 ? 2 : 3;

	b.n = 0;
	buf_str(&b, "HTTP/1.1 ");
	buf_num(&b, (uint64_t)code);
	buf_str(&b, " ");
	buf_str(&b, reason[ri]);
	buf_str(&b, "\r\nServer: beckon-hello\r\nContent-Type: text/plain\r\nContent-Length: ");
	buf_num(&b, blen);
	if (code == 405)
		buf_str(&b, "\r\nAllow: GET, HEAD");
	if (close)
		buf_str(&b, "\r\nConnection: close");
	else if (http10)
		buf_str(&b, "\r\nConnection: keep-alive");
	buf_str(&b, "\r\n\r\n");
	if (!head_only && b.n + blen <= sizeof(b.d)) {
		memcpy(b.d + b.n, body, blen);
		b.n += blen;
	}
	tcp_write(pcb, b.d, b.n);
	if (close)
		tcp_close(pcb);
}

/* The body of GET /: "hello from www (boot 812 us, request 3)". */
static size_t http_hello(char *out, size_t cap, uint64_t count)
{
	struct http_buf b;

	b.n = 0;
	buf_str(&b, "hello from ");
	buf_str(&b, net_cfg.name);
	buf_str(&b, " (boot ");
	buf_num(&b, net_cfg.ready_us);
	buf_str(&b, " us, request ");
	buf_num(&b, count);
	buf_str(&b, ")\n");
	b.n = MIN(b.n, cap);
	memcpy(out, b.d, b.n);
	return b.n;
}

static void http_serve(struct tcp_pcb *pcb, const struct http_req *r)
{
	bool close = r->close || r->has_body || (r->http10 && !r->keep_alive);
	bool head = r->method == M_HEAD;
	char body[128];
	size_t n;

	if (r->method == M_OTHER) {
		http_respond(pcb, 405, "method not allowed\n", 19, false, true, r->http10);
	} else if (http_path_is(r, "/")) {
		if (!head)
			http_count++;
		n = http_hello(body, sizeof(body), head ? http_count + 1 : http_count);
		http_respond(pcb, 200, body, n, head, close, r->http10);
	} else if (http_path_is(r, "/healthz")) {
		http_respond(pcb, 200, "ok\n", 3, head, close, r->http10);
	} else if (http_path_is(r, "/count")) {
		n = lib_utoa(body, http_count);
		body[n++] = '\n';
		http_respond(pcb, 200, body, n, head, close, r->http10);
	} else {
		http_respond(pcb, 404, "not found\n", 10, head, close, r->http10);
	}
}

static void http_bad(struct tcp_pcb *pcb)
{
	http_respond(pcb, 400, "bad request\n", 12, false, true, false);
}

void http_event(struct tcp_pcb *pcb)
{
	struct http_req r;
	const char *d;
	size_t len, end;

	while (!tcp_closing(pcb)) {
		d = (const char *)tcp_rx_data(pcb, &len);
		while (len && (d[0] == '\r' || d[0] == '\n')) {
			tcp_rx_consume(pcb, 1); /* RFC 9112 2.2: skip blank lines before a request */
			d = (const char *)tcp_rx_data(pcb, &len);
		}
		if (!len) {
			if (tcp_peer_closed(pcb))
				tcp_close(pcb);
			return;
		}
		if (tcp_tx_room(pcb) < RESP_MAX)
			return; /* wait for the peer to take what we sent */
		end = http_head_end(d, len);
		if (http_junk(d, end ? end : len)) {
			http_bad(pcb);
			return;
		}
		if (!end) {
			if (len >= TCP_RXBUF || tcp_peer_closed(pcb))
				http_bad(pcb); /* too big, or cut short */
			return;
		}
		if (http_parse(&r, d, end) < 0) {
			http_bad(pcb);
			return;
		}
		http_serve(pcb, &r);
		tcp_rx_consume(pcb, end);
	}
}
