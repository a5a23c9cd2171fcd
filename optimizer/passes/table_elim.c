// SPDX-License-Identifier: BSD-2-Clause
/*
 * table_elim.c - table elimination: lookups in maps whose whole contents are known stop
 * calling the helper.
 *
 * Empty tables: a hash-family or LPM_TRIE map with a stable key set (no program inserts or
 * deletes, user-space writes watched) whose complete snapshot holds no entry answers every
 * lookup with "not found": the call becomes `r0 = 0` and the null check that follows folds.
 *
 * Small tables: a hash-family map with stable values, at most
 * opts->small_table_max entries and a complete snapshot, looked up at a site whose value
 * pointer is only read and whose key is built on the stack: the call becomes a compare chain
 * over the full key bytes (rs_chain_emit), each hit giving a pointer to a copy of the value in
 * the constant pool, and the default `r0 = 0` (no other key exists).  Keys are ordered by the
 * profile's frequencies when the site has a profile.  Per-CPU maps only where every CPU holds
 * the same value.  LPM tries are left to hot_keys (prefix matching needs masked compares),
 * arrays to map_fold (the verifier inlines array lookups: a chain would not be faster).  The
 * chain is used only when its estimated cost is below the lookup's (rs_chain_cost).
 *
 * Decision trees (lpm_tree.c): a complete LPM trie of up to 2048 address intervals, and a
 * hash-family map with a 4/8/12/16-byte key that is too big for a chain or whose values may
 * not be assumed (stable key set only, or a value pointer written / escaping), become a
 * binary search weighted by the profile: hot keys near the root, leaves giving a pool copy
 * of the value, "not found", or (present keys without stable values) the real lookup.
 *
 * Every elimination marks the map guarded (a write to it sends the program to the original
 * code) and writes a remark.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

/* count of key k in the site profile (0 when not there) */
static uint64_t prof_count(const struct rs_site_profile *sp, const uint8_t *key, uint32_t ksz)
{
	size_t i;

	if (!sp || sp->key_size != ksz)
		return 0;
	for (i = 0; i < sp->key_cnt; i++)
		if (!memcmp(sp->keys + i * ksz, key, ksz))
			return sp->counts[i];
	return 0;
}

static int elim_empty(struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, struct rs_edit *e,
		      const struct rs_lookup_site *s, bool *touched)
{
	struct bpf_insn zero = { .code = BPF_ALU64 | BPF_MOV | BPF_K };
	char assume[256];
	size_t folds = 0;
	int err;

	err = rs_edit_replace(e, s->idx, 1, &zero, NULL, 1);
	if (err)
		return err;
	touched[s->idx] = true;
	err = rs_fold_uses(&ctx->prog, cfg, e, s->idx, 0, false, NULL, 0, 0, &folds, touched);
	if (err)
		return err;
	rs_pass_depend_on_map(ctx, s->map_idx);
	snprintf(assume, sizeof(assume), "%s empty and its key set stable (guarded)",
		 s->map->name);
	return rs_pass_remark(ctx, RS_REMARK_APPLIED, s->orig, (int)s->map_idx,
			      &ctx->prog.insns[s->idx], 1, &zero, 1, assume,
			      "map %s is empty: lookup replaced by r0 = 0 (not found)",
			      s->map->name);
}

struct ord {
	size_t entry;
	uint64_t count;
};

