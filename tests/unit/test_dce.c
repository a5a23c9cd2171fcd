// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_dce.c - dead code elimination: unreachable blocks (and the jump over them) go, dead
 * register definitions go transitively, stores / calls / exits / subprograms stay, ld_imm64
 * counts as one instruction, remarks name the original instructions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/pass_testlib.h"

static void test_unreachable(void **state)
{
	struct bpf_insn in[] = {
		MOV64_IMM(0, 1),			/* 0 */
		JA(2),					/* 1 -> 4 */
		MOV64_IMM(0, 2),			/* 2: unreachable */
		EXIT(),					/* 3: unreachable */
		EXIT(),					/* 4 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_dce);
	assert_int_equal(t.ctx.prog.insn_cnt, 2);
	assert_int_equal(t.ctx.prog.insns[0].imm, 1);
	assert_true(rs_insn_is_exit(&t.ctx.prog.insns[1]));
	assert_int_equal(t.ctx.orig_idx[1], 4);
	assert_int_equal(t.ctx.orig_pos[2], 1);		/* removed: what follows */
	assert_true(t.st.applied >= 1);
	assert_int_equal(t.remarks.v[0].orig_insn, 2);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_dead_defs_transitive(void **state)
{
	struct bpf_insn in[] = {
		MOV64_IMM(1, 1),			/* 0: dead once 1 goes */
		MOV64_REG(2, 1),			/* 1: dead once 2 goes */
		ALU64_IMM(BPF_ADD, 2, 3),		/* 2: dead */
		LD_IMM64_LO(3, 0, 5), LD_IMM64_HI(0),	/* 3-4: dead */
		LDX_MEM(BPF_W, 4, 6, 0),		/* 5: dead load */
		MOV64_IMM(6, 9),			/* 6: r6 is read below */
		STX_MEM(BPF_DW, RS_REG_FP, 6, -8),	/* 7: store stays */
		CALL_HELPER(BPF_FUNC_ktime_get_ns),	/* 8: call stays (r0 dead) */
		MOV64_IMM(0, 0),			/* 9 */
		EXIT(),					/* 10 */
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_dce);
	/* the helper call reads r1-r5 (conservative): r1..r4 defs before it stay live */
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	ctx_fini(&t);
	rs_prog_free(&p);

	in[8] = MOV64_IMM(7, 1);		/* no call now: r7 def is dead too */
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_dce);
	assert_int_equal(t.ctx.prog.insn_cnt, 4);
	assert_int_equal(t.ctx.prog.insns[0].imm, 9);
	assert_int_equal(t.ctx.prog.insns[1].code, BPF_STX | BPF_DW | BPF_MEM);
	assert_int_equal(t.ctx.prog.insns[2].code, BPF_ALU64 | BPF_MOV | BPF_K);
	assert_true(rs_insn_is_exit(&t.ctx.prog.insns[3]));
	assert_int_equal(t.ctx.orig_idx[0], 6);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_subprogs_and_loops_stay(void **state)
{
	struct bpf_insn in[] = {
		MOV64_IMM(1, 0),			/* 0 */
		ALU64_IMM(BPF_ADD, 1, 1),		/* 1: loop counter, read by 2 */
		JMP_IMM(BPF_JLT, 1, 10, -2),		/* 2 -> 1 */
		CALL_PSEUDO(1),				/* 3 -> 5 */
		EXIT(),					/* 4 */
		MOV64_IMM(0, 7),			/* 5: subprogram */
		EXIT(),					/* 6 */
	};
	struct rs_func_info fi[2] = { { 0, 1 }, { 5, 2 } };
	struct rs_line_info li[2] = { { 0, 0, 0, 0 }, { 5, 0, 0, 0 } };
	struct rs_prog p;
	struct tctx t;

	(void)state;
	rs_prog_init(&p);
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	p.func_info = malloc(sizeof(fi));
	p.line_info = malloc(sizeof(li));
	memcpy(p.func_info, fi, sizeof(fi));
	memcpy(p.line_info, li, sizeof(li));
	p.func_info_cnt = p.line_info_cnt = 2;
	{
		char err[160] = "";

		if (rs_prog_validate(&p, err, sizeof(err)))
			fail_msg("%s", err);
	}
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_dce);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	assert_int_equal(t.ctx.prog.func_info_cnt, 2);
	ctx_fini(&t);
	rs_prog_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unreachable),
		cmocka_unit_test(test_dead_defs_transitive),
		cmocka_unit_test(test_subprogs_and_loops_stay),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
