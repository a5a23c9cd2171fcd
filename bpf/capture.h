/* SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0) */
/*
 * capture.h - record format of capture at load: written by bpf/capture.bpf.c into its ring
 * buffer, read by agent/capture.c.  One definition for both sides.
 */
#ifndef RS_CAPTURE_H
#define RS_CAPTURE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RS_CAP_CHUNK		4096
#define RS_CAP_ATTR_MAX		256
#define RS_CAP_LICENSE_MAX	128

enum rs_cap_kind {
	RS_CAP_ENTER = 1,
	RS_CAP_CHUNK_REC = 2,
	RS_CAP_MAPREF = 3,
	RS_CAP_EXIT = 4,
};

enum rs_cap_blob {
	RS_BLOB_INSNS = 1,
	RS_BLOB_FUNC_INFO = 2,
	RS_BLOB_LINE_INFO = 3,
	RS_BLOB_MAX,
};

struct rs_cap_hdr {
	__u32 kind;
	__u32 size;		/* sizeof the whole record */
	__u64 pid_tgid;
	__u64 seq;		/* ktime at entry: same for all records of one load */
};

struct rs_cap_enter {
	struct rs_cap_hdr h;
	__u32 attr_size;	/* size argument of bpf() */
	__u32 btf_id;		/* id of attr.prog_btf_fd, 0 if none */
	__s32 attr_err;		/* copy errors (negative) */
	__s32 btf_err;
	__u8 attr[RS_CAP_ATTR_MAX];
	char license[RS_CAP_LICENSE_MAX];
};

struct rs_cap_chunk {
	struct rs_cap_hdr h;
	__u32 blob;		/* enum rs_cap_blob */
	__u32 off;		/* byte offset in the blob */
	__u32 len;
	__s32 err;
	__u8 data[RS_CAP_CHUNK];
};

struct rs_cap_mapref {
	struct rs_cap_hdr h;
	__u32 insn;		/* index of the ld_imm64 */
	__u32 src_reg;
	__s32 fd;
	__s32 err;		/* 0, or why the fd did not resolve */
	__u32 map_id;
	__u32 map_type;
	__u32 key_size;
	__u32 value_size;
	__u32 max_entries;
	__u32 map_flags;
	char name[16];
};

struct rs_cap_exit {
	struct rs_cap_hdr h;
	__s64 ret;		/* bpf() return value: the prog fd or -errno */
	__u32 prog_id;
	__s32 err;		/* resolving the fd */
	__u32 chunks;		/* records emitted at entry, to detect losses */
	__u32 refs;
	__u32 lost;		/* records that did not fit in the ring */
	__u32 pad;
};

#endif /* RS_CAPTURE_H */
