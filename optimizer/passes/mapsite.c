// SPDX-License-Identifier: BSD-2-Clause
/*
 * mapsite.c - helpers shared by the map passes (see mapsite.h): lookup sites and their facts,
 * snapshot values, the constant pool, a constant tracker for key bytes on the stack, folding
 * the uses of a known lookup result, and the full-key compare chain emitter with its cost
 * model.  Pure: no system calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

bool rs_insn_is_lookup(const struct bpf_insn *in)
{
	return rs_insn_is_helper_call(in) && in->imm == BPF_FUNC_map_lookup_elem;
}

bool rs_map_is_hash(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return true;
	default:
		return false;
	}
}

bool rs_map_is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

int rs_lookup_sites(const struct rs_opt_ctx *ctx, struct rs_lookup_site **sites, size_t *cnt)
{
	const struct rs_prog *p = &ctx->prog;
	struct rs_lookup_site *v = NULL;
	size_t i, n = 0;

	*sites = NULL;
	*cnt = 0;
	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i])) {
		const struct rs_site_fact *f;
		struct rs_lookup_site *s;

		if (!rs_insn_is_lookup(&p->insns[i]) || ctx->orig_idx[i] < 0)
			continue;
		f = rs_pass_site_fact(ctx, ctx->orig_idx[i]);
		if (!f || f->map_idx >= ctx->orig->map_cnt)
			continue;
		s = realloc(v, (n + 1) * sizeof(*v));
		if (!s) {
			free(v);
			return -ENOMEM;
		}
		v = s;
		s = &v[n++];
		memset(s, 0, sizeof(*s));
		s->idx = i;
		s->orig = ctx->orig_idx[i];
		s->map_idx = f->map_idx;
		s->fact = f;
		s->mfact = rs_pass_map_fact(ctx, f->map_idx);
		s->snap = ctx->snap && f->map_idx < ctx->snap->map_cnt ?
			  &ctx->snap->maps[f->map_idx] : NULL;
		s->map = &ctx->orig->maps[f->map_idx];
	}
	*sites = v;
	*cnt = n;
	return 0;
}

/* ---- snapshot values ------------------------------------------------------------------- */

/* per-CPU entry: all CPUs hold the same bytes */
static bool percpu_same(const struct rs_map_snapshot *m, const uint8_t *v)
{
	uint32_t step = (m->value_size + 7) & ~7u, c;

	for (c = 1; c < m->ncpus; c++)
		if (memcmp(v, v + c * step, m->value_size))
			return false;
	return true;
}

int rs_snap_value(const struct rs_map_snapshot *m, const uint8_t *key, const uint8_t **val,
		  char *why, size_t whysz)
{
	const uint8_t *v;

	*val = NULL;
	if (!m) {
		snprintf(why, whysz, "no snapshot of the map");
		return 0;
	}
	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY: {
		uint32_t idx;

		memcpy(&idx, key, 4);
		if (idx >= m->max_entries)
			return 1;	/* out of range: never found */
		v = rs_snapshot_lookup(m, key);
		if (!v) {
			snprintf(why, whysz, "index %u missing from the snapshot", idx);
			return 0;
		}
		break;
	}
	case BPF_MAP_TYPE_LPM_TRIE:
		if (!m->complete) {
			snprintf(why, whysz, "snapshot incomplete: a longer prefix may be missing");
			return 0;
		}
		v = rs_lpm_match(m, key);
		break;
	default:
		if (!rs_map_is_hash(m->type)) {
			snprintf(why, whysz, "map type %u not handled", m->type);
			return 0;
		}
		v = rs_snapshot_lookup(m, key);
		if (!v && !m->complete) {
			snprintf(why, whysz, "key absent from an incomplete snapshot");
			return 0;
		}
		break;
	}
	if (v && rs_map_is_percpu(m->type) && m->ncpus > 1 && !percpu_same(m, v)) {
		snprintf(why, whysz, "per-CPU values differ between CPUs");
		return 0;
	}
	*val = v;
	return 1;
}

