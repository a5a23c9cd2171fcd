// SPDX-License-Identifier: BSD-2-Clause
/*
 * hot_keys.c - hot-key inlining: a lookup whose traffic concentrates on a few keys first
 * compares the key on the stack against those keys (full keys, aligned 8/4/2/1-byte chunks,
 * never a hash), in order of frequency, and answers a hit without calling the helper; any
 * other key takes the original lookup (the default path, unchanged).
 *
 * Map types: HASH, LRU_HASH, PERCPU_HASH / LRU_PERCPU_HASH (values only where every CPU holds
 * the same bytes in the snapshot: a lookup returns the running CPU's copy), LPM_TRIE (the key
 * is prefixlen + data as the program builds it; the answer is the longest match in a complete
 * snapshot, computed by rs_lpm_match) and ARRAY / PERCPU_ARRAY.
 *
 * What a hit produces depends on the soundness facts:
 *   - map level STABLE_VALUES and a read-only site: r0 = pointer to a copy of the value in the
 *     constant pool (a frozen BPF_F_RDONLY_PROG array of respec); a key known absent: r0 = 0.
 *   - map level STABLE_KEYS (or a site that writes through / leaks the pointer): only keys
 *     known ABSENT are inlined (r0 = 0, the lookup skipped); present keys do the real lookup
 *     so that writes through the pointer land in the map.
 * Absent needs a complete snapshot (hash, LPM) or an index out of range (arrays).
 *
 * Hot keys come from the site's profile (keys with a share >= opts->min_hot_share, at most
 * opts->max_hot_keys, most frequent first); without a profile of the site, all keys of a small
 * map (<= opts->small_table_max entries) are used with equal weight.  The chain is cut where
 * its expected cost (rs_chain_cost, weighted by the shares) is lowest, and dropped when it is
 * not clearly cheaper than the lookup (rs_lookup_cost): with flat traffic nothing changes.
 * Every inlined site marks its map guarded and writes a remark.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

#define WORTH	0.85		/* the chain must cost less than this share of the lookup */

struct cand {
	const uint8_t *key;
	double p;		/* share of the site's lookups */
	const uint8_t *val;	/* value, NULL when absent */
	const uint8_t *mask;	/* LPM leaf prefix: compare these bits only */
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;

	return x->p > y->p ? -1 : x->p < y->p;
}

/*
 * LPM: a hot key whose longest match is a leaf prefix (nothing more specific inside it)
 * stands for every key in that prefix, and an absent hot key for the largest block around it
 * that no entry overlaps (rs_lpm_gap): compare those bits only, and merge hot keys that fall
 * into the same leaf / gap (their shares add up).  Returns the new count.
 */
static size_t lpm_leaves(const struct rs_map_snapshot *sm, struct cand *c, size_t k,
			 uint8_t *masks, uint32_t ksz)
{
	size_t i, j, n = 0;

	for (i = 0; i < k; i++) {
		uint8_t *mk = masks + i * ksz;
		bool merged = false;

		if ((c[i].val && rs_lpm_leaf(sm, c[i].key, mk) == c[i].val) ||
		    (!c[i].val && rs_lpm_gap(sm, c[i].key, mk))) {
			c[i].mask = mk;
			for (j = 0; j < n && !merged; j++) {
				uint32_t b;

				if (!c[j].mask || memcmp(c[j].mask, mk, ksz) || !c[j].val != !c[i].val)
					continue;
				for (b = 0; b < ksz; b++)
					if ((c[j].key[b] ^ c[i].key[b]) & mk[b])
						break;
				if (b == ksz) {
					c[j].p += c[i].p;
					merged = true;
				}
			}
		}
		if (!merged)
			c[n++] = c[i];
	}
	qsort(c, n, sizeof(*c), cmp_cand);
	return n;
}

