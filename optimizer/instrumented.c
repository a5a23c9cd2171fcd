// SPDX-License-Identifier: BSD-2-Clause
/*
 * instrumented.c - the profiling variant of a program (pure rewrite, no system calls).
 *
 * The agent cannot attach probes to a program it did not write, so it swaps in a variant that
 * measures itself: a random 1-in-N sampling decision at entry runs either the original main
 * body unchanged (the cheap path: one direct value load, a decrement, a store and a branch not
 * taken) or an instrumented copy of it that counts lookup keys per site and branch outcomes
 * per conditional jump.  Samples come in bursts of B consecutive packets.  See optimizer.h
 * ("profiling") for the shape and docs/profile.md for what each choice costs.
 *
 * How the copy is made: the main body [0, m) is duplicated right after itself (pseudo calls
 * and callback references of the original re-aimed at the moved subprograms, line info
 * duplicated), then one edit list inserts the sampling prologue before instruction 0, replaces
 * every lookup call of the copy by "append key to the site's ring; call" (the key read in
 * chunks the CPU can forward from the stores that built it) and every conditional jump of the
 * copy by "jump; count not-taken; ja next | count taken; ja target".  Explicit old-index
 * targets make both edges land on the replacement of their target, so no recording is
 * skipped.  Call layout (the default): the copy is a subprogram of its own (a func_info entry
 * when there is BTF), counting the sample at its head; the sampled path, placed after the
 * main body's last instruction, reloads the countdown and calls it.  Inline layout: the
 * prologue jumps to the copy's head, which reloads and counts.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/optimizer.h"

#define INS(CODE, DST, SRC, OFF, IMM)						\
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC),	\
			    .off = (OFF), .imm = (IMM) })
#define MOV64_REG(D, S)		INS(BPF_ALU64 | BPF_MOV | BPF_X, D, S, 0, 0)
#define MOV64_IMM(D, IMM)	INS(BPF_ALU64 | BPF_MOV | BPF_K, D, 0, 0, IMM)
#define ADD64_IMM(D, IMM)	INS(BPF_ALU64 | BPF_ADD | BPF_K, D, 0, 0, IMM)
#define LDX_DW(D, S, OFF)	INS(BPF_LDX | BPF_DW | BPF_MEM, D, S, OFF, 0)
#define LDX_W(D, S, OFF)	INS(BPF_LDX | BPF_W | BPF_MEM, D, S, OFF, 0)
#define STX_DW(D, S, OFF)	INS(BPF_STX | BPF_DW | BPF_MEM, D, S, OFF, 0)
#define STX_W(D, S, OFF)	INS(BPF_STX | BPF_W | BPF_MEM, D, S, OFF, 0)
#define ST_DW(D, OFF, IMM)	INS(BPF_ST | BPF_DW | BPF_MEM, D, 0, OFF, IMM)
#define CALL(ID)		INS(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define JA(OFF)			INS(BPF_JMP | BPF_JA, 0, 0, OFF, 0)

#define SEQ_MAX 1100		/* a 512-byte key copied byte by byte, plus the rest */

/* A growing instruction sequence with per-instruction edit targets. */
struct seq {
	struct bpf_insn insns[SEQ_MAX];
	long targets[SEQ_MAX];
	size_t n;
};

static void emit_t(struct seq *s, struct bpf_insn i, long target)
{
	if (s->n < SEQ_MAX) {
		s->insns[s->n] = i;
		s->targets[s->n] = target;
	}
	s->n++;
}

static void emit(struct seq *s, struct bpf_insn i)
{
	emit_t(s, i, RS_TARGET_LOCAL);
}

static void emit_ld_map(struct seq *s, uint8_t dst, uint8_t pseudo, uint32_t idx, int32_t off)
{
	emit(s, INS(BPF_LD | BPF_DW | BPF_IMM, dst, pseudo, 0, (int32_t)idx));
	emit(s, INS(0, 0, 0, 0, off));
}

/* ---- analysis of the main body --------------------------------------------------------- */

static bool is_mem_access(const struct bpf_insn *i, uint8_t *base, int16_t *off, int *size)
{
	static const int sizes[] = { 4, 2, 1, 8 };	/* BPF_W, BPF_H, BPF_B, BPF_DW >> 3 */
	uint8_t cls = rs_insn_class(i), mode = BPF_MODE(i->code);

	if (cls == BPF_LDX && (mode == BPF_MEM || mode == BPF_MEMSX))
		*base = i->src_reg;
	else if ((cls == BPF_STX || cls == BPF_ST) && (mode == BPF_MEM || mode == BPF_ATOMIC))
		*base = i->dst_reg;
	else
		return false;
	*off = i->off;
	*size = sizes[BPF_SIZE(i->code) >> 3];
	return true;
}

/*
 * Deepest fp-relative byte the body [0, m) touches: direct r10 accesses, and registers that
 * hold r10 + constant (tracked in instruction order, forgotten at branch targets and after
 * anything else writes them) used as bases or handed to helpers.
 */
