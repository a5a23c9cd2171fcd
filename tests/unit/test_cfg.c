// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_cfg.c - basic blocks, subprograms, successors and predecessors: a hand-checked
 * program, error cases, and structural invariants on random programs (RS_TEST_SEED).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

static void test_blocks(void **state)
{
	struct bpf_insn p[] = {
		MOV64_IMM(0, 0),			/* 0  bb0 */
		JMP_IMM(BPF_JEQ, 1, 0, 3),		/* 1  bb0: -> 5 */
		CALL_HELPER(BPF_FUNC_ktime_get_ns),	/* 2  bb1 (call does not end it) */
		CALL_PSEUDO(6),				/* 3  bb1: -> 10 */
		JA(2),					/* 4  bb1: -> 7 */
		LD_IMM64_LO(2, 0, 1), LD_IMM64_HI(0),	/* 5-6 bb2 */
		CALL_HELPER(BPF_FUNC_tail_call),	/* 7  bb3 (target of 4); ends bb3 */
		MOV64_IMM(0, 2),			/* 8  bb4 */
		EXIT(),					/* 9  bb4 */
		MOV64_IMM(0, 1),			/* 10 bb5: subprog 1 */
		JMP_IMM(BPF_JNE, 0, 1, -2),		/* 11 bb5: -> 10 */
		EXIT(),					/* 12 bb6 */
	};
	struct rs_cfg cfg;
	static const size_t starts[] = { 0, 2, 5, 7, 8, 10, 12 };
	static const int succ[][2] = {
		{ 1, 2 }, { 3, RS_NO_SUCC }, { 3, RS_NO_SUCC }, { 4, RS_NO_SUCC },
		{ RS_NO_SUCC, RS_NO_SUCC }, { 6, 5 }, { RS_NO_SUCC, RS_NO_SUCC },
	};
	size_t k;

	(void)state;
	assert_int_equal(rs_cfg_build(p, RS_ARRAY_SIZE(p), &cfg), 0);
	assert_int_equal(cfg.bb_cnt, RS_ARRAY_SIZE(starts));
	for (k = 0; k < cfg.bb_cnt; k++) {
		assert_int_equal(cfg.bbs[k].start, starts[k]);
		assert_int_equal(cfg.bbs[k].end, k + 1 < cfg.bb_cnt ? starts[k + 1] : 13);
		if (cfg.bbs[k].succ[0] != succ[k][0] || cfg.bbs[k].succ[1] != succ[k][1])
			fail_msg("bb %zu: succ %d %d, want %d %d", k, cfg.bbs[k].succ[0],
				 cfg.bbs[k].succ[1], succ[k][0], succ[k][1]);
	}
	assert_int_equal(cfg.subprog_cnt, 2);
	assert_int_equal(cfg.subprogs[0].start, 0);
	assert_int_equal(cfg.subprogs[0].end, 10);
	assert_int_equal(cfg.subprogs[1].start, 10);
	assert_int_equal(cfg.subprogs[1].end, 13);
	assert_int_equal(cfg.subprogs[1].entry_bb, 5);
	assert_int_equal(cfg.bbs[5].subprog, 1);
	assert_int_equal(cfg.insn_bb[5], 2);
	assert_int_equal(cfg.insn_bb[6], -1);
	assert_int_equal(cfg.insn_bb[12], 6);
	/* preds of bb3: bb1 (ja) and bb2 (fall through); of bb5: itself only */
	assert_int_equal(cfg.bbs[3].pred_cnt, 2);
	assert_int_equal(cfg.bbs[5].pred_cnt, 1);
	assert_int_equal(cfg.bbs[5].preds[0], 5);
	assert_int_equal(cfg.bbs[0].pred_cnt, 0);
	rs_cfg_free(&cfg);
	rs_cfg_free(&cfg);		/* idempotent */
}

