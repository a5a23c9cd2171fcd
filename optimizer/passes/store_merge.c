// SPDX-License-Identifier: BSD-2-Clause
/*
 * store_merge.c - narrow stack stores that a wider read follows become one wide store.
 *
 * What: a store of 1, 2 or 4 bytes to the stack (`*(u16 *)(r10 - 0x50) = r1`) whose bytes a
 * later, wider read takes together with bytes of other stores (a 4-byte load of the key a
 * compare chain tests, the 8-byte words a map helper hashes and compares its key in) is
 * replaced by a store of the whole aligned 4- or 8-byte word, whose value is assembled in a
 * dead register from the stored register, the constants the other bytes are known to hold, and
 * narrow re-loads of the other stores (each re-load has exactly the offset and size of the
 * store that last wrote those bytes on every path).  When the other bytes are known zero, the
 * stored register is known zero-extended and the store starts the word, only the store's size
 * changes.
 * Why: a CPU forwards a store to a later load only when one store covers the whole load; a
 * load spanning several narrow stores waits until they reach the cache (a store-forwarding
 * stall, ~12-15 cycles on x86).  Compilers build keys field by field (l4lb: the flow key's
 * ports and protocol, the VIP key's port and protocol, an IPv4 address stored as 4 bytes into
 * an 8-byte-read slot), and both our compare chains and the kernel's hash maps (jhash in
 * 4-byte words, memcmp in 8-byte words) read them whole.  Re-loads match single stores and
 * forward; the wide store then forwards to the wide reads.
 * Soundness: the wide store writes every byte of the word with the value it holds at that
 * point anyway: constants from a must-analysis of the stack (every path stores the same
 * value), re-loads of the bytes themselves, and the stored register, which must be known to
 * have no bits above the store's size (a load of at most that size, a 32-bit ALU result, a
 * byte swap, a mask, a constant).  Memory after the new sequence equals memory after the old
 * store; only dead registers (liveness) are clobbered.  Stores and atomics through pointers
 * that are not known frame pointers, and calls other than map lookup / update / delete,
 * forget the stack.  A rewrite is made only when a reader that spans the store and other
 * bytes of the word is reachable (bounded forward search) before another store touches the
 * word; the bytes of the rewritten word are always initialized (the verifier reads none it
 * did not allow before).
 * Preconditions: none (no map fact); runs on every subprogram.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

#define SM_STACK	512
#define SM_SEARCH	768	/* instructions a reader search visits per store */

enum { R_UNK, R_CONST, R_FP, R_MAP };

struct sm_reg {
	uint8_t kind;
	uint8_t zb;		/* bytes that may be non-zero (1, 2, 4, 8) */
	int64_t v;		/* constant, frame offset or map index */
};

struct sm_byte {
	uint8_t has_const, has_shape;
	uint8_t val;
	uint8_t shape_size;	/* the last store that wrote it on every path: size, */
	int16_t shape_off;	/* and frame offset */
};

struct sm_state {
	bool valid;
	int16_t win;			/* bytes tracked: fp - win .. fp - 1 (the rest unknown) */
	struct sm_byte b[SM_STACK];	/* b[i] describes byte fp - 512 + i */
	struct sm_reg r[RS_MAX_REG];
};

static uint8_t zb_of(uint64_t v)
{
	return v <= 0xff ? 1 : v <= 0xffff ? 2 : v <= 0xffffffffULL ? 4 : 8;
}

static void reg_set(struct sm_reg *r, uint8_t kind, int64_t v, uint8_t zb)
{
	r->kind = kind;
	r->v = v;
	r->zb = kind == R_CONST ? zb_of((uint64_t)v) : zb;
}

static void forget_stack(struct sm_state *s)
{
	memset(&s->b[SM_STACK - s->win], 0, (size_t)s->win * sizeof(s->b[0]));
}

static void state_copy(struct sm_state *d, const struct sm_state *s)
{
	d->valid = s->valid;
	d->win = s->win;
	memcpy(d->r, s->r, sizeof(s->r));
	memcpy(&d->b[SM_STACK - s->win], &s->b[SM_STACK - s->win],
	       (size_t)s->win * sizeof(s->b[0]));
}

static void state_entry(struct sm_state *s, int16_t win)
{
	int r;

	memset(s, 0, sizeof(*s));
	s->valid = true;
	s->win = win;
	for (r = 0; r < RS_MAX_REG; r++)
		reg_set(&s->r[r], R_UNK, 0, 8);
	reg_set(&s->r[RS_REG_FP], R_FP, 0, 8);
}

