/*
 * Signs of use that nobody reports to the launcher, all from conntrack:
 * a guest's open TCP connections, when its latest closed one closed, and
 * when it last exchanged UDP or ICMP with a client (in user mode, only the
 * TCP connections the proxy's bypass sent straight to the instance). What
 * a guest sends by itself does not count: multicast and broadcast (mDNS,
 * MLD, router solicitations, NetBIOS) are skipped here, and ARP and
 * neighbour discovery never reach conntrack; IPv6 is not read at all (a
 * tap's byte counters, used before, counted all of it). In
 * bridge mode, whatever the hold, connections to a ready guest never pass
 * through beckon: a quiet open connection is only visible in the
 * host's conntrack table (for clients routed through the host; a client
 * on the bridge itself is switched, not routed, and is not seen).
 *
 * Conntrack tracks nothing until some rule needs it, so beckon adds one
 * that only counts (no target) to FORWARD, marked with the bridge's name,
 * and removes it at exit; a start after kill -9 replaces the old one.
 * The table is read over ctnetlink with libnl-3's core, one dump for all
 * guests, looking only at the addresses (libnl-nf's conntrack cache would
 * make an object of every entry in the host's table).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/wait.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "conf.h"
#include "engine_int.h"
#include "hostnet.h"
#include "log.h"
#include "privs.h"

#define ACT_RULE_MAX 32       /* copies of the rule removed at most */
#define ACT_IPTABLES_MS 20000 /* how long an iptables run may take */

extern char **environ;

struct activity {
	struct nl_sock *sk; /* NULL until the first dump */
	char comment[64];
	bool rule;      /* our rule is in FORWARD */
	bool by_port;   /* user mode: count only connections to a service's address and ports */
	uint32_t bcast; /* bridge mode: the subnet's broadcast address (host order) */
	bool warned;
};

/* ---- the conntrack rule ---------------------------------------------------------- */

/*
 * Run iptables with the rule's match and ACTION (-A, -D, -C); its exit
 * status. At startup and exit only, so waited for; but never for long: a
 * stuck iptables (its lock held, a module that will not load) must not
 * hang beckond's start.
 */