static void test_func_info_and_errors(void **state)
{
	struct bpf_insn p[] = { MOV64_IMM(0, 0), EXIT(), MOV64_IMM(0, 1), EXIT() };
	struct bpf_insn bad_target[] = { JA(5), EXIT() };
	struct bpf_insn into_half[] = { JA(1), LD_IMM64_LO(1, 0, 0), LD_IMM64_HI(0), EXIT() };
	struct bpf_insn truncated[] = { MOV64_IMM(0, 0), LD_IMM64_LO(1, 0, 0) };
	struct rs_func_info fi[] = { { 0, 1 }, { 2, 2 } };
	struct rs_prog prog;
	struct rs_cfg cfg;

	(void)state;
	assert_int_equal(rs_cfg_build(p, 4, &cfg), 0);
	assert_int_equal(cfg.subprog_cnt, 1);
	assert_int_equal(cfg.bbs[0].succ[0], RS_NO_SUCC);	/* exit */
	rs_cfg_free(&cfg);
	rs_prog_init(&prog);
	assert_int_equal(rs_prog_set_insns(&prog, p, 4), 0);
	prog.func_info = fi;
	prog.func_info_cnt = 2;
	assert_int_equal(rs_cfg_build_prog(&prog, &cfg), 0);
	assert_int_equal(cfg.subprog_cnt, 2);
	assert_int_equal(cfg.subprogs[1].start, 2);
	rs_cfg_free(&cfg);
	prog.func_info = NULL;
	prog.func_info_cnt = 0;
	rs_prog_free(&prog);

	assert_int_equal(rs_cfg_build(bad_target, 2, &cfg), -RS_ERR_INVALID_PROG);
	assert_null(cfg.bbs);
	assert_int_equal(rs_cfg_build(into_half, 4, &cfg), -RS_ERR_INVALID_PROG);
	assert_int_equal(rs_cfg_build(truncated, 2, &cfg), -RS_ERR_INVALID_PROG);
	assert_int_equal(rs_cfg_build(p, 0, &cfg), -RS_ERR_INVALID_PROG);
}

static bool ends_block(const struct bpf_insn *i)
{
	return rs_insn_is_jmp(i) || rs_insn_is_exit(i) || rs_insn_is_tail_call(i);
}

/* invariants on random programs */
static void test_random_invariants(void **state)
{
	uint64_t seed = rs_test_seed(4242);
	int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		struct rs_gen_opts o = { .subprogs = 1 + rs_rand_below(4), .body = 5 + rs_rand_below(60),
					 .maps = 1 };
		struct rs_prog p;
		struct rs_cfg cfg;
		size_t k, i, j;

		rs_prog_init(&p);
		assert_int_equal(rs_gen_prog(&p, &o), 0);
		assert_int_equal(rs_cfg_build_prog(&p, &cfg), 0);
		assert_int_equal(cfg.subprog_cnt, o.subprogs);
		assert_int_equal(cfg.insn_cnt, p.insn_cnt);
		assert_int_equal(cfg.bbs[0].start, 0);
		for (k = 0; k < cfg.bb_cnt; k++) {
			struct rs_bb *b = &cfg.bbs[k];
			size_t last = b->end - 1;

			if (k + 1 < cfg.bb_cnt && cfg.bbs[k + 1].start != b->end)
				fail_msg("seed %llu iter %d: bb %zu not contiguous",
					 (unsigned long long)seed, iter, k);
			if (cfg.insn_bb[last] < 0)
				last--;
			/* only the last instruction of a block may end it */
			for (i = b->start; i < last; i++)
				if (cfg.insn_bb[i] >= 0 && ends_block(&p.insns[i]))
					fail_msg("seed %llu iter %d: insn %zu ends no block",
						 (unsigned long long)seed, iter, i);
			for (i = b->start; i < b->end; i++)
				assert_true(cfg.insn_bb[i] == (int)k || cfg.insn_bb[i] == -1);
			assert_true(b->start >= cfg.subprogs[b->subprog].start &&
				    b->end <= cfg.subprogs[b->subprog].end);
			/* successors agree with the last instruction and with preds */
			for (j = 0; j < 2; j++) {
				int s = b->succ[j];
				size_t m;

				if (s == RS_NO_SUCC)
					continue;
				for (m = 0; m < cfg.bbs[s].pred_cnt && cfg.bbs[s].preds[m] != (int)k; m++)
					;
				if (m == cfg.bbs[s].pred_cnt)
					fail_msg("seed %llu iter %d: bb %zu missing from preds of %d",
						 (unsigned long long)seed, iter, k, s);
			}
			if (rs_insn_is_jmp(&p.insns[last])) {
				long t = rs_insn_target(p.insns, last);
				int want = rs_insn_is_cond_jmp(&p.insns[last]) ? 1 : 0;

				assert_int_equal(cfg.bbs[b->succ[want]].start, (size_t)t);
			}
			if (rs_insn_is_exit(&p.insns[last]))
				assert_int_equal(b->succ[0], RS_NO_SUCC);
			for (j = 0; j < b->pred_cnt; j++) {
				struct rs_bb *pb = &cfg.bbs[b->preds[j]];

				assert_true(pb->succ[0] == (int)k || pb->succ[1] == (int)k);
			}
		}
		for (k = 0; k < cfg.subprog_cnt; k++)
			assert_int_equal(cfg.bbs[cfg.subprogs[k].entry_bb].start, cfg.subprogs[k].start);
		rs_cfg_free(&cfg);
		rs_prog_free(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_func_info_and_errors),
		cmocka_unit_test(test_random_invariants),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
