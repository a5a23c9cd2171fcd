// SPDX-License-Identifier: BSD-2-Clause
/*
 * constprop.c - constant propagation with branch folding (conditional constant propagation
 * over the CFG of each subprogram).
 *
 * What: registers and 8-byte stack slots get an abstract value { unknown, constant, non-null
 * pointer, frame pointer + offset, constant-pool pointer + offset }; only the feasible
 * successors of a branch whose outcome is known are followed.  Then:
 *   - a conditional jump with a known outcome becomes `ja` (always taken) or disappears;
 *   - an ALU instruction (or register move / stack fill) whose result is a known constant
 *     becomes `rD = imm` (ld_imm64 when the value needs 64 bits), so DCE can drop its inputs;
 *   - a register compare against a known constant uses the immediate form;
 *   - a load through a pointer into a constant pool (the frozen read-only single-entry arrays
 *     the specializer passes create, rs_map_ref.init_value), at a known offset, becomes the
 *     pool's bytes as an immediate - wherever the pointer went: copies, spills, across calls
 *     in r6-r9 (map_fold folds loads near the lookup it replaces; this finds the rest).
 * Why: map_fold / hot_keys / table_elim turn map reads into immediates; this pass carries them
 * into the branches that tested them (a disabled feature flag becomes dead code, a constant
 * backend index selects one arm).
 * Preconditions: none beyond a valid program (it relies on no map fact: a pool is frozen and
 * BPF_F_RDONLY_PROG, so its bytes are its init_value forever).  Soundness details:
 * constants arise only from immediates (never from pointers), so replacing a result by an
 * immediate never turns a pointer into a scalar; the only branch refinement is `rX == 0` on the
 * taken edge (the verifier treats a null-checked register as 0 there too); non-null pointers
 * are direct map values, map pointers, callbacks and the frame pointer; any call or a store of a
 * frame pointer to memory forgets the stack slots it could reach.  Unreachable blocks are left
 * for dce.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

enum ckind { C_UNK, C_CONST, C_NONNULL, C_FP, C_POOL };

struct cval {
	uint8_t k;
	uint64_t v;			/* constant, frame offset (as int64), or for C_POOL the
					 * map index << 32 | offset into the pool value */
};

#define POOL_VAL(m, off)	((uint64_t)(m) << 32 | (uint32_t)(off))
#define POOL_MAP(v)		((uint32_t)((v) >> 32))
#define POOL_OFF(v)		((int32_t)(uint32_t)(v))

static bool is_pool(const struct rs_prog *p, uint32_t m)
{
	const struct rs_map_ref *r = m < p->map_cnt ? &p->maps[m] : NULL;

	return r && !r->id && r->init_value && r->type == BPF_MAP_TYPE_ARRAY &&
	       r->max_entries == 1 && (r->flags & BPF_F_RDONLY_PROG);
}

/* The bytes a load of `size` at pool pointer `v` + off reads (false when out of range). */
static bool pool_load(const struct rs_prog *p, uint64_t v, int64_t off, int64_t size,
		      uint64_t *out)
{
	const struct rs_map_ref *r = &p->maps[POOL_MAP(v)];
	int64_t at = (int64_t)POOL_OFF(v) + off;
	uint64_t x = 0;

	if (at < 0 || at + size > (int64_t)r->value_size)
		return false;
	memcpy(&x, r->init_value + at, (size_t)size);	/* BPF is host-endian */
	*out = x;
	return true;
}

#define NSLOTS 64			/* fp-512 .. fp-8 */

struct cstate {
	struct cval r[RS_MAX_REG];
	struct cval st[NSLOTS];
	bool fp_escaped;		/* a frame pointer was stored to memory */
	bool reached;
};

static const struct cval unk = { C_UNK, 0 };

static int slot_of(int64_t off)
{
	if (off < -8 * NSLOTS || off >= 0 || (off & 7))
		return -1;
	return (int)((off + 8 * NSLOTS) / 8);
}

static void forget_stack(struct cstate *s)
{
	int i;

	for (i = 0; i < NSLOTS; i++)
		s->st[i] = unk;
}

static void forget_range(struct cstate *s, int64_t off, int64_t size)
{
	int64_t o;

	for (o = off & ~7LL; o < off + size; o += 8) {
		int sl = slot_of(o);

		if (sl >= 0)
			s->st[sl] = unk;
	}
}

