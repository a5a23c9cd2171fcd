// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_insn.c - single-instruction facts: classifiers, branch targets and their range checks,
 * def/use masks, opcode sanity, and the printer's golden strings (verifier syntax).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

#define R(n) ((rs_regmask_t)(1u << (n)))

static void test_classifiers(void **state)
{
	struct bpf_insn ld[2] = { LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0) };
	struct bpf_insn fn[2] = { LD_IMM64_LO(1, BPF_PSEUDO_FUNC, 3), LD_IMM64_HI(0) };
	struct bpf_insn plain[2] = { LD_IMM64_LO(1, 0, 3), LD_IMM64_HI(4) };
	struct bpf_insn jeq = JMP_IMM(BPF_JEQ, 1, 0, 2), ja = JA(3), gl = GOTOL(70000);
	struct bpf_insn call = CALL_HELPER(BPF_FUNC_map_lookup_elem), pc = CALL_PSEUDO(5);
	struct bpf_insn kf = I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 1234);
	struct bpf_insn tc = CALL_HELPER(BPF_FUNC_tail_call), ex = EXIT();
	struct bpf_insn mg = I(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, 4, 0);

	(void)state;
	assert_true(rs_insn_is_ldimm64(ld));
	assert_true(rs_insn_is_map_ref(ld));
	assert_false(rs_insn_is_map_ref(plain));
	assert_false(rs_insn_is_map_ref(fn));
	assert_true(rs_insn_is_pseudo_func(fn));
	assert_int_equal(rs_insn_width(ld), 2);
	assert_int_equal(rs_insn_width(&jeq), 1);

	assert_true(rs_insn_is_jmp(&jeq) && rs_insn_is_cond_jmp(&jeq));
	assert_false(rs_insn_is_uncond_jmp(&jeq));
	assert_true(rs_insn_is_jmp(&ja) && rs_insn_is_uncond_jmp(&ja));
	assert_true(rs_insn_is_uncond_jmp(&gl) && !rs_insn_is_cond_jmp(&gl));
	assert_int_equal(rs_insn_jmp_off(&gl), 70000);
	assert_true(rs_insn_is_cond_jmp(&mg));

	assert_false(rs_insn_is_jmp(&call));
	assert_true(rs_insn_is_call(&call) && rs_insn_is_helper_call(&call));
	assert_false(rs_insn_is_tail_call(&call));
	assert_true(rs_insn_is_tail_call(&tc));
	assert_true(rs_insn_is_pseudo_call(&pc) && !rs_insn_is_helper_call(&pc));
	assert_true(rs_insn_is_kfunc_call(&kf) && !rs_insn_is_pseudo_call(&kf));
	assert_true(rs_insn_is_exit(&ex) && !rs_insn_is_jmp(&ex));
}

static void test_targets(void **state)
{
	struct bpf_insn p[] = {
		JMP_IMM(BPF_JEQ, 1, 0, 2),	/* 0 -> 3 */
		JA(-2),				/* 1 -> 0 */
		GOTOL(1),			/* 2 -> 4 */
		CALL_PSEUDO(2),			/* 3 -> 6 */
		LD_IMM64_LO(2, BPF_PSEUDO_FUNC, 1), LD_IMM64_HI(0),	/* 4 -> 6 */
		EXIT(),
		MOV64_IMM(0, 1),
	};
	struct bpf_insn big[40000];

	(void)state;
	assert_int_equal(rs_insn_target(p, 0), 3);
	assert_int_equal(rs_insn_target(p, 1), 0);
	assert_int_equal(rs_insn_target(p, 2), 4);
	assert_int_equal(rs_insn_target(p, 3), 6);
	assert_int_equal(rs_insn_target(p, 4), 6);
	assert_int_equal(rs_insn_target(p, 6), -1);
	assert_int_equal(rs_insn_target(p, 7), -1);

	assert_int_equal(rs_insn_set_target(p, 0, 1), 0);
	assert_int_equal(p[0].off, 0);
	assert_int_equal(rs_insn_set_target(p, 4, 0), 0);
	assert_int_equal(p[4].imm, -5);
	assert_int_equal(rs_insn_set_target(p, 7, 0), -EINVAL);

	memset(big, 0, sizeof(big));
	big[0] = JA(0);
	assert_int_equal(rs_insn_set_target(big, 0, 32768), 0);
	assert_int_equal(big[0].off, 32767);
	assert_int_equal(rs_insn_set_target(big, 0, 32769), -RS_ERR_RANGE);
	assert_int_equal(big[0].off, 32767);		/* unchanged */
	big[39999] = JA(0);
	assert_int_equal(rs_insn_set_target(big, 39999, 39999 - 32767), 0);
	assert_int_equal(big[39999].off, -32768);
	assert_int_equal(rs_insn_set_target(big, 39999, 39999 - 32768), -RS_ERR_RANGE);
	big[0] = GOTOL(0);
	assert_int_equal(rs_insn_set_target(big, 0, 39999), 0);
	assert_int_equal(big[0].imm, 39998);
}

