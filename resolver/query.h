/*
 * Query processing without sockets: bytes in, answer bytes out. Used by the
 * UDP and TCP paths, the unit tests and the fuzz target.
 *
 * A query for a name in the zone is answered from the prebuilt answers of
 * zone.h: the header is patched (ID, RD, CD, TC), the question copied back
 * as asked, an OPT record appended when the query had one. A small
 * bounds-checked parser takes the common shape (one question, at most an
 * OPT record); anything else goes through ldns_wire2pkt.
 */
#ifndef BECKON_RESOLVER_QUERY_H
#define BECKON_RESOLVER_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zone.h"

#define QUERY_UDP_MIN 512
#define QUERY_EDNS_SIZE 1232 /* what we advertise and the most we send over UDP */
#define QUERY_TCP_MAX 65535
#define QUERY_OPT_LEN 11 /* an OPT record without options */

enum query_state {
	QUERY_DROP,    /* nothing to send */
	QUERY_ANSWER,  /* q->out holds the answer */
	QUERY_WAKE,    /* q->out holds an A answer for q->svc, which is to be woken first */
	QUERY_FORWARD, /* out of the zone and a forwarder is set: relay the packet */
};

/* What is kept of a query to answer it later (pending answers). */
struct query_key {
	uint16_t id;
	uint8_t flags1, flags2; /* header bytes 2 and 3 as received */
	uint16_t qtype, qclass;
	uint8_t qname[ZONE_NAME_MAX]; /* wire form, as asked */
	uint16_t qnamelen;            /* 0 when there is no question */
	bool tcp;
	bool edns, edns_do;
	uint8_t edns_version;
	uint16_t edns_size;
};

struct query {
	struct query_key k;
	uint8_t lname[ZONE_NAME_MAX]; /* qname in lower case */
	uint32_t hash;
	const struct zone_svc *svc;     /* the service the name belongs to, or NULL */
	char label[ZONE_LABEL_MAX + 1]; /* svc a pattern: the name's first label, else "" */
	const struct zone_name *zn;     /* the name's entry in the tables, or NULL */
	uint8_t *out;                   /* answer bytes, set up by the caller */
	size_t outcap, outlen;
};

/*
 * Process one query of LEN bytes received over UDP or TCP. The answer is
 * written to q->out (q->outcap bytes, at least QUERY_EDNS_SIZE for UDP and
 * QUERY_TCP_MAX for TCP). q->svc is set for names that belong to a service
 * (their activity counts, even when the state is QUERY_ANSWER); for a name
 * under a pattern, q->label too, and the answer is the pattern's: whether
 * the label exists (else NXDOMAIN) and its address are for the caller.
 */
enum query_state query_process(struct query *q, const struct zone *z, const uint8_t *pkt,
                               size_t len, bool tcp);

/* Answer again from q->k alone (a pending query, possibly after a reload). */
enum query_state query_answer(struct query *q, const struct zone *z);

/* Replace q->out with an answer carrying RCODE and the question, if any. */
void query_error(struct query *q, uint8_t rcode);

/*
 * Replace q->out with the header and question alone, TC set: the client is
 * to ask again over TCP. AA and the rcode come from HDR (an answer's
 * header, which may be q->out itself), none when HDR is NULL.
 */
void query_tc(struct query *q, const uint8_t *hdr);

/* The UDP size limit of the client, or QUERY_TCP_MAX over TCP. */
size_t query_limit(const struct query_key *k);

/* The bounds-checked fast parser (wire.c), for the fuzz target: 1 parsed, 0 not its shape. */
int wire_parse(struct query *q, const uint8_t *pkt, size_t len);

/* Write answer A for q->k into q->out (wire.c). */
void wire_emit(struct query *q, const struct zone_answer *a);
/*
 * In the answer wire_emit wrote for an A question: the first answer
 * record's address FROM becomes TO (a guest's address on its host). false
 * when there is no such record.
 */
bool wire_patch_a(struct query *q, struct in_addr from, struct in_addr to);

/* The same for the I-th answer record (0 is the first). */
bool wire_patch_a_at(struct query *q, unsigned i, struct in_addr from, struct in_addr to);

/* Set q->lname and q->hash from q->k.qname (wire.c). */
void wire_lower(struct query *q);

#endif
