// SPDX-License-Identifier: BSD-2-Clause
/*
 * cfg.c - control-flow graph: subprograms (from pseudo call / pseudo func targets and
 * func_info), basic blocks, successors and predecessors.
 *
 * Blocks end at branches, exits and tail calls (a failed tail call falls through), and before
 * every branch target and subprogram start; helper, kfunc and subprogram calls do not end a
 * block.  Falling off the end of a subprogram gives no successor (rs_prog_validate reports it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/ir.h"

/* marks second halves of ld_imm64; -RS_ERR_INVALID_PROG for a truncated one */
static int mark_halves(const struct bpf_insn *insns, size_t cnt, bool *half)
{
	size_t i;

	for (i = 0; i < cnt; i++) {
		if (!rs_insn_is_ldimm64(&insns[i]))
			continue;
		if (i + 1 >= cnt) {
			rs_debug("insn %zu: truncated ld_imm64", i);
			return -RS_ERR_INVALID_PROG;
		}
		half[++i] = true;
	}
	return 0;
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

int rs_subprog_starts(const struct bpf_insn *insns, size_t cnt, const struct rs_func_info *fi,
		      size_t fi_cnt, size_t **starts, size_t *n)
{
	size_t *s, k = 0, i, j;

	s = malloc((cnt + fi_cnt + 1) * sizeof(*s));
	if (!s)
		return -ENOMEM;
	s[k++] = 0;
	for (i = 0; i < cnt; i += rs_insn_width(&insns[i])) {
		long t;

		if (!rs_insn_is_pseudo_call(&insns[i]) && !rs_insn_is_pseudo_func(&insns[i]))
			continue;
		t = rs_insn_target(insns, i);
		if (t >= 0 && (size_t)t < cnt)
			s[k++] = (size_t)t;
	}
	for (i = 0; i < fi_cnt; i++)
		if (fi[i].insn_off < cnt)
			s[k++] = fi[i].insn_off;
	qsort(s, k, sizeof(*s), cmp_size);
	for (i = 1, j = 1; i < k; i++)
		if (s[i] != s[j - 1])
			s[j++] = s[i];
	*starts = s;
	*n = j;
	return 0;
}

void rs_cfg_free(struct rs_cfg *cfg)
{
	size_t k;

	if (!cfg)
		return;
	for (k = 0; k < cfg->bb_cnt; k++)
		free(cfg->bbs[k].preds);
	free(cfg->bbs);
	free(cfg->subprogs);
	free(cfg->insn_bb);
	memset(cfg, 0, sizeof(*cfg));
}

/* mark leaders; checks every branch target */
static int mark_leaders(const struct bpf_insn *insns, size_t cnt, const bool *half,
			bool *leader)
{
	size_t i;

	leader[0] = true;
	for (i = 0; i < cnt; i++) {
		const struct bpf_insn *in = &insns[i];
		long t;

		if (half[i])
			continue;
		if (rs_insn_is_jmp(in) || rs_insn_is_pseudo_call(in) || rs_insn_is_pseudo_func(in)) {
			t = rs_insn_target(insns, i);
			if (t < 0 || (size_t)t >= cnt || half[t]) {
				rs_debug("insn %zu: target %ld out of range", i, t);
				return -RS_ERR_INVALID_PROG;
			}
			leader[t] = true;
		}
		if ((rs_insn_is_jmp(in) || rs_insn_is_exit(in) || rs_insn_is_tail_call(in)) &&
		    i + 1 < cnt)
			leader[i + 1] = true;
	}
	return 0;
}

static int add_pred(struct rs_bb *b, int p)
{
	int *np;
	size_t k;

	for (k = 0; k < b->pred_cnt; k++)
		if (b->preds[k] == p)
			return 0;
	np = realloc(b->preds, (b->pred_cnt + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	np[b->pred_cnt++] = p;
	b->preds = np;
	return 0;
}

static void link_block(struct rs_cfg *cfg, const struct bpf_insn *insns, const bool *half,
		       struct rs_bb *b)
{
	size_t last = b->end - 1, sub_end = cfg->subprogs[b->subprog].end;
	const struct bpf_insn *in;
	int fall = b->end < sub_end ? cfg->insn_bb[b->end] : RS_NO_SUCC;

	if (half[last])
		last--;
	in = &insns[last];
	b->succ[0] = b->succ[1] = RS_NO_SUCC;
	if (rs_insn_is_exit(in))
		return;
	if (rs_insn_is_uncond_jmp(in)) {
		b->succ[0] = cfg->insn_bb[rs_insn_target(insns, last)];
		return;
	}
	b->succ[0] = fall;
	if (rs_insn_is_cond_jmp(in))
		b->succ[1] = cfg->insn_bb[rs_insn_target(insns, last)];
}

static int build(const struct bpf_insn *insns, size_t cnt, const struct rs_func_info *fi,
		 size_t fi_cnt, struct rs_cfg *cfg)
{
	bool *half = NULL, *leader = NULL;
	size_t *starts = NULL, n_starts = 0, i, k, s;
	int err;

	memset(cfg, 0, sizeof(*cfg));
	if (!cnt)
		return -RS_ERR_INVALID_PROG;
	half = calloc(cnt, sizeof(*half));
	leader = calloc(cnt, sizeof(*leader));
	cfg->insn_bb = malloc(cnt * sizeof(*cfg->insn_bb));
	if (!half || !leader || !cfg->insn_bb) {
		err = -ENOMEM;
		goto out;
	}
	cfg->insn_cnt = cnt;
	err = mark_halves(insns, cnt, half);
	if (err)
		goto out;
	err = mark_leaders(insns, cnt, half, leader);
	if (err)
		goto out;
	err = rs_subprog_starts(insns, cnt, fi, fi_cnt, &starts, &n_starts);
	if (err)
		goto out;
	cfg->subprogs = calloc(n_starts, sizeof(*cfg->subprogs));
	if (!cfg->subprogs) {
		err = -ENOMEM;
		goto out;
	}
	for (k = 0; k < n_starts; k++) {
		if (half[starts[k]]) {
			rs_debug("insn %zu: subprogram starts inside an ld_imm64", starts[k]);
			err = -RS_ERR_INVALID_PROG;
			goto out;
		}
		leader[starts[k]] = true;
		cfg->subprogs[k].start = starts[k];
		cfg->subprogs[k].end = k + 1 < n_starts ? starts[k + 1] : cnt;
	}
	cfg->subprog_cnt = n_starts;
	for (i = 0; i < cnt; i++)
		cfg->bb_cnt += leader[i];
	cfg->bbs = calloc(cfg->bb_cnt, sizeof(*cfg->bbs));
	if (!cfg->bbs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0, k = 0, s = 0; i < cnt; i++) {
		if (leader[i]) {
			if (k)
				cfg->bbs[k - 1].end = i;
			while (s + 1 < n_starts && starts[s + 1] <= i)
				s++;
			cfg->bbs[k].start = i;
			cfg->bbs[k].subprog = (int)s;
			if (starts[s] == i)
				cfg->subprogs[s].entry_bb = (int)k;
			k++;
		}
		cfg->insn_bb[i] = half[i] ? -1 : (int)k - 1;
	}
	cfg->bbs[k - 1].end = cnt;
	for (k = 0; k < cfg->bb_cnt; k++)
		link_block(cfg, insns, half, &cfg->bbs[k]);
	for (k = 0; k < cfg->bb_cnt; k++) {
		for (s = 0; s < 2; s++) {
			int t = cfg->bbs[k].succ[s];

			if (t != RS_NO_SUCC && (err = add_pred(&cfg->bbs[t], (int)k)))
				goto out;
		}
	}
	err = 0;
out:
	free(half);
	free(leader);
	free(starts);
	if (err)
		rs_cfg_free(cfg);
	return err;
}

int rs_cfg_build(const struct bpf_insn *insns, size_t cnt, struct rs_cfg *cfg)
{
	return build(insns, cnt, NULL, 0, cfg);
}

int rs_cfg_build_prog(const struct rs_prog *p, struct rs_cfg *cfg)
{
	return build(p->insns, p->insn_cnt, p->func_info, p->func_info_cnt, cfg);
}
