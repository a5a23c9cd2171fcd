/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * parse.h - packet parsing helpers shared by the sample data planes (BPF side): a cursor over
 * [data, data_end) with bounds-checked header pulls for Ethernet (one optional 802.1Q tag),
 * IPv4, IPv6, TCP and UDP, plus the 5-tuple the samples key their flow tables on.
 */
#ifndef RS_SAMPLES_PARSE_H
#define RS_SAMPLES_PARSE_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef ETH_P_8021Q
#define ETH_P_8021Q	0x8100
#endif
#ifndef ETH_P_ARP
#define ETH_P_ARP	0x0806
#endif

struct vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct cursor {
	void *pos;
	void *end;
};

/* Pull `len` bytes at the cursor; NULL when the packet is too short. */
#define CURSOR_PULL(c, type)							\
	({									\
		type *__h = (c)->pos;						\
		if ((void *)(__h + 1) > (c)->end)				\
			__h = NULL;						\
		else								\
			(c)->pos = __h + 1;					\
		__h;								\
	})

/* Ethernet with at most one VLAN tag; returns the host-order EtherType or -1. */
static __always_inline int parse_eth(struct cursor *c, struct ethhdr **eth)
{
	struct vlan_hdr *vh;
	__u16 proto;

	*eth = CURSOR_PULL(c, struct ethhdr);
	if (!*eth)
		return -1;
	proto = bpf_ntohs((*eth)->h_proto);
	if (proto == ETH_P_8021Q) {
		vh = CURSOR_PULL(c, struct vlan_hdr);
		if (!vh)
			return -1;
		proto = bpf_ntohs(vh->proto);
	}
	return proto;
}

/* 5-tuple in network byte order; IPv4 addresses in word 0, the rest zero. */
struct flow_key {
	__be32 src[4];
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 family;		/* 4 or 6 */
	__u8 pad[2];
};

/* Ports of TCP/UDP at the cursor into key (zero for other protocols); -1 when truncated. */
static __always_inline int parse_ports(struct cursor *c, __u8 proto, struct flow_key *key)
{
	struct udphdr *uh;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return 0;
	/* both headers start with source and destination port */
	uh = CURSOR_PULL(c, struct udphdr);
	if (!uh)
		return -1;
	key->sport = uh->source;
	key->dport = uh->dest;
	return 0;
}

/* Fold a 32-bit one's complement sum to 16 bits. */
static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* Checksum of a 20-byte IPv4 header without options (check field must be zero). */
static __always_inline __u16 ipv4_csum(const struct iphdr *iph)
{
	const __u16 *w = (const __u16 *)iph;
	__u32 sum = 0;
	int i;

#pragma unroll
	for (i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return csum_fold32(sum);
}

#endif /* RS_SAMPLES_PARSE_H */
