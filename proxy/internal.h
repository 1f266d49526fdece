/* Shared by the files of proxy/ only. */
#ifndef BECKON_PROXY_INTERNAL_H
#define BECKON_PROXY_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "conf.h"
#include "launcher.h"
#include "proxy.h"

struct event;
struct event_base;
struct evbuffer;
struct bufferevent;
struct evconnlistener;
struct fw;
struct nfq;
struct pxconn;
struct pxhttp;
struct pxpump;
struct synpkt;

/* Relaying: each direction buffers at most this much before reading stops. */
#define RELAY_MAX_OUTPUT (256 * 1024)
/* The most one read or write moves. */
#define RELAY_MAX_IO (128 * 1024)
/* launcher_activity at most this often per connection. */
#define RELAY_ACTIVITY_US 100000
/* A side that will not take what is left of the other's data is given this long. */
#define RELAY_FLUSH_MS 10000
/* Connecting to the guest. */
#define PXCONN_CONNECT_MS 5000
/*
 * QEMU's hostfwd accepts before the guest listens and closes a moment later:
 * an upstream that closes without a byte this soon after the guest became
 * ready is connected again, the buffered bytes replayed.
 */
#define PXCONN_RETRIES 5
#define PXCONN_RETRY_MS 20
#define PXCONN_FRESH_MS 2000

TAILQ_HEAD(pxconn_list, pxconn);
TAILQ_HEAD(synpkt_list, synpkt);

/* One service under a hold. */
struct pxsvc {
	TAILQ_ENTRY(pxsvc) entry;
	struct proxy *p;
	char *name;
	struct instance *inst; /* NULL once the service is gone */
	struct in_addr address;
	struct in6_addr address6; /* when has_address6: IPv6 clients come there */
	bool has_address6;
	uint16_t ports[CONF_MAX_PORTS];
	size_t nports;
	struct evconnlistener *ls[CONF_MAX_PORTS];  /* hold "proxy" */
	struct evconnlistener *ls6[CONF_MAX_PORTS]; /* ... on address6 (user mode) */
	struct pxconn_list conns;
	unsigned held; /* its proxied connections and SYNs held now */
	unsigned refs; /* connections that point here; freed at zero once gone */
	bool gone;
	bool fresh; /* made by the reload under way */
	/* hold "syn" */
	struct synpkt_list syns;
	struct launcher_waiter *syn_waiter;
	bool rule;      /* its connections pass through beckon (not ready); bypass: they skip it */
	bool rule_left; /* bypass: its rule is going now */
	/* A front (routes in its config): it reads HTTP requests, front.c routes them. */
	char **prefixes,
	    **targets;   /* route i: a path beginning with prefixes[i] goes to targets[i] */
	size_t nroutes;  /* 0: a service */
	bool replicated; /* replicas.max > 1: each connection goes to the least loaded replica */
	/* A pattern service: its instances' addresses come from this pool. */
	bool pattern;
	struct in_addr pool_first, pool_last;
	/* unavail.c: what a client on port i that is not served gets; NULL: a reset. */
	char *answer[CONF_MAX_PORTS];
	size_t answer_len[CONF_MAX_PORTS];
};

TAILQ_HEAD(pxsvc_list, pxsvc);

struct proxy {
	struct event_base *base;
	struct launcher *l;
	enum conf_hold hold;
	enum conf_net_mode mode;
	unsigned max_held_per_service, max_held;
	size_t hold_buffer;
	uint64_t hold_timeout_ms;
	struct pxsvc_list svcs;
	struct pxsvc_list gone; /* removed, waiting for their last connections */
	struct proxy_stats st;
	/* hold "syn" */
	struct fw *fw;
	struct fw *fw6; /* the ip6tables chain, for services with address6; NULL when none */
	struct nfq *q;
	struct event *q_ev;
	int raw, raw6; /* for resets */
	/* hold "proxy" in bridge mode */
	struct evconnlistener *rd_ls;
	struct evconnlistener *rd_ls6; /* IPv6 clients to address6 (p->fw6 redirects them) */
	/* hold "proxy" in user mode: p->fw DNATs to ready instances */
	bool bypass;
};

