// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_validate.c - the structural validator: one program per rule, each rejected with
 * "insn N: why" naming the right instruction; random programs pass, and random single-field
 * corruptions of them are caught or harmless (RS_TEST_SEED).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

struct vcase {
	const char *what;
	struct bpf_insn insns[8];
	size_t cnt;
	const char *msg;	/* expected prefix of the error */
};

static void test_rules(void **state)
{
	static const struct vcase c[] = {
		{ "ok", { MOV64_IMM(0, 0), EXIT() }, 2, NULL },
		{ "bad opcode", { MOV64_IMM(0, 0), I(0xff, 0, 0, 0, 0), EXIT() }, 3,
		  "insn 1: invalid" },
		{ "percpu mov", { I(BPF_ALU64 | BPF_MOV | BPF_X, 0, 0, -1, 0), EXIT() }, 2,
		  "insn 0: kernel-internal" },
		{ "writes r10", { MOV64_REG(10, 1), EXIT() }, 2, "insn 0: writes r10" },
		{ "atomic fetch into r10",
		  { MOV64_IMM(0, 0), I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 10, 0, BPF_ADD | BPF_FETCH),
		    EXIT() }, 3, "insn 1: writes r10" },
		{ "branch out", { JMP_IMM(BPF_JEQ, 1, 0, 5), EXIT() }, 2, "insn 0: branch target 6" },
		{ "branch before start", { MOV64_IMM(0, 0), JA(-3), EXIT() }, 3,
		  "insn 1: branch target -1" },
		{ "into ld_imm64", { JA(1), LD_IMM64_LO(1, 0, 0), LD_IMM64_HI(0), EXIT() }, 4,
		  "insn 0: target 2 is the second half" },
		{ "falls off the end", { MOV64_IMM(0, 0) }, 1, "insn 0: subprogram 0 does not end" },
		{ "subprog falls into next",
		  { CALL_PSEUDO(1), MOV64_IMM(0, 0), MOV64_IMM(0, 1), EXIT() }, 4,
		  "insn 1: subprogram 0 does not end" },
		{ "ends in cond jmp", { MOV64_IMM(0, 0), JMP_IMM(BPF_JEQ, 0, 0, -2) }, 2,
		  "insn 1: subprogram 0 does not end" },
		{ "ends in ld_imm64", { LD_IMM64_LO(1, 0, 0), LD_IMM64_HI(0) }, 2,
		  "insn 0: subprogram 0 does not end" },
		{ "ends in ja ok", { MOV64_IMM(0, 0), EXIT(), JA(-3) }, 3, NULL },
		{ "branch leaves subprog",
		  { CALL_PSEUDO(2), JA(1), EXIT(), MOV64_IMM(0, 0), EXIT() }, 5,
		  "insn 1: branch to insn 3 leaves subprogram 0" },
		{ "call out of range", { CALL_PSEUDO(9), EXIT() }, 2, "insn 0: call target 10" },
		{ "map by fd", { LD_IMM64_LO(1, BPF_PSEUDO_MAP_FD, 3), LD_IMM64_HI(0), EXIT() }, 3,
		  "insn 0: map referenced by fd" },
		{ "map index", { MOV64_IMM(0, 0), LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 1),
		  LD_IMM64_HI(0), EXIT() }, 4, "insn 1: map index 1 out of range (1 maps)" },
		{ "map value ok", { LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(8),
		  EXIT() }, 3, NULL },
		{ "gotol ok", { GOTOL(1), MOV64_IMM(0, 0), MOV64_IMM(0, 1), EXIT() }, 4, NULL },
	};
	struct rs_map_ref m = { .id = 1 };
	char err[256];
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(c); k++) {
		struct rs_prog p;
		int ret;

		rs_prog_init(&p);
		assert_int_equal(rs_prog_set_insns(&p, c[k].insns, c[k].cnt), 0);
		assert_int_equal(rs_prog_add_map(&p, &m), 0);
		ret = rs_prog_validate(&p, err, sizeof(err));
		if (!c[k].msg && ret)
			fail_msg("%s: rejected: %s", c[k].what, err);
		if (c[k].msg && (ret != -RS_ERR_INVALID_PROG ||
				 strncmp(err, c[k].msg, strlen(c[k].msg))))
			fail_msg("%s: got %d \"%s\", want \"%s\"", c[k].what, ret, err, c[k].msg);
		rs_prog_free(&p);
	}
	/* empty */
	{
		struct rs_prog p;

		rs_prog_init(&p);
		assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
		assert_int_equal(rs_prog_validate(&p, NULL, 0), -RS_ERR_INVALID_PROG);
	}
}