/* meet into dst; true when dst changed */
static bool state_meet(struct sm_state *dst, const struct sm_state *src)
{
	bool ch = false;
	int i;

	if (!src->valid)
		return false;
	if (!dst->valid) {
		memset(dst, 0, sizeof(*dst));
		state_copy(dst, src);
		return true;
	}
	for (i = SM_STACK - src->win; i < SM_STACK; i++) {
		struct sm_byte *d = &dst->b[i];
		const struct sm_byte *s = &src->b[i];

		if (d->has_const && (!s->has_const || s->val != d->val)) {
			d->has_const = 0;
			ch = true;
		}
		if (d->has_shape && (!s->has_shape || s->shape_off != d->shape_off ||
				     s->shape_size != d->shape_size)) {
			d->has_shape = 0;
			ch = true;
		}
	}
	for (i = 0; i < RS_MAX_REG; i++) {
		struct sm_reg *d = &dst->r[i];
		const struct sm_reg *s = &src->r[i];

		if (d->kind != R_UNK && (d->kind != s->kind || d->v != s->v)) {
			d->kind = R_UNK;
			ch = true;
		}
		if (s->zb > d->zb) {
			d->zb = s->zb;
			ch = true;
		}
	}
	return ch;
}

static const uint8_t size_bytes[] = { 4, 2, 1, 8 };

/* does [a, a+n) lie inside [lo, hi)? */
static bool inside(int64_t a, int64_t n, int64_t lo, int64_t hi)
{
	return a >= lo && a + n <= hi;
}

static bool overlaps(int64_t a, int64_t n, int64_t lo, int64_t hi)
{
	return a < hi && a + n > lo;
}

static uint8_t insn_size(const struct bpf_insn *in)
{
	return size_bytes[BPF_SIZE(in->code) >> 3];
}

/* frame offset of [reg + off] when reg is a known frame pointer */
static bool fp_addr(const struct sm_state *s, int reg, int16_t off, int64_t *addr)
{
	if (s->r[reg].kind != R_FP)
		return false;
	*addr = s->r[reg].v + off;
	return true;
}

static bool in_frame(const struct sm_state *s, int64_t a, int64_t n)
{
	return a >= -s->win && a + n <= 0;
}

static void write_bytes(struct sm_state *s, int64_t a, int n, bool known, uint64_t v)
{
	int k;

	for (k = 0; k < n; k++) {
		struct sm_byte *b = &s->b[a + SM_STACK + k];

		b->has_const = known;
		b->val = (uint8_t)(v >> (8 * k));
		b->has_shape = 1;
		b->shape_off = (int16_t)a;
		b->shape_size = (uint8_t)n;
	}
}

static bool map_helper(const struct bpf_insn *in)
{
	return rs_insn_is_helper_call(in) && (in->imm == BPF_FUNC_map_lookup_elem ||
					      in->imm == BPF_FUNC_map_update_elem ||
					      in->imm == BPF_FUNC_map_delete_elem);
}

