// SPDX-License-Identifier: BSD-2-Clause
/*
 * tracegen.c - the trace generator: flow popularity (Zipf / uniform / shifting hot set), the
 * packet mix, packet sizes, frame building with valid checksums, and pcap output.
 *
 * Each packet draws its kind (template flow, ICMP echo, ARP, destination miss), its address
 * family and its VLAN tag from the mix shares; a template-flow packet draws a popularity rank
 * from the profile's distribution and maps the rank to a flow id (the identity, or for the
 * second half of a "shift" trace a rotation by half the flow count, so the hot set changes
 * completely).  Flow ids become 5-tuples through rs_flow_derive(), a pure function of seed and
 * id, so the truth file can name them.  The PRNG is xoshiro256** seeded by splitmix64.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchmarks/tracegen_int.h"
#include "optimizer/common.h"

#define T0_NS		1700000000000000000ULL	/* first timestamp */
#define ETH_HLEN_	14
#define VLAN_HLEN_	4
#define MAX_IP_LEN	1500

struct rs_tracegen {
	struct rs_traffic tr;
	enum rs_trace_profile profile;
	uint64_t packets, seed, progress_every;
	rs_trace_progress_fn progress;
	void *progress_ctx;
	char *name;
	uint32_t flows;
	double s;
	double *cdf;			/* Zipf CDF over ranks; NULL: uniform */
	int phases;
	uint32_t *counts;		/* [phase][fam][id] packets */
	uint8_t *seen;			/* [fam][id] bitmap: flow already sent a packet */
	uint64_t rng[4];
	uint64_t i;			/* packets produced */
	uint64_t ts;
	bool miss_warned;
	struct rs_tracegen_stats st;
};

static const char *const profile_names[RS_TRACE_PROFILE_MAX] = {
	[RS_TRACE_HIGH] = "high",
	[RS_TRACE_LOW] = "low",
	[RS_TRACE_NONE] = "none",
	[RS_TRACE_SHIFT] = "shift",
};

