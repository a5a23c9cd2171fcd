// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_analysis.c - soundness facts on hand-written programs: read-only lookup sites, stores
 * through value pointers (direct, via copies, via stack spills), escapes to helpers and
 * subprograms, update helpers (hash vs array), snapshot facts (watched, ext writers,
 * mmap-able), map types that are never specialized, and rs_prog_map_writes().
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "optimizer/pass.h"
#include "tests/unit/ir_testlib.h"

#define LD_MAP(D, IDX) LD_IMM64_LO(D, BPF_PSEUDO_MAP_IDX, IDX), LD_IMM64_HI(0)

static void mkprog(struct rs_prog *p, const struct bpf_insn *in, size_t n, uint32_t type,
		   uint32_t nmaps)
{
	uint32_t k;

	rs_prog_init(p);
	p->type = BPF_PROG_TYPE_XDP;
	strcpy(p->name, "t");
	assert_int_equal(rs_prog_set_insns(p, in, n), 0);
	for (k = 0; k < nmaps; k++) {
		struct rs_map_ref m = { .id = 10 + k, .type = type, .key_size = 4,
					.value_size = 8, .max_entries = 4 };

		snprintf(m.name, sizeof(m.name), "m%u", k);
		assert_int_equal(rs_prog_add_map(p, &m), (int)k);
	}
	assert_int_equal(rs_prog_validate(p, NULL, 0), 0);
}

static void mksnap(struct rs_snapshot *s, const struct rs_prog *p, bool watched, uint32_t ext)
{
	size_t k;

	s->map_cnt = p->map_cnt;
	s->maps = calloc(p->map_cnt, sizeof(*s->maps));
	assert_non_null(s->maps);
	for (k = 0; k < p->map_cnt; k++) {
		s->maps[k].map_idx = (uint32_t)k;
		s->maps[k].type = p->maps[k].type;
		s->maps[k].key_size = 4;
		s->maps[k].value_size = 8;
		s->maps[k].value_stride = 8;
		s->maps[k].watched = watched;
		s->maps[k].guard_slot = (uint32_t)k;
		s->maps[k].ext_writers = ext;
		s->maps[k].complete = true;
		s->maps[k].ncpus = 1;
	}
}

struct facts {
	struct rs_map_fact *mf;
	size_t mfc;
	struct rs_site_fact *sf;
	size_t sfc;
};

static void analyze(const struct rs_prog *p, const struct rs_snapshot *s, struct facts *f)
{
	assert_int_equal(rs_analyze(p, s, &f->mf, &f->mfc, &f->sf, &f->sfc), 0);
	assert_int_equal(f->mfc, p->map_cnt);
}

static void facts_free(struct facts *f)
{
	free(f->mf);
	free(f->sf);
}

/* lookup m0[key at fp-4]; value read; `body` replaces insns 7..8 */
#define LOOKUP_HEAD							\
	LD_MAP(1, 0),				/* 0-1 */		\
	ST_MEM(BPF_W, RS_REG_FP, -4, 0),	/* 2 */			\
	MOV64_REG(2, RS_REG_FP),		/* 3 */			\
	ALU64_IMM(BPF_ADD, 2, -4),		/* 4 */			\
	CALL_HELPER(BPF_FUNC_map_lookup_elem),	/* 5 */			\
	JMP_IMM(BPF_JEQ, 0, 0, 2)		/* 6 -> 9 */