static void alu(struct sm_state *s, const struct bpf_insn *in)
{
	bool is64 = BPF_CLASS(in->code) == BPF_ALU64;
	struct sm_reg *d = &s->r[in->dst_reg];
	const struct sm_reg *sr = BPF_SRC(in->code) == BPF_X ? &s->r[in->src_reg] : NULL;
	uint8_t op = BPF_OP(in->code);
	uint64_t b, a;

	if (op == BPF_END) {
		uint8_t w = (uint8_t)(in->imm / 8);

		reg_set(d, R_UNK, 0, w == 2 || w == 4 ? w : 8);
		return;
	}
	if (in->off != 0 && (op == BPF_MOV || op == BPF_DIV || op == BPF_MOD)) {
		reg_set(d, R_UNK, 0, is64 ? 8 : 4);	/* movsx, sdiv, smod */
		return;
	}
	if (op == BPF_MOV) {
		if (!sr) {
			reg_set(d, R_CONST, is64 ? (int64_t)in->imm : (int64_t)(uint32_t)in->imm, 8);
		} else if (is64) {
			*d = *sr;
		} else if (sr->kind == R_CONST) {
			reg_set(d, R_CONST, (int64_t)(uint32_t)sr->v, 4);
		} else {
			reg_set(d, R_UNK, 0, sr->zb < 4 ? sr->zb : 4);
		}
		return;
	}
	if (is64 && op == BPF_ADD && !sr && d->kind == R_FP) {
		d->v += in->imm;
		return;
	}
	b = sr ? (uint64_t)sr->v : (uint64_t)(int64_t)in->imm;
	if (d->kind == R_CONST && (!sr || sr->kind == R_CONST)) {
		bool ok = true;

		a = (uint64_t)d->v;
		if (!is64) {
			a = (uint32_t)a;
			b = (uint32_t)b;
		}
		switch (op) {
		case BPF_ADD: a += b; break;
		case BPF_SUB: a -= b; break;
		case BPF_OR: a |= b; break;
		case BPF_AND: a &= b; break;
		case BPF_XOR: a ^= b; break;
		case BPF_MUL: a *= b; break;
		case BPF_LSH: a <<= b & (is64 ? 63 : 31); break;
		case BPF_RSH: a >>= b & (is64 ? 63 : 31); break;
		default: ok = false;
		}
		if (ok) {
			reg_set(d, R_CONST, (int64_t)(is64 ? a : (uint32_t)a), 8);
			return;
		}
	}
	if (op == BPF_AND && !sr && in->imm >= 0) {
		uint8_t z = zb_of((uint64_t)in->imm);

		reg_set(d, R_UNK, 0, z < d->zb ? z : d->zb);
		if (!is64 && d->zb > 4)
			d->zb = 4;
		return;
	}
	reg_set(d, R_UNK, 0, is64 ? 8 : 4);
}

/* the state after instruction i (s holds the state before it) */
static void transfer(struct sm_state *s, const struct bpf_insn *p, size_t i)
{
	const struct bpf_insn *in = &p[i];
	uint8_t cls = BPF_CLASS(in->code);
	int64_t a;
	int r;

	if (rs_insn_is_ldimm64(in)) {
		uint64_t v = (uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);

		if (in->src_reg == 0)
			reg_set(&s->r[in->dst_reg], R_CONST, (int64_t)v, 8);
		else if (in->src_reg == BPF_PSEUDO_MAP_IDX)
			reg_set(&s->r[in->dst_reg], R_MAP, in->imm, 8);
		else
			reg_set(&s->r[in->dst_reg], R_UNK, 0, 8);
		return;
	}
	switch (cls) {
	case BPF_ALU:
	case BPF_ALU64:
		alu(s, in);
		return;
	case BPF_LDX:
		reg_set(&s->r[in->dst_reg], R_UNK, 0,
			BPF_MODE(in->code) == BPF_MEM ? insn_size(in) : 8);
		return;
	case BPF_ST:
	case BPF_STX:
		if (BPF_MODE(in->code) != BPF_MEM) {	/* atomics */
			if (fp_addr(s, in->dst_reg, in->off, &a) && in_frame(s, a, insn_size(in))) {
				int k;

				for (k = 0; k < insn_size(in); k++)
					memset(&s->b[a + SM_STACK + k], 0, sizeof(struct sm_byte));
			} else if (!fp_addr(s, in->dst_reg, in->off, &a) ||
				   overlaps(a, insn_size(in), -s->win, 0)) {
				forget_stack(s);
			}
			for (r = 0; r < RS_MAX_REG; r++)
				if (r != RS_REG_FP && (rs_insn_defs(in) & (1u << r)))
					reg_set(&s->r[r], R_UNK, 0, 8);
			return;
		}
		if (fp_addr(s, in->dst_reg, in->off, &a) && in_frame(s, a, insn_size(in))) {
			bool known = cls == BPF_ST || s->r[in->src_reg].kind == R_CONST;
			uint64_t v = cls == BPF_ST ? (uint64_t)(int64_t)in->imm :
				     (uint64_t)s->r[in->src_reg].v;

			write_bytes(s, a, insn_size(in), known, v);
		} else if (!fp_addr(s, in->dst_reg, in->off, &a) ||
			   overlaps(a, insn_size(in), -s->win, 0)) {
			forget_stack(s);	/* (a store below the tracked bytes changes none) */
		}
		return;
	default:
		break;
	}
	if (rs_insn_is_call(in) && !map_helper(in))
		forget_stack(s);
	for (r = 0; r < RS_MAX_REG; r++)
		if (r != RS_REG_FP && (rs_insn_defs(in) & (1u << r)))
			reg_set(&s->r[r], R_UNK, 0, 8);
}