static int64_t msize(const struct bpf_insn *in)
{
	static const int64_t sz[] = { 4, 2, 1, 8 };	/* BPF_W, BPF_H, BPF_B, BPF_DW */

	return sz[BPF_SIZE(in->code) >> 3];
}

static uint64_t bswap(uint64_t v, int bits)
{
	uint64_t r = 0;
	int i;

	for (i = 0; i < bits / 8; i++)
		r |= ((v >> (8 * i)) & 0xff) << (bits - 8 - 8 * i);
	return r;
}

/* ALU on constants; false when the result is not known */
static bool alu(const struct bpf_insn *in, uint64_t d, uint64_t s, uint64_t *out)
{
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
	uint8_t op = BPF_OP(in->code);
	uint64_t r;

	if (!is64) {
		d = (uint32_t)d;
		s = (uint32_t)s;
	}
	switch (op) {
	case BPF_ADD: r = d + s; break;
	case BPF_SUB: r = d - s; break;
	case BPF_MUL: r = d * s; break;
	case BPF_OR: r = d | s; break;
	case BPF_AND: r = d & s; break;
	case BPF_XOR: r = d ^ s; break;
	case BPF_NEG: r = -d; break;
	case BPF_LSH:
	case BPF_RSH:
	case BPF_ARSH:
		if (s >= (is64 ? 64u : 32u))
			return false;
		if (op == BPF_LSH)
			r = d << s;
		else if (op == BPF_RSH)
			r = d >> s;
		else if (is64)
			r = (uint64_t)((int64_t)d >> s);
		else
			r = (uint32_t)((int32_t)(uint32_t)d >> s);
		break;
	case BPF_DIV:
	case BPF_MOD:
		if (in->off == 0) {
			if (op == BPF_DIV)
				r = s ? d / s : 0;
			else
				r = s ? d % s : d;
		} else if (in->off == 1) {
			int64_t a = is64 ? (int64_t)d : (int32_t)d;
			int64_t b = is64 ? (int64_t)s : (int32_t)s;

			if (op == BPF_DIV)
				r = !b ? 0 : b == -1 ? (uint64_t)-(uint64_t)a : (uint64_t)(a / b);
			else
				r = !b ? (uint64_t)a : b == -1 ? 0 : (uint64_t)(a % b);
		} else {
			return false;
		}
		break;
	case BPF_MOV:
		if (in->off == 0)
			r = s;
		else if (in->off == 8)
			r = (uint64_t)(int64_t)(int8_t)s;
		else if (in->off == 16)
			r = (uint64_t)(int64_t)(int16_t)s;
		else if (in->off == 32 && is64)
			r = (uint64_t)(int64_t)(int32_t)s;
		else
			return false;
		break;
	case BPF_END:
		if (in->imm != 16 && in->imm != 32 && in->imm != 64)
			return false;
		d = in->imm == 64 ? d : d & ((1ULL << in->imm) - 1);
		if (is64 || BPF_SRC(in->code) == BPF_TO_BE)
			r = bswap(d, in->imm);
		else
			r = d;
		is64 = true;		/* already sized */
		break;
	default:
		return false;
	}
	*out = is64 ? r : (uint32_t)r;
	return true;
}

/* op with its operands swapped (a op b == b op' a), 0 when there is none */
static uint8_t swapped_op(uint8_t op)
{
	switch (op) {
	case BPF_JEQ: case BPF_JNE: case BPF_JSET: return op;
	case BPF_JGT: return BPF_JLT;
	case BPF_JLT: return BPF_JGT;
	case BPF_JGE: return BPF_JLE;
	case BPF_JLE: return BPF_JGE;
	case BPF_JSGT: return BPF_JSLT;
	case BPF_JSLT: return BPF_JSGT;
	case BPF_JSGE: return BPF_JSLE;
	case BPF_JSLE: return BPF_JSGE;
	default: return 0;
	}
}