static void test_def_use(void **state)
{
	struct {
		struct bpf_insn i;
		rs_regmask_t uses, defs;
	} c[] = {
		{ MOV64_IMM(3, 1), 0, R(3) },
		{ MOV64_REG(3, 4), R(4), R(3) },
		{ ALU64_REG(BPF_ADD, 3, 4), R(3) | R(4), R(3) },
		{ ALU32_IMM(BPF_LSH, 2, 3), R(2), R(2) },
		{ I(BPF_ALU64 | BPF_NEG, 5, 0, 0, 0), R(5), R(5) },
		{ I(BPF_ALU | BPF_END | BPF_TO_BE, 5, 0, 0, 16), R(5), R(5) },
		{ LDX_MEM(BPF_W, 0, 1, 4), R(1), R(0) },
		{ ST_MEM(BPF_DW, 10, -8, 0), R(10), 0 },
		{ STX_MEM(BPF_DW, 10, 2, -8), R(10) | R(2), 0 },
		{ I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, 0, BPF_ADD), R(1) | R(2), 0 },
		{ I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, 0, BPF_ADD | BPF_FETCH), R(1) | R(2),
		  R(2) },
		{ I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, 0, BPF_CMPXCHG), R(0) | R(1) | R(2),
		  R(0) },
		{ I(BPF_LD | BPF_ABS | BPF_H, 0, 0, 0, 12), R(6), 0x3f },
		{ JMP_REG(BPF_JGT, 1, 2, 1), R(1) | R(2), 0 },
		{ JMP32_IMM(BPF_JEQ, 7, 0, 1), R(7), 0 },
		{ JA(1), 0, 0 },
		{ CALL_HELPER(1), 0x3e, 0x3f },
		{ CALL_PSEUDO(1), 0x3e, 0x3f },
		{ EXIT(), R(0), 0 },
	};
	struct bpf_insn ld[2] = { LD_IMM64_LO(7, 0, 1), LD_IMM64_HI(0) };
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(c); k++) {
		if (rs_insn_uses(&c[k].i) != c[k].uses || rs_insn_defs(&c[k].i) != c[k].defs)
			fail_msg("case %zu: uses 0x%x defs 0x%x, want 0x%x 0x%x", k,
				 rs_insn_uses(&c[k].i), rs_insn_defs(&c[k].i), c[k].uses,
				 c[k].defs);
	}
	assert_int_equal(rs_insn_uses(ld), 0);
	assert_int_equal(rs_insn_defs(ld), R(7));
}

static void test_check(void **state)
{
	struct bpf_insn good[] = {
		MOV64_IMM(0, 0), ALU64_REG(BPF_ADD, 1, 2), LDX_MEM(BPF_B, 1, 2, 3),
		I(BPF_LDX | BPF_MEMSX | BPF_H, 1, 2, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 32, 0),		/* movsx */
		I(BPF_ALU64 | BPF_DIV | BPF_X, 1, 2, 1, 0),		/* sdiv */
		I(BPF_ALU64 | BPF_END | BPF_K, 1, 0, 0, 64),		/* bswap64 */
		GOTOL(5), JMP32_IMM(BPF_JSLT, 1, -3, 2), EXIT(),
		I(BPF_STX | BPF_W | BPF_ATOMIC, 1, 2, 0, BPF_XCHG),
		I(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, 2, 0),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(16),
	};
	struct bpf_insn bad[] = {
		I(BPF_ALU64 | BPF_DIV | BPF_K, 1, 0, 0, 0),		/* div by 0 */
		I(BPF_ALU64 | BPF_LSH | BPF_K, 1, 0, 0, 64),		/* shift too far */
		I(BPF_ALU64 | BPF_ADD | BPF_K, 1, 3, 0, 1),		/* K with src_reg */
		I(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 32, 0),		/* movsx w from s32 */
		I(BPF_LDX | BPF_MEMSX | BPF_DW, 1, 2, 0, 0),
		I(BPF_STX | BPF_B | BPF_ATOMIC, 1, 2, 0, BPF_ADD),
		I(BPF_JMP32 | BPF_CALL, 0, 0, 0, 1),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 1),
		I(BPF_JMP | BPF_JA, 0, 0, 1, 5),			/* ja with imm */
		I(BPF_ALU64 | BPF_MOV | BPF_K, 11, 0, 0, 0),		/* r11 */
		I(0xf0 | BPF_ALU64, 1, 0, 0, 0),			/* no such op */
		LD_IMM64_LO(1, 0, 0),					/* truncated */
	};
	struct bpf_insn badhalf[2] = { LD_IMM64_LO(1, 0, 0), I(BPF_ALU64, 1, 0, 0, 0) };
	struct bpf_insn maphi[2] = { LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(4) };
	struct bpf_insn ksym[2] = { LD_IMM64_LO(1, BPF_PSEUDO_BTF_ID, 77), LD_IMM64_HI(5) };
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(good); k += rs_insn_width(&good[k]))
		if (rs_insn_check(good, RS_ARRAY_SIZE(good), k))
			fail_msg("good insn %zu rejected", k);
	for (k = 0; k < RS_ARRAY_SIZE(bad); k++)
		if (rs_insn_check(bad, RS_ARRAY_SIZE(bad), k) != -EINVAL)
			fail_msg("bad insn %zu accepted", k);
	assert_int_equal(rs_insn_check(badhalf, 2, 0), -EINVAL);
	assert_int_equal(rs_insn_check(maphi, 2, 0), -EINVAL);
	assert_int_equal(rs_insn_check(ksym, 2, 0), 0);
}