static uint32_t stack_depth_range(const struct bpf_insn *insns, size_t m)
{
	bool known[RS_MAX_REG] = {}, *target;
	int64_t val[RS_MAX_REG] = {}, deepest = 0;
	size_t i;

	target = calloc(m + 1, sizeof(*target));
	if (!target)
		return 512;
	for (i = 0; i < m; i++) {
		long t = rs_insn_is_jmp(&insns[i]) ? rs_insn_target(insns, i) : -1;

		if (t >= 0 && (size_t)t < m)
			target[t] = true;
	}
	for (i = 0; i < m; i += rs_insn_width(&insns[i])) {
		const struct bpf_insn *in = &insns[i];
		rs_regmask_t defs = rs_insn_defs(in);
		uint8_t base, cls = rs_insn_class(in);
		int16_t off;
		int size, r;

		if (target[i])
			memset(known, 0, sizeof(known));
		known[RS_REG_FP] = true;
		val[RS_REG_FP] = 0;
		if (is_mem_access(in, &base, &off, &size) && base < RS_MAX_REG && known[base]) {
			int64_t lo = val[base] + off;

			if (-lo > deepest)
				deepest = -lo;
		}
		if (rs_insn_is_call(in)) {
			for (r = 1; r <= 5; r++)
				if (known[r] && -val[r] > deepest)
					deepest = -val[r];
		}
		if ((cls == BPF_ALU64) && BPF_OP(in->code) == BPF_MOV && BPF_SRC(in->code) == BPF_X &&
		    in->off == 0 && in->src_reg < RS_MAX_REG && known[in->src_reg]) {
			known[in->dst_reg] = true;
			val[in->dst_reg] = val[in->src_reg];
		} else if (cls == BPF_ALU64 && (BPF_OP(in->code) == BPF_ADD ||
						BPF_OP(in->code) == BPF_SUB) &&
			   BPF_SRC(in->code) == BPF_K && in->dst_reg < RS_MAX_REG &&
			   known[in->dst_reg]) {
			val[in->dst_reg] += BPF_OP(in->code) == BPF_ADD ? in->imm : -(int64_t)in->imm;
			if (-val[in->dst_reg] > deepest)
				deepest = -val[in->dst_reg];
		} else {
			for (r = 0; r < RS_REG_FP; r++)
				if (defs & (1u << r))
					known[r] = false;
		}
	}
	free(target);
	if (deepest > 512)
		deepest = 512;
	return (uint32_t)((deepest + 7) & ~7);
}

static size_t main_end(const struct rs_prog *p)
{
	size_t *starts = NULL, n = 0, m = p->insn_cnt;

	if (!rs_subprog_starts(p->insns, p->insn_cnt, p->func_info, p->func_info_cnt,
			       &starts, &n) && n > 1)
		m = starts[1];
	free(starts);
	return m;
}

uint32_t rs_prog_main_stack_depth(const struct rs_prog *prog)
{
	return stack_depth_range(prog->insns, main_end(prog));
}

/*
 * Map index that r1 holds at the call at `idx`: walk back inside its basic block (following
 * register copies) to the ld_imm64 of a map.  -1 when it cannot be told.
 */
static long lookup_map_of(const struct rs_prog *p, const struct rs_cfg *cfg, size_t idx)
{
	const struct rs_bb *bb = &cfg->bbs[cfg->insn_bb[idx]];
	uint8_t reg = 1;
	size_t i = idx;

	while (i > bb->start) {
		const struct bpf_insn *in;

		i--;
		if (cfg->insn_bb[i] < 0)	/* second half of an ld_imm64 */
			continue;
		in = &p->insns[i];
		if (!(rs_insn_defs(in) & (1u << reg)))
			continue;
		if (rs_insn_is_ldimm64(in) && in->src_reg == BPF_PSEUDO_MAP_IDX &&
		    in->imm >= 0 && (size_t)in->imm < p->map_cnt)
			return in->imm;
		if (rs_insn_class(in) == BPF_ALU64 && BPF_OP(in->code) == BPF_MOV &&
		    BPF_SRC(in->code) == BPF_X && in->off == 0) {
			reg = in->src_reg;
			continue;
		}
		return -1;
	}
	return -1;
}

/*
 * Frame-pointer offset of the key pointer r2 at the call at `idx`: walk back (through the
 * block and single-predecessor chains) over "r2 += imm" and register copies to "rX = r10".
 * INT32_MIN when it cannot be told.
 */
static int32_t key_fp_offset(const struct rs_prog *p, const struct rs_cfg *cfg, size_t idx)
{
	int bb = cfg->insn_bb[idx];
	int64_t off = 0;
	uint8_t reg = 2;
	size_t i = idx, steps = 0;

	while (bb >= 0 && steps++ < 256) {
		const struct rs_bb *b = &cfg->bbs[bb];

		while (i > b->start) {
			const struct bpf_insn *in;

			i--;
			if (cfg->insn_bb[i] < 0)
				continue;
			in = &p->insns[i];
			if (!(rs_insn_defs(in) & (1u << reg)))
				continue;
			if (rs_insn_class(in) == BPF_ALU64 && BPF_SRC(in->code) == BPF_K &&
			    (BPF_OP(in->code) == BPF_ADD || BPF_OP(in->code) == BPF_SUB)) {
				off += BPF_OP(in->code) == BPF_ADD ? in->imm : -(int64_t)in->imm;
				continue;
			}
			if (rs_insn_class(in) == BPF_ALU64 && BPF_OP(in->code) == BPF_MOV &&
			    BPF_SRC(in->code) == BPF_X && in->off == 0) {
				if (in->src_reg == RS_REG_FP)
					return off >= -512 && off < 0 ? (int32_t)off : INT32_MIN;
				reg = in->src_reg;
				continue;
			}
			return INT32_MIN;
		}
		if (b->pred_cnt != 1)
			return INT32_MIN;
		bb = b->preds[0];
		i = cfg->bbs[bb].end;
	}
	return INT32_MIN;
}

/* Registers initialized on every path to each instruction (forward, intersection). */
static int must_init(const struct rs_cfg *cfg, const struct bpf_insn *insns,
		     rs_regmask_t **out)
{
	rs_regmask_t *out_bb, *res;
	bool changed = true;
	size_t b, i, k;

	out_bb = malloc((cfg->bb_cnt + 1) * sizeof(*out_bb));
	res = calloc(cfg->insn_cnt + 1, sizeof(*res));
	if (!out_bb || !res) {
		free(out_bb);
		free(res);
		return -ENOMEM;
	}
	for (b = 0; b < cfg->bb_cnt; b++)
		out_bb[b] = 0xffff;		/* top: not reached yet */
	while (changed) {
		changed = false;
		for (b = 0; b < cfg->bb_cnt; b++) {
			const struct rs_bb *bb = &cfg->bbs[b];
			rs_regmask_t cur = 0xffff;

			if ((int)b == cfg->subprogs[bb->subprog].entry_bb)
				cur = bb->subprog == 0 ? (1u << RS_REG_FP) | (1u << 1) :
				      (1u << RS_REG_FP) | 0x3e;	/* r1-r5: arguments */
			for (k = 0; k < bb->pred_cnt; k++)
				cur &= out_bb[bb->preds[k]];
			for (i = bb->start; i < bb->end; i++) {
				res[i] = cur;		/* before instruction i */
				if (cfg->insn_bb[i] < 0)
					continue;
				if (rs_insn_is_call(&insns[i]))
					cur = (cur & ~0x3e) | 1;
				else
					cur |= rs_insn_defs(&insns[i]);
			}
			if (out_bb[b] != cur) {
				out_bb[b] = cur;
				changed = true;
			}
		}
	}
	free(out_bb);
	*out = res;
	return 0;
}

