// SPDX-License-Identifier: BSD-2-Clause
/*
 * map_fold.c - map value folding: loads from map values the program can only read, and that
 * nothing else changes behind its back, become immediates.
 *
 * (a) ARRAY lookups with a constant key.  The key bytes are read off the stack along the
 *     straight-line path to the call (rs_stack_consts).  The call becomes
 *     `r0 = &pool[off]` (a copy of the value in the program's constant pool, a frozen
 *     read-only array), the null check on r0 folds (never null), and loads through r0 or its
 *     copies at constant offsets become `mov`/`ld_imm64` of the snapshot's bytes.
 *     Preconditions: map level STABLE_VALUES (nothing writes it: analysis), the site's value
 *     pointer is only read (no store, no escape), the key is known and in range, and for
 *     PERCPU_ARRAY every CPU holds the same value.
 * (b) Direct value loads (ld_imm64 BPF_PSEUDO_MAP_IDX_VALUE, e.g. .rodata / .data / config
 *     arrays) of a STABLE_VALUES map: loads through that pointer at constant offsets become
 *     immediates (the ld_imm64 stays for any other use; dce removes it when nothing is left).
 *
 * Every fold marks the map guarded (its generation is checked at program entry, DESIGN §3)
 * and writes a remark with the instructions before and after and the assumption made.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

/* copy of the instructions [idx, idx+n) for remarks */
static void snap_insns(const struct rs_prog *p, size_t idx, size_t n, struct bpf_insn *out,
		       size_t *cnt)
{
	if (idx + n > p->insn_cnt)
		n = idx < p->insn_cnt ? p->insn_cnt - idx : 0;
	memcpy(out, &p->insns[idx], n * sizeof(*out));
	*cnt = n;
}

static int fold_array_site(struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, struct rs_edit *e,
			   const struct rs_lookup_site *s, bool *touched)
{
	const struct rs_map_ref *m = s->map;
	struct bpf_insn before[8], after[2];
	size_t folds = 0, bcnt;
	const uint8_t *val = NULL;
	char why[160], assume[256];
	bool known[512];
	uint8_t bytes[512], key[4];
	uint32_t off, idx;
	int pool, err, a;

	if (m->type != BPF_MAP_TYPE_ARRAY && m->type != BPF_MAP_TYPE_PERCPU_ARRAY)
		return 0;
	if (!s->mfact || s->mfact->level != RS_MAP_STABLE_VALUES)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "array %s: values not stable: %s", m->name,
				      s->mfact ? s->mfact->reason : "no fact");
	if (!s->fact->value_read_only)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "array %s: value pointer written or escapes: %s",
				      m->name, s->fact->reason);
	if (!s->fact->key_known || m->key_size != 4)
		return 0;
	err = rs_stack_consts(&ctx->prog, cfg, s->idx, known, bytes);
	if (err)
		return err;
	a = s->fact->key_fp_off + 512;
	if (a < 0 || a + 4 > 512 || !known[a] || !known[a + 1] || !known[a + 2] || !known[a + 3])
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "array %s: key not a constant", m->name);
	memcpy(key, &bytes[a], 4);
	memcpy(&idx, key, 4);
	if (!rs_snap_value(s->snap, key, &val, why, sizeof(why)))
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "array %s[%u]: %s", m->name, idx, why);
	if (touched[s->idx])
		return 0;
	if (val) {
		err = rs_pool_add(ctx, val, m->value_size, &pool, &off);
		if (err)
			return err;
		after[0] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
					      .src_reg = BPF_PSEUDO_MAP_IDX_VALUE, .imm = pool };
		after[1] = (struct bpf_insn){ .imm = (int32_t)off };
		err = rs_edit_replace(e, s->idx, 1, after, NULL, 2);
	} else {	/* index out of range: never found */
		after[0] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K };
		err = rs_edit_replace(e, s->idx, 1, after, NULL, 1);
	}
	if (err)
		return err;
	touched[s->idx] = true;
	err = rs_fold_uses(&ctx->prog, cfg, e, s->idx, 0, val != NULL, val, m->value_size, 0,
			   &folds, touched);
	if (err)
		return err;
	rs_pass_depend_on_map(ctx, s->map_idx);
	snap_insns(&ctx->prog, s->idx, 1, before, &bcnt);
	snprintf(assume, sizeof(assume), "%s values stable (guarded); key %u constant", m->name,
		 idx);
	return rs_pass_remark(ctx, RS_REMARK_APPLIED, s->orig, (int)s->map_idx, before, bcnt,
			      after, val ? 2 : 1, assume,
			      val ? "array %s[%u]: lookup replaced by a pool pointer, %zu load(s) "
				    "folded to immediates" :
				    "array %s[%u]: index out of range, lookup is NULL (%zu loads)",
			      m->name, idx, folds);
}