static int cmp_ord(const void *a, const void *b)
{
	const struct ord *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

static int elim_small(struct rs_opt_ctx *ctx, struct rs_edit *e, const struct rs_lookup_site *s,
		      bool *touched)
{
	const struct rs_map_snapshot *sm = s->snap;
	const struct rs_site_profile *sp = rs_pass_site_profile(ctx, s->orig);
	struct rs_chain_key *keys = NULL;
	struct bpf_insn *code = NULL;
	struct ord *ord = NULL;
	size_t n = 0, i, cnt = 0;
	char why[160], assume[256];
	int err = 0;

	ord = calloc(sm->cnt + 1, sizeof(*ord));
	keys = calloc(sm->cnt + 1, sizeof(*keys));
	if (!ord || !keys) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < sm->cnt; i++) {
		ord[i].entry = i;
		ord[i].count = prof_count(sp, sm->keys + i * sm->key_size, sm->key_size);
	}
	qsort(ord, sm->cnt, sizeof(*ord), cmp_ord);
	for (i = 0; i < sm->cnt; i++) {
		const uint8_t *key = sm->keys + ord[i].entry * sm->key_size, *val;

		if (!rs_snap_value(sm, key, &val, why, sizeof(why)) || !val) {
			err = rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL,
					     0, NULL, 0, NULL, "small table %s: %s", s->map->name,
					     val ? why : "entry without a value");
			goto out;
		}
		keys[n].key = key;
		n++;
	}
	if (n) {
		double lc = rs_lookup_cost(s->map->type, s->map->key_size), cc, *p;
		uint64_t tot = 0;

		p = calloc(n, sizeof(*p));
		if (!p) {
			err = -ENOMEM;
			goto out;
		}
		for (i = 0; i < n; i++)
			tot += ord[i].count;
		for (i = 0; i < n; i++)	/* profile shares, else uniform */
			p[i] = tot ? (double)ord[i].count / (double)tot : 1.0 / (double)n;
		cc = rs_chain_cost(p, n, s->map->key_size, s->fact->key_fp_off, 1);
		free(p);
		if (cc >= lc) {
			err = rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL,
					     0, NULL, 0, NULL, "small table %s: a chain over %zu "
					     "keys (cost ~%.0f) is not cheaper than the lookup (~%.0f)",
					     s->map->name, n, cc, lc);
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		const uint8_t *val = NULL;

		rs_snap_value(sm, keys[i].key, &val, why, sizeof(why));
		err = rs_pool_add(ctx, val, s->map->value_size, &keys[i].pool_idx,
				  &keys[i].pool_off);
		if (err)
			goto out;
	}
	err = rs_chain_emit(keys, n, s->map->key_size, s->fact->key_fp_off, false,
			    &ctx->prog.insns[s->idx], (int)s->map_idx, &code, &cnt);
	if (err)
		goto out;
	err = rs_edit_replace(e, s->idx, 1, code, NULL, cnt);
	if (err)
		goto out;
	touched[s->idx] = true;
	rs_pass_depend_on_map(ctx, s->map_idx);
	snprintf(assume, sizeof(assume), "%s values and key set stable (guarded), %zu entries",
		 s->map->name, n);
	err = rs_pass_remark(ctx, RS_REMARK_APPLIED, s->orig, (int)s->map_idx,
			     &ctx->prog.insns[s->idx], 1, code, cnt, assume,
			     "small table %s: lookup replaced by a compare chain over %zu full "
			     "key(s) (%zu insns), default not found", s->map->name, n, cnt);
out:
	free(code);
	free(keys);
	free(ord);
	return err;
}

#define LPM_TREE_MAX	2048	/* intervals of a whole-trie decision tree */

