/*
 * proxy/http.c: request and response heads, body framing and the
 * longest-prefix route, including malformed and oversized input. Pure: no
 * socket, no event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http.h"

#define MAX 16384

static enum http_rc req(const char *s, struct http_head *h)
{
	return http_parse_request(s, strlen(s), MAX, h);
}

static void path_is(const char *s, const struct http_head *h, const char *want)
{
	assert_int_equal(h->path_len, strlen(want));
	assert_memory_equal(s + h->path_off, want, h->path_len);
}

static void test_simple_get(void **state)
{
	const char *s = "GET /blog/post?id=3 HTTP/1.1\r\nHost: site.svc.test\r\n"
	                "User-Agent: t\r\n\r\nNEXT";
	struct http_head h;

	(void)state;
	assert_int_equal(req(s, &h), HTTP_DONE);
	assert_int_equal(h.len, strlen(s) - 4);
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.host, "site.svc.test");
	assert_int_equal(h.minor, 1);
	path_is(s, &h, "/blog/post");
	assert_int_equal(h.target_len, strlen("/blog/post?id=3"));
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_false(h.close);
	assert_false(h.upgrade);
}

static void test_incomplete_is_more(void **state)
{
	const char *full = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
	struct http_head h;
	char buf[64];

	(void)state;
	assert_int_equal(http_parse_request(NULL, 0, MAX, &h), HTTP_MORE);
	/* Every proper prefix asks for more; the whole is done. */
	for (size_t i = 0; i < strlen(full); i++) {
		memcpy(buf, full, i);
		assert_int_equal(http_parse_request(buf, i, MAX, &h), HTTP_MORE);
	}
	assert_int_equal(req(full, &h), HTTP_DONE);
}

static void test_bare_lf_and_leading_empty_lines(void **state)
{
	const char *s = "\r\nGET /x HTTP/1.0\nHost: a\n\n";
	struct http_head h;

	(void)state;
	assert_int_equal(req(s, &h), HTTP_DONE);
	assert_int_equal(h.len, strlen(s));
	path_is(s, &h, "/x");
	assert_int_equal(h.minor, 0);
	assert_true(h.close); /* 1.0 without keep-alive */
}

