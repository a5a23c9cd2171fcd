// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop_unroll.c - bpf_loop over a constant count becomes straight-line code: the callback is
 * inlined once per iteration, with the iteration number as an immediate, and a lookup of the
 * callback in a stable ARRAY keyed by that number becomes a pointer into the constant pool,
 * and every load that reads the value on all paths (a must-analysis of the registers holding
 * the pointer over the callback's CFG) becomes an immediate of that iteration's entry.  A rule walk ("first rule that matches", the firewall
 * sample) then compares the packet against constants instead of calling the callback and
 * loading every rule from the map.
 *
 *     r1 = N; r2 = &callback; r3 = fp + c; r4 = 0; call bpf_loop
 * ->  [spill r6-r9 the callback writes and main still needs]
 *     per k in 0..N-1:  r1 = k; r2 = fp + c; <callback body, its stack moved below main's,
 *                       exits -> after the body>; if r0 == 0 goto next; r0 = k + 1; goto end
 *     r0 = N
 *     end: [fill r6-r9]
 *
 * bpf_loop's semantics are kept: callbacks run in order with (k, ctx), a non-zero return
 * stops the walk, r0 is the number of iterations run.  The `r2 = &callback` load stays (the
 * callback remains a subprogram, ORIG still calls it); dce drops what is dead.
 *
 * Preconditions: in the main program, r1 (a constant <= RS_UNROLL_MAX after constprop, e.g. a
 * folded config value: its map is guarded already), r2 (pseudo func), r3 (frame pointer +
 * constant) and r4 (0) are set in the call's basic block; the callback has no calls to
 * subprograms, callbacks or tail calls, and every frame-pointer value it makes is tracked
 * (r10-based accesses, `rX = r10; rX += imm` pointers used as bases or handed to helpers, not
 * stored).  Its frame goes to the bottom of the 512-byte stack, under main's (estimated) depth.
 * The lookup folding needs what map_fold (a) needs: ARRAY with STABLE_VALUES, the site's value
 * read-only, and a key that is the callback's first argument stored on its stack before the
 * call on the straight-line path from its entry.  Guards: the array's contents (the ORIG path
 * keeps the real loop).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/passes/mapsite.h"

#define RS_UNROLL_MAX		256	/* iterations */
#define RS_UNROLL_BUDGET	40000	/* instructions emitted per loop */

struct loop_site {
	size_t call;			/* index of `call bpf_loop` */
	uint32_t n;			/* iterations */
	int32_t ctx_off;		/* r3 = fp + ctx_off */
	size_t cb_start, cb_end;	/* callback subprogram range */
};

struct cb_info {
	int32_t depth;			/* callback frame bytes (multiple of 8) */
	rs_regmask_t writes;		/* registers it writes */
	long lookup;			/* index (in the callback) of the foldable rules lookup, -1 */
	uint32_t map_idx;
	int32_t key_off;
	size_t extra;			/* extra instructions per copy (rX = r10 -> 2) */
};

/* last instruction before `idx` that defines `reg`, in its block or up the chain of
 * single-predecessor blocks; -1 if none */
static long last_def(const struct rs_prog *p, const struct rs_cfg *cfg, size_t idx, int reg)
{
	int b = cfg->insn_bb[idx], hops = 0;
	size_t i = idx;

	for (;;) {
		const struct rs_bb *bb = &cfg->bbs[b];

		while (i > bb->start) {
			i--;
			if (cfg->insn_bb[i] < 0)
				continue;
			if (rs_insn_defs(&p->insns[i]) & (1u << reg))
				return (long)i;
		}
		if (bb->pred_cnt != 1 || bb->preds[0] >= b || ++hops > 16)
			return -1;
		b = bb->preds[0];
		i = cfg->bbs[b].end;
	}
}

static bool mov_imm(const struct bpf_insn *in, int64_t *v)
{
	if (BPF_OP(in->code) != BPF_MOV || BPF_SRC(in->code) != BPF_K || in->off)
		return false;
	if (rs_insn_class(in) == BPF_ALU)
		*v = (uint32_t)in->imm;
	else if (rs_insn_class(in) == BPF_ALU64)
		*v = in->imm;
	else
		return false;
	return true;
}