struct sm {
	struct rs_opt_ctx *ctx;
	const struct bpf_insn *p;
	size_t cnt;
	struct rs_cfg cfg;
	struct sm_state *in;		/* per block */
	struct sm_reg (*regs)[RS_MAX_REG];	/* per insn: registers before it */
	rs_regmask_t *live;
	bool *seen;
	size_t *stack;
	int16_t win;			/* stack bytes tracked (below fp) */
};

/* the stack bytes worth tracking: down to the lowest frame offset the program names */
static int16_t window(const struct bpf_insn *p, size_t cnt)
{
	int64_t lo = 0;
	size_t i;

	for (i = 0; i < cnt; i += rs_insn_width(&p[i])) {
		uint8_t cls = BPF_CLASS(p[i].code);
		int64_t o = 0;

		if ((cls == BPF_LDX && p[i].src_reg == RS_REG_FP) ||
		    ((cls == BPF_ST || cls == BPF_STX) && p[i].dst_reg == RS_REG_FP))
			o = p[i].off;
		else if (cls == BPF_ALU64 && BPF_OP(p[i].code) == BPF_ADD &&
			 BPF_SRC(p[i].code) == BPF_K)
			o = p[i].imm;
		if (o < lo && o >= -SM_STACK)
			lo = o;
	}
	lo = -((-lo + 7) / 8) * 8;
	return (int16_t)(lo == 0 ? 8 : -lo);
}

static int dataflow(struct sm *m)
{
	size_t b, iter;
	bool changed = true;
	struct sm_state *s = malloc(sizeof(*s));
	bool *dirty = calloc(m->cfg.bb_cnt + 1, sizeof(*dirty));

	if (!s || !dirty) {
		free(s);
		free(dirty);
		return -ENOMEM;
	}
	for (b = 0; b < m->cfg.subprog_cnt; b++) {
		state_entry(&m->in[m->cfg.subprogs[b].entry_bb], m->win);
		dirty[m->cfg.subprogs[b].entry_bb] = true;
	}
	/* blocks in order, each again only when its entry state changed */
	for (iter = 0; changed && iter < 64; iter++) {
		changed = false;
		for (b = 0; b < m->cfg.bb_cnt; b++) {
			const struct rs_bb *bb = &m->cfg.bbs[b];
			size_t i;
			int k;

			if (!m->in[b].valid || !dirty[b])
				continue;
			dirty[b] = false;
			state_copy(s, &m->in[b]);
			for (i = bb->start; i < bb->end; i += rs_insn_width(&m->p[i])) {
				memcpy(m->regs[i], s->r, sizeof(s->r));
				transfer(s, m->p, i);
			}
			for (k = 0; k < 2; k++)
				if (bb->succ[k] != RS_NO_SUCC &&
				    state_meet(&m->in[bb->succ[k]], s)) {
					dirty[bb->succ[k]] = true;
					changed = true;
				}
		}
	}
	free(s);
	free(dirty);
	return changed ? -E2BIG : 0;	/* no fixpoint (cannot happen: finite lattice) */
}

/* a read [a, a+n) that takes the store's bytes [so, so+sn) together with others of the word
 * [lo, lo+8): widen the needed span */
static void note_read(int64_t a, int64_t n, int64_t so, int64_t sn, int64_t lo, int64_t *nlo,
		      int64_t *nhi)
{
	if (!overlaps(a, n, so, so + sn) || inside(a, n, so, so + sn) || !inside(a, n, lo, lo + 8))
		return;
	if (a < *nlo)
		*nlo = a;
	if (a + n > *nhi)
		*nhi = a + n;
}

/*
 * Forward search from after store i (bytes [so, so+sn) of the 8-byte word at lo) for reads
 * spanning the store and other bytes of the word, until a path stores into the word, forgets
 * the stack or ends.  Gives the needed span [*nlo, *nhi) (empty: no such read).
 */
