/*
 * libFuzzer target for the front's HTTP framing (proxy/http.c): the input
 * is parsed as a request head and as a response head, and fed as a chunked
 * body whole and then in pieces, which must agree on where the body ends.
 * Crashes, reads out of bounds and undefined behaviour are what it looks for.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fed whole, and in pieces of SPLIT: the same bytes belong to the body. */
static void body(const char *buf, size_t size, size_t split)
{
	struct http_head h = {.body = HTTP_BODY_CHUNKED};
	struct http_body a, b;
	ssize_t whole, k, n = 0;

	http_body_init(&a, &h);
	http_body_init(&b, &h);
	whole = http_body_feed(&a, buf, size);
	for (size_t off = 0; off < size && !b.done; off += split) {
		size_t len = size - off < split ? size - off : split;

		if ((k = http_body_feed(&b, buf + off, len)) == -1) {
			n = -1;
			break;
		}
		n += k;
		if ((size_t)k < len)
			break;
	}
	if (whole != n || a.done != b.done)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of its own size: any read past the end is caught. */
	char *buf = malloc(size ? size : 1);
	struct http_head h;
	const char *prefixes[] = {"/", "/blog/", "/blog/archive/"};

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (http_parse_request(buf, size, 4096, &h) == HTTP_DONE) {
		if (h.len > size || h.path_off + h.path_len > size ||
		    h.target_off + h.target_len > size)
			abort();
		http_route(buf + h.path_off, h.path_len, prefixes, 3);
	}
	if (http_parse_response(buf, size, 4096, "GET", &h) == HTTP_DONE && h.len > size)
		abort();
	body(buf, size, 1);
	body(buf, size, 7);
	free(buf);
	return 0;
}
