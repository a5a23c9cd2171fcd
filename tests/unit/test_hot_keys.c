// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_hot_keys.c - the hot_keys pass on hand-written lookup sites with fake snapshots and
 * profiles: where it inlines (hash with profile, LPM longest match, per-CPU identity, absent
 * keys of key-stable maps, long keys, small maps without a profile), where it must not
 * (unstable map, flat profile, present keys of a key-stable map, per-CPU values that differ),
 * and that the rewritten program returns what the original returns for hot, cold and absent
 * keys (interpreted against the snapshot), with the helper skipped on hits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/mappass_testlib.h"

/* LPM key {prefixlen 32, addr = r1 (4 bytes)} at fp-8; lookup at insn 6 */
static void prog_lpm4(struct tctx *t, int map)
{
	const struct bpf_insn in[] = {
		ST_MEM(BPF_W, 10, -8, 32),
		STX_MEM(BPF_W, 10, 1, -4),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -8),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, map), LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		JMP_IMM(BPF_JEQ, 0, 0, 2),
		LDX_MEM(BPF_W, 0, 0, 0),
		EXIT(),
		MOV64_IMM(0, MISS_RET),
		EXIT(),
	};

	t_set_insns(t, in, RS_ARRAY_SIZE(in));
}

static uint32_t val32(uint32_t v)
{
	return v;
}

static uint64_t lookups_for(struct tctx *t, uint64_t input)
{
	uint64_t n = 0;

	t_exec(t, &t->ctx.prog, input, &n);
	return n;
}

static int pool_idx(const struct rs_prog *p)
{
	size_t i;

	for (i = 0; i < p->map_cnt; i++)
		if (!p->maps[i].id && p->maps[i].init_value)
			return (int)i;
	return -1;
}

static void test_hash_profile(void **state)
{
	uint32_t keys[] = { 7, 3, 999, 5 }, k, v;
	uint64_t counts[] = { 500, 300, 100, 2 };
	uint64_t in[] = { 7, 3, 999, 5, 1, 50, 1234 };
	struct tctx t;
	int m, pi;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	for (k = 1; k <= 50; k++) {
		v = val32(k * 10);
		t_entry(&t, m, &k, &v);
	}
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	t_prof(&t, 5, (uint32_t)m, keys, counts, 4, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_true(t.guarded[m]);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	assert_int_equal(t_count_lookups(&t.ctx.prog), 1);	/* the default path */
	pi = pool_idx(&t.ctx.prog);
	assert_true(pi >= 0);
	assert_int_equal(t.ctx.prog.maps[pi].type, BPF_MAP_TYPE_ARRAY);
	assert_int_equal(t.ctx.prog.maps[pi].max_entries, 1);
	assert_true(t.ctx.prog.maps[pi].flags & BPF_F_RDONLY_PROG);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(lookups_for(&t, 7), 0);
	assert_int_equal(lookups_for(&t, 3), 0);
	assert_int_equal(lookups_for(&t, 999), 0);	/* absent, complete snapshot */
	assert_int_equal(lookups_for(&t, 5), 1);	/* below min_hot_share */
	assert_int_equal(lookups_for(&t, 1), 1);
	/* most frequent first: the first compare is against 7 */
	{
		const struct bpf_insn *p = t.ctx.prog.insns;
		size_t i;

		for (i = 0; i < t.ctx.prog.insn_cnt && !rs_insn_is_cond_jmp(&p[i]); i++)
			;
		assert_true(i < t.ctx.prog.insn_cnt);
		assert_int_equal(p[i].imm, 7);
	}
	t_free(&t);
}

static void test_lpm_longest_match(void **state)
{
	struct { uint32_t plen; uint8_t a[4]; } e[] = {
		{ 8, { 10, 0, 0, 0 } }, { 16, { 10, 1, 0, 0 } }, { 24, { 10, 1, 2, 0 } },
	}, hot[3] = {
		{ 32, { 10, 1, 2, 5 } }, { 32, { 10, 9, 9, 9 } }, { 32, { 11, 0, 0, 1 } },
	};
	uint64_t counts[] = { 400, 300, 200 };
	uint32_t vals[] = { 1, 2, 3 }, i;
	uint64_t in[] = { 0x0502010a, 0x0909090a, 0x0100000b, 0x0700010a, 0x0102030a, 0,
			  0x4d02010a, 0x0809090a, 0x0001010a, 0xff02010a, 0x0505050b, 0x0100000c };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_LPM_TRIE, 8, 4, 64, RS_MAP_STABLE_VALUES);
	for (i = 0; i < 3; i++)
		t_entry(&t, m, &e[i], &vals[i]);
	prog_lpm4(&t, m);
	t_site(&t, 6, (uint32_t)m, true, true, -8);
	t_prof(&t, 6, (uint32_t)m, hot, counts, 3, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0x0502010a, NULL), 3);	/* /24 wins */
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0x0909090a, NULL), 1);	/* /8 */
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0x0100000b, NULL), MISS_RET);
	assert_int_equal(lookups_for(&t, 0x0502010a), 0);
	assert_int_equal(lookups_for(&t, 0x0100000b), 0);
	assert_int_equal(lookups_for(&t, 0x0700010a), 1);
	/* 10.1.2.0/24 is a leaf: any address in it is answered by the prefix compare */
	assert_int_equal(lookups_for(&t, 0x4d02010a), 0);
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0x4d02010a, NULL), 3);
	/* 10.0.0.0/8 is not (10.1.0.0/16 lies inside): only the exact hot key */
	assert_int_equal(lookups_for(&t, 0x0809090a), 1);
	/* 11.0.0.1 matches nothing: 11.0.0.0/8 overlaps no entry, all of it is absent */
	assert_int_equal(lookups_for(&t, 0x0505050b), 0);
	assert_int_equal(t_exec(&t, &t.ctx.prog, 0x0505050b, NULL), MISS_RET);
	t_free(&t);
}

