// SPDX-License-Identifier: BSD-2-Clause
/*
 * dce.c - dead code elimination.
 *
 * What: (1) blocks no path reaches from their subprogram's entry are removed (subprograms
 * themselves are kept: they are entered by calls), and a `ja` that then jumps to the very next
 * surviving instruction goes too; (2) instructions whose only effect is to write registers that
 * are dead afterwards (register liveness) are removed, repeatedly, since removing one can make
 * its inputs dead.
 * Why: branch folding (constprop) and the map passes leave arms nobody takes and loads nobody
 * reads; the verifier refuses unreachable code, and every instruction costs at run time.
 * Preconditions: none beyond a valid program.  Never removed: stores, atomics, calls (helpers
 * have side effects), exits, branches of live blocks, legacy packet loads (they can end the
 * program), writes of r10.  Removing a dead load is safe: the verifier proved it in bounds, and
 * BPF loads have no side effects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

#define DCE_MAX_ROUNDS 16

static bool removable(const struct bpf_insn *in)
{
	uint8_t cls = BPF_CLASS(in->code);

	if (rs_insn_is_ldimm64(in))
		return in->src_reg != BPF_PSEUDO_FUNC;
	if (cls == BPF_ALU || cls == BPF_ALU64)
		return in->dst_reg != RS_REG_FP;
	if (cls == BPF_LDX)
		return BPF_MODE(in->code) == BPF_MEM || BPF_MODE(in->code) == BPF_MEMSX;
	return false;
}

/* blocks reachable from the subprogram entries */
static int reachable(const struct rs_cfg *cfg, bool **out)
{
	bool *r = calloc(cfg->bb_cnt + 1, sizeof(*r));
	int *stack = malloc((cfg->bb_cnt + 1) * sizeof(*stack));
	size_t sp = 0, k;

	if (!r || !stack) {
		free(r);
		free(stack);
		return -ENOMEM;
	}
	for (k = 0; k < cfg->subprog_cnt; k++) {
		int e = cfg->subprogs[k].entry_bb;

		if (e >= 0 && !r[e]) {
			r[e] = true;
			stack[sp++] = e;
		}
	}
	while (sp) {
		const struct rs_bb *b = &cfg->bbs[stack[--sp]];
		int j;

		for (j = 0; j < 2; j++) {
			int s = b->succ[j];

			if (s != RS_NO_SUCC && !r[s]) {
				r[s] = true;
				stack[sp++] = s;
			}
		}
	}
	free(stack);
	*out = r;
	return 0;
}

/* round 1: unreachable blocks and jumps over nothing */
/* *gen: generated instructions (no original index) removed, summed up in one remark */
static int remove_unreachable(struct rs_opt_ctx *ctx, size_t *removed, size_t *gen)
{
	const struct rs_prog *p = &ctx->prog;
	struct rs_cfg cfg;
	struct rs_edit *e = NULL;
	bool *live = NULL, *gone = NULL;
	size_t b, i, n = 0;
	int err;

	err = rs_cfg_build_prog(p, &cfg);
	if (err)
		return err;
	err = reachable(&cfg, &live);
	if (err)
		goto out;
	err = -ENOMEM;
	gone = calloc(p->insn_cnt + 1, sizeof(*gone));
	e = rs_edit_new(p);
	if (!gone || !e)
		goto out;
	err = 0;
	for (b = 0; b < cfg.bb_cnt && !err; b++) {
		const struct rs_bb *bb = &cfg.bbs[b];

		if (live[b])
			continue;
		for (i = bb->start; i < bb->end; i++)
			gone[i] = true;
		err = rs_edit_delete(e, bb->start, bb->end - bb->start);
		if (!err && ctx->orig_idx[bb->start] < 0)
			*gen += bb->end - bb->start;
		else if (!err)
			err = rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[bb->start], -1,
					     &p->insns[bb->start], bb->end - bb->start, NULL, 0,
					     NULL, "unreachable block of %zu instructions removed",
					     bb->end - bb->start);
		n += bb->end - bb->start;
	}
	/* `ja` whose target is the next instruction once the dead blocks are gone */
	for (b = 0; b < cfg.bb_cnt && !err; b++) {
		const struct rs_bb *bb = &cfg.bbs[b];
		size_t last = bb->end - 1, t, k;

		if (!live[b] || cfg.insn_bb[last] < 0 || !rs_insn_is_uncond_jmp(&p->insns[last]))
			continue;
		t = (size_t)rs_insn_target(p->insns, last);
		if (t <= last)
			continue;
		for (k = last + 1; k < t && gone[k]; k++)
			;
		if (k != t || cfg.bbs[cfg.insn_bb[t]].subprog != bb->subprog)
			continue;
		err = rs_edit_delete(e, last, 1);
		n++;
	}
	if (!err && n) {
		err = rs_pass_commit(ctx, e);
		e = NULL;
		*removed += n;
	}
