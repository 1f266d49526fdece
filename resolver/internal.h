/*
 * What the files of resolver/ share: the resolver itself, its listeners and
 * TCP connections, and the answers that go out later (pending wakes and
 * forwarded queries). Nothing outside resolver/ includes this.
 *
 * Limits:
 * - dns.tcp.max connections at once, dns.tcp.per_client from one address:
 *   beyond either, a connection with no answer pending gives way to the
 *   new one (of that address; or the least recently used of the address
 *   holding the most, tcp_peer.c); when every one has an answer pending,
 *   the new one is closed.
 * - A TCP connection with no complete query for dns.tcp.idle_timeout (and
 *   no answer pending) is closed; so is one whose client does not read its
 *   answers for as long.
 * - dns.rrl: UDP responses a second per client prefix and kind (rrl.h).
 * - RESOLVER_PENDING_MAX answers waiting for a boot; beyond that SERVFAIL.
 * - RESOLVER_FWD_MAX forwarded queries in flight; beyond that SERVFAIL, and
 *   SERVFAIL when the forwarder does not answer in RESOLVER_FWD_TIMEOUT_MS.
 */
#ifndef BECKON_RESOLVER_INTERNAL_H
#define BECKON_RESOLVER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "conf.h"
#include "query.h"
#include "resolver.h"
#include "rrl.h"

#define RESOLVER_UDP_BATCH 32
#define RESOLVER_UDP_IN 4096
#define RESOLVER_TCP_OUT_HIWAT (256 * 1024)
#define RESOLVER_PENDING_MAX 4096
#define RESOLVER_FWD_MAX 1024
#define RESOLVER_FWD_TIMEOUT_MS 2000

struct event;
struct event_base;
struct bufferevent;
struct evconnlistener;
struct launcher_waiter;
struct udp_batch;
struct fwd_state;
struct pending;
struct fast;
struct view;
struct instance;
struct launcher;

/* The address a UDP query was sent to, for wildcard listeners (family 0: not known). */
struct udp_local {
	int family;
	int ifindex;
	struct in_addr a4;
	struct in6_addr a6;
};

#define PKTINFO_CTL_LEN 64

struct listener {
	struct resolver *r;
	struct conf_addr addr;
	unsigned id;   /* unique over the resolver's life, so late UDP answers find it; not 0 */
	bool wildcard; /* bound to 0.0.0.0 or ::, answers name their source */
	int ufd;       /* read on the DNS thread */
	struct evconnlistener *tl;
	struct listener *next;
};

#define TCP_PEER_BUCKETS 1024

/* A client address holding TCP connections (tcp_peer.c). */
struct tcp_peer_key {
	uint8_t addr[16];
	int family;
};
struct tcp_peer {
	struct tcp_peer_key k;
	unsigned n; /* its connections */
	LIST_ENTRY(tcp_peer) link;
};

struct tconn {
	struct resolver *r;
	struct bufferevent *bev;
	struct event *idle;
	unsigned nwait; /* pending answers and forwards for this connection */
	bool eof;       /* the client closed its side: finish, then close */
	bool stalled;   /* reading stopped until the client reads its answers */
	struct tcp_peer *peer;
	TAILQ_ENTRY(tconn) link; /* least recently used first */
};

/* Where an answer goes, as the caller sees it. */
struct client_ref {
	unsigned listener; /* UDP: the listener's id */
	const struct sockaddr *sa;
	socklen_t salen;
	const struct udp_local *local; /* NULL when not known */
	struct tconn *conn;            /* TCP, else NULL */
};

/* The same, kept for an answer that goes out later. */
struct client {
	unsigned listener;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct udp_local local;
	struct tconn *conn;
};

struct resolver {
	struct event_base *base;
	struct launcher *launcher;
	struct zone *zone;
	struct listener *listeners;
	unsigned next_id;
	TAILQ_HEAD(, tconn) conns;
	unsigned nconns;
	unsigned tcp_max, tcp_per_client;
	struct timeval tcp_idle_tv;
	LIST_HEAD(, tcp_peer) peers[TCP_PEER_BUCKETS];
	uint32_t peer_seed;
	struct rrl *rrl; /* NULL: off */
	struct udp_batch *udp;
	struct query tq; /* TCP queries */
	uint8_t *tin;    /* a TCP frame */
	uint8_t *tout;   /* a TCP answer */
	struct query lq; /* late answers: pending and forwarded */
	uint8_t *lout;
	struct pending *pending;
	unsigned pending_free, npending;
	struct fwd_state *fwd;
	struct resolver_stats stats; /* the loop's; the thread's are fast_stats */
	unsigned rr_next;            /* replicas: whose address goes first in the next answer */
	struct fast *fast;           /* the DNS thread */
	struct view *view;           /* with ZONE */
	struct query hq;             /* UDP queries the thread handed over */
	uint8_t *hout;
};

/* resolver.c */
void resolver_send(struct resolver *r, const struct client *c, const uint8_t *buf, size_t len);
void resolver_client_keep(struct client *dst, const struct client_ref *src);
int resolver_dispatch(struct resolver *r, struct query *q, enum query_state st, const uint8_t *pkt,
                      size_t len, const struct client_ref *c);
void resolver_count(struct resolver *r, const uint8_t *answer);
/* A non-blocking socket of TYPE for the listen address A; -1 on error. */
int resolver_socket(const struct conf_addr *a, int type);

/*
 * ratelimit.c: the config's limits, and RRL over UDP. ratelimit_apply
 * takes dns.tcp, and dns.rrl unless its table cannot be had (-1, the old
 * one kept).
 */