static void readers(struct sm *m, size_t i, int64_t so, int64_t sn, int64_t lo, int64_t *nlo,
		    int64_t *nhi)
{
	size_t sp = 0, visited = 0, j, k;
	size_t *touched = m->stack + m->cnt;	/* second half: what to clear */
	size_t nt = 0;

	*nlo = 1;
	*nhi = -SM_STACK - 1;
	if (i + 1 < m->cnt) {
		m->stack[sp++] = i + 1;
		m->seen[i + 1] = true;
		touched[nt++] = i + 1;
	}
	while (sp && visited < SM_SEARCH) {
		const struct bpf_insn *in;
		const struct sm_reg *r;
		size_t next[2];
		int nn = 0, b;
		int64_t a;
		bool stop = false;

		j = m->stack[--sp];
		visited++;
		in = &m->p[j];
		r = m->regs[j];
		if (BPF_CLASS(in->code) == BPF_LDX && BPF_MODE(in->code) == BPF_MEM &&
		    r[in->src_reg].kind == R_FP) {
			a = r[in->src_reg].v + in->off;
			note_read(a, insn_size(in), so, sn, lo, nlo, nhi);
		} else if (BPF_CLASS(in->code) == BPF_ST || BPF_CLASS(in->code) == BPF_STX) {
			if (r[in->dst_reg].kind != R_FP)
				stop = true;
			else if (overlaps(r[in->dst_reg].v + in->off, insn_size(in), lo, lo + 8))
				stop = true;
		} else if (map_helper(in)) {
			/* the kernel reads the key (and an update's value) in 4-byte (jhash) and
			 * 8-byte (memcmp, copies) words */
			int arg;

			for (arg = 2; arg <= 3 && r[1].kind == R_MAP; arg++) {
				const struct rs_map_ref *mp;
				uint32_t len;
				int64_t base, w;

				if (arg == 3 && in->imm != BPF_FUNC_map_update_elem)
					break;
				if (r[arg].kind != R_FP || r[1].v < 0 ||
				    (size_t)r[1].v >= m->ctx->prog.map_cnt)
					continue;
				mp = &m->ctx->prog.maps[r[1].v];
				len = arg == 2 ? mp->key_size : mp->value_size;
				base = r[arg].v;
				for (w = 4; w <= 8; w += 4)
					for (a = base; a < base + len; a += w)
						note_read(a, a + w <= base + len ? w : base + len - a,
							  so, sn, lo, nlo, nhi);
			}
		} else if (rs_insn_is_call(in) || rs_insn_is_exit(in)) {
			stop = rs_insn_is_exit(in) || !map_helper(in);
		}
		if (stop)
			continue;
		/* successors */
		if (rs_insn_is_jmp(in)) {
			long t = rs_insn_target(m->p, j);

			if (t >= 0)
				next[nn++] = (size_t)t;
			if (rs_insn_is_cond_jmp(in))
				next[nn++] = j + 1;
		} else if (!rs_insn_is_exit(in)) {
			next[nn++] = j + rs_insn_width(in);
		}
		for (b = 0; b < nn; b++) {
			k = next[b];
			if (k < m->cnt && !m->seen[k]) {
				m->seen[k] = true;
				touched[nt++] = k;
				m->stack[sp++] = k;
			}
		}
	}
	while (nt)
		m->seen[touched[--nt]] = false;
}

struct comp {
	int reg;		/* >= 0: this register; -1: re-load */
	int16_t off;		/* re-load: frame offset and size */
	uint8_t size;
	uint8_t shift;		/* bits */
};

static struct bpf_insn mk(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn in = { .code = code, .dst_reg = dst, .src_reg = src, .off = off,
			       .imm = imm };

	return in;
}

static int bpf_size(int n)
{
	return n == 1 ? BPF_B : n == 2 ? BPF_H : n == 4 ? BPF_W : BPF_DW;
}

/* a free register (dead after the store, not used by the sequence) other than `not` */
static int scratch(rs_regmask_t live, rs_regmask_t used)
{
	int r;

	for (r = 0; r < RS_REG_FP; r++)
		if (!((live | used) & (1u << r)))
			return r;
	return -1;
}

/*
 * The sequence for store i (state s before it) into the word [lo, lo+w); 0 and *n = 0 when it
 * cannot be built.
 */
