/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/*
 * fd_resolve.h - BPF side: turn a file descriptor of the current task into the kernel object
 * behind it (a bpf_map, bpf_prog or btf), for the agent's programs on the bpf() syscall
 * (bpf/capture.bpf.c, bpf/watcher.bpf.c).  Include after vmlinux.h and bpf_core_read.h.
 *
 * The fd is looked up in current->files->fdt; the file's private_data is only trusted when
 * file->f_op equals the file_operations of the wanted kind.  Those addresses are not in BTF
 * nor (without CONFIG_KALLSYMS_ALL) in kallsyms, so user space calibrates them: it calls
 * bpf(BPF_OBJ_GET_INFO_BY_FD) on an fd of the wanted kind from a known thread, and the program
 * records rs_fd_fop() of attr.info.bpf_fd.  Every kernel read goes through
 * bpf_probe_read_kernel (BPF_CORE_READ): a stale or racing fd can give a wrong answer, never
 * a fault.
 *
 * Also shared by both: the bpf() syscall number for the raw_tp/sys_enter fallback and the map
 * fd an ld_imm64 of a program being loaded refers to.
 */
#ifndef RS_FD_RESOLVE_H
#define RS_FD_RESOLVE_H

#if defined(__TARGET_ARCH_x86)
#define RS_NR_BPF	321
#elif defined(__TARGET_ARCH_arm64)
#define RS_NR_BPF	280
#else
#define RS_NR_BPF	-1	/* raw_tp hook unsupported on this arch */
#endif

#define RS_LDDW			0x18	/* BPF_LD | BPF_IMM | BPF_DW */
#define RS_PSEUDO_MAP_FD	1
#define RS_PSEUDO_MAP_VALUE	2
#define RS_PSEUDO_MAP_IDX	5
#define RS_PSEUDO_MAP_IDX_VALUE	6

#define RS_FD_EBADF		(-9)
#define RS_FD_EFAULT		(-14)
#define RS_FD_EINVAL		(-22)
#define RS_FD_EOPNOTSUPP	(-95)

/* The struct file of `fd` in the current task, NULL when none. */
static __always_inline struct file *rs_fd_to_file(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt;
	struct file **fds;
	struct file *f = NULL;
	unsigned int max;

	if (fd < 0)
		return NULL;
	fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return NULL;
	max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned int)fd >= max)
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

/* f_op of fd's file (0 when no file): what calibration records. */
static __always_inline __u64 rs_fd_fop(int fd)
{
	struct file *f = rs_fd_to_file(fd);

	return f ? (__u64)BPF_CORE_READ(f, f_op) : 0;
}

/* private_data of fd's file when its f_op is `fops`, else NULL (*err says why). */
static __always_inline void *rs_fd_private(int fd, __u64 fops, int *err)
{
	struct file *f;

	if (!fops) {
		*err = RS_FD_EOPNOTSUPP;	/* not calibrated */
		return NULL;
	}
	f = rs_fd_to_file(fd);
	if (!f) {
		*err = RS_FD_EBADF;
		return NULL;
	}
	if ((__u64)BPF_CORE_READ(f, f_op) != fops) {
		*err = RS_FD_EINVAL;		/* not of the wanted kind */
		return NULL;
	}
	*err = 0;
	return BPF_CORE_READ(f, private_data);
}

/* Kernel id of the map behind `fd`, 0 when it is not a map (map_fops from calibration). */
static __always_inline __u32 rs_fd_map_id(int fd, __u64 map_fops)
{
	struct bpf_map *map;
	int err;

	map = rs_fd_private(fd, map_fops, &err);
	return map ? BPF_CORE_READ(map, id) : 0;
}

/*
 * The map fd that the ld_imm64 `insn` of a program being loaded refers to: 1 with *fd set
 * (BPF_PSEUDO_MAP_FD/_VALUE carry it, the _IDX forms index the loader's fd_array, a user
 * address), 0 when insn is no map reference, RS_FD_EINVAL / RS_FD_EFAULT when an _IDX form
 * cannot be resolved (the kernel will refuse such a load).
 */
static __always_inline int rs_ldimm_map_fd(const struct bpf_insn *insn, __u64 fd_array,
					   int *fd)
{
	if (insn->src_reg == RS_PSEUDO_MAP_FD || insn->src_reg == RS_PSEUDO_MAP_VALUE) {
		*fd = insn->imm;
		return 1;
	}
	if (insn->src_reg != RS_PSEUDO_MAP_IDX && insn->src_reg != RS_PSEUDO_MAP_IDX_VALUE)
		return 0;
	if (!fd_array || insn->imm < 0)
		return RS_FD_EINVAL;
	if (bpf_probe_read_user(fd, sizeof(*fd), (void *)(fd_array + (__u64)insn->imm * 4)))
		return RS_FD_EFAULT;
	return 1;
}

#endif /* RS_FD_RESOLVE_H */