/*
 * PXC_HEAD: at a front, reading a request's head to route it (front.c).
 * PXC_ANSWER: not served, answered (unavail.c), closing.
 */
enum pxconn_state { PXC_HEAD, PXC_HELD, PXC_CONNECTING, PXC_BACKOFF, PXC_RELAY, PXC_ANSWER };
/* The two ways a connection relays: client to upstream, and back. */
enum pump_dir { PUMP_CL_UP, PUMP_UP_CL, PUMP_DIRS };

/* One client connection of the proxy. */
struct pxconn {
	TAILQ_ENTRY(pxconn) entry;
	struct pxsvc *svc;
	/*
	 * The instance it is held for or relayed to (svc->inst, or a replica):
	 * its counts are on it. NULL once that instance stops (proxy_observer).
	 */
	struct instance *inst;
	char inst_name[CONF_INSTANCE_NAME_MAX + 1]; /* found again by name after a reload */
	struct in_addr dst; /* where the client connected (redirected: its original destination) */
	uint16_t port;      /* the service port it came to */
	struct sockaddr_storage peer; /* the client: for the per-client boot rate */
	enum pxconn_state state;
	struct bufferevent *cl, *up;
	struct launcher_waiter *waiter;
	struct event *timer;     /* hold timeout, connect backoff, flush */
	struct evbuffer *replay; /* sent upstream before its first byte back; NULL: no retry */
	unsigned attempts;
	int64_t activity_us;
	bool cl_eof, up_eof;             /* EOF read from the side */
	bool cl_shut, up_shut;           /* our write side to it shut */
	bool up_spoke;                   /* a byte came back from upstream */
	bool closing;                    /* flushing the last of one side, then free */
	bool held, open;                 /* counted as such */
	bool cl_throttled, up_throttled; /* reading stopped: the other side's output is full */
	struct pxpump *pump[PUMP_DIRS];  /* splicing that way */
	bool pump_want[PUMP_DIRS];       /* to splice once the destination has flushed */
	size_t moved[PUMP_DIRS];         /* bytes relayed by bufferevents */
	struct pxhttp *http;             /* came to a front: its requests are framed (front.c) */
	bool quiet_busy;                 /* a quiet request in flight, on inst (quiet_busy) */
	bool quiet;                      /* not activity: the service's idle_ignore (quiet.c) */
};

/* proxy.c */
bool proxy_held_full(const struct proxy *p, const struct pxsvc *svc);
/* SVC's (and INST's, when not NULL) count of held or relayed connections changes by DELTA. */
void proxy_count_held(struct pxsvc *svc, struct instance *inst, int delta);
void proxy_count_open(struct pxsvc *svc, struct instance *inst, int delta);
/*
 * The instance C goes to: its service's, or of its replicas the ready one
 * with the fewest connections (else one on its way up, else the service's,
 * to be woken), or of a pattern service the instance at C's destination.
 * NULL when there is none.
 */
struct instance *proxy_pick(const struct pxconn *c);
/* C goes to INST (NULL: none) from now on; it is counted there by the caller. */
void proxy_conn_set_inst(struct pxconn *c, struct instance *inst);
/* INST stopped or failed: connections that point at it uncounted let go of it. */
void proxy_conns_forget(struct proxy *p, struct instance *inst);
/* After a reload: each connection finds its instance again by name (spread.c). */
void proxy_conns_refind(struct proxy *p);
void pxsvc_unref(struct pxsvc *svc);
/* The service (or front) named NAME, NULL when none. */
struct pxsvc *proxy_svc_by_name(struct proxy *p, const char *name);
/* The service whose address is ADDR (or a pattern's whose pool holds it), NULL when none. */
struct pxsvc *proxy_svc_by_addr(struct proxy *p, struct in_addr addr);
/* The service whose address6 is ADDR, NULL when none. */
struct pxsvc *proxy_svc_by_addr6(struct proxy *p, const struct in6_addr *addr);
/*
 * Rewrite the firewall chain (p->fw): a rule for each service whose traffic
 * must pass through beckon now, because its instance is not ready or (proxy)
 * it serves somewhere else than its address. In the background unless SYNC.
 */
