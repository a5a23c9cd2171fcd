// SPDX-License-Identifier: BSD-2-Clause
/*
 * validate.c - structural validation of an rs_prog before it goes anywhere near the kernel.
 *
 * Checks what the verifier would reject for structural reasons, with a message naming the
 * instruction: opcodes and fields, r10 never written, branch and call targets inside the
 * program and not on the second half of an ld_imm64, branches staying inside their
 * subprogram, pseudo calls landing on subprogram starts, subprograms ending in exit or an
 * unconditional jump, map references by index into maps[], func_info matching the subprogram
 * starts, line_info sorted, in range and covering every subprogram start.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "optimizer/ir.h"

struct vctx {
	const struct rs_prog *p;
	char *err;
	size_t errsz;
	bool *half;
	int *sub;		/* per insn: subprogram index */
	size_t *starts;
	size_t n_starts;
};

__attribute__((format(printf, 2, 3)))
static int bad(struct vctx *v, const char *fmt, ...)
{
	va_list ap;

	if (v->err && v->errsz) {
		va_start(ap, fmt);
		vsnprintf(v->err, v->errsz, fmt, ap);
		va_end(ap);
	}
	return -RS_ERR_INVALID_PROG;
}

static int check_insns(struct vctx *v)
{
	const struct rs_prog *p = v->p;
	size_t i;

	for (i = 0; i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];

		if (v->half[i])
			continue;
		if (rs_insn_check(p->insns, p->insn_cnt, i))
			return bad(v, "insn %zu: invalid instruction (code 0x%02x)", i, in->code);
		if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && in->off == BPF_ADDR_PERCPU)
			return bad(v, "insn %zu: kernel-internal percpu mov cannot be loaded", i);
		if (rs_insn_defs(in) & (1u << RS_REG_FP))
			return bad(v, "insn %zu: writes r10 (the frame pointer is read-only)", i);
		if (!rs_insn_is_ldimm64(in))
			continue;
		v->half[i + 1] = true;
		switch (in->src_reg) {
		case BPF_PSEUDO_MAP_FD:
		case BPF_PSEUDO_MAP_VALUE:
			return bad(v, "insn %zu: map referenced by fd %d, expected an index into maps[]",
				   i, in->imm);
		case BPF_PSEUDO_MAP_IDX:
		case BPF_PSEUDO_MAP_IDX_VALUE:
			if (in->imm < 0 || (size_t)in->imm >= p->map_cnt)
				return bad(v, "insn %zu: map index %d out of range (%zu maps)", i,
					   in->imm, p->map_cnt);
			break;
		}
	}
	return 0;
}

static int check_targets(struct vctx *v)
{
	const struct rs_prog *p = v->p;
	size_t i, k;

	for (i = 0; i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];
		bool call = rs_insn_is_pseudo_call(in) || rs_insn_is_pseudo_func(in);
		long t;

		if (v->half[i] || (!rs_insn_is_jmp(in) && !call))
			continue;
		t = rs_insn_target(p->insns, i);
		if (t < 0 || (size_t)t >= p->insn_cnt)
			return bad(v, "insn %zu: %s target %ld outside the program (%zu insns)", i,
				   call ? "call" : "branch", t, p->insn_cnt);
		if (v->half[t])
			return bad(v, "insn %zu: target %ld is the second half of an ld_imm64", i, t);
		if (call) {
			for (k = 0; k < v->n_starts && v->starts[k] != (size_t)t; k++)
				;
			if (k == v->n_starts)
				return bad(v, "insn %zu: call target %ld is not a subprogram start", i,
					   t);
		} else if (v->sub[t] != v->sub[i]) {
			return bad(v, "insn %zu: branch to insn %ld leaves subprogram %d", i, t,
				   v->sub[i]);
		}
	}
	return 0;
}

static int check_subprog_ends(struct vctx *v)
{
	const struct rs_prog *p = v->p;
	size_t k;

	for (k = 0; k < v->n_starts; k++) {
		size_t end = k + 1 < v->n_starts ? v->starts[k + 1] : p->insn_cnt;
		size_t last = end - 1;
		const struct bpf_insn *in;

		if (v->half[v->starts[k]])
			return bad(v, "insn %zu: subprogram starts on the second half of an ld_imm64",
				   v->starts[k]);
		if (v->half[last])
			last--;
		in = &p->insns[last];
		if (!rs_insn_is_exit(in) && !rs_insn_is_uncond_jmp(in))
			return bad(v, "insn %zu: subprogram %zu does not end in exit or a jump", last,
				   k);
	}
	return 0;
}