int ratelimit_apply(struct resolver *r, const struct conf *conf);
/*
 * RRL for a UDP query in state ST (not QUERY_DROP) from SA: RRL_PASS goes
 * on; RRL_SLIP has put a truncated answer in q->out; RRL_DROP sends nothing.
 * Counted in CNT. On the DNS thread.
 */
enum rrl_action ratelimit_udp(struct resolver *r, struct query *q, enum query_state st,
                              const struct sockaddr *sa, struct resolver_stats *cnt);

/* udp.c: the UDP listeners, read on the DNS thread */
struct udp_batch *udp_batch_new(void);
int udp_open(struct listener *l);
void udp_close(struct listener *l);
/* Read and answer L's queries (the thread, under its lock). */
void udp_read(struct listener *l);

/*
 * fast.c: the DNS thread. fast_new before any listener, fast_start once
 * they are bound; fast_stop ends it, fast_free (after the listeners) frees. The loop holds
 * fast_lock while it changes what the thread reads: the listener list, the zone, the view, the RRL
 * table.
 */
int fast_new(struct resolver *r);
int fast_start(struct resolver *r);
void fast_stop(struct resolver *r);
void fast_free(struct resolver *r);
void fast_lock(struct resolver *r);
void fast_unlock(struct resolver *r);
int fast_watch(struct resolver *r, struct listener *l);
void fast_unwatch(struct resolver *r, struct listener *l);
/* The loop: room for N notes of a view (view_size). -1 on ENOMEM. */
int fast_notes_room(struct resolver *r, size_t n);
/* The thread: its counters. */
struct resolver_stats *fast_stats(struct resolver *r);
/* The thread: true when q->out is the answer to send now (the view's, for a ready service). */
bool fast_now(struct resolver *r, struct query *q, enum query_state st);
/* The thread: hand the query to the loop. -1 when the loop is too far behind. */
int fast_hand(struct resolver *r, const struct client_ref *c, const uint8_t *pkt, size_t len);

/*
 * view.c: per service of a zone, what the thread answers while its instance
 * is ready. Built by the loop with the zone, swapped with it; the loop
 * keeps it current (view_observe, view_fill).
 */
struct view *view_new(const struct zone *z);
void view_free(struct view *v);
size_t view_size(const struct view *v);
/* Every service's entry from L's instances (L NULL: none ready). */
void view_fill(struct view *v, struct launcher *l);
/* INST changed state: its service's entry. */
void view_observe(struct view *v, struct instance *inst);
/* The thread: answer q (WAKE, q->svc set) when its instance is ready, and note the query. */
bool view_answer(struct view *v, struct query *q);
/* Whether the thread noted queries (the thread, under the lock). */
bool view_has_notes(const struct view *v);
/* The loop, under the lock: the noted services into OUT (view_size entries), emptied. */
size_t view_take_notes(struct view *v, uint32_t *out);
/* The loop, without the lock: count those queries as their instances' activity. */
void view_count(struct view *v, struct launcher *l, const uint32_t *idx, size_t n);
/* The loop, once the thread no longer reads V (swapped out): count every query noted. */
void view_flush(struct view *v, struct launcher *l);

/* tcp.c */
int tcp_open(struct listener *l);
void tcp_close_listener(struct listener *l);
void tcp_send(struct tconn *c, const uint8_t *buf, size_t len);
void tcp_done_wait(struct tconn *c);
void tcp_free_all(struct resolver *r);

/* tcp_peer.c: connections per client address */
unsigned tcp_peer_count(struct resolver *r, const struct sockaddr *sa);
/* SA's entry, its count one more; NULL on ENOMEM. */
struct tcp_peer *tcp_peer_get(struct resolver *r, const struct sockaddr *sa);
/* One connection fewer; the entry goes with the last. */
void tcp_peer_put(struct tcp_peer *p);
/*
 * The connection to close for a new one: of SA's when SA is given, else of
 * anyone's; the least recently used with no answer pending of the address
 * that holds the most. NULL when every one has an answer pending.
 */
struct tconn *tcp_peer_victim(struct resolver *r, const struct sockaddr *sa);

/* pending.c: answers that wait for a boot (hold "none") */
int pending_init(struct resolver *r);
int pending_wake(struct resolver *r, struct query *q, const struct client_ref *c);
/* A query answered at once for a service's name: activity; a pattern's label with no image:
 * NXDOMAIN. */
void pending_activity(struct resolver *r, struct query *q);
void pending_drop_conn(struct resolver *r, struct tconn *c);
void pending_reload(struct resolver *r);
void pending_free_all(struct resolver *r);

/* forward.c */
int fwd_init(struct resolver *r);
int fwd_open(struct resolver *r, const struct conf_addr *a);
void fwd_close(struct resolver *r);
bool fwd_same(const struct resolver *r, const struct zone *z);
int fwd_query(struct resolver *r, const struct query *q, const uint8_t *pkt, size_t len,
              const struct client_ref *c);
void fwd_drop_conn(struct resolver *r, struct tconn *c);
void fwd_free(struct resolver *r);

/* pktinfo.c */
bool pktinfo_wildcard(const struct conf_addr *a);
int pktinfo_enable(int fd, int family);
void pktinfo_read(const struct msghdr *m, struct udp_local *out);
size_t pktinfo_write(const struct udp_local *l, void *buf);
ssize_t pktinfo_sendto(int fd, const void *buf, size_t len, const struct sockaddr *to,
                       socklen_t tolen, const struct udp_local *l);

/* True when two socket addresses are the same address and port. */
bool resolver_addr_equal(const struct conf_addr *a, const struct conf_addr *b);

#endif
