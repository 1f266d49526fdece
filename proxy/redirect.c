/*
 * hold "proxy" in bridge mode. The guests' addresses are not the host's, so
 * the proxy cannot listen on them: a nat chain REDIRECTs connections to a
 * guest that is not ready (from PREROUTING for routed clients, OUTPUT for
 * local ones) to one port of the proxy's, which finds the guest again with
 * SO_ORIGINAL_DST. Once the guest is ready its rule goes, and new
 * connections reach it directly; those redirected before stay relayed
 * (conntrack keeps their translation). The proxy's own connections to
 * guests carry LAUNCHER_FWMARK and are not redirected.
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

static void accept_cb(struct evconnlistener *ls, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct proxy *p = arg;
	struct sockaddr_in dst;
	socklen_t len = sizeof(dst);
	struct pxsvc *svc;

	(void)ls;
	if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &dst, &len) == -1 ||
	    (svc = proxy_svc_by_addr(p, dst.sin_addr)) == NULL) {
		reset_fd(fd); /* not redirected here by us */
		return;
	}
	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ports[i] == ntohs(dst.sin_port)) {
			pxconn_accept(svc, svc->ports[i], fd, sa, salen, dst.sin_addr);
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
	proxy_rules(p, true);
	log_info("proxy: redirecting connections to guests that are not ready to port %u", port);
	return 0;
}

void redirect_stop(struct proxy *p)
{
	fw_free(p->fw);
	p->fw = NULL;
	if (p->rd_ls != NULL)
		evconnlistener_free(p->rd_ls);
	p->rd_ls = NULL;
}