/* ---- constant pool ----------------------------------------------------------------------- */

int rs_pool_add(struct rs_opt_ctx *ctx, const void *data, uint32_t len, int *pool_idx,
		uint32_t *off)
{
	struct rs_prog *p = &ctx->prog;
	struct rs_map_ref *m = NULL;
	uint32_t o, size;
	uint8_t *nv;
	size_t i;
	int idx;

	for (i = 0; i < p->map_cnt; i++) {
		if (!p->maps[i].id && p->maps[i].init_value &&
		    !strcmp(p->maps[i].name, RS_POOL_NAME)) {
			m = &p->maps[i];
			break;
		}
	}
	if (!m) {
		struct rs_map_ref r = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
					.value_size = len ? len : 8, .max_entries = 1,
					.flags = BPF_F_RDONLY_PROG };
		uint8_t zero[8] = {};

		snprintf(r.name, sizeof(r.name), "%s", RS_POOL_NAME);
		r.init_value = len ? (uint8_t *)data : zero;
		idx = rs_prog_add_map(p, &r);
		if (idx < 0)
			return idx;
		*pool_idx = idx;
		*off = 0;
		return 0;
	}
	idx = (int)(m - p->maps);
	/* the same bytes already there (8-byte aligned)? */
	for (o = 0; len && o + len <= m->value_size; o += 8) {
		if (!memcmp(m->init_value + o, data, len)) {
			*pool_idx = idx;
			*off = o;
			return 0;
		}
	}
	o = (m->value_size + 7) & ~7u;
	size = o + (len ? len : 8);
	if (size > (1u << 20))
		return -E2BIG;
	nv = realloc(m->init_value, size);
	if (!nv)
		return -ENOMEM;
	memset(nv + m->value_size, 0, size - m->value_size);
	if (len)
		memcpy(nv + o, data, len);
	m->init_value = nv;
	m->value_size = size;
	*pool_idx = idx;
	*off = o;
	return 0;
}

/* ---- constants on the stack ------------------------------------------------------------ */

enum rkind { R_UNK, R_NS, R_CONST, R_FP };	/* maybe-stack, not stack, constant, fp + val */

struct rstate {
	enum rkind k;
	int64_t v;
};

struct cstate {
	struct rstate r[RS_MAX_REG];
	bool *known;
	uint8_t *val;
};

static void stack_clear(struct cstate *s)
{
	memset(s->known, 0, 512);
}

static void stack_write(struct cstate *s, int64_t off, int size, bool known, uint64_t v)
{
	int i;

	for (i = 0; i < size; i++) {
		int64_t a = off + i + 512;

		if (a < 0 || a >= 512)
			continue;
		s->known[a] = known;
		s->val[a] = (uint8_t)(v >> (8 * i));
	}
}

static bool stack_read(const struct cstate *s, int64_t off, int size, uint64_t *v)
{
	int i;

	*v = 0;
	for (i = 0; i < size; i++) {
		int64_t a = off + i + 512;

		if (a < 0 || a >= 512 || !s->known[a])
			return false;
		*v |= (uint64_t)s->val[a] << (8 * i);
	}
	return true;
}

static int size_bytes(uint8_t code)
{
	switch (BPF_SIZE(code)) {
	case BPF_B:
		return 1;
	case BPF_H:
		return 2;
	case BPF_W:
		return 4;
	default:
		return 8;
	}
}

static bool alu_const(uint8_t op, uint64_t a, uint64_t b, bool is64, uint64_t *r)
{
	unsigned int sh = is64 ? 63 : 31;

	switch (op) {
	case BPF_ADD: *r = a + b; break;
	case BPF_SUB: *r = a - b; break;
	case BPF_MUL: *r = a * b; break;
	case BPF_AND: *r = a & b; break;
	case BPF_OR: *r = a | b; break;
	case BPF_XOR: *r = a ^ b; break;
	case BPF_LSH: *r = a << (b & sh); break;
	case BPF_RSH:
		*r = is64 ? a >> (b & sh) : (uint32_t)a >> (b & sh);
		break;
	default:
		return false;
	}
	if (!is64)
		*r = (uint32_t)*r;
	return true;
}

