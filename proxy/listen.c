/* The proxy's listening sockets: one per service address and port. */
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
		if (svc->ls[i] == ls) {
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

static struct evconnlistener *listen_one(struct pxsvc *svc, uint16_t port)
{
	struct sockaddr_in sa = {
	    .sin_family = AF_INET, .sin_addr = svc->address, .sin_port = htons(port)};
	struct evconnlistener *ls;
	char addr[INET_ADDRSTRLEN];
	int fd, one = 1;

	inet_ntop(AF_INET, &svc->address, addr, sizeof(addr));
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || listen(fd, LISTEN_BACKLOG) == -1)
		goto fail;
	pxconn_nodelay(fd);
	ls = evconnlistener_new(svc->p->base, accept_cb, svc,
	                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (ls == NULL)
		goto fail;
	evconnlistener_set_error_cb(ls, accept_error_cb);
	log_debug("proxy: %s: listening on %s:%u", svc->name, addr, port);
	return ls;
fail:
	log_warn("proxy: %s: listen on %s:%u", svc->name, addr, port);
	if (fd != -1)
		close(fd);
	return NULL;
}

/* The service in OLD listening on SVC's address and PORT, and where. */
static struct pxsvc *find_listener(struct pxsvc *svc, struct pxsvc_list *old, uint16_t port,
                                   size_t *idx)
{
	struct pxsvc *o;

	TAILQ_FOREACH(o, old, entry)
	{
		if (o->address.s_addr != svc->address.s_addr)
			continue;
		for (size_t j = 0; j < o->nports; j++)
			if (o->ports[j] == port && o->ls[j] != NULL) {
				*idx = j;
				return o;
			}
	}
	return NULL;
}

int listen_open(struct pxsvc *svc, struct pxsvc_list *old)
{
	size_t j;

	for (size_t i = 0; i < svc->nports; i++) {
		if (find_listener(svc, old, svc->ports[i], &j) != NULL)
			continue; /* taken over once the reload commits */
		if ((svc->ls[i] = listen_one(svc, svc->ports[i])) == NULL)
			return -1;
	}
	return 0;
}

void listen_adopt(struct pxsvc *svc, struct pxsvc_list *old)
{
	struct pxsvc *o;
	size_t j;

	for (size_t i = 0; i < svc->nports; i++) {
		if (svc->ls[i] != NULL || (o = find_listener(svc, old, svc->ports[i], &j)) == NULL)
			continue;
		svc->ls[i] = o->ls[j];
		o->ls[j] = NULL;
		evconnlistener_set_cb(svc->ls[i], accept_cb, svc);
	}
}

void listen_close(struct pxsvc *svc)
{
	for (size_t i = 0; i < CONF_MAX_PORTS; i++) {
		if (svc->ls[i] != NULL)
			evconnlistener_free(svc->ls[i]);
		svc->ls[i] = NULL;
	}
}