static void test_lpm_incomplete_refused(void **state)
{
	struct { uint32_t plen; uint8_t a[4]; } e = { 8, { 10, 0, 0, 0 } },
		hot = { 32, { 10, 1, 2, 5 } };
	uint64_t counts[] = { 900 };
	uint32_t v = 1;
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_LPM_TRIE, 8, 4, 64, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &e, &v);
	t.ms[m].complete = false;
	prog_lpm4(&t, m);
	t_site(&t, 6, (uint32_t)m, true, true, -8);
	t_prof(&t, 6, (uint32_t)m, &hot, counts, 1, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	assert_int_equal(t.ctx.prog.insn_cnt, t.orig.insn_cnt);
	assert_false(t.guarded[m]);
	t_free(&t);
}

static void test_stable_keys_absent_only(void **state)
{
	uint32_t keys[] = { 7, 999 }, k, v;
	uint64_t counts[] = { 600, 300 };
	uint64_t in[] = { 7, 999, 8 };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_KEYS);
	for (k = 1; k <= 20; k++) {
		v = k;
		t_entry(&t, m, &k, &v);
	}
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	t_prof(&t, 5, (uint32_t)m, keys, counts, 2, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(lookups_for(&t, 7), 1);	/* present: the real lookup */
	assert_int_equal(lookups_for(&t, 999), 0);	/* absent: skipped */
	assert_int_equal(pool_idx(&t.ctx.prog), -1);	/* no values inlined */
	t_free(&t);
}

static void test_written_site_absent_only(void **state)
{
	uint32_t keys[] = { 7, 999 }, k = 7, v = 70;
	uint64_t counts[] = { 600, 300 };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 64, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, false, true, -4);	/* pointer written / escapes */
	t_prof(&t, 5, (uint32_t)m, keys, counts, 2, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(lookups_for(&t, 7), 1);
	assert_int_equal(lookups_for(&t, 999), 0);
	assert_int_equal(pool_idx(&t.ctx.prog), -1);
	t_free(&t);
}

static void test_unstable_and_flat(void **state)
{
	uint32_t keys[100], k, v = 1;
	uint64_t counts[100];
	struct tctx t;
	int m;

	(void)state;
	for (k = 0; k < 100; k++) {
		keys[k] = k;
		counts[k] = 5;		/* 0.5% each: below min_hot_share */
	}
	/* flat traffic: no hot keys, nothing changes */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 128, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	t_prof(&t, 5, (uint32_t)m, keys, counts, 100, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	assert_memory_equal(t.ctx.prog.insns, t.orig.insns, t.orig.insn_cnt * sizeof(struct bpf_insn));
	t_free(&t);

	/* unstable map: never touched, even with a hot key */
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 128, RS_MAP_UNSTABLE);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	counts[0] = 990;
	t_prof(&t, 5, (uint32_t)m, keys, counts, 1, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 0);
	assert_false(t.guarded[m]);
	assert_int_equal(t.ctx.prog.insn_cnt, t.orig.insn_cnt);
	t_free(&t);
}

