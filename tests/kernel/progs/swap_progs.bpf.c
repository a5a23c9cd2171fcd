// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * swap_progs.bpf.c - programs the swap tests (tests/kernel/test_swap*.c) put at attach points
 * and swap between: A, B and C count the test's UDP packets (dport 9999) in one shared array,
 * each in its own slot, and all give the same verdict (pass), so a swap under traffic must
 * account for every packet sent in exactly one slot.  xdp_owner tail-calls slot 0 of jmp and
 * counts in slot 3 when the tail call finds nothing.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define TEST_PORT 9999

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, 4);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
	__uint(max_entries, 2);
} jmp SEC(".maps");

static __always_inline int is_test_pkt(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return 0;
	return eth->h_proto == bpf_htons(ETH_P_IP) && ip->ihl == 5 &&
	       ip->protocol == IPPROTO_UDP && udp->dest == bpf_htons(TEST_PORT);
}

static __always_inline void count(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

#define XDP_COUNTER(NAME, SLOT)							\
SEC("xdp")									\
int NAME(struct xdp_md *ctx)							\
{										\
	if (is_test_pkt((void *)(long)ctx->data, (void *)(long)ctx->data_end))	\
		count(SLOT);							\
	return XDP_PASS;							\
}

#define TC_COUNTER(NAME, SLOT)							\
SEC("tc")									\
int NAME(struct __sk_buff *skb)							\
{										\
	if (is_test_pkt((void *)(long)skb->data, (void *)(long)skb->data_end))	\
		count(SLOT);							\
	return TC_ACT_OK;							\
}

XDP_COUNTER(xdp_a, 0)
XDP_COUNTER(xdp_b, 1)
XDP_COUNTER(xdp_c, 2)
TC_COUNTER(tc_a, 0)
TC_COUNTER(tc_b, 1)
TC_COUNTER(tc_c, 2)

SEC("xdp")
int xdp_owner(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jmp, 0);
	if (is_test_pkt((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		count(3);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