int rs_trace_profile_parse(const char *name, enum rs_trace_profile *profile)
{
	int i;

	for (i = 0; i < RS_TRACE_PROFILE_MAX; i++) {
		if (name && !strcmp(name, profile_names[i])) {
			*profile = i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *rs_trace_profile_name(enum rs_trace_profile profile)
{
	return profile < RS_TRACE_PROFILE_MAX ? profile_names[profile] : "?";
}

/* ---- PRNG: xoshiro256** ----------------------------------------------------------- */

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rnd64(struct rs_tracegen *g)
{
	uint64_t *s = g->rng, r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return r;
}

static inline double rnd_unit(struct rs_tracegen *g)
{
	return (rnd64(g) >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi]. */
static inline uint32_t rnd_range(struct rs_tracegen *g, uint32_t lo, uint32_t hi)
{
	return lo + (uint32_t)(((rnd64(g) >> 32) * ((uint64_t)hi - lo + 1)) >> 32);
}

/* ---- setup -------------------------------------------------------------------------- */

static int build_cdf(struct rs_tracegen *g)
{
	double sum = 0;
	uint32_t k;

	g->cdf = malloc(sizeof(double) * g->flows);
	if (!g->cdf)
		return -ENOMEM;
	for (k = 0; k < g->flows; k++) {
		sum += pow(k + 1.0, -g->s);
		g->cdf[k] = sum;
	}
	for (k = 0; k < g->flows; k++)
		g->cdf[k] /= sum;
	g->cdf[g->flows - 1] = 1.0;
	return 0;
}

int rs_tracegen_new(json_t *traffic, const struct rs_tracegen_opts *opts,
		    struct rs_tracegen **out)
{
	static const uint32_t def_flows[] = { 1000, 100000, 1000000, 1000 };
	static const double def_s[] = { 1.2, 0.7, 0.0, 1.2 };
	struct rs_tracegen *g;
	uint64_t x;
	int err, i;

	*out = NULL;
	if (!opts || !RS_OPTS_HAS(opts, progress_every) ||
	    opts->profile >= RS_TRACE_PROFILE_MAX || !opts->packets)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->name = strdup(opts->name ?: "scenario");
	if (!g->name) {
		err = -ENOMEM;
		goto fail;
	}
	err = rs_traffic_parse(traffic, g->name, &g->tr);
	if (err)
		goto fail;
	g->profile = opts->profile;
	g->packets = opts->packets;
	g->seed = opts->seed;
	g->progress = opts->progress;
	g->progress_ctx = opts->progress_ctx;
	g->progress_every = opts->progress_every;
	g->flows = opts->flows ?: def_flows[g->profile];
	g->s = opts->zipf_s > 0 ? opts->zipf_s : def_s[g->profile];
	g->phases = g->profile == RS_TRACE_SHIFT ? 2 : 1;
	if (g->flows < 2 && g->profile == RS_TRACE_SHIFT) {
		rs_warn("%s: the shift profile needs at least 2 flows", g->name);
		err = -EINVAL;
		goto fail;
	}
	if (g->s > 0) {
		err = build_cdf(g);
		if (err)
			goto fail;
	}
	g->counts = calloc((size_t)g->phases * 2 * g->flows, sizeof(*g->counts));
	g->seen = calloc(((size_t)2 * g->flows + 7) / 8, 1);
	if (!g->counts || !g->seen) {
		err = -ENOMEM;
		goto fail;
	}
	x = g->seed;
	for (i = 0; i < 4; i++) {
		x = rs_mix64(x);
		g->rng[i] = x;
	}
	g->ts = T0_NS;
	*out = g;
	return 0;
fail:
	rs_tracegen_free(g);
	return err;
}

void rs_tracegen_free(struct rs_tracegen *g)
{
	if (!g)
		return;
	rs_traffic_free(&g->tr);
	free(g->cdf);
	free(g->counts);
	free(g->seen);
	free(g->name);
	free(g);
}

const struct rs_tracegen_stats *rs_tracegen_stats(const struct rs_tracegen *g)
{
	return &g->st;
}

/* ---- checksums ------------------------------------------------------------------------ */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t acc = sum;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		acc += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		acc += (uint32_t)p[len - 1] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return acc;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum & 0xffff;
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

/* ---- frame building -------------------------------------------------------------------- */

/* IP packet length for a payload-carrying packet: bimodal, many small and many full-size. */
static uint32_t pick_ip_len(struct rs_tracegen *g, uint32_t hdrs, uint32_t l2)
{
	double u = rnd_unit(g);
	uint32_t frame;

	if (u < 0.40)
		frame = rnd_range(g, 64, 128);
	else if (u < 0.52)
		frame = rnd_range(g, 129, 1023);
	else if (u < 0.62)
		frame = rnd_range(g, 1024, 1499);
	else
		frame = 1514;
	if (frame < l2 + hdrs)
		return hdrs;
	return frame - l2 > MAX_IP_LEN ? MAX_IP_LEN : frame - l2;
}

static uint32_t l2_header(uint8_t *p, const uint8_t *smac, const uint8_t *dmac, bool vlan,
			  uint16_t vid, uint16_t ethertype)
{
	memcpy(p, dmac, 6);
	memcpy(p + 6, smac, 6);
	if (vlan) {
		put16(p + 12, 0x8100);
		put16(p + 14, vid & 0x0fff);
		put16(p + 16, ethertype);
		return ETH_HLEN_ + VLAN_HLEN_;
	}
	put16(p + 12, ethertype);
	return ETH_HLEN_;
}

struct pkt {
	int fam;
	uint8_t proto;			/* IPPROTO_ICMP means ICMPv6 in the IPv6 family */
	const uint8_t *src, *dst;
	uint16_t sport, dport;
	uint64_t hash;
	bool vlan, syn;
	uint32_t seq;
	uint16_t ip_id;
	bool sized;			/* false: headers only (SYN, ICMP echo of ping size) */
};

static const uint8_t dev_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t bcast_mac[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static void flow_mac(uint8_t *mac, uint64_t h)
{
	mac[0] = 0x02;
	mac[1] = 0x42;
	memcpy(mac + 2, &h, 4);
}

static uint32_t build_ip(struct rs_tracegen *g, const struct pkt *k, uint8_t *buf)
{
	uint32_t l4h, ip_hlen, ip_len, l2, off, sum, i;
	uint8_t smac[6], *ip, *l4;
	uint8_t proto = k->proto;

	if (proto == IPPROTO_ICMP && k->fam == RS_FAM_V6)
		proto = IPPROTO_ICMPV6;
	l4h = proto == IPPROTO_TCP ? 20 : 8;
	ip_hlen = k->fam == RS_FAM_V4 ? 20 : 40;
	flow_mac(smac, k->hash);
	l2 = l2_header(buf, smac, dev_mac, k->vlan, 10 + (k->hash >> 40) % 16,
		       k->fam == RS_FAM_V4 ? 0x0800 : 0x86dd);
	if (k->syn)
		ip_len = ip_hlen + l4h;
	else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		ip_len = ip_hlen + l4h + (k->sized ? 56 : 0);	/* ping-sized */
	else
		ip_len = pick_ip_len(g, ip_hlen + l4h, l2);
	ip = buf + l2;
	l4 = ip + ip_hlen;
	if (k->fam == RS_FAM_V4) {
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, ip_len);
		put16(ip + 4, k->ip_id);
		put16(ip + 6, 0x4000);		/* DF */
		ip[8] = 64;
		ip[9] = proto;
		put16(ip + 10, 0);
		memcpy(ip + 12, k->src, 4);
		memcpy(ip + 16, k->dst, 4);
		put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	} else {
		put32(ip, 0x60000000 | (uint32_t)(k->hash & 0xfffff));
		put16(ip + 4, ip_len - 40);
		ip[6] = proto;
		ip[7] = 64;
		memcpy(ip + 8, k->src, 16);
		memcpy(ip + 24, k->dst, 16);
	}
	/* Payload: one byte value per flow (cheap, deterministic). */
	memset(l4 + l4h, (uint8_t)(k->hash >> 56), ip_len - ip_hlen - l4h);
	switch (proto) {
	case IPPROTO_TCP:
		put16(l4, k->sport);
		put16(l4 + 2, k->dport);
		put32(l4 + 4, k->seq);
		put32(l4 + 8, k->syn ? 0 : (uint32_t)(k->hash >> 16));
		l4[12] = 5 << 4;
		l4[13] = k->syn ? 0x02 : (ip_len > ip_hlen + l4h ? 0x18 : 0x10);
		put16(l4 + 14, 64240);
		put16(l4 + 16, 0);
		put16(l4 + 18, 0);
		break;
	case IPPROTO_UDP:
		put16(l4, k->sport);
		put16(l4 + 2, k->dport);
		put16(l4 + 4, ip_len - ip_hlen);
		put16(l4 + 6, 0);
		break;
	default:	/* echo request */
		l4[0] = proto == IPPROTO_ICMP ? 8 : 128;
		l4[1] = 0;
		put16(l4 + 2, 0);
		put16(l4 + 4, k->sport);
		put16(l4 + 6, k->seq & 0xffff);
		break;
	}
	/* L4 checksum with the pseudo header (not for ICMPv4). */
	sum = 0;
	if (proto != IPPROTO_ICMP) {
		if (k->fam == RS_FAM_V4)
			sum = csum_add(sum, ip + 12, 8);
		else
			sum = csum_add(sum, ip + 8, 32);
		sum += proto + (ip_len - ip_hlen);
	}
	sum = csum_add(sum, l4, ip_len - ip_hlen);
	off = proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 2;
	i = csum_fold(sum);
	if (proto == IPPROTO_UDP && !i)
		i = 0xffff;
	put16(l4 + off, i);
	off = l2 + ip_len;
	if (off < RS_TRACE_MIN_FRAME) {
		memset(buf + off, 0, RS_TRACE_MIN_FRAME - off);
		off = RS_TRACE_MIN_FRAME;
	}
	return off;
}

static uint32_t build_arp(struct rs_tracegen *g, uint8_t *buf, bool vlan)
{
	const struct rs_traffic *tr = &g->tr;
	uint8_t spa[4] = { 192, 0, 2, 1 }, tpa[4] = { 192, 0, 2, 2 }, smac[6];
	uint64_t h = rnd64(g);
	uint32_t l2, len;
	uint8_t *a;

	if (tr->ntmpl[RS_FAM_V4]) {
		const struct rs_tmpl *t = &tr->tmpl[RS_FAM_V4][h % tr->ntmpl[RS_FAM_V4]];
		uint32_t hs = h >> 20, hd = h >> 40;
		int i;

		for (i = 0; i < 4; i++) {
			uint8_t ms = t->src_plen >= 8 * (i + 1) ? 0xff :
				     t->src_plen <= 8 * i ? 0 : 0xff << (8 - (t->src_plen - 8 * i));
			uint8_t md = t->dst_plen >= 8 * (i + 1) ? 0xff :
				     t->dst_plen <= 8 * i ? 0 : 0xff << (8 - (t->dst_plen - 8 * i));

			spa[i] = (t->src[i] & ms) | ((hs >> (8 * i)) & ~ms);
			tpa[i] = (t->dst[i] & md) | ((hd >> (8 * i)) & ~md);
		}
	}
	flow_mac(smac, h);
	l2 = l2_header(buf, smac, bcast_mac, vlan, 10 + (h >> 40) % 16, 0x0806);
	a = buf + l2;
	put16(a, 1);			/* Ethernet */
	put16(a + 2, 0x0800);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, 1);		/* request */
	memcpy(a + 8, smac, 6);
	memcpy(a + 14, spa, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, tpa, 4);
	len = l2 + 28;
	if (len < RS_TRACE_MIN_FRAME) {
		memset(buf + len, 0, RS_TRACE_MIN_FRAME - len);
		len = RS_TRACE_MIN_FRAME;
	}
	return len;
}

/* A destination outside every template prefix (198.18.0.0/15, 2001:db8:ffff::/48 first). */
static void miss_dst(struct rs_tracegen *g, int fam, uint8_t *dst)
{
	int tries;

	for (tries = 0; tries < 32; tries++) {
		uint64_t a = rnd64(g), b = rnd64(g);

		memset(dst, 0, 16);
		memcpy(dst, &a, 8);
		memcpy(dst + 8, &b, 8);
		if (tries < 16) {
			if (fam == RS_FAM_V4) {
				dst[0] = 198;
				dst[1] = 18 | (dst[1] & 1);
			} else {
				memcpy(dst, (uint8_t[]){ 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff }, 6);
			}
		} else if (fam == RS_FAM_V4) {
			dst[0] = 1 + dst[0] % 223;	/* unicast */
		}
		if (fam == RS_FAM_V4)
			memset(dst + 4, 0, 12);
		if (!rs_traffic_dst_covered(&g->tr, fam, dst))
			return;
	}
	if (!g->miss_warned) {
		rs_warn("%s: traffic: templates cover the whole address space; 'miss' packets hit",
			g->name);
		g->miss_warned = true;
	}
}

static inline uint32_t sample_rank(struct rs_tracegen *g)
{
	double u;
	uint32_t lo = 0, hi = g->flows - 1;

	if (!g->cdf)
		return rnd_range(g, 0, g->flows - 1);
	u = rnd_unit(g);
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (g->cdf[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int rs_tracegen_next(struct rs_tracegen *g, uint8_t *buf, uint64_t *ts_ns)
{
	const struct rs_traffic *tr = &g->tr;
	struct pkt k = { 0 };
	struct rs_flow f;
	uint8_t miss[16];
	enum rs_trace_kind kind;
	int phase, fam;
	uint32_t len;
	double u;

	if (g->i >= g->packets)
		return 0;
	phase = g->phases > 1 && g->i >= g->packets / 2;
	u = rnd_unit(g);
	if (u < tr->p_icmp)
		kind = RS_TRACE_KIND_ICMP;
	else if (u < tr->p_icmp + tr->p_arp)
		kind = RS_TRACE_KIND_ARP;
	else if (u < tr->p_icmp + tr->p_arp + tr->p_miss)
		kind = RS_TRACE_KIND_MISS;
	else
		kind = RS_TRACE_KIND_FLOW;
	fam = rnd_unit(g) < tr->p_ipv6 ? RS_FAM_V6 : RS_FAM_V4;
	k.vlan = rnd_unit(g) < tr->p_vlan;
	k.ip_id = g->i;

	switch (kind) {
	case RS_TRACE_KIND_ARP:
		len = build_arp(g, buf, k.vlan);
		break;
	case RS_TRACE_KIND_FLOW: {
		uint32_t rank = sample_rank(g), id = rank;
		size_t bit;

		if (phase)
			id = (uint32_t)(((uint64_t)rank + g->flows / 2) % g->flows);
		rs_flow_derive(tr, g->seed, fam, id, &f);
		g->counts[((size_t)phase * 2 + fam) * g->flows + id]++;
		bit = (size_t)fam * g->flows + id;
		/* A quarter of the flows start inside the trace: their first packet is a SYN. */
		k.syn = f.proto == IPPROTO_TCP && !(g->seen[bit / 8] & (1u << (bit % 8))) &&
			(f.hash >> 60) < 4;
		g->seen[bit / 8] |= 1u << (bit % 8);
		k.fam = fam;
		k.proto = f.proto;
		k.src = f.src;
		k.dst = f.dst;
		k.sport = f.sport;
		k.dport = f.dport;
		k.hash = f.hash;
		k.sized = true;
		k.seq = (uint32_t)f.hash + (uint32_t)g->counts[((size_t)phase * 2 + fam) *
							       g->flows + id] * 1460;
		len = build_ip(g, &k, buf);
		break;
	}
	case RS_TRACE_KIND_ICMP:
	case RS_TRACE_KIND_MISS:
	default:
		/* A random flow for addresses, then the echo or the missing destination. */
		rs_flow_derive(tr, g->seed ^ 0x1c3bULL, fam, rnd64(g) >> 40, &f);
		k.fam = fam;
		k.src = f.src;
		k.dst = f.dst;
		k.hash = f.hash;
		k.seq = rnd64(g);
		if (kind == RS_TRACE_KIND_ICMP) {
			k.proto = IPPROTO_ICMP;
			k.sport = f.sport;
			k.sized = true;
		} else {
			miss_dst(g, fam, miss);
			k.dst = miss;
			k.proto = (f.hash & 1) ? IPPROTO_UDP : IPPROTO_TCP;
			k.sport = f.sport;
			k.dport = f.dport ?: 80;
			k.sized = true;
		}
		len = build_ip(g, &k, buf);
		break;
	}

	g->st.packets++;
	g->st.bytes += len;
	g->st.kind[kind]++;
	g->st.ipv6 += kind != RS_TRACE_KIND_ARP && fam == RS_FAM_V6;
	g->st.vlan += k.vlan;
	*ts_ns = g->ts;
	g->ts += 200 + rnd64(g) % 1601;		/* mean 1 us between packets */
	g->i++;
	return len;
}

int rs_tracegen_write_pcap(struct rs_tracegen *g, const char *path)
{
	uint8_t buf[RS_TRACE_MAX_FRAME];
	struct pcap_pkthdr hdr;
	pcap_dumper_t *d;
	pcap_t *p;
	uint64_t ts;
	int len, err = 0;

	p = pcap_open_dead(DLT_EN10MB, 65535);
	if (!p)
		return -ENOMEM;
	d = pcap_dump_open(p, path);
	if (!d) {
		rs_warn("%s", pcap_geterr(p));	/* names the file */
		err = -EIO;
		goto out;
	}
	while ((len = rs_tracegen_next(g, buf, &ts)) > 0) {
		hdr.ts.tv_sec = ts / 1000000000ULL;
		hdr.ts.tv_usec = ts % 1000000000ULL / 1000;
		hdr.caplen = hdr.len = len;
		pcap_dump((u_char *)d, &hdr, buf);
		if (g->progress && g->progress_every && g->i % g->progress_every == 0)
			g->progress(g->i, g->packets, g->progress_ctx);
	}
	if (pcap_dump_flush(d) || ferror(pcap_dump_file(d))) {
		rs_warn("%s: write error", path);
		err = -EIO;
	}
	pcap_dump_close(d);
out:
	pcap_close(p);
	return err;
}

json_t *rs_tracegen_truth(struct rs_tracegen *g, size_t k)
{
	struct rs_truth_src src = {
		.tr = &g->tr, .seed = g->seed, .flows = g->flows, .phases = g->phases,
		.counts = g->counts,
		.phase_from = { 0, g->packets / 2 },
		.phase_to = { g->phases > 1 ? g->packets / 2 : g->i, g->i },
	};
	json_t *o, *top, *phases, *ph;
	uint64_t fp;
	int i;

	o = json_object();
	phases = json_array();
	if (!o || !phases)
		goto fail;
	top = rs_truth_top(&src, -1, k, &fp);
	if (!top)
		goto fail;
	json_object_set_new(o, "packets", json_integer(g->i));
	json_object_set_new(o, "flow_packets", json_integer(fp));
	json_object_set_new(o, "profile", json_string(rs_trace_profile_name(g->profile)));
	json_object_set_new(o, "seed", json_integer((json_int_t)g->seed));
	json_object_set_new(o, "flows", json_integer(g->flows));
	json_object_set_new(o, "zipf_s", json_real(g->s));
	json_object_set_new(o, "top", top);
	for (i = 0; i < g->phases; i++) {
		top = rs_truth_top(&src, i, k, &fp);
		ph = top ? json_pack("{s:I, s:I, s:I, s:o}", "from", (json_int_t)src.phase_from[i],
				     "to", (json_int_t)src.phase_to[i], "flow_packets", (json_int_t)fp,
				     "top", top) : NULL;
		if (!ph || json_array_append_new(phases, ph))
			goto fail;
	}
	json_object_set_new(o, "phases", phases);
	return o;
fail:
	json_decref(phases);
	json_decref(o);
	return NULL;
}