/* ---- building the copy ----------------------------------------------------------------- */

/* P2 = main body, its copy, subprograms (shifted by m). */
static int duplicate_main(const struct rs_prog *p, size_t m, struct rs_prog *p2)
{
	size_t n = p->insn_cnt + m, i, li = 0;
	struct bpf_insn *ins;
	int err;

	err = rs_prog_copy(p2, p);
	if (err)
		return err;
	ins = malloc(n * sizeof(*ins));
	if (!ins)
		return -ENOMEM;
	memcpy(ins, p->insns, m * sizeof(*ins));
	memcpy(ins + m, p->insns, m * sizeof(*ins));
	memcpy(ins + 2 * m, p->insns + m, (p->insn_cnt - m) * sizeof(*ins));
	/* calls / callback references of the original body reach subprograms moved by m */
	for (i = 0; i < m; i++) {
		if (rs_insn_is_pseudo_call(&ins[i]) || rs_insn_is_pseudo_func(&ins[i])) {
			long t = rs_insn_target(p->insns, i);

			if (t >= (long)m)
				ins[i].imm += (int32_t)m;
		}
	}
	free(p2->insns);
	p2->insns = ins;
	p2->insn_cnt = n;
	for (i = 0; i < p2->func_info_cnt; i++)
		if (p2->func_info[i].insn_off >= m)
			p2->func_info[i].insn_off += m;
	if (p->line_info_cnt) {
		struct rs_line_info *l;
		size_t in_main = 0;

		while (in_main < p->line_info_cnt && p->line_info[in_main].insn_off < m)
			in_main++;
		l = malloc((p->line_info_cnt + in_main) * sizeof(*l));
		if (!l)
			return -ENOMEM;
		for (i = 0; i < in_main; i++)
			l[li++] = p->line_info[i];
		for (i = 0; i < in_main; i++) {
			l[li] = p->line_info[i];
			l[li++].insn_off += m;
		}
		for (i = in_main; i < p->line_info_cnt; i++) {
			l[li] = p->line_info[i];
			l[li++].insn_off += m;
		}
		free(p2->line_info);
		p2->line_info = l;
		p2->line_info_cnt = li;
	}
	return 0;
}

/*
 * Entry: the 1-in-N decision, inserted before instruction 0.  r1 is the only live register
 * here (r0, r2, r3 are free: the original cannot read them before writing them).  cpu_off != 0:
 * the countdown of this CPU, 64 bytes apart, at cpu_off of the control value (its generator
 * state 8 bytes after it, its burst count 16 bytes after it).  The non-sampled path falls
 * through into the original body: no taken branch on it.  A sample jumps to copy_start: the
 * head of the copy (inline layout, old index; reload() runs first there), or RS_TARGET_LOCAL
 * for the call layout, whose sampled path is aimed at once laid out (apply_call()).
 */
static void prologue(struct seq *s, uint32_t ctl, long copy_start, uint32_t cpu_off)
{
	if (cpu_off) {
		emit(s, MOV64_REG(6, 1));
		emit(s, CALL(BPF_FUNC_get_smp_processor_id));
		emit(s, MOV64_REG(1, 6));
		emit(s, INS(BPF_ALU64 | BPF_AND | BPF_K, 0, 0, 0, RS_PROF_CPU_SLOTS - 1));
		emit(s, INS(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 6));
		emit_ld_map(s, 2, BPF_PSEUDO_MAP_IDX_VALUE, ctl, (int32_t)cpu_off);
		emit(s, INS(BPF_ALU64 | BPF_ADD | BPF_X, 2, 0, 0, 0));
	} else {
		emit_ld_map(s, 2, BPF_PSEUDO_MAP_IDX_VALUE, ctl, 0);
	}
	emit(s, LDX_W(3, 2, 0));
	emit(s, INS(BPF_ALU | BPF_ADD | BPF_K, 3, 0, 0, -1));
	emit(s, STX_W(2, 3, 0));
	emit_t(s, INS(BPF_JMP32 | BPF_JSLE | BPF_K, 3, 0, 0, 0), copy_start); /* -> PROF */
}

/* ctl.sampled++ (uses r2, r3). */
static void count_sample(struct seq *s, uint32_t ctl)
{
	emit_ld_map(s, 2, BPF_PSEUDO_MAP_IDX_VALUE, ctl, 0);
	emit(s, LDX_DW(3, 2, offsetof(struct rs_prof_ctl, sampled)));
	emit(s, ADD64_IMM(3, 1));
	emit(s, STX_DW(2, 3, offsetof(struct rs_prof_ctl, sampled)));
}

/*
 * Head of the copy, reached only from the prologue with r2 = the countdown: decide when the
 * next sample comes, and count this one.  Samples come in bursts of B consecutive packets:
 * inside a burst the countdown is set to 1; after its last packet it is reloaded with the gap
 * to the next burst, 1 + a uniform draw from 0..2G-2 with G = N*B - B + 1, so a burst starts
 * on average every N*B packets and every packet is sampled with probability 1/N.  A sample
 * after a gap costs several times one that follows another (the copy, its counters and its
 * rings have gone cold, docs/profile.md); bursts pay that once per B samples.
 *
 * The draw comes from a 64-bit LCG kept next to the countdown (Knuth's MMIX constants; the
 * high 32 bits are the output) mapped onto the range with a multiply and a shift: no helper
 * call and no division, which together cost ~27 ns per draw (bpf_get_prandom_u32 and a div).
 * Uses r0, r2, r3; r1 is kept.
 */
