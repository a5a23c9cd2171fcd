// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * watcher.bpf.c - the guard watcher (DESIGN.md §3): bump a map's generation counter BEFORE any
 * user-space write reaches it, so a specialized program that checks its generations at entry
 * never runs constants that a write has made stale.  User-space half: agent/guard.c.
 *
 * Hook: syscalls/sys_enter_bpf (or raw_tp/sys_enter filtered on __NR_bpf without tracefs),
 * i.e. before the kernel has even copied the bpf_attr.  Commands handled:
 *   - BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_MAP_LOOKUP_AND_DELETE_ELEM,
 *     BPF_MAP_UPDATE_BATCH, BPF_MAP_DELETE_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH: the map fd
 *     is resolved to its id in the caller's fd table (bpf/fd_resolve.h); a watched id
 *     (rs_guard_slots: map id -> slot) gets rs_guard_gen[slot] atomically incremented, then
 *     every group slot listed in rs_guard_subs[slot] (a specialized program's single
 *     "epoch" slot covering all the maps it relies on), and every map gets its write count and time in rs_guard_churn (the profiler's churn).
 *   - BPF_PROG_LOAD: every map the new program references (ld_imm64 by fd or through
 *     fd_array, and the fd_array[fd_array_cnt] maps newer kernels bind) bumps its slot: the
 *     new program may write it, which the snapshot's writer analysis has not seen.  Loads of
 *     the agent's own process (exempt_tgid: lift proofs, specialized and instrumented copies
 *     of programs already analyzed) are exempt.
 *   - BPF_LINK_CREATE of a bpf_map_elem iterator: the iterator program may write the values
 *     of the map it walks, which it does not reference in its instructions.
 * BPF_MAP_FREEZE needs nothing (it forbids writes).  Every thread inside one of these commands
 * is recorded in rs_guard_inflight (pid_tgid -> entry time) until the syscall exits, so
 * user space can wait, after watching a map, for writes that entered before the watch
 * existed (rs_guard_watch's quiescence).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "fd_resolve.h"
#include "watcher.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Generation counters (watcher.h: one entry, slot s at offset s * 8); mmap-able so user space
 * bumps with the same atomic add. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_guard_gens);
} rs_guard_gen SEC(".maps");

/* Watched maps: map id -> slot (max_entries: the slots in use at most, set by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RS_GUARD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} rs_guard_slots SEC(".maps");

/* Group slots each slot also bumps (watcher.h; mmap-able: user space edits entries). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, RS_GUARD_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct rs_guard_subs);
} rs_guard_subs SEC(".maps");

/* User-space writes per map id (every map, watched or not). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RS_GUARD_CHURN_MAPS);
	__type(key, __u32);
	__type(value, struct rs_guard_churn_rec);
} rs_guard_churn SEC(".maps");

/* Threads inside a write / load command: pid_tgid -> bpf_ktime_get_ns() at entry. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RS_GUARD_INFLIGHT);
	__type(key, __u64);
	__type(value, __u64);
} rs_guard_inflight SEC(".maps");

/* Calibration of the fd walk (bpf/fd_resolve.h) and configuration, set by agent/guard.c. */
__u64 calib_pid_tgid;
__u64 map_fops;
__u32 exempt_tgid;		/* BPF_PROG_LOADs of this process do not bump */
/* Statistics. */
__u64 stat_writes, stat_loads, stat_bumps, stat_unresolved, stat_inflight_lost;

static __always_inline __u64 attr_u32(const void *uattr, __u32 size, __u32 off)
{
	__u32 v = 0;

	if (off + sizeof(v) > size || bpf_probe_read_user(&v, sizeof(v), uattr + off))
		return 0;
	return v;
}

static __always_inline __u64 attr_u64(const void *uattr, __u32 size, __u32 off)
{
	__u64 v = 0;

	if (off + sizeof(v) > size || bpf_probe_read_user(&v, sizeof(v), uattr + off))
		return 0;
	return v;
}

#define ATTR_OFF(field) __builtin_offsetof(union bpf_attr, field)

static void bump_id(__u32 id)
{
	struct rs_guard_gens *gens;
	struct rs_guard_subs *subs;
	__u32 *slot, s, e, i, zero = 0;

	slot = bpf_map_lookup_elem(&rs_guard_slots, &id);
	if (!slot)
		return;
	s = *slot;
	gens = bpf_map_lookup_elem(&rs_guard_gen, &zero);
	if (!gens || s >= RS_GUARD_MAX_SLOTS)
		return;
	__sync_fetch_and_add(&gens->gen[s], 1);
	__sync_fetch_and_add(&stat_bumps, 1);
	/* then every group slot the map belongs to */
	subs = bpf_map_lookup_elem(&rs_guard_subs, &s);
	if (!subs)
		return;
	for (i = 0; i < RS_GUARD_MAX_SUBS; i++) {
		e = *(volatile __u32 *)&subs->sub[i];
		if (e && e - 1 < RS_GUARD_MAX_SLOTS)
			__sync_fetch_and_add(&gens->gen[e - 1], 1);
	}
}

static void count_write(__u32 id, __u64 n)
{
	struct rs_guard_churn_rec *rec, init;
	__u64 now = bpf_ktime_get_ns();

	rec = bpf_map_lookup_elem(&rs_guard_churn, &id);
	if (!rec) {
		init.writes = n;
		init.first_ns = now;
		init.last_ns = now;
		if (!bpf_map_update_elem(&rs_guard_churn, &id, &init, BPF_NOEXIST))
			return;
		rec = bpf_map_lookup_elem(&rs_guard_churn, &id);
		if (!rec)
			return;
	}
	__sync_fetch_and_add(&rec->writes, n);
	rec->last_ns = now;
}