static void step_alu(struct cstate *s, const struct bpf_insn *in)
{
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
	struct rstate *d = &s->r[in->dst_reg], src;
	uint8_t op = BPF_OP(in->code);
	uint64_t r;

	if (BPF_SRC(in->code) == BPF_K)
		src = (struct rstate){ R_CONST, is64 ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm };
	else
		src = s->r[in->src_reg];
	if (op == BPF_MOV) {
		if (in->off) {		/* movsx */
			*d = (struct rstate){ R_NS, 0 };
		} else if (is64) {
			*d = src;
		} else {
			*d = src.k == R_CONST ? (struct rstate){ R_CONST, (uint32_t)src.v } :
						(struct rstate){ R_NS, 0 };
		}
		return;
	}
	if (is64 && d->k == R_FP && src.k == R_CONST && (op == BPF_ADD || op == BPF_SUB)) {
		d->v = op == BPF_ADD ? d->v + src.v : d->v - src.v;
		return;
	}
	if (d->k == R_CONST && src.k == R_CONST && op != BPF_END &&
	    alu_const(op, (uint64_t)d->v, (uint64_t)src.v, is64, &r)) {
		d->v = (int64_t)r;
		return;
	}
	if (d->k == R_FP || d->k == R_UNK || src.k == R_FP ||
	    (BPF_SRC(in->code) == BPF_X && src.k == R_UNK))
		*d = (struct rstate){ R_UNK, 0 };
	else
		*d = (struct rstate){ R_NS, 0 };
}

static void step(struct cstate *s, const struct bpf_insn *in)
{
	uint8_t cls = BPF_CLASS(in->code);
	struct rstate *b;
	uint64_t v;
	int i, sz;

	switch (cls) {
	case BPF_ALU:
	case BPF_ALU64:
		step_alu(s, in);
		return;
	case BPF_LD:
		if (rs_insn_is_ldimm64(in)) {
			if (in->src_reg == 0)
				s->r[in->dst_reg] = (struct rstate){ R_CONST,
					(int64_t)((uint64_t)(uint32_t)in[1].imm << 32 |
						  (uint32_t)in->imm) };
			else
				s->r[in->dst_reg] = (struct rstate){ R_NS, 0 };
			return;
		}
		for (i = 0; i <= 5; i++)	/* LD_ABS / LD_IND */
			s->r[i] = (struct rstate){ R_NS, 0 };
		return;
	case BPF_LDX:
		b = &s->r[in->src_reg];
		sz = size_bytes(in->code);
		if (b->k == R_FP && BPF_MODE(in->code) == BPF_MEM &&
		    stack_read(s, b->v + in->off, sz, &v)) {
			s->r[in->dst_reg] = (struct rstate){ R_CONST, (int64_t)v };
		} else if (b->k == R_FP && BPF_MODE(in->code) == BPF_MEMSX &&
			   stack_read(s, b->v + in->off, sz, &v)) {
			int sh = 64 - 8 * sz;

			s->r[in->dst_reg] = (struct rstate){ R_CONST, (int64_t)(v << sh) >> sh };
		} else {
			s->r[in->dst_reg] = (struct rstate){
				b->k == R_FP || b->k == R_UNK ? R_UNK : R_NS, 0 };
		}
		return;
	case BPF_ST:
	case BPF_STX:
		b = &s->r[in->dst_reg];
		sz = size_bytes(in->code);
		if (BPF_MODE(in->code) == BPF_ATOMIC) {
			if (b->k == R_FP)
				stack_write(s, b->v + in->off, sz, false, 0);
			else if (b->k == R_UNK)
				stack_clear(s);
			if (in->imm & BPF_FETCH)
				s->r[in->imm == BPF_CMPXCHG ? 0 : in->src_reg] =
					(struct rstate){ R_UNK, 0 };
			return;
		}
		if (b->k == R_FP) {
			bool known = cls == BPF_ST || s->r[in->src_reg].k == R_CONST;

			v = cls == BPF_ST ? (uint64_t)(int64_t)in->imm : (uint64_t)s->r[in->src_reg].v;
			stack_write(s, b->v + in->off, sz, known, v);
		} else if (b->k == R_UNK) {
			stack_clear(s);
		}
		return;
	case BPF_JMP:
	case BPF_JMP32:
		if (rs_insn_is_call(in)) {
			for (i = 1; i <= 5; i++)
				if (s->r[i].k == R_FP || s->r[i].k == R_UNK)
					stack_clear(s);
			s->r[0] = (struct rstate){ rs_insn_is_pseudo_call(in) ? R_UNK : R_NS, 0 };
			for (i = 1; i <= 5; i++)
				s->r[i] = (struct rstate){ R_NS, 0 };
		}
		return;
	default:
		return;
	}
}