/* r3 = fp + c at the call (`r3 = r10` then at most one `r3 += imm` in the block) */
static bool fp_arg(const struct rs_prog *p, const struct rs_cfg *cfg, size_t call, int32_t *c)
{
	long d = last_def(p, cfg, call, 3);
	const struct bpf_insn *in;

	*c = 0;
	if (d < 0)
		return false;
	in = &p->insns[d];
	if (in->code == (BPF_ALU64 | BPF_ADD | BPF_K) && in->dst_reg == 3) {
		*c = in->imm;
		d = last_def(p, cfg, (size_t)d, 3);
		if (d < 0)
			return false;
		in = &p->insns[d];
	}
	return in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && in->dst_reg == 3 &&
	       in->src_reg == RS_REG_FP && !in->off && *c < 0 && *c >= -512;
}

static int find_loop(const struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, size_t call,
		     struct loop_site *ls)
{
	const struct rs_prog *p = &ctx->prog;
	long d1, d2, d4, sub;
	int64_t n, f;
	size_t k;

	d1 = last_def(p, cfg, call, 1);
	d2 = last_def(p, cfg, call, 2);
	d4 = last_def(p, cfg, call, 4);
	if (d1 < 0 || d2 < 0 || d4 < 0 || !mov_imm(&p->insns[d1], &n) ||
	    !mov_imm(&p->insns[d4], &f) || f != 0 || !rs_insn_is_pseudo_func(&p->insns[d2]) ||
	    p->insns[d2].dst_reg != 2 || !fp_arg(p, cfg, call, &ls->ctx_off))
		return 0;
	if (n < 0 || n > RS_UNROLL_MAX)
		return 0;
	ls->call = call;
	ls->n = (uint32_t)n;
	ls->cb_start = (size_t)rs_insn_target(p->insns, (size_t)d2);
	sub = -1;
	for (k = 0; k < cfg->subprog_cnt; k++)
		if (cfg->subprogs[k].start == ls->cb_start)
			sub = (long)k;
	if (sub <= 0)
		return 0;
	ls->cb_end = (size_t)sub + 1 < cfg->subprog_cnt ? cfg->subprogs[sub + 1].start :
							   p->insn_cnt;
	return 1;
}

/* callback checks: calls, frame pointer tracking, registers written, the foldable lookup */
static bool check_callback(const struct rs_opt_ctx *ctx, const struct loop_site *ls,
			   struct cb_info *ci)
{
	const struct rs_prog *p = &ctx->prog;
	bool known[RS_MAX_REG] = {}, fpreg[RS_MAX_REG] = {}, straight = true, key_stored = false;
	int64_t val[RS_MAX_REG] = {}, deepest = 0;
	bool r1_arg = true;
	int32_t key_off = 0;
	size_t i;

