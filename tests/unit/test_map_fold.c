// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_map_fold.c - the map_fold pass: ARRAY lookups with a constant key become a pool pointer
 * with the null check gone and loads turned into immediates (u32 as mov, u64 as ld_imm64),
 * out-of-range keys become NULL, direct value loads of stable maps fold; refusals: value
 * pointer written, map only key-stable or unstable, key not constant, per-CPU values that
 * differ.  The rewritten programs are interpreted against the snapshot and must return what
 * the originals return.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/mappass_testlib.h"

struct val {
	uint32_t a, b;
	uint64_t c;
};

/* key from `key_insns` (2 insns writing fp-4); returns a + b + c or MISS_RET; call at 6 */
static void prog_const(struct tctx *t, int map, struct bpf_insn k0, struct bpf_insn k1)
{
	const struct bpf_insn in[] = {
		k0,
		k1,
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -4),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, map), LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		JMP_IMM(BPF_JEQ, 0, 0, 7),
		MOV64_REG(6, 0),
		LDX_MEM(BPF_W, 1, 6, 0),
		LDX_MEM(BPF_W, 2, 0, 4),
		LDX_MEM(BPF_DW, 0, 6, 8),
		ALU64_REG(BPF_ADD, 0, 1),
		ALU64_REG(BPF_ADD, 0, 2),
		EXIT(),
		MOV64_IMM(0, MISS_RET),
		EXIT(),
	};

	t_set_insns(t, in, RS_ARRAY_SIZE(in));
}

static int setup_array(struct tctx *t, uint32_t type, enum rs_map_level level)
{
	struct val v;
	uint32_t k;
	int m;

	m = t_map(t, type, 4, sizeof(v), 4, level);
	for (k = 0; k < 4; k++) {
		v = (struct val){ .a = 10 + k, .b = 20 + k, .c = 0x1122334455667788ull + k };
		t_entry(t, m, &k, &v);
	}
	return m;
}

static size_t count_ldx(const struct rs_prog *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i]))
		n += BPF_CLASS(p->insns[i].code) == BPF_LDX;
	return n;
}

static void test_const_key(void **state)
{
	struct tctx t;
	uint64_t r;
	int m;

	(void)state;
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_VALUES);
	/* key through a register holding a constant */
	prog_const(&t, m, MOV64_IMM(3, 2), STX_MEM(BPF_W, 10, 3, -4));
	t_site(&t, 6, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	assert_true(t.guarded[m]);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	assert_int_equal(count_ldx(&t.ctx.prog), 0);	/* all three loads folded */
	r = t_exec(&t, &t.ctx.prog, 0, NULL);
	assert_int_equal(r, t_exec(&t, &t.orig, 0, NULL));
	assert_int_equal(r, 12 + 22 + 0x1122334455667788ull + 2);
	t_free(&t);
}

static void test_out_of_range(void **state)
{
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_VALUES);
	prog_const(&t, m, ST_MEM(BPF_W, 10, -4, 9), MOV64_IMM(0, 0));
	t_site(&t, 6, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0, NULL), MISS_RET);
	assert_int_equal(t_exec(&t, &t.orig, 0, NULL), MISS_RET);
	t_free(&t);
}

static void test_refusals(void **state)
{
	struct tctx t;
	int m;

	(void)state;
	/* value pointer written or escaping */
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_VALUES);
	prog_const(&t, m, ST_MEM(BPF_W, 10, -4, 1), MOV64_IMM(0, 0));
	t_site(&t, 6, (uint32_t)m, false, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	assert_false(t.guarded[m]);
	t_free(&t);

	/* only the key set is stable (e.g. mmap-able and not frozen, or written by a program) */
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_KEYS);
	prog_const(&t, m, ST_MEM(BPF_W, 10, -4, 1), MOV64_IMM(0, 0));
	t_site(&t, 6, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_false(t.guarded[m]);
	t_free(&t);

	/* key not a constant */
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_VALUES);
	prog_const(&t, m, STX_MEM(BPF_W, 10, 1, -4), MOV64_IMM(0, 0));
	t_site(&t, 6, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	t_free(&t);

	/* key overwritten through an unknown pointer after the constant store */
	t_init(&t);
	m = setup_array(&t, BPF_MAP_TYPE_ARRAY, RS_MAP_STABLE_VALUES);
	prog_const(&t, m, ST_MEM(BPF_W, 10, -4, 1), STX_MEM(BPF_W, 1, 1, 0));
	t_site(&t, 6, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	t_free(&t);
}

static void test_percpu(void **state)
{
	uint32_t k, v[4];
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 2, RS_MAP_STABLE_VALUES);
	t.ms[m].ncpus = 2;
	t.ms[m].value_stride = 16;
	for (k = 0; k < 2; k++) {
		v[0] = 5;
		v[2] = k ? 6 : 5;	/* entry 1 differs between CPUs */
		v[1] = v[3] = 0;
		t_entry(&t, m, &k, v);
	}
	{
		const struct bpf_insn in[] = {
			ST_MEM(BPF_W, 10, -4, 1),
			MOV64_REG(2, 10),
			ALU64_IMM(BPF_ADD, 2, -4),
			LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),
			CALL_HELPER(BPF_FUNC_map_lookup_elem),
			JMP_IMM(BPF_JEQ, 0, 0, 2),
			LDX_MEM(BPF_W, 0, 0, 0),
			EXIT(),
			MOV64_IMM(0, MISS_RET),
			EXIT(),
		};

		t_set_insns(&t, in, RS_ARRAY_SIZE(in));
	}
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	/* entry 0 is the same on every CPU: folds */
	t.orig.insns[0].imm = 0;
	rs_remarks_free(&t.remarks);
	rs_prog_free(&t.ctx.prog);
	free(t.ctx.orig_idx);
	free(t.ctx.orig_pos);
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0, NULL), 5);
	t_free(&t);
}

static void test_direct_value(void **state)
{
	const struct bpf_insn in[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(8),
		LDX_MEM(BPF_W, 0, 1, 4),
		LDX_MEM(BPF_B, 2, 1, 0),
		ALU64_REG(BPF_ADD, 0, 2),
		EXIT(),
	};
	uint8_t v[16];
	uint32_t k = 0, i;
	struct tctx t;
	int m;

	(void)state;
	for (i = 0; i < 16; i++)
		v[i] = (uint8_t)(i + 1);
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_ARRAY, 4, 16, 1, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &k, v);
	t_set_insns(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(count_ldx(&t.ctx.prog), 0);
	assert_true(t.guarded[m]);
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0, NULL), t_exec(&t, &t.orig, 0, NULL));
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0, NULL), 0x100f0e0d + 9);
	t_free(&t);

	/* not stable: untouched */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_ARRAY, 4, 16, 1, RS_MAP_UNSTABLE);
	t_entry(&t, m, &k, v);
	t_set_insns(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(t_run(&t, &rs_pass_map_fold), 0);
	assert_int_equal(count_ldx(&t.ctx.prog), 2);
	assert_false(t.guarded[m]);
	t_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_const_key),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_percpu),
		cmocka_unit_test(test_direct_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
