/*
 * http.c: HTTP/1.1 for GET and HEAD with keep-alive and pipelining.  A
 * request head must fit the connection's receive buffer (TCP_RXBUF); one
 * that does not, or that does not parse, gets 400 and the connection is
 * closed.  Requests with a body are answered and the connection closed, so
 * we never have to find where the body ends.
 */
#include "http.h"
#include "http_int.h"
#include "net.h"
#include "reseed.h"
#include "tcp.h"

#define RESP_MAX 512 /* the largest response we build, head and body */

struct http_buf {
	char d[RESP_MAX];
	size_t n;
};

static uint64_t http_count; /* GET / served: shows up in the body; HEAD does not count */

static void buf_put(struct http_buf *b, const char *s, size_t n)
{
	if (b->n + n <= sizeof(b->d)) {
		memcpy(b->d + b->n, s, n);
		b->n += n;
	}
}

/* A string literal, its length known at compile time (no strlen per byte). */
#define BUF_LIT(b, s) buf_put((b), (s), sizeof(s) - 1)

static void buf_num(struct http_buf *b, uint64_t v)
{
	if (b->n + 20 <= sizeof(b->d))
		b->n += lib_utoa(b->d + b->n, v);
}

static bool http_path_is(const struct http_req *r, const char *s, size_t n)
{
	const char *q = memchr(r->path, '?', r->path_len);
	size_t len = q ? (size_t)(q - r->path) : r->path_len;

	return len == n && !memcmp(r->path, s, n);
}

static void http_status(struct http_buf *b, int code)
{
	switch (code) {
	case 200:
		BUF_LIT(b, "HTTP/1.1 200 OK");
		break;
	case 400:
		BUF_LIT(b, "HTTP/1.1 400 Bad Request");
		break;
	case 404:
		BUF_LIT(b, "HTTP/1.1 404 Not Found");
		break;
	default:
		BUF_LIT(b, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD");
		break;
	}
}

static void http_respond(struct tcp_pcb *pcb, int code, const struct http_buf *body, bool head_only,
                         bool close, bool http10)
{
	struct http_buf b;

	b.n = 0;
	http_status(&b, code);
	BUF_LIT(&b, "\r\nServer: beckon-hello\r\nContent-Type: text/plain\r\nContent-Length: ");
	buf_num(&b, body->n);
	if (close)
		BUF_LIT(&b, "\r\nConnection: close");
	else if (http10)
		BUF_LIT(&b, "\r\nConnection: keep-alive");
	BUF_LIT(&b, "\r\n\r\n");
	if (!head_only)
		buf_put(&b, body->d, body->n);
	tcp_write(pcb, b.d, b.n);
	if (close)
		tcp_close(pcb);
}

/* The body of GET /: "hello from www (boot 812 us, request 3)". */
static void http_hello(struct http_buf *b, uint64_t count)
{
	BUF_LIT(b, "hello from ");
	buf_put(b, net_cfg.name, net_cfg.name_len);
	BUF_LIT(b, " (boot ");
	buf_num(b, net_cfg.ready_us);
	BUF_LIT(b, " us, request ");
	buf_num(b, count);
	BUF_LIT(b, ")\n");
}

/* The body of GET /id: what tells a restored clone from its siblings. */
static void http_id(struct http_buf *b)
{
	BUF_LIT(b, "boot_id=");
	buf_num(b, reseed_boot_id());
	BUF_LIT(b, " isn_offset=");
	buf_num(b, tcp_isn_offset());
	BUF_LIT(b, " reseeds=");
	buf_num(b, reseed_count());
	BUF_LIT(b, " wall_ms=");
	buf_num(b, reseed_wall_ms());
	BUF_LIT(b, "\n");
}

static void http_serve(struct tcp_pcb *pcb, const struct http_req *r)
{
	bool close = r->close || r->has_body || (r->http10 && !r->keep_alive);
	bool head = r->method == M_HEAD;
	struct http_buf body;
	int code = 200;

	body.n = 0;
	if (r->method == M_OTHER) {
		BUF_LIT(&body, "method not allowed\n");
		code = 405;
		close = true;
		head = false;
	} else if (http_path_is(r, "/", 1)) {
		if (!head)
			http_count++;
		http_hello(&body, head ? http_count + 1 : http_count);
	} else if (http_path_is(r, "/healthz", 8)) {
		BUF_LIT(&body, "ok\n");
	} else if (http_path_is(r, "/id", 3)) {
		http_id(&body);
	} else if (http_path_is(r, "/count", 6)) {
		buf_num(&body, http_count);
		BUF_LIT(&body, "\n");
	} else {
		BUF_LIT(&body, "not found\n");
		code = 404;
	}
	http_respond(pcb, code, &body, head, close, r->http10);
}

static void http_bad(struct tcp_pcb *pcb)
{
	struct http_buf body;

	body.n = 0;
	BUF_LIT(&body, "bad request\n");
	http_respond(pcb, 400, &body, false, true, false);
}

/* Drop blank lines before a request (RFC 9112 2.2); returns the data left. */
static const char *http_skip_blank(struct tcp_pcb *pcb, size_t *len)
{
	const char *d = (const char *)tcp_rx_data(pcb, len);
	size_t n = 0;

	while (n < *len && (d[n] == '\r' || d[n] == '\n'))
		n++;
	if (n) {
		tcp_rx_consume(pcb, n);
		d = (const char *)tcp_rx_data(pcb, len);
	}
	return d;
}

void http_event(struct tcp_pcb *pcb)
{
	uint16_t *seen = tcp_app(pcb); /* bytes of the pending head already found incomplete */
	struct http_req r;
	const char *d;
	size_t len;
	long end;

	while (!tcp_closing(pcb)) {
		d = http_skip_blank(pcb, &len);
		if (!len) {
			if (tcp_peer_closed(pcb))
				tcp_close(pcb);
			return;
		}
		if (tcp_tx_room(pcb) < RESP_MAX)
			return; /* wait for the peer to take what we sent */
		if (*seen > len)
			*seen = 0;
		/* Parse again only if a line ended in what came since (or it can't be HTTP). */
		end = (*seen && !memchr(d + *seen, '\n', len - *seen) && http_plausible(d, len))
		          ? 0
		          : http_parse(&r, d, len);
		if (end == 0 &&
		    (len >= TCP_RXBUF || tcp_peer_closed(pcb) || !http_plausible(d, len)))
			end = -1; /* too big, cut short, or junk */
		if (end < 0) {
			http_bad(pcb);
			return;
		}
		if (end == 0) {
			*seen = (uint16_t)len;
			return;
		}
		http_serve(pcb, &r);
		tcp_rx_consume(pcb, (size_t)end);
		*seen = 0;
	}
}