static void reload(struct seq *s, uint32_t ctl, uint32_t rate, uint32_t burst, uint32_t cpu_off,
		   bool count)
{
	uint64_t gap = (uint64_t)rate * burst - burst + 1;
	uint32_t span = gap > 1 ? (uint32_t)(2 * gap - 1) : 1;
	int16_t rng = cpu_off ? 8 : (int16_t)offsetof(struct rs_prof_ctl, rng);
	int16_t left = cpu_off ? 16 : (int16_t)offsetof(struct rs_prof_ctl, burst_left);
	size_t j_at, ja_at;

	/* inside a burst: one less to go, and the next packet is sampled too */
	emit(s, LDX_W(3, 2, left));
	emit(s, INS(BPF_ALU | BPF_ADD | BPF_K, 3, 0, 0, -1));
	j_at = s->n;
	emit(s, INS(BPF_JMP32 | BPF_JSLE | BPF_K, 3, 0, 0, 0));
	emit(s, STX_W(2, 3, left));
	emit(s, INS(BPF_ST | BPF_W | BPF_MEM, 2, 0, 0, 1));
	ja_at = s->n;
	emit(s, JA(0));
	s->insns[j_at].off = (int16_t)(s->n - j_at - 1);
	/* last of a burst: the gap to the next one */
	emit(s, INS(BPF_ST | BPF_W | BPF_MEM, 2, 0, left, (int32_t)burst));
	emit(s, LDX_DW(0, 2, rng));
	emit(s, INS(BPF_LD | BPF_DW | BPF_IMM, 3, 0, 0, (int32_t)0x4c957f2dU));
	emit(s, INS(0, 0, 0, 0, (int32_t)0x5851f42dU));
	emit(s, INS(BPF_ALU64 | BPF_MUL | BPF_X, 0, 3, 0, 0));
	emit(s, INS(BPF_LD | BPF_DW | BPF_IMM, 3, 0, 0, (int32_t)0xf767814fU));
	emit(s, INS(0, 0, 0, 0, (int32_t)0x14057b7eU));
	emit(s, INS(BPF_ALU64 | BPF_ADD | BPF_X, 0, 3, 0, 0));
	emit(s, STX_DW(2, 0, rng));
	emit(s, INS(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32));
	emit(s, INS(BPF_ALU64 | BPF_MUL | BPF_K, 0, 0, 0, (int32_t)span));
	emit(s, INS(BPF_ALU64 | BPF_RSH | BPF_K, 0, 0, 0, 32));
	emit(s, INS(BPF_ALU64 | BPF_ADD | BPF_K, 0, 0, 0, 1));
	emit(s, STX_W(2, 0, 0));
	s->insns[ja_at].off = (int16_t)(s->n - ja_at - 1);
	if (count)
		count_sample(s, ctl);
}

/*
 * Call layout, after the main body's last instruction (an exit or a jump: nothing falls into
 * it), reached from the prologue with r2 = the countdown: reload, then call the copy (a
 * subprogram: its own JIT image) with ctx in r1 and return what it returns.
 */
