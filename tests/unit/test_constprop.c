// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_constprop.c - constant propagation and branch folding: hand-written programs (folded
 * compares, constants through the stack, ALU results, non-null map values, loops that must
 * not be folded, 32-bit compares, loads from constant pools), and an equivalence property on random programs: the
 * output of constprop, then dce, then layout (random branch profile) computes the same r0 and
 * the same helper calls as the input under a small reference interpreter (RS_TEST_SEED).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/pass_testlib.h"

/* ---- reference interpreter (ALU, jumps, stack, calls; deterministic helpers) -------------- */

#define FRAMES 8
#define STEPS 20000

struct vm {
	uint8_t stack[FRAMES][512];
	uint64_t helper_sum;
	size_t helper_calls;
	size_t steps;
};

static uint64_t fp_of(int frame)
{
	return 0x7f0000000000ULL + (uint64_t)frame * 0x10000 + 512;
}

static bool vm_mem(struct vm *vm, uint64_t addr, size_t size, uint8_t **out)
{
	uint64_t base = 0x7f0000000000ULL, off;
	int f;

	if (addr < base)
		return false;
	off = addr - base;
	f = (int)(off / 0x10000);
	off %= 0x10000;
	if (f >= FRAMES || off + size > 512)
		return false;
	*out = &vm->stack[f][off];
	return true;
}

static uint64_t ld(const uint8_t *m, size_t size)
{
	uint64_t v = 0;

	memcpy(&v, m, size);
	return v;
}

