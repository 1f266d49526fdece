/*
 * The hot path's bytes: a small bounds-checked parser for the common query
 * shape (header, one uncompressed question, at most an OPT record) and the
 * writer that patches a prebuilt answer for a query. Measured: parsing with
 * ldns_wire2pkt and freeing took ~300 ns a query, this parser and the patch
 * together ~30 ns; with ldns on the hot path beckon fell to 0.94x NSD in
 * tests/bench/bench_dns.sh. Every other shape still goes through ldns
 * (query.c), and the fuzz target checks this parser against ldns.
 */
#include <string.h>

#include "query.h"

#define WIRE_FNV_BASIS 2166136261u
#define WIRE_FNV_PRIME 16777619u
#define WIRE_TYPE_OPT 41

static inline uint16_t wire_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void wire_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline uint8_t wire_tolower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* The question name: copied as asked and in lower case, hashed. */
static int wire_name(struct query *q, const uint8_t *p, size_t len, size_t *off)
{
	uint32_t h = WIRE_FNV_BASIS;
	size_t o = *off, n = 0, i;

	for (;;) {
		uint8_t c;

		if (o >= len)
			return 0;
		c = p[o];
		if (c > 63 || n + c + 1 > ZONE_NAME_MAX || len - o < (size_t)c + 1)
			return 0;
		q->k.qname[n] = q->lname[n] = c;
		h = (h ^ c) * WIRE_FNV_PRIME;
		n++, o++;
		if (c == 0)
			break;
		for (i = 0; i < c; i++, n++, o++) {
			uint8_t b = wire_tolower(p[o]);

			q->k.qname[n] = p[o];
			q->lname[n] = b;
			h = (h ^ b) * WIRE_FNV_PRIME;
		}
	}
	q->hash = h;
	q->k.qnamelen = (uint16_t)n;
	*off = o;
	return 1;
}

/* An OPT record with a root owner and well-formed options. */
static int wire_opt(struct query *q, const uint8_t *p, size_t len, size_t *off)
{
	size_t o = *off, rdlen, i = 0;

	if (len - o < QUERY_OPT_LEN || p[o] != 0 || wire_get16(p + o + 1) != WIRE_TYPE_OPT)
		return 0;
	rdlen = wire_get16(p + o + 9);
	if (len - o - QUERY_OPT_LEN < rdlen)
		return 0;
	while (i < rdlen) {
		if (rdlen - i < 4 || rdlen - i - 4 < wire_get16(p + o + QUERY_OPT_LEN + i + 2))
			return 0;
		i += 4 + (size_t)wire_get16(p + o + QUERY_OPT_LEN + i + 2);
	}
	q->k.edns = true;
	q->k.edns_size = wire_get16(p + o + 3);
	q->k.edns_version = p[o + 6];
	q->k.edns_do = (p[o + 7] & 0x80) != 0;
	*off = o + QUERY_OPT_LEN + rdlen;
	return 1;
}

int wire_parse(struct query *q, const uint8_t *p, size_t len)
{
	size_t o = 12;

	q->k.edns = false;
	if (len < 12 || wire_get16(p + 4) != 1 || wire_get16(p + 6) != 0 ||
	    wire_get16(p + 8) != 0 || wire_get16(p + 10) > 1)
		goto no;
	if (!wire_name(q, p, len, &o) || len - o < 4)
		goto no;
	q->k.qtype = wire_get16(p + o);
	q->k.qclass = wire_get16(p + o + 2);
	o += 4;
	if (wire_get16(p + 10) == 1 && !wire_opt(q, p, len, &o))
		goto no;
	if (o != len)
		goto no;
	return 1;
no:
	q->k.qnamelen = 0;
	q->k.edns = false;
	return 0;
}

void wire_lower(struct query *q)
{
	uint32_t h = WIRE_FNV_BASIS;
	size_t i;

	for (i = 0; i < q->k.qnamelen; i++) {
		q->lname[i] = wire_tolower(q->k.qname[i]);
		h = (h ^ q->lname[i]) * WIRE_FNV_PRIME;
	}
	q->hash = h;
}