static void test_percpu_identity(void **state)
{
	uint32_t keys[] = { 7, 8 }, k;
	uint64_t counts[] = { 500, 400 };
	uint64_t in[] = { 7, 8, 9 };
	uint32_t v7[4] = { 70, 0, 71, 0 }, v8[4] = { 80, 0, 80, 0 };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_PERCPU_HASH, 4, 4, 16, RS_MAP_STABLE_VALUES);
	t.ms[m].ncpus = 2;
	t.ms[m].value_stride = 16;
	k = 7;
	t_entry(&t, m, &k, v7);
	k = 8;
	t_entry(&t, m, &k, v8);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	t_prof(&t, 5, (uint32_t)m, keys, counts, 2, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(lookups_for(&t, 7), 1);	/* CPUs differ: not inlined */
	assert_int_equal(lookups_for(&t, 8), 0);
	t_free(&t);
}

/* 20-byte key (address 16 + port 2 + proto 1 + pad 1) at fp-24: 8/8/4-byte chunks */
static void test_long_key(void **state)
{
	const struct bpf_insn prog[] = {
		STX_MEM(BPF_DW, 10, 1, -24),
		ST_MEM(BPF_DW, 10, -16, 0),
		ST_MEM(BPF_W, 10, -8, 0x00065000),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -24),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		JMP_IMM(BPF_JEQ, 0, 0, 2),
		LDX_MEM(BPF_W, 0, 0, 4),
		EXIT(),
		MOV64_IMM(0, MISS_RET),
		EXIT(),
	};
	uint8_t key[3][20] = {}, hot[2][20];
	uint64_t counts[] = { 700, 200 };
	uint64_t in[] = { 0x1122334455667788ull, 0xa0b0c0d0e0f00102ull, 0x99, 0x1122334455667789ull };
	uint32_t val[2], i;
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 20, 8, 16, RS_MAP_STABLE_VALUES);
	for (i = 0; i < 3; i++) {
		uint64_t a = in[i];

		memcpy(key[i], &a, 8);
		key[i][16] = 0x00;
		key[i][17] = 0x50;
		key[i][18] = 0x06;
		val[0] = i;
		val[1] = 1000 + i;
		t_entry(&t, m, key[i], val);
	}
	memcpy(hot[0], key[1], 20);
	memcpy(hot[1], key[0], 20);
	t_set_insns(&t, prog, RS_ARRAY_SIZE(prog));
	t_site(&t, 7, (uint32_t)m, true, true, -24);
	t_prof(&t, 7, (uint32_t)m, hot, counts, 2, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(t_exec(&t, &t.ctx.prog, in[1], NULL), 1001);
	assert_int_equal(lookups_for(&t, in[0]), 0);
	assert_int_equal(lookups_for(&t, in[1]), 0);
	assert_int_equal(lookups_for(&t, in[2]), 1);
	assert_int_equal(lookups_for(&t, in[3]), 1);	/* differs in the last byte only */
	t_free(&t);
}

static void test_small_map_without_profile(void **state)
{
	uint64_t in[] = { 1, 2, 3, 4, 77 };
	uint32_t k, v;
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 16, RS_MAP_STABLE_VALUES);
	for (k = 1; k <= 3; k++) {
		v = k + 100;
		t_entry(&t, m, &k, &v);
	}
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, true, -4);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 1);
	t_check_equiv(&t, in, RS_ARRAY_SIZE(in));
	assert_int_equal(lookups_for(&t, 2), 0);
	assert_int_equal(lookups_for(&t, 77), 1);	/* default: the original lookup */
	t_free(&t);
}

static void test_key_unknown(void **state)
{
	uint32_t k = 1, v = 2;
	uint64_t counts[] = { 900 };
	struct tctx t;
	int m;

	(void)state;
	t_init(&t);
	m = t_map(&t, BPF_MAP_TYPE_HASH, 4, 4, 16, RS_MAP_STABLE_VALUES);
	t_entry(&t, m, &k, &v);
	t_prog_u32(&t, m);
	t_site(&t, 5, (uint32_t)m, true, false, 0);
	t_prof(&t, 5, (uint32_t)m, &k, counts, 1, 1000);
	assert_int_equal(t_run(&t, &rs_pass_hot_keys), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	t_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_profile),
		cmocka_unit_test(test_lpm_longest_match),
		cmocka_unit_test(test_lpm_incomplete_refused),
		cmocka_unit_test(test_stable_keys_absent_only),
		cmocka_unit_test(test_written_site_absent_only),
		cmocka_unit_test(test_unstable_and_flat),
		cmocka_unit_test(test_percpu_identity),
		cmocka_unit_test(test_long_key),
		cmocka_unit_test(test_small_map_without_profile),
		cmocka_unit_test(test_key_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