static int build(struct sm *m, const struct sm_state *s, size_t i, int64_t so, int64_t lo,
		 int w, struct bpf_insn *out, size_t *n)
{
	const struct bpf_insn *in = &m->p[i];
	int sn = insn_size(in), k, nc = 0, t, u = -1;
	struct comp c[8];
	uint64_t cval = 0;
	rs_regmask_t live = i + 1 < m->cnt ? m->live[i + 1] : 0, used = 0;
	bool sconst = BPF_CLASS(in->code) == BPF_ST ||
		      s->r[in->src_reg].kind == R_CONST;
	size_t o = 0;

	*n = 0;
	if (sconst) {
		uint64_t v = BPF_CLASS(in->code) == BPF_ST ? (uint64_t)(int64_t)in->imm :
			     (uint64_t)s->r[in->src_reg].v;

		if (sn < 8)
			v &= (1ULL << (8 * sn)) - 1;
		cval |= v << (8 * (so - lo));
	} else {
		if (s->r[in->src_reg].zb > sn || in->src_reg == RS_REG_FP)
			return 0;
		c[nc].reg = in->src_reg;
		c[nc++].shift = (uint8_t)(8 * (so - lo));
		used |= 1u << in->src_reg;
	}
	for (k = 0; k < w; k++) {
		int64_t a = lo + k;
		const struct sm_byte *b = &s->b[a + SM_STACK];
		int j;

		if (a >= so && a < so + sn)
			continue;
		if (b->has_const) {
			cval |= (uint64_t)b->val << (8 * k);
			continue;
		}
		if (!b->has_shape || !inside(b->shape_off, b->shape_size, lo, lo + w) ||
		    overlaps(b->shape_off, b->shape_size, so, so + sn))
			return 0;
		for (j = 0; j < nc; j++)
			if (c[j].reg < 0 && c[j].off == b->shape_off &&
			    c[j].size == b->shape_size)
				break;
		if (j < nc)
			continue;
		/* every byte of that store must still be its own */
		for (j = 0; j < b->shape_size; j++) {
			const struct sm_byte *x = &s->b[b->shape_off + j + SM_STACK];

			if (!x->has_shape || x->shape_off != b->shape_off ||
			    x->shape_size != b->shape_size)
				return 0;
		}
		if (nc >= 8)
			return 0;
		c[nc].reg = -1;
		c[nc].off = b->shape_off;
		c[nc].size = b->shape_size;
		c[nc++].shift = (uint8_t)(8 * (b->shape_off - lo));
	}
	/* only the size changes */
	if (nc == 1 && c[0].reg >= 0 && c[0].shift == 0 && cval == 0) {
		out[o++] = mk(BPF_STX | BPF_MEM | bpf_size(w), RS_REG_FP, (uint8_t)c[0].reg,
			      (int16_t)lo, 0);
		*n = o;
		return 0;
	}
	if (nc == 0) {
		if (w == 8 && (int64_t)cval != (int64_t)(int32_t)cval)
			return 0;
		out[o++] = mk(BPF_ST | BPF_MEM | bpf_size(w), RS_REG_FP, 0, (int16_t)lo,
			      (int32_t)cval);
		*n = o;
		return 0;
	}
	t = scratch(live, used);
	if (t < 0)
		return 0;
	used |= 1u << t;
	if (nc > 1 || (cval >> 31)) {
		u = scratch(live, used);
		if (u < 0)
			return 0;
	}
	for (k = 0; k < nc; k++) {
		int d = k == 0 ? t : u;

		if (k > 0 && c[k].reg >= 0 && c[k].shift == 0) {
			out[o++] = mk(BPF_ALU64 | BPF_OR | BPF_X, (uint8_t)t, (uint8_t)c[k].reg, 0, 0);
			continue;
		}
		if (c[k].reg >= 0)
			out[o++] = mk(BPF_ALU64 | BPF_MOV | BPF_X, (uint8_t)d, (uint8_t)c[k].reg, 0, 0);
		else
			out[o++] = mk(BPF_LDX | BPF_MEM | bpf_size(c[k].size), (uint8_t)d, RS_REG_FP,
				      c[k].off, 0);
		if (c[k].shift)
			out[o++] = mk(BPF_ALU64 | BPF_LSH | BPF_K, (uint8_t)d, 0, 0, c[k].shift);
		if (k > 0)
			out[o++] = mk(BPF_ALU64 | BPF_OR | BPF_X, (uint8_t)t, (uint8_t)d, 0, 0);
	}
	if (cval >> 31) {
		out[o++] = mk(BPF_LD | BPF_DW | BPF_IMM, (uint8_t)u, 0, 0, (int32_t)(uint32_t)cval);
		out[o++] = mk(0, 0, 0, 0, (int32_t)(uint32_t)(cval >> 32));
		out[o++] = mk(BPF_ALU64 | BPF_OR | BPF_X, (uint8_t)t, (uint8_t)u, 0, 0);
	} else if (cval) {
		out[o++] = mk(BPF_ALU64 | BPF_OR | BPF_K, (uint8_t)t, 0, 0, (int32_t)cval);
	}
	out[o++] = mk(BPF_STX | BPF_MEM | bpf_size(w), RS_REG_FP, (uint8_t)t, (int16_t)lo, 0);
	*n = o;
	return 0;
}