/* 1 taken, 0 not taken, -1 unknown */
static int branch(const struct bpf_insn *in, const struct cstate *s)
{
	const struct cval *d = &s->r[in->dst_reg];
	bool is64 = BPF_CLASS(in->code) == BPF_JMP, x = BPF_SRC(in->code) == BPF_X;
	uint8_t op = BPF_OP(in->code);
	uint64_t a, b;

	if (x && s->r[in->src_reg].k != C_CONST)
		return -1;
	b = x ? s->r[in->src_reg].v : (uint64_t)(int64_t)in->imm;
	if (d->k == C_NONNULL || d->k == C_FP || d->k == C_POOL) {
		if (!is64 || b != 0)
			return -1;
		if (op == BPF_JEQ)
			return 0;
		if (op == BPF_JNE)
			return 1;
		return -1;
	}
	if (d->k != C_CONST)
		return -1;
	a = d->v;
	if (!is64) {
		a = (uint32_t)a;
		b = (uint32_t)b;
	}
#define SGN(v) (is64 ? (int64_t)(v) : (int64_t)(int32_t)(uint32_t)(v))
	switch (op) {
	case BPF_JEQ: return a == b;
	case BPF_JNE: return a != b;
	case BPF_JGT: return a > b;
	case BPF_JGE: return a >= b;
	case BPF_JLT: return a < b;
	case BPF_JLE: return a <= b;
	case BPF_JSET: return (a & b) != 0;
	case BPF_JSGT: return SGN(a) > SGN(b);
	case BPF_JSGE: return SGN(a) >= SGN(b);
	case BPF_JSLT: return SGN(a) < SGN(b);
	case BPF_JSLE: return SGN(a) <= SGN(b);
	default: return -1;
	}
#undef SGN
}

/* value produced by an ALU instruction */
static struct cval alu_val(const struct bpf_insn *in, const struct cstate *s)
{
	const struct cval *d = &s->r[in->dst_reg];
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64, x = BPF_SRC(in->code) == BPF_X;
	uint8_t op = BPF_OP(in->code);
	const struct cval *sv = x ? &s->r[in->src_reg] : NULL;
	struct cval r = unk;
	uint64_t src = x ? sv->v : (uint64_t)(int64_t)in->imm;

	if (op == BPF_MOV && in->off == 0 && x && is64)
		return *sv;
	if (op == BPF_MOV && !(x && sv->k != C_CONST)) {
		if (alu(in, 0, src, &r.v))
			r.k = C_CONST;
		return r;
	}
	if (is64 && !x && (op == BPF_ADD || op == BPF_SUB) &&
	    (d->k == C_FP || d->k == C_NONNULL || d->k == C_POOL)) {
		r = *d;
		if (d->k == C_FP)
			r.v = op == BPF_ADD ? d->v + src : d->v - src;
		if (d->k == C_POOL) {
			int64_t off = (int64_t)POOL_OFF(d->v) +
				      (op == BPF_ADD ? (int64_t)src : -(int64_t)src);

			if (off < 0 || off > INT32_MAX)
				r = (struct cval){ C_NONNULL, 0 };
			else
				r.v = POOL_VAL(POOL_MAP(d->v), off);
		}
		return r;
	}
	if (op == BPF_END || op == BPF_NEG) {
		if (d->k == C_CONST && alu(in, d->v, 0, &r.v))
			r.k = C_CONST;
		return r;
	}
	/* x & 0 == x * 0 == 0 whatever x is (the verifier refuses both on pointers, so x is
	 * a scalar): a rule whose mask is zero matches every address without a load */
	if (op == BPF_AND || op == BPF_MUL) {
		uint64_t mask = is64 ? ~0ull : 0xffffffffull;

		if ((d->k == C_CONST && !(d->v & mask)) ||
		    ((!x || sv->k == C_CONST) && !(src & mask)))
			return (struct cval){ C_CONST, 0 };
	}
	if (d->k == C_CONST && (!x || sv->k == C_CONST) && alu(in, d->v, src, &r.v))
		r.k = C_CONST;
	return r;
}

/* A helper call that never writes through the pointers it is given. */
static bool helper_reads_only(const struct bpf_insn *in)
{
	if (in->src_reg != 0)
		return false;		/* bpf-to-bpf call, kfunc */
	switch (in->imm) {
	case BPF_FUNC_map_lookup_elem:
	case BPF_FUNC_map_update_elem:
	case BPF_FUNC_map_delete_elem:
		return true;
	default:
		return false;
	}
}

