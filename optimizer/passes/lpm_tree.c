// SPDX-License-Identifier: BSD-2-Clause
/*
 * lpm_tree.c - a whole LPM trie as a decision tree (used by table_elim).
 *
 * The prefixes of a complete snapshot cut the address space into intervals on which the
 * longest match is the same entry (or none): every start of a prefix and every address just
 * past one is a boundary, and the answer of an elementary interval is the innermost prefix
 * that contains its first address (prefixes are nested or disjoint, so a sweep with a stack
 * finds it).  Adjacent intervals with the same answer merge.  The lookup then becomes a
 * binary search over the interval starts on the key's address read from the stack as a
 * big-endian number (one or two 64-bit registers), weighted by the site's profile so that hot
 * intervals sit near the root (each split balances the weight on both sides), and each leaf
 * sets r0 like the lookup would: a pointer to a copy of the value in the constant pool, or 0.
 * A key whose prefixlen field is not the full width (the program asks for a shorter match),
 * or, when only the key set may be assumed (`values` false), an address inside some prefix,
 * takes the original call.  The same tree answers exact-key (hash family) lookups whose key
 * is 4, 8, 12 or 16 bytes: each key is an interval of one address (rs_key_tree_emit); with only
 * a stable key set, present keys take the call and every other key is "not found" without
 * it.  Uses r0, r3-r5 only (the call clobbers them); r1/r2 reach the
 * call untouched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

typedef unsigned __int128 u128;

struct ival {
	u128 start;
	const uint8_t *val;	/* answer: value bytes, NULL = none */
	double w;
};

struct pfx {
	u128 start, last;
	uint32_t plen;
	const uint8_t *val;
};

struct tree {
	struct bpf_insn *v;
	size_t cnt, cap;
	size_t *end_fix, nend;		/* `ja END` to patch */
	size_t *call_fix, ncall;	/* branches to CALL to patch */
	uint32_t dlen;			/* data bytes of the key (4..16) */
	uint32_t hdr;			/* bytes before them: 4 (prefixlen) or 0 */
	int32_t key_off;
	bool values;
	struct rs_opt_ctx *ctx;
	const struct rs_map_snapshot *m;
	const struct ival *iv;
	const double *cum;		/* cum[i] = weight of intervals [0, i) */
};

static u128 addr_of(const uint8_t *data, uint32_t dlen)
{
	u128 a = 0;
	uint32_t i;

	for (i = 0; i < dlen; i++)
		a = a << 8 | data[i];
	return a;
}

static int cmp_pfx(const void *a, const void *b)
{
	const struct pfx *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->plen < y->plen ? -1 : x->plen > y->plen;
}

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;

	return x < y ? -1 : x > y;
}

/* the merged intervals of a complete LPM snapshot; *n = 0 when more than `max` */
static int build_intervals(const struct rs_map_snapshot *m, uint32_t hdr, size_t max,
			   struct ival **out, size_t *n)
{
	uint32_t dlen = m->key_size - hdr, bits = dlen * 8;
	u128 full = bits == 128 ? ~(u128)0 : (((u128)1 << bits) - 1);
	struct pfx *p = NULL, **stk = NULL;
	u128 *bd = NULL;
	struct ival *iv = NULL;
	size_t i, nb = 0, np = 0, sp = 0, k = 0, ni = 0;
	int err = -ENOMEM;