int rs_stack_consts(const struct rs_prog *prog, const struct rs_cfg *cfg, size_t idx,
		    bool known[512], uint8_t val[512])
{
	int chain[32], n = 0, b, k, i;
	struct cstate s;
	size_t j;

	memset(&s, 0, sizeof(s));
	s.known = known;
	s.val = val;
	stack_clear(&s);
	if (idx >= cfg->insn_cnt || cfg->insn_bb[idx] < 0)
		return -EINVAL;
	for (i = 0; i < RS_MAX_REG; i++)
		s.r[i].k = R_UNK;
	s.r[RS_REG_FP] = (struct rstate){ R_FP, 0 };
	/* walk up single-predecessor blocks (forward edges only) */
	b = cfg->insn_bb[idx];
	chain[n++] = b;
	while (n < (int)RS_ARRAY_SIZE(chain) && cfg->bbs[b].pred_cnt == 1 &&
	       cfg->bbs[b].preds[0] < b && cfg->bbs[b].start != cfg->subprogs[cfg->bbs[b].subprog].start) {
		b = cfg->bbs[b].preds[0];
		chain[n++] = b;
	}
	for (k = n - 1; k >= 0; k--) {
		const struct rs_bb *bb = &cfg->bbs[chain[k]];

		for (j = bb->start; j < bb->end && j < idx; j += rs_insn_width(&prog->insns[j]))
			step(&s, &prog->insns[j]);
	}
	return 0;
}

/* ---- folding the uses of a known pointer ----------------------------------------------- */

/* immediate load of v into dst: 1 or 2 instructions */
static size_t imm_load(struct bpf_insn *out, uint8_t dst, uint64_t v)
{
	if (v <= 0xffffffffull) {
		out[0] = (struct bpf_insn){ .code = BPF_ALU | BPF_MOV | BPF_K, .dst_reg = dst,
					    .imm = (int32_t)(uint32_t)v };
		return 1;
	}
	if ((int64_t)v == (int64_t)(int32_t)v) {
		out[0] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst,
					    .imm = (int32_t)v };
		return 1;
	}
	out[0] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = dst,
				    .imm = (int32_t)(uint32_t)v };
	out[1] = (struct bpf_insn){ .imm = (int32_t)(uint32_t)(v >> 32) };
	return 2;
}

static bool block_start(const struct rs_cfg *cfg, size_t j)
{
	int b = cfg->insn_bb[j];

	return b >= 0 && cfg->bbs[b].start == j;
}

