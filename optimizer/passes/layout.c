// SPDX-License-Identifier: BSD-2-Clause
/*
 * layout.c - profile-guided block layout: the hot successor of a branch falls through.
 *
 * What: for every conditional jump whose profile (taken / not-taken counts, by ORIGINAL
 * instruction index) says it is taken more often than not, the taken block is placed right
 * after the branch and the condition is inverted, so the common path runs straight without a
 * taken jump.  Blocks are chained per subprogram: a chain follows the hot successor (or the
 * original fall-through), and the chains are laid out in original order.  A block whose
 * successor no longer follows it gets a `ja`; a `ja` to the block placed next is dropped;
 * branches that cannot be inverted (jset, may_goto) keep their sense and get a `ja` after them.
 * Why: taken branches cost more than fall-throughs (front-end redirects), and the specialized
 * code's common path should be a straight line.
 * Preconditions: a profile with branch counts (else the pass does nothing); works within each
 * subprogram only (subprogram entries stay first, calls re-targeted); any branch out of range
 * after the move makes the pass give up (the program is left as it was).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

static int invert(uint8_t op)
{
	switch (op) {
	case BPF_JEQ: return BPF_JNE;
	case BPF_JNE: return BPF_JEQ;
	case BPF_JGT: return BPF_JLE;
	case BPF_JLE: return BPF_JGT;
	case BPF_JGE: return BPF_JLT;
	case BPF_JLT: return BPF_JGE;
	case BPF_JSGT: return BPF_JSLE;
	case BPF_JSLE: return BPF_JSGT;
	case BPF_JSGE: return BPF_JSLT;
	case BPF_JSLT: return BPF_JSGE;
	default: return -1;
	}
}

static const struct rs_branch_profile *branch_prof(const struct rs_opt_ctx *ctx, long orig)
{
	size_t i;

	if (orig < 0)
		return NULL;
	for (i = 0; i < ctx->prof->branch_cnt; i++)
		if ((long)ctx->prof->branches[i].insn == orig)
			return &ctx->prof->branches[i];
	return NULL;
}

enum term { T_NONE, T_COND, T_JA, T_EXIT };

struct lb {
	size_t last;		/* last instruction (first half of an ld_imm64) */
	enum term term;
	bool hot_taken;		/* profile: taken more often than not */
	size_t at, size;	/* new position and size */
	bool invert, add_ja, drop_ja;
};

struct lay {
	struct rs_opt_ctx *ctx;
	const struct rs_prog *p;
	struct rs_cfg cfg;
	struct lb *b;
	int *order;
	size_t nord;
};

static int chain_order(struct lay *l)
{
	size_t nb = l->cfg.bb_cnt, k;
	bool *placed = calloc(nb + 1, sizeof(*placed));

	if (!placed)
		return -ENOMEM;
	for (k = 0; k < l->cfg.subprog_cnt; k++) {
		const struct rs_subprog *sp = &l->cfg.subprogs[k];
		size_t seed;

		for (seed = 0; seed < nb; seed++) {
			int b;

			if (l->cfg.bbs[seed].subprog != (int)k || placed[seed])
				continue;
			/* the entry block starts the first chain */
			b = (sp->entry_bb >= 0 && !placed[sp->entry_bb]) ? sp->entry_bb : (int)seed;
			while (b >= 0 && !placed[b]) {
				const struct rs_bb *bb = &l->cfg.bbs[b];
				int next = -1;

				placed[b] = true;
				l->order[l->nord++] = b;
				if (l->b[b].term == T_COND && l->b[b].hot_taken)
					next = bb->succ[1];
				else if (l->b[b].term == T_NONE || l->b[b].term == T_COND)
					next = bb->succ[0];
				if (next >= 0 && (placed[next] || l->cfg.bbs[next].subprog != (int)k))
					next = -1;
				b = next;
			}
			if (!placed[seed])
				seed--;		/* entry chain went first: revisit this seed */
		}
	}
	free(placed);
	return 0;
}

/* decide terminators and positions */
static void plan(struct lay *l)
{
	size_t k, at = 0;

	for (k = 0; k < l->nord; k++) {
		int b = l->order[k], next = k + 1 < l->nord ? l->order[k + 1] : -1;
		const struct rs_bb *bb = &l->cfg.bbs[b];
		struct lb *x = &l->b[b];
		const struct bpf_insn *in = &l->p->insns[x->last];

		if (next >= 0 && l->cfg.bbs[next].subprog != bb->subprog)
			next = -1;
		x->size = bb->end - bb->start;
		x->invert = x->add_ja = x->drop_ja = false;
		if (x->term == T_COND) {
			if (next != bb->succ[0]) {
				if (next == bb->succ[1] && invert(BPF_OP(in->code)) >= 0)
					x->invert = true;
				else
					x->add_ja = true;
			}
		} else if (x->term == T_JA) {
			bool entry = l->cfg.subprogs[bb->subprog].entry_bb == b &&
				     x->last == bb->start;

			if (next == bb->succ[0] && !entry)
				x->drop_ja = true;
		} else if (x->term == T_NONE && bb->succ[0] != RS_NO_SUCC && next != bb->succ[0]) {
			x->add_ja = true;
		}
		x->size += x->add_ja - x->drop_ja;
		x->at = at;
		at += x->size;
	}
}

