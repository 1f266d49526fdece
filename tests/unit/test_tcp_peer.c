/*
 * Which DNS TCP connection gives way to a new one (resolver/tcp_peer.c),
 * on connections made by hand: no socket, no event loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "internal.h"

struct fixture {
	struct resolver r;
	struct tconn c[64];
	int n;
};

static struct sockaddr_storage addr(const char *a)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(a, ':')) {
		ss.ss_family = AF_INET6;
		inet_pton(AF_INET6, a, &((struct sockaddr_in6 *)&ss)->sin6_addr);
	} else {
		ss.ss_family = AF_INET;
		inet_pton(AF_INET, a, &((struct sockaddr_in *)&ss)->sin_addr);
		((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)(1000 + rand() % 1000));
	}
	return ss;
}

/* A connection from A, the most recently used; NWAIT answers pending. */
static struct tconn *conn(struct fixture *f, const char *a, unsigned nwait)
{
	struct sockaddr_storage ss = addr(a);
	struct tconn *c = &f->c[f->n++];

	c->peer = tcp_peer_get(&f->r, (struct sockaddr *)&ss);
	assert_non_null(c->peer);
	c->nwait = nwait;
	TAILQ_INSERT_TAIL(&f->r.conns, c, link);
	return c;
}

static void drop(struct fixture *f, struct tconn *c)
{
	(void)f;
	TAILQ_REMOVE(&f->r.conns, c, link);
	tcp_peer_put(c->peer);
	c->peer = NULL;
}

static unsigned count(struct fixture *f, const char *a)
{
	struct sockaddr_storage ss = addr(a);

	return tcp_peer_count(&f->r, (struct sockaddr *)&ss);
}

static struct tconn *victim(struct fixture *f, const char *a)
{
	struct sockaddr_storage ss;

	if (!a)
		return tcp_peer_victim(&f->r, NULL);
	ss = addr(a);
	return tcp_peer_victim(&f->r, (struct sockaddr *)&ss);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	TAILQ_INIT(&f->r.conns);
	f->r.peer_seed = 12345;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	struct tconn *c;

	while ((c = TAILQ_FIRST(&f->r.conns)))
		drop(f, c);
	for (int i = 0; i < TCP_PEER_BUCKETS; i++)
		assert_true(LIST_EMPTY(&f->r.peers[i])); /* every entry gone with its last */
	free(f);
	return 0;
}

/* Counts per address, the port ignored; IPv4 and IPv6 apart. */
static void test_counts(void **state)
{
	struct fixture *f = *state;
	struct tconn *a;

	a = conn(f, "192.0.2.1", 0);
	conn(f, "192.0.2.1", 0);
	conn(f, "192.0.2.2", 0);
	conn(f, "2001:db8::1", 0);
	assert_int_equal(count(f, "192.0.2.1"), 2);
	assert_int_equal(count(f, "192.0.2.2"), 1);
	assert_int_equal(count(f, "192.0.2.3"), 0);
	assert_int_equal(count(f, "2001:db8::1"), 1);
	assert_int_equal(count(f, "::ffff:192.0.2.1"), 0);
	drop(f, a);
	assert_int_equal(count(f, "192.0.2.1"), 1);
}

/* Of anyone's: the oldest idle of the address holding the most, not the oldest overall. */
static void test_victim_of_the_most(void **state)
{
	struct fixture *f = *state;
	struct tconn *legit, *first_of_many;

	legit = conn(f, "198.51.100.7", 0); /* the oldest of all */
	first_of_many = conn(f, "203.0.113.1", 0);
	conn(f, "203.0.113.2", 0);
	conn(f, "203.0.113.1", 0);
	conn(f, "203.0.113.1", 0);
	assert_ptr_equal(victim(f, NULL), first_of_many);
	/* Everyone holds one: then the oldest, whoever it is. */
	drop(f, &f->c[3]);
	drop(f, &f->c[4]);
	assert_ptr_equal(victim(f, NULL), legit);
}

/* A connection with an answer pending never gives way; none idle: nothing. */
static void test_pending_kept(void **state)
{
	struct fixture *f = *state;
	struct tconn *idle;

	conn(f, "203.0.113.1", 1);
	conn(f, "203.0.113.1", 2);
	idle = conn(f, "192.0.2.9", 0);
	assert_ptr_equal(victim(f, NULL), idle);
	idle->nwait = 1;
	assert_null(victim(f, NULL));
}

/* Of one address: only its own, the oldest idle one. */
static void test_victim_own(void **state)
{
	struct fixture *f = *state;
	struct tconn *mine;

	conn(f, "203.0.113.1", 0);
	conn(f, "203.0.113.1", 0);
	conn(f, "192.0.2.1", 1);
	mine = conn(f, "192.0.2.1", 0);
	conn(f, "192.0.2.1", 0);
	assert_ptr_equal(victim(f, "192.0.2.1"), mine);
	assert_null(victim(f, "192.0.2.77")); /* holds none */
}

/* Many addresses in the buckets: counts stay right as they come and go. */
static void test_many(void **state)
{
	struct fixture *f = *state;
	char a[32];
	int i;

	for (i = 0; i < 64; i++) {
		snprintf(a, sizeof(a), "10.0.%d.%d", i % 7, i % 5);
		conn(f, a, 0);
	}
	assert_int_equal(count(f, "10.0.0.0"), 2); /* i = 0 and 35 */
	for (i = 0; i < 64; i += 2)
		drop(f, &f->c[i]);
	assert_int_equal(count(f, "10.0.0.0"), 1); /* i = 35 */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_victim_of_the_most, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_victim_own, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