int rs_fold_uses(const struct rs_prog *prog, const struct rs_cfg *cfg, struct rs_edit *e,
		 size_t start, int reg, bool non_null, const uint8_t *bytes, uint32_t len,
		 int32_t base, size_t *folds, bool *touched)
{
	rs_regmask_t a = (rs_regmask_t)(1u << reg);
	size_t j = start + rs_insn_width(&prog->insns[start]);
	int err;

	while (a && j < prog->insn_cnt) {
		const struct bpf_insn *in = &prog->insns[j];
		uint8_t cls = BPF_CLASS(in->code);

		if (block_start(cfg, j) && cfg->bbs[cfg->insn_bb[j]].pred_cnt != 1)
			break;
		if (touched && touched[j])
			break;		/* another site's edit: stop before overlapping it */
		if (cls == BPF_JMP && rs_insn_is_cond_jmp(in) && BPF_SRC(in->code) == BPF_K &&
		    in->imm == 0 && (a & (1u << in->dst_reg)) &&
		    (BPF_OP(in->code) == BPF_JEQ || BPF_OP(in->code) == BPF_JNE)) {
			bool taken = (BPF_OP(in->code) == BPF_JEQ) != non_null;

			if (taken) {
				struct bpf_insn ja = { .code = BPF_JMP | BPF_JA };
				long t = rs_insn_target(prog->insns, j);

				if (touched)
					touched[j] = true;
				return rs_edit_replace(e, j, 1, &ja, &t, 1);
			}
			err = rs_edit_delete(e, j, 1);
			if (err)
				return err;
			if (touched)
				touched[j] = true;
			j++;
			continue;
		}
		if (rs_insn_is_exit(in) || rs_insn_is_uncond_jmp(in))
			break;
		if (cls == BPF_LDX && BPF_MODE(in->code) == BPF_MEM && (a & (1u << in->src_reg))) {
			int sz = size_bytes(in->code);
			int64_t off = (int64_t)base + in->off;

			if (bytes && off >= 0 && off + sz <= (int64_t)len) {
				struct bpf_insn imm[2];
				uint64_t v = 0;
				size_t n;
				int i;

				for (i = 0; i < sz; i++)
					v |= (uint64_t)bytes[off + i] << (8 * i);
				n = imm_load(imm, in->dst_reg, v);
				err = rs_edit_replace(e, j, 1, imm, NULL, n);
				if (err)
					return err;
				if (touched)
					touched[j] = true;
				(*folds)++;
			}
			a &= (rs_regmask_t)~(1u << in->dst_reg);
			j++;
			continue;
		}
		if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in->off) {
			if (a & (1u << in->src_reg))
				a |= (rs_regmask_t)(1u << in->dst_reg);
			else
				a &= (rs_regmask_t)~(1u << in->dst_reg);
			j++;
			continue;
		}
		a &= (rs_regmask_t)~rs_insn_defs(in);
		j += rs_insn_width(in);
	}
	return 0;
}

/* ---- compare chains ---------------------------------------------------------------------- */

struct chunk {
	uint32_t pos;
	int size;
	size_t distinct;
};

static size_t plan_chunks(uint32_t key_size, int32_t key_off, struct chunk *c, size_t max)
{
	uint32_t pos = 0;
	size_t n = 0;

	while (pos < key_size && n < max) {
		int s = 8;

		while (s > 1 && (((key_off + (int32_t)pos) & (s - 1)) || pos + (uint32_t)s > key_size))
			s /= 2;
		c[n].pos = pos;
		c[n].size = s;
		c[n].distinct = 0;
		n++;
		pos += (uint32_t)s;
	}
	return n;
}

static uint64_t chunk_val(const uint8_t *key, const struct chunk *c)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < c->size; i++)
		v |= (uint64_t)key[c->pos + i] << (8 * i);
	return v;
}

