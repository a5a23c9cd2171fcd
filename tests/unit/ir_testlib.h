/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ir_testlib.h - shared by the IR unit tests: instruction constructors, a seeded random
 * number generator (RS_TEST_SEED overrides the fixed seed) and a generator of random valid
 * programs with branches, ld_imm64 (plain, map refs, pseudo func) and subprogram calls.
 *
 * Header-only (static functions) so every test stays one translation unit.
 */
#ifndef RS_IR_TESTLIB_H
#define RS_IR_TESTLIB_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/ir.h"

/* ---- instruction constructors (the kernel's filter.h macros are not uapi) -------------- */

#define I(CODE, DST, SRC, OFF, IMM)						\
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC),	\
			    .off = (OFF), .imm = (IMM) })
#define ALU64_IMM(OP, D, IMM)	I(BPF_ALU64 | BPF_OP(OP) | BPF_K, D, 0, 0, IMM)
#define ALU64_REG(OP, D, S)	I(BPF_ALU64 | BPF_OP(OP) | BPF_X, D, S, 0, 0)
#define ALU32_IMM(OP, D, IMM)	I(BPF_ALU | BPF_OP(OP) | BPF_K, D, 0, 0, IMM)
#define ALU32_REG(OP, D, S)	I(BPF_ALU | BPF_OP(OP) | BPF_X, D, S, 0, 0)
#define MOV64_IMM(D, IMM)	ALU64_IMM(BPF_MOV, D, IMM)
#define MOV64_REG(D, S)		ALU64_REG(BPF_MOV, D, S)
#define LDX_MEM(SZ, D, S, OFF)	I(BPF_LDX | BPF_SIZE(SZ) | BPF_MEM, D, S, OFF, 0)
#define STX_MEM(SZ, D, S, OFF)	I(BPF_STX | BPF_SIZE(SZ) | BPF_MEM, D, S, OFF, 0)
#define ST_MEM(SZ, D, OFF, IMM)	I(BPF_ST | BPF_SIZE(SZ) | BPF_MEM, D, 0, OFF, IMM)
#define JMP_IMM(OP, D, IMM, OFF) I(BPF_JMP | BPF_OP(OP) | BPF_K, D, 0, OFF, IMM)
#define JMP_REG(OP, D, S, OFF)	I(BPF_JMP | BPF_OP(OP) | BPF_X, D, S, OFF, 0)
#define JMP32_IMM(OP, D, IMM, OFF) I(BPF_JMP32 | BPF_OP(OP) | BPF_K, D, 0, OFF, IMM)
#define JA(OFF)			I(BPF_JMP | BPF_JA, 0, 0, OFF, 0)
#define GOTOL(IMM)		I(BPF_JMP32 | BPF_JA, 0, 0, 0, IMM)
#define CALL_HELPER(ID)		I(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define CALL_PSEUDO(IMM)	I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, IMM)
#define EXIT()			I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LD_IMM64_LO(D, SRC, IMM) I(BPF_LD | BPF_DW | BPF_IMM, D, SRC, 0, IMM)
#define LD_IMM64_HI(IMM)	I(0, 0, 0, 0, IMM)

/* ---- random numbers -------------------------------------------------------------------- */

static uint64_t rs_test_rng_state;