static void test_btf_info(void **state)
{
	struct bpf_insn code[] = { CALL_PSEUDO(2), MOV64_IMM(0, 0), EXIT(), MOV64_IMM(0, 1),
				   EXIT() };
	struct rs_func_info fi[] = { { 0, 1 }, { 3, 2 } }, fi_bad[] = { { 0, 1 }, { 4, 2 } };
	struct rs_line_info li[] = { { 0, 0, 1, 0 }, { 2, 0, 2, 0 }, { 3, 0, 3, 0 } };
	struct rs_line_info li_unsorted[] = { { 0, 0, 1, 0 }, { 3, 0, 3, 0 }, { 2, 0, 2, 0 } };
	struct rs_line_info li_missing[] = { { 0, 0, 1, 0 }, { 2, 0, 2, 0 } };
	struct rs_line_info li_out[] = { { 0, 0, 1, 0 }, { 3, 0, 3, 0 }, { 9, 0, 2, 0 } };
	struct rs_prog p;
	char err[256];

	(void)state;
	rs_prog_init(&p);
	assert_int_equal(rs_prog_set_insns(&p, code, 5), 0);
	p.func_info = fi;
	p.func_info_cnt = 2;
	p.line_info = li;
	p.line_info_cnt = 3;
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), 0);

	p.func_info_cnt = 1;		/* subprogram 3 lacks func_info */
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
	assert_true(strncmp(err, "insn 3: func_info", 17) == 0);
	p.func_info = fi_bad;		/* func_info off the subprogram start */
	p.func_info_cnt = 2;
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
	p.func_info = fi;

	p.line_info = li_unsorted;
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
	assert_true(strncmp(err, "insn 2: line_info[2] not sorted", 31) == 0);
	p.line_info = li_missing;
	p.line_info_cnt = 2;
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
	assert_true(strncmp(err, "insn 3: subprogram 1 has no line_info", 37) == 0);
	p.line_info = li_out;
	p.line_info_cnt = 3;
	assert_int_equal(rs_prog_validate(&p, err, sizeof(err)), -RS_ERR_INVALID_PROG);
	assert_true(strncmp(err, "insn 9: line_info[2] outside", 28) == 0);

	p.func_info = NULL;
	p.func_info_cnt = 0;
	p.line_info = NULL;
	p.line_info_cnt = 0;
	rs_prog_free(&p);
}

/* random programs validate; flipping a field to something invalid is reported */
static void test_random(void **state)
{
	uint64_t seed = rs_test_seed(31337);
	int iter;

	(void)state;
	for (iter = 0; iter < 300; iter++) {
		struct rs_gen_opts o = { .subprogs = 1 + rs_rand_below(4), .body = 4 + rs_rand_below(50),
					 .maps = 1 + rs_rand_below(3) };
		struct rs_prog p;
		char err[256];
		size_t i;

		rs_prog_init(&p);
		assert_int_equal(rs_gen_prog(&p, &o), 0);
		if (rs_prog_validate(&p, err, sizeof(err)))
			fail_msg("seed %llu iter %d: %s", (unsigned long long)seed, iter, err);
		/* one corruption that must be caught, at a random instruction */
		do
			i = rs_rand_below(p.insn_cnt);
		while (i && rs_insn_is_ldimm64(&p.insns[i - 1]));
		switch (rs_rand_below(4)) {
		case 0:
			p.insns[i].code = 0xff;
			break;
		case 1:
			p.insns[i] = MOV64_IMM(RS_REG_FP, 0);
			break;
		case 2:
			p.insns[i] = JA((int16_t)(p.insn_cnt - i));	/* one past the end */
			break;
		default:
			p.insns[i] = LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, (int32_t)o.maps);
			break;
		}
		if (rs_prog_validate(&p, err, sizeof(err)) != -RS_ERR_INVALID_PROG)
			fail_msg("seed %llu iter %d: corruption at insn %zu not caught",
				 (unsigned long long)seed, iter, i);
		assert_true(strncmp(err, "insn ", 5) == 0);
		rs_prog_free(&p);
	}
}

/*
 * garbage in: random bytes biased towards real opcodes.  Nothing may crash (run under
 * ASan/valgrind to see more), and whatever validates must build a CFG and liveness.
 */
static void test_garbage(void **state)
{
	static const uint8_t codes[] = {
		BPF_ALU64 | BPF_MOV | BPF_K, BPF_ALU64 | BPF_ADD | BPF_X, BPF_ALU | BPF_END,
		BPF_LDX | BPF_MEM | BPF_W, BPF_STX | BPF_ATOMIC | BPF_DW, BPF_LD | BPF_IMM | BPF_DW,
		BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP32 | BPF_JA, BPF_JMP | BPF_JA, BPF_JMP | BPF_CALL,
		BPF_JMP | BPF_EXIT, BPF_JMP | BPF_JCOND, 0,
	};
	uint64_t seed = rs_test_seed(8080);
	size_t valid = 0;
	int iter;

	(void)state;
	for (iter = 0; iter < 20000; iter++) {
		size_t n = 1 + rs_rand_below(12), i;
		struct bpf_insn in[12];
		struct rs_prog p;
		struct rs_cfg cfg;
		rs_regmask_t *live;
		char buf[128];

		for (i = 0; i < n; i++) {
			uint64_t r = rs_rand();

			memcpy(&in[i], &r, sizeof(r));
			if (rs_rand_below(4)) {
				in[i].code = codes[rs_rand_below(RS_ARRAY_SIZE(codes))];
				in[i].dst_reg = (uint8_t)rs_rand_below(11);
				in[i].src_reg = (uint8_t)rs_rand_below(3);
				in[i].off = (int16_t)((int)rs_rand_below(2 * n + 1) - (int)n);
				in[i].imm = rs_rand_below(3) ? (int32_t)rs_rand_below(4) : in[i].imm;
			}
		}
		if (rs_rand_below(2))
			in[n - 1] = EXIT();
		for (i = 0; i < n; i++)
			rs_insn_snprint(buf, sizeof(buf), in, n, i);
		rs_prog_init(&p);
		assert_int_equal(rs_prog_set_insns(&p, in, n), 0);
		if (rs_prog_validate(&p, buf, sizeof(buf)) == 0) {
			valid++;
			if (rs_cfg_build(in, n, &cfg))
				fail_msg("seed %llu iter %d: valid program without CFG",
					 (unsigned long long)seed, iter);
			assert_int_equal(rs_liveness(&cfg, in, &live), 0);
			free(live);
			rs_cfg_free(&cfg);
		} else if (rs_cfg_build(in, n, &cfg) == 0) {
			rs_cfg_free(&cfg);
		}
		rs_prog_free(&p);
	}
	fprintf(stderr, "%zu of 20000 garbage programs were valid\n", valid);
	assert_true(valid > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_btf_info),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
