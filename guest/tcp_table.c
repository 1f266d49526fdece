/*
 * tcp_table.c: the connection blocks, found by a hash of the peer, kept on a
 * dense list of live ones, and handed out from a free stack.  Nothing here
 * walks all TCP_PCBS blocks per packet: under the emulating KVM here each
 * step of such a walk is a microsecond, and a walk per packet starves the
 * guest when clients probe it every few milliseconds.
 */
#include "tcp_int.h"

#define TCP_HASH 64

static struct tcp_pcb tcp_pcbs[TCP_PCBS];
static struct tcp_pcb *tcp_live[TCP_PCBS];
static unsigned tcp_nlive;
static uint8_t tcp_bucket[TCP_HASH]; /* first block in the chain, as index + 1 */
static uint8_t tcp_free_stack[TCP_PCBS];
static unsigned tcp_nfree;
static unsigned tcp_fresh; /* blocks never used yet: [tcp_fresh, TCP_PCBS) */
static uint64_t tcp_next_due;

static unsigned tcp_hash(uint32_t ip, uint16_t port)
{
	uint32_t h = ip ^ (ip >> 16) ^ port ^ ((uint32_t)port << 5);

	return (h ^ (h >> 6)) & (TCP_HASH - 1);
}

static uint8_t tcp_index(const struct tcp_pcb *pcb)
{
	return (uint8_t)(pcb - tcp_pcbs);
}

struct tcp_pcb *tcp_table_find(uint32_t ip, uint16_t port)
{
	uint8_t i = tcp_bucket[tcp_hash(ip, port)];

	while (i) {
		struct tcp_pcb *pcb = &tcp_pcbs[i - 1];
		if (pcb->peer_ip == ip && pcb->peer_port == port)
			return pcb;
		i = pcb->hnext;
	}
	return NULL;
}

/* The oldest TIME_WAIT block, else the oldest half-open one: a full table's victims. */
static struct tcp_pcb *tcp_table_victim(void)
{
	struct tcp_pcb *tw = NULL, *syn = NULL, *p;
	unsigned i;

	for (i = 0; i < tcp_nlive; i++) {
		p = tcp_live[i];
		if (p->state == TIME_WAIT && (!tw || p->born < tw->born))
			tw = p;
		if (p->state == SYN_RCVD && (!syn || p->born < syn->born))
			syn = p;
	}
	return tw ? tw : syn;
}

struct tcp_pcb *tcp_table_alloc(uint32_t ip, uint16_t port)
{
	struct tcp_pcb *pcb;
	unsigned h;

	if (!tcp_nfree && tcp_fresh == TCP_PCBS) {
		if (!(pcb = tcp_table_victim()))
			return NULL;
		tcp_table_free(pcb); /* onto the free stack, taken back just below */
	}
	if (tcp_nfree)
		pcb = &tcp_pcbs[tcp_free_stack[--tcp_nfree]];
	else
		pcb = &tcp_pcbs[tcp_fresh++];
	memset(pcb, 0, offsetof(struct tcp_pcb, rx));
	pcb->peer_ip = ip;
	pcb->peer_port = port;
	h = tcp_hash(ip, port);
	pcb->hnext = tcp_bucket[h];
	tcp_bucket[h] = (uint8_t)(tcp_index(pcb) + 1);
	pcb->slot = (uint8_t)tcp_nlive;
	tcp_live[tcp_nlive++] = pcb;
	return pcb;
}

void tcp_table_free(struct tcp_pcb *pcb)
{
	uint8_t *link = &tcp_bucket[tcp_hash(pcb->peer_ip, pcb->peer_port)];
	uint8_t me = (uint8_t)(tcp_index(pcb) + 1);

	if (pcb->state == CLOSED)
		return;
	while (*link && *link != me)
		link = &tcp_pcbs[*link - 1].hnext;
	if (*link)
		*link = pcb->hnext;
	tcp_live[pcb->slot] = tcp_live[--tcp_nlive];
	tcp_live[pcb->slot]->slot = pcb->slot;
	tcp_free_stack[tcp_nfree++] = tcp_index(pcb);
	pcb->state = CLOSED;
}

unsigned tcp_table_count(void)
{
	return tcp_nlive;
}

struct tcp_pcb *tcp_table_at(unsigned i)
{
	return tcp_live[i];
}

static void tcp_table_note(uint64_t due)
{
	if (due && (!tcp_next_due || due < tcp_next_due))
		tcp_next_due = due;
}

void tcp_table_note_due(const struct tcp_pcb *pcb)
{
	if (pcb->state == CLOSED)
		return;
	tcp_table_note(pcb->rto_due);
	tcp_table_note(pcb->idle_due);
}

uint64_t tcp_table_next_due(void)
{
	return tcp_next_due;
}

void tcp_table_set_next_due(uint64_t due)
{
	tcp_next_due = due;
}