/* transfer one (non-branch) instruction */
static void transfer(const struct rs_prog *p, struct cstate *s, const struct bpf_insn *in)
{
	uint8_t cls = BPF_CLASS(in->code), d = in->dst_reg, sr = in->src_reg;
	int r;

	if (rs_insn_is_ldimm64(in)) {
		if (sr == 0)
			s->r[d] = (struct cval){ C_CONST, (uint32_t)in->imm |
						 ((uint64_t)(uint32_t)in[1].imm << 32) };
		else if (sr == BPF_PSEUDO_MAP_IDX_VALUE && is_pool(p, (uint32_t)in->imm))
			s->r[d] = (struct cval){ C_POOL, POOL_VAL(in->imm, in[1].imm) };
		else if (sr == BPF_PSEUDO_MAP_IDX || sr == BPF_PSEUDO_MAP_IDX_VALUE ||
			 sr == BPF_PSEUDO_FUNC)
			s->r[d] = (struct cval){ C_NONNULL, 0 };
		else
			s->r[d] = unk;
	} else if ((cls == BPF_ALU || cls == BPF_ALU64) && d != RS_REG_FP) {
		s->r[d] = alu_val(in, s);
	} else if (cls == BPF_LDX && d != RS_REG_FP) {
		struct cval v = unk;

		if (BPF_MODE(in->code) == BPF_MEM && s->r[sr].k == C_FP && msize(in) == 8) {
			int sl = slot_of((int64_t)s->r[sr].v + in->off);

			if (sl >= 0)
				v = s->st[sl];
		} else if (BPF_MODE(in->code) == BPF_MEM && s->r[sr].k == C_POOL &&
			   pool_load(p, s->r[sr].v, in->off, msize(in), &v.v)) {
			v.k = C_CONST;
		}
		s->r[d] = v;
	} else if (cls == BPF_ST || cls == BPF_STX) {
		bool atomic = cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC;
		const struct cval *base = &s->r[d];

		if (cls == BPF_STX && s->r[sr].k == C_FP)
			s->fp_escaped = true;
		if (base->k == C_FP) {
			int64_t off = (int64_t)base->v + in->off;
			int sl = slot_of(off);

			forget_range(s, off, msize(in));
			if (!atomic && sl >= 0 && msize(in) == 8) {
				if (cls == BPF_ST)
					s->st[sl] = (struct cval){ C_CONST, (uint64_t)(int64_t)in->imm };
				else if (s->r[sr].k == C_CONST || s->r[sr].k == C_POOL)
					s->st[sl] = s->r[sr];
			}
		} else if (s->fp_escaped) {
			forget_stack(s);
		}
		if (atomic && (in->imm & BPF_FETCH))
			s->r[sr] = unk;
		if (atomic && in->imm == BPF_CMPXCHG)
			s->r[0] = unk;
	} else if (rs_insn_is_call(in)) {
		bool fp_arg = s->fp_escaped;

		/* the map helpers only read through their key / value pointers */
		for (r = 1; r <= 5 && !helper_reads_only(in); r++)
			fp_arg |= s->r[r].k == C_FP;
		if (fp_arg)
			forget_stack(s);
		for (r = 0; r <= 5; r++)
			s->r[r] = unk;
	} else if (cls == BPF_LD) {
		for (r = 0; r <= 5; r++)
			s->r[r] = unk;
	}
	s->r[RS_REG_FP] = (struct cval){ C_FP, 0 };
}

static bool join_val(struct cval *d, const struct cval *s)
{
	if (d->k == C_UNK || (d->k == s->k && d->v == s->v))
		return false;
	if ((d->k == C_NONNULL || d->k == C_POOL) && (s->k == C_NONNULL || s->k == C_POOL)) {
		if (d->k == C_NONNULL)
			return false;
		*d = (struct cval){ C_NONNULL, 0 };	/* two pool pointers: still not null */
		return true;
	}
	*d = unk;
	return true;
}

static bool join(struct cstate *d, const struct cstate *s)
{
	bool ch = false;
	int i;

	if (!s->reached)
		return false;
	if (!d->reached) {
		*d = *s;
		return true;
	}
	for (i = 0; i < RS_MAX_REG; i++)
		ch |= join_val(&d->r[i], &s->r[i]);
	for (i = 0; i < NSLOTS; i++)
		ch |= join_val(&d->st[i], &s->st[i]);
	if (s->fp_escaped && !d->fp_escaped) {
		d->fp_escaped = true;
		ch = true;
	}
	return ch;
}