	memset(ci, 0, sizeof(*ci));
	ci->lookup = -1;
	for (i = ls->cb_start; i < ls->cb_end; i += rs_insn_width(&p->insns[i])) {
		const struct bpf_insn *in = &p->insns[i];
		uint8_t cls = rs_insn_class(in), base = 0xff;
		int64_t lo;
		int r;

		known[RS_REG_FP] = fpreg[RS_REG_FP] = true;
		val[RS_REG_FP] = 0;
		ci->writes |= rs_insn_defs(in);
		if (rs_insn_is_pseudo_call(in) || rs_insn_is_pseudo_func(in) ||
		    rs_insn_is_tail_call(in) || rs_insn_is_kfunc_call(in))
			return false;
		if (cls == BPF_LDX)
			base = in->src_reg;
		else if (cls == BPF_ST || cls == BPF_STX)
			base = in->dst_reg;
		if (cls == BPF_LD && !rs_insn_is_ldimm64(in))
			return false;		/* legacy packet loads */
		if (base < RS_MAX_REG && fpreg[base]) {
			if (!known[base])
				return false;
			lo = val[base] + in->off;
			if (-lo > deepest)
				deepest = -lo;
		}
		/* a frame pointer stored anywhere: cannot follow it */
		if (cls == BPF_STX && in->src_reg < RS_MAX_REG && fpreg[in->src_reg])
			return false;
		if (rs_insn_is_helper_call(in)) {
			for (r = 1; r <= 5; r++)
				if (fpreg[r] && known[r] && -val[r] > deepest)
					deepest = -val[r];
				else if (fpreg[r] && !known[r])
					return false;
			if (in->imm == BPF_FUNC_map_lookup_elem && straight && ci->lookup < 0 &&
			    key_stored && known[2] && fpreg[2] && val[2] == key_off) {
				ci->lookup = (long)(i - ls->cb_start);
				ci->key_off = key_off;
			}
		}
		if (rs_insn_is_jmp(in) || rs_insn_is_exit(in))
			straight = false;
		/* the key: r1 (the iteration) stored as a u32 while r1 is still the argument */
		if (in->code == (BPF_STX | BPF_MEM | BPF_W) && in->dst_reg == RS_REG_FP &&
		    in->src_reg == 1 && r1_arg && straight && !key_stored) {
			key_stored = true;
			key_off = in->off;
		} else if (key_stored && ci->lookup < 0 && base == RS_REG_FP &&
			   (cls == BPF_ST || cls == BPF_STX) && in->off > key_off - 8 &&
			   in->off < key_off + 4) {
			key_stored = false;	/* overwritten */
		}
		if (rs_insn_defs(in) & (1u << 1))
			r1_arg = false;
		/* frame pointer values */
		if (cls == BPF_ALU64 && BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_X &&
		    !in->off && in->src_reg < RS_MAX_REG && fpreg[in->src_reg]) {
			fpreg[in->dst_reg] = true;
			known[in->dst_reg] = known[in->src_reg];
			val[in->dst_reg] = val[in->src_reg];
			if (in->src_reg == RS_REG_FP)
				ci->extra++;
			continue;
		}
		if (in->code == (BPF_ALU64 | BPF_ADD | BPF_K) && fpreg[in->dst_reg]) {
			val[in->dst_reg] += in->imm;
			continue;
		}
		if (rs_insn_defs(in) & (1u << RS_REG_FP))
			return false;
		if (cls == BPF_ALU || cls == BPF_ALU64) {
			rs_regmask_t fpm = 0;

			for (r = 0; r < RS_MAX_REG; r++)
				if (fpreg[r])
					fpm |= 1u << r;
			if (rs_insn_uses(in) & fpm)
				return false;	/* other arithmetic on a frame pointer */
		}
		for (r = 0; r < RS_REG_FP; r++)
			if ((rs_insn_defs(in) & (1u << r)) && fpreg[r] &&
			    !(rs_insn_is_call(in) && r >= 1 && r <= 5)) {
				if (rs_insn_uses(in) & (1u << r))
					return false;	/* arithmetic on a frame pointer */
				fpreg[r] = known[r] = false;
			}
		if (rs_insn_is_call(in))
			for (r = 0; r <= 5; r++)
				fpreg[r] = known[r] = false;
	}
	ci->depth = (int32_t)((deepest + 7) & ~7);
	ci->writes &= (1u << 6) | (1u << 7) | (1u << 8) | (1u << 9);
	return deepest <= 512;
}

/* registers holding the looked-up value pointer after instruction j (see value_loads) */
static rs_regmask_t held_step(const struct bpf_insn *in, size_t j, long lookup, rs_regmask_t h)
{
	if ((long)j == lookup)
		return 1u << 0;
	if (rs_insn_is_call(in))
		return h & ~(rs_regmask_t)0x3f;
	if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && !in->off) {
		if (h & (1u << in->src_reg))
			return h | (1u << in->dst_reg);
		return h & ~(1u << in->dst_reg);
	}
	return h & ~rs_insn_defs(in);
}

/*
 * Loads of the callback that read the looked-up value: held[i] = registers that hold the
 * lookup's value pointer on EVERY path to callback instruction i (a must-analysis over the
 * callback's CFG: the call defines r0, 64-bit register copies propagate it, any other write
 * kills).  An LDX (BPF_MEM) at i whose base is in held[i] reads the value at a known offset.
 */
