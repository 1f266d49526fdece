/* http.h: the HTTP/1.1 server on top of tcp.c. */
#ifndef GUEST_HTTP_H
#define GUEST_HTTP_H

struct tcp_pcb;

/* New data, freed send space or the peer's FIN on this connection: serve what we can. */
void http_event(struct tcp_pcb *pcb);

#endif