static int act_iptables(const struct activity *a, const char *action)
{
	char *argv[] = {"iptables",     "--wait=5", /* "-w 5" is not read alike by every version */
	                (char *)action, "FORWARD",          "-m", "conntrack",
	                "--ctstate",    "ESTABLISHED",      "-m", "comment",
	                "--comment",    (char *)a->comment, NULL};
	posix_spawn_file_actions_t fa;
	pid_t pid, got;
	int status, rc;

	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	privs_ambient(true); /* iptables needs beckond's network capabilities */
	rc = posix_spawnp(&pid, "iptables", &fa, NULL, argv, environ);
	privs_ambient(false);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		return -1;
	for (int ms = 0; (got = waitpid(pid, &status, WNOHANG)) == 0; ms += 10) {
		if (ms >= ACT_IPTABLES_MS) {
			log_warnx("conntrack: iptables %s did not end in %d s: killed", action,
			          ACT_IPTABLES_MS / 1000);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(10000);
	}
	if (got == -1)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void act_rule_remove(struct activity *a)
{
	for (int i = 0; i < ACT_RULE_MAX && act_iptables(a, "-D") == 0; i++)
		;
}

struct activity *activity_new(const struct conf *conf)
{
	struct activity *a;

	/* User mode: only the proxy's bypass reaches an instance directly, and its
	 * nat chain makes conntrack track; no rule of our own. */
	if (conf->net_mode != CONF_NET_BRIDGE) {
		if (conf->hold != CONF_HOLD_PROXY || !conf->bypass || !privs_net_admin())
			return NULL;
		if ((a = calloc(1, sizeof(*a))) != NULL)
			a->by_port = true;
		return a;
	}
	/* Every hold: under "proxy" too, a ready guest is reached directly. */
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	snprintf(a->comment, sizeof(a->comment), "beckon-ct %s", conf->bridge);
	a->bcast =
	    ntohl(conf->subnet.s_addr) | (conf->prefix >= 32 ? 0 : 0xffffffffu >> conf->prefix);
	log_debug("conntrack: the counting rule (iptables)");
	act_rule_remove(a); /* what a killed beckond left */
	if (act_iptables(a, "-A") == 0)
		a->rule = true;
	else
		log_warnx("conntrack: cannot add the counting rule (iptables): open connections "
		          "that bypass beckon are not seen by the idle policy");
	return a;
}

bool activity_fits(const struct activity *a, const struct conf *conf)
{
	bool user = conf->net_mode != CONF_NET_BRIDGE;
	bool want = !user || (conf->hold == CONF_HOLD_PROXY && conf->bypass && privs_net_admin());
	char comment[sizeof(a->comment)];

	if (a == NULL || !want)
		return a == NULL && !want;
	if (user)
		return a->by_port;
	snprintf(comment, sizeof(comment), "beckon-ct %s", conf->bridge);
	return !a->by_port && strcmp(a->comment, comment) == 0;
}

void activity_free(struct activity *a)
{
	if (a == NULL)
		return;
	if (a->rule)
		act_rule_remove(a);
	if (a->sk != NULL)
		nl_socket_free(a->sk);
	free(a);
}

/* ---- reading conntrack ----------------------------------------------------------- */

struct act_dump {
	struct instance **insts;
	const struct conf_service **svcs;
	struct engine_inst **eis;
	size_t n, max;
	bool by_port;
	uint32_t tw_s, close_s; /* conntrack's timeouts of TIME_WAIT and CLOSE, seconds */
	uint32_t udp_s, udp_stream_s, icmp_s; /* ... of UDP (unanswered, answered) and ICMP */
	uint32_t bcast;                       /* the bridge subnet's broadcast, 0 in user mode */
	int64_t now_us;
	int64_t closed_us; /* the entry at hand: when it closed; 0 when it is open */
	int sport, dport;  /* ... its TCP ports, -1 when not TCP */
};

static bool act_port_of(const struct conf_service *svc, int port)
{
	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port)
			return true;
	return false;
}

static void act_note(struct engine_inst *idle, int64_t closed_us)
{
	if (closed_us == 0)
		idle->conntrack++;
	else if (closed_us > idle->ct_closed_us)
		idle->ct_closed_us = closed_us;
}

/*
 * ATTR: one end of an entry, OTHER its other end. PORT: the entry's
 * destination port, -1 for its source end (not matched by port). A client
 * the service's idle_ignore lists is no activity.
 */
static void act_count(struct act_dump *d, const struct nlattr *attr, const struct nlattr *other,
                      int port)
{
	struct in_addr peer = {0};
	uint32_t addr;

	if (attr == NULL || (d->by_port && port == -1))
		return;
	addr = nla_get_u32((struct nlattr *)attr);
	if (other != NULL)
		peer.s_addr = nla_get_u32((struct nlattr *)other);
	for (size_t i = 0; i < d->n; i++)
		if (d->svcs[i]->address.s_addr == addr &&
		    (!d->by_port || act_port_of(d->svcs[i], port)) &&
		    !conf_ignored_addr(d->svcs[i], peer) && !check_own(d->eis[i], d->sport))
			act_note(d->eis[i], d->closed_us);
}

/* The original direction's TCP ports into D's sport and dport, -1 when it has none. */
static void act_ports(struct act_dump *d, struct nlattr *proto, int num)
{
	struct nlattr *tp[CTA_PROTO_MAX + 1];

	d->sport = d->dport = -1;
	if (num != IPPROTO_TCP || proto == NULL ||
	    nla_parse_nested(tp, CTA_PROTO_MAX, proto, NULL) < 0)
		return;
	if (tp[CTA_PROTO_SRC_PORT] != NULL)
		d->sport = ntohs(nla_get_u16(tp[CTA_PROTO_SRC_PORT]));
	if (tp[CTA_PROTO_DST_PORT] != NULL)
		d->dport = ntohs(nla_get_u16(tp[CTA_PROTO_DST_PORT]));
}

static int act_tcp_state(struct nlattr *protoinfo)
{
	struct nlattr *pi[CTA_PROTOINFO_MAX + 1], *tcp[CTA_PROTOINFO_TCP_MAX + 1];

	if (protoinfo == NULL || nla_parse_nested(pi, CTA_PROTOINFO_MAX, protoinfo, NULL) < 0 ||
	    pi[CTA_PROTOINFO_TCP] == NULL ||
	    nla_parse_nested(tcp, CTA_PROTOINFO_TCP_MAX, pi[CTA_PROTOINFO_TCP], NULL) < 0 ||
	    tcp[CTA_PROTOINFO_TCP_STATE] == NULL)
		return -1;
	return nla_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
}

/* A conntrack timeout (the sysctl nf_conntrack_NAME), seconds; DEF when it cannot be read. */
static uint32_t act_timeout(const char *name, uint32_t def)
{
	char path[128];
	unsigned v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/sys/net/netfilter/nf_conntrack_%s", name);
	if ((f = fopen(path, "r")) == NULL)
		return def;
	if (fscanf(f, "%u", &v) != 1)
		v = def;
	fclose(f);
	return v;
}

/*
 * An entry that closed (TIME_WAIT, or CLOSE after a reset) did so (its
 * state's timeout - the time it has left) ago: that is when a short
 * connection that bypassed beckon was last in use. The time left comes in
 * whole seconds, rounded down; so up to a second more may be left than it
 * says, and the close is taken a second later: late rather than early, so
 * that a connection a moment ago never looks a second old.
 */
static int64_t act_closed_us(const struct act_dump *d, uint32_t full, struct nlattr *timeout)
{
	uint32_t left;

	if (timeout == NULL)
		return -1;
	/* More left than the state's timeout (retransmissions give 300 s): when is unknown. */
	if ((left = ntohl(nla_get_u32(timeout))) >= full)
		return -1;
	left++;
	return d->now_us - (int64_t)(full > left ? full - left : 0) * 1000000;
}

/* A UDP or ICMP flow's last packet: its timeout starts again at each. */
static int64_t act_seen_us(const struct act_dump *d, uint32_t full, struct nlattr *timeout)
{
	uint32_t left;

	if (timeout == NULL)
		return -1;
	if ((left = ntohl(nla_get_u32(timeout))) >= full)
		return d->now_us; /* a moment ago */
	return d->now_us - (int64_t)(full - left - 1) * 1000000;
}

/* Whether ADDR (network order) is no one client: multicast, or a broadcast. */
static bool act_group_addr(const struct act_dump *d, struct nlattr *attr)
{
	uint32_t a = attr != NULL ? ntohl(nla_get_u32(attr)) : 0;

	return (a & 0xf0000000u) == 0xe0000000u || a == 0xffffffffu || (d->bcast && a == d->bcast);
}

/*
 * When an entry of PROTO was last used: 0 for an open TCP connection, the
 * time for a closed one or a UDP or ICMP flow, -1 when it does not count.
 */
static int64_t act_entry_time(const struct act_dump *d, struct nlattr **tb, int proto)
{
	uint32_t status = tb[CTA_STATUS] ? ntohl(nla_get_u32(tb[CTA_STATUS])) : 0;
	int state;

	if (proto == IPPROTO_TCP) {
		/* Open: established, or half-closed with data still flowing one way. */
		state = act_tcp_state(tb[CTA_PROTOINFO]);
		if (state >= TCP_CONNTRACK_ESTABLISHED && state <= TCP_CONNTRACK_LAST_ACK)
			return 0;
		if (state != TCP_CONNTRACK_TIME_WAIT && state != TCP_CONNTRACK_CLOSE)
			return -1;
		return act_closed_us(d, state == TCP_CONNTRACK_CLOSE ? d->close_s : d->tw_s,
		                     tb[CTA_TIMEOUT]);
	}
	/* Bridge mode only: user mode counts the bypass's TCP connections alone. */
	if (d->by_port)
		return -1;
	if (proto == IPPROTO_UDP)
		return act_seen_us(d, (status & IPS_ASSURED) ? d->udp_stream_s : d->udp_s,
		                   tb[CTA_TIMEOUT]);
	if (proto == IPPROTO_ICMP)
		return act_seen_us(d, d->icmp_s, tb[CTA_TIMEOUT]);
	return -1;
}

/* The original direction's protocol number, -1 when it has none. */
static int act_proto(struct nlattr *proto)
{
	struct nlattr *tp[CTA_PROTO_MAX + 1];

	if (proto == NULL || nla_parse_nested(tp, CTA_PROTO_MAX, proto, NULL) < 0 ||
	    tp[CTA_PROTO_NUM] == NULL)
		return -1;
	return nla_get_u8(tp[CTA_PROTO_NUM]);
}

/*
 * A connection NATed to beckon's own proxy (bridge mode's REDIRECT) is the
 * proxy's to count, and quiet when idle_ignore says so; in user mode only
 * the bypass's DNAT reaches an instance past the proxy, the rest are
 * connections to the proxy itself.
 */
static bool act_nat_counts(const struct act_dump *d, struct nlattr **tb)
{
	uint32_t status = tb[CTA_STATUS] ? ntohl(nla_get_u32(tb[CTA_STATUS])) : 0;
	bool nat = (status & IPS_DST_NAT) != 0;

	return d->by_port ? nat : !nat;
}

/*
 * One conntrack entry: an open TCP connection counts for both ends; a
 * closed one's close time, and a UDP or ICMP flow's last packet, are a last
 * use. A flow to a group address (multicast, broadcast) is no client's.
 */
static int act_entry(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[CTA_MAX + 1], *tt[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1];
	struct act_dump *d = arg;
	int proto;

	if (nlmsg_parse(nlmsg_hdr(msg), sizeof(struct nfgenmsg), tb, CTA_MAX, NULL) < 0 ||
	    tb[CTA_TUPLE_ORIG] == NULL ||
	    nla_parse_nested(tt, CTA_TUPLE_MAX, tb[CTA_TUPLE_ORIG], NULL) < 0 ||
	    tt[CTA_TUPLE_IP] == NULL ||
	    nla_parse_nested(ip, CTA_IP_MAX, tt[CTA_TUPLE_IP], NULL) < 0)
		return NL_OK;
	proto = act_proto(tt[CTA_TUPLE_PROTO]);
	if ((proto != IPPROTO_TCP && act_group_addr(d, ip[CTA_IP_V4_DST])) ||
	    !act_nat_counts(d, tb))
		return NL_OK;
	if ((d->closed_us = act_entry_time(d, tb, proto)) < 0 ||
	    (d->closed_us == 0 && proto != IPPROTO_TCP))
		return NL_OK;
	act_ports(d, tt[CTA_TUPLE_PROTO], proto);
	act_count(arg, ip[CTA_IP_V4_SRC], ip[CTA_IP_V4_DST], -1);
	act_count(arg, ip[CTA_IP_V4_DST], ip[CTA_IP_V4_SRC], proto == IPPROTO_TCP ? d->dport : -1);
	return NL_OK;
}

static struct nl_sock *act_sock(struct activity *a)
{
	if (a->sk != NULL)
		return a->sk;
	if ((a->sk = nl_socket_alloc()) == NULL)
		return NULL;
	if (nl_connect(a->sk, NETLINK_NETFILTER) < 0) {
		nl_socket_free(a->sk);
		a->sk = NULL;
		return NULL;
	}
	nl_socket_set_buffer_size(a->sk, 1 << 20, 0);
	return a->sk;
}

static int act_dump_once(struct activity *a, struct act_dump *d)
{
	struct nfgenmsg hdr = {.nfgen_family = AF_INET, .version = NFNETLINK_V0};
	struct nl_sock *sk = act_sock(a);
	int err;

	if (sk == NULL)
		return -1;
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, act_entry, d);
	if ((err = nl_send_simple(sk, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_DUMP,
	                          &hdr, sizeof(hdr))) < 0 ||
	    (err = nl_recvmsgs_default(sk)) < 0) {
		if (!a->warned)
			log_warnx("conntrack: cannot read the table: %s", nl_geterror(err));
		a->warned = true;
		/* A dump cut short leaves the socket out of step: start afresh. */
		nl_socket_free(a->sk);
		a->sk = NULL;
		return -1;
	}
	return 0;
}