static void test_forms_of_target(void **state)
{
	struct http_head h;
	const char *abs = "GET http://site.svc.test/blog/a?q HTTP/1.1\r\nHost: x\r\n\r\n";
	const char *bare = "GET http://site.svc.test HTTP/1.1\r\nHost: x\r\n\r\n";

	(void)state;
	assert_int_equal(req(abs, &h), HTTP_DONE);
	path_is(abs, &h, "/blog/a");
	assert_int_equal(req(bare, &h), HTTP_DONE);
	assert_int_equal(h.path_len, 0); /* routed as "/" */
	assert_int_equal(req("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &h), HTTP_DONE);
	assert_int_equal(h.path_len, 0);
	assert_int_equal(req("GET * HTTP/1.1\r\nHost: x\r\n\r\n", &h), HTTP_BAD);
	assert_int_equal(req("GET blog HTTP/1.1\r\nHost: x\r\n\r\n", &h), HTTP_BAD);
	assert_int_equal(req("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", &h), HTTP_BAD);
}

static void test_framing_of_requests(void **state)
{
	struct http_head h;

	(void)state;
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n", &h),
	                 HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_LENGTH);
	assert_int_equal(h.length, 12);
	assert_int_equal(req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &h),
	                 HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_int_equal(
	    req("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", &h),
	    HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_CHUNKED);
	/* The same length twice is one length. */
	assert_int_equal(
	    req("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &h),
	    HTTP_DONE);
	assert_int_equal(
	    req("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n", &h),
	    HTTP_DONE);
	assert_true(h.close);
	assert_int_equal(
	    req("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	        &h),
	    HTTP_DONE);
	assert_true(h.upgrade);
}

/* Heads that two parties could frame differently, or that are not HTTP. */
static void test_malformed_requests(void **state)
{
	static const char *const bad[] = {
	    "GET / HTTP/1.1\r\n\r\n",                       /* 1.1 without Host */
	    "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
	    "GET / HTTP/2.0\r\nHost: a\r\n\r\n",            /* not 1.x */
	    "GET / HTTP/1.1 \r\nHost: a\r\n\r\n",           /* trailing space */
	    "GET  / HTTP/1.1\r\nHost: a\r\n\r\n",           /* two spaces */
	    "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n",        /* control in the target */
	    "G(T / HTTP/1.1\r\nHost: a\r\n\r\n",            /* not a token */
	    "GET / HTTP/1.1\r\nHost : a\r\n\r\n",           /* space before the colon */
	    "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", /* obs-fold */
	    "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", /* no colon */
	    "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", /* bare CR */
	    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
	    "\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", /* too many empty lines */
	    "\x16\x03\x01\x02\x00\x01",                              /* a TLS hello, incomplete */
	};
	struct http_head h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (http_parse_request(bad[i], strlen(bad[i]), MAX, &h) != HTTP_BAD)
			fail_msg("accepted bad[%zu]: %s", i, bad[i]);
	}
}

static void test_too_big(void **state)
{
	size_t n = 65536;
	char *s = malloc(n + 64);
	struct http_head h;

	(void)state;
	assert_non_null(s);
	/* A 64 KiB request line: too big long before its end. */
	memcpy(s, "GET /", 5);
	memset(s + 5, 'a', n);
	assert_int_equal(http_parse_request(s, n, MAX, &h), HTTP_TOO_BIG);
	assert_int_equal(http_parse_request(s, MAX - 1, MAX, &h), HTTP_MORE);
	/* Complete, but longer than the limit. */
	strcpy(s + 5 + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(http_parse_request(s, strlen(s), MAX, &h), HTTP_TOO_BIG);
	/* Many small fields past the limit. */
	strcpy(s, "GET / HTTP/1.1\r\n");
	for (size_t i = strlen(s); i + 8 < n; i += 8)
		memcpy(s + i, "X: 123\r\n", 9);
	assert_int_equal(http_parse_request(s, strlen(s), MAX, &h), HTTP_TOO_BIG);
	free(s);
}

static enum http_rc resp(const char *s, const char *method, struct http_head *h)
{
	return http_parse_response(s, strlen(s), MAX, method, h);
}

static void test_responses(void **state)
{
	struct http_head h;

	(void)state;
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "GET", &h),
	                 HTTP_DONE);
	assert_int_equal(h.status, 200);
	assert_int_equal(h.body, HTTP_BODY_LENGTH);
	assert_int_equal(h.length, 5);
	assert_false(h.close);
	/* A HEAD's answer, 204 and 304 have no body, whatever they say. */
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "HEAD", &h),
	                 HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 304 Not Modified\r\n\r\n", "GET", &h), HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 100 Continue\r\n\r\n", "POST", &h), HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_int_equal(h.status, 100);
	assert_int_equal(resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n\r\n", "GET", &h),
	                 HTTP_DONE);
	assert_true(h.upgrade);
	/* No length: until the server closes. */
	assert_int_equal(resp("HTTP/1.0 200 OK\r\n\r\n", "GET", &h), HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_CLOSE);
	assert_true(h.close);
	assert_int_equal(resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", &h),
	                 HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_CHUNKED);
	assert_int_equal(resp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", "GET", &h), HTTP_DONE);
	assert_int_equal(h.body, HTTP_BODY_NONE);
	assert_int_equal(resp("HTTP/1.1 20 OK\r\n\r\n", "GET", &h), HTTP_BAD);
	assert_int_equal(resp("HTTP/1.1 200OK\r\n\r\n", "GET", &h), HTTP_BAD);
	assert_int_equal(resp("ICY 200 OK\r\n\r\n", "GET", &h), HTTP_BAD);
	assert_int_equal(
	    resp("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	         "GET", &h),
	    HTTP_BAD);
}

/* Feed S to a body of kind H one byte at a time, and all at once: the same end. */
static ssize_t feed_both(const struct http_head *h, const char *s, size_t len, bool *done)
{
	struct http_body a, b;
	ssize_t whole, k, bytes = 0;

	http_body_init(&a, h);
	http_body_init(&b, h);
	whole = http_body_feed(&a, s, len);
	for (size_t i = 0; i < len && !b.done; i++) {
		if ((k = http_body_feed(&b, s + i, 1)) == -1) {
			bytes = -1;
			break;
		}
		bytes += k;
		if (k == 0)
			break;
	}
	assert_int_equal(whole, bytes);
	assert_int_equal(a.done, b.done);
	*done = a.done;
	return whole;
}

static void test_chunked_bodies(void **state)
{
	struct http_head h = {.body = HTTP_BODY_CHUNKED};
	const char *good = "5\r\nhello\r\nA;ext=1\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\nGET /";
	const char *lf = "3\nabc\n0\n\nrest";
	bool done;

	(void)state;
	assert_int_equal(feed_both(&h, good, strlen(good), &done), strlen(good) - 5);
	assert_true(done);
	assert_int_equal(feed_both(&h, lf, strlen(lf), &done), strlen(lf) - 4);
	assert_true(done);
	/* Not finished yet. */
	assert_int_equal(feed_both(&h, "5\r\nhel", 6, &done), 6);
	assert_false(done);
	/* Malformed: no size, a bad digit, data not followed by CRLF, a huge size. */
	assert_int_equal(feed_both(&h, "\r\n", 2, &done), -1);
	assert_int_equal(feed_both(&h, "g\r\n", 3, &done), -1);
	assert_int_equal(feed_both(&h, "3\r\nabcX\r\n", 9, &done), -1);
	assert_int_equal(feed_both(&h, "10000000000000000\r\n", 19, &done), -1);
}

static void test_length_bodies(void **state)
{
	struct http_head h = {.body = HTTP_BODY_LENGTH, .length = 10};
	struct http_body b;

	(void)state;
	http_body_init(&b, &h);
	assert_int_equal(http_body_feed(&b, "0123", 4), 4);
	assert_false(b.done);
	assert_int_equal(http_body_feed(&b, "456789GET", 9), 6);
	assert_true(b.done);
	assert_int_equal(http_body_feed(&b, "GET", 3), 0);
	h.body = HTTP_BODY_NONE;
	http_body_init(&b, &h);
	assert_true(b.done);
	h.body = HTTP_BODY_CLOSE;
	http_body_init(&b, &h);
	assert_int_equal(http_body_feed(&b, "anything", 8), 8);
	assert_false(b.done);
}

static void test_longest_prefix(void **state)
{
	const char *const p[] = {"/", "/blog/", "/blog/archive/", "/api"};

	(void)state;
	assert_int_equal(http_route("/", 1, p, 4), 0);
	assert_int_equal(http_route("/index.html", 11, p, 4), 0);
	assert_int_equal(http_route("/blog", 5, p, 4), 0); /* "/blog/" wants the slash */
	assert_int_equal(http_route("/blog/", 6, p, 4), 1);
	assert_int_equal(http_route("/blog/x", 7, p, 4), 1);
	assert_int_equal(http_route("/blog/archive/2024", 18, p, 4), 2);
	assert_int_equal(http_route("/apis", 5, p, 4), 3); /* a prefix, not a segment */
	assert_int_equal(http_route("", 0, p, 4), 0);      /* "*": as "/" */
	/* Order does not matter; no "/" route: no match. */
	assert_int_equal(http_route("/blog/archive/x", 15, p + 1, 3), 1);
	assert_int_equal(http_route("/other", 6, p + 1, 3), -1);
	assert_int_equal(http_route("/x", 2, p, 0), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_get),
	    cmocka_unit_test(test_incomplete_is_more),
	    cmocka_unit_test(test_bare_lf_and_leading_empty_lines),
	    cmocka_unit_test(test_forms_of_target),
	    cmocka_unit_test(test_framing_of_requests),
	    cmocka_unit_test(test_malformed_requests),
	    cmocka_unit_test(test_too_big),
	    cmocka_unit_test(test_responses),
	    cmocka_unit_test(test_chunked_bodies),
	    cmocka_unit_test(test_length_bodies),
	    cmocka_unit_test(test_longest_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
