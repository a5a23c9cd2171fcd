/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/*
 * watcher.h - shared between bpf/watcher.bpf.c (the guard watcher on bpf()) and agent/guard.c:
 * the churn record and the default sizes of the watcher's maps.
 */
#ifndef RS_WATCHER_H
#define RS_WATCHER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RS_GUARD_MAX_SLOTS	1024	/* generation slots (max watched maps) */
#define RS_GUARD_CHURN_MAPS	4096	/* maps whose user-space writes are counted (LRU) */
#define RS_GUARD_INFLIGHT	16384	/* threads inside a write / load bpf() at once */

/*
 * The generation array: ONE array entry holding every slot, because the kernel allows direct
 * value loads (BPF_PSEUDO_MAP_VALUE / _IDX_VALUE, what a specialized program's guard prologue
 * uses) only on single-entry arrays.  Slot s is at byte offset s * 8 of entry 0.
 */
struct rs_guard_gens {
	__u64 gen[RS_GUARD_MAX_SLOTS];
};

/*
 * Group slots ("epochs"): a specialized program that relies on several maps checks ONE slot
 * that the watcher bumps whenever it bumps any of those maps' own slots.  rs_guard_subs[s] lists
 * the group slots that map slot s also bumps, as slot + 1 (0: unused entry).  Each entry is a
 * single aligned u32 written by user space through mmap, so the watcher reads a whole entry
 * or nothing; user space waits for older commands (quiescence) after adding one.
 */
#define RS_GUARD_MAX_SUBS	8	/* groups a map can belong to */

struct rs_guard_subs {
	__u32 sub[RS_GUARD_MAX_SUBS];
};

/* User-space writes to one map, seen at syscall entry (value of rs_guard_churn, key map id). */
struct rs_guard_churn_rec {
	__u64 writes;		/* elements written: 1 per single-element command, batch count */
	__u64 first_ns;		/* CLOCK_MONOTONIC of the first write seen */
	__u64 last_ns;		/* ... of the last one */
};

#endif /* RS_WATCHER_H */
