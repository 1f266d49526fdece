/*
 * hold "syn": SYNs to a guest that is not ready wait in an NFQUEUE queue.
 * A SYN wakes its guest; once the guest is ready its SYNs are accepted
 * (they go on to the guest) and then its rule is removed, so later SYNs
 * never pass through beckon; when the boot fails they are answered with a
 * TCP reset (a raw IPv4 packet, as if from the guest) and dropped.
 * A service with address6 is held the same way through an ip6tables
 * chain feeding the same queue (an exec service whose process has IPv6:
 * the hello guest has none).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "internal.h"
#include "log.h"

#define SYN_COPY 128 /* bytes of each packet copied to us: IP and TCP headers */
#define SYN_QUEUE_BASE 25600
#define SYN_QUEUE_TRIES 16 /* queue numbers tried, when one is taken */

struct synpkt {
	TAILQ_ENTRY(synpkt) entry;
	uint32_t id;
	struct tcp4 t;
};

static void send_rst6(struct proxy *p, const struct tcp4 *t)
{
	struct sockaddr_in6 dst = {.sin6_family = AF_INET6, .sin6_addr = t->saddr6};
	char addr[INET6_ADDRSTRLEN];
	uint8_t buf[64];
	size_t len = pkt6_rst(t, buf, sizeof(buf));

	if (p->raw6 != -1 &&
	    sendto(p->raw6, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)len)
		log_warn("proxy: reset to [%s]:%u",
		         inet_ntop(AF_INET6, &t->saddr6, addr, sizeof(addr)), t->sport);
}

static void send_rst(struct proxy *p, const struct tcp4 *t)
{
	struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr = t->saddr};
	uint8_t buf[64];
	size_t len;

	if (t->v6) {
		send_rst6(p, t);
		return;
	}
	len = pkt_rst(t, buf, sizeof(buf));
	if (p->raw != -1 &&
	    sendto(p->raw, buf, len, 0, (struct sockaddr *)&dst, sizeof(dst)) != (ssize_t)len)
		log_warn("proxy: reset to %s:%u", inet_ntoa(t->saddr), t->sport);
}

static void reject(struct proxy *p, uint32_t id, const struct tcp4 *t)
{
	send_rst(p, t);
	nfq_verdict(p->q, id, NFQ_DROP);
	p->st.syns_reset++;
}

/* Let SVC's held SYNs go on (OK) or reset them. */
static void release(struct pxsvc *svc, bool ok)
{
	struct proxy *p = svc->p;
	struct synpkt *s;

	while ((s = TAILQ_FIRST(&svc->syns)) != NULL) {
		TAILQ_REMOVE(&svc->syns, s, entry);
		if (ok) {
			nfq_verdict(p->q, s->id, NFQ_ACCEPT);
			p->st.syns_released++;
		} else {
			reject(p, s->id, &s->t);
		}
		proxy_count_held(svc, svc->inst, -1);
		free(s);
	}
}

static void woken_cb(struct instance *inst, bool ok, void *arg)
{
	struct pxsvc *svc = arg;

	(void)inst;
	svc->syn_waiter = NULL;
	if (!ok)
		log_debug("proxy: %s: the guest did not come up, resetting held SYNs", svc->name);
	release(svc, ok);
}

/* A SYN already held for the same connection: the client sent it again. */
static struct synpkt *find_syn(struct pxsvc *svc, const struct tcp4 *t)
{
	struct synpkt *s;

	TAILQ_FOREACH(s, &svc->syns, entry)
	if (s->t.v6 == t->v6 && s->t.sport == t->sport && s->t.dport == t->dport &&
	    (t->v6 ? memcmp(&s->t.saddr6, &t->saddr6, sizeof(t->saddr6)) == 0
	           : s->t.saddr.s_addr == t->saddr.s_addr))
		return s;
	return NULL;
}

static void hold(struct pxsvc *svc, uint32_t id, const struct tcp4 *t)
{
	struct proxy *p = svc->p;
	struct launcher_waiter *w = NULL;
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr = t->saddr};
	struct sockaddr_in6 peer6 = {.sin6_family = AF_INET6, .sin6_addr = t->saddr6};
	struct sockaddr *client = t->v6 ? (struct sockaddr *)&peer6 : (struct sockaddr *)&peer;
	struct synpkt *s;
	int rc;

	/*
	 * The client's address: a boot passes its per-client rate limit. A
	 * client in idle_ignore wakes it too, but is no activity.
	 */
	rc = (!t->v6 && conf_ignored_addr(launcher_service(svc->inst), t->saddr)
	          ? launcher_wake_quiet
	          : launcher_wake_from)(svc->inst, client, svc->syn_waiter ? NULL : woken_cb, svc,
	                                svc->syn_waiter ? NULL : &w);
	if (w != NULL)
		svc->syn_waiter = w;
	if (rc == 1) {
		nfq_verdict(p->q, id, NFQ_ACCEPT);
		return;
	}
	if (rc == -1) {
		reject(p, id, t);
		return;
	}
	if ((s = find_syn(svc, t)) != NULL) {
		nfq_verdict(p->q, s->id, NFQ_DROP); /* one held SYN per connection */
		s->id = id;
		s->t = *t;
		return;
	}
	if (proxy_held_full(p, svc) || (s = calloc(1, sizeof(*s))) == NULL) {
		log_debug("proxy: %s: held-connection limit reached, reset", svc->name);
		p->st.refused++;
		reject(p, id, t);
		return;
	}
	s->id = id;
	s->t = *t;
	TAILQ_INSERT_TAIL(&svc->syns, s, entry);
	proxy_count_held(svc, svc->inst, 1);
	p->st.syns_held++;
}