static int build(struct lay *l, struct rs_prog *np, long *o2n, size_t *total)
{
	const struct rs_prog *p = l->p;
	struct bpf_insn *out;
	size_t k, i, n = 0;
	int err;

	for (k = 0; k < l->nord; k++)
		n += l->b[l->order[k]].size;
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (i = 0; i < p->insn_cnt; i++)
		o2n[i] = -1;
	for (k = 0; k < l->nord; k++) {
		int b = l->order[k];
		const struct rs_bb *bb = &l->cfg.bbs[b];
		const struct lb *x = &l->b[b];
		size_t at = x->at;

		for (i = bb->start; i < bb->end; i++) {
			const struct bpf_insn *in = &p->insns[i];
			long t;

			if (i == x->last && x->drop_ja)
				continue;
			o2n[i] = (long)at;
			out[at] = *in;
			if (l->cfg.insn_bb[i] >= 0 && (rs_insn_is_jmp(in) || rs_insn_is_pseudo_call(in) ||
							rs_insn_is_pseudo_func(in))) {
				t = rs_insn_target(p->insns, i);
				if (i == x->last && x->invert) {
					out[at].code = (uint8_t)((in->code & ~0xf0) |
								 invert(BPF_OP(in->code)));
					t = (long)l->cfg.bbs[bb->succ[0]].start;
				}
				err = rs_insn_set_target(out, at,
							 l->b[l->cfg.insn_bb[t]].at);
				if (err)
					goto fail;
			}
			at++;
		}
		if (x->add_ja) {
			out[at] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA };
			err = rs_insn_set_target(out, at, l->b[bb->succ[0]].at);
			if (err)
				goto fail;
		}
	}
	np->insns = out;
	np->insn_cnt = n;
	*total = n;
	return 0;
fail:
	free(out);
	return err;
}

static int cmp_line(const void *a, const void *b)
{
	const struct rs_line_info *x = a, *y = b;

	return (x->insn_off > y->insn_off) - (x->insn_off < y->insn_off);
}

static int layout_run(struct rs_opt_ctx *ctx)
{
	struct lay l;
	struct rs_prog np;
	long *o2n = NULL;
	size_t b, i, total, moved = 0;
	bool any = false;
	int err;

	if (!ctx->prof || !ctx->prof->branch_cnt)
		return 0;
	memset(&l, 0, sizeof(l));
	rs_prog_init(&np);
	l.ctx = ctx;
	l.p = &ctx->prog;
	err = rs_cfg_build_prog(l.p, &l.cfg);
	if (err)
		return err;
	err = -ENOMEM;
	l.b = calloc(l.cfg.bb_cnt + 1, sizeof(*l.b));
	l.order = calloc(l.cfg.bb_cnt + 1, sizeof(*l.order));
	o2n = calloc(l.p->insn_cnt + 1, sizeof(*o2n));
	if (!l.b || !l.order || !o2n)
		goto out;
	for (b = 0; b < l.cfg.bb_cnt; b++) {
		const struct rs_bb *bb = &l.cfg.bbs[b];
		struct lb *x = &l.b[b];
		const struct bpf_insn *in;

		for (i = bb->start; i < bb->end; i += rs_insn_width(&l.p->insns[i]))
			x->last = i;
		in = &l.p->insns[x->last];
		if (rs_insn_is_cond_jmp(in)) {
			const struct rs_branch_profile *bp =
				branch_prof(ctx, ctx->orig_idx[x->last]);

			x->term = T_COND;
			x->hot_taken = bp && bp->taken > bp->not_taken &&
				       bb->succ[1] != RS_NO_SUCC && bb->succ[1] != bb->succ[0];
			any |= x->hot_taken;
		} else if (rs_insn_is_uncond_jmp(in)) {
			x->term = T_JA;
		} else if (rs_insn_is_exit(in)) {
			x->term = T_EXIT;
		}
	}
	err = 0;
	if (!any)
		goto out;
	err = chain_order(&l);
	if (err)
		goto out;
	for (i = 0; i < l.nord && (size_t)l.order[i] == i; i++)
		;
	if (i == l.nord)
		goto out;		/* nothing moves */
	plan(&l);
	err = rs_prog_copy(&np, l.p);
	if (err)
		goto out;
	free(np.insns);
	np.insns = NULL;
	err = build(&l, &np, o2n, &total);
	if (err == -RS_ERR_RANGE) {
		err = rs_pass_remark(ctx, RS_REMARK_MISSED, -1, -1, NULL, 0, NULL, 0, NULL,
				     "a branch would be out of range after moving blocks: "
				     "layout left as it was");
		goto out;
	}
	if (err)
		goto out;
	for (i = 0; i < np.func_info_cnt; i++)
		np.func_info[i].insn_off = (uint32_t)l.b[l.cfg.insn_bb[np.func_info[i].insn_off]].at;
	{
		size_t w = 0;

		for (i = 0; i < np.line_info_cnt; i++) {
			long t = o2n[np.line_info[i].insn_off];

			if (t < 0)
				continue;
			np.line_info[w] = np.line_info[i];
			np.line_info[w++].insn_off = (uint32_t)t;
		}
		np.line_info_cnt = w;
		qsort(np.line_info, w, sizeof(*np.line_info), cmp_line);
	}
	for (b = 0; b < l.cfg.bb_cnt; b++) {
		const struct lb *x = &l.b[b];

		if (!x->hot_taken)
			continue;
		moved++;
		err = rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[x->last], -1,
				     &l.p->insns[x->last], 1, NULL, 0, "branch profile",
				     x->invert ? "hot taken successor falls through (condition "
				     "inverted)" : "hot taken successor placed after the branch "
				     "(ja added)");
		if (err)
			goto out;
	}
	err = rs_pass_commit_prog(ctx, &np, o2n);
	if (!err)
		rs_debug("prog %u (%s): layout: %zu branches, %zu instructions", ctx->orig->id,
			 ctx->orig->name, moved, total);
out:
	rs_prog_free(&np);
	free(o2n);
	free(l.b);
	free(l.order);
	rs_cfg_free(&l.cfg);
	return err;
}

const struct rs_pass rs_pass_layout = {
	.name = "layout",
	.run = layout_run,
}; 