/* (b) direct value loads of stable maps */
static int fold_direct(struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, struct rs_edit *e,
		       size_t i, bool *touched)
{
	const struct bpf_insn *in = &ctx->prog.insns[i];
	uint32_t map_idx = (uint32_t)in->imm, o;
	const struct rs_map_snapshot *sm;
	const struct rs_map_fact *mf;
	const struct rs_map_ref *m;
	const uint8_t *val;
	char assume[256];
	size_t folds = 0;
	uint32_t key = 0;
	int err;

	if (map_idx >= ctx->orig->map_cnt || touched[i])
		return 0;
	m = &ctx->orig->maps[map_idx];
	mf = rs_pass_map_fact(ctx, map_idx);
	sm = ctx->snap && map_idx < ctx->snap->map_cnt ? &ctx->snap->maps[map_idx] : NULL;
	if (!mf || mf->level != RS_MAP_STABLE_VALUES || !sm)
		return 0;
	if (m->type != BPF_MAP_TYPE_ARRAY || !(val = rs_snapshot_lookup(sm, &key)))
		return 0;
	o = (uint32_t)in[1].imm;
	err = rs_fold_uses(&ctx->prog, cfg, e, i, in->dst_reg, true, val, m->value_size,
			   (int32_t)o, &folds, touched);
	if (err || !folds)
		return err;
	touched[i] = true;
	rs_pass_depend_on_map(ctx, map_idx);
	snprintf(assume, sizeof(assume), "%s values stable (guarded)", m->name);
	return rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[i], (int)map_idx, in, 2,
			      NULL, 0, assume,
			      "direct value %s+%u: %zu load(s) folded to immediates", m->name, o,
			      folds);
}

static int map_fold_run(struct rs_opt_ctx *ctx)
{
	struct rs_site_walk w;
	struct rs_cfg cfg;
	size_t i;
	int err;

	memset(&cfg, 0, sizeof(cfg));
	err = rs_cfg_build_prog(&ctx->prog, &cfg);
	if (err)
		return err;
	err = rs_site_walk_begin(ctx, &w);
	for (i = 0; !err && i < w.n; i++)
		err = fold_array_site(ctx, &cfg, w.e, &w.sites[i], w.touched);
	for (i = 0; !err && i < ctx->prog.insn_cnt; i += rs_insn_width(&ctx->prog.insns[i])) {
		const struct bpf_insn *in = &ctx->prog.insns[i];

		if (!rs_insn_is_ldimm64(in) || in->src_reg != BPF_PSEUDO_MAP_IDX_VALUE ||
		    ctx->orig_idx[i] < 0)
			continue;
		err = fold_direct(ctx, &cfg, w.e, i, w.touched);
	}
	err = rs_site_walk_end(ctx, &w, err);
	rs_cfg_free(&cfg);
	return err;
}

const struct rs_pass rs_pass_map_fold = {
	.name = "map_fold",
	.run = map_fold_run,
};
