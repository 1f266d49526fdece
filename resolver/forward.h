/*
 * Forwarding state shared by forward.c (UDP, the slots, timeouts) and
 * forward_tcp.c (the retry over TCP for TCP clients whose answer came back
 * truncated). Internal to resolver/.
 */
#ifndef BECKON_RESOLVER_FORWARD_H
#define BECKON_RESOLVER_FORWARD_H

#include "internal.h"

/* One query in flight to the forwarder. */
struct fwd {
	struct resolver *r;
	bool used;
	uint16_t up_id; /* the ID it carries upstream */
	uint64_t deadline;
	struct query_key k; /* the client's ID and question */
	struct client c;
	uint8_t *query; /* TCP clients: the query as sent, for a retry over TCP */
	size_t qlen;
	struct bufferevent *bev; /* the retry over TCP, when under way */
};

struct fwd_state {
	int fd;
	struct event *ev, *timer;
	struct conf_addr addr;
	bool open;
	unsigned nused;
	uint16_t idmap[65536]; /* upstream ID -> slot + 1 */
	struct fwd slots[RESOLVER_FWD_MAX];
	uint8_t buf[QUERY_TCP_MAX];
};

/* forward.c */
uint64_t fwd_now(void);
bool fwd_matches(const struct fwd *s, const uint8_t *p, size_t len);
void fwd_deliver(struct resolver *r, struct fwd *s, uint8_t *reply, size_t len);
void fwd_servfail(struct resolver *r, struct fwd *s);

/* forward_tcp.c */
int fwd_tcp_start(struct resolver *r, struct fwd *s);
void fwd_tcp_stop(struct fwd *s);

#endif