static bool type_ok(uint32_t t)
{
	return rs_map_is_hash(t) || t == BPF_MAP_TYPE_LPM_TRIE || t == BPF_MAP_TYPE_ARRAY ||
	       t == BPF_MAP_TYPE_PERCPU_ARRAY;
}

/* the hot key candidates of a site, most frequent first; *from says where they came from */
static int candidates(struct rs_opt_ctx *ctx, const struct rs_lookup_site *s, struct cand **out,
		      size_t *cnt, const char **from)
{
	const struct rs_site_profile *sp = rs_pass_site_profile(ctx, s->orig);
	const struct rs_map_snapshot *sm = s->snap;
	uint32_t ksz = s->map->key_size;
	struct cand *c;
	size_t i, n = 0;

	*out = NULL;
	*cnt = 0;
	if (sp && sp->key_size == ksz && sp->lookups) {
		c = calloc(sp->key_cnt + 1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		for (i = 0; i < sp->key_cnt && n < ctx->opts->max_hot_keys; i++) {
			double share = (double)sp->counts[i] / (double)sp->lookups;

			if (share < ctx->opts->min_hot_share)
				break;
			c[n].key = sp->keys + i * ksz;
			c[n++].p = share;
		}
		*from = "profile";
	} else if (!sp && sm && sm->complete && sm->cnt && sm->cnt <= ctx->opts->small_table_max &&
		   sm->key_size == ksz) {
		c = calloc(sm->cnt, sizeof(*c));
		if (!c)
			return -ENOMEM;
		for (i = 0; i < sm->cnt; i++) {
			c[n].key = sm->keys + i * ksz;
			c[n++].p = 1.0 / (double)sm->cnt;
		}
		*from = "snapshot (small map, no profile)";
	} else {
		*from = sp ? "profile (no usable keys)" : "nothing (no profile, map not small)";
		return 0;
	}
	*out = c;
	*cnt = n;
	return 0;
}

static int inline_site(struct rs_opt_ctx *ctx, struct rs_edit *e, const struct rs_lookup_site *s,
		       bool *touched)
{
	const struct rs_map_ref *m = s->map;
	bool values = s->mfact->level == RS_MAP_STABLE_VALUES && s->fact->value_read_only;
	struct rs_chain_key *keys = NULL;
	struct bpf_insn *code = NULL;
	struct cand *c = NULL;
	uint8_t *masks = NULL;
	size_t n = 0, i, k = 0, best = 0, cnt = 0, absent = 0, dropped = 0, leaves = 0;
	double *p = NULL, lc, bc, share = 0;
	char why[160], assume[256], ks[80];
	const char *from = "";
	int err;

	err = candidates(ctx, s, &c, &n, &from);
	if (err)
		return err;
	if (!n) {
		err = rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0, NULL,
				     0, NULL, "map %s: no hot keys (from %s)", m->name, from);
		goto out;
	}
	keys = calloc(n, sizeof(*keys));
	p = calloc(n, sizeof(*p));
	if (!keys || !p) {
		err = -ENOMEM;
		goto out;
	}
	/* what each key gives; keep only those a hit may answer */
	for (i = 0; i < n; i++) {
		const uint8_t *val;

		if (!rs_snap_value(s->snap, c[i].key, &val, why, sizeof(why))) {
			rs_debug("prog %u (%s): pass 'hot_keys': insn %ld: key %s: %s",
				 ctx->orig->id, ctx->orig->name, s->orig,
				 rs_key_str(c[i].key, m->key_size, ks, sizeof(ks)), why);
			dropped++;
			continue;
		}
		if (val && !values)
			continue;	/* present: the real lookup must run */
		c[k] = c[i];
		c[k].val = val;
		p[k++] = c[i].p;
	}
	if (m->type == BPF_MAP_TYPE_LPM_TRIE && k) {
		masks = calloc(k, m->key_size);
		if (!masks) {
			err = -ENOMEM;
			goto out;
		}
		k = lpm_leaves(s->snap, c, k, masks, m->key_size);
		for (i = 0; i < k; i++) {
			p[i] = c[i].p;
			leaves += c[i].mask != NULL;
		}
	}
	lc = rs_lookup_cost(m->type, m->key_size);
	bc = lc;
	for (i = 1; i <= k; i++) {
		double cc = rs_chain_cost(p, i, m->key_size, s->fact->key_fp_off, lc);

		if (cc < bc) {
			bc = cc;
			best = i;
		}
	}
	if (!best || bc >= WORTH * lc) {
		err = rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL, 0, NULL,
				     0, NULL, "map %s: %zu hot key(s) from %s, %zu inlinable%s%s: "
				     "no chain cheaper than the lookup (best ~%.0f vs ~%.0f)",
				     m->name, n, from, k, values ? "" : " (absent keys only: ",
				     values ? "" : s->mfact->level == RS_MAP_STABLE_VALUES ?
				     "value pointer written or escapes)" : "only the key set is stable)",
				     bc, lc);
		goto out;
	}
	for (i = 0; i < best; i++) {
		keys[i].key = c[i].key;
		keys[i].mask = c[i].mask;
		keys[i].null = !c[i].val;
		absent += keys[i].null;
		share += c[i].p;
		if (c[i].val) {
			err = rs_pool_add(ctx, c[i].val, m->value_size, &keys[i].pool_idx,
					  &keys[i].pool_off);
			if (err)
				goto out;
		}
	}
	err = rs_chain_emit(keys, best, m->key_size, s->fact->key_fp_off, true,
			    &ctx->prog.insns[s->idx], (int)s->map_idx, &code, &cnt);
	if (err)
		goto out;
	err = rs_edit_replace(e, s->idx, 1, code, NULL, cnt);
	if (err)
		goto out;
	touched[s->idx] = true;
	rs_pass_depend_on_map(ctx, s->map_idx);
	snprintf(assume, sizeof(assume), "%s %s stable (guarded); %zu hot key(s) from %s cover "
		 "%.0f%% of lookups%s", m->name, values ? "values" : "key set", best, from,
		 100.0 * share, m->type == BPF_MAP_TYPE_LPM_TRIE ?
		 "; values are longest matches in the complete snapshot, leaf prefixes compared "
		 "by their bits" : "");
	err = rs_pass_remark(ctx, RS_REMARK_APPLIED, s->orig, (int)s->map_idx,
			     &ctx->prog.insns[s->idx], 1, code, cnt, assume,
			     "map %s: %zu hot key(s) inlined (%zu present, %zu absent, %zu as leaf "
			     "prefixes or gaps; %zu skipped: unknown in the snapshot), chain of %zu insns, "
			     "cost ~%.0f vs lookup ~%.0f; other keys do the original lookup",
			     m->name, best, best - absent, absent, leaves, dropped, cnt, bc, lc);
out:
	free(code);
	free(keys);
	free(p);
	free(masks);
	free(c);
	return err;
}

static int hot_keys_run(struct rs_opt_ctx *ctx)
{
	struct rs_site_walk w;
	size_t i;
	int err;

	err = rs_site_walk_begin(ctx, &w);
	for (i = 0; !err && i < w.n; i++) {
		const struct rs_lookup_site *s = &w.sites[i];

		if (w.touched[s->idx] || !type_ok(s->map->type) || !s->snap || !s->mfact ||
		    s->mfact->level == RS_MAP_UNSTABLE)
			continue;
		if (!s->fact->key_known)
			err = rs_pass_remark(ctx, RS_REMARK_MISSED, s->orig, (int)s->map_idx, NULL,
					     0, NULL, 0, NULL, "map %s: key not on the stack: %s",
					     s->map->name, s->fact->reason);
		else
			err = inline_site(ctx, w.e, s, w.touched);
	}
	return rs_site_walk_end(ctx, &w, err);
}

const struct rs_pass rs_pass_hot_keys = {
	.name = "hot_keys",
	.run = hot_keys_run,
};
