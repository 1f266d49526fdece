/*
 * proxy/: the packet bits of the SYN hold, the iptables batch, and the L4
 * proxy with a real launcher, a real exec process and real sockets on
 * loopback. The upstream server is this test's own socket (the exec
 * process only tells its {port}), so the test sees every byte and can stall
 * or close it at will; the test drives the event loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "backend.h"
#include "proc.h"
#include "exec.h"
#include "conf.h"
#include "../../proxy/internal.h"
#include "engine.h"
#include "launcher.h"
#include "log.h"
#include "proxy.h"

/* ---- packets ---- */

static size_t make_syn(uint8_t *b, const char *src, const char *dst, uint16_t sport, uint16_t dport,
                       uint32_t seq)
{
	struct in_addr a;

	memset(b, 0, 40);
	b[0] = 0x45;
	b[3] = 40;
	b[8] = 64;
	b[9] = 6;
	inet_pton(AF_INET, src, &a);
	memcpy(b + 12, &a, 4);
	inet_pton(AF_INET, dst, &a);
	memcpy(b + 16, &a, 4);
	b[20] = (uint8_t)(sport >> 8), b[21] = (uint8_t)sport;
	b[22] = (uint8_t)(dport >> 8), b[23] = (uint8_t)dport;
	b[24] = (uint8_t)(seq >> 24), b[25] = (uint8_t)(seq >> 16);
	b[26] = (uint8_t)(seq >> 8), b[27] = (uint8_t)seq;
	b[32] = 5 << 4;
	b[33] = TCP4_SYN;
	return 40;
}

static void test_pkt_parse(void **state)
{
	uint8_t b[64];
	struct tcp4 t;
	size_t len = make_syn(b, "10.78.1.2", "10.79.1.5", 40000, 80, 0xdeadbeef);

	(void)state;
	assert_int_equal(pkt_parse(b, len, &t), 0);
	assert_string_equal(inet_ntoa(t.saddr), "10.78.1.2");
	assert_string_equal(inet_ntoa(t.daddr), "10.79.1.5");
	assert_int_equal(t.sport, 40000);
	assert_int_equal(t.dport, 80);
	assert_true(t.seq == 0xdeadbeef);
	assert_int_equal(t.flags, TCP4_SYN);
	assert_int_equal(pkt_parse(b, 39, &t), -1); /* no whole TCP header */
	b[9] = 17;
	assert_int_equal(pkt_parse(b, len, &t), -1); /* UDP */
	b[9] = 6;
	b[7] = 1;
	assert_int_equal(pkt_parse(b, len, &t), -1); /* a later fragment */
	b[7] = 0;
	b[0] = 0x44;
	assert_int_equal(pkt_parse(b, len, &t), -1); /* header too short */
	b[0] = 0x65;
	assert_int_equal(pkt_parse(b, len, &t), -1); /* not IPv4 */
}

