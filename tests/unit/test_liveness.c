// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_liveness.c - register liveness: hand-checked straight-line and loop programs, and a
 * comparison with a naive per-instruction fixed point on random programs (RS_TEST_SEED).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

#define R(n) ((rs_regmask_t)(1u << (n)))

static rs_regmask_t *live_of(const struct bpf_insn *p, size_t n)
{
	struct rs_cfg cfg;
	rs_regmask_t *live;

	assert_int_equal(rs_cfg_build(p, n, &cfg), 0);
	assert_int_equal(rs_liveness(&cfg, p, &live), 0);
	rs_cfg_free(&cfg);
	return live;
}

static void test_straight_and_branch(void **state)
{
	struct bpf_insn p[] = {
		MOV64_REG(6, 1),			/* 0 */
		LDX_MEM(BPF_W, 2, 6, 0),		/* 1 */
		JMP_IMM(BPF_JEQ, 2, 0, 2),		/* 2 -> 5 */
		MOV64_IMM(0, 1),			/* 3 */
		JA(1),					/* 4 -> 6 */
		MOV64_REG(0, 2),			/* 5 */
		ALU64_REG(BPF_ADD, 0, 6),		/* 6 */
		CALL_HELPER(BPF_FUNC_ktime_get_ns),	/* 7 */
		EXIT(),					/* 8 */
	};
	/* the call at 7 reads r1-r5, so they are live from the top (r2 is written at 1) */
	static const rs_regmask_t want[] = {
		R(1) | R(3) | R(4) | R(5),
		R(1) | R(3) | R(4) | R(5) | R(6),
		R(1) | R(2) | R(3) | R(4) | R(5) | R(6),
		R(1) | R(2) | R(3) | R(4) | R(5) | R(6),
		R(0) | R(1) | R(2) | R(3) | R(4) | R(5) | R(6),
		R(1) | R(2) | R(3) | R(4) | R(5) | R(6),
		R(0) | R(1) | R(2) | R(3) | R(4) | R(5) | R(6),
		R(1) | R(2) | R(3) | R(4) | R(5),
		R(0),
	};
	rs_regmask_t *live = live_of(p, RS_ARRAY_SIZE(p));
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(want); k++)
		if (live[k] != want[k])
			fail_msg("insn %zu: live 0x%x, want 0x%x", k, live[k], want[k]);
	free(live);
}

static void test_loop(void **state)
{
	/* r3 is read in the loop body only after the back edge: needs the fixed point */
	struct bpf_insn p[] = {
		MOV64_IMM(0, 0),			/* 0 */
		MOV64_IMM(4, 10),			/* 1 */
		ALU64_IMM(BPF_ADD, 4, -1),		/* 2: loop head, in r0 r3 r4 */
		ALU64_REG(BPF_ADD, 0, 3),		/* 3 */
		MOV64_IMM(3, 1),			/* 4: r3 defined for the next round */
		JMP_IMM(BPF_JNE, 4, 0, -4),		/* 5 -> 2 */
		LD_IMM64_LO(5, 0, 1), LD_IMM64_HI(0),	/* 6-7 */
		EXIT(),					/* 8 */
	};
	rs_regmask_t *live = live_of(p, RS_ARRAY_SIZE(p));

	(void)state;
	assert_int_equal(live[0], R(3));
	assert_int_equal(live[2], R(0) | R(3) | R(4));
	assert_int_equal(live[4], R(0) | R(4));
	assert_int_equal(live[5], R(0) | R(3) | R(4));
	assert_int_equal(live[6], R(0));
	assert_int_equal(live[7], R(0));	/* second half: live after the ld_imm64 */
	assert_int_equal(live[8], R(0));
	free(live);
}

/* naive oracle: per-instruction successors, iterate to a fixed point */
static rs_regmask_t *naive_liveness(const struct rs_prog *p)
{
	size_t n = p->insn_cnt, *starts, ns, i, k;
	rs_regmask_t *in = calloc(n + 1, sizeof(*in));
	size_t *sub_end = calloc(n, sizeof(*sub_end));
	bool *half = calloc(n + 1, sizeof(*half)), changed = true;

	assert_int_equal(rs_subprog_starts(p->insns, n, NULL, 0, &starts, &ns), 0);
	for (i = 0, k = 0; i < n; i++) {
		while (k + 1 < ns && starts[k + 1] <= i)
			k++;
		sub_end[i] = k + 1 < ns ? starts[k + 1] : n;
		if (rs_insn_is_ldimm64(&p->insns[i]))
			half[i + 1] = true;
	}
	while (changed) {
		changed = false;
		for (i = n; i-- > 0;) {
			const struct bpf_insn *in_i = &p->insns[i];
			size_t next = i + rs_insn_width(in_i);
			rs_regmask_t out = 0, v;

			if (half[i])
				continue;
			if (rs_insn_is_uncond_jmp(in_i)) {
				out = in[rs_insn_target(p->insns, i)];
			} else if (!rs_insn_is_exit(in_i)) {
				if (next < sub_end[i])
					out = in[next];
				if (rs_insn_is_cond_jmp(in_i))
					out |= in[rs_insn_target(p->insns, i)];
			}
			if (half[i + 1])
				in[i + 1] = out;
			v = rs_insn_uses(in_i) | (out & (rs_regmask_t)~rs_insn_defs(in_i));
			if (v != in[i]) {
				in[i] = v;
				changed = true;
			}
		}
	}
	free(starts);
	free(sub_end);
	free(half);
	return in;
}

static void test_random_vs_naive(void **state)
{
	uint64_t seed = rs_test_seed(99);
	int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		struct rs_gen_opts o = { .subprogs = 1 + rs_rand_below(3), .body = 5 + rs_rand_below(60),
					 .maps = 2 };
		struct rs_prog p;
		struct rs_cfg cfg;
		rs_regmask_t *live, *want;
		size_t i;

		rs_prog_init(&p);
		assert_int_equal(rs_gen_prog(&p, &o), 0);
		assert_int_equal(rs_cfg_build(p.insns, p.insn_cnt, &cfg), 0);
		assert_int_equal(rs_liveness(&cfg, p.insns, &live), 0);
		want = naive_liveness(&p);
		for (i = 0; i < p.insn_cnt; i++)
			if (live[i] != want[i])
				fail_msg("seed %llu iter %d: insn %zu: live 0x%x, naive 0x%x",
					 (unsigned long long)seed, iter, i, live[i], want[i]);
		free(live);
		free(want);
		rs_cfg_free(&cfg);
		rs_prog_free(&p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_straight_and_branch),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_random_vs_naive),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
