// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_prog.c - struct rs_prog life cycle: deep copies of every array, self copy, replacing
 * instructions, map references, type and source names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

static void test_deep_copy(void **state)
{
	struct rs_gen_opts o = { .subprogs = 3, .body = 20, .maps = 2 };
	struct rs_prog a, b;

	(void)state;
	rs_test_seed(5);
	rs_prog_init(&a);
	rs_prog_init(&b);
	assert_int_equal(rs_gen_prog(&a, &o), 0);
	a.id = 42;
	a.prog_flags = BPF_F_XDP_HAS_FRAGS;
	a.source = RS_SRC_CAPTURE;
	memset(a.tag, 0xab, sizeof(a.tag));
	assert_int_equal(rs_prog_copy(&b, &a), 0);
	assert_int_equal(b.id, 42);
	assert_int_equal(b.prog_flags, BPF_F_XDP_HAS_FRAGS);
	assert_int_equal(b.source, RS_SRC_CAPTURE);
	assert_memory_equal(b.tag, a.tag, sizeof(a.tag));
	assert_string_equal(b.license, "GPL");
	assert_int_equal(b.insn_cnt, a.insn_cnt);
	assert_int_equal(b.map_cnt, 2);
	assert_int_equal(b.func_info_cnt, 3);
	assert_int_equal(b.line_info_cnt, a.line_info_cnt);
	assert_ptr_not_equal(b.insns, a.insns);
	assert_ptr_not_equal(b.maps, a.maps);
	assert_ptr_not_equal(b.func_info, a.func_info);
	assert_ptr_not_equal(b.line_info, a.line_info);
	assert_memory_equal(b.insns, a.insns, a.insn_cnt * sizeof(*a.insns));
	assert_memory_equal(b.maps, a.maps, a.map_cnt * sizeof(*a.maps));
	assert_memory_equal(b.func_info, a.func_info, 3 * sizeof(*a.func_info));
	assert_memory_equal(b.line_info, a.line_info, a.line_info_cnt * sizeof(*a.line_info));
	/* copying over a program that holds arrays frees them (ASan/valgrind see leaks) */
	assert_int_equal(rs_prog_copy(&b, &a), 0);
	assert_int_equal(rs_prog_copy(&a, &a), 0);
	assert_int_equal(a.insn_cnt, b.insn_cnt);
	a.insns[0].imm ^= 1;
	assert_true(b.insns[0].imm != a.insns[0].imm);
	rs_prog_free(&a);
	rs_prog_free(&b);
}

static void test_insns_and_maps(void **state)
{
	struct bpf_insn one[] = { MOV64_IMM(0, 1), EXIT() };
	struct bpf_insn two[] = { MOV64_IMM(0, 2), MOV64_IMM(0, 3), EXIT() };
	struct rs_map_ref m = { .id = 7, .type = BPF_MAP_TYPE_LRU_HASH, .key_size = 16,
				.value_size = 4, .max_entries = 1024, .name = "flows" };
	struct rs_prog p;
	int k;

	(void)state;
	rs_prog_init(&p);
	assert_int_equal(rs_prog_set_insns(&p, one, 2), 0);
	assert_int_equal(rs_prog_set_insns(&p, two, 3), 0);
	assert_int_equal(p.insn_cnt, 3);
	assert_int_equal(p.insns[1].imm, 3);
	assert_int_equal(rs_prog_set_insns(&p, NULL, 0), 0);
	assert_int_equal(p.insn_cnt, 0);
	for (k = 0; k < 20; k++) {
		m.id = 100 + (uint32_t)k;
		assert_int_equal(rs_prog_add_map(&p, &m), k);
	}
	assert_int_equal(p.map_cnt, 20);
	assert_int_equal(p.maps[13].id, 113);
	assert_string_equal(p.maps[19].name, "flows");
	rs_prog_free(&p);
	assert_null(p.maps);
	assert_int_equal(p.map_cnt, 0);
}

/* init_value (contents of maps respec creates) is owned: copied by copy/add_map/apply */
static void test_init_value(void **state)
{
	uint8_t val[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct rs_map_ref m = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
				.max_entries = 1, .init_value = val };
	struct bpf_insn code[] = { LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX_VALUE, 0), LD_IMM64_HI(4),
				   MOV64_IMM(0, 0), EXIT() };
	struct rs_prog a, b, c;
	struct rs_edit *e;

	(void)state;
	rs_prog_init(&a);
	rs_prog_init(&b);
	rs_prog_init(&c);
	assert_int_equal(rs_prog_set_insns(&a, code, 4), 0);
	assert_int_equal(rs_prog_add_map(&a, &m), 0);
	val[0] = 99;
	assert_ptr_not_equal(a.maps[0].init_value, val);
	assert_int_equal(a.maps[0].init_value[0], 1);
	assert_int_equal(rs_prog_copy(&b, &a), 0);
	assert_ptr_not_equal(b.maps[0].init_value, a.maps[0].init_value);
	assert_memory_equal(b.maps[0].init_value, a.maps[0].init_value, 8);
	e = rs_edit_new(&a);
	assert_int_equal(rs_edit_delete(e, 2, 1), 0);
	assert_int_equal(rs_edit_apply(e, &c, NULL, NULL, 0), 0);
	rs_edit_free(e);
	assert_int_equal(c.insn_cnt, 3);
	assert_int_equal(c.map_cnt, 1);
	assert_ptr_not_equal(c.maps[0].init_value, a.maps[0].init_value);
	assert_int_equal(c.maps[0].init_value[7], 8);
	assert_int_equal(rs_prog_validate(&c, NULL, 0), 0);
	rs_prog_free(&a);
	rs_prog_free(&b);
	rs_prog_free(&c);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_XDP), "xdp");
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_SCHED_CLS), "sched_cls");
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_SCHED_ACT), "sched_act");
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_SYSCALL), "syscall");
	assert_string_equal(rs_prog_type_name(BPF_PROG_TYPE_SYSCALL + 1), "netfilter");
	assert_string_equal(rs_prog_type_name(999), "unknown");
	assert_string_equal(rs_prog_source_name(RS_SRC_NONE), "none");
	assert_string_equal(rs_prog_source_name(RS_SRC_CAPTURE), "capture");
	assert_string_equal(rs_prog_source_name(RS_SRC_OBJECT), "object");
	assert_string_equal(rs_prog_source_name(RS_SRC_BUILD), "build");
	assert_string_equal(rs_prog_source_name((enum rs_prog_source)77), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deep_copy),
		cmocka_unit_test(test_insns_and_maps),
		cmocka_unit_test(test_init_value),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
