/*
 * The proxy's listening sockets: one per service address and port, and one
 * more per port on its address6 (IPv6 clients, relayed to the IPv4 guest
 * like any other).
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "internal.h"
#include "log.h"

#define LISTEN_BACKLOG 1024

static void accept_cb(struct evconnlistener *ls, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
	struct pxsvc *svc = arg;

	for (size_t i = 0; i < svc->nports; i++)
		if (svc->ls[i] == ls || svc->ls6[i] == ls) {
			pxconn_accept(svc, svc->ports[i], fd, sa, salen, svc->address);
			return;
		}
	close(fd);
}

static void accept_error_cb(struct evconnlistener *ls, void *arg)
{
	struct pxsvc *svc = arg;

	(void)ls;
	/* EMFILE and the like: the listener carries on. */
	log_warn("proxy: %s: accept", svc->name);
}

/* SVC's address (V6: its address6) and PORT as a socket address, and as text. */
static socklen_t listen_addr(const struct pxsvc *svc, bool v6, uint16_t port,
                             struct sockaddr_storage *ss, char *text, size_t len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (v6) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = svc->address6;
		sin6->sin6_port = htons(port);
		inet_ntop(AF_INET6, &svc->address6, text, (socklen_t)len);
		return sizeof(*sin6);
	}
	sin->sin_family = AF_INET;
	sin->sin_addr = svc->address;
	sin->sin_port = htons(port);
	inet_ntop(AF_INET, &svc->address, text, (socklen_t)len);
	return sizeof(*sin);
}

static struct evconnlistener *listen_one(struct pxsvc *svc, bool v6, uint16_t port)
{
	struct sockaddr_storage ss;
	struct evconnlistener *ls;
	char addr[INET6_ADDRSTRLEN];
	socklen_t sslen = listen_addr(svc, v6, port, &ss, addr, sizeof(addr));
	int fd, one = 1;

	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (v6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1) ||
	    bind(fd, (struct sockaddr *)&ss, sslen) == -1 || listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	pxconn_nodelay(fd);
	ls = evconnlistener_new(svc->p->base, accept_cb, svc,
	                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (ls == NULL)
		goto fail;
	evconnlistener_set_error_cb(ls, accept_error_cb);
	log_debug("proxy: %s: listening on %s%s%s:%u", svc->name, v6 ? "[" : "", addr,
	          v6 ? "]" : "", port);
	return ls;
fail:
	log_warn("proxy: %s: listen on %s%s%s:%u", svc->name, v6 ? "[" : "", addr, v6 ? "]" : "",
	         port);
	if (fd != -1)
		close(fd);
	return NULL;
}

/* Whether O listens (or would) where SVC does: the same address (V6: address6). */
static bool same_addr(const struct pxsvc *o, const struct pxsvc *svc, bool v6)
{
	if (!v6)
		return o->address.s_addr == svc->address.s_addr;
	return o->has_address6 && svc->has_address6 &&
	       memcmp(&o->address6, &svc->address6, sizeof(o->address6)) == 0;
}

/* SVC's listeners of one family. */
static struct evconnlistener **listeners(struct pxsvc *svc, bool v6)
{
	return v6 ? svc->ls6 : svc->ls;
}

/* The service in OLD listening on SVC's address (V6: address6) and PORT, and where. */
static struct pxsvc *find_listener(struct pxsvc *svc, struct pxsvc_list *old, bool v6,
                                   uint16_t port, size_t *idx)
{
	struct pxsvc *o;

	TAILQ_FOREACH(o, old, entry)
	{
		if (!same_addr(o, svc, v6))
			continue;
		for (size_t j = 0; j < o->nports; j++)
			if (o->ports[j] == port && listeners(o, v6)[j] != NULL) {
				*idx = j;
				return o;
			}
	}
	return NULL;
}

int listen_open(struct pxsvc *svc, struct pxsvc_list *old)
{
	size_t j;

	for (int v6 = 0; v6 <= (int)svc->has_address6; v6++)
		for (size_t i = 0; i < svc->nports; i++) {
			if (find_listener(svc, old, v6, svc->ports[i], &j) != NULL)
				continue; /* taken over once the reload commits */
			if ((listeners(svc, v6)[i] = listen_one(svc, v6, svc->ports[i])) == NULL)
				return -1;
		}
	return 0;
}

void listen_adopt(struct pxsvc *svc, struct pxsvc_list *old)
{
	struct evconnlistener **ls;
	struct pxsvc *o;
	size_t j;

	for (int v6 = 0; v6 <= (int)svc->has_address6; v6++)
		for (size_t i = 0; i < svc->nports; i++) {
			ls = listeners(svc, v6);
			if (ls[i] != NULL ||
			    (o = find_listener(svc, old, v6, svc->ports[i], &j)) == NULL)
				continue;
			ls[i] = listeners(o, v6)[j];
			listeners(o, v6)[j] = NULL;
			evconnlistener_set_cb(ls[i], accept_cb, svc);
		}
}

void listen_close(struct pxsvc *svc)
{
	for (size_t i = 0; i < CONF_MAX_PORTS; i++) {
		if (svc->ls[i] != NULL)
			evconnlistener_free(svc->ls[i]);
		if (svc->ls6[i] != NULL)
			evconnlistener_free(svc->ls6[i]);
		svc->ls[i] = svc->ls6[i] = NULL;
	}
}