static void test_read_only(void **state)
{
	struct bpf_insn in[] = {
		LOOKUP_HEAD,
		LDX_MEM(BPF_W, 0, 0, 0),		/* 7 */
		EXIT(),					/* 8 */
		MOV64_IMM(0, 0),			/* 9 */
		EXIT(),					/* 10 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.sfc, 1);
	assert_int_equal(f.sf[0].insn, 5);
	assert_int_equal(f.sf[0].map_idx, 0);
	assert_true(f.sf[0].value_read_only);
	assert_true(f.sf[0].key_known);
	assert_int_equal(f.sf[0].key_fp_off, -4);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	facts_free(&f);

	/* not watched: nothing may be assumed; another program's stores: keys only */
	s.maps[0].watched = false;
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
	assert_non_null(strstr(f.mf[0].reason, "watched"));
	facts_free(&f);
	s.maps[0].watched = true;
	s.maps[0].ext_writers = RS_EXT_STORES;
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_KEYS);
	facts_free(&f);
	s.maps[0].ext_writers = RS_EXT_UPDATES;
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
	facts_free(&f);
	s.maps[0].ext_writers = RS_EXT_UNKNOWN;
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
	facts_free(&f);
	/* no snapshot at all */
	analyze(&p, NULL, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
	facts_free(&f);
	assert_int_equal(rs_prog_map_writes(&p, 0), 0);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

static void expect_written(const struct bpf_insn *in, size_t n, const char *why)
{
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	mkprog(&p, in, n, BPF_MAP_TYPE_HASH, 2);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_true(f.sfc >= 1);
	assert_int_equal(f.sf[0].insn, 5);
	assert_false(f.sf[0].value_read_only);
	if (!strstr(f.sf[0].reason, why))
		fail_msg("reason '%s' lacks '%s'", f.sf[0].reason, why);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_KEYS);
	assert_int_equal(f.mf[1].level, RS_MAP_STABLE_VALUES);
	assert_int_equal(rs_prog_map_writes(&p, 0), RS_EXT_STORES);
	assert_int_equal(rs_prog_map_writes(&p, 1), 0);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

static void test_store_direct_and_copy(void **state)
{
	struct bpf_insn direct[] = {
		LOOKUP_HEAD,
		ST_MEM(BPF_W, 0, 0, 1),			/* 7: *(u32 *)(r0 +0) = 1 */
		EXIT(),
		MOV64_IMM(0, 0),
		EXIT(),
	};
	struct bpf_insn copy[] = {
		LOOKUP_HEAD,
		MOV64_REG(6, 0),			/* 7 */
		ALU64_IMM(BPF_ADD, 6, 4),		/* 8 */
		I(BPF_STX | BPF_W | BPF_ATOMIC, 6, 7, 0, BPF_ADD),	/* 9: lock add */
		MOV64_IMM(0, 0),			/* 10 */
		EXIT(),					/* 11 */
	};

	(void)state;
	expect_written(direct, RS_ARRAY_SIZE(direct), "store through the value at insn 7");
	copy[6].off = 3;	/* null -> 10 */
	expect_written(copy, RS_ARRAY_SIZE(copy), "store through the value at insn 9");
}

static void test_spill_fill(void **state)
{
	struct bpf_insn in[] = {
		LOOKUP_HEAD,
		STX_MEM(BPF_DW, RS_REG_FP, 0, -16),	/* 7: spill */
		MOV64_IMM(0, 0),			/* 8 */
		LDX_MEM(BPF_DW, 3, RS_REG_FP, -16),	/* 9: fill */
		STX_MEM(BPF_W, 3, 0, 0),		/* 10: store through the fill */
		EXIT(),					/* 11 */
		MOV64_IMM(0, 0),			/* 12 */
		EXIT(),					/* 13 */
	};
	struct bpf_insn overwritten[RS_ARRAY_SIZE(in)];
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	in[6].off = 5;
	expect_written(in, RS_ARRAY_SIZE(in), "insn 10");

	/* slot overwritten with a scalar before the fill: read only */
	memcpy(overwritten, in, sizeof(in));
	overwritten[8] = ST_MEM(BPF_DW, RS_REG_FP, -16, 0);
	overwritten[10] = LDX_MEM(BPF_W, 0, 3, 0);
	mkprog(&p, overwritten, RS_ARRAY_SIZE(overwritten), BPF_MAP_TYPE_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_true(f.sf[0].value_read_only);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

/* a spilled value with its stack handed to a helper: bytes only, unless the helper runs code */
static void test_spill_and_stack_args(void **state)
{
	struct bpf_insn in[] = {
		LOOKUP_HEAD,
		STX_MEM(BPF_DW, RS_REG_FP, 0, -16),	/* 7: spill */
		MOV64_IMM(1, 4),			/* 8 */
		MOV64_REG(2, RS_REG_FP),		/* 9 */
		ALU64_IMM(BPF_ADD, 2, -16),		/* 10: r2 = the spill's address */
		MOV64_IMM(3, 0),			/* 11 */
		MOV64_IMM(4, 0),			/* 12 */
		CALL_HELPER(BPF_FUNC_ktime_get_ns),	/* 13: replaced below */
		MOV64_IMM(0, 0),			/* 14 */
		EXIT(),					/* 15 */
		MOV64_IMM(0, 0),			/* 16 */
		EXIT(),					/* 17 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	in[6].off = 9;
	in[13] = CALL_HELPER(BPF_FUNC_csum_diff);	/* reads the bytes */
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_true(f.sf[0].value_read_only);
	facts_free(&f);
	rs_prog_free(&p);
	in[13] = CALL_HELPER(BPF_FUNC_loop);		/* callback ctx: code can use it */
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	analyze(&p, &s, &f);
	assert_false(f.sf[0].value_read_only);
	assert_non_null(strstr(f.sf[0].reason, "callback helper at insn 13"));
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

static void test_escapes(void **state)
{
	struct bpf_insn helper[] = {
		LOOKUP_HEAD,
		MOV64_REG(3, 0),			/* 7 */
		MOV64_IMM(1, 0),			/* 8 */
		MOV64_IMM(2, 0),			/* 9 */
		MOV64_IMM(4, 0),			/* 10 */
		MOV64_IMM(5, 0),			/* 11 */
		CALL_HELPER(BPF_FUNC_csum_diff),	/* 12 */
		EXIT(),					/* 13 */
		MOV64_IMM(0, 0),			/* 14 */
		EXIT(),					/* 15 */
	};
	struct bpf_insn memory[] = {
		LOOKUP_HEAD,
		STX_MEM(BPF_DW, RS_REG_FP, 0, -12),	/* 7: misaligned: not a spill */
		MOV64_IMM(0, 0),
		EXIT(),
		MOV64_IMM(0, 0),
		EXIT(),
	};
	struct bpf_insn subprog[] = {
		LOOKUP_HEAD,
		MOV64_REG(1, 0),			/* 7 */
		CALL_PSEUDO(3),				/* 8 -> 12 */
		EXIT(),					/* 9 */
		MOV64_IMM(0, 0),			/* 10 */
		EXIT(),					/* 11 */
		LDX_MEM(BPF_W, 0, 1, 0),		/* 12: reads r1 */
		EXIT(),					/* 13 */
	};
	/* the value as the key of another lookup and a call with no arguments: read only */
	struct bpf_insn ok[] = {
		LOOKUP_HEAD,
		MOV64_REG(2, 0),			/* 7 */
		LD_MAP(1, 1),				/* 8-9 */
		CALL_HELPER(BPF_FUNC_map_lookup_elem),	/* 10 */
		MOV64_REG(1, 0),			/* 11: stale copy in r1.. */
		CALL_HELPER(BPF_FUNC_ktime_get_ns),	/* 12: ..of no interest */
		EXIT(),					/* 13 */
		MOV64_IMM(0, 0),			/* 14 */
		EXIT(),					/* 15 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	helper[6].off = 7;
	expect_written(helper, RS_ARRAY_SIZE(helper), "passed to a helper at insn 12");
	expect_written(memory, RS_ARRAY_SIZE(memory), "stored to memory at insn 7");
	expect_written(subprog, RS_ARRAY_SIZE(subprog), "passed to a subprogram at insn 8");

	ok[6].off = 7;
	mkprog(&p, ok, RS_ARRAY_SIZE(ok), BPF_MAP_TYPE_HASH, 2);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.sfc, 2);
	assert_true(f.sf[0].value_read_only);
	assert_int_equal(f.sf[1].insn, 10);
	assert_int_equal(f.sf[1].map_idx, 1);
	assert_false(f.sf[1].key_known);	/* key is a map value, not the stack */
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

static void test_update_helpers(void **state)
{
	struct bpf_insn in[] = {
		LD_MAP(1, 0),				/* 0-1 */
		ST_MEM(BPF_W, RS_REG_FP, -4, 0),	/* 2 */
		MOV64_REG(2, RS_REG_FP),		/* 3 */
		ALU64_IMM(BPF_ADD, 2, -4),		/* 4 */
		MOV64_REG(3, 2),			/* 5 */
		MOV64_IMM(4, 0),			/* 6 */
		CALL_HELPER(BPF_FUNC_map_update_elem),	/* 7 */
		MOV64_IMM(0, 2),			/* 8 */
		EXIT(),					/* 9 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.sfc, 0);
	assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
	assert_non_null(strstr(f.mf[0].reason, "insn 7"));
	assert_int_equal(rs_prog_map_writes(&p, 0), RS_EXT_UPDATES);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);

	/* arrays keep their keys */
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_ARRAY, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_KEYS);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);

	/* unknown map in r1 (joined from two maps): counts against every map */
	{
		struct bpf_insn j[] = {
			LD_MAP(1, 0),				/* 0-1 */
			JMP_IMM(BPF_JEQ, 6, 0, 2),		/* 2 -> 5 */
			LD_MAP(1, 1),				/* 3-4 */
			ST_MEM(BPF_W, RS_REG_FP, -4, 0),	/* 5 */
			MOV64_REG(2, RS_REG_FP),		/* 6 */
			ALU64_IMM(BPF_ADD, 2, -4),		/* 7 */
			CALL_HELPER(BPF_FUNC_map_delete_elem),	/* 8 */
			EXIT(),					/* 9 */
		};

		mkprog(&p, j, RS_ARRAY_SIZE(j), BPF_MAP_TYPE_HASH, 2);
		mksnap(&s, &p, true, 0);
		analyze(&p, &s, &f);
		assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
		assert_int_equal(f.mf[1].level, RS_MAP_UNSTABLE);
		assert_non_null(strstr(f.mf[1].reason, "unknown map"));
		facts_free(&f);
		rs_snapshot_free(&s);
		rs_prog_free(&p);
	}
}

static void test_map_types_and_mmap(void **state)
{
	struct bpf_insn in[] = {
		LOOKUP_HEAD,
		LDX_MEM(BPF_W, 0, 0, 0),
		EXIT(),
		MOV64_IMM(0, 0),
		EXIT(),
	};
	static const uint32_t never[] = { BPF_MAP_TYPE_PROG_ARRAY, BPF_MAP_TYPE_DEVMAP,
					  BPF_MAP_TYPE_ARRAY_OF_MAPS, BPF_MAP_TYPE_RINGBUF };
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(never); k++) {
		mkprog(&p, in, RS_ARRAY_SIZE(in), never[k], 1);
		mksnap(&s, &p, true, 0);
		analyze(&p, &s, &f);
		assert_int_equal(f.mf[0].level, RS_MAP_UNSTABLE);
		facts_free(&f);
		rs_snapshot_free(&s);
		rs_prog_free(&p);
	}
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_ARRAY, 1);
	mksnap(&s, &p, true, 0);
	s.maps[0].map_flags = 1u << 10;		/* BPF_F_MMAPABLE */
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_KEYS);
	assert_non_null(strstr(f.mf[0].reason, "mmap"));
	facts_free(&f);
	s.maps[0].frozen = true;
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);

	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_PERCPU_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	assert_non_null(strstr(f.mf[0].reason, "per-CPU"));
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

/* global data: stores through a direct value pointer write the map */
static void test_direct_values(void **state)
{
	struct bpf_insn in[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(8),	/* 0-1 */
		LDX_MEM(BPF_DW, 0, 1, 0),					/* 2 */
		MOV64_REG(3, 1),						/* 3 */
		ALU64_IMM(BPF_ADD, 3, 8),					/* 4 */
		MOV64_IMM(2, 1),						/* 5 */
		MOV64_IMM(0, 0),						/* 6: replaced */
		EXIT(),								/* 7 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_ARRAY, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.sfc, 0);			/* no lookup sites */
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_VALUES);
	facts_free(&f);
	rs_prog_free(&p);
	in[6] = I(BPF_STX | BPF_DW | BPF_ATOMIC, 3, 2, 0, BPF_ADD);	/* lock *(r3) += r2 */
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_ARRAY, 1);
	analyze(&p, &s, &f);
	assert_int_equal(f.mf[0].level, RS_MAP_STABLE_KEYS);
	assert_non_null(strstr(f.mf[0].reason, "direct value at insn 0"));
	assert_int_equal(rs_prog_map_writes(&p, 0), RS_EXT_STORES);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

/* key bytes must be written on every path to be "known" */
static void test_key_known_paths(void **state)
{
	struct bpf_insn in[] = {
		JMP_IMM(BPF_JEQ, 1, 0, 1),		/* 0 -> 2 */
		ST_MEM(BPF_W, RS_REG_FP, -8, 7),	/* 1: only on one path */
		LD_MAP(1, 0),				/* 2-3 */
		MOV64_REG(2, RS_REG_FP),		/* 4 */
		ALU64_IMM(BPF_ADD, 2, -8),		/* 5 */
		CALL_HELPER(BPF_FUNC_map_lookup_elem),	/* 6 */
		MOV64_IMM(0, 0),			/* 7 */
		EXIT(),					/* 8 */
	};
	struct rs_snapshot s;
	struct rs_prog p;
	struct facts f;

	(void)state;
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	mksnap(&s, &p, true, 0);
	analyze(&p, &s, &f);
	assert_int_equal(f.sfc, 1);
	assert_false(f.sf[0].key_known);
	facts_free(&f);
	rs_prog_free(&p);
	in[0] = MOV64_IMM(3, 0);		/* both paths write it now */
	mkprog(&p, in, RS_ARRAY_SIZE(in), BPF_MAP_TYPE_HASH, 1);
	analyze(&p, &s, &f);
	assert_true(f.sf[0].key_known);
	assert_int_equal(f.sf[0].key_fp_off, -8);
	facts_free(&f);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_only),
		cmocka_unit_test(test_store_direct_and_copy),
		cmocka_unit_test(test_spill_fill),
		cmocka_unit_test(test_spill_and_stack_args),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_update_helpers),
		cmocka_unit_test(test_map_types_and_mmap),
		cmocka_unit_test(test_key_known_paths),
		cmocka_unit_test(test_direct_values),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