/* The one's complement sum of BUF: 0xffff when its checksum is right. */
static unsigned sum_ok(const uint8_t *buf, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)buf[i] << 8 | buf[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

static void test_pkt_rst(void **state)
{
	uint8_t syn[64], rst[64];
	struct tcp4 t, r;
	uint32_t pseudo;
	size_t len;

	(void)state;
	make_syn(syn, "10.78.1.2", "10.79.1.5", 40000, 80, 0xffffffff);
	assert_int_equal(pkt_parse(syn, 40, &t), 0);
	len = pkt_rst(&t, rst, sizeof(rst));
	assert_int_equal(len, 40);
	assert_int_equal(pkt_parse(rst, len, &r), 0);
	assert_string_equal(inet_ntoa(r.saddr), "10.79.1.5"); /* as if from the guest */
	assert_string_equal(inet_ntoa(r.daddr), "10.78.1.2");
	assert_int_equal(r.sport, 80);
	assert_int_equal(r.dport, 40000);
	assert_int_equal(r.flags, TCP4_RST | TCP4_ACK);
	assert_int_equal(rst[28] << 24 | rst[29] << 16 | rst[30] << 8 | rst[31],
	                 0); /* ack = seq + 1 */
	assert_int_equal(rst[0], 0x45);
	assert_int_equal(sum_ok(rst, 20, 0), 0xffff); /* IP header checksum */
	/* TCP checksum over the pseudo header (addresses, protocol, length). */
	pseudo = (uint32_t)(rst[12] << 8 | rst[13]) + (uint32_t)(rst[14] << 8 | rst[15]) +
	         (uint32_t)(rst[16] << 8 | rst[17]) + (uint32_t)(rst[18] << 8 | rst[19]) + 6 + 20;
	assert_int_equal(sum_ok(rst + 20, 20, pseudo), 0xffff);
	assert_int_equal(pkt_rst(&t, rst, 39), 0);
}

/* An IPv6 SYN (fixed header, then TCP) from SRC to DST into B: its length, 60. */
static size_t make_syn6(uint8_t *b, const char *src, const char *dst, uint16_t sport,
                        uint16_t dport, uint32_t seq)
{
	memset(b, 0, 60);
	b[0] = 0x60;
	b[5] = 20; /* payload length */
	b[6] = 6;  /* TCP */
	b[7] = 64;
	inet_pton(AF_INET6, src, b + 8);
	inet_pton(AF_INET6, dst, b + 24);
	b[40] = (uint8_t)(sport >> 8), b[41] = (uint8_t)sport;
	b[42] = (uint8_t)(dport >> 8), b[43] = (uint8_t)dport;
	b[44] = (uint8_t)(seq >> 24), b[45] = (uint8_t)(seq >> 16);
	b[46] = (uint8_t)(seq >> 8), b[47] = (uint8_t)seq;
	b[52] = 5 << 4;
	b[53] = TCP4_SYN;
	return 60;
}

static void test_pkt6(void **state)
{
	uint8_t syn[64], rst[80];
	struct tcp4 t, r;
	struct in6_addr a;
	char text[INET6_ADDRSTRLEN];
	uint32_t pseudo = 6 + 20;
	size_t len = make_syn6(syn, "fd77:1::2", "fd77:79::4", 40000, 80, 0xfffffffe);

	(void)state;
	assert_int_equal(pkt6_parse(syn, len, &t), 0);
	assert_true(t.v6);
	inet_pton(AF_INET6, "fd77:79::4", &a);
	assert_memory_equal(&t.daddr6, &a, sizeof(a));
	assert_int_equal(t.sport, 40000);
	assert_int_equal(t.dport, 80);
	assert_true(t.seq == 0xfffffffe);
	assert_int_equal(t.flags, TCP4_SYN);
	assert_int_equal(pkt6_parse(syn, 59, &t), -1); /* no whole TCP header */
	assert_int_equal(pkt_parse(syn, len, &t), -1); /* not IPv4 */
	syn[6] = 0;                                    /* a hop-by-hop header first */
	assert_int_equal(pkt6_parse(syn, len, &t), -1);
	syn[6] = 6;
	syn[0] = 0x45;
	assert_int_equal(pkt6_parse(syn, len, &t), -1); /* not IPv6 */
	syn[0] = 0x60;

	assert_int_equal(pkt6_parse(syn, len, &t), 0);
	assert_int_equal(pkt6_rst(&t, rst, 59), 0);
	len = pkt6_rst(&t, rst, sizeof(rst));
	assert_int_equal(len, 60);
	assert_int_equal(pkt6_parse(rst, len, &r), 0);
	inet_ntop(AF_INET6, &r.saddr6, text, sizeof(text));
	assert_string_equal(text, "fd77:79::4"); /* as if from the guest */
	inet_ntop(AF_INET6, &r.daddr6, text, sizeof(text));
	assert_string_equal(text, "fd77:1::2");
	assert_int_equal(r.sport, 80);
	assert_int_equal(r.dport, 40000);
	assert_int_equal(r.flags, TCP4_RST | TCP4_ACK);
	/* ack = seq + 1 */
	assert_true(((uint32_t)rst[48] << 24 | (uint32_t)rst[49] << 16 | (uint32_t)rst[50] << 8 |
	             rst[51]) == 0xffffffffu);
	assert_int_equal(rst[5], 20); /* payload length */
	/* TCP checksum over the pseudo header: both addresses, length, next header. */
	for (size_t i = 8; i < 40; i += 2)
		pseudo += (uint32_t)(rst[i] << 8 | rst[i + 1]);
	assert_int_equal(sum_ok(rst + 40, 20, pseudo), 0xffff);
}

/* IPv6 targets (an ip6tables chain's): their address6 as a /128. */
static void test_fw_batch6(void **state)
{
	static const uint16_t ports[] = {80};
	struct in6_addr a;
	struct fw_target g = {.addr6 = &a, .ports = ports, .nports = 1};
	char *b;

	(void)state;
	inet_pton(AF_INET6, "fd77::2", &a);
	b = fw_batch(FW_SYN, "H", 7, &g, 1);
	assert_string_equal(b, "*filter\n:H - [0:0]\n-A H -m mark --mark 0x626b -j RETURN\n"
	                       "-A H -d fd77::2/128 -p tcp -m tcp --syn -j NFQUEUE --queue-num 7 "
	                       "--queue-bypass\nCOMMIT\n");
	free(b);
	b = fw_batch(FW_REDIRECT, "P", 40000, &g, 1);
	assert_string_equal(b,
	                    "*nat\n:P - [0:0]\n-A P -m mark --mark 0x626b -j RETURN\n"
	                    "-A P -m conntrack --ctstate NEW\n"
	                    "-A P -d fd77::2/128 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports "
	                    "40000\nCOMMIT\n");
	free(b);
}

static void test_fw_batch(void **state)
{
	static const uint16_t ports[] = {80, 443};
	struct fw_target g[2] = {{.ports = ports, .nports = 2}, {.ports = ports, .nports = 1}};
	char *b;

	(void)state;
	inet_pton(AF_INET, "10.77.0.2", &g[0].addr);
	inet_pton(AF_INET, "10.77.0.3", &g[1].addr);
	b = fw_batch(FW_SYN, "BECKON-HOLD-beckon0", 25601, g, 2);
	assert_non_null(b);
	assert_string_equal(b, "*filter\n"
	                       ":BECKON-HOLD-beckon0 - [0:0]\n"
	                       "-A BECKON-HOLD-beckon0 -m mark --mark 0x626b -j RETURN\n"
	                       "-A BECKON-HOLD-beckon0 -d 10.77.0.2/32 -p tcp -m tcp --syn -j "
	                       "NFQUEUE --queue-num 25601 --queue-bypass\n"
	                       "-A BECKON-HOLD-beckon0 -d 10.77.0.3/32 -p tcp -m tcp --syn -j "
	                       "NFQUEUE --queue-num 25601 --queue-bypass\n"
	                       "COMMIT\n");
	free(b);
	b = fw_batch(FW_SYN, "C", 1, NULL, 0);
	assert_string_equal(b,
	                    "*filter\n:C - [0:0]\n-A C -m mark --mark 0x626b -j RETURN\nCOMMIT\n");
	free(b);
	b = fw_batch(FW_REDIRECT, "BECKON-PROXY-br", 40000, g, 2);
	assert_string_equal(b, "*nat\n"
	                       ":BECKON-PROXY-br - [0:0]\n"
	                       "-A BECKON-PROXY-br -m mark --mark 0x626b -j RETURN\n"
	                       "-A BECKON-PROXY-br -m conntrack --ctstate NEW\n"
	                       "-A BECKON-PROXY-br -d 10.77.0.2/32 -p tcp -m tcp --dport 80 -j "
	                       "REDIRECT --to-ports 40000\n"
	                       "-A BECKON-PROXY-br -d 10.77.0.2/32 -p tcp -m tcp --dport 443 -j "
	                       "REDIRECT --to-ports 40000\n"
	                       "-A BECKON-PROXY-br -d 10.77.0.3/32 -p tcp -m tcp --dport 80 -j "
	                       "REDIRECT --to-ports 40000\n"
	                       "COMMIT\n");
	free(b);
}

/* The user-mode bypass: each port of a ready service to where it really serves, over lo only. */
static void test_fw_batch_dnat(void **state)
{
	static const uint16_t ports[] = {80, 443};
	struct sockaddr_in up[2] = {{.sin_family = AF_INET, .sin_port = htons(40001)},
	                            {.sin_family = AF_INET, .sin_port = htons(40002)}};
	struct fw_target t = {.ports = ports, .nports = 2, .up = up};
	char *b;

	(void)state;
	inet_pton(AF_INET, "127.0.9.2", &t.addr);
	inet_pton(AF_INET, "127.0.0.1", &up[0].sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &up[1].sin_addr);
	b = fw_batch(FW_DNAT, "BECKON-DIRECT-0badf00d", 0, &t, 1);
	assert_non_null(b);
	assert_string_equal(b, "*nat\n"
	                       ":BECKON-DIRECT-0badf00d - [0:0]\n"
	                       "-A BECKON-DIRECT-0badf00d -m mark --mark 0x626b -j RETURN\n"
	                       "-A BECKON-DIRECT-0badf00d -m conntrack --ctstate NEW\n"
	                       "-A BECKON-DIRECT-0badf00d -o lo -d 127.0.9.2/32 -p tcp -m tcp "
	                       "--dport 80 -j DNAT --to-destination 127.0.0.1:40001\n"
	                       "-A BECKON-DIRECT-0badf00d -o lo -d 127.0.9.2/32 -p tcp -m tcp "
	                       "--dport 443 -j DNAT --to-destination 127.0.0.1:40002\n"
	                       "COMMIT\n");
	free(b);
}

static void test_exec_port(void **state)
{
	struct backend_vars v = {.image = "i", .address = "127.0.0.1", .port = "8123"};
	char err[128];
	char **argv = backend_exec_argv("httpd -p {address}:{port}", &v, err, sizeof(err));

	(void)state;
	assert_non_null(argv);
	assert_string_equal(argv[1], "-p");
	assert_string_equal(argv[2], "127.0.0.1:8123");
	assert_null(argv[3]);
	backend_exec_argv_free(argv);
}

/* ---- the proxy, end to end on loopback ---- */

struct fix {
	struct event_base *base;
	struct conf *conf;
	struct launcher *l;
	struct engine *engine;
	struct proxy *p;
	char dir[64];
	struct sockaddr_in svc; /* where the proxy listens */
	int up_ls;              /* the test's upstream listener, -1 until the port is known */
	struct event *tick;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static uint16_t free_port(const char *addr)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port;

	inet_pton(AF_INET, addr, &sa.sin_addr);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Run the loop until COND(F, ARG) or MS pass; whether COND came true (COND NULL: run MS). */
static bool pump(struct fix *f, bool (*cond)(struct fix *, void *), void *arg, int ms)
{
	int64_t end = now_ms() + ms;

	while (now_ms() < end) {
		event_base_loop(f->base, EVLOOP_ONCE);
		if (cond != NULL && cond(f, arg))
			return true;
	}
	return cond == NULL;
}

/* The exec process tells its {port}: the test listens there. */
static bool upstream_listening(struct fix *f, void *arg)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char path[128];
	unsigned port = 0;
	FILE *fp;
	int one = 1;

	(void)arg;
	if (f->up_ls != -1)
		return true;
	snprintf(path, sizeof(path), "%s/port", f->dir);
	if ((fp = fopen(path, "r")) == NULL)
		return false;
	if (fscanf(fp, "%u", &port) != 1)
		port = 0;
	fclose(fp);
	if (port == 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	f->up_ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	setsockopt(f->up_ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	assert_int_equal(bind(f->up_ls, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->up_ls, 16), 0);
	return true;
}

/* A config: one exec service at 127.0.0.N:PORT that only writes its {port}. */
static void fix_setup(struct fix *f, const char *ready, const char *net_extra)
{
	char path[128], *text = NULL;
	FILE *fp;
	int n = 2 + rand() % 200;
	char addr[32];

	memset(f, 0, sizeof(*f));
	f->up_ls = -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/beckon-proxy-test.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(addr, sizeof(addr), "127.0.%d.%d", 100 + rand() % 100, n);
	f->svc.sin_family = AF_INET;
	inet_pton(AF_INET, addr, &f->svc.sin_addr);
	f->svc.sin_port = htons(free_port(addr));
	assert_true(
	    asprintf(&text,
	             "state_dir = \"%s/state\";\ncontrol_socket = \"%s/ctl\";\n"
	             "metrics_listen = \"\";\n"
	             "dns = { zone = \"svc.test\"; ns = ( { name = \"ns1.svc.test\"; "
	             "address = \"127.0.0.1\"; } ); };\n"
	             /* These test the relay: local connections, so no bypass once ready. */
	             "network = { mode = \"user\"; hold = \"proxy\"; bypass = false; %s };\n"
	             "services = ( { name = \"s\"; dns = \"s.svc.test\"; address = \"%s\";"
	             " ports = ( %u ); backend = \"exec\"; ready = \"%s\";"
	             " exec = { command = \"sh -c 'echo {port} >%s/port; exec sleep 60'\"; };"
	             " } );\n",
	             f->dir, f->dir, net_extra, addr, ntohs(f->svc.sin_port), ready, f->dir) > 0);
	snprintf(path, sizeof(path), "%s/beckon.conf", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
	free(text);
	assert_int_equal(conf_load(path, &f->conf, stderr), 0);
	assert_non_null(f->base = event_base_new());
	assert_non_null(f->l = launcher_new(f->base, f->conf));
	assert_non_null(f->engine = engine_new(f->base, f->l, f->conf));
	assert_non_null(f->p = proxy_new(f->base, f->conf, f->l));
	/* EVLOOP_ONCE must not block for long: a ticking timer. */
	f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb, NULL);
	struct timeval tv = {0, 2000};
	event_add(f->tick, &tv);
}

static void fix_teardown(struct fix *f)
{
	char cmd[128];

	proxy_free(f->p);
	engine_free(f->engine);
	launcher_free(f->l);
	event_free(f->tick);
	event_base_free(f->base);
	conf_free(f->conf);
	if (f->up_ls != -1)
		close(f->up_ls);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

static int client(struct fix *f)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_int_equal(connect(fd, (struct sockaddr *)&f->svc, sizeof(f->svc)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

struct acc {
	int fd;
};

static bool accepted(struct fix *f, void *arg)
{
	struct acc *a = arg;

	if (f->up_ls == -1 && !upstream_listening(f, NULL))
		return false;
	a->fd = accept4(f->up_ls, NULL, NULL, SOCK_NONBLOCK);
	return a->fd != -1;
}

struct rd {
	int fd;
	char buf[256];
	size_t len;
	bool eof;
	int err;
};

/* Read what FD has until EOF or an error. */
static bool read_all(struct fix *f, void *arg)
{
	struct rd *r = arg;
	ssize_t n;

	(void)f;
	while ((n = read(r->fd, r->buf + r->len, sizeof(r->buf) - 1 - r->len)) > 0)
		r->len += (size_t)n;
	r->buf[r->len] = '\0';
	if (n == 0)
		r->eof = true;
	else if (errno != EAGAIN)
		r->err = errno;
	return r->eof || r->err != 0;
}

static struct pxconn *first_conn(struct fix *f)
{
	return TAILQ_FIRST(&TAILQ_FIRST(&f->p->svcs)->conns);
}

/* A ready service (delay:20ms) and one connection through it: the client's fd; A the upstream's. */
static int relayed_pair(struct fix *f, struct acc *a)
{
	int c;

	fix_setup(f, "delay:20ms", "");
	c = client(f);
	assert_true(pump(f, accepted, a, 2000));
	return c;
}

static bool held_one(struct fix *f, void *arg)
{
	struct proxy_stats st;

	(void)arg;
	proxy_stats(f->p, &st);
	return st.held == 1;
}

/*
 * Held, then relayed with half-close both ways: the client sends, shuts its
 * write side, and still reads the answer; the upstream sees the request and
 * EOF; each side sees EOF after the other's data.
 */
static void test_hold_relay_halfclose(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct rd up = {0}, cl = {0};
	struct proxy_stats st;
	int c;

	(void)state;
	fix_setup(&f, "delay:300ms", "");
	c = client(&f);
	assert_int_equal(write(c, "hello", 5), 5);
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	/*
	 * Booting, not ready: held from the accept on. Looked at first: waiting
	 * for the listener first let a busy machine pass the ready delay.
	 */
	assert_true(pump(&f, held_one, NULL, 2000));
	assert_int_equal(first_conn(&f)->state, PXC_HELD);
	pump(&f, upstream_listening, NULL, 2000);
	assert_true(pump(&f, accepted, &a, 2000));
	up.fd = a.fd;
	assert_true(pump(&f, read_all, &up, 2000));
	assert_string_equal(up.buf, "hello"); /* what was held, then EOF */
	assert_true(up.eof);
	proxy_stats(f.p, &st);
	assert_int_equal(st.held, 0);
	assert_int_equal(st.open, 1);
	assert_int_equal(write(a.fd, "world", 5), 5);
	assert_int_equal(shutdown(a.fd, SHUT_WR), 0);
	cl.fd = c;
	assert_true(pump(&f, read_all, &cl, 2000));
	assert_string_equal(cl.buf, "world");
	assert_true(cl.eof);
	assert_true(pump(&f, NULL, NULL, 20));
	proxy_stats(f.p, &st);
	assert_int_equal(st.open, 0); /* both ways closed: freed */
	assert_true(TAILQ_EMPTY(&TAILQ_FIRST(&f.p->svcs)->conns));
	close(c);
	close(a.fd);
	fix_teardown(&f);
}

struct flood {
	int fd;
	size_t sent;
};

/* The upstream writes as much as the socket takes. */
static bool flood(struct fix *f, void *arg)
{
	static char buf[65536];
	struct flood *fl = arg;
	ssize_t n;

	(void)f;
	while (fl->sent < (64u << 20) && (n = write(fl->fd, buf, sizeof(buf))) > 0)
		fl->sent += (size_t)n;
	return false;
}

struct drain {
	int fd;
	size_t got, want;
};

static bool drain(struct fix *f, void *arg)
{
	static char buf[65536];
	struct drain *d = arg;
	ssize_t n;

	(void)f;
	while ((n = read(d->fd, buf, sizeof(buf))) > 0)
		d->got += (size_t)n;
	return d->got >= d->want;
}

/*
 * A client that does not read: the proxy stops reading upstream, holds
 * little. Bulk is spliced: then the pipe, not a bufferevent, holds back.
 */
static void test_flow_control(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct flood fl;
	struct drain d;
	struct pxconn *pc;
	int c;

	(void)state;
	c = relayed_pair(&f, &a);
	fl.fd = a.fd;
	fl.sent = 0;
	pump(&f, flood, &fl, 500);
	pc = first_conn(&f);
	assert_int_equal(pc->state, PXC_RELAY);
	assert_true(pc->up_throttled || pump_holds(pc, pc->cl));
	assert_true(pc->pump[PUMP_UP_CL] != NULL); /* it was bulk */
	assert_true(evbuffer_get_length(bufferevent_get_output(pc->cl)) <=
	            RELAY_MAX_OUTPUT + 65536);
	assert_true(evbuffer_get_length(bufferevent_get_input(pc->up)) <= 65536);
	assert_true(fl.sent < (32u << 20)); /* the upstream was made to wait */
	d.fd = c;
	d.got = 0;
	d.want = fl.sent;
	assert_true(pump(&f, drain, &d, 5000)); /* and everything arrives once read */
	close(c);
	close(a.fd);
	fix_teardown(&f);
}

/* A stream of BULK_LEN patterned bytes, written and read back in pieces. */
#define BULK_LEN (4u << 20)

static uint8_t bulk_byte(size_t i)
{
	return (uint8_t)(i * 7 + i / 4096);
}

struct bulk {
	int wfd, rfd;
	size_t sent, got;
	bool eof, bad;
};

/* Write what the writer can, SHUT_WR at the end; read what has come. */
static bool bulk_step(struct fix *f, void *arg)
{
	static uint8_t buf[65536];
	struct bulk *b = arg;
	ssize_t n;
	size_t i, len;

	(void)f;
	while (b->sent < BULK_LEN) {
		len = BULK_LEN - b->sent < sizeof(buf) ? BULK_LEN - b->sent : sizeof(buf);
		for (i = 0; i < len; i++)
			buf[i] = bulk_byte(b->sent + i);
		if ((n = write(b->wfd, buf, len)) <= 0)
			break;
		b->sent += (size_t)n;
		if (b->sent == BULK_LEN)
			shutdown(b->wfd, SHUT_WR);
	}
	while ((n = read(b->rfd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++)
			b->bad |= buf[i] != bulk_byte(b->got + i);
		b->got += (size_t)n;
	}
	b->eof |= n == 0;
	return b->eof;
}

/*
 * Bulk each way goes through the pipes (splice) and arrives whole, in
 * order, followed by EOF; then the connection is freed.
 */
static void test_bulk_spliced(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct bulk down = {0}, up = {0};
	struct proxy_stats st;
	int c;

	(void)state;
	c = relayed_pair(&f, &a);
	down = (struct bulk){.wfd = a.fd, .rfd = c};
	assert_true(pump(&f, bulk_step, &down, 5000));
	assert_int_equal(down.got, BULK_LEN);
	assert_false(down.bad);
	assert_non_null(first_conn(&f)->pump[PUMP_UP_CL]);
	up = (struct bulk){.wfd = c, .rfd = a.fd};
	assert_true(pump(&f, bulk_step, &up, 5000));
	assert_int_equal(up.got, BULK_LEN);
	assert_false(up.bad);
	assert_true(pump(&f, NULL, NULL, 20));
	proxy_stats(f.p, &st);
	assert_int_equal(st.open, 0); /* both ways closed: freed, pipes and all */
	close(c);
	close(a.fd);
	fix_teardown(&f);
}

/* A client that resets in the middle of a spliced download: freed, upstream closed. */
static void test_bulk_reset(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct bulk down = {0};
	struct rd up = {0};
	struct linger lg = {1, 0};
	struct proxy_stats st;
	int c;

	(void)state;
	c = relayed_pair(&f, &a);
	down = (struct bulk){.wfd = a.fd, .rfd = c};
	pump(&f, bulk_step, &down, 200); /* part of it */
	assert_true(down.got > 0);
	assert_non_null(first_conn(&f)->pump[PUMP_UP_CL]);
	setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(c);
	up.fd = a.fd;
	while (read(a.fd, up.buf, sizeof(up.buf)) > 0) /* no data comes that way */
		;
	assert_true(pump(&f, read_all, &up, 2000) || up.err != 0);
	proxy_stats(f.p, &st);
	assert_int_equal(st.open, 0);
	close(a.fd);
	fix_teardown(&f);
}

struct reset {
	int fd;
	int err;
};

static bool was_reset(struct fix *f, void *arg)
{
	struct reset *r = arg;
	char b;

	(void)f;
	if (read(r->fd, &b, 1) == -1 && errno != EAGAIN)
		r->err = errno;
	return r->err != 0;
}

/* Beyond max_held_per_service a client is reset; the held ones are not. */
static void test_limit(void **state)
{
	struct fix f;
	struct reset r = {-1, 0};
	struct proxy_stats st;
	int c1, c2;

	(void)state;
	/* Not ready until long after the checks: the two stay held however slow the machine. */
	fix_setup(&f, "delay:5s", "max_held_per_service = 2;");
	c1 = client(&f);
	c2 = client(&f);
	pump(&f, NULL, NULL, 30);
	r.fd = client(&f);
	assert_true(pump(&f, was_reset, &r, 1000));
	assert_int_equal(r.err, ECONNRESET);
	proxy_stats(f.p, &st);
	assert_int_equal(st.held, 2);
	assert_int_equal(st.refused, 1);
	close(c1);
	close(c2);
	close(r.fd);
	fix_teardown(&f);
}

/* What a held client sends is bounded by hold_buffer; the rest waits in the kernel. */
static void test_hold_buffer(void **state)
{
	static char buf[1 << 20];
	struct fix f;
	struct pxconn *pc;
	ssize_t n;
	size_t sent = 0;
	int c;

	(void)state;
	fix_setup(&f, "delay:5s", "hold_buffer = \"16K\";");
	c = client(&f);
	for (int i = 0; i < 20; i++) {
		while ((n = write(c, buf, sizeof(buf))) > 0)
			sent += (size_t)n;
		pump(&f, NULL, NULL, 5);
	}
	pc = first_conn(&f);
	assert_int_equal(pc->state, PXC_HELD);
	assert_true(sent > 64 * 1024);
	/* At most two reads of what is left under hold_buffer. */
	assert_true(evbuffer_get_length(bufferevent_get_input(pc->cl)) <= 2 * 16 * 1024);
	assert_true(pc->cl_throttled);
	close(c);
	fix_teardown(&f);
}

/* The hold timeout resets a client held too long. */
static void test_hold_timeout(void **state)
{
	struct fix f;
	struct reset r = {-1, 0};
	struct proxy_stats st;
	int64_t t0;

	(void)state;
	fix_setup(&f, "delay:5s", "hold_timeout = \"200ms\";");
	r.fd = client(&f);
	t0 = now_ms();
	assert_true(pump(&f, was_reset, &r, 2000));
	/* Well before the 5 s boot ends it; timed_out below says which reset it was. */
	assert_true(now_ms() - t0 >= 150 && now_ms() - t0 < 4000);
	proxy_stats(f.p, &st);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.held, 0);
	close(r.fd);
	fix_teardown(&f);
}

/*
 * User mode: an upstream that accepts and closes at once (QEMU's hostfwd
 * before the guest listens) is connected again and gets the bytes again.
 */
static void test_retry_replay(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct rd up = {0}, cl = {0};
	struct proxy_stats st;
	uint64_t retried;
	int c;

	(void)state;
	fix_setup(&f, "delay:20ms", "");
	c = client(&f);
	assert_int_equal(write(c, "request", 7), 7);
	assert_true(pump(&f, accepted, &a, 2000));
	/*
	 * A busy machine can start this test's listener after the 20 ms ready
	 * delay: connects refused before it count as retries too. Count from here.
	 */
	proxy_stats(f.p, &st);
	retried = st.retried;
	close(a.fd); /* the first connection: closed at once, nothing read */
	a.fd = -1;
	assert_true(pump(&f, accepted, &a, 2000));
	up.fd = a.fd;
	pump(&f, NULL, NULL, 20);
	read_all(&f, &up);
	assert_string_equal(up.buf, "request"); /* replayed */
	assert_int_equal(write(a.fd, "answer", 6), 6);
	close(a.fd);
	cl.fd = c;
	assert_true(pump(&f, read_all, &cl, 2000));
	assert_string_equal(cl.buf, "answer");
	proxy_stats(f.p, &st);
	assert_int_equal(st.retried, retried + 1);
	close(c);
	fix_teardown(&f);
}

/* A reload with the same service keeps its listener and its connections. */
static void test_reload_keeps(void **state)
{
	struct fix f;
	struct acc a = {-1};
	struct evconnlistener *ls;
	struct rd cl = {0};
	int c;

	(void)state;
	c = relayed_pair(&f, &a);
	ls = TAILQ_FIRST(&f.p->svcs)->ls[0];
	assert_int_equal(launcher_reload(f.l, f.conf), 0);
	assert_int_equal(proxy_reload(f.p, f.conf), 0);
	assert_ptr_equal(TAILQ_FIRST(&f.p->svcs)->ls[0], ls);
	assert_int_equal(write(a.fd, "still", 5), 5);
	close(a.fd);
	cl.fd = c;
	assert_true(pump(&f, read_all, &cl, 2000));
	assert_string_equal(cl.buf, "still");
	close(c);
	fix_teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkt_parse),    cmocka_unit_test(test_pkt_rst),
	    cmocka_unit_test(test_pkt6),         cmocka_unit_test(test_fw_batch6),
	    cmocka_unit_test(test_fw_batch),     cmocka_unit_test(test_fw_batch_dnat),
	    cmocka_unit_test(test_exec_port),    cmocka_unit_test(test_hold_relay_halfclose),
	    cmocka_unit_test(test_flow_control), cmocka_unit_test(test_bulk_spliced),
	    cmocka_unit_test(test_bulk_reset),   cmocka_unit_test(test_limit),
	    cmocka_unit_test(test_hold_buffer),  cmocka_unit_test(test_hold_timeout),
	    cmocka_unit_test(test_retry_replay), cmocka_unit_test(test_reload_keeps),
	};

	srand((unsigned)getpid());
	log_init(getenv("TEST_VERBOSE") ? 2 : 0);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