/* returns 0 and r0, or -1 when the step budget ran out or memory was bad */
static int vm_run(struct vm *vm, const struct bpf_insn *p, size_t cnt, size_t pc, int frame,
		  uint64_t *regs)
{
	static const size_t sz[] = { 4, 2, 1, 8 };

	regs[10] = fp_of(frame);
	while (pc < cnt) {
		const struct bpf_insn *in = &p[pc];
		uint8_t cls = BPF_CLASS(in->code), *m;
		uint64_t *d = &regs[in->dst_reg], s, v;

		if (++vm->steps > STEPS)
			return -1;
		s = BPF_SRC(in->code) == BPF_X ? regs[in->src_reg] : (uint64_t)(int64_t)in->imm;
		if (rs_insn_is_ldimm64(in)) {
			if (in->src_reg == 0)
				*d = (uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
			else if (in->src_reg == BPF_PSEUDO_FUNC)	/* imm moves with code */
				*d = 0xffffc90000000000ULL;
			else
				*d = 0xffff888000000000ULL + ((uint64_t)(uint32_t)in->imm << 12) +
				     (uint32_t)in[1].imm + ((uint64_t)in->src_reg << 20);
			pc += 2;
			continue;
		}
		if (cls == BPF_ALU || cls == BPF_ALU64) {
			bool is64 = cls == BPF_ALU64;
			uint64_t a = is64 ? *d : (uint32_t)*d, b = is64 ? s : (uint32_t)s;
			unsigned int w = is64 ? 64 : 32;

			switch (BPF_OP(in->code)) {
			case BPF_ADD: v = a + b; break;
			case BPF_SUB: v = a - b; break;
			case BPF_MUL: v = a * b; break;
			case BPF_OR: v = a | b; break;
			case BPF_AND: v = a & b; break;
			case BPF_XOR: v = a ^ b; break;
			case BPF_MOV: v = b; break;
			case BPF_DIV: v = b ? a / b : 0; break;
			case BPF_MOD: v = b ? a % b : a; break;
			case BPF_LSH: v = a << (b & (w - 1)); break;
			case BPF_RSH: v = a >> (b & (w - 1)); break;
			case BPF_NEG: v = -a; break;
			default: return -1;
			}
			*d = is64 ? v : (uint32_t)v;
			pc++;
			continue;
		}
		if (cls == BPF_LDX) {
			if (!vm_mem(vm, regs[in->src_reg] + in->off, sz[BPF_SIZE(in->code) >> 3], &m))
				return -1;
			*d = ld(m, sz[BPF_SIZE(in->code) >> 3]);
			pc++;
			continue;
		}
		if (cls == BPF_STX || cls == BPF_ST) {
			size_t n = sz[BPF_SIZE(in->code) >> 3];

			if (!vm_mem(vm, *d + in->off, n, &m))
				return -1;
			v = cls == BPF_STX ? regs[in->src_reg] : (uint64_t)(int64_t)in->imm;
			memcpy(m, &v, n);
			pc++;
			continue;
		}
		if (rs_insn_is_exit(in))
			return 0;
		if (rs_insn_is_pseudo_call(in)) {
			uint64_t sub[RS_MAX_REG];
			int r;

			if (frame + 1 >= FRAMES)
				return -1;
			/* the callee sees r1-r5 only (r6-r9 are not its to read) */
			for (r = 0; r < RS_MAX_REG; r++)
				sub[r] = r >= 1 && r <= 5 ? regs[r] : 0xca11000 + (uint64_t)r;
			memset(vm->stack[frame + 1], 0, 512);
			if (vm_run(vm, p, cnt, (size_t)rs_insn_target(p, pc), frame + 1, sub))
				return -1;
			regs[0] = sub[0];
			for (r = 1; r <= 5; r++)
				regs[r] = 0xdead0000 + (uint64_t)r;
			pc++;
			continue;
		}
		if (rs_insn_is_helper_call(in)) {
			int r;

			vm->helper_calls++;
			vm->helper_sum = vm->helper_sum * 31 + (uint64_t)in->imm;
			regs[0] = 1000 + vm->helper_calls;
			for (r = 1; r <= 5; r++)
				regs[r] = 0xbeef0000 + (uint64_t)r;
			pc++;
			continue;
		}
		if (rs_insn_is_uncond_jmp(in)) {
			pc = (size_t)rs_insn_target(p, pc);
			continue;
		}
		if (rs_insn_is_cond_jmp(in)) {
			bool is64 = cls == BPF_JMP, t;
			uint64_t a = is64 ? *d : (uint32_t)*d, b = is64 ? s : (uint32_t)s;
			int64_t sa = is64 ? (int64_t)a : (int32_t)a, sb = is64 ? (int64_t)b : (int32_t)b;

			switch (BPF_OP(in->code)) {
			case BPF_JEQ: t = a == b; break;
			case BPF_JNE: t = a != b; break;
			case BPF_JGT: t = a > b; break;
			case BPF_JGE: t = a >= b; break;
			case BPF_JLT: t = a < b; break;
			case BPF_JLE: t = a <= b; break;
			case BPF_JSET: t = a & b; break;
			case BPF_JSGT: t = sa > sb; break;
			case BPF_JSGE: t = sa >= sb; break;
			case BPF_JSLT: t = sa < sb; break;
			case BPF_JSLE: t = sa <= sb; break;
			default: return -1;
			}
			pc = t ? (size_t)rs_insn_target(p, pc) : pc + 1;
			continue;
		}
		return -1;
	}
	return -1;
}

struct outcome {
	int ret;
	uint64_t r0, helper_sum;
	size_t helper_calls;
};

static struct outcome vm_exec(const struct rs_prog *p, uint64_t seed)
{
	static struct vm vm;
	uint64_t regs[RS_MAX_REG] = { 0 };
	struct outcome o;
	int r;

	memset(&vm, 0, sizeof(vm));
	for (r = 1; r < RS_MAX_REG; r++)
		regs[r] = seed * (uint64_t)(r + 3) % 97;
	o.ret = vm_run(&vm, p->insns, p->insn_cnt, 0, 0, regs);
	o.r0 = regs[0];
	o.helper_sum = vm.helper_sum;
	o.helper_calls = vm.helper_calls;
	return o;
}

/* ---- hand-written programs ---------------------------------------------------------------- */

static void test_fold_branches(void **state)
{
	struct bpf_insn in[] = {
		MOV64_IMM(2, 5),			/* 0 */
		ALU64_IMM(BPF_LSH, 2, 2),		/* 1: r2 = 20 */
		STX_MEM(BPF_DW, RS_REG_FP, 2, -8),	/* 2 */
		LDX_MEM(BPF_DW, 3, RS_REG_FP, -8),	/* 3: r3 = 20 via the stack */
		JMP_IMM(BPF_JGT, 3, 19, 2),		/* 4: always taken -> 7 */
		MOV64_IMM(0, 1),			/* 5 */
		EXIT(),					/* 6 */
		JMP32_IMM(BPF_JEQ, 3, 21, 1),		/* 7: never taken */
		MOV64_IMM(0, 2),			/* 8 */
		EXIT(),					/* 9 */
	};
	struct rs_prog p;
	struct tctx t;
	size_t k, applied = 0;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	/* 1: r2 = 20; 3: r3 = 20; 4: ja; 7: gone */
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt - 1);
	assert_int_equal(t.ctx.prog.insns[1].code, BPF_ALU64 | BPF_MOV | BPF_K);
	assert_int_equal(t.ctx.prog.insns[1].imm, 20);
	assert_int_equal(t.ctx.prog.insns[3].code, BPF_ALU64 | BPF_MOV | BPF_K);
	assert_int_equal(t.ctx.prog.insns[3].imm, 20);
	assert_int_equal(t.ctx.prog.insns[4].code, BPF_JMP | BPF_JA);
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 4), 7);
	assert_int_equal(t.ctx.prog.insns[7].imm, 2);	/* mov r0 = 2 */
	assert_int_equal(t.ctx.orig_idx[7], 8);
	for (k = 0; k < t.remarks.cnt; k++)
		applied += t.remarks.v[k].kind == RS_REMARK_APPLIED;
	assert_int_equal(applied, 4);
	assert_int_equal(t.st.applied, 4);
	/* dce then removes 5-6, the ja over them and the dead defs (the store stays) */
	run(&t, &rs_pass_dce);
	assert_int_equal(t.ctx.prog.insn_cnt, 4);
	assert_int_equal(t.ctx.prog.insns[0].imm, 20);
	assert_int_equal(t.ctx.prog.insns[1].code, BPF_STX | BPF_DW | BPF_MEM);
	assert_int_equal(t.ctx.prog.insns[2].imm, 2);
	assert_true(rs_insn_is_exit(&t.ctx.prog.insns[3]));
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_nonnull_and_unknowns(void **state)
{
	struct bpf_insn in[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(0),	/* 0-1 */
		ALU64_IMM(BPF_ADD, 1, 4),		/* 2 */
		JMP_IMM(BPF_JEQ, 1, 0, 3),		/* 3: never (non-null) */
		LDX_MEM(BPF_W, 0, 1, 0),		/* 4: unknown value */
		JMP_IMM(BPF_JEQ, 0, 7, 1),		/* 5: unknown: stays */
		EXIT(),					/* 6 */
		MOV64_IMM(0, 0),			/* 7 */
		EXIT(),					/* 8 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt - 1);
	assert_int_equal(BPF_OP(t.ctx.prog.insns[4].code), BPF_JEQ);
	assert_int_equal(t.ctx.prog.insns[2].code, BPF_ALU64 | BPF_ADD | BPF_K);	/* pointer */
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_loop_not_folded(void **state)
{
	struct bpf_insn in[] = {
		MOV64_IMM(1, 0),			/* 0 */
		ALU64_IMM(BPF_ADD, 1, 1),		/* 1 */
		JMP_IMM(BPF_JLT, 1, 10, -2),		/* 2 -> 1 */
		MOV64_REG(0, 1),			/* 3 */
		EXIT(),					/* 4 */
	};
	struct bpf_insn after_call[] = {
		MOV64_IMM(0, 3),			/* 0 */
		STX_MEM(BPF_DW, RS_REG_FP, 0, -8),	/* 1 */
		MOV64_REG(1, RS_REG_FP),		/* 2 */
		ALU64_IMM(BPF_ADD, 1, -8),		/* 3 */
		CALL_HELPER(BPF_FUNC_get_prandom_u32),	/* 4: gets a stack pointer */
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),	/* 5: unknown now */
		EXIT(),					/* 6 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	assert_memory_equal(t.ctx.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
	ctx_fini(&t);
	rs_prog_free(&p);

	mkprog(&p, after_call, RS_ARRAY_SIZE(after_call));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insns[5].code, BPF_LDX | BPF_DW | BPF_MEM);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_null_check_refines(void **state)
{
	struct bpf_insn in[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),	/* 0-1 */
		MOV64_REG(2, RS_REG_FP),				/* 2 */
		ALU64_IMM(BPF_ADD, 2, -4),				/* 3 */
		ST_MEM(BPF_W, RS_REG_FP, -4, 0),			/* 4 */
		CALL_HELPER(BPF_FUNC_map_lookup_elem),			/* 5 */
		JMP_IMM(BPF_JNE, 0, 0, 2),				/* 6 -> 9 */
		JMP_IMM(BPF_JEQ, 0, 0, 2),				/* 7: r0 == 0 here */
		EXIT(),							/* 8 */
		MOV64_IMM(0, 1),					/* 9 */
		EXIT(),							/* 10 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insns[7].code, BPF_JMP | BPF_JA);
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 7), 10);
	ctx_fini(&t);
	rs_prog_free(&p);
}

/* Loads through a constant-pool pointer fold wherever the pointer went: a copy in r6, a
 * spill that a map lookup (which only reads its key) does not disturb, an offset added; a
 * load from the ordinary map 0 and one past the pool's end stay loads. */
static void test_pool_loads(void **state)
{
	uint8_t pool_bytes[16] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
				   0xf0, 0xde, 0xbc, 0x9a, 1, 2, 3, 4 };
	struct rs_map_ref pool = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 16,
				   .max_entries = 1, .flags = BPF_F_RDONLY_PROG,
				   .name = "rs_pool", .init_value = pool_bytes };
	struct bpf_insn in[] = {
		LD_IMM64_LO(6, BPF_PSEUDO_MAP_IDX_VALUE, 1), LD_IMM64_HI(0),	/* 0-1: pool */
		STX_MEM(BPF_DW, RS_REG_FP, 6, -16),		/* 2: spill */
		ST_MEM(BPF_W, RS_REG_FP, -4, 0),		/* 3: key */
		MOV64_REG(2, RS_REG_FP),			/* 4 */
		ALU64_IMM(BPF_ADD, 2, -4),			/* 5 */
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),	/* 6-7 */
		CALL_HELPER(BPF_FUNC_map_lookup_elem),		/* 8 */
		LDX_MEM(BPF_DW, 7, RS_REG_FP, -16),		/* 9: fill: the pool pointer */
		ALU64_IMM(BPF_ADD, 7, 8),			/* 10 */
		LDX_MEM(BPF_W, 0, 7, 0),			/* 11: 0x9abcdef0 */
		LDX_MEM(BPF_B, 3, 6, 13),			/* 12: 2 */
		LDX_MEM(BPF_W, 4, 7, 6),			/* 13: past the end: stays */
		LD_IMM64_LO(5, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(0),	/* 14-15: map m */
		LDX_MEM(BPF_W, 5, 5, 0),			/* 16: not a pool: stays */
		EXIT(),						/* 17 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog_with(&p, in, RS_ARRAY_SIZE(in), &pool);
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	assert_int_equal(t.ctx.prog.insns[11].code, BPF_ALU | BPF_MOV | BPF_K);	/* w0 = */
	assert_int_equal((uint32_t)t.ctx.prog.insns[11].imm, 0x9abcdef0u);
	assert_int_equal(t.ctx.prog.insns[12].code, BPF_ALU | BPF_MOV | BPF_K);
	assert_int_equal(t.ctx.prog.insns[12].imm, 2);
	assert_int_equal(t.ctx.prog.insns[13].code, BPF_LDX | BPF_W | BPF_MEM);
	assert_int_equal(t.ctx.prog.insns[16].code, BPF_LDX | BPF_W | BPF_MEM);
	ctx_fini(&t);
	rs_prog_free(&p);

	/* a helper that may write the stack (here: any other helper given a frame pointer)
	 * makes the spilled pointer unknown again */
	in[8] = (struct bpf_insn)CALL_HELPER(BPF_FUNC_get_prandom_u32);
	mkprog_with(&p, in, RS_ARRAY_SIZE(in), &pool);
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_constprop);
	assert_int_equal(t.ctx.prog.insns[11].code, BPF_LDX | BPF_W | BPF_MEM);
	assert_int_equal(t.ctx.prog.insns[12].code, BPF_ALU | BPF_MOV | BPF_K);	/* r6 */
	ctx_fini(&t);
	rs_prog_free(&p);
}

/* ---- random programs: constprop + dce + layout keep the semantics ------------------------- */

static void random_profile(const struct rs_prog *p, struct rs_profile *prof)
{
	size_t i;

	memset(prof, 0, sizeof(*prof));
	prof->branches = calloc(p->insn_cnt + 1, sizeof(*prof->branches));
	assert_non_null(prof->branches);
	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i])) {
		if (!rs_insn_is_cond_jmp(&p->insns[i]))
			continue;
		prof->branches[prof->branch_cnt].insn = (uint32_t)i;
		prof->branches[prof->branch_cnt].taken = rs_rand_below(100);
		prof->branches[prof->branch_cnt++].not_taken = rs_rand_below(100);
	}
}