static int cmp_chunk(const void *a, const void *b)
{
	const struct chunk *x = a, *y = b;

	if (x->distinct != y->distinct)
		return x->distinct > y->distinct ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

#define MAX_CHUNKS 64

int rs_chain_emit(const struct rs_chain_key *keys, size_t n, uint32_t key_size, int32_t key_off,
		  bool fallback_call, const struct bpf_insn *call, int map_idx,
		  struct bpf_insn **out, size_t *out_cnt)
{
	struct chunk ch[MAX_CHUNKS];
	size_t nch, k, c, i, cnt = 0, cap, pre, *next_fix = NULL, nfix = 0, *end_fix = NULL, nend = 0;
	uint8_t preg[MAX_CHUNKS];
	struct bpf_insn *v;

	bool masked = false;

	*out = NULL;
	*out_cnt = 0;
	for (k = 0; k < n; k++)
		masked |= keys[k].mask != NULL;
	if (key_size > MAX_CHUNKS)
		return -E2BIG;
	nch = plan_chunks(key_size, key_off, ch, MAX_CHUNKS);
	for (c = 0; c < nch; c++) {	/* distinct values per chunk */
		for (k = 0; k < n; k++) {
			uint64_t x = chunk_val(keys[k].key, &ch[c]);

			for (i = 0; i < k; i++)
				if (chunk_val(keys[i].key, &ch[c]) == x)
					break;
			ch[c].distinct += i == k;
		}
	}
	qsort(ch, nch, sizeof(ch[0]), cmp_chunk);
	pre = nch <= 3 ? nch : 2;
	for (c = 0; c < nch; c++)
		preg[c] = c < pre ? (uint8_t)(3 + c) : 5;
	cap = nch + n * (nch * 9 + 4) + 2;
	v = calloc(cap, sizeof(*v));
	next_fix = calloc(n * nch + 1, sizeof(*next_fix));
	end_fix = calloc(n + 1, sizeof(*end_fix));
	if (!v || !next_fix || !end_fix) {
		free(v);
		free(next_fix);
		free(end_fix);
		return -ENOMEM;
	}
	for (c = 0; c < pre && n; c++)
		v[cnt++] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM |
					      (ch[c].size == 8 ? BPF_DW : ch[c].size == 4 ? BPF_W :
					       ch[c].size == 2 ? BPF_H : BPF_B),
					      .dst_reg = preg[c], .src_reg = RS_REG_FP,
					      .off = (int16_t)(key_off + (int32_t)ch[c].pos) };
	for (k = 0; k < n; k++) {
		size_t first_fix = nfix;

		for (c = 0; c < nch; c++) {
			uint64_t x = chunk_val(keys[k].key, &ch[c]), mk = ~0ull;
			uint8_t r = preg[c];

			if (keys[k].mask) {
				mk = chunk_val(keys[k].mask, &ch[c]);
				if (!mk)
					continue;	/* nothing of this chunk is compared */
				if (ch[c].size < 8)
					mk |= ~0ull << (8 * ch[c].size);
				x &= mk;
			}

			if (c >= pre)
				v[cnt++] = (struct bpf_insn){ .code = BPF_LDX | BPF_MEM |
					(ch[c].size == 8 ? BPF_DW : ch[c].size == 4 ? BPF_W :
					 ch[c].size == 2 ? BPF_H : BPF_B),
					.dst_reg = r, .src_reg = RS_REG_FP,
					.off = (int16_t)(key_off + (int32_t)ch[c].pos) };
			if (~mk) {	/* masked: r0 = chunk & mask */
				v[cnt++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
							      .dst_reg = 0, .src_reg = r };
				if (ch[c].size < 8 || (int64_t)mk == (int64_t)(int32_t)mk) {
					v[cnt++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_AND |
								      BPF_K, .dst_reg = 0,
								      .imm = (int32_t)(uint32_t)mk };
				} else {
					v[cnt++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW |
								      BPF_IMM, .dst_reg = 1,
								      .imm = (int32_t)(uint32_t)mk };
					v[cnt++] = (struct bpf_insn){ .imm = (int32_t)(uint32_t)(mk >> 32) };
					v[cnt++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_AND |
								      BPF_X, .dst_reg = 0,
								      .src_reg = 1 };
				}
				r = 0;
			}
			if (ch[c].size < 8) {
				v[cnt] = (struct bpf_insn){ .code = BPF_JMP32 | BPF_JNE | BPF_K,
							    .dst_reg = r, .imm = (int32_t)(uint32_t)x };
			} else if ((int64_t)x == (int64_t)(int32_t)x) {
				v[cnt] = (struct bpf_insn){ .code = BPF_JMP | BPF_JNE | BPF_K,
							    .dst_reg = r, .imm = (int32_t)x };
			} else {
				uint8_t cr = r ? 0 : 1;	/* constant register */

				v[cnt++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
							      .dst_reg = cr, .imm = (int32_t)(uint32_t)x };
				v[cnt++] = (struct bpf_insn){ .imm = (int32_t)(uint32_t)(x >> 32) };
				v[cnt] = (struct bpf_insn){ .code = BPF_JMP | BPF_JNE | BPF_X,
							    .dst_reg = r, .src_reg = cr };
			}
			next_fix[nfix++] = cnt++;
		}
		if (keys[k].null) {
			v[cnt++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K };
		} else {
			v[cnt++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
						      .src_reg = BPF_PSEUDO_MAP_IDX_VALUE,
						      .imm = keys[k].pool_idx };
			v[cnt++] = (struct bpf_insn){ .imm = (int32_t)keys[k].pool_off };
		}
		end_fix[nend++] = cnt;
		v[cnt++] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA };
		for (i = first_fix; i < nfix; i++)	/* mismatch: next key */
			v[next_fix[i]].off = (int16_t)(cnt - next_fix[i] - 1);
	}
	if (fallback_call && masked) {	/* r1 was a scratch register: the map again */
		v[cnt++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 1,
					      .src_reg = BPF_PSEUDO_MAP_IDX, .imm = map_idx };
		v[cnt++] = (struct bpf_insn){ .imm = 0 };
	}
	if (fallback_call)
		v[cnt++] = *call;
	else
		v[cnt++] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K };
	for (i = 0; i < nend; i++)
		v[end_fix[i]].off = (int16_t)(cnt - end_fix[i] - 1);
	free(next_fix);
	free(end_fix);
	*out = v;
	*out_cnt = cnt;
	return 0;
}

