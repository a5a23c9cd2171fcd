/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tracegen_int.h - internals shared by the trace generator's files: the parsed traffic
 * description (templates and mix), flow derivation and the PRNG.  Not a public API.
 */
#ifndef RS_BENCH_TRACEGEN_INT_H
#define RS_BENCH_TRACEGEN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "benchmarks/tracegen.h"

#define RS_FAM_V4	0
#define RS_FAM_V6	1

/* One flow template of traffic.flows, in one address family. */
struct rs_tmpl {
	double weight;
	double cum;			/* cumulative weight within its family */
	uint8_t proto;			/* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP(V6) */
	uint8_t src[16], dst[16];	/* v4 addresses in the first 4 bytes */
	uint8_t src_plen, dst_plen;
	uint16_t sport_lo, sport_hi;
	uint16_t dport_lo, dport_hi;
};

/* The parsed "traffic" object. */
struct rs_traffic {
	struct rs_tmpl *tmpl[2];	/* per family */
	size_t ntmpl[2];
	double wsum[2];
	double p_ipv6, p_icmp, p_arp, p_vlan, p_miss;
};

/* A concrete flow: what the truth file reports and the packets carry. */
struct rs_flow {
	uint8_t fam;
	uint8_t proto;
	uint16_t sport, dport;		/* ICMP: sport is the echo id, dport 0 */
	uint8_t src[16], dst[16];
	uint64_t hash;			/* per-flow randomness (MACs, payload byte, seq) */
};

int rs_traffic_parse(json_t *traffic, const char *name, struct rs_traffic *tr);
void rs_traffic_free(struct rs_traffic *tr);
/* Is addr (family fam) inside the destination prefix of any template? */
bool rs_traffic_dst_covered(const struct rs_traffic *tr, int fam, const uint8_t *addr);

/* splitmix64 step: a good 64-bit mixer for seeding and per-flow hashing. */
static inline uint64_t rs_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Derive flow `id` of family `fam` (a pure function of seed, family and id). */
void rs_flow_derive(const struct rs_traffic *tr, uint64_t seed, int fam, uint32_t id,
		    struct rs_flow *f);

/* Truth computation (truth.c): per-(phase, family, flow id) packet counts. */
struct rs_truth_src {
	const struct rs_traffic *tr;
	uint64_t seed;
	uint32_t flows;
	int phases;
	const uint32_t *counts;		/* [phase][fam][id] */
	uint64_t phase_from[2], phase_to[2];
};
json_t *rs_truth_top(const struct rs_truth_src *src, int phase /* -1: all */, size_t k,
		     uint64_t *flow_packets);

#endif /* RS_BENCH_TRACEGEN_INT_H */