static void on_packet(const struct nfq_pkt *pk, void *arg)
{
	struct proxy *p = arg;
	struct pxsvc *svc;
	struct tcp4 t;

	/* Not a SYN to a guest of ours (a stale rule): none of our business. */
	if (pk->payload == NULL || pk->len == 0 ||
	    ((pk->payload[0] >> 4) == 6 ? pkt6_parse(pk->payload, pk->len, &t)
	                                : pkt_parse(pk->payload, pk->len, &t)) == -1 ||
	    (t.flags & (TCP4_SYN | TCP4_ACK)) != TCP4_SYN ||
	    (svc = t.v6 ? proxy_svc_by_addr6(p, &t.daddr6) : proxy_svc_by_addr(p, t.daddr)) ==
	        NULL ||
	    svc->inst == NULL) {
		nfq_verdict(p->q, pk->id, NFQ_ACCEPT);
		return;
	}
	hold(svc, pk->id, &t);
}

static void queue_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *p = arg;

	(void)fd;
	(void)what;
	if (nfq_read(p->q, on_packet, p) == -1)
		log_warn("proxy: NFQUEUE read");
}

void synhold_ready(struct pxsvc *svc)
{
	launcher_cancel(svc->syn_waiter);
	svc->syn_waiter = NULL;
	release(svc, true);
}

void synhold_svc_gone(struct pxsvc *svc)
{
	launcher_cancel(svc->syn_waiter);
	svc->syn_waiter = NULL;
	release(svc, false);
}

/* Bind a free queue number, derived from the bridge so that two beckonds differ. */
static uint16_t queue_open(struct proxy *p, const char *bridge)
{
	unsigned h = 5381;

	for (const char *s = bridge; *s; s++)
		h = h * 33 + (unsigned char)*s;
	for (unsigned i = 0; i < SYN_QUEUE_TRIES; i++) {
		uint16_t num = (uint16_t)(SYN_QUEUE_BASE + (h + i) % 1024);

		if ((p->q = nfq_open(num, SYN_COPY, p->max_held + 64)) != NULL)
			return num;
	}
	log_warnx("proxy: cannot bind an NFQUEUE queue (numbers from %u)",
	          SYN_QUEUE_BASE + h % 1024);
	return 0;
}

/*
 * The IPv6 half: an ip6tables chain of the same name into the same queue.
 * Without it (no ip6tables) IPv6 SYNs are not held, and the rest works.
 */
static void synhold_start6(struct proxy *p, const char *chain, uint16_t num)
{
	if ((p->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)) == -1)
		log_warn("proxy: raw IPv6 socket (held IPv6 SYNs will be dropped, not reset)");
	if ((p->fw6 = fw_new_family(p->base, FW_SYN, chain, num, true)) == NULL)
		log_warnx("proxy: IPv6 SYNs (to address6) will not be held");
}

int synhold_start(struct proxy *p, const char *bridge)
{
	char chain[32];
	uint16_t num;

	snprintf(chain, sizeof(chain), "BECKON-HOLD-%s", bridge);
	if ((num = queue_open(p, bridge)) == 0)
		goto fail;
	if ((p->raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)) == -1)
		log_warn("proxy: raw socket (held SYNs will be dropped, not reset)");
	if ((p->q_ev = event_new(p->base, nfq_fd(p->q), EV_READ | EV_PERSIST, queue_cb, p)) ==
	        NULL ||
	    event_add(p->q_ev, NULL) == -1)
		goto fail;
	if ((p->fw = fw_new(p->base, FW_SYN, chain, num)) == NULL)
		goto fail;
	synhold_start6(p, chain, num);
	proxy_rules(p, true);
	log_info("proxy: holding SYNs in NFQUEUE %u", num);
	return 0;
fail:
	synhold_stop(p);
	return -1;
}

void synhold_stop(struct proxy *p)
{
	struct pxsvc *svc;

	TAILQ_FOREACH(svc, &p->svcs, entry)
	synhold_svc_gone(svc);
	fw_free(p->fw);
	p->fw = NULL;
	fw_free(p->fw6);
	p->fw6 = NULL;
	if (p->q_ev != NULL)
		event_free(p->q_ev);
	p->q_ev = NULL;
	nfq_close(p->q);
	p->q = NULL;
	if (p->raw != -1)
		close(p->raw);
	p->raw = -1;
	if (p->raw6 != -1)
		close(p->raw6);
	p->raw6 = -1;
}
