// SPDX-License-Identifier: BSD-2-Clause
/*
 * liveness.c - register liveness: backward dataflow over the CFG to a fixed point.
 *
 * live_in[i] holds the registers read on some path from i before being written.  Calls read
 * r1-r5 and clobber r0-r5, exit reads r0 (rs_insn_uses / rs_insn_defs).  The second half of an
 * ld_imm64 gets the registers live after the whole ld_imm64.
 */
#include <errno.h>
#include <stdlib.h>

#include "optimizer/ir.h"

/* live-in of block b given its live-out; writes per-instruction results */
static rs_regmask_t block_in(const struct rs_cfg *cfg, const struct bpf_insn *insns,
			     const struct rs_bb *b, rs_regmask_t live, rs_regmask_t *live_in)
{
	size_t i = b->end;

	while (i-- > b->start) {
		if (cfg->insn_bb[i] < 0) {		/* second half of ld_imm64 */
			live_in[i] = live;
			continue;
		}
		live = rs_insn_uses(&insns[i]) | (live & (rs_regmask_t)~rs_insn_defs(&insns[i]));
		live_in[i] = live;
	}
	return live;
}

int rs_liveness(const struct rs_cfg *cfg, const struct bpf_insn *insns, rs_regmask_t **live_in)
{
	rs_regmask_t *in, *bb_in;
	bool changed = true;
	size_t k;

	*live_in = NULL;
	in = calloc(cfg->insn_cnt ? cfg->insn_cnt : 1, sizeof(*in));
	bb_in = calloc(cfg->bb_cnt ? cfg->bb_cnt : 1, sizeof(*bb_in));
	if (!in || !bb_in) {
		free(in);
		free(bb_in);
		return -ENOMEM;
	}
	/* reverse block order converges fast for mostly forward code */
	while (changed) {
		changed = false;
		for (k = cfg->bb_cnt; k-- > 0;) {
			const struct rs_bb *b = &cfg->bbs[k];
			rs_regmask_t out = 0, nin;
			int s;

			for (s = 0; s < 2; s++)
				if (b->succ[s] != RS_NO_SUCC)
					out |= bb_in[b->succ[s]];
			nin = block_in(cfg, insns, b, out, in);
			if (nin != bb_in[k]) {
				bb_in[k] = nin;
				changed = true;
			}
		}
	}
	free(bb_in);
	*live_in = in;
	return 0;
}
