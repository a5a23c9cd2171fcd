// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * router.bpf.c - an XDP IPv4/IPv6 router, a sample data plane for respec.
 *
 * Longest-prefix match on the destination in an LPM trie per family (routes4, routes6) gives a
 * next-hop index; the next hop (nexthops array) carries the MACs to write and the egress
 * ifindex.  TTL / hop limit is decremented (IPv4 checksum updated incrementally, RFC 1624).
 * The packet leaves with XDP_TX when the egress is the ingress interface (or ifindex 0), else
 * with bpf_redirect.  ARP and other non-IP frames, IPv4 with options and packets whose TTL
 * would expire go to the stack (XDP_PASS); a destination without a route is dropped (XDP_DROP:
 * this router has no default route unless the control plane installs 0.0.0.0/0).
 *
 * Built twice: router.bpf.o reads the maps; router-ceiling.bpf.o (-DCEILING) answers the
 * route and next-hop lookups from the benchmark scenario compiled in (router-ceiling.h:
 * prefixes flattened into sorted address intervals, binary search), same behaviour otherwise.
 */
#include "bpf/samples/common/lookup.h"
#include "bpf/samples/common/parse.h"

#define MAX_ROUTES4	65536
#define MAX_ROUTES6	16384
#define MAX_NEXTHOPS	1024

#define NH_F_VALID	0x1

enum rt_stat {
	RT_TX,			/* forwarded out of the ingress interface */
	RT_REDIRECT,		/* forwarded out of another interface */
	RT_PASS_NON_IP,		/* ARP and other non-IP frames */
	RT_PASS_TTL,		/* TTL / hop limit expires here: the stack answers */
	RT_PASS_OTHER,		/* IPv4 options, malformed or truncated headers */
	RT_DROP_NO_ROUTE,
	RT_DROP_NEXTHOP,	/* route to an invalid next hop */
	RT_STAT_MAX,
};

struct nexthop {
	__u8 dmac[6];
	__u8 smac[6];
	__u32 ifindex;		/* 0: the ingress interface */
	__u32 flags;		/* NH_F_VALID */
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_ROUTES4);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm4_key);
	__type(value, __u32);		/* next-hop index */
} routes4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, MAX_ROUTES6);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm6_key);
	__type(value, __u32);
} routes6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_NEXTHOPS);
	__type(key, __u32);
	__type(value, struct nexthop);
} nexthops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, RT_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} rt_stats SEC(".maps");

#ifdef CEILING
#include "router-ceiling.h"
#include "bpf/samples/common/ceiling.h"

CEIL_LPM4(route4_lookup, routes4, __u32)
CEIL_LPM6(route6_lookup, routes6, __u32)
CEIL_ARRAY(nexthop_lookup, nexthops, struct nexthop)
#else
MAP_LPM4(route4_lookup, routes4, __u32)
MAP_LPM6(route6_lookup, routes6, __u32)
MAP_ARRAY(nexthop_lookup, nexthops, struct nexthop)
#endif

static __always_inline int count(__u32 slot, int verdict)
{
	__u64 *c = bpf_map_lookup_elem(&rt_stats, &slot);

	if (c)
		(*c)++;
	return verdict;
}

/* Rewrite MACs and send towards the next hop. */
static __always_inline int forward(struct xdp_md *ctx, struct ethhdr *eth,
				   const struct nexthop *nh)
{
	__builtin_memcpy(eth->h_dest, nh->dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, nh->smac, ETH_ALEN);
	if (!nh->ifindex || nh->ifindex == ctx->ingress_ifindex)
		return count(RT_TX, XDP_TX);
	return count(RT_REDIRECT, bpf_redirect(nh->ifindex, 0));
}

SEC("xdp")
int xdp_router(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct cursor c = { .pos = data, .end = data_end };
	const struct nexthop *nh;
	const __u32 *nh_idx;
	struct ethhdr *eth;
	int proto;

	proto = parse_eth(&c, &eth);
	if (proto < 0)
		return count(RT_PASS_OTHER, XDP_PASS);
	if (proto == ETH_P_IP) {
		struct iphdr *iph = CURSOR_PULL(&c, struct iphdr);
		__u32 check;

		if (!iph || iph->ihl != 5 || iph->version != 4)
			return count(RT_PASS_OTHER, XDP_PASS);
		if (iph->ttl <= 1)
			return count(RT_PASS_TTL, XDP_PASS);
		nh_idx = route4_lookup((const __u8 *)&iph->daddr);
		if (!nh_idx)
			return count(RT_DROP_NO_ROUTE, XDP_DROP);
		nh = nexthop_lookup(*nh_idx);
		if (!nh || !(nh->flags & NH_F_VALID))
			return count(RT_DROP_NEXTHOP, XDP_DROP);
		/* ttl is the high byte of the 16-bit word it shares with protocol */
		check = iph->check;
		check += bpf_htons(0x0100);
		iph->check = (__u16)(check + (check >= 0xffff));
		iph->ttl--;
		return forward(ctx, eth, nh);
	}
	if (proto == ETH_P_IPV6) {
		struct ipv6hdr *ip6 = CURSOR_PULL(&c, struct ipv6hdr);

		if (!ip6)
			return count(RT_PASS_OTHER, XDP_PASS);
		if (ip6->hop_limit <= 1)
			return count(RT_PASS_TTL, XDP_PASS);
		nh_idx = route6_lookup((const __u8 *)&ip6->daddr);
		if (!nh_idx)
			return count(RT_DROP_NO_ROUTE, XDP_DROP);
		nh = nexthop_lookup(*nh_idx);
		if (!nh || !(nh->flags & NH_F_VALID))
			return count(RT_DROP_NEXTHOP, XDP_DROP);
		ip6->hop_limit--;
		return forward(ctx, eth, nh);
	}
	return count(RT_PASS_NON_IP, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
