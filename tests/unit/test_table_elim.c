// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_table_elim.c - the table_elim pass: empty key-stable maps answer "not found" without
 * the helper, small value-stable hash maps become a compare chain with the default "not
 * found" and values in the constant pool; refusals (incomplete snapshot, unstable map, value
 * pointer written, too many entries) leave the program alone.  Rewritten programs are
 * interpreted against the snapshot and must return what the original returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/mappass_testlib.h"

/* equivalent results, and the real lookup runs exactly for the present key `k` */
static void check_key_calls(struct tctx *t, uint32_t k)
{
	uint64_t in[] = { 0, 1, k - 1, k, k + 1, 0x80000000u, 0xffffffffu };
	size_t i, calls;

	t_check_equiv(t, in, RS_ARRAY_SIZE(in));
	for (i = 0; i < RS_ARRAY_SIZE(in); i++) {
		calls = 0;
		t_exec(t, &t->ctx.prog, in[i], &calls);
		assert_int_equal(calls, in[i] == k);
	}
}

static void test_empty(void **state)
{
	uint64_t in[] = { 0, 1, 42 };
	struct tctx t;
	size_t i;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_KEYS);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, false, false, 0);	/* key and pointer use do not matter */
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	assert_true(t.guarded[m]);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	/* the null check folded into a jump */
	for (i = 0; i < t.ctx.prog.insn_cnt; i++)
		assert_false(rs_insn_is_cond_jmp(&t.ctx.prog.insns[i]));
	t_free(&t);
}

/* LPM key {prefixlen 32, addr = r1} at fp-8 looked up in map 0 (call at insn 6); returns
 * *(u32 *)value or MISS_RET */
static void prog_lpm4(struct tctx *t)
{
	const struct bpf_insn in[] = {
		ST_MEM(BPF_W, 10, -8, 32),
		STX_MEM(BPF_W, 10, 1, -4),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -8),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		JMP_IMM(BPF_JNE, 0, 0, 2),
		MOV64_IMM(0, MISS_RET),
		EXIT(),
		LDX_MEM(BPF_W, 0, 0, 0),
		EXIT(),
	};

	t_set_insns(t, in, RS_ARRAY_SIZE(in));
}

static void test_empty_lpm(void **state)
{
	uint64_t inputs[] = { 5, 0x0a000001 };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_LPM_TRIE, 8, 4, 64, RS_MAP_STABLE_VALUES);
	prog_lpm4(&t);
	t_site(&t, 6, (uint32_t)m, true, true, -8);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	t_check_equiv(&t, inputs, RS_ARRAY_SIZE(inputs));
	t_free(&t);
}

static void test_refusals(void **state)
{
	uint32_t k = 3, v = 4;
	struct tctx t;
	int m;

	(void)state;
	/* incomplete snapshot: an empty read proves nothing */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	t.ms[m].complete = false;
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	assert_false(t.guarded[m]);
	t_free(&t);

	/* unstable (the program or another one writes it) */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_UNSTABLE);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_false(t.guarded[m]);
	t_free(&t);

	/* small table, but the value pointer is written through: membership tree only, the
	 * present key still does the real lookup (writes land in the map) */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, false, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	check_key_calls(&t, k);
	t_free(&t);

	/* small table of a key-stable map: values may change, same membership tree */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_KEYS);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	check_key_calls(&t, k);
	t_free(&t);

	/* a key the tree cannot load in 4-byte words (6 bytes): left alone */
	t_init(&t);
	t.opts.small_table_max = 0;
	m = t_map(&t, BPF_MAP_TYPE_HASH, 6, 4, 64, RS_MAP_STABLE_KEYS);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -8);
	{
		uint8_t k6[6] = { 1, 2, 3, 4, 5, 6 };

		t_entry(&t, m, k6, &v);
	}
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 0);
	t_free(&t);
}

/* a whole LPM trie as a decision tree: longest matches equal the original's on addresses
 * around every prefix boundary, and a shorter prefixlen in the key takes the real lookup */
static void test_lpm_tree(void **state)
{
	static const struct { uint8_t a[4]; uint32_t plen, v; } pfx[] = {
		{ { 10, 0, 0, 0 }, 8, 1 }, { { 10, 1, 0, 0 }, 16, 2 }, { { 10, 1, 2, 0 }, 24, 3 },
		{ { 192, 168, 0, 0 }, 16, 4 }, { { 255, 255, 255, 255 }, 32, 5 },
		{ { 10, 1, 3, 0 }, 24, 2 },	/* same answer as its parent: merges */
	};
	uint64_t inputs[64];
	size_t i, n = 0, calls;
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_LPM_TRIE, 8, 4, 64, RS_MAP_STABLE_VALUES);
	for (i = 0; i < RS_ARRAY_SIZE(pfx); i++) {
		uint8_t key[8];
		uint32_t first, last, host;

		memcpy(key, &pfx[i].plen, 4);
		memcpy(key + 4, pfx[i].a, 4);
		t_entry(&t, m, key, &pfx[i].v);
		/* addresses just around the prefix, as the u32 the program stores */
		host = (uint32_t)pfx[i].a[0] << 24 | pfx[i].a[1] << 16 | pfx[i].a[2] << 8 |
		       pfx[i].a[3];
		first = host;
		last = host | (pfx[i].plen == 32 ? 0 : 0xffffffffu >> pfx[i].plen);
		inputs[n++] = __builtin_bswap32(first - 1);
		inputs[n++] = __builtin_bswap32(first);
		inputs[n++] = __builtin_bswap32(last);
		inputs[n++] = __builtin_bswap32(last + 1);
	}
	inputs[n++] = 0;
	prog_lpm4(&t);
	t_site(&t, 6, (uint32_t)m, true, true, -8);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	assert_true(t.guarded[m]);
	t_check_equiv(&t, inputs, n);
	for (i = 0; i < n; i++) {	/* full-width keys never call the helper */
		calls = 0;
		t_exec(&t, &t.ctx.prog, inputs[i], &calls);
		assert_int_equal(calls, 0);
	}
	t_free(&t);
}

static void test_small(void **state)
{
	uint64_t in[] = { 1, 2, 3, 4, 5, 6, 0, 100, 0xffffffff };
	uint32_t k, v;
	struct tctx t;
	size_t i;
	int m, pool = -1;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	for (k = 1; k <= 5; k++) {
		v = 1000 + k;
		t_entry(&t, m, &k, &v);
	}
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	assert_true(t.guarded[m]);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	for (i = 0; i < t.ctx.prog.map_cnt; i++)
		if (t.ctx.prog.maps[i].init_value)
			pool = (int)i;
	assert_true(pool >= 0);
	assert_true(t.ctx.prog.maps[pool].value_size >= 5 * 4);
	t_free(&t);
}

static void test_too_big(void **state)
{
	uint32_t k, v = 1;
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	t.opts.small_table_max = 4;
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	for (k = 1; k <= 5; k++)
		t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_table_elim), 0);
	/* too big for a chain: a decision tree over the 5 keys, no lookup left */
	assert_int_equal(t_count_lookups(&t.ctx.prog), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	{
		uint64_t in[] = { 0, 1, 2, 3, 4, 5, 6, 100, 0x80000001u, 0xffffffffu };

		t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	}
	t_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_empty_lpm),
		cmocka_unit_test(test_lpm_tree),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_small),
		cmocka_unit_test(test_too_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
