/*
 * hold "proxy" in bridge mode. The guests' addresses are not the host's, so
 * the proxy cannot listen on them: a nat chain REDIRECTs connections to a
 * guest that is not ready (from PREROUTING for routed clients, OUTPUT for
 * local ones) to one port of the proxy's, which finds the guest again with
 * SO_ORIGINAL_DST. Once the guest is ready its rule goes, and new
 * connections reach it directly; those redirected before stay relayed
 * (conntrack keeps their translation). The proxy's own connections to
 * guests carry LAUNCHER_FWMARK and are not redirected.
 * IPv6 clients to a service's address6 go the same way through an
 * ip6tables chain, to a listener of their own, and that rule stays while
 * the guest is ready too: the guest (IPv4 only) is reached through the
 * proxy alone.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "internal.h"
#include "log.h"

#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80 /* linux/netfilter_ipv4.h, which clashes with netinet/in.h */
#endif

static void reset_fd(int fd)
{
	struct linger lg = {1, 0};

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/*
 * Where the client of FD meant to go (its port, and in DST4 its IPv4
 * address: a pattern's instance is found by it), and the service there.
 * NULL: not redirected by us.
 */
static struct pxsvc *original_dst(struct proxy *p, int fd, bool v6, uint16_t *port,
                                  struct in_addr *dst4)
{
	struct pxsvc *svc;
	struct sockaddr_in dst;
	struct sockaddr_in6 dst6;
	socklen_t len = sizeof(dst), len6 = sizeof(dst6);

	if (v6) {
		if (getsockopt(fd, SOL_IPV6, SO_ORIGINAL_DST, &dst6, &len6) == -1)
			return NULL;
		*port = ntohs(dst6.sin6_port);
		if ((svc = proxy_svc_by_addr6(p, &dst6.sin6_addr)) != NULL)
			*dst4 = svc->address;
		return svc;
	}
	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == -1)
		return NULL;
	*port = ntohs(dst.sin_port);
	*dst4 = dst.sin_addr;
	return proxy_svc_by_addr(p, dst.sin_addr);
}

static void accept_cb(struct evconnlistener *ls, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct proxy *p = arg;
	struct pxsvc *svc;
	struct in_addr dst4 = {0};
	uint16_t port = 0;

	(void)ls;
	if ((svc = original_dst(p, fd, sa->sa_family == AF_INET6, &port, &dst4)) == NULL) {
		reset_fd(fd); /* not redirected here by us */
		return;
	}
	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ports[i] == port) {
			pxconn_accept(svc, svc->ports[i], fd, sa, salen, dst4);
			return;
		}
	reset_fd(fd);
}

/* Any address: REDIRECT in PREROUTING goes to the incoming link's address. */
static int redirect_listen(struct proxy *p, uint16_t *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	socklen_t len = sizeof(sa);

	p->rd_ls = evconnlistener_new_bind(p->base, accept_cb, p,
	                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 1024,
	                                   (struct sockaddr *)&sa, sizeof(sa));
	if (p->rd_ls == NULL ||
	    getsockname(evconnlistener_get_fd(p->rd_ls), (struct sockaddr *)&sa, &len) == -1) {
		log_warn("proxy: listening for redirected connections");
		return -1;
	}
	pxconn_nodelay(evconnlistener_get_fd(p->rd_ls));
	*port = ntohs(sa.sin_port);
	return 0;
}

/* The same on [::] (IPv6 only) for clients of address6. -1: none (logged). */
static int redirect_listen6(struct proxy *p, uint16_t *port)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	socklen_t len = sizeof(sa);
	int fd, one = 1;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, 1024) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) == -1 ||
	    (p->rd_ls6 = evconnlistener_new(p->base, accept_cb, p,
	                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
	                                    fd)) == NULL) {
		log_warn("proxy: listening for redirected IPv6 connections");
		if (fd != -1)
			close(fd);
		return -1;
	}
	pxconn_nodelay(fd);
	*port = ntohs(sa.sin6_port);
	return 0;
}

/* IPv6 clients of address6: a listener and an ip6tables chain, or (warned) none. */
static void redirect_start6(struct proxy *p, const char *chain)
{
	uint16_t port;

	if (redirect_listen6(p, &port) == -1 ||
	    (p->fw6 = fw_new_family(p->base, FW_REDIRECT, chain, port, true)) == NULL)
		log_warnx("proxy: IPv6 connections (to address6) will not be proxied");
}

int redirect_start(struct proxy *p, const char *bridge)
{
	char chain[32];
	uint16_t port;

	snprintf(chain, sizeof(chain), "BECKON-PROXY-%s", bridge);
	if (redirect_listen(p, &port) == -1 ||
	    (p->fw = fw_new(p->base, FW_REDIRECT, chain, port)) == NULL) {
		redirect_stop(p);
		return -1;
	}
	redirect_start6(p, chain);
	proxy_rules(p, true);
	log_info("proxy: redirecting connections to guests that are not ready to port %u", port);
	return 0;
}

void redirect_stop(struct proxy *p)
{
	fw_free(p->fw);
	p->fw = NULL;
	fw_free(p->fw6);
	p->fw6 = NULL;
	if (p->rd_ls != NULL)
		evconnlistener_free(p->rd_ls);
	p->rd_ls = NULL;
	if (p->rd_ls6 != NULL)
		evconnlistener_free(p->rd_ls6);
	p->rd_ls6 = NULL;
}
