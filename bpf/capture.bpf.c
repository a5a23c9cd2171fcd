// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * capture.bpf.c - capture at load: the exact original bytes of every BPF_PROG_LOAD on the host.
 *
 * On entry to bpf(BPF_PROG_LOAD) (tracepoint syscalls/sys_enter_bpf, or raw_tp/sys_enter
 * filtered on __NR_bpf when tracefs is absent) the program copies from the loader's memory:
 * union bpf_attr, the license, the instruction array, func_info and line_info, in 4 KiB chunks
 * into a ring buffer (any size up to the ring's capacity; 1M instructions = 8 MiB), and
 * resolves every map an ld_imm64 refers to (BPF_PSEUDO_MAP_FD/_VALUE by fd, BPF_PSEUDO_MAP_IDX*
 * through attr.fd_array) to its kernel map id by walking current->files->fdt->fd[fd].  On exit
 * (syscalls/sys_exit_bpf or raw_tp/sys_exit) the returned fd is turned into the new program's
 * id the same way.  Records of one load share pid_tgid and seq; user space (agent/capture.c)
 * assembles them.
 *
 * Safety of the fd walk (bpf/fd_resolve.h, shared with bpf/watcher.bpf.c): a file's
 * private_data is only trusted when file->f_op is the file_operations of bpf maps (resp.
 * programs, BTF objects).  Their addresses are not in BTF
 * nor (without CONFIG_KALLSYMS_ALL) in kallsyms, so user space calibrates them at start: it
 * calls bpf(BPF_OBJ_GET_INFO_BY_FD) on a map, a program and a BTF fd of its own from the
 * thread named in calib_pid_tgid, and the enter program records those files' f_op.
 * All kernel reads go through bpf_probe_read_kernel (BPF_CORE_READ), so a stale or racing fd
 * can give a wrong answer but never a fault; user space checks the result against the
 * kernel (map info by id, program tag).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#include "capture.h"
#include "fd_resolve.h"

struct inflight {
	__u64 seq;
	__u32 chunks;
	__u32 refs;
	__u32 lost;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} rs_cap_events SEC(".maps");

/* LRU: an entry whose exit never came (should not happen) cannot fill the map for good. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct inflight);
} rs_cap_inflight SEC(".maps");

/* Calibration (see the header comment). */
__u64 calib_pid_tgid;
__u32 calib_kind;		/* 1 map, 2 prog, 3 btf */
__u64 map_fops, prog_fops, btf_fops;
/* Statistics. */
__u64 stat_loads, stat_lost, stat_exit_unknown;

static void calibrate(union bpf_attr *uattr)
{
	__u32 fd = 0;
	__u64 fop;

	if (bpf_probe_read_user(&fd, sizeof(fd), &uattr->info.bpf_fd))
		return;
	fop = rs_fd_fop(fd);
	if (!fop)
		return;
	if (calib_kind == 1)
		map_fops = fop;
	else if (calib_kind == 2)
		prog_fops = fop;
	else if (calib_kind == 3)
		btf_fops = fop;
}

struct copy_ctx {
	__u64 pid_tgid;
	__u64 seq;
	__u64 src;
	__u32 total;
	__u32 blob;
	__u32 chunks;
	__u32 lost;
};

static long copy_cb(__u64 i, struct copy_ctx *c)
{
	struct rs_cap_chunk *r;
	__u32 off = i * RS_CAP_CHUNK;
	__u32 len;

	if (off >= c->total)
		return 1;
	len = c->total - off;
	if (len > RS_CAP_CHUNK)
		len = RS_CAP_CHUNK;
	/* same value (1..4096), in a form the verifier can bound */
	len = ((len - 1) & (RS_CAP_CHUNK - 1)) + 1;
	r = bpf_ringbuf_reserve(&rs_cap_events, sizeof(*r), 0);
	if (!r) {
		c->lost++;
		return 1;
	}
	r->h.kind = RS_CAP_CHUNK_REC;
	r->h.size = sizeof(*r);
	r->h.pid_tgid = c->pid_tgid;
	r->h.seq = c->seq;
	r->blob = c->blob;
	r->off = off;
	r->len = len;
	r->err = bpf_probe_read_user(r->data, len, (void *)(c->src + off));
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	c->chunks++;
	return 0;
}

static void copy_blob(struct copy_ctx *c, __u32 blob, __u64 src, __u64 total)
{
	if (!src || !total)
		return;
	if (total > (64ULL << 20)) {	/* beyond any ring we would allocate */
		c->lost++;
		return;
	}
	c->blob = blob;
	c->src = src;
	c->total = total;
	bpf_loop((total + RS_CAP_CHUNK - 1) / RS_CAP_CHUNK, copy_cb, c, 0);
}

struct scan_ctx {
	__u64 pid_tgid;
	__u64 seq;
	__u64 insns;
	__u64 fd_array;
	__u32 refs;
	__u32 lost;
	__u32 skip;
	__u32 pad;
};

static void resolve_map(struct rs_cap_mapref *r, int fd)
{
	struct bpf_map *map;
	int err;

	map = rs_fd_private(fd, map_fops, &err);
	r->err = err;
	if (!map)
		return;
	r->map_id = BPF_CORE_READ(map, id);
	r->map_type = BPF_CORE_READ(map, map_type);
	r->key_size = BPF_CORE_READ(map, key_size);
	r->value_size = BPF_CORE_READ(map, value_size);
	r->max_entries = BPF_CORE_READ(map, max_entries);
	r->map_flags = BPF_CORE_READ(map, map_flags);
	BPF_CORE_READ_INTO(&r->name, map, name);
}

static long scan_cb(__u64 i, struct scan_ctx *c)
{
	struct rs_cap_mapref *r;
	struct bpf_insn insn;
	int fd = -1, err = 0;

	if (c->skip) {
		c->skip = 0;
		return 0;
	}
	if (bpf_probe_read_user(&insn, sizeof(insn), (void *)(c->insns + i * 8)))
		return 1;
	if (insn.code != RS_LDDW)
		return 0;
	c->skip = 1;
	err = rs_ldimm_map_fd(&insn, c->fd_array, &fd);
	if (!err)
		return 0;
	if (err > 0)
		err = 0;
	r = bpf_ringbuf_reserve(&rs_cap_events, sizeof(*r), 0);
	if (!r) {
		c->lost++;
		return 0;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->h.kind = RS_CAP_MAPREF;
	r->h.size = sizeof(*r);
	r->h.pid_tgid = c->pid_tgid;
	r->h.seq = c->seq;
	r->insn = i;
	r->src_reg = insn.src_reg;
	r->fd = fd;
	if (err)
		r->err = err;
	else
		resolve_map(r, fd);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	c->refs++;
	return 0;
}

static __always_inline int handle_enter(long cmd, union bpf_attr *uattr, __u32 size)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rs_cap_enter *e;
	struct inflight fl = {};
	struct copy_ctx cc = {};
	struct scan_ctx sc = {};
	union bpf_attr *a;
	struct btf *btf;
	__u32 n = size;
	int err;

	if (cmd == BPF_OBJ_GET_INFO_BY_FD && calib_pid_tgid && pid_tgid == calib_pid_tgid) {
		calibrate(uattr);
		return 0;
	}
	if (cmd != BPF_PROG_LOAD)
		return 0;
	__sync_fetch_and_add(&stat_loads, 1);
	fl.seq = bpf_ktime_get_ns();

	e = bpf_ringbuf_reserve(&rs_cap_events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stat_lost, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->h.kind = RS_CAP_ENTER;
	e->h.size = sizeof(*e);
	e->h.pid_tgid = pid_tgid;
	e->h.seq = fl.seq;
	e->attr_size = size;
	if (n > RS_CAP_ATTR_MAX)
		n = RS_CAP_ATTR_MAX;
	if (n == 0) {
		e->attr_err = -22;
	} else {
		n = ((n - 1) & (RS_CAP_ATTR_MAX - 1)) + 1;	/* same value, bounded */
		e->attr_err = bpf_probe_read_user(e->attr, n, uattr);
	}
	a = (union bpf_attr *)e->attr;
	if (a->license)
		bpf_probe_read_user_str(e->license, sizeof(e->license), (void *)a->license);
	if (a->prog_btf_fd) {
		btf = rs_fd_private(a->prog_btf_fd, btf_fops, &err);
		e->btf_err = err;
		if (btf)
			e->btf_id = BPF_CORE_READ(btf, id);
	}

	cc.pid_tgid = sc.pid_tgid = pid_tgid;
	cc.seq = sc.seq = fl.seq;
	sc.insns = a->insns;
	sc.fd_array = a->fd_array;
	copy_blob(&cc, RS_BLOB_INSNS, a->insns, (__u64)a->insn_cnt * 8);
	copy_blob(&cc, RS_BLOB_FUNC_INFO, a->func_info,
		  (__u64)a->func_info_cnt * a->func_info_rec_size);
	copy_blob(&cc, RS_BLOB_LINE_INFO, a->line_info,
		  (__u64)a->line_info_cnt * a->line_info_rec_size);
	if (a->insns && a->insn_cnt)
		bpf_loop(a->insn_cnt, scan_cb, &sc, 0);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);

	fl.chunks = cc.chunks;
	fl.refs = sc.refs;
	fl.lost = cc.lost + sc.lost;
	if (fl.lost)
		__sync_fetch_and_add(&stat_lost, fl.lost);
	bpf_map_update_elem(&rs_cap_inflight, &pid_tgid, &fl, BPF_ANY);
	return 0;
}

static __always_inline int handle_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct rs_cap_exit *x;
	struct inflight *fl;
	struct bpf_prog *prog;
	int err = 0;

	fl = bpf_map_lookup_elem(&rs_cap_inflight, &pid_tgid);
	if (!fl)
		return 0;
	x = bpf_ringbuf_reserve(&rs_cap_events, sizeof(*x), 0);
	if (!x) {
		__sync_fetch_and_add(&stat_lost, 1);
		goto out;
	}
	__builtin_memset(x, 0, sizeof(*x));
	x->h.kind = RS_CAP_EXIT;
	x->h.size = sizeof(*x);
	x->h.pid_tgid = pid_tgid;
	x->h.seq = fl->seq;
	x->ret = ret;
	x->chunks = fl->chunks;
	x->refs = fl->refs;
	x->lost = fl->lost;
	if (ret >= 0) {
		prog = rs_fd_private(ret, prog_fops, &err);
		x->err = err;
		if (prog)
			x->prog_id = BPF_CORE_READ(prog, aux, id);
	}
	bpf_ringbuf_submit(x, BPF_RB_FORCE_WAKEUP);	/* earlier records sent none */
out:
	bpf_map_delete_elem(&rs_cap_inflight, &pid_tgid);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_bpf")
int rs_cap_tp_enter(struct trace_event_raw_sys_enter *ctx)
{
	return handle_enter(ctx->args[0], (union bpf_attr *)ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_bpf")
int rs_cap_tp_exit(struct trace_event_raw_sys_exit *ctx)
{
	return handle_exit(ctx->ret);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(rs_cap_raw_enter, struct pt_regs *regs, long id)
{
	if (id != RS_NR_BPF)
		return 0;
	return handle_enter(PT_REGS_PARM1_CORE_SYSCALL(regs),
			    (union bpf_attr *)PT_REGS_PARM2_CORE_SYSCALL(regs),
			    PT_REGS_PARM3_CORE_SYSCALL(regs));
}

/* No syscall-number check needed: an inflight entry exists only between the entry and the
 * exit of a BPF_PROG_LOAD of this very thread. */
SEC("raw_tp/sys_exit")
int BPF_PROG(rs_cap_raw_exit, struct pt_regs *regs, long ret)
{
	return handle_exit(ret);
}
