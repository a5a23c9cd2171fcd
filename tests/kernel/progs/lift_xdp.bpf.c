// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * lift_xdp.bpf.c - XDP test programs for the lifter: every xdp_md field, division / modulo
 * by register, bpf-to-bpf calls (static and global), global data (.rodata / .data / .bss)
 * and many helpers.  It is loaded, never attached: the test only
 * lifts it and proves the lift.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

const volatile __u32 cfg_shift = 3;	/* .rodata */
__u32 counter_data = 7;			/* .data */
__u64 counter_bss;			/* .bss */

struct bpf_fib_lookup fib_params;

static __attribute__((noinline)) __u32 mix(__u32 a, __u32 b)
{
	if (!b)
		return a;
	return a / b + a % b;
}

__attribute__((noinline)) int global_sum(struct xdp_md *ctx, __u32 x)
{
	if (!ctx)
		return 0;
	return ctx->ingress_ifindex + x;
}

SEC("xdp")
int lift_xdp_fields(struct xdp_md *ctx)
{
	__u32 acc = 0;
	__u64 v;

	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	void *meta = (void *)(long)ctx->data_meta;

	if (meta + 4 <= data)
		acc += *(__u32 *)meta;
	if (data + 1 <= data_end)
		acc += *(__u8 *)data;
	acc += ctx->ingress_ifindex;
	acc += ctx->rx_queue_index;
	v = bpf_ktime_get_ns();
	acc += mix((__u32)v, bpf_get_prandom_u32());
	acc ^= (__u32)(v % (acc | 1));
	acc += (__u32)(v / (__u64)(acc + 1));
	acc += bpf_get_smp_processor_id();
	acc += global_sum(ctx, cfg_shift);
	counter_data += acc;
	counter_bss += v >> cfg_shift;
	return acc & 1 ? XDP_PASS : XDP_DROP;
}

/* egress_ifindex only exists for programs run by a devmap (expected attach type). */
SEC("xdp/devmap")
int lift_xdp_devmap(struct xdp_md *ctx)
{
	return ctx->egress_ifindex == ctx->ingress_ifindex ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int lift_xdp_helpers(struct xdp_md *ctx)
{
	void *data, *data_end;
	__u8 buf[16] = {};
	__u32 mtu = 0;
	__s64 csum;
	int ret = 0;

	if (bpf_xdp_adjust_meta(ctx, -4) == 0)
		ret++;
	if (bpf_xdp_adjust_head(ctx, 0) == 0)
		ret++;
	bpf_xdp_load_bytes(ctx, 0, buf, sizeof(buf));
	bpf_xdp_store_bytes(ctx, 0, buf, sizeof(buf));
	ret += bpf_xdp_get_buff_len(ctx);
	csum = bpf_csum_diff((__be32 *)buf, 8, (__be32 *)(buf + 8), 8, 0);
	ret += (int)csum;
	ret += bpf_check_mtu(ctx, 0, &mtu, 0, 0);
	ret += bpf_fib_lookup(ctx, &fib_params, sizeof(fib_params), 0);
	ret += (int)bpf_jiffies64();
	ret += (int)bpf_ktime_get_boot_ns();
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + 14 <= data_end)
		((__u8 *)data)[0] ^= 1;
	if (bpf_xdp_adjust_tail(ctx, 0))
		return XDP_ABORTED;
	if (ret == 12345)
		return bpf_redirect(1, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