void proxy_rules(struct proxy *p, bool sync);

/*
 * listen.c: the proxy's listening sockets of SVC. listen_open binds those
 * that no service in OLD listens on yet; listen_adopt takes the rest over.
 */
int listen_open(struct pxsvc *svc, struct pxsvc_list *old);
void listen_adopt(struct pxsvc *svc, struct pxsvc_list *old);
void listen_close(struct pxsvc *svc);

/* conn.c: a client connection, from accept to free. */
void pxconn_accept(struct pxsvc *svc, uint16_t port, int fd, const struct sockaddr *peer,
                   int peerlen, struct in_addr dst);
void pxconn_free(struct pxconn *c);
/* Close the client with a TCP reset (SO_LINGER 0), then free. */
void pxconn_reset(struct pxconn *c);
/* The guest could not be reached (WHY): logged, and C reset. */
void pxconn_upstream_failed(struct pxconn *c, const char *why);
/*
 * Upstream closed or failed before a byte came back: whether to connect
 * again (QEMU's hostfwd, the guest only just ready), and doing so.
 */
bool pxconn_can_retry(const struct pxconn *c);
void pxconn_retry(struct pxconn *c);
void pxconn_activity(struct pxconn *c, size_t bytes);
/* The upstream goes (and its counts): a front's connection between two requests. */
void pxconn_drop_upstream(struct pxconn *c);
/* C's next request is for TO's PORT: C moves to TO, is held while it wakes, then relayed. */
void pxconn_route(struct pxconn *c, struct pxsvc *to, uint16_t port);
/* TCP_NODELAY on FD (a listening socket passes it on to what it accepts). */
void pxconn_nodelay(int fd);

/* relay.c: both ways, with watermarks, half-close and flush-then-close. */
void relay_setcbs(struct pxconn *c);
/* UP has connected: move what the client sent (and the replay) and relay. */
void relay_start(struct pxconn *c);
/* The client side while it is held: bounded reading, EOF and errors. */
void relay_hold_client(struct pxconn *c);

/* Relay what SRC's input holds (as far as a front's framing lets it). */
void relay_kick(struct pxconn *c, struct bufferevent *src);

/* relay.c, for pump.c: BEV has written all it had; BEV failed (close it, flush the other). */
void relay_flushed(struct pxconn *c, struct bufferevent *bev);
void relay_side_error(struct pxconn *c, struct bufferevent *bev);

/* pump.c: bulk relaying with splice(2), socket -> pipe -> socket. */
/* A direction that has moved this much is bulk: it is spliced from then on. */
#define PUMP_MIN_BYTES (32 * 1024)
#define PUMP_PIPE_SIZE (256 * 1024)
/* Splice DIR from now on (its destination has nothing buffered). -1: it stays as it is. */
int pump_start(struct pxconn *c, enum pump_dir dir);
/* Whether a pipe holds bytes for DST. */
bool pump_holds(const struct pxconn *c, const struct bufferevent *dst);
/* BEV is about to be freed: the pumps stop reading or writing it. */
void pump_side_gone(struct pxconn *c, const struct bufferevent *bev);
void pump_free_all(struct pxconn *c);

/*
 * front.c: a connection to a front. Its request heads are read (within
 * hold_timeout; at most FRONT_HEAD_MAX bytes), each routed by the longest
 * prefix to a service, which is woken, and relayed request by request: a
 * keep-alive connection's next request may go to another service.
 */