/* Seed from RS_TEST_SEED or `fixed`; prints the seed so a failure can be replayed. */
static inline uint64_t rs_test_seed(uint64_t fixed)
{
	const char *env = getenv("RS_TEST_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : fixed;

	rs_test_rng_state = seed ? seed : 1;
	fprintf(stderr, "seed %llu (replay with RS_TEST_SEED=%llu)\n",
		(unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

static inline uint64_t rs_rand(void)
{
	/* xorshift64* */
	uint64_t x = rs_test_rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rs_test_rng_state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* uniform in [0, n) (n > 0) */
static inline size_t rs_rand_below(size_t n)
{
	return (size_t)(rs_rand() % n);
}

/* ---- random programs ------------------------------------------------------------------- */

/* A random ALU / memory instruction that never writes r10 and never branches. */
static inline struct bpf_insn rs_rand_plain_insn(void)
{
	static const uint8_t ops[] = { BPF_ADD, BPF_SUB, BPF_MUL, BPF_OR, BPF_AND, BPF_XOR,
				       BPF_MOV };
	uint8_t d = (uint8_t)rs_rand_below(10), s = (uint8_t)rs_rand_below(11);
	uint8_t op = ops[rs_rand_below(RS_ARRAY_SIZE(ops))];

	switch (rs_rand_below(5)) {
	case 0:
		return ALU64_IMM(op, d, (int32_t)rs_rand_below(1000) - 500);
	case 1:
		return ALU64_REG(op, d, s);
	case 2:
		return ALU32_IMM(op, d, (int32_t)rs_rand_below(100));
	case 3:
		return LDX_MEM(BPF_W, d, RS_REG_FP, -8 * (int)(1 + rs_rand_below(8)));
	default:
		return STX_MEM(BPF_DW, RS_REG_FP, s, -8 * (int)(1 + rs_rand_below(8)));
	}
}

struct rs_gen_opts {
	size_t subprogs;	/* number of subprograms (>= 1) */
	size_t body;		/* approximate instructions per subprogram */
	size_t maps;		/* maps to reference */
};

/*
 * Fill `p` (initialized) with a random valid program: `subprogs` subprograms, each ending
 * in exit, with forward and backward conditional branches, ja, gotol, may_goto, ld_imm64 of
 * every flavour,
 * helper calls and pseudo calls / pseudo funcs to other subprograms; func_info and
 * line_info for every subprogram start (and some more line_info).
 */
static inline int rs_gen_prog(struct rs_prog *p, const struct rs_gen_opts *o)
{
	size_t cap = o->subprogs * (4 * o->body + 8) + 8, n = 0, s, k;
	struct bpf_insn *in = calloc(cap, sizeof(*in));
	size_t *starts = calloc(o->subprogs + 1, sizeof(*starts));
	bool *second = calloc(cap, sizeof(*second));
	size_t *fixed = calloc(cap, sizeof(*fixed));
	int err = -1;

	if (!in || !starts || !second || !fixed)
		goto out;
	for (k = 0; k < o->maps; k++) {
		struct rs_map_ref m = { .id = 100 + (uint32_t)k, .type = BPF_MAP_TYPE_HASH,
					.key_size = 4, .value_size = 8, .max_entries = 16 };

		snprintf(m.name, sizeof(m.name), "map%u", (unsigned)(k % 1000));
		if (rs_prog_add_map(p, &m) < 0)
			goto out;
	}
	/* layout first: straight-line bodies with placeholders for control flow */
	for (s = 0; s < o->subprogs; s++) {
		size_t len = o->body / 2 + rs_rand_below(o->body + 1);

		starts[s] = n;
		/* main calls every subprogram once, so each stays a subprogram */
		for (k = 1; s == 0 && k < o->subprogs; k++) {
			fixed[n] = k;
			in[n++] = CALL_PSEUDO(0);
		}
		for (k = 0; k < len; k++) {
			size_t r = rs_rand_below(100);

			if (r < 8) {		/* ld_imm64 */
				uint8_t src = 0;
				int32_t imm = (int32_t)rs_rand(), hi = (int32_t)rs_rand();

				if (r < 3 && o->maps) {
					src = r & 1 ? BPF_PSEUDO_MAP_IDX : BPF_PSEUDO_MAP_IDX_VALUE;
					imm = (int32_t)rs_rand_below(o->maps);
					hi = src == BPF_PSEUDO_MAP_IDX ? 0 : (int32_t)rs_rand_below(8) * 8;
				} else if (r < 5 && o->subprogs > 1) {
					src = BPF_PSEUDO_FUNC;	/* target fixed below */
					hi = 0;
				}
				in[n++] = LD_IMM64_LO((uint8_t)rs_rand_below(10), src, imm);
				second[n] = true;
				in[n++] = LD_IMM64_HI(hi);
			} else if (r < 22) {
				in[n++] = JMP_IMM(BPF_JGT, (uint8_t)rs_rand_below(10),
						  (int32_t)rs_rand_below(64), 0x7fff);
			} else if (r < 24) {
				in[n++] = r & 1 ? JA(0x7fff) : GOTOL(0x7fff);
			} else if (r < 25) {
				in[n++] = I(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, 0x7fff, 0);
			} else if (r < 28) {
				in[n++] = JMP32_IMM(BPF_JEQ, (uint8_t)rs_rand_below(10), 7, 0x7fff);
			} else if (r < 32 && o->subprogs > 1) {
				in[n++] = CALL_PSEUDO(0x7fffffff);
			} else if (r < 35) {
				in[n++] = CALL_HELPER(BPF_FUNC_ktime_get_ns);
			} else {
				in[n++] = rs_rand_plain_insn();
			}
		}
		in[n++] = EXIT();
	}
	starts[o->subprogs] = n;
	/* resolve placeholders: branches stay inside their subprogram, never on a 2nd half */
	for (s = 0; s < o->subprogs; s++) {
		for (k = starts[s]; k < starts[s + 1]; k++) {
			size_t t;

			if (second[k])
				continue;
			if (fixed[k]) {
				rs_insn_set_target(in, k, starts[fixed[k]]);
			} else if (rs_insn_is_jmp(&in[k])) {
				do
					t = starts[s] + rs_rand_below(starts[s + 1] - starts[s]);
				while (second[t]);
				rs_insn_set_target(in, k, t);
			} else if (rs_insn_is_pseudo_call(&in[k]) || rs_insn_is_pseudo_func(&in[k])) {
				t = starts[1 + rs_rand_below(o->subprogs - 1)];
				rs_insn_set_target(in, k, t);
			}
		}
	}
	if (rs_prog_set_insns(p, in, n))
		goto out;
	p->type = BPF_PROG_TYPE_XDP;
	strcpy(p->name, "rand");
	strcpy(p->license, "GPL");
	p->func_info = calloc(o->subprogs, sizeof(*p->func_info));
	p->line_info = calloc(n, sizeof(*p->line_info));
	if (!p->func_info || !p->line_info)
		goto out;
	p->func_info_cnt = o->subprogs;
	for (s = 0; s < o->subprogs; s++) {
		p->func_info[s].insn_off = (uint32_t)starts[s];
		p->func_info[s].type_id = 10 + (uint32_t)s;
	}
	for (k = 0; k < n; k++) {
		bool start = false;

		for (s = 0; s < o->subprogs; s++)
			start |= starts[s] == k;
		if (second[k] || (!start && rs_rand_below(4)))
			continue;
		p->line_info[p->line_info_cnt].insn_off = (uint32_t)k;
		p->line_info[p->line_info_cnt].line_off = 1000 + (uint32_t)k;
		p->line_info[p->line_info_cnt].line_col = (uint32_t)k << 10;
		p->line_info_cnt++;
	}
	err = 0;
out:
	free(in);
	free(starts);
	free(second);
	free(fixed);
	return err;
}

#endif /* RS_IR_TESTLIB_H */