out:
	rs_edit_free(e);
	free(live);
	free(gone);
	rs_cfg_free(&cfg);
	return err;
}

/* round 2..: dead register definitions; returns instructions removed in *n */
static int remove_dead_defs(struct rs_opt_ctx *ctx, size_t *n, size_t *gen)
{
	const struct rs_prog *p = &ctx->prog;
	rs_regmask_t *live_in = NULL;
	struct rs_cfg cfg;
	struct rs_edit *e = NULL;
	size_t b, i;
	int err;

	*n = 0;
	err = rs_cfg_build_prog(p, &cfg);
	if (err)
		return err;
	err = rs_liveness(&cfg, p->insns, &live_in);
	if (err)
		goto out;
	e = rs_edit_new(p);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	/* backward through each block from its live-out: a removed instruction's inputs are
	 * not live, so chains inside a block go in one round */
	for (b = 0; b < cfg.bb_cnt && !err; b++) {
		const struct rs_bb *bb = &cfg.bbs[b];
		rs_regmask_t live = 0;
		size_t j;

		for (j = 0; j < 2; j++)
			if (bb->succ[j] != RS_NO_SUCC)
				live |= live_in[cfg.bbs[bb->succ[j]].start];
		for (i = bb->end; i-- > bb->start && !err;) {
			const struct bpf_insn *in = &p->insns[i];
			size_t w;

			if (cfg.insn_bb[i] < 0)
				continue;		/* second half of an ld_imm64 */
			w = rs_insn_width(in);
			if (!removable(in) || (rs_insn_defs(in) & live)) {
				live = rs_insn_uses(in) | (live & (rs_regmask_t)~rs_insn_defs(in));
				continue;
			}
			err = rs_edit_delete(e, i, w);
			/* code other passes made (no original site) is summed up in one remark */
			if (!err && ctx->orig_idx[i] >= 0)
				err = rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[i], -1,
						     in, w, NULL, 0, NULL,
						     "dead register definition removed");
			else if (!err)
				(*gen)++;
			(*n)++;
		}
	}
	if (!err && *n) {
		err = rs_pass_commit(ctx, e);
		e = NULL;
	}
out:
	rs_edit_free(e);
	free(live_in);
	rs_cfg_free(&cfg);
	return err;
}

static int dce_run(struct rs_opt_ctx *ctx)
{
	size_t removed = 0, n, round, gen = 0;
	int err;

	err = remove_unreachable(ctx, &removed, &gen);
	for (round = 0; !err && round < DCE_MAX_ROUNDS; round++) {
		err = remove_dead_defs(ctx, &n, &gen);
		if (!n)
			break;
		removed += n;
	}
	if (!err && gen)
		err = rs_pass_remark(ctx, RS_REMARK_APPLIED, -1, -1, NULL, 0, NULL, 0, NULL,
				     "%zu dead or unreachable instructions of generated code removed",
				     gen);
	if (!err && removed)
		rs_debug("prog %u (%s): dce: %zu instructions removed", ctx->orig->id,
			 ctx->orig->name, removed);
	return err;
}

const struct rs_pass rs_pass_dce = {
	.name = "dce",
	.run = dce_run,
};
