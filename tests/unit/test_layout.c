// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_layout.c - profile-guided layout: a mostly-taken branch is inverted so its target falls
 * through, a non-invertible one (jset) gets a `ja`, no profile or a mostly-not-taken branch
 * changes nothing, func_info / line_info follow subprogram starts, original indexes are kept.
 * (Semantic equivalence on random programs is checked in test_constprop.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/pass_testlib.h"

static const struct bpf_insn diamond[] = {
	JMP_IMM(BPF_JEQ, 1, 0, 2),		/* 0 -> 3 */
	MOV64_IMM(0, 1),			/* 1 */
	EXIT(),					/* 2 */
	MOV64_IMM(0, 2),			/* 3 */
	EXIT(),					/* 4 */
};

static void prof1(struct rs_profile *prof, struct rs_branch_profile *b, uint64_t taken,
		  uint64_t not_taken)
{
	memset(prof, 0, sizeof(*prof));
	b->insn = 0;
	b->taken = taken;
	b->not_taken = not_taken;
	prof->branches = b;
	prof->branch_cnt = 1;
}

static void test_invert(void **state)
{
	struct rs_branch_profile b;
	struct rs_profile prof;
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, diamond, RS_ARRAY_SIZE(diamond));
	prof1(&prof, &b, 90, 10);
	ctx_init(&t, &p, &prof);
	run(&t, &rs_pass_layout);
	assert_int_equal(t.ctx.prog.insn_cnt, 5);
	assert_int_equal(t.ctx.prog.insns[0].code, BPF_JMP | BPF_JNE | BPF_K);
	assert_int_equal(t.ctx.prog.insns[1].imm, 2);		/* hot block falls through */
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 0), 3);
	assert_int_equal(t.ctx.prog.insns[3].imm, 1);
	assert_int_equal(t.ctx.orig_idx[1], 3);
	assert_int_equal(t.ctx.orig_idx[3], 1);
	assert_int_equal(t.ctx.orig_pos[3], 1);
	assert_int_equal(t.st.applied, 1);
	assert_string_equal(t.remarks.v[0].assumption, "branch profile");
	ctx_fini(&t);

	/* mostly not taken, or no profile: nothing moves */
	prof1(&prof, &b, 10, 90);
	ctx_init(&t, &p, &prof);
	run(&t, &rs_pass_layout);
	assert_memory_equal(t.ctx.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
	ctx_fini(&t);
	ctx_init(&t, &p, NULL);
	run(&t, &rs_pass_layout);
	assert_memory_equal(t.ctx.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_jset_gets_ja(void **state)
{
	struct bpf_insn in[RS_ARRAY_SIZE(diamond)];
	struct rs_branch_profile b;
	struct rs_profile prof;
	struct rs_prog p;
	struct tctx t;

	(void)state;
	memcpy(in, diamond, sizeof(in));
	in[0].code = BPF_JMP | BPF_JSET | BPF_K;
	in[0].imm = 4;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	prof1(&prof, &b, 90, 10);
	ctx_init(&t, &p, &prof);
	run(&t, &rs_pass_layout);
	/* jset -> hot; ja -> cold; hot; cold */
	assert_int_equal(t.ctx.prog.insn_cnt, 6);
	assert_int_equal(t.ctx.prog.insns[0].code, BPF_JMP | BPF_JSET | BPF_K);
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 0), 2);
	assert_int_equal(t.ctx.prog.insns[1].code, BPF_JMP | BPF_JA);
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 1), 4);
	assert_int_equal(t.ctx.prog.insns[2].imm, 2);
	assert_int_equal(t.ctx.orig_idx[1], -1);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_subprogs_follow(void **state)
{
	struct bpf_insn in[] = {
		CALL_PSEUDO(5),				/* 0 -> 6 */
		JMP_IMM(BPF_JEQ, 0, 0, 2),		/* 1 -> 4 */
		MOV64_IMM(0, 1),			/* 2 */
		EXIT(),					/* 3 */
		MOV64_IMM(0, 2),			/* 4 */
		EXIT(),					/* 5 */
		JMP_IMM(BPF_JGT, 1, 3, 1),		/* 6 -> 8 */
		JA(1),					/* 7 -> 9 */
		MOV64_IMM(0, 3),			/* 8 */
		EXIT(),					/* 9 */
	};
	struct rs_branch_profile bs[2] = { { 1, 100, 1 }, { 6, 100, 1 } };
	struct rs_func_info fi[2] = { { 0, 1 }, { 6, 2 } };
	struct rs_line_info li[3] = { { 0, 0, 1, 0 }, { 4, 0, 2, 0 }, { 6, 0, 3, 0 } };
	struct rs_profile prof = { .branches = bs, .branch_cnt = 2 };
	struct rs_prog p;
	struct tctx t;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in));
	p.func_info = malloc(sizeof(fi));
	p.line_info = malloc(sizeof(li));
	memcpy(p.func_info, fi, sizeof(fi));
	memcpy(p.line_info, li, sizeof(li));
	p.func_info_cnt = 2;
	p.line_info_cnt = 3;
	assert_int_equal(rs_prog_validate(&p, NULL, 0), 0);
	ctx_init(&t, &p, &prof);
	run(&t, &rs_pass_layout);
	/* main: call; if r0 != 0 goto cold; hot; exit; cold...; subprogram moved by 0 */
	assert_int_equal(t.ctx.prog.insns[1].code, BPF_JMP | BPF_JNE | BPF_K);
	assert_int_equal(t.ctx.prog.insns[2].imm, 2);
	assert_int_equal(t.ctx.prog.func_info[1].insn_off, 6);
	assert_int_equal(rs_insn_target(t.ctx.prog.insns, 0), 6);
	assert_int_equal(t.ctx.prog.line_info[1].insn_off, 2);	/* line 2 moved with its insn */
	ctx_fini(&t);
	rs_prog_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invert),
		cmocka_unit_test(test_jset_gets_ja),
		cmocka_unit_test(test_subprogs_follow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
