/* The unavailable answer's text (proxy/unavail.c): what goes out instead of a reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "unavail.h"

static void test_default_answer(void **state)
{
	struct conf_unavailable u = {.set = true,
	                             .status = 503,
	                             .retry_after_ms = 5000,
	                             .body = "try again\n",
	                             .content_type = "text/plain; charset=utf-8"};
	size_t len = 0;
	char *out = unavail_render(&u, &len);

	(void)state;
	assert_non_null(out);
	assert_string_equal(out, "HTTP/1.1 503 Service Unavailable\r\n"
	                         "Retry-After: 5\r\n"
	                         "Content-Type: text/plain; charset=utf-8\r\n"
	                         "Content-Length: 10\r\n"
	                         "Cache-Control: no-store\r\n"
	                         "Connection: close\r\n"
	                         "\r\n"
	                         "try again\n");
	assert_int_equal(len, strlen(out));
	free(out);
}

static void test_retry_rounds_up_or_is_left_out(void **state)
{
	struct conf_unavailable u = {.set = true, .status = 429, .retry_after_ms = 1500};
	size_t len = 0;
	char *out;

	(void)state;
	out = unavail_render(&u, &len);
	assert_non_null(strstr(out, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 2\r\n"));
	/* No body, no type given: an empty body, text/plain. */
	assert_non_null(strstr(out, "Content-Type: text/plain\r\nContent-Length: 0\r\n"));
	assert_int_equal(out[len - 1], '\n');
	free(out);
	u.retry_after_ms = 0;
	u.status = 599;
	out = unavail_render(&u, &len);
	assert_null(strstr(out, "Retry-After"));
	assert_non_null(strstr(out, "HTTP/1.1 599 Server Error\r\n"));
	free(out);
	u.status = 451;
	out = unavail_render(&u, &len);
	assert_non_null(strstr(out, "HTTP/1.1 451 Client Error\r\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_default_answer),
	    cmocka_unit_test(test_retry_rounds_up_or_is_left_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
