// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * lift_maps.bpf.c - XDP test program for the lifter: lookup / update / delete on every map
 * type XDP programs use (inlined lookups differ per type, size and max_entries), redirect_map
 * on devmap, devmap_hash, cpumap and xskmap, tail calls with constant and variable index,
 * map-in-map lookups.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define MAP(NAME, TYPE, K, V, N)		\
	struct {				\
		__uint(type, TYPE);		\
		__type(key, K);			\
		__type(value, V);		\
		__uint(max_entries, N);		\
	} NAME SEC(".maps")

struct val12 { __u32 a, b, c; };
struct lpm_key { __u32 prefixlen; __u32 addr; };

MAP(arr, BPF_MAP_TYPE_ARRAY, __u32, __u64, 16);
MAP(arr12, BPF_MAP_TYPE_ARRAY, __u32, struct val12, 7);
MAP(parr, BPF_MAP_TYPE_PERCPU_ARRAY, __u32, __u64, 4);
MAP(hash, BPF_MAP_TYPE_HASH, __u32, __u64, 64);
MAP(phash, BPF_MAP_TYPE_PERCPU_HASH, __u64, __u32, 64);
MAP(lru, BPF_MAP_TYPE_LRU_HASH, __u32, struct val12, 64);
MAP(plru, BPF_MAP_TYPE_LRU_PERCPU_HASH, __u32, __u64, 64);
MAP(devmap, BPF_MAP_TYPE_DEVMAP, __u32, __u32, 8);
MAP(devhash, BPF_MAP_TYPE_DEVMAP_HASH, __u32, __u32, 8);
MAP(cpumap, BPF_MAP_TYPE_CPUMAP, __u32, struct bpf_cpumap_val, 2);
MAP(xsks, BPF_MAP_TYPE_XSKMAP, __u32, __u32, 4);

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__type(key, struct lpm_key);
	__type(value, __u32);
	__uint(max_entries, 16);
	__uint(map_flags, BPF_F_NO_PREALLOC);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} jumps SEC(".maps");

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u32);
	       __uint(max_entries, 3); } inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_arr SEC(".maps") = { .values = { &inner1 } };

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps");

SEC("xdp")
int lift_maps_lookup(struct xdp_md *ctx)
{
	__u32 k = ctx->rx_queue_index, *p32;
	struct lpm_key lk = { 32, k };
	struct val12 *v12, nv = { 1, 2, 3 };
	__u64 *p64, one = 1, acc = 0;
	void *in;

	p64 = bpf_map_lookup_elem(&arr, &k);
	if (p64)
		acc += (*p64)++;
	v12 = bpf_map_lookup_elem(&arr12, &k);
	if (v12)
		acc += v12->c;
	p64 = bpf_map_lookup_elem(&parr, &k);
	if (p64)
		acc += *p64;
	p64 = bpf_map_lookup_elem(&hash, &k);
	if (p64)
		acc += *p64;
	else
		bpf_map_update_elem(&hash, &k, &one, BPF_NOEXIST);
	p32 = bpf_map_lookup_elem(&phash, &acc);
	if (p32)
		acc += *p32;
	v12 = bpf_map_lookup_elem(&lru, &k);
	if (v12)
		acc += v12->a;
	else
		bpf_map_update_elem(&lru, &k, &nv, BPF_ANY);
	p64 = bpf_map_lookup_elem(&plru, &k);
	if (p64)
		acc += *p64;
	p32 = bpf_map_lookup_elem(&lpm, &lk);
	if (p32)
		acc += *p32;
	in = bpf_map_lookup_elem(&outer_arr, &k);
	if (in) {
		p32 = bpf_map_lookup_elem(in, &k);
		if (p32)
			acc += *p32;
	}
	in = bpf_map_lookup_elem(&outer_hash, &k);
	if (in) {
		p32 = bpf_map_lookup_elem(in, &k);
		if (p32)
			acc += *p32;
	}
	p32 = bpf_map_lookup_elem(&devmap, &k);
	if (p32)
		acc += *p32;
	if (acc > 100) {
		bpf_map_delete_elem(&hash, &k);
		bpf_map_delete_elem(&lru, &k);
		bpf_map_delete_elem(&lpm, &lk);
		bpf_map_update_elem(&arr, &k, &acc, BPF_ANY);
		bpf_map_update_elem(&lpm, &lk, &k, BPF_ANY);
		bpf_map_update_elem(&plru, &k, &acc, BPF_ANY);
	}
	return acc & 1 ? XDP_PASS : XDP_DROP;
}

SEC("xdp")
int lift_maps_redirect(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;

	switch (q & 3) {
	case 0:
		return bpf_redirect_map(&devmap, q, XDP_PASS);
	case 1:
		return bpf_redirect_map(&devhash, q, 0);
	case 2:
		return bpf_redirect_map(&cpumap, 0, 0);
	default:
		return bpf_redirect_map(&xsks, q, XDP_DROP);
	}
}

SEC("xdp")
int lift_maps_tail(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &jumps, 0);
	bpf_tail_call(ctx, &jumps, ctx->rx_queue_index);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