	*out = NULL;
	*n = 0;
	p = calloc(m->cnt + 1, sizeof(*p));
	bd = calloc(2 * m->cnt + 2, sizeof(*bd));
	stk = calloc(m->cnt + 1, sizeof(*stk));
	iv = calloc(2 * m->cnt + 2, sizeof(*iv));
	if (!p || !bd || !stk || !iv)
		goto out;
	for (i = 0; i < m->cnt; i++) {
		const uint8_t *key = m->keys + i * m->key_size;
		uint32_t plen;
		u128 mask;

		plen = bits;	/* exact keys: one address each */
		if (hdr)
			memcpy(&plen, key, 4);
		if (plen > bits)
			continue;	/* never matches */
		mask = plen ? ~(u128)0 << (128 - plen) >> (128 - bits) : 0;
		p[np].start = addr_of(key + hdr, dlen) & mask;
		p[np].last = p[np].start | (full & ~mask);
		p[np].plen = plen;
		p[np].val = m->values + i * m->value_stride;
		bd[nb++] = p[np].start;
		if (p[np].last != full)
			bd[nb++] = p[np].last + 1;
		np++;
	}
	bd[nb++] = 0;
	qsort(p, np, sizeof(*p), cmp_pfx);
	qsort(bd, nb, sizeof(*bd), cmp_u128);
	for (i = 0; i < nb; i++) {
		const uint8_t *ans;

		if (i && bd[i] == bd[i - 1])
			continue;
		while (sp && stk[sp - 1]->last < bd[i])
			sp--;
		for (; k < np && p[k].start <= bd[i]; k++)
			if (p[k].last >= bd[i])	/* starts here (nested: innermost last) */
				stk[sp++] = &p[k];
		ans = sp ? stk[sp - 1]->val : NULL;
		if (ni && (iv[ni - 1].val == ans || (ans && iv[ni - 1].val &&
		    !memcmp(iv[ni - 1].val, ans, m->value_size))))
			continue;	/* same answer as the interval before */
		if (ni >= max) {
			ni = 0;
			err = 0;
			goto out;
		}
		iv[ni].start = bd[i];
		iv[ni++].val = ans;
	}
	*out = iv;
	*n = ni;
	iv = NULL;
	err = 0;
out:
	free(iv);
	free(p);
	free(bd);
	free(stk);
	return err;
}

static int grow(struct tree *t, size_t more)
{
	struct bpf_insn *v;
	size_t *f, *c;

	if (t->cnt + more <= t->cap)
		return 0;
	t->cap = (t->cnt + more) * 2 + 64;
	v = realloc(t->v, t->cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	t->v = v;
	f = realloc(t->end_fix, t->cap * sizeof(*f));
	if (!f)
		return -ENOMEM;
	t->end_fix = f;
	c = realloc(t->call_fix, t->cap * sizeof(*c));
	if (!c)
		return -ENOMEM;
	t->call_fix = c;
	return 0;
}

static void put(struct tree *t, struct bpf_insn in)
{
	t->v[t->cnt++] = in;
}

static struct bpf_insn ldx_w(uint8_t dst, int16_t off)
{
	return (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = dst,
				  .src_reg = RS_REG_FP, .off = off };
}

static struct bpf_insn bswap32(uint8_t dst)
{
	return (struct bpf_insn){ .code = BPF_ALU | BPF_END | BPF_TO_BE, .dst_reg = dst,
				  .imm = 32 };
}

/* r = big-endian number of n (4 or 8) data bytes at data offset `pos`; tmp: scratch */
static void load_word(struct tree *t, uint8_t r, uint8_t tmp, uint32_t pos, uint32_t n)
{
	int16_t off = (int16_t)(t->key_off + (int32_t)t->hdr + (int32_t)pos);

	put(t, ldx_w(r, off));
	put(t, bswap32(r));
	if (n == 8) {
		put(t, (struct bpf_insn){ .code = BPF_ALU64 | BPF_LSH | BPF_K, .dst_reg = r,
					  .imm = 32 });
		put(t, ldx_w(tmp, (int16_t)(off + 4)));
		put(t, bswap32(tmp));
		put(t, (struct bpf_insn){ .code = BPF_ALU64 | BPF_OR | BPF_X, .dst_reg = r,
					  .src_reg = tmp });
	}
}

/* `if r OP c goto +0` (offset patched by the caller); returns its index */
static size_t jcmp(struct tree *t, uint8_t r, uint8_t op, uint64_t c, bool w32)
{
	if (w32) {
		put(t, (struct bpf_insn){ .code = BPF_JMP32 | op | BPF_K, .dst_reg = r,
					  .imm = (int32_t)(uint32_t)c });
	} else if (c <= 0x7fffffffull) {
		put(t, (struct bpf_insn){ .code = BPF_JMP | op | BPF_K, .dst_reg = r,
					  .imm = (int32_t)c });
	} else {
		put(t, (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 5,
					  .imm = (int32_t)(uint32_t)c });
		put(t, (struct bpf_insn){ .imm = (int32_t)(uint32_t)(c >> 32) });
		put(t, (struct bpf_insn){ .code = BPF_JMP | op | BPF_X, .dst_reg = r,
					  .src_reg = 5 });
	}
	return t->cnt - 1;
}

static int patch(struct tree *t, size_t at, size_t target)
{
	long d = (long)target - (long)at - 1;

	if (d < -32768 || d > 32767)
		return -E2BIG;
	t->v[at].off = (int16_t)d;
	return 0;
}

static int leaf(struct tree *t, const struct ival *iv)
{
	int err, pidx;
	uint32_t poff;

	err = grow(t, 4);
	if (err)
		return err;
	if (iv->val && !t->values) {	/* present: the real lookup answers */
		t->call_fix[t->ncall++] = t->cnt;
		put(t, (struct bpf_insn){ .code = BPF_JMP | BPF_JA });
		return 0;
	}
	if (!iv->val) {
		put(t, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K });
	} else {
		err = rs_pool_add(t->ctx, iv->val, t->m->value_size, &pidx, &poff);
		if (err)
			return err;
		put(t, (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
					  .src_reg = BPF_PSEUDO_MAP_IDX_VALUE, .imm = pidx });
		put(t, (struct bpf_insn){ .imm = (int32_t)poff });
	}
	t->end_fix[t->nend++] = t->cnt;
	put(t, (struct bpf_insn){ .code = BPF_JMP | BPF_JA });
	return 0;
}