static int check_func_info(struct vctx *v)
{
	const struct rs_prog *p = v->p;
	size_t k, *calls, n_calls;

	if (!p->func_info_cnt)
		return 0;
	for (k = 0; k < p->func_info_cnt; k++) {
		uint32_t off = p->func_info[k].insn_off;

		if (off >= p->insn_cnt)
			return bad(v, "insn %u: func_info[%zu] outside the program", off, k);
		if (k && off <= p->func_info[k - 1].insn_off)
			return bad(v, "insn %u: func_info[%zu] not sorted", off, k);
	}
	if (p->func_info[0].insn_off != 0)
		return bad(v, "insn 0: no func_info for the main program");
	/* the kernel takes subprograms from call targets only: func_info must match them */
	if (rs_subprog_starts(p->insns, p->insn_cnt, NULL, 0, &calls, &n_calls))
		return -ENOMEM;
	for (k = 0; k < n_calls && k < p->func_info_cnt; k++)
		if (calls[k] != p->func_info[k].insn_off)
			break;
	if (k < n_calls || k < p->func_info_cnt) {
		size_t at = k < n_calls ? calls[k] : p->func_info[k].insn_off;

		free(calls);
		return bad(v, "insn %zu: func_info does not match the subprogram starts (%zu func_info, %zu subprograms)",
			   at, p->func_info_cnt, n_calls);
	}
	free(calls);
	return 0;
}

static int check_line_info(struct vctx *v)
{
	const struct rs_prog *p = v->p;
	size_t k, s = 0;

	if (!p->line_info_cnt)
		return 0;
	for (k = 0; k < p->line_info_cnt; k++) {
		uint32_t off = p->line_info[k].insn_off;

		if (off >= p->insn_cnt)
			return bad(v, "insn %u: line_info[%zu] outside the program", off, k);
		if (k && off <= p->line_info[k - 1].insn_off)
			return bad(v, "insn %u: line_info[%zu] not sorted", off, k);
		if (v->half[off])
			return bad(v, "insn %u: line_info[%zu] on the second half of an ld_imm64",
				   off, k);
	}
	for (k = 0; k < v->n_starts; k++) {
		while (s < p->line_info_cnt && p->line_info[s].insn_off < v->starts[k])
			s++;
		if (s == p->line_info_cnt || p->line_info[s].insn_off != v->starts[k])
			return bad(v, "insn %zu: subprogram %zu has no line_info at its start",
				   v->starts[k], k);
	}
	return 0;
}

int rs_prog_validate(const struct rs_prog *p, char *err, size_t errsz)
{
	struct vctx v = { .p = p, .err = err, .errsz = errsz };
	size_t i, k;
	int ret;

	if (err && errsz)
		err[0] = '\0';
	if (!p->insn_cnt || !p->insns)
		return bad(&v, "insn 0: empty program");
	v.half = calloc(p->insn_cnt + 1, sizeof(*v.half));
	v.sub = calloc(p->insn_cnt, sizeof(*v.sub));
	if (!v.half || !v.sub) {
		ret = -ENOMEM;
		goto out;
	}
	ret = check_insns(&v);
	if (ret)
		goto out;
	ret = rs_subprog_starts(p->insns, p->insn_cnt, p->func_info, p->func_info_cnt,
				&v.starts, &v.n_starts);
	if (ret)
		goto out;
	for (i = 0, k = 0; i < p->insn_cnt; i++) {
		while (k + 1 < v.n_starts && v.starts[k + 1] <= i)
			k++;
		v.sub[i] = (int)k;
	}
	ret = check_targets(&v);
	if (!ret)
		ret = check_subprog_ends(&v);
	if (!ret)
		ret = check_func_info(&v);
	if (!ret)
		ret = check_line_info(&v);
out:
	if (ret && ret != -ENOMEM)
		rs_debug("prog %u (%s): invalid: %s", p->id, p->name, err ? err : "");
	free(v.half);
	free(v.sub);
	free(v.starts);
	return ret;
}
