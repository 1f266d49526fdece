/*
 * The zone's tables, rebuilt from the config on every load: one entry per
 * name in the zone (the apex, service names, NS names with glue, and the
 * empty non-terminals between them), each with its answers prebuilt in wire
 * form by ldns. Answering is then a lookup and a patch (see query.c).
 */
#ifndef BECKON_RESOLVER_ZONE_H
#define BECKON_RESOLVER_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "conf.h"

#define ZONE_NAME_MAX 255

/*
 * A response without its question: the 12-byte header (AA, rcode, counts)
 * and what follows the question. REST_NOAD is the length of REST without
 * the additional section, so glue can be dropped to fit a small UDP limit.
 */
struct zone_answer {
	uint8_t hdr[12];
	const uint8_t *rest;
	uint16_t restlen;
	uint16_t rest_noad;
	uint8_t ext_rcode; /* upper bits of an extended rcode (BADVERS), for the OPT record */
};

/* The answers kept per name, by question type. */
enum zone_qkind { ZA_A, ZA_NS, ZA_SOA, ZA_ANY, ZA_AAAA, ZA_OTHER, ZA_N };

struct zone_svc {
	char *name; /* the service, for launcher_find (a pattern's: launcher_pattern_get) */
	struct in_addr addr;
	struct in6_addr addr6; /* its AAAA, when has_addr6 */
	bool has_addr6;
	bool pattern; /* dns = ( "*.SUFFIX" ): ADDR is 0.0.0.0, the instance's goes in its place */
	unsigned replicas; /* replicas.max: its names have A answers of 2..replicas records too */
};

/*
 * A pattern service's names: one label under SUFFIX. Its answers are
 * prebuilt per label length (the compression pointers after the question
 * depend on it), the A record's address 0.0.0.0 until patched, and an ANY
 * answer without it.
 */
#define ZONE_LABEL_MAX 63
struct zone_pattern {
	uint8_t suffix[ZONE_NAME_MAX]; /* lower-case wire form */
	size_t len;
	int svc;                                      /* index into zone.svcs */
	struct zone_answer ans[ZONE_LABEL_MAX][ZA_N]; /* by label length - 1, then kind */
};

struct zone_name {
	uint8_t name[ZONE_NAME_MAX]; /* lower-case wire form */
	uint8_t len;
	uint32_t hash;
	int svc;             /* index into zone.svcs, -1 when none */
	bool glue;           /* an NS name with an address */
	bool pattern;        /* a pattern's template (zone_pattern.c): no A in its ANY answer */
	struct in_addr addr; /* the glue address */
	struct zone_answer ans[ZA_N];
	/* A service with replicas: A answers of k = 2..nmulti+1 records (0.0.0.1 .. 0.0.0.k). */
	struct zone_answer *multi;
	uint8_t nmulti;
	uint8_t acount; /* while building: A records in the answer; 0 or 1: one */
};

struct zone {
	uint8_t apex[ZONE_NAME_MAX]; /* lower-case wire form */
	size_t apexlen;
	uint32_t ttl, serial;
	enum conf_hold hold;
	bool has_forward;
	struct conf_addr forward;

	struct zone_svc *svcs;
	size_t nsvcs;
	struct zone_name *names;
	size_t nnames;
	uint32_t *slots; /* open addressing: index + 1, 0 when free */
	size_t mask;
	struct zone_pattern *patterns;
	size_t npatterns;

	struct zone_answer nxdomain; /* REST is the uncompressed SOA */
	uint8_t *soa_wire;
};

/* Build the tables for CONF. NULL on failure (logged). Keeps no pointer into CONF. */
struct zone *zone_new(const struct conf *conf);
void zone_free(struct zone *z);

/* Wire form of a config name, lower case. -1 when it is not a valid name. */
int zone_wire(const char *text, uint8_t *out, size_t *len);

/* The hash of a lower-case wire name, as zone_lookup wants it. */
uint32_t zone_hash(const uint8_t *name, size_t len);

/* The entry for a lower-case wire name, NULL when there is none. */
const struct zone_name *zone_lookup(const struct zone *z, const uint8_t *name, size_t len,
                                    uint32_t hash);

/* True when a lower-case wire name is the apex or below it. */
bool zone_contains(const struct zone *z, const uint8_t *name, size_t len);

/* Which prebuilt answer serves a question type. */
enum zone_qkind zone_qkind(uint16_t qtype);

/* Prebuild the answers of one entry (zone_build.c). -1 on failure. */
int zone_build_answers(struct zone *z, struct zone_name *n, const struct conf *conf);

/* Prebuild N's A answers of several records when its service has replicas. -1 on failure. */
int zone_build_multi(struct zone *z, struct zone_name *n, const struct conf *conf);

/* Prebuild the NXDOMAIN template (zone_build.c). -1 on failure. */
int zone_build_nxdomain(struct zone *z, const struct conf *conf);

/* zone_pattern.c: the pattern services' tables, and their empty non-terminals. -1 on failure. */
int zone_add_patterns(struct zone *z, const struct conf *conf);
void zone_free_patterns(struct zone *z);
/*
 * The pattern a lower-case wire name falls under (one label of letters,
 * digits and hyphens, then a pattern's suffix): its entry, the label's
 * length in *LABEL_LEN. NULL when none (a name of the tables wins: look
 * there first).
 */
const struct zone_pattern *zone_pattern_match(const struct zone *z, const uint8_t *name, size_t len,
                                              size_t *label_len);

/* Free what zone_build_answers allocated. */
void zone_answer_free(struct zone_answer *a);

#endif