struct cp {
	const struct rs_prog *p;
	struct rs_cfg cfg;
	struct cstate *in;
	int *work;
	bool *queued;
	size_t head, cnt;		/* lowest queued block at or after head; queued count */
};

/* The worklist is ordered by block index (blocks are in instruction order, so forward code
 * is processed after all its predecessors: once per block on acyclic code, instead of once
 * per changed predecessor with a FIFO, which is quadratic on long unrolled code). */
static void push(struct cp *c, int b)
{
	if (c->queued[b])
		return;
	c->queued[b] = true;
	c->cnt++;
	if ((size_t)b < c->head)
		c->head = (size_t)b;
}

/* run block b; feed its feasible successors */
static void run_block(struct cp *c, int b)
{
	const struct rs_bb *bb = &c->cfg.bbs[b];
	struct cstate s = c->in[b], t;
	size_t i, last = bb->start;
	int out = -1;

	for (i = bb->start; i < bb->end; i += rs_insn_width(&c->p->insns[i]))
		last = i;
	for (i = bb->start; i < bb->end; i += rs_insn_width(&c->p->insns[i])) {
		if (i == last && rs_insn_is_cond_jmp(&c->p->insns[i]))
			out = branch(&c->p->insns[i], &s);
		else
			transfer(c->p, &s, &c->p->insns[i]);
	}
	if (rs_insn_is_cond_jmp(&c->p->insns[last])) {
		const struct bpf_insn *in = &c->p->insns[last];

		if (bb->succ[0] != RS_NO_SUCC && out != 1) {
			t = s;
			if (BPF_OP(in->code) == BPF_JNE && BPF_CLASS(in->code) == BPF_JMP &&
			    BPF_SRC(in->code) == BPF_K && in->imm == 0 &&
			    t.r[in->dst_reg].k == C_UNK)
				t.r[in->dst_reg] = (struct cval){ C_CONST, 0 };
			if (join(&c->in[bb->succ[0]], &t))
				push(c, bb->succ[0]);
		}
		if (bb->succ[1] != RS_NO_SUCC && out != 0) {
			t = s;
			if (BPF_OP(in->code) == BPF_JEQ && BPF_CLASS(in->code) == BPF_JMP &&
			    BPF_SRC(in->code) == BPF_K && in->imm == 0 &&
			    t.r[in->dst_reg].k == C_UNK)
				t.r[in->dst_reg] = (struct cval){ C_CONST, 0 };
			if (join(&c->in[bb->succ[1]], &t))
				push(c, bb->succ[1]);
		}
		return;
	}
	for (i = 0; i < 2; i++)
		if (bb->succ[i] != RS_NO_SUCC && join(&c->in[bb->succ[i]], &s))
			push(c, bb->succ[i]);
}

static int fixpoint(struct cp *c)
{
	size_t k, n = c->cfg.bb_cnt + 1;

	c->in = calloc(n, sizeof(*c->in));
	c->work = malloc(n * sizeof(*c->work));
	c->queued = calloc(n, sizeof(*c->queued));
	if (!c->in || !c->work || !c->queued)
		return -ENOMEM;
	for (k = 0; k < c->cfg.subprog_cnt; k++) {
		int e = c->cfg.subprogs[k].entry_bb;
		struct cstate *s;

		if (e < 0)
			continue;
		s = &c->in[e];
		memset(s, 0, sizeof(*s));
		s->reached = true;
		s->r[RS_REG_FP] = (struct cval){ C_FP, 0 };
		push(c, e);
	}
	c->head = 0;
	while (c->cnt) {
		int b;

		while (c->head < n && !c->queued[c->head])
			c->head++;
		if (c->head >= n)
			return -EINVAL;		/* cnt out of step: cannot happen */
		b = (int)c->head;
		c->cnt--;
		c->queued[b] = false;
		run_block(c, b);
	}
	return 0;
}

/* `rD = v` in one instruction (mov / mov32) or two (ld_imm64); returns the count */
static size_t mov_imm(struct bpf_insn *o, uint8_t d, uint64_t v, bool is64)
{
	if (!is64) {
		o[0] = (struct bpf_insn){ .code = BPF_ALU | BPF_MOV | BPF_K, .dst_reg = d,
					  .imm = (int32_t)(uint32_t)v };
		return 1;
	}
	if ((int64_t)v == (int64_t)(int32_t)v) {
		o[0] = (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = d,
					  .imm = (int32_t)v };
		return 1;
	}
	o[0] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = d,
				  .imm = (int32_t)(uint32_t)v };
	o[1] = (struct bpf_insn){ .imm = (int32_t)(uint32_t)(v >> 32) };
	return 2;
}

