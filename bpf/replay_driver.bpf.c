// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * replay_driver.bpf.c - the trace driver of `respec replay` timing (docs/replay.md).
 *
 * BPF_PROG_TEST_RUN with repeat > 1 does not reset the packet buffer between runs, so a
 * program that moves the head or tail sees its own output next time, and one test run only
 * ever times one packet.  This XDP program is run with a large repeat instead of the target:
 * every run it
 *   1. undoes whatever the previous run did to the frame: metadata, head and tail (it keeps the
 *      frame's original data pointer as a number in `state`, which needs the privileged
 *      "pointer leak" permission: root / CAP_PERFMON); the metadata and head calls are made
 *      every run, moved or not, so their cost is the same for every target and subtracted;
 *   2. sizes the frame to the next trace packet and copies that packet (up to
 *      RS_DRV_COPY_MAX bytes) from the `pkts` map into it;
 *   3. tail-calls the program in slot `state.slot` of the `target` prog array.
 * User space sizes `pkts`, fills it, puts the programs under test and an empty program (to
 * measure the driver alone) into slots of `target` once, and resets `state` (start packet,
 * slot) before every test run.  The targets must share the driver's program type, expected
 * attach type and frags flag (set before load).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "bpf/replay_driver.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);		/* resized to the trace length before load */
	__type(key, __u32);
	__type(value, struct rs_drv_pkt);
} pkts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_drv_state);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 3);		/* programs under test, chosen by state.slot */
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

/* Read a value back from the map so that it is a plain number, never the pointer stored. */
#define RD(x) (*(volatile __u64 *)&(x))

SEC("xdp")
int replay_driver(struct xdp_md *ctx)
{
	struct rs_drv_state *st;
	struct rs_drv_pkt *pkt;
	__u32 zero = 0, idx, n;
	__s64 delta;

	st = bpf_map_lookup_elem(&state, &zero);
	if (!st)
		return XDP_ABORTED;

	st->cur_meta = (__u64)(long)ctx->data_meta;
	st->cur_data = (__u64)(long)ctx->data;
	if (!st->started) {
		st->base_data = (__u64)(long)ctx->data;
		st->started = 1;
	}
	/* 1. undo the previous run: metadata, then head.  Both calls are made even when nothing
	 * moved, so the restore costs the same after every target, the empty one included, and
	 * subtracting the empty target's cost removes it (a program that moves the head is not
	 * charged for the driver putting it back). */
	delta = RD(st->cur_data) - RD(st->cur_meta);
	if (bpf_xdp_adjust_meta(ctx, (int)delta))
		st->errors++;
	delta = RD(st->base_data) - RD(st->cur_data);
	if (bpf_xdp_adjust_head(ctx, (int)delta))
		st->errors++;

	/* 2. next packet: size the frame, copy the bytes */
	idx = st->next;
	if (idx >= st->cnt)
		idx = 0;
	st->next = idx + 1;
	pkt = bpf_map_lookup_elem(&pkts, &idx);
	if (!pkt)
		return XDP_ABORTED;
	st->cur_data = (__u64)(long)ctx->data;
	st->cur_end = (__u64)(long)ctx->data_end;
	delta = (__s64)pkt->len - (__s64)(RD(st->cur_end) - RD(st->cur_data));
	if (delta && bpf_xdp_adjust_tail(ctx, (int)delta))
		st->errors++;
	n = pkt->copy;
	if (n > RS_DRV_COPY_MAX)
		n = RS_DRV_COPY_MAX;
	if (n < 1)
		n = 1;
	if (bpf_xdp_store_bytes(ctx, 0, pkt->data, n))
		st->errors++;

	/* 3. the program under test */
	bpf_tail_call(ctx, &target, st->slot);
	st->errors++;
	return XDP_ABORTED;
}