static void expect_print(const struct bpf_insn *insns, size_t cnt, size_t idx, const char *want)
{
	char buf[128];
	int n = rs_insn_snprint(buf, sizeof(buf), insns, cnt, idx);

	if (strcmp(buf, want))
		fail_msg("insn %zu: printed \"%s\", want \"%s\"", idx, buf, want);
	assert_int_equal(n, (int)strlen(want));
}

static void test_print(void **state)
{
	static const struct {
		struct bpf_insn i;
		const char *s;
	} c[] = {
		{ LDX_MEM(BPF_W, 0, 1, 4), "r0 = *(u32 *)(r1 +4)" },
		{ LDX_MEM(BPF_DW, 3, 10, -16), "r3 = *(u64 *)(r10 -16)" },
		{ I(BPF_LDX | BPF_MEMSX | BPF_B, 0, 1, 0, 0), "r0 = *(s8 *)(r1 +0)" },
		{ JMP_IMM(BPF_JGT, 1, 5, 3), "if r1 > 0x5 goto pc+3" },
		{ JMP_REG(BPF_JSGE, 1, 2, -4), "if r1 s>= r2 goto pc-4" },
		{ JMP32_IMM(BPF_JNE, 2, -1, 1), "if w2 != 0xffffffff goto pc+1" },
		{ I(BPF_JMP32 | BPF_JSET | BPF_X, 2, 3, 0, 0), "if w2 & w3 goto pc+0" },
		{ JA(-1), "goto pc-1" },
		{ GOTOL(70000), "gotol pc+70000" },
		{ I(BPF_JMP | BPF_JCOND, 0, BPF_MAY_GOTO, 7, 0), "may_goto pc+7" },
		{ CALL_HELPER(BPF_FUNC_map_lookup_elem), "call bpf_map_lookup_elem#1" },
		{ CALL_HELPER(BPF_FUNC_redirect_map), "call bpf_redirect_map#51" },
		{ CALL_HELPER(9999), "call unknown#9999" },
		{ CALL_PSEUDO(-7), "call pc-7" },
		{ I(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_KFUNC_CALL, 0, 77), "call kernel-function#77" },
		{ EXIT(), "exit" },
		{ MOV64_IMM(0, -2), "r0 = -2" },
		{ MOV64_REG(6, 1), "r6 = r1" },
		{ ALU32_IMM(BPF_ADD, 1, 7), "w1 += 7" },
		{ ALU32_REG(BPF_XOR, 1, 2), "w1 ^= w2" },
		{ ALU64_IMM(BPF_ARSH, 3, 2), "r3 s>>= 2" },
		{ I(BPF_ALU64 | BPF_NEG, 4, 0, 0, 0), "r4 = -r4" },
		{ I(BPF_ALU | BPF_NEG, 4, 0, 0, 0), "w4 = -w4" },
		{ I(BPF_ALU64 | BPF_DIV | BPF_X, 1, 2, 1, 0), "r1 s/= r2" },
		{ I(BPF_ALU | BPF_MOD | BPF_K, 1, 0, 1, 3), "w1 s%= 3" },
		{ I(BPF_ALU64 | BPF_MOD | BPF_K, 1, 0, 0, 3), "r1 %= 3" },
		{ I(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 16, 0), "r1 = (s16)r2" },
		{ I(BPF_ALU | BPF_MOV | BPF_X, 1, 2, 8, 0), "w1 = (s8)w2" },
		{ I(BPF_ALU64 | BPF_MOV | BPF_X, 0, 0, -1, 0), "r0 = &(void __percpu *)(r0)" },
		{ I(BPF_ALU64 | BPF_MOV | BPF_X, 1, 2, 1, 0x10002),
		  "r1 = addr_space_cast(r2, 1, 2)" },
		{ I(BPF_ALU | BPF_END | BPF_TO_BE, 1, 0, 0, 16), "r1 = be16 r1" },
		{ I(BPF_ALU | BPF_END | BPF_TO_LE, 1, 0, 0, 32), "r1 = le32 r1" },
		{ I(BPF_ALU64 | BPF_END, 1, 0, 0, 64), "r1 = bswap64 r1" },
		{ ST_MEM(BPF_H, 10, -2, 5), "*(u16 *)(r10 -2) = 5" },
		{ STX_MEM(BPF_B, 1, 2, 0), "*(u8 *)(r1 +0) = r2" },
		{ I(BPF_STX | BPF_W | BPF_ATOMIC, 1, 2, 4, BPF_ADD), "lock *(u32 *)(r1 +4) += r2" },
		{ I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, 0, BPF_OR | BPF_FETCH),
		  "r2 = atomic64_fetch_or((u64 *)(r1 +0), r2)" },
		{ I(BPF_STX | BPF_W | BPF_ATOMIC, 1, 2, 0, BPF_XCHG),
		  "r2 = atomic_xchg((u32 *)(r1 +0), r2)" },
		{ I(BPF_STX | BPF_DW | BPF_ATOMIC, 1, 2, -8, BPF_CMPXCHG),
		  "r0 = atomic64_cmpxchg((u64 *)(r1 -8), r0, r2)" },
		{ I(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 23), "r0 = *(u8 *)skb[23]" },
		{ I(BPF_LD | BPF_IND | BPF_W, 0, 3, 0, 4), "r0 = *(u32 *)skb[r3 + 4]" },
	};
	struct bpf_insn ld[] = {
		LD_IMM64_LO(1, 0, 0x5678), LD_IMM64_HI(0x1234),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 2), LD_IMM64_HI(0),
		LD_IMM64_LO(2, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(16),
		LD_IMM64_LO(3, BPF_PSEUDO_MAP_FD, 7), LD_IMM64_HI(0),
		LD_IMM64_LO(4, BPF_PSEUDO_FUNC, 3), LD_IMM64_HI(0),
	};
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(c); k++)
		expect_print(&c[k].i, 1, 0, c[k].s);
	expect_print(ld, 10, 0, "r1 = 0x123400005678");
	expect_print(ld, 10, 2, "r1 = map[idx:2]");
	expect_print(ld, 10, 4, "r2 = map[idx:0][0]+16");
	expect_print(ld, 10, 6, "r3 = map[fd:7]");
	expect_print(ld, 10, 8, "r4 = func pc+3");
}