/*
 * On a busy host the table changes under a dump, which the kernel then
 * marks interrupted: a few tries, each from a clean count.
 */
#define ACT_DUMP_TRIES 3
static int act_dump(struct activity *a, struct act_dump *d)
{
	for (int i = 0; i < ACT_DUMP_TRIES; i++) {
		for (size_t k = 0; k < d->n; k++) {
			d->eis[k]->conntrack = 0;
			d->eis[k]->ct_closed_us = 0;
		}
		if (act_dump_once(a, d) == 0)
			return 0;
	}
	return -1;
}

/* Reset every instance's counts; a ready or paused one is looked for in the dump. */
static void act_collect(struct instance *inst, void *arg)
{
	struct engine_inst *ei = engine_inst(inst);
	struct act_dump *d = arg;
	enum inst_state s = launcher_state(inst);

	if (ei == NULL)
		return;
	ei->conntrack = 0;
	ei->ct_closed_us = 0;
	if ((s != INST_READY && s != INST_PAUSED) || d->n == d->max)
		return;
	d->insts[d->n] = inst;
	d->svcs[d->n] = launcher_service(inst);
	d->eis[d->n++] = ei;
}

int activity_conntrack(struct activity *a, struct launcher *l)
{
	struct act_dump d = {0};
	int rc = -1;

	d.max = launcher_count(l);
	d.insts = calloc(d.max + 1, sizeof(*d.insts));
	d.svcs = calloc(d.max + 1, sizeof(*d.svcs));
	d.eis = calloc(d.max + 1, sizeof(*d.eis));
	if (d.insts == NULL || d.svcs == NULL || d.eis == NULL)
		goto done;
	launcher_foreach(l, act_collect, &d);
	if (a == NULL || d.max == 0) {
		rc = 0; /* nothing to read */
		goto done;
	}
	d.by_port = a->by_port;
	d.tw_s = act_timeout("tcp_timeout_time_wait", 120); /* read each time: they may be tuned */
	d.close_s = act_timeout("tcp_timeout_close", 10);
	d.udp_s = act_timeout("udp_timeout", 30);
	d.udp_stream_s = act_timeout("udp_timeout_stream", 120);
	d.icmp_s = act_timeout("icmp_timeout", 30);
	d.bcast = a->by_port ? 0 : a->bcast;
	d.now_us = launcher_now_us();
	rc = d.n > 0 ? act_dump(a, &d) : 0;
	/* A connection that bypassed beckon closed lately: in use until then. */
	for (size_t i = 0; rc == 0 && i < d.n; i++)
		if (d.eis[i]->ct_closed_us != 0)
			launcher_activity_at(d.insts[i], d.eis[i]->ct_closed_us);
done:
	free(d.insts);
	free(d.svcs);
	free(d.eis);
	return rc;
}