static int value_loads(const struct rs_prog *p, const struct loop_site *ls, long lookup,
		       rs_regmask_t **heldp)
{
	size_t len = ls->cb_end - ls->cb_start, b, k, j;
	const struct bpf_insn *ins = &p->insns[ls->cb_start];
	rs_regmask_t *out, *held, all = (1u << RS_MAX_REG) - 1;
	struct rs_cfg cfg;
	bool changed = true;
	int err, rounds = 0;

	memset(&cfg, 0, sizeof(cfg));
	err = rs_cfg_build(ins, len, &cfg);
	if (err)
		return err;
	out = calloc(cfg.bb_cnt + 1, sizeof(*out));
	held = calloc(len + 1, sizeof(*held));
	if (!out || !held) {
		free(out);
		free(held);
		rs_cfg_free(&cfg);
		return -ENOMEM;
	}
	for (b = 0; b < cfg.bb_cnt; b++)
		out[b] = all;
	while (changed && rounds++ < 100) {
		changed = false;
		for (b = 0; b < cfg.bb_cnt; b++) {
			const struct rs_bb *bb = &cfg.bbs[b];
			rs_regmask_t h = bb->pred_cnt ? all : 0;

			if (bb->start == 0)
				h = 0;
			for (k = 0; k < bb->pred_cnt; k++)
				h &= out[bb->preds[k]];
			for (j = bb->start; j < bb->end; j += rs_insn_width(&ins[j])) {
				held[j] = h;
				h = held_step(&ins[j], j, lookup, h);
			}
			if (h != out[b]) {
				out[b] = h;
				changed = true;
			}
		}
	}
	free(out);
	rs_cfg_free(&cfg);
	if (changed) {
		free(held);
		return -E2BIG;
	}
	*heldp = held;
	return 0;
}

static void emit(struct bpf_insn *out, long *tg, size_t *n, struct bpf_insn in, long t)
{
	out[*n] = in;
	tg[*n] = t;
	(*n)++;
}

/*
 * The unrolled sequence replacing the call.  pool_at[k] gets the position (in the sequence)
 * of copy k's pool pointer, -1 when the lookup was not folded.
 */