static int64_t floor_to(int64_t a, int64_t w)
{
	return a >= 0 ? a - a % w : -(((-a) + w - 1) / w) * w;
}

static int merge_run(struct rs_opt_ctx *ctx)
{
	struct sm m = { .ctx = ctx, .p = ctx->prog.insns, .cnt = ctx->prog.insn_cnt };
	struct rs_edit *e = NULL;
	struct sm_state *s = NULL;
	size_t b, applied = 0, gen = 0, added = 0;
	int err;

	if (!m.cnt)
		return 0;
	m.win = window(m.p, m.cnt);
	err = rs_cfg_build_prog(&ctx->prog, &m.cfg);
	if (err)
		return err;
	m.in = calloc(m.cfg.bb_cnt + 1, sizeof(*m.in));
	m.regs = calloc(m.cnt, sizeof(*m.regs));
	m.seen = calloc(m.cnt, sizeof(*m.seen));
	m.stack = calloc(2 * m.cnt + 2, sizeof(*m.stack));
	s = malloc(sizeof(*s));
	e = rs_edit_new(&ctx->prog);
	if (!m.in || !m.regs || !m.seen || !m.stack || !s || !e) {
		err = -ENOMEM;
		goto out;
	}
	err = rs_liveness(&m.cfg, m.p, &m.live);
	if (!err)
		err = dataflow(&m);
	for (b = 0; !err && b < m.cfg.bb_cnt; b++) {
		const struct rs_bb *bb = &m.cfg.bbs[b];
		size_t i;

		if (!m.in[b].valid)
			continue;
		state_copy(s, &m.in[b]);
		for (i = bb->start; !err && i < bb->end; i += rs_insn_width(&m.p[i])) {
			const struct bpf_insn *in = &m.p[i];
			uint8_t cls = BPF_CLASS(in->code);
			int64_t so, lo, nlo, nhi, wlo;
			struct bpf_insn seq[40];
			size_t n = 0;
			int sn, w;

			if ((cls == BPF_ST || cls == BPF_STX) && BPF_MODE(in->code) == BPF_MEM &&
			    (sn = insn_size(in)) < 8 && fp_addr(s, in->dst_reg, in->off, &so) &&
			    in_frame(s, so, sn)) {
				lo = floor_to(so, 8);
				readers(&m, i, so, sn, lo, &nlo, &nhi);
				if (nlo < nhi) {
					wlo = floor_to(so, 4);
					w = sn < 4 && inside(so, sn, wlo, wlo + 4) &&
					    inside(nlo, nhi - nlo, wlo, wlo + 4) ? 4 : 8;
					err = build(&m, s, i, so, w == 4 ? wlo : lo, w, seq, &n);
				}
			}
			if (!err && n) {
				err = rs_edit_replace(e, i, 1, seq, NULL, n);
				if (!err && ctx->orig_idx[i] >= 0)
					err = rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[i],
							     -1, in, 1, seq, n, NULL,
							     "%d-byte stack store widened to the "
							     "%d-byte word a later read takes whole "
							     "(%zu insns; no store-forwarding stall)",
							     insn_size(in), w, n);
				else if (!err)
					gen++;
				applied++;
				added += n - 1;
			}
			transfer(s, m.p, i);
		}
	}
	if (!err && gen)
		err = rs_pass_remark(ctx, RS_REMARK_APPLIED, -1, -1, NULL, 0, NULL, 0, NULL,
				     "%zu stack stores of generated code widened", gen);
	if (!err && applied) {
		err = rs_pass_commit(ctx, e);
		e = NULL;
		if (!err)
			rs_debug("prog %u (%s): store_merge: %zu stores widened, %zu insns added",
				 ctx->orig->id, ctx->orig->name, applied, added);
	}
out:
	rs_edit_free(e);
	free(m.in);
	free(m.regs);
	free(m.seen);
	free(m.stack);
	free(m.live);
	free(s);
	rs_cfg_free(&m.cfg);
	return err;
}

const struct rs_pass rs_pass_store_merge = {
	.name = "store_merge",
	.run = merge_run,
};