static bool is_mov_imm(const struct bpf_insn *in)
{
	return (BPF_CLASS(in->code) == BPF_ALU64 || BPF_CLASS(in->code) == BPF_ALU) &&
	       BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_K && in->off == 0;
}

/* record the rewrite of instruction i (state before it: s) */
static int rewrite(struct rs_opt_ctx *ctx, struct rs_edit *e, const struct cp *c, size_t i,
		   const struct cstate *s, bool last, size_t *n)
{
	const struct bpf_insn *in = &c->p->insns[i];
	uint8_t cls = BPF_CLASS(in->code);
	struct bpf_insn o[2];
	long tgt[2] = { RS_TARGET_LOCAL, RS_TARGET_LOCAL };
	long orig = ctx->orig_idx[i];
	size_t cnt;
	int err;

	if (last && rs_insn_is_cond_jmp(in)) {
		int t = branch(in, s);

		if (t < 0 && BPF_SRC(in->code) == BPF_X && s->r[in->src_reg].k != C_CONST &&
		    s->r[in->dst_reg].k == C_CONST && swapped_op(BPF_OP(in->code)) &&
		    (cls == BPF_JMP32 || (int64_t)s->r[in->dst_reg].v ==
					 (int64_t)(int32_t)s->r[in->dst_reg].v)) {
			/* `if K op rY` -> `if rY op' K`: the constant's register may die */
			o[0] = *in;
			o[0].code = (uint8_t)(cls | swapped_op(BPF_OP(in->code)) | BPF_K);
			o[0].dst_reg = in->src_reg;
			o[0].src_reg = 0;
			o[0].imm = (int32_t)s->r[in->dst_reg].v;
			tgt[0] = rs_insn_target(c->p->insns, i);
			err = rs_edit_replace(e, i, 1, o, tgt, 1);
			if (!err)
				err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o, 1,
						     NULL, "compare with a known constant "
						     "(operands swapped)");
			(*n)++;
			return err;
		}
		if (t < 0) {
			if (BPF_SRC(in->code) != BPF_X || s->r[in->src_reg].k != C_CONST)
				return 0;
			if (cls == BPF_JMP && (int64_t)s->r[in->src_reg].v !=
			    (int64_t)(int32_t)s->r[in->src_reg].v)
				return 0;
			o[0] = *in;
			o[0].code = (uint8_t)((in->code & ~BPF_X) | BPF_K);
			o[0].src_reg = 0;
			o[0].imm = (int32_t)s->r[in->src_reg].v;
			tgt[0] = rs_insn_target(c->p->insns, i);
			err = rs_edit_replace(e, i, 1, o, tgt, 1);
			if (!err)
				err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o, 1,
						     NULL, "compare with a known constant");
			(*n)++;
			return err;
		}
		if (t == 1) {
			o[0] = (struct bpf_insn){ .code = BPF_JMP | BPF_JA };
			tgt[0] = rs_insn_target(c->p->insns, i);
			err = rs_edit_replace(e, i, 1, o, tgt, 1);
		} else {
			err = rs_edit_delete(e, i, 1);
		}
		if (!err)
			err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o,
					     t == 1 ? 1 : 0, NULL, "branch always %s: folded",
					     t == 1 ? "taken" : "falls through");
		(*n)++;
		return err;
	}
	/* a memory access through a copy of the frame pointer: through r10 itself (the copy
	 * may then die) */
	if ((cls == BPF_LDX && BPF_MODE(in->code) == BPF_MEM && in->src_reg != RS_REG_FP &&
	     s->r[in->src_reg].k == C_FP) ||
	    ((cls == BPF_STX || cls == BPF_ST) && BPF_MODE(in->code) == BPF_MEM &&
	     in->dst_reg != RS_REG_FP && s->r[in->dst_reg].k == C_FP)) {
		int64_t off = (int64_t)s->r[cls == BPF_LDX ? in->src_reg : in->dst_reg].v + in->off;
		int sl = slot_of(off);

		if (off < -512 || off >= 0)
			return 0;
		if (cls == BPF_LDX && msize(in) == 8 && sl >= 0 && s->st[sl].k == C_CONST)
			goto fold;	/* a known value: becomes an immediate below */
		o[0] = *in;
		if (cls == BPF_LDX)
			o[0].src_reg = RS_REG_FP;
		else
			o[0].dst_reg = RS_REG_FP;
		o[0].off = (int16_t)off;
		err = rs_edit_replace(e, i, 1, o, NULL, 1);
		if (!err)
			err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o, 1, NULL,
					     "stack access through r10");
		(*n)++;
		return err;
	}