static int build(struct rs_opt_ctx *ctx, const struct loop_site *ls, const struct cb_info *ci,
		 int32_t base, rs_regmask_t saves, struct bpf_insn **outp, long **tgp,
		 size_t *cntp, const uint8_t **vals, const rs_regmask_t *held)
{
	const struct rs_prog *p = &ctx->prog;
	size_t cb_len = ls->cb_end - ls->cb_start, per = cb_len + ci->extra + 8, cap, n = 0, i, k;
	size_t *pos = NULL, end_jumps = 0, *ends = NULL;
	struct bpf_insn *out;
	int32_t save_off = base + ci->depth;
	long *tg;
	int r, s;
	int err = -ENOMEM;

	cap = 16 + (size_t)ls->n * per;
	out = calloc(cap, sizeof(*out));
	tg = calloc(cap, sizeof(*tg));
	pos = calloc(cb_len + 1, sizeof(*pos));
	ends = calloc(ls->n + 1, sizeof(*ends));
	if (!out || !tg || !pos || !ends)
		goto fail;
	for (r = 6, s = 0; r <= 9; r++)
		if (saves & (1u << r))
			emit(out, tg, &n, (struct bpf_insn){ .code = BPF_STX | BPF_MEM | BPF_DW,
				.dst_reg = RS_REG_FP, .src_reg = (uint8_t)r,
				.off = (int16_t)(-(save_off + 8 * ++s)) }, -2);
	for (k = 0; k < ls->n; k++) {
		size_t body;

		if (n + per > cap)
			goto bad;
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
						     .dst_reg = 1, .imm = (int32_t)k }, -2);
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_X,
						     .dst_reg = 2, .src_reg = RS_REG_FP }, -2);
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD | BPF_K,
						     .dst_reg = 2, .imm = ls->ctx_off }, -2);
		body = n;
		/* first pass: positions */
		for (i = 0; i < cb_len; i++) {
			const struct bpf_insn *in = &p->insns[ls->cb_start + i];

			pos[i] = body;
			if (rs_insn_class(in) == BPF_ALU64 && BPF_OP(in->code) == BPF_MOV &&
			    BPF_SRC(in->code) == BPF_X && in->src_reg == RS_REG_FP)
				body += 2;
			else if (vals && (long)i == ci->lookup)
				body += 2;
			else if (!(i == cb_len - 1 && rs_insn_is_exit(in)))
				body += 1;	/* a final exit falls into the epilogue */
		}
		pos[cb_len] = body;
		for (i = 0; i < cb_len; i++) {
			struct bpf_insn in = p->insns[ls->cb_start + i];
			uint8_t cls = rs_insn_class(&in);

			if (rs_insn_is_ldimm64(&in)) {
				emit(out, tg, &n, in, -2);
				emit(out, tg, &n, p->insns[ls->cb_start + i + 1], -2);
				pos[i + 1] = pos[i] + 1;
				i++;
				continue;
			}
			if (vals && (long)i == ci->lookup) {
				int pool;
				uint32_t off;

				if (!vals[k]) {	/* out of range: not found */
					emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 |
						BPF_MOV | BPF_K }, -2);
					emit(out, tg, &n, (struct bpf_insn){ .code = BPF_JMP |
						BPF_JA }, -2);	/* ja +0: keeps the positions */
					continue;
				}
				err = rs_pool_add(ctx, vals[k], ctx->orig->maps[ci->map_idx].value_size,
						  &pool, &off);
				if (err)
					goto fail;
				emit(out, tg, &n, (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
					.src_reg = BPF_PSEUDO_MAP_IDX_VALUE, .imm = pool }, -2);
				emit(out, tg, &n, (struct bpf_insn){ .imm = (int32_t)off }, -2);
				continue;
			}
			/* a load of the value: its bytes as an immediate */
			if (vals && vals[k] && held && cls == BPF_LDX &&
			    BPF_MODE(in.code) == BPF_MEM && (held[i] & (1u << in.src_reg)) &&
			    in.off >= 0) {
				uint32_t vs = ctx->orig->maps[ci->map_idx].value_size;
				uint32_t sz = BPF_SIZE(in.code) == BPF_B ? 1 :
					      BPF_SIZE(in.code) == BPF_H ? 2 :
					      BPF_SIZE(in.code) == BPF_W ? 4 : 8;
				uint64_t v = 0;

				if ((uint32_t)in.off + sz <= vs) {
					memcpy(&v, vals[k] + in.off, sz);	/* little endian */
					if (sz < 8 || (int64_t)v == (int64_t)(int32_t)v) {
						emit(out, tg, &n, (struct bpf_insn){
							.code = (uint8_t)((sz < 8 ? BPF_ALU : BPF_ALU64) |
									  BPF_MOV | BPF_K),
							.dst_reg = in.dst_reg, .imm = (int32_t)v }, -2);
						continue;
					}
				}
			}
			if ((cls == BPF_LDX && in.src_reg == RS_REG_FP) ||

			    ((cls == BPF_ST || cls == BPF_STX) && in.dst_reg == RS_REG_FP))
				in.off = (int16_t)(in.off - base);
			if (cls == BPF_ALU64 && BPF_OP(in.code) == BPF_MOV &&
			    BPF_SRC(in.code) == BPF_X && in.src_reg == RS_REG_FP) {
				emit(out, tg, &n, in, -2);
				emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_ADD |
					BPF_K, .dst_reg = in.dst_reg, .imm = -base }, -2);
				continue;
			}
			if (rs_insn_is_exit(&in) && i == cb_len - 1)
				continue;
			if (rs_insn_is_exit(&in)) {	/* -> after the body */
				in = (struct bpf_insn){ .code = BPF_JMP | BPF_JA,
					.off = (int16_t)(pos[cb_len] - n - 1) };
			} else if (rs_insn_is_jmp(&in)) {
				long t = rs_insn_target(p->insns, ls->cb_start + i);

				if (t < (long)ls->cb_start || t >= (long)ls->cb_end)
					goto bad;
				if (rs_insn_class(&in) == BPF_JMP32 && BPF_OP(in.code) == BPF_JA)
					in.imm = (int32_t)(pos[t - ls->cb_start] - n - 1);
				else
					in.off = (int16_t)(pos[t - ls->cb_start] - n - 1);
			}
			emit(out, tg, &n, in, -2);
		}
		/* if r0 == 0 goto next; r0 = k + 1; goto end */
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_JMP | BPF_JEQ | BPF_K,
						     .dst_reg = 0, .off = 2 }, -2);
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K,
						     .dst_reg = 0, .imm = (int32_t)(k + 1) }, -2);
		ends[end_jumps++] = n;
		emit(out, tg, &n, (struct bpf_insn){ .code = BPF_JMP | BPF_JA }, -2);
	}
	emit(out, tg, &n, (struct bpf_insn){ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0,
					     .imm = (int32_t)ls->n }, -2);
	for (i = 0; i < end_jumps; i++) {
		if (n - ends[i] - 1 > INT16_MAX)
			goto bad;
		out[ends[i]].off = (int16_t)(n - ends[i] - 1);
	}
	for (r = 6, s = 0; r <= 9; r++)
		if (saves & (1u << r))
			emit(out, tg, &n, (struct bpf_insn){ .code = BPF_LDX | BPF_MEM | BPF_DW,
				.dst_reg = (uint8_t)r, .src_reg = RS_REG_FP,
				.off = (int16_t)(-(save_off + 8 * ++s)) }, -2);
	for (i = 0; i < n; i++)
		tg[i] = RS_TARGET_LOCAL;	/* every branch is inside the sequence */
	*outp = out;
	*tgp = tg;
	*cntp = n;
	free(pos);
	free(ends);
	return 0;