#define FRONT_HEAD_MAX (32 * 1024)
#define FRONT_RESP_HEAD_MAX (64 * 1024)
/* After an error answer, what the client still sends is read and dropped this long. */
#define FRONT_LINGER_MS 2000
/* C came to a front (c->svc): read its first request's head. */
void front_start(struct pxconn *c);
/*
 * How many of the AVAIL bytes in SRC's input may be relayed now: the rest
 * of this request (client) or of its response (upstream). Accounts them as
 * relayed.
 */
size_t front_take(struct pxconn *c, struct bufferevent *src, size_t avail);
/* C's service will not serve it: answer STATUS (503, 504) and close. */
void front_refuse(struct pxconn *c, int status);
/* C's timer went off: true when it was the front's (a head's deadline, lingering). */
bool front_timer(struct pxconn *c);
void front_free(struct pxconn *c);

/* unavail.c: the unavailable answer of a service's ports, instead of a reset. */
/* SVC's answers become CS's (nothing changes on failure: -1, logged). */
int unavail_set(struct pxsvc *svc, const struct conf_service *cs);
void unavail_clear(struct pxsvc *svc);
/* Whether C's port has an answer. */
bool unavail_has(const struct pxconn *c);
/* Answer C (unheld) and close it, lingering; a reset when its port has no answer. */
void unavail_answer(struct pxconn *c);
/*
 * quiet.c: the service's idle_ignore. quiet_client: PEER is a listed
 * client; quiet_path: a request for PATH (LEN bytes) is listed; quiet_http:
 * SVC's requests are read for its listed paths (a service, not a front);
 * quiet_answer: the status beckon answers a quiet request with while SVC's
 * guest is not ready, 0 to wake it. quiet_count_*: the proxy_count_* of C,
 * a quiet one kept from the launcher.
 */
bool quiet_client(const struct pxsvc *svc, const struct sockaddr_storage *peer);
bool quiet_path(const struct pxsvc *svc, const char *path, size_t len);
bool quiet_http(const struct pxsvc *svc);
int quiet_answer(const struct pxsvc *svc);
void quiet_count_held(struct pxconn *c, int delta);
void quiet_count_open(struct pxconn *c, int delta);
/* quiet_busy: a quiet request of C's in flight (BUSY) or answered: see launcher_quiet. */
void quiet_busy(struct pxconn *c, bool busy);

/* synhold.c: hold "syn". */
int synhold_start(struct proxy *p, const char *bridge);
void synhold_stop(struct proxy *p);
/* SVC's instance is ready: its held SYNs go on (before its rule goes). */
void synhold_ready(struct pxsvc *svc);
/* SVC goes away: reset what it holds. */
void synhold_svc_gone(struct pxsvc *svc);

/* redirect.c: hold "proxy" in bridge mode, through nat REDIRECT rules. */
int redirect_start(struct proxy *p, const char *bridge);
void redirect_stop(struct proxy *p);

/*
 * bypass.c: hold "proxy" in user mode, local connections to ready instances
 * DNATed past the proxy. bypass_start leaves p->fw NULL (and the proxy in
 * the path) when it cannot: not root, no iptables.
 */
int bypass_start(struct proxy *p, const char *state_dir);
void bypass_stop(struct proxy *p);
/* Rewrite the chain; at once when a service leaves it. */
void bypass_rules(struct proxy *p, bool sync);