double rs_lookup_cost(uint32_t map_type, uint32_t key_size)
{
	switch (map_type) {
	case BPF_MAP_TYPE_ARRAY:
		return 5;
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return 7;
	case BPF_MAP_TYPE_LPM_TRIE:
		return 90 + 2.0 * key_size;
	default:
		return 45 + key_size;
	}
}

double rs_chain_cost(const double *p, size_t n, uint32_t key_size, int32_t key_off,
		     double miss_cost)
{
	struct chunk ch[MAX_CHUNKS];
	size_t nch = plan_chunks(key_size, key_off, ch, MAX_CHUNKS), i;
	double miss = 1.5, hit = 1.5 * (double)nch + 2, e, left = 1;

	if (!n)
		return miss_cost;
	e = (double)(nch <= 3 ? nch : 2);
	for (i = 0; i < n; i++) {
		e += p[i] * ((double)i * miss + hit);
		left -= p[i];
	}
	if (left < 0)
		left = 0;
	return e + left * ((double)n * miss + miss_cost);
}

const char *rs_key_str(const uint8_t *key, uint32_t size, char *buf, size_t sz)
{
	size_t o = 0;
	uint32_t i;

	buf[0] = '\0';
	for (i = 0; i < size && o + 3 < sz; i++)
		o += (size_t)snprintf(buf + o, sz - o, "%02x", key[i]);
	if (i < size && sz > 4)
		snprintf(buf + sz - 4, 4, "...");
	return buf;
}

int rs_site_walk_begin(struct rs_opt_ctx *ctx, struct rs_site_walk *w)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->applied0 = ctx->stats ? ctx->stats->applied : 0;
	err = rs_lookup_sites(ctx, &w->sites, &w->n);
	if (err)
		return err;
	w->e = rs_edit_new(&ctx->prog);
	w->touched = calloc(ctx->prog.insn_cnt + 1, sizeof(*w->touched));
	return w->e && w->touched ? 0 : -ENOMEM;
}

int rs_site_walk_end(struct rs_opt_ctx *ctx, struct rs_site_walk *w, int err)
{
	if (!err && w->e && (!ctx->stats || ctx->stats->applied > w->applied0)) {
		err = rs_pass_commit(ctx, w->e);
		w->e = NULL;
	}
	rs_edit_free(w->e);
	free(w->touched);
	free(w->sites);
	memset(w, 0, sizeof(*w));
	return err;
}
