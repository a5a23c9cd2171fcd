// SPDX-License-Identifier: (BSD-2-Clause OR GPL-2.0)
/*
 * progattr.bpf.c - an iter/bpf_prog program that reports, for every loaded program, the load
 * attributes struct bpf_prog_info does not: the expected attach type and the XDP frags flag.
 * One fixed-size record (struct rs_progattr_rec, agent/progattr.c) per program is written to
 * the iterator's seq file.  Fields that may be missing on other kernels are read with
 * CO-RE existence checks.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keep in sync with agent/progattr.c. */
struct rs_progattr_rec {
	__u32 id;
	__u32 type;
	__u32 expected_attach_type;
	__u32 flags;			/* RS_PA_* below */
};

#define RS_PA_XDP_HAS_FRAGS	(1U << 0)
#define RS_PA_HAS_FRAGS_FIELD	(1U << 1)	/* the kernel knows about frags at all */

SEC("iter/bpf_prog")
int rs_progattr(struct bpf_iter__bpf_prog *ctx)
{
	struct bpf_prog *prog = ctx->prog;
	struct rs_progattr_rec rec = {};
	struct bpf_prog_aux *aux;

	if (!prog)
		return 0;
	aux = BPF_CORE_READ(prog, aux);
	rec.id = BPF_CORE_READ(aux, id);
	rec.type = BPF_CORE_READ(prog, type);
	rec.expected_attach_type = BPF_CORE_READ(prog, expected_attach_type);
	if (bpf_core_field_exists(aux->xdp_has_frags)) {
		rec.flags |= RS_PA_HAS_FRAGS_FIELD;
		if (BPF_CORE_READ(aux, xdp_has_frags))
			rec.flags |= RS_PA_XDP_HAS_FRAGS;
	}
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}