/* a whole LPM trie, or a hash map's key set, as a weighted decision tree (lpm_tree.c) */
static int elim_lpm(struct rs_opt_ctx *ctx, struct rs_edit *e, const struct rs_lookup_site *s,
		    bool *touched)
{
	bool lpm = s->map->type == BPF_MAP_TYPE_LPM_TRIE;
	bool values = s->mfact->level == RS_MAP_STABLE_VALUES && s->fact->value_read_only &&
		      (lpm || !rs_map_is_percpu(s->map->type));
	const struct rs_site_profile *sp = rs_pass_site_profile(ctx, s->orig);
	const char *what = lpm ? "trie" : "table";
	struct bpf_insn *code = NULL;
	size_t cnt = 0, niv = 0;
	char assume[256];
	int err;

	if (!s->fact->key_known)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "%s %s: key not on the stack: %s",
				      what, s->map->name, s->fact->reason);
	err = (lpm ? rs_lpm_tree_emit : rs_key_tree_emit)(ctx, s->snap, sp, s->fact->key_fp_off,
			values, &ctx->prog.insns[s->idx], LPM_TREE_MAX, &code, &cnt, &niv);
	if (err == -E2BIG || err == -EOPNOTSUPP)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "%s %s: %s", what, s->map->name,
				      err == -E2BIG ? "more than 2048 key intervals "
				      "(hot_keys may still inline its hot keys)" :
				      "key layout not handled for a decision tree (4/8/12/16 "
				      "bytes to compare, 4-byte aligned on the stack)");
	if (err)
		return err;
	err = rs_edit_replace(e, s->idx, 1, code, NULL, cnt);
	if (err)
		goto out;
	touched[s->idx] = true;
	rs_pass_depend_on_map(ctx, s->map_idx);
	snprintf(assume, sizeof(assume), "%s %s stable (guarded), complete snapshot of %zu "
		 "%s", s->map->name, values ? "values and key set" : "key set", s->snap->cnt,
		 lpm ? "prefixes" : "keys");
	err = rs_pass_remark(ctx, RS_REMARK_APPLIED, s->orig, (int)s->map_idx,
			     &ctx->prog.insns[s->idx], 1, code, cnt, assume,
			     "%s %s: lookup replaced by a decision tree over %zu key "
			     "intervals (%zu insns, weighted by %s)%s%s", what, s->map->name, niv,
			     cnt, sp ? "the profile" : "nothing: balanced",
			     values ? "" : "; present keys do the real lookup",
			     lpm ? "; shorter prefixlen keys do the original lookup" : "");
out:
	free(code);
	return err;
}

static int elim_site(struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, struct rs_edit *e,
		     const struct rs_lookup_site *s, bool *touched)
{
	const struct rs_map_snapshot *sm = s->snap;
	uint32_t type = s->map->type;
	enum rs_map_level lvl = s->mfact ? s->mfact->level : RS_MAP_UNSTABLE;

	if (touched[s->idx] || !sm)
		return 0;
	if (!(rs_map_is_hash(type) || type == BPF_MAP_TYPE_LPM_TRIE || type == BPF_MAP_TYPE_ARRAY ||
	      type == BPF_MAP_TYPE_PERCPU_ARRAY))
		return 0;
	if (lvl == RS_MAP_UNSTABLE)
		return 0;	/* the analysis remark says why */
	if (!sm->complete)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "map %s: snapshot incomplete (%zu entries read)",
				      s->map->name, sm->cnt);
	if (!sm->cnt && (rs_map_is_hash(type) || type == BPF_MAP_TYPE_LPM_TRIE))
		return elim_empty(ctx, cfg, e, s, touched);
	if (type == BPF_MAP_TYPE_LPM_TRIE)
		return elim_lpm(ctx, e, s, touched);
	/* arrays: the verifier inlines their lookups, a chain would be slower (map_fold
	 * handles constant indexes) */
	if (!rs_map_is_hash(type))
		return 0;
	/* many keys, or answers that only the key set can give: a decision tree */
	if ((sm->cnt > ctx->opts->small_table_max || lvl != RS_MAP_STABLE_VALUES ||
	     !s->fact->value_read_only) && (sm->key_size % 4) == 0 && sm->key_size <= 16)
		return elim_lpm(ctx, e, s, touched);
	if (sm->cnt > ctx->opts->small_table_max)
		return 0;
	if (lvl != RS_MAP_STABLE_VALUES)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "small table %s: only its key set is stable",
				      s->map->name);
	if (!s->fact->value_read_only)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "small table %s: value pointer written or "
				      "escapes: %s", s->map->name, s->fact->reason);
	if (!s->fact->key_known)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0,
				      NULL, 0, NULL, "small table %s: key not on the stack: %s",
				      s->map->name, s->fact->reason);
	return elim_small(ctx, e, s, touched);
}

static int table_elim_run(struct rs_opt_ctx *ctx)
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
		err = elim_site(ctx, &cfg, w.e, &w.sites[i], w.touched);
	err = rs_site_walk_end(ctx, &w, err);
	rs_cfg_free(&cfg);
	return err;
}

const struct rs_pass rs_pass_table_elim = {
	.name = "table_elim",
	.run = table_elim_run,
};