static void sampled_call(struct seq *s, const struct rs_instr_layout *l, size_t copy_start)
{
	reload(s, l->ctl_map_idx, l->sample_rate, l->burst, l->cpu_off, false);
	emit_t(s, INS(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 0), (long)copy_start);
	emit(s, INS(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

/*
 * How to read the key of the lookup at `idx` (r2 = fp + key_fp_off, key_size bytes) in chunks
 * the CPU can forward from the stores that just built it: chunk[o] = size of the load at byte
 * o (0 inside a chunk).  A load that spans several in-flight stores waits until they reach
 * the cache (a store-forwarding stall, ~12-15 cycles on x86), and keys are built field by
 * field right before the call; a load inside one store forwards.  So: the stores to the key in
 * the call's basic block are found walking back (the last one to write each byte wins), and a
 * chunk stays within the bytes of one such store, or within bytes no store of the block wrote;
 * bytes partly written by a store reaching outside the key are read one by one.  Chunks are
 * aligned to their size (the verifier's rule for stack reads).
 */
static void key_chunks(const struct rs_prog *p, const struct rs_cfg *cfg, size_t idx,
		       int32_t key_fp_off, uint32_t key_size, uint8_t *chunk)
{
	int32_t who[512];		/* per key byte: -1 none, -2 mixed, else store start */
	uint8_t wsz[512] = {};
	const struct rs_bb *bb = &cfg->bbs[cfg->insn_bb[idx]];
	size_t i = idx;
	uint32_t o, b;

	for (o = 0; o < key_size; o++)
		who[o] = -1;
	while (i > bb->start) {
		const struct bpf_insn *in;
		uint8_t base, cls;
		int16_t off;
		int size;
		int64_t lo;

		i--;
		if (cfg->insn_bb[i] < 0)
			continue;
		in = &p->insns[i];
		cls = rs_insn_class(in);
		if ((cls != BPF_STX && cls != BPF_ST) || BPF_MODE(in->code) != BPF_MEM ||
		    !is_mem_access(in, &base, &off, &size) || base != RS_REG_FP)
			continue;
		lo = (int64_t)off - key_fp_off;
		for (b = 0; b < (uint32_t)size; b++) {
			int64_t k = lo + b;

			if (k < 0 || k >= key_size || who[k] != -1)
				continue;
			if (lo >= 0 && lo + size <= key_size) {
				who[k] = (int32_t)lo;
				wsz[k] = (uint8_t)size;
			} else {
				who[k] = -2;
			}
		}
	}
	memset(chunk, 0, key_size);
	for (o = 0; o < key_size; o += chunk[o]) {
		uint32_t sz = 8;

		for (; sz > 1; sz >>= 1) {
			bool same = o + sz <= key_size && ((int64_t)key_fp_off + o) % sz == 0;

			for (b = 1; same && b < sz; b++)
				same = who[o + b] == who[o] && wsz[o + b] == wsz[o] &&
				       who[o] != -2;
			if (same && who[o] != -2)
				break;
		}
		chunk[o] = (uint8_t)sz;
	}
}

/*
 * Append the key of the lookup call `call` to the site's ring, then the call.  r0 and r3-r5
 * are free here: the call clobbers them and map_lookup_elem reads only r1 and r2.
 * chunk: the load sizes by key byte (key_chunks()), NULL when r2 is not a known frame
 * offset (byte copies, valid for any pointer).
 */
static void record_site(struct seq *s, const struct bpf_insn *call, uint32_t ctl,
			const struct rs_instr_site *st, const uint8_t *chunk)
{
	static const uint8_t sz_code[] = { [1] = BPF_B, [2] = BPF_H, [4] = BPF_W, [8] = BPF_DW };
	uint32_t o = 0;

	emit_ld_map(s, 3, BPF_PSEUDO_MAP_IDX_VALUE, ctl, (int32_t)st->pos_off);
	emit(s, LDX_W(4, 3, 0));
	emit(s, INS(BPF_ALU | BPF_MOV | BPF_X, 5, 4, 0, 0));
	emit(s, INS(BPF_ALU | BPF_ADD | BPF_K, 5, 0, 0, 1));
	emit(s, STX_W(3, 5, 0));
	emit(s, INS(BPF_ALU64 | BPF_AND | BPF_K, 4, 0, 0, (int32_t)(st->ring_len - 1)));
	emit(s, INS(BPF_ALU64 | BPF_MUL | BPF_K, 4, 0, 0, (int32_t)st->key_size));
	emit_ld_map(s, 3, BPF_PSEUDO_MAP_IDX_VALUE, st->ring_map_idx, 0);
	emit(s, INS(BPF_ALU64 | BPF_ADD | BPF_X, 3, 4, 0, 0));
	while (o < st->key_size) {
		uint32_t sz = chunk ? chunk[o] : 1;

		emit(s, INS(BPF_LDX | sz_code[sz] | BPF_MEM, 0, 2, (int16_t)o, 0));
		emit(s, INS(BPF_STX | sz_code[sz] | BPF_MEM, 3, 0, (int16_t)o, 0));
		o += sz;
	}
	emit(s, *call);
}

/*
 * Bump the u64 at `off` of the control value, using two scratch registers: dead ones when
 * there are, else initialized ones spilled to s1/s2 and filled back.  A dead callee-saved
 * register (r6-r9) is taken only when the main body uses it already (`usable`): one it never
 * touches would make the JIT save and restore it on every packet in the inline layout (in
 * the call layout, on every sampled one: the copy has a frame of its own).
 */
static int bump(struct seq *s, uint32_t ctl, size_t off, rs_regmask_t live, rs_regmask_t init,
		rs_regmask_t usable, int16_t s1, int16_t s2)
{
	uint8_t regs[2], spilled[2] = {};
	int r, got = 0, k;
	int16_t slot[2] = { s1, s2 };

	for (r = 0; r < RS_REG_FP && got < 2; r++)
		if (!(live & (1u << r)) && (usable & (1u << r)))
			regs[got++] = (uint8_t)r;
	for (r = 9; r >= 0 && got < 2; r--) {
		if ((live & (1u << r)) && (init & (1u << r)) &&
		    !(got == 1 && regs[0] == r)) {
			spilled[got] = 1;
			regs[got++] = (uint8_t)r;
		}
	}
	if (got < 2)
		return -ENOSPC;
	for (k = 0; k < 2; k++)
		if (spilled[k])
			emit(s, STX_DW(RS_REG_FP, regs[k], slot[k]));
	emit_ld_map(s, regs[0], BPF_PSEUDO_MAP_IDX_VALUE, ctl, (int32_t)off);
	emit(s, LDX_DW(regs[1], regs[0], 0));
	emit(s, ADD64_IMM(regs[1], 1));
	emit(s, STX_DW(regs[0], regs[1], 0));
	for (k = 0; k < 2; k++)
		if (spilled[k])
			emit(s, LDX_DW(regs[k], RS_REG_FP, slot[k]));
	return 0;
}

/* "if cond goto T" becomes: jump; count not-taken; ja next | T: count taken; ja target. */
static int count_branch(struct seq *s, const struct bpf_insn *jmp, size_t copy_idx,
			long copy_target, uint32_t ctl, uint32_t slot, rs_regmask_t live_nt,
			rs_regmask_t live_t, rs_regmask_t init, rs_regmask_t usable, int16_t s1,
			int16_t s2)
{
	size_t j_at = s->n;
	int err;

	emit(s, *jmp);
	err = bump(s, ctl, RS_PROF_BR_OFF(slot) + 8, live_nt, init, usable, s1, s2);
	if (err)
		return err;
	emit_t(s, JA(0), (long)copy_idx + 1);
	s->insns[j_at].off = (int16_t)(s->n - j_at - 1);
	err = bump(s, ctl, RS_PROF_BR_OFF(slot), live_t, init, usable, s1, s2);
	if (err)
		return err;
	emit_t(s, JA(0), copy_target);
	return 0;
}

/* ---- the rewrite ------------------------------------------------------------------------- */

struct ctx {
	const struct rs_prog *p;
	size_t m;
	rs_regmask_t used;		/* r0-r5 and the registers the main body touches */
	struct rs_cfg cfg;
	rs_regmask_t *live, *init;
	struct rs_instr_layout *l;
};

static int add_maps(struct ctx *c, struct rs_prog *p2, const struct rs_instr_opts *opts,
		    size_t nbranch, const long *site_map, uint32_t key_slots)
{
	bool no_keys = RS_OPTS_GET(opts, no_keys, false);
	uint32_t pos_off = (uint32_t)RS_PROF_BR_OFF(nbranch), nsites = 0;
	struct rs_map_ref ref;
	size_t i;
	int idx;

	for (i = 0; i < c->m && !no_keys; i++)
		nsites += site_map[i] >= 0;
	memset(&ref, 0, sizeof(ref));
	ref.type = BPF_MAP_TYPE_ARRAY;
	ref.key_size = 4;
	ref.value_size = (pos_off + 4 * nsites + 7) & ~7u;
	if (RS_OPTS_GET(opts, percpu_countdown, false)) {
		c->l->cpu_off = (ref.value_size + 63) & ~63u;
		ref.value_size = c->l->cpu_off + RS_PROF_CPU_SLOTS * 64;
	}
	ref.max_entries = 1;
	snprintf(ref.name, sizeof(ref.name), "%s", RS_PROF_CTL_NAME);
	idx = rs_prog_add_map(p2, &ref);
	if (idx < 0)
		return idx;
	c->l->ctl_map_idx = (uint32_t)idx;
	c->l->ctl_value_size = ref.value_size;
	if (no_keys)
		return 0;
	for (i = 0; i < c->m; i++) {
		struct rs_instr_site *st;

		if (site_map[i] < 0)
			continue;
		if (p2->map_cnt >= 64) {
			rs_warn("prog %s: insn %zu: more than 64 maps, key not recorded",
				c->p->name, i);
			c->l->skipped_sites++;
			continue;
		}
		uint32_t ks = c->p->maps[site_map[i]].key_size, len = key_slots;

		while (len > 1 && (uint64_t)len * ks > RS_PROF_RING_MAX_BYTES)
			len >>= 1;
		memset(&ref, 0, sizeof(ref));
		ref.type = BPF_MAP_TYPE_ARRAY;
		ref.key_size = 4;
		ref.value_size = len * ks;
		ref.max_entries = 1;
		snprintf(ref.name, sizeof(ref.name), "%s%u", RS_PROF_SITE_PREFIX,
			 (unsigned int)(i % 1000000));
		idx = rs_prog_add_map(p2, &ref);
		if (idx < 0)
			return idx;
		st = &c->l->sites[c->l->site_cnt++];
		st->insn = (uint32_t)i;
		st->map_idx = (uint32_t)site_map[i];
		st->key_size = ks;
		st->ring_map_idx = (uint32_t)idx;
		st->ring_len = len;
		st->pos_off = pos_off + 4 * (uint32_t)(c->l->site_cnt - 1);
	}
	return 0;
}

static int analyze(struct ctx *c, long **site_map_out, size_t *nbranch)
{
	const struct rs_prog *p = c->p;
	long *site_map;
	size_t i;
	int err;

	err = rs_cfg_build_prog(p, &c->cfg);
	if (err)
		return err;
	err = rs_liveness(&c->cfg, p->insns, &c->live);
	if (err)
		return err;
	err = must_init(&c->cfg, p->insns, &c->init);
	if (err)
		return err;
	site_map = calloc(c->m + 1, sizeof(*site_map));
	if (!site_map)
		return -ENOMEM;
	*nbranch = 0;
	c->used = 0x3f;
	for (i = 0; i < c->m; i++)
		c->used |= rs_insn_uses(&p->insns[i]) | rs_insn_defs(&p->insns[i]);
	for (i = 0; i < c->m; i++) {
		const struct bpf_insn *in = &p->insns[i];
		long t;

		site_map[i] = -1;
		if (c->cfg.insn_bb[i] < 0)
			continue;
		if (rs_insn_is_jmp(in) && rs_insn_target(p->insns, i) == 0) {
			rs_warn("prog %s: insn %zu: branch to the first instruction: cannot put "
				"the sampling decision in front", p->name, i);
			free(site_map);
			return -EOPNOTSUPP;
		}
		if (rs_insn_is_cond_jmp(in) && BPF_OP(in->code) != BPF_JCOND)
			(*nbranch)++;
		if (!rs_insn_is_helper_call(in) || in->imm != BPF_FUNC_map_lookup_elem)
			continue;
		t = lookup_map_of(p, &c->cfg, i);
		if (t < 0 || !p->maps[t].key_size || p->maps[t].key_size > 512) {
			rs_debug("prog %s: insn %zu: lookup map not resolved, key not recorded",
				 p->name, i);
			c->l->skipped_sites++;
			continue;
		}
		site_map[i] = t;
	}
	*site_map_out = site_map;
	return 0;
}

/*
 * The instrumented copy of the main body, whose instruction i is old index base + i (the
 * duplicate made at m).  Its head runs first: called, the count (the sampled path reloaded
 * before the call); inline, the reload and the count.
 */
static int copy_edits(struct ctx *c, struct rs_edit *e, const struct rs_instr_opts *opts,
		      size_t base, bool called)
{
	int16_t s1 = (int16_t)-(c->l->stack_depth + 8), s2 = s1 - 8;
	bool no_br = RS_OPTS_GET(opts, no_branches, false);
	size_t i, si = 0, m = c->m, nb = 0;
	struct seq s;
	int err;

	for (i = 0; i < m; i++) {
		const struct bpf_insn *in = &c->p->insns[i];
		size_t head;

		if (c->cfg.insn_bb[i] < 0)
			continue;
		memset(&s, 0, sizeof(s));
		/* the copy's first instruction gives way to the head + itself: the jump to the
		 * copy lands on the head (nothing else can branch to it) */
		if (i == 0 && called)
			count_sample(&s, c->l->ctl_map_idx);
		else if (i == 0)
			reload(&s, c->l->ctl_map_idx, c->l->sample_rate, c->l->burst,
			       c->l->cpu_off, true);
		head = s.n;
		if (si < c->l->site_cnt && c->l->sites[si].insn == i) {
			uint32_t ks = c->l->sites[si].key_size;
			int32_t kfo = key_fp_offset(c->p, &c->cfg, i);
			uint8_t chunk[512];

			if (kfo != INT32_MIN)
				key_chunks(c->p, &c->cfg, i, kfo, ks, chunk);
			record_site(&s, in, c->l->ctl_map_idx, &c->l->sites[si],
				    kfo != INT32_MIN ? chunk : NULL);
			si++;
		} else if (!no_br && rs_insn_is_cond_jmp(in) && BPF_OP(in->code) != BPF_JCOND) {
			long t = rs_insn_target(c->p->insns, i);
			rs_regmask_t init = c->init[i] & ~rs_insn_defs(in);

			err = count_branch(&s, in, base + i, (long)base + t, c->l->ctl_map_idx,
					   (uint32_t)nb, i + 1 < m ? c->live[i + 1] : 0xffff,
					   c->live[t], init, c->used, s1, s2);
			if (err) {
				rs_debug("prog %s: insn %zu: no scratch register, branch not "
					 "counted", c->p->name, i);
				c->l->skipped_branches++;
				s.n = head;
			} else {
				c->l->branches[c->l->branch_cnt].insn = (uint32_t)i;
				c->l->branches[c->l->branch_cnt++].slot = (uint32_t)nb;
			}
			nb++;
		}
		if (s.n == head) {
			if (i)
				continue;	/* left as it is */
			emit(&s, in[0]);	/* the head of the copy, unchanged */
			if (rs_insn_is_ldimm64(in))
				emit(&s, in[1]);
		}
		if (s.n > SEQ_MAX)
			return -E2BIG;
		err = rs_edit_replace(e, base + i, rs_insn_width(in), s.insns, s.targets, s.n);
		if (err)
			return err;
	}
	return 0;
}

/* Inline layout: the prologue in front, the copy right after the main body. */
static int build_edits(struct ctx *c, struct rs_edit *e, const struct rs_instr_opts *opts)
{
	struct seq s;
	int err;

	memset(&s, 0, sizeof(s));
	prologue(&s, c->l->ctl_map_idx, (long)c->m, c->l->cpu_off);
	err = rs_edit_insert_before(e, 0, s.insns, s.targets, s.n);
	if (err)
		return err;
	return copy_edits(c, e, opts, c->m, false);
}

/*
 * Call layout: the prologue in front (its branch to the sampled path patched once the code is
 * laid out: the edit list cannot aim at inserted code), the sampled path after the main
 * body, the copy a subprogram.  Returns in *jsle the prologue's branch (new index: it is laid
 * out first).
 */
static int call_edits(struct ctx *c, struct rs_edit *e, const struct rs_instr_opts *opts,
		      size_t *jsle)
{
	struct seq s;
	int err;

	memset(&s, 0, sizeof(s));
	prologue(&s, c->l->ctl_map_idx, RS_TARGET_LOCAL, c->l->cpu_off);
	*jsle = s.n - 1;
	err = rs_edit_insert_before(e, 0, s.insns, s.targets, s.n);
	if (err)
		return err;
	memset(&s, 0, sizeof(s));
	sampled_call(&s, c->l, c->m);
	err = rs_edit_insert_after(e, c->m - 1, s.insns, s.targets, s.n);
	if (err)
		return err;
	return copy_edits(c, e, opts, c->m, true);
}

/*
 * The copy becomes a subprogram: with BTF it needs a func_info entry, the main function's
 * (same prototype: it takes the context and returns the verdict).
 */
static int copy_func_info(struct rs_prog *p2, size_t m)
{
	struct rs_func_info *fi;

	if (!p2->func_info_cnt)
		return 0;
	fi = realloc(p2->func_info, (p2->func_info_cnt + 1) * sizeof(*fi));
	if (!fi)
		return -ENOMEM;
	p2->func_info = fi;
	/* sorted: main at 0, the original's subprograms (moved past the copy) after it */
	memmove(fi + 2, fi + 1, (p2->func_info_cnt - 1) * sizeof(*fi));
	fi[1].insn_off = (uint32_t)m;
	fi[1].type_id = fi[0].type_id;
	p2->func_info_cnt++;
	return 0;
}

/* Call layout: apply the edits and aim the prologue's branch at the sampled path. */
static int apply_call(struct ctx *c, struct rs_edit *e, size_t jsle, struct rs_prog *out,
		      char *err_buf, size_t sz)
{
	long *o2n = NULL, at, off;
	int err;

	err = rs_edit_apply(e, out, &o2n, err_buf, sz);
	if (err)
		return err;
	at = o2n[c->m - 1] + 1;		/* the last main instruction is one slot wide */
	off = at - (long)jsle - 1;
	free(o2n);
	if (off > INT16_MAX) {
		snprintf(err_buf, sz, "insn %zu: sampled path out of a branch's reach", c->m - 1);
		return -RS_ERR_RANGE;
	}
	out->insns[jsle].off = (int16_t)off;
	return 0;
}

int rs_instrument(const struct rs_prog *prog, const struct rs_instr_opts *opts,
		  struct rs_prog *out, struct rs_instr_layout *layout)
{
	uint32_t rate = RS_OPTS_GET(opts, sample_rate, 0) ?: RS_PROF_DEFAULT_RATE;
	uint32_t slots = RS_OPTS_GET(opts, key_slots, 0) ?: RS_PROF_DEFAULT_KEYS;
	uint32_t burst = RS_OPTS_GET(opts, burst, 0);
	bool call = !RS_OPTS_GET(opts, inline_copy, false);

	while (slots & (slots - 1))
		slots &= slots - 1;	/* power of two */
	int32_t depth = RS_OPTS_GET(opts, stack_depth, 0);
	struct ctx c = { .p = prog };
	long *site_map = NULL;
	struct rs_edit *e = NULL;
	struct rs_prog p2;
	char err_buf[256] = "";
	size_t nbranch = 0, jsle = 0;
	int err;

	memset(layout, 0, sizeof(*layout));
	rs_prog_init(&p2);
	if (!burst)	/* the default, fewer when N is so large that N * B would pass 2^30 */
		burst = rate > (1u << 30) / RS_PROF_DEFAULT_BURST ? (1u << 30) / rate :
			RS_PROF_DEFAULT_BURST;
	if (!prog->insn_cnt || rate > (1u << 30) || burst > RS_PROF_MAX_BURST ||
	    (uint64_t)rate * burst > (1u << 30)) {
		rs_warn("prog %s: nothing to instrument, or sample rate %u x burst %u above 2^30",
			prog->name, rate, burst);
		return -EINVAL;
	}
	c.l = layout;
	c.m = main_end(prog);
	layout->sample_rate = rate;
	layout->burst = burst;
	layout->call = call;
	layout->stack_depth = depth > 0 ? (uint32_t)((depth + 7) & ~7) :
			      stack_depth_range(prog->insns, c.m);
	if (layout->stack_depth + 16 > 512) {
		rs_warn("prog %s: stack depth %u leaves no room for 2 spill slots", prog->name,
			layout->stack_depth);
		return -E2BIG;
	}
	err = analyze(&c, &site_map, &nbranch);
	if (err)
		goto out;
	layout->sites = calloc(c.m + 1, sizeof(*layout->sites));
	layout->branches = calloc(nbranch + 1, sizeof(*layout->branches));
	if (!layout->sites || !layout->branches) {
		err = -ENOMEM;
		goto out;
	}
	err = duplicate_main(prog, c.m, &p2);
	if (!err && call)
		err = copy_func_info(&p2, c.m);
	if (err)
		goto out;
	err = add_maps(&c, &p2, opts, nbranch, site_map, slots);
	if (err)
		goto out;
	e = rs_edit_new(&p2);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	err = call ? call_edits(&c, e, opts, &jsle) : build_edits(&c, e, opts);
	if (err) {
		rs_warn("prog %s: building the instrumented copy: %s", prog->name,
			rs_strerror(err));
		goto out;
	}
	err = call ? apply_call(&c, e, jsle, out, err_buf, sizeof(err_buf)) :
		     rs_edit_apply(e, out, NULL, err_buf, sizeof(err_buf));
	if (err) {
		rs_warn("prog %s: instrumented variant: %s", prog->name, err_buf);
		goto out;
	}
	out->source = RS_SRC_BUILD;
	out->id = 0;
out:
	rs_edit_free(e);
	rs_prog_free(&p2);
	free(site_map);
	free(c.live);
	free(c.init);
	rs_cfg_free(&c.cfg);
	if (err)
		rs_instr_layout_free(layout);
	return err;
}

void rs_instr_layout_free(struct rs_instr_layout *l)
{
	if (!l)
		return;
	free(l->sites);
	free(l->branches);
	memset(l, 0, sizeof(*l));
}

/* ---- profiles from raw counts ------------------------------------------------------------ */

struct kc {
	const uint8_t *key;
	uint64_t count;
	uint32_t ks;
};

static int kc_cmp(const void *a, const void *b)
{
	const struct kc *x = a, *y = b;

	if (x->count != y->count)
		return x->count > y->count ? -1 : 1;
	return memcmp(x->key, y->key, x->ks);
}

int rs_profile_from_counts(const struct rs_instr_layout *layout,
			   const struct rs_site_counts *sites, const uint8_t *ctl,
			   size_t top_k, struct rs_profile *prof)
{
	const struct rs_prof_ctl *hdr = (const void *)ctl;
	size_t i, j;

	memset(prof, 0, sizeof(*prof));
	if (!top_k)
		top_k = 10;
	prof->sample_rate = layout->sample_rate;
	prof->packets = hdr ? hdr->sampled : 0;
	prof->sites = calloc(layout->site_cnt + 1, sizeof(*prof->sites));
	prof->branches = calloc(layout->branch_cnt + 1, sizeof(*prof->branches));
	if (!prof->sites || !prof->branches)
		goto nomem;
	for (i = 0; i < layout->site_cnt; i++) {
		const struct rs_instr_site *ls = &layout->sites[i];
		struct rs_site_profile *sp = &prof->sites[prof->site_cnt++];
		const struct rs_site_counts *sc = sites ? &sites[i] : NULL;
		struct kc *v;
		size_t n = sc ? sc->cnt : 0;

		sp->insn = ls->insn;
		sp->map_idx = ls->map_idx;
		sp->key_size = ls->key_size;
		v = calloc(n + 1, sizeof(*v));
		if (!v)
			goto nomem;
		for (j = 0; j < n; j++) {
			v[j].key = sc->keys + j * ls->key_size;
			v[j].count = sc->counts[j];
			v[j].ks = ls->key_size;
			sp->lookups += sc->counts[j];
		}
		qsort(v, n, sizeof(*v), kc_cmp);
		sp->key_cnt = n < top_k ? n : top_k;
		sp->keys = malloc(sp->key_cnt * ls->key_size + 1);
		sp->counts = malloc(sp->key_cnt * sizeof(uint64_t) + 1);
		if (!sp->keys || !sp->counts) {
			free(v);
			goto nomem;
		}
		for (j = 0; j < sp->key_cnt; j++) {
			memcpy(sp->keys + j * ls->key_size, v[j].key, ls->key_size);
			sp->counts[j] = v[j].count;
		}
		free(v);
	}
	for (i = 0; i < layout->branch_cnt; i++) {
		const struct rs_instr_branch *lb = &layout->branches[i];
		struct rs_branch_profile *bp = &prof->branches[prof->branch_cnt++];

		bp->insn = lb->insn;
		if (ctl) {
			memcpy(&bp->taken, ctl + RS_PROF_BR_OFF(lb->slot), 8);
			memcpy(&bp->not_taken, ctl + RS_PROF_BR_OFF(lb->slot) + 8, 8);
		}
	}
	return 0;
nomem:
	rs_profile_free(prof);
	return -ENOMEM;
}

double rs_site_key_share(const struct rs_site_profile *s, size_t i)
{
	if (!s->lookups || i >= s->key_cnt)
		return 0;
	return (double)s->counts[i] / (double)s->lookups;
}

double rs_branch_taken_prob(const struct rs_branch_profile *b)
{
	uint64_t n = b->taken + b->not_taken;

	return n ? (double)b->taken / (double)n : NAN;
}