fold:
	if (in->dst_reg == RS_REG_FP)
		return 0;
	if ((cls == BPF_ALU || cls == BPF_ALU64) && !is_mov_imm(in)) {
		struct cval v = alu_val(in, s);
		bool is64 = cls == BPF_ALU64 || BPF_OP(in->code) == BPF_END;

		if (v.k != C_CONST)
			return 0;
		if (BPF_OP(in->code) == BPF_END && cls == BPF_ALU)
			is64 = (v.v >> 32) != 0;	/* le64/be64 */
		cnt = mov_imm(o, in->dst_reg, v.v, is64);
	} else if (cls == BPF_LDX && BPF_MODE(in->code) == BPF_MEM && msize(in) == 8 &&
		   s->r[in->src_reg].k == C_FP) {
		int sl = slot_of((int64_t)s->r[in->src_reg].v + in->off);

		if (sl < 0 || s->st[sl].k != C_CONST)
			return 0;
		cnt = mov_imm(o, in->dst_reg, s->st[sl].v, true);
	} else if (cls == BPF_LDX && BPF_MODE(in->code) == BPF_MEM &&
		   s->r[in->src_reg].k == C_POOL) {
		uint64_t v;

		if (!pool_load(c->p, s->r[in->src_reg].v, in->off, msize(in), &v))
			return 0;
		/* loads zero-extend: a 32-bit mov does too, and needs one instruction */
		cnt = mov_imm(o, in->dst_reg, v, msize(in) == 8);
		err = rs_edit_replace(e, i, 1, o, NULL, cnt);
		if (!err)
			err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o, cnt,
					     NULL, "load from constant pool %s: its bytes",
					     c->p->maps[POOL_MAP(s->r[in->src_reg].v)].name);
		(*n)++;
		return err;
	} else {
		return 0;
	}
	err = rs_edit_replace(e, i, 1, o, NULL, cnt);
	if (!err)
		err = rs_pass_remark(ctx, RS_REMARK_APPLIED, orig, -1, in, 1, o, cnt, NULL,
				     "result is a known constant");
	(*n)++;
	return err;
}

static int constprop_run(struct rs_opt_ctx *ctx)
{
	struct cp c;
	struct rs_edit *e = NULL;
	size_t b, i, n = 0;
	int err;

	memset(&c, 0, sizeof(c));
	c.p = &ctx->prog;
	err = rs_cfg_build_prog(c.p, &c.cfg);
	if (err)
		return err;
	err = fixpoint(&c);
	if (err)
		goto out;
	e = rs_edit_new(c.p);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	for (b = 0; b < c.cfg.bb_cnt && !err; b++) {
		const struct rs_bb *bb = &c.cfg.bbs[b];
		struct cstate s = c.in[b];
		size_t last = bb->start;

		if (!s.reached)
			continue;
		for (i = bb->start; i < bb->end; i += rs_insn_width(&c.p->insns[i]))
			last = i;
		for (i = bb->start; i < bb->end && !err; i += rs_insn_width(&c.p->insns[i])) {
			err = rewrite(ctx, e, &c, i, &s, i == last, &n);
			if (!(i == last && rs_insn_is_cond_jmp(&c.p->insns[i])))
				transfer(c.p, &s, &c.p->insns[i]);
		}
	}
	if (!err && n) {
		err = rs_pass_commit(ctx, e);
		e = NULL;
	}
out:
	rs_edit_free(e);
	rs_cfg_free(&c.cfg);
	free(c.in);
	free(c.work);
	free(c.queued);
	return err;
}

const struct rs_pass rs_pass_constprop = {
	.name = "constprop",
	.run = constprop_run,
};