/* pkt.c: the TCP/IPv4 bits the SYN hold needs (pkt6.c: IPv6's). */
struct tcp4 {
	struct in_addr saddr, daddr;
	bool v6;                        /* an IPv6 packet (pkt6_parse): its addresses are these */
	struct in6_addr saddr6, daddr6; /* ... not saddr and daddr */
	uint16_t sport, dport;          /* host order */
	uint32_t seq;                   /* host order */
	uint8_t flags;
};
#define TCP4_SYN 0x02
#define TCP4_RST 0x04
#define TCP4_ACK 0x10
/* Parse an IPv4 packet holding a TCP header. -1 when it is not one. */
int pkt_parse(const uint8_t *buf, size_t len, struct tcp4 *t);
/* The RST+ACK answering the SYN T, into OUT (40 bytes). Its length. */
size_t pkt_rst(const struct tcp4 *t, uint8_t *out, size_t outlen);
/* The TCP checksum of SEG (header and data) from SRC to DST, network order. */
uint16_t pkt_tcp_csum(struct in_addr src, struct in_addr dst, const uint8_t *seg, size_t len);
/* The Internet checksum of a pseudo header PSEUDO (PLEN bytes) and SEG, network order. */
uint16_t pkt_csum(const uint8_t *pseudo, size_t plen, const uint8_t *seg, size_t len);
/* pkt6.c: the same for IPv6 (a TCP header right after the fixed header); the RST is 60 bytes. */
int pkt6_parse(const uint8_t *buf, size_t len, struct tcp4 *t);
size_t pkt6_rst(const struct tcp4 *t, uint8_t *out, size_t outlen);
uint16_t pkt6_tcp_csum(const struct in6_addr *src, const struct in6_addr *dst, const uint8_t *seg,
                       size_t len);

/* nfq.c: one NFQUEUE queue, over nfnetlink (libnl-nf). */
struct nfq_pkt {
	uint32_t id; /* the kernel's packet id, host order */
	const uint8_t *payload;
	size_t len;
};
/* Bind queue NUM (copying COPY bytes of each packet, at most MAXLEN queued). */
struct nfq *nfq_open(uint16_t num, unsigned copy, unsigned maxlen);
int nfq_fd(const struct nfq *q);
/* Read what is queued, calling FN for each packet. -1 on a socket error. */
int nfq_read(struct nfq *q, void (*fn)(const struct nfq_pkt *, void *), void *arg);
/* Verdicts, as linux/netfilter.h has them (which clashes with netinet/in.h). */
#define NFQ_DROP 0
#define NFQ_ACCEPT 1
/* NFQ_ACCEPT or NFQ_DROP for packet ID. */
int nfq_verdict(struct nfq *q, uint32_t id, unsigned verdict);
void nfq_close(struct nfq *q);

/* fw.c: an iptables chain of beckon's. */
enum fw_kind {
	FW_SYN,      /* filter, from FORWARD and OUTPUT: SYNs to a target go to NFQUEUE num */
	FW_REDIRECT, /* nat, from PREROUTING and OUTPUT: a target's ports go to local port num */
	FW_DNAT,     /* nat, from OUTPUT: a target's ports, reached over lo, go to up[i] */
};
struct fw_target {
	struct in_addr addr;
	struct in_addr last; /* not 0: the range addr..last (a pattern service's pool) */
	const struct in6_addr
	    *addr6; /* non-NULL: an IPv6 target (an ip6tables chain's), not ADDR */
	const uint16_t *ports;
	size_t nports;
	const struct sockaddr_in *up; /* FW_DNAT: where each port goes */
};
/* Make CHAIN (replacing what an earlier run left) and jump to it, once from each hook. */
struct fw *fw_new(struct event_base *base, enum fw_kind kind, const char *chain, uint16_t num);
/* The same with ip6tables when V6: its targets are IPv6 ones. */
struct fw *fw_new_family(struct event_base *base, enum fw_kind kind, const char *chain,
                         uint16_t num, bool v6);
/*
 * The chain's rules become: beckon's own connections pass (LAUNCHER_FWMARK),
 * (nat chains) a rule that keeps conntrack tracking, then one rule for each of T. Applied in the
 * background, coalesced; with SYNC, before returning.
 */
void fw_set(struct fw *fw, const struct fw_target *t, size_t n, bool sync);
/* The iptables-restore input for such a chain (for the tests). */
char *fw_batch(enum fw_kind kind, const char *chain, uint16_t num, const struct fw_target *t,
               size_t n);
/* Remove the jumps and the chain, waiting for it. */
void fw_free(struct fw *fw);

#endif
