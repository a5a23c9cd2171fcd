/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tracegen.h - synthetic packet traces for replay and benchmarks (docs/traces.md).
 *
 * A trace is built from the "traffic" section of a scenario (docs/scenario.md): flow
 * templates chosen by weight, and a mix of other packet kinds.  Flow popularity follows a
 * profile (Zipf over a few flows, Zipf over many, uniform, or a hot set that changes halfway).
 * Everything is a pure function of the traffic description, the options and the seed: the same
 * seed gives a byte-identical pcap.
 */
#ifndef RS_BENCH_TRACEGEN_H
#define RS_BENCH_TRACEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_t json_t;

enum rs_trace_profile {
	RS_TRACE_HIGH,		/* Zipf s=1.2 over 1k flows: a few hot flows */
	RS_TRACE_LOW,		/* Zipf s=0.7 over 100k flows: long tail */
	RS_TRACE_NONE,		/* uniform over 1M flows */
	RS_TRACE_SHIFT,		/* like high, the hot set changes halfway */
	RS_TRACE_PROFILE_MAX,
};

/* "high" -> RS_TRACE_HIGH ...; -EINVAL for an unknown name. */
int rs_trace_profile_parse(const char *name, enum rs_trace_profile *profile);
const char *rs_trace_profile_name(enum rs_trace_profile profile);

/* Called every `progress_every` packets (and at the end) while writing a pcap. */
typedef void (*rs_trace_progress_fn)(uint64_t done, uint64_t total, void *ctx);

struct rs_tracegen_opts {
	size_t sz;
	enum rs_trace_profile profile;
	uint64_t packets;		/* trace length (required, > 0) */
	uint64_t seed;
	uint32_t flows;			/* number of flows; 0: the profile's default */
	double zipf_s;			/* Zipf exponent; 0: the profile's default (none: uniform) */
	const char *name;		/* for messages ("scenario.json"); may be NULL */
	rs_trace_progress_fn progress;
	void *progress_ctx;
	uint64_t progress_every;	/* 0: no progress calls */
};

/* Packet kinds, in the order of the "mix" shares (plus the template flows). */
enum rs_trace_kind {
	RS_TRACE_KIND_FLOW,		/* TCP/UDP/ICMP packet of a template flow */
	RS_TRACE_KIND_ICMP,		/* ICMP/ICMPv6 echo request to a template destination */
	RS_TRACE_KIND_ARP,		/* ARP request */
	RS_TRACE_KIND_MISS,		/* TCP/UDP to a destination outside every template */
	RS_TRACE_KIND_MAX,
};

/* What the generator did, for tests and the truth file. */
struct rs_tracegen_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t kind[RS_TRACE_KIND_MAX];
	uint64_t ipv6;			/* IPv6 packets of any kind */
	uint64_t vlan;			/* 802.1Q tagged packets */
};

struct rs_tracegen;

/*
 * Prepare a generator for the traffic object `traffic` (borrowed; it must stay alive until
 * rs_tracegen_free).  Errors: -EINVAL with a message naming the field for a malformed
 * description, -ENOMEM.
 */
int rs_tracegen_new(json_t *traffic, const struct rs_tracegen_opts *opts,
		    struct rs_tracegen **gen);
void rs_tracegen_free(struct rs_tracegen *gen);

/* Largest frame the generator makes (1500-byte IP packet, Ethernet and 802.1Q headers). */
#define RS_TRACE_MAX_FRAME	1518
/* Smallest frame (Ethernet minimum without FCS). */
#define RS_TRACE_MIN_FRAME	60

/*
 * Produce the next packet into buf (at least RS_TRACE_MAX_FRAME bytes).  Returns its length,
 * 0 when the trace is complete.  *ts_ns gets its synthetic timestamp (ns since the epoch).
 */
int rs_tracegen_next(struct rs_tracegen *gen, uint8_t *buf, uint64_t *ts_ns);

/* Generate the whole (remaining) trace into a pcap file (DLT_EN10MB, microsecond stamps). */
int rs_tracegen_write_pcap(struct rs_tracegen *gen, const char *path);

const struct rs_tracegen_stats *rs_tracegen_stats(const struct rs_tracegen *gen);

/*
 * The true top-k template flows by packet count over the packets generated so far, as JSON:
 * { "packets", "flow_packets", "profile", "seed", "flows", "zipf_s", "top": [ {flow}... ],
 *   "phases": [ { "from", "to", "top": [...] }, ... ] }   (phases: two halves for shift,
 * one phase otherwise).  Each flow: "proto", "family", "src", "dst", "sport", "dport" (ICMP:
 * "id"), "packets", "share" (of flow packets).  New reference, NULL on -ENOMEM.
 */
json_t *rs_tracegen_truth(struct rs_tracegen *gen, size_t k);

#endif /* RS_BENCH_TRACEGEN_H */
