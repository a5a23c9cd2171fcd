/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/*
 * replay_driver.h - map layouts shared by the trace driver (bpf/replay_driver.bpf.c) and the
 * timing code that feeds it (instrument/timing.c).
 */
#ifndef RS_REPLAY_DRIVER_H
#define RS_REPLAY_DRIVER_H

#include <linux/types.h>

/* Bytes of each trace packet copied into the frame per run (headers; the rest is stale). */
#define RS_DRV_COPY_MAX 256

struct rs_drv_pkt {
	__u32 len;			/* frame length of this packet */
	__u32 copy;			/* bytes of data[] to copy (min(len, RS_DRV_COPY_MAX)) */
	__u8 data[RS_DRV_COPY_MAX];
};

struct rs_drv_state {
	__u64 base_data;		/* frame's data pointer at the first run (as a number) */
	__u64 cur_data;			/* scratch: pointers of the current run as numbers */
	__u64 cur_meta;
	__u64 cur_end;
	__u32 next;			/* index of the next packet */
	__u32 cnt;			/* packets in `pkts` */
	__u32 started;			/* 0: the next run records base_data */
	__u32 errors;			/* failed helper calls / tail calls (should stay 0) */
	__u32 slot;			/* slot of `target` to tail-call */
	__u32 pad;
};

#endif /* RS_REPLAY_DRIVER_H */