static void dump(const char *what, const struct rs_prog *p)
{
	char buf[128];
	size_t i;

	fprintf(stderr, "--- %s\n", what);
	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i])) {
		rs_insn_snprint(buf, sizeof(buf), p->insns, p->insn_cnt, i);
		fprintf(stderr, "%4zu: %s\n", i, buf);
	}
}

/* which pass broke it: re-run step by step */
static void explain(const struct rs_prog *p, const struct rs_profile *prof, uint64_t seed)
{
	const struct rs_pass *passes[] = { &rs_pass_constprop, &rs_pass_dce, &rs_pass_layout };
	struct outcome a = vm_exec(p, seed);
	struct tctx t;
	size_t k;

	dump("input", p);
	ctx_init(&t, p, prof);
	for (k = 0; k < RS_ARRAY_SIZE(passes); k++) {
		struct outcome b;

		run(&t, passes[k]);
		b = vm_exec(&t.ctx.prog, seed);
		if (b.r0 != a.r0 || b.helper_calls != a.helper_calls) {
			dump(passes[k]->name, &t.ctx.prog);
			break;
		}
	}
	ctx_fini(&t);
}

static void test_random_equivalence(void **state)
{
	struct rs_gen_opts go = { .subprogs = 1, .body = 20, .maps = 1 };
	size_t round, compared = 0, changed = 0;

	(void)state;
	rs_test_seed(777);
	for (round = 0; round < 600; round++) {
		struct rs_profile prof;
		struct rs_prog p;
		struct tctx t;
		int s;

		rs_prog_init(&p);
		go.subprogs = 1 + rs_rand_below(3);
		go.body = 8 + rs_rand_below(30);
		assert_int_equal(rs_gen_prog(&p, &go), 0);
		/* a few constants to fold */
		for (size_t i = 0; i < p.insn_cnt; i++)
			if (p.insns[i].code == (BPF_ALU64 | BPF_ADD | BPF_X) && rs_rand_below(2))
				p.insns[i] = MOV64_IMM(p.insns[i].dst_reg, (int32_t)rs_rand_below(70));
		random_profile(&p, &prof);
		ctx_init(&t, &p, &prof);
		run(&t, &rs_pass_constprop);
		run(&t, &rs_pass_dce);
		run(&t, &rs_pass_layout);
		changed += t.ctx.prog.insn_cnt != p.insn_cnt ||
			   memcmp(t.ctx.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
		for (s = 1; s <= 3; s++) {
			struct outcome a = vm_exec(&p, (uint64_t)s * 7919 + round);
			struct outcome b;

			if (a.ret)
				continue;
			b = vm_exec(&t.ctx.prog, (uint64_t)s * 7919 + round);
			if (b.ret || a.r0 != b.r0 || a.helper_calls != b.helper_calls ||
			    a.helper_sum != b.helper_sum) {
				explain(&p, &prof, (uint64_t)s * 7919 + round);
				fail_msg("round %zu seed %d: r0 %llx vs %llx, calls %zu vs %zu, ret %d",
					 round, s, (unsigned long long)a.r0,
					 (unsigned long long)b.r0, a.helper_calls, b.helper_calls,
					 b.ret);
			}
			compared++;
		}
		free(prof.branches);
		ctx_fini(&t);
		rs_prog_free(&p);
	}
	fprintf(stderr, "compared %zu runs, %zu programs changed\n", compared, changed);
	assert_true(compared > 300);
	assert_true(changed > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold_branches),
		cmocka_unit_test(test_nonnull_and_unknowns),
		cmocka_unit_test(test_loop_not_folded),
		cmocka_unit_test(test_null_check_refines),
		cmocka_unit_test(test_pool_loads),
		cmocka_unit_test(test_random_equivalence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