static void map_write(int fd, __u64 n)
{
	__u32 id = rs_fd_map_id(fd, map_fops);

	__sync_fetch_and_add(&stat_writes, 1);
	if (!id) {
		__sync_fetch_and_add(&stat_unresolved, 1);
		return;
	}
	bump_id(id);
	count_write(id, n);
}

struct scan_ctx {
	__u64 insns;
	__u64 fd_array;
	__u32 skip;
};

/* One instruction of a program being loaded: a map reference bumps the map's slot. */
static long scan_insn(__u64 i, struct scan_ctx *c)
{
	struct bpf_insn insn;
	int fd = -1;

	if (c->skip) {
		c->skip = 0;
		return 0;
	}
	if (bpf_probe_read_user(&insn, sizeof(insn), (void *)(c->insns + i * 8)))
		return 1;
	if (insn.code != RS_LDDW)
		return 0;
	c->skip = 1;
	if (rs_ldimm_map_fd(&insn, c->fd_array, &fd) <= 0)
		return 0;	/* no map reference, or one the kernel will refuse */
	bump_id(rs_fd_map_id(fd, map_fops));
	return 0;
}

/* One fd of fd_array[fd_array_cnt]: maps there are bound to the program even unreferenced. */
static long scan_fd(__u64 i, struct scan_ctx *c)
{
	int fd;

	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)(c->fd_array + i * 4)))
		return 1;
	bump_id(rs_fd_map_id(fd, map_fops));
	return 0;
}

static void prog_load(const void *uattr, __u32 size, __u64 pid_tgid)
{
	struct scan_ctx sc = {};
	__u32 cnt, fd_cnt;

	__sync_fetch_and_add(&stat_loads, 1);
	if (exempt_tgid && (pid_tgid >> 32) == exempt_tgid)
		return;
	sc.insns = attr_u64(uattr, size, ATTR_OFF(insns));
	sc.fd_array = attr_u64(uattr, size, ATTR_OFF(fd_array));
	cnt = attr_u32(uattr, size, ATTR_OFF(insn_cnt));
	if (sc.insns && cnt)
		bpf_loop(cnt, scan_insn, &sc, 0);
	fd_cnt = attr_u32(uattr, size, ATTR_OFF(fd_array_cnt));
	if (sc.fd_array && fd_cnt)
		bpf_loop(fd_cnt, scan_fd, &sc, 0);
}

static void link_create(const void *uattr, __u32 size)
{
	__u64 info;
	__u32 fd;

	if (attr_u32(uattr, size, ATTR_OFF(link_create.attach_type)) != BPF_TRACE_ITER)
		return;
	info = attr_u64(uattr, size, ATTR_OFF(link_create.iter_info));
	if (!info || attr_u32(uattr, size, ATTR_OFF(link_create.iter_info_len)) < sizeof(fd))
		return;
	if (bpf_probe_read_user(&fd, sizeof(fd), (void *)info) || !fd)
		return;
	bump_id(rs_fd_map_id(fd, map_fops));
}

static __always_inline int handle_enter(long cmd, const void *uattr, __u32 size)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 now;

	if (cmd == BPF_OBJ_GET_INFO_BY_FD && calib_pid_tgid && pid_tgid == calib_pid_tgid) {
		map_fops = rs_fd_fop(attr_u32(uattr, size, ATTR_OFF(info.bpf_fd)));
		return 0;
	}
	switch (cmd) {
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
	case BPF_PROG_LOAD:
	case BPF_LINK_CREATE:
		break;
	default:
		return 0;
	}
	/* in flight first, then look at the watch list (see rs_guard_watch) */
	now = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&rs_guard_inflight, &pid_tgid, &now, BPF_ANY))
		__sync_fetch_and_add(&stat_inflight_lost, 1);

	switch (cmd) {
	case BPF_MAP_UPDATE_ELEM:
	case BPF_MAP_DELETE_ELEM:
	case BPF_MAP_LOOKUP_AND_DELETE_ELEM:
		map_write(attr_u32(uattr, size, ATTR_OFF(map_fd)), 1);
		break;
	case BPF_MAP_UPDATE_BATCH:
	case BPF_MAP_DELETE_BATCH:
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
		map_write(attr_u32(uattr, size, ATTR_OFF(batch.map_fd)),
			  attr_u32(uattr, size, ATTR_OFF(batch.count)) ?: 1);
		break;
	case BPF_PROG_LOAD:
		prog_load(uattr, size, pid_tgid);
		break;
	default:
		link_create(uattr, size);
		break;
	}
	return 0;
}

static __always_inline int handle_exit(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (bpf_map_lookup_elem(&rs_guard_inflight, &pid_tgid))
		bpf_map_delete_elem(&rs_guard_inflight, &pid_tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int rs_guard_tp_enter(struct trace_event_raw_sys_enter *ctx)
{
	return handle_enter(ctx->args[0], (const void *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int rs_guard_tp_exit(struct trace_event_raw_sys_exit *ctx)
{
	return handle_exit();
}

SEC("raw_tp/sys_enter")
int BPF_PROG(rs_guard_raw_enter, struct pt_regs *regs, long id)
{
	if (id != RS_NR_BPF)
		return 0;
	return handle_enter(PT_REGS_PARM1_CORE_SYSCALL(regs),
			    (const void *)PT_REGS_PARM2_CORE_SYSCALL(regs),
			    PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* Every syscall's exit: only threads recorded in flight have an entry to remove. */
SEC("raw_tp/sys_exit")
int BPF_PROG(rs_guard_raw_exit, struct pt_regs *regs, long ret)
{
	return handle_exit();
}