bad:
	err = -E2BIG;
fail:
	free(out);
	free(tg);
	free(pos);
	free(ends);
	return err;
}

static int unroll_one(struct rs_opt_ctx *ctx, const struct rs_cfg *cfg, const struct loop_site *ls,
		      rs_regmask_t live_after, int *pool_out)
{
	const struct rs_prog *p = &ctx->prog;
	const struct rs_site_fact *sf = NULL;
	const struct rs_map_fact *mf;
	const uint8_t **vals = NULL;
	rs_regmask_t *held = NULL;
	struct bpf_insn *seq = NULL, before[1];
	struct cb_info ci;
	struct rs_edit *e = NULL;
	rs_regmask_t saves;
	int32_t main_depth, base;
	long *tg = NULL;
	size_t cnt = 0, k, nsave = 0;
	char why[160], assume[256];
	int err, r;

	if (!check_callback(ctx, ls, &ci))
		return rs_pass_remark(ctx, RS_REMARK_MISSED, ctx->orig_idx[ls->call], -1, NULL, 0,
				      NULL, 0, NULL, "bpf_loop: callback at insn %zu cannot be "
				      "inlined (calls, or frame pointers it cannot follow)",
				      ls->cb_start);
	saves = ci.writes & live_after;
	for (r = 6; r <= 9; r++)
		nsave += !!(saves & (1u << r));
	main_depth = (int32_t)rs_prog_main_stack_depth(p);
	/* callback frame and spills right under main's frame (the verifier counts a callback's
	 * frame on top of its caller's, so the total stays what it was, plus the spills) */
	base = (main_depth + 7) & ~7;
	if (base + ci.depth + 8 * (int32_t)nsave > 512 ||
	    (size_t)ls->n * (ls->cb_end - ls->cb_start + 8) >
	    RS_UNROLL_BUDGET)
		return rs_pass_remark(ctx, RS_REMARK_MISSED, ctx->orig_idx[ls->call], -1, NULL, 0,
				      NULL, 0, NULL, "bpf_loop: %u iterations of %zu insns, stack "
				      "%d + %d bytes: too big to unroll", ls->n,
				      ls->cb_end - ls->cb_start, main_depth,
				      ci.depth + 8 * (int)nsave);
	/* base: how far down the callback's frame moves (its fp is main's fp - base) */
	if (ci.lookup >= 0)
		sf = rs_pass_site_fact(ctx, ctx->orig_idx[ls->cb_start + ci.lookup]);
	if (sf) {
		ci.map_idx = sf->map_idx;
		mf = rs_pass_map_fact(ctx, sf->map_idx);
		if (ctx->orig->maps[sf->map_idx].type != BPF_MAP_TYPE_ARRAY || !mf ||
		    mf->level != RS_MAP_STABLE_VALUES || !sf->value_read_only || !sf->key_known ||
		    sf->key_fp_off != ci.key_off || sf->map_idx >= ctx->snap->map_cnt)
			sf = NULL;
	}
	if (sf) {
		vals = calloc(ls->n + 1, sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		for (k = 0; k < ls->n && sf; k++) {
			uint32_t key = (uint32_t)k;

			if (!rs_snap_value(&ctx->snap->maps[sf->map_idx], (const uint8_t *)&key,
					   &vals[k], why, sizeof(why)))
				sf = NULL;
		}
		if (!sf) {
			free(vals);
			vals = NULL;
		}
	}
	if (vals) {
		err = value_loads(p, ls, ci.lookup, &held);
		if (err == -E2BIG)
			held = NULL;
		else if (err)
			goto out;
	}
	err = build(ctx, ls, &ci, base, saves, &seq, &tg, &cnt, vals, held);
	if (err == -E2BIG) {
		free(vals);
		free(held);
		return rs_pass_remark(ctx, RS_REMARK_MISSED, ctx->orig_idx[ls->call], -1, NULL, 0,
				      NULL, 0, NULL, "bpf_loop: unrolled code out of branch range");
	}
	if (err)
		goto out;
	before[0] = p->insns[ls->call];
	e = rs_edit_new(p);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	err = rs_edit_replace(e, ls->call, 1, seq, tg, cnt);
	if (err)
		goto out;
	err = rs_pass_commit(ctx, e);
	e = NULL;
	if (err)
		goto out;
	if (vals) {
		rs_pass_depend_on_map(ctx, ci.map_idx);
		*pool_out = -1;
		for (k = 0; k < ctx->prog.map_cnt; k++)
			if (!strcmp(ctx->prog.maps[k].name, RS_POOL_NAME))
				*pool_out = (int)k;
	}
	snprintf(assume, sizeof(assume), "%u iterations (count constant%s)%s%s%s", ls->n,
		 " from folded map values", vals ? "; " : "",
		 vals ? ctx->orig->maps[ci.map_idx].name : "",
		 vals ? " values stable (guarded), key = iteration" : "");
	err = rs_pass_remark(ctx, RS_REMARK_APPLIED, ctx->orig_idx[ls->call] >= 0 ?
			     ctx->orig_idx[ls->call] : -1, vals ? (int)ci.map_idx : -1, before, 1,
			     NULL, 0, assume, "bpf_loop unrolled: callback (%zu insns) inlined "
			     "%u times%s, %zu insns", ls->cb_end - ls->cb_start, ls->n,
			     vals ? ", its array lookup folded to pool pointers" : "", cnt);
out:
	rs_edit_free(e);
	free(seq);
	free(tg);
	free(vals);
	free(held);
	return err;
}

/*
 * Jump threading over the inlined exits: a branch to `L: r0 = rX; if r0 == 0 goto M` taken
 * with rX a known constant (set by `rX = imm` earlier in the branch's block) goes straight to
 * M (constant 0) or past the test (non-zero), when nothing there reads r0 before writing it.
 * The callback's "return 0" paths then continue with the next iteration directly.
 */
static int thread_exits(struct rs_opt_ctx *ctx, size_t *threaded)
{
	const struct rs_prog *p = &ctx->prog;
	rs_regmask_t *live = NULL;
	struct rs_edit *e = NULL;
	struct rs_cfg cfg;
	size_t i, end;
	int err;

	*threaded = 0;
	memset(&cfg, 0, sizeof(cfg));
	err = rs_cfg_build_prog(p, &cfg);
	if (!err)
		err = rs_liveness(&cfg, p->insns, &live);
	if (err)
		goto out;
	e = rs_edit_new(p);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	end = cfg.subprog_cnt > 1 ? cfg.subprogs[1].start : p->insn_cnt;
	for (i = 0; i < end && !err; i += rs_insn_width(&p->insns[i])) {
		const struct bpf_insn *in = &p->insns[i], *l, *t;
		long L, M, d, to;
		int64_t c;
		struct bpf_insn nj;

		if (!rs_insn_is_jmp(in) || cfg.insn_bb[i] < 0)
			continue;
		L = rs_insn_target(p->insns, i);
		if (L < 0 || (size_t)L + 2 >= end)
			continue;
		l = &p->insns[L];
		t = &p->insns[L + 1];
		if (l->code != (BPF_ALU64 | BPF_MOV | BPF_X) || l->dst_reg != 0 || l->off ||
		    t->code != (BPF_JMP | BPF_JEQ | BPF_K) || t->dst_reg != 0 || t->imm)
			continue;
		d = last_def(p, &cfg, i, l->src_reg);
		if (d < 0 || !mov_imm(&p->insns[d], &c) ||
		    rs_insn_class(&p->insns[d]) != BPF_ALU64)
			continue;
		M = rs_insn_target(p->insns, (size_t)L + 1);
		to = c == 0 ? M : L + 2;
		if (to < 0 || (size_t)to >= cfg.insn_cnt || (live[to] & 1u))
			continue;	/* r0 (not set on the new path) is read there */
		nj = *in;
		err = rs_edit_replace(e, i, 1, &nj, &to, 1);
		(*threaded)++;
	}
	if (!err && *threaded) {
		err = rs_pass_commit(ctx, e);
		e = NULL;
	}
out:
	rs_edit_free(e);
	free(live);
	rs_cfg_free(&cfg);
	return err;
}

static int loop_unroll_run(struct rs_opt_ctx *ctx)
{
	struct rs_cfg cfg;
	rs_regmask_t *live = NULL;
	struct loop_site ls;
	size_t i, end;
	bool dce_done = false;
	int err, pool = -1;

	/* cheap check first: most programs have no bpf_loop */
	for (i = 0; i < ctx->prog.insn_cnt; i += rs_insn_width(&ctx->prog.insns[i]))
		if (rs_insn_is_helper_call(&ctx->prog.insns[i]) &&
		    ctx->prog.insns[i].imm == BPF_FUNC_loop)
			break;
	if (i >= ctx->prog.insn_cnt)
		return 0;
	memset(&cfg, 0, sizeof(cfg));
	err = rs_cfg_build_prog(&ctx->prog, &cfg);
	if (err)
		return err;
restart:
	end = cfg.subprog_cnt > 1 ? cfg.subprogs[1].start : ctx->prog.insn_cnt;
	for (i = 0; i < end; i += rs_insn_width(&ctx->prog.insns[i])) {
		const struct bpf_insn *in = &ctx->prog.insns[i];

		if (!rs_insn_is_helper_call(in) || in->imm != BPF_FUNC_loop || cfg.insn_bb[i] < 0)
			continue;
		if (!dce_done) {
			/* branches constprop decided leave dead blocks that split the path to
			 * the call: drop them first, then look again */
			dce_done = true;
			rs_cfg_free(&cfg);
			err = rs_pass_dce.run(ctx);
			if (!err)
				err = rs_cfg_build_prog(&ctx->prog, &cfg);
			if (err)
				return err;
			goto restart;
		}
		if (!find_loop(ctx, &cfg, i, &ls))
			continue;
		err = rs_liveness(&cfg, ctx->prog.insns, &live);
		if (err)
			break;
		/* one loop per run: the program changes under the indexes */
		err = unroll_one(ctx, &cfg, &ls, i + 1 < cfg.insn_cnt ? live[i + 1] : 0, &pool);
		break;
	}
	free(live);
	rs_cfg_free(&cfg);
	/* fold what the immediates decide (zero masks, "any" fields) before dce; its
	 * per-instruction remarks on thousands of unrolled instructions become one */
	if (!err && pool >= 0) {
		struct rs_remarks *keep = ctx->remarks;
		struct rs_pass_stats *st = ctx->stats, quiet = { .applied = 0 };
		size_t before = ctx->prog.insn_cnt, threaded = 0;

		ctx->remarks = NULL;	/* counted, not recorded */
		ctx->stats = &quiet;
		err = rs_pass_constprop.run(ctx);
		ctx->remarks = keep;
		ctx->stats = st;
		if (!err)
			err = thread_exits(ctx, &threaded);
		if (!err)
			err = rs_pass_remark(ctx, RS_REMARK_APPLIED, -1, -1, NULL, 0, NULL, 0,
					     NULL, "constant propagation over the unrolled code: "
					     "%zu decisions (%zu -> %zu insns before dce), %zu "
					     "callback exits threaded to the next iteration",
					     quiet.applied, before, ctx->prog.insn_cnt, threaded);
	}
	return err;
}

const struct rs_pass rs_pass_loop_unroll = { "loop_unroll", loop_unroll_run };