/* intervals [lo, hi]: split where the weight is balanced, left falls through */
static int node(struct tree *t, size_t lo, size_t hi)
{
	size_t s, best = lo + 1, at[3], na = 0, i;
	double tot, bd = -1;
	u128 b;
	int err;

	if (lo == hi)
		return leaf(t, &t->iv[lo]);
	tot = t->cum[hi + 1] - t->cum[lo];
	for (s = lo + 1; s <= hi; s++) {	/* right = [s, hi] */
		double l = t->cum[s] - t->cum[lo], d = l > tot - l ? l - (tot - l) : tot - l - l;

		if (bd < 0 || d < bd) {
			bd = d;
			best = s;
		}
	}
	err = grow(t, 12);
	if (err)
		return err;
	b = t->iv[best].start;
	if (t->dlen <= 8) {
		at[na++] = jcmp(t, 3, BPF_JGE, (uint64_t)b, t->dlen == 4);
	} else {
		uint32_t lob = (t->dlen - 8) * 8;
		uint64_t bh = (uint64_t)(b >> lob), bl = (uint64_t)(b & (((u128)1 << lob) - 1));

		if (!bl) {
			at[na++] = jcmp(t, 3, BPF_JGE, bh, false);
		} else {
			size_t ne;

			at[na++] = jcmp(t, 3, BPF_JGT, bh, false);
			ne = jcmp(t, 3, BPF_JNE, bh, false);
			at[na++] = jcmp(t, 4, BPF_JGE, bl, lob == 32);
			err = patch(t, ne, t->cnt);	/* left subtree follows */
			if (err)
				return err;
		}
	}
	err = node(t, lo, best - 1);
	if (err)
		return err;
	for (i = 0; i < na; i++) {
		err = patch(t, at[i], t->cnt);
		if (err)
			return err;
	}
	return node(t, best, hi);
}