static void test_helper_names(void **state)
{
	(void)state;
	assert_string_equal(rs_helper_name(BPF_FUNC_map_lookup_elem), "map_lookup_elem");
	assert_string_equal(rs_helper_name(BPF_FUNC_xdp_adjust_head), "xdp_adjust_head");
	assert_string_equal(rs_helper_name(BPF_FUNC_user_ringbuf_drain), "user_ringbuf_drain");
	assert_string_equal(rs_helper_name(211), "cgrp_storage_delete");
	assert_null(rs_helper_name(0));
	assert_null(rs_helper_name(-1));
	assert_null(rs_helper_name(100000));
}

static void test_prog_lifecycle(void **state)
{
	struct bpf_insn code[] = { MOV64_IMM(0, 2), EXIT() };
	struct rs_map_ref m = { .id = 9, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4 };
	struct rs_prog a, b;

	(void)state;
	rs_prog_init(&a);
	rs_prog_init(&b);
	assert_int_equal(rs_prog_set_insns(&a, code, 2), 0);
	assert_int_equal(rs_prog_add_map(&a, &m), 0);
	assert_int_equal(rs_prog_add_map(&a, &m), 1);
	strcpy(a.name, "xdp_pass");
	a.type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_prog_copy(&b, &a), 0);
	assert_ptr_not_equal(a.insns, b.insns);
	assert_memory_equal(a.insns, b.insns, sizeof(code));
	assert_int_equal(b.map_cnt, 2);
	assert_int_equal(b.maps[1].id, 9);
	assert_string_equal(b.name, "xdp_pass");
	rs_prog_free(&a);
	assert_null(a.insns);
	assert_int_equal(a.insn_cnt, 0);
	rs_prog_free(&b);
	rs_prog_free(&b);		/* idempotent */
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_XDP), "xdp");
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_SCHED_CLS), "sched_cls");
	assert_string_equal(rs_prog_type_name(12345), "unknown");
	assert_string_equal(rs_prog_source_name(RS_SRC_LIFT), "lift");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classifiers),
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_def_use),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_print),
		cmocka_unit_test(test_helper_names),
		cmocka_unit_test(test_prog_lifecycle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