size_t query_limit(const struct query_key *k)
{
	if (k->tcp)
		return QUERY_TCP_MAX;
	if (!k->edns || k->edns_size <= QUERY_UDP_MIN)
		return QUERY_UDP_MIN;
	return k->edns_size < QUERY_EDNS_SIZE ? k->edns_size : QUERY_EDNS_SIZE;
}

static void wire_opt_out(uint8_t *o, const struct query_key *k, uint8_t ext_rcode)
{
	o[0] = 0;
	wire_put16(o + 1, WIRE_TYPE_OPT);
	wire_put16(o + 3, QUERY_EDNS_SIZE);
	o[5] = ext_rcode;
	o[6] = 0; /* version */
	o[7] = k->edns_do ? 0x80 : 0;
	o[8] = 0;
	wire_put16(o + 9, 0);
}

/*
 * The answer for q->k from A. When it does not fit the client's limit, the
 * additional section goes first; when that is not enough, only the header
 * and question go out, with TC.
 */
void wire_emit(struct query *q, const struct zone_answer *a)
{
	const struct query_key *k = &q->k;
	size_t qlen = k->qnamelen ? (size_t)k->qnamelen + 4 : 0;
	size_t opt = k->edns ? QUERY_OPT_LEN : 0, limit = query_limit(k), n = a->restlen;
	uint16_t an = wire_get16(a->hdr + 6), ns = wire_get16(a->hdr + 8);
	uint16_t ar = wire_get16(a->hdr + 10);
	uint8_t *o = q->out, tc = 0;

	if (limit > q->outcap)
		limit = q->outcap;
	if (12 + qlen + n + opt > limit) {
		n = a->rest_noad, ar = 0;
		if (12 + qlen + n + opt > limit)
			n = 0, an = ns = 0, tc = 0x02;
	}
	wire_put16(o, k->id);
	o[2] = 0x80 | (k->flags1 & 0x79) | (a->hdr[2] & 0x04) | tc; /* QR, opcode, AA, TC, RD */
	o[3] = (k->flags2 & 0x10) | (a->hdr[3] & 0x0f);             /* CD, rcode */
	wire_put16(o + 4, qlen ? 1 : 0);
	wire_put16(o + 6, an);
	wire_put16(o + 8, ns);
	wire_put16(o + 10, (uint16_t)(ar + (opt ? 1 : 0)));
	if (qlen) {
		memcpy(o + 12, k->qname, k->qnamelen);
		wire_put16(o + 12 + k->qnamelen, k->qtype);
		wire_put16(o + 14 + k->qnamelen, k->qclass);
	}
	if (n)
		memcpy(o + 12 + qlen, a->rest, n);
	if (opt)
		wire_opt_out(o + 12 + qlen + n, k, a->ext_rcode);
	q->outlen = 12 + qlen + n + opt;
}

/* The end of the name at OFF in Q's answer (a pointer ends it), 0 when it runs out. */
static size_t wire_skip_name(const struct query *q, size_t off)
{
	while (off < q->outlen) {
		uint8_t l = q->out[off];

		if ((l & 0xc0) == 0xc0)
			return off + 2;
		if (l == 0)
			return off + 1;
		off += (size_t)l + 1;
	}
	return 0;
}

bool wire_patch_a(struct query *q, struct in_addr from, struct in_addr to)
{
	return wire_patch_a_at(q, 0, from, to);
}

bool wire_patch_a_at(struct query *q, unsigned i, struct in_addr from, struct in_addr to)
{
	size_t off = 12 + (size_t)q->k.qnamelen + 4;

	if (q->k.qtype != 1 || q->outlen < 12 || wire_get16(q->out + 6) <= i)
		return false;
	/* Past I records: a name, 10 bytes of TYPE to RDLENGTH, the data. */
	for (unsigned r = 0; r < i; r++) {
		if ((off = wire_skip_name(q, off)) == 0 || off + 10 > q->outlen)
			return false;
		off += 10 + wire_get16(q->out + off + 8);
	}
	if ((off = wire_skip_name(q, off)) == 0 || off + 14 > q->outlen)
		return false;
	/* TYPE A, CLASS, TTL, RDLENGTH 4, then the address. */
	if (wire_get16(q->out + off) != 1 || wire_get16(q->out + off + 8) != 4 ||
	    memcmp(q->out + off + 10, &from, 4) != 0)
		return false;
	memcpy(q->out + off + 10, &to, 4);
	return true;
}