/* interval holding address a (iv sorted by start, iv[0].start == 0) */
static size_t find_ival(const struct ival *iv, size_t n, u128 a)
{
	size_t lo = 0, hi = n - 1;

	while (lo < hi) {
		size_t mid = (lo + hi + 1) / 2;

		if (iv[mid].start <= a)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

static int tree_emit(struct rs_opt_ctx *ctx, const struct rs_map_snapshot *m, uint32_t hdr,
		     const struct rs_site_profile *sp, int32_t key_off, bool values,
		     const struct bpf_insn *call, size_t max_intervals,
		     struct bpf_insn **out, size_t *out_cnt, size_t *n_intervals)
{
	struct tree t = { .ctx = ctx, .m = m, .key_off = key_off, .values = values, .hdr = hdr };
	struct ival *iv = NULL;
	double *cum = NULL, rest = 0;
	size_t n = 0, i;
	uint32_t dlen;
	int err;

	*out = NULL;
	*out_cnt = 0;
	*n_intervals = 0;
	if (!m || !m->complete || m->key_size <= hdr)
		return -EOPNOTSUPP;
	dlen = m->key_size - hdr;
	if ((dlen != 4 && dlen != 8 && dlen != 12 && dlen != 16) || (key_off & 3))
		return -EOPNOTSUPP;
	t.dlen = dlen;
	err = build_intervals(m, hdr, max_intervals, &iv, &n);
	if (err)
		return err;
	if (!n)
		return -E2BIG;
	cum = calloc(n + 1, sizeof(*cum));
	if (!cum) {
		err = -ENOMEM;
		goto out;
	}
	/* weights: profiled full-width keys on their interval, the rest spread evenly */
	if (sp && sp->key_size == m->key_size && sp->lookups) {
		uint64_t seen = 0;

		for (i = 0; i < sp->key_cnt; i++) {
			const uint8_t *k = sp->keys + i * m->key_size;
			uint32_t plen;

			plen = dlen * 8;
			if (hdr)
				memcpy(&plen, k, 4);
			if (plen != dlen * 8)
				continue;
			iv[find_ival(iv, n, addr_of(k + hdr, dlen))].w += (double)sp->counts[i];
			seen += sp->counts[i];
		}
		rest = sp->lookups > seen ? (double)(sp->lookups - seen) : 0;
		rest = rest / (double)n + 1e-6 * (double)sp->lookups / (double)n;
	} else {
		rest = 1;
	}
	for (i = 0; i < n; i++)
		cum[i + 1] = cum[i] + iv[i].w + rest;
	t.iv = iv;
	t.cum = cum;
	err = grow(&t, 16);
	if (err)
		goto out;
	if (hdr) {	/* prefixlen must be the full width, else the original call */
		put(&t, (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = 3,
					   .src_reg = RS_REG_FP, .off = (int16_t)key_off });
		t.call_fix[t.ncall++] = t.cnt;
		put(&t, (struct bpf_insn){ .code = BPF_JMP32 | BPF_JNE | BPF_K, .dst_reg = 3,
					   .imm = (int32_t)(dlen * 8) });
	}
	load_word(&t, 3, 5, 0, dlen < 8 ? dlen : 8);
	if (dlen > 8)
		load_word(&t, 4, 5, 8, dlen - 8);
	err = node(&t, 0, n - 1);
	if (err)
		goto out;
	err = grow(&t, 2);
	if (err)
		goto out;
	for (i = 0; i < t.ncall; i++) {
		err = patch(&t, t.call_fix[i], t.cnt);
		if (err)
			goto out;
	}
	if (t.ncall)
		put(&t, *call);
	for (i = 0; i < t.nend; i++) {
		err = patch(&t, t.end_fix[i], t.cnt);
		if (err)
			goto out;
	}
	*out = t.v;
	*out_cnt = t.cnt;
	*n_intervals = n;
	t.v = NULL;
out:
	free(t.v);
	free(t.end_fix);
	free(t.call_fix);
	free(cum);
	free(iv);
	return err;
}

int rs_lpm_tree_emit(struct rs_opt_ctx *ctx, const struct rs_map_snapshot *m,
		     const struct rs_site_profile *sp, int32_t key_off, bool values,
		     const struct bpf_insn *call, size_t max_intervals,
		     struct bpf_insn **out, size_t *out_cnt, size_t *n_intervals)
{
	if (!m || m->type != BPF_MAP_TYPE_LPM_TRIE)
		return -EOPNOTSUPP;
	return tree_emit(ctx, m, 4, sp, key_off, values, call, max_intervals, out, out_cnt,
			 n_intervals);
}

int rs_key_tree_emit(struct rs_opt_ctx *ctx, const struct rs_map_snapshot *m,
		     const struct rs_site_profile *sp, int32_t key_off, bool values,
		     const struct bpf_insn *call, size_t max_intervals,
		     struct bpf_insn **out, size_t *out_cnt, size_t *n_intervals)
{
	if (!m || !rs_map_is_hash(m->type) || (values && rs_map_is_percpu(m->type)))
		return -EOPNOTSUPP;
	return tree_emit(ctx, m, 0, sp, key_off, values, call, max_intervals, out, out_cnt,
			 n_intervals);
}
