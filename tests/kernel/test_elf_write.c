// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_elf_write.c - rs_elf_write (agent/elf_write.c): a hand-made program with a hash map, a
 * constant pool read through a direct value load and a subprogram call is written to an ELF
 * object; libbpf opens it (maps with their types and sizes, program type), loads it, and a test
 * run gives the value the map and the pool hold.  Refusals: kfunc calls, direct value loads
 * into a map that is not a single-entry array.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
						 .off = (o), .imm = (i) })
#define LD_MAP(d, src, idx, off) INSN(BPF_LD | BPF_DW | BPF_IMM, d, src, 0, idx), \
				 INSN(0, 0, 0, 0, off)

static void make_prog(struct rs_prog *p)
{
	struct bpf_insn insns[] = {
		/* key = 7 on the stack, lookup in "vals" (hash u32 -> u32) */
		INSN(BPF_ST | BPF_MEM | BPF_W, 10, 0, -4, 7),
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
		LD_MAP(1, BPF_PSEUDO_MAP_IDX, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		INSN(BPF_ALU64 | BPF_MOV | BPF_K, 6, 0, 0, 0),
		INSN(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 6, 0, 0, 0),
		/* + pool[4..8) through a direct value load */
		LD_MAP(1, BPF_PSEUDO_MAP_IDX_VALUE, 1, 4),
		INSN(BPF_LDX | BPF_MEM | BPF_W, 1, 1, 0, 0),
		INSN(BPF_ALU64 | BPF_ADD | BPF_X, 6, 1, 0, 0),
		/* + sub(r1 = r6) = r6 * 2 */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 1, 6, 0, 0),
		INSN(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, 1),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
		/* sub */
		INSN(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, 0, 0),
		INSN(BPF_ALU64 | BPF_LSH | BPF_K, 0, 0, 0, 1),
		INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct rs_map_ref hash = { .type = BPF_MAP_TYPE_HASH, .key_size = 4, .value_size = 4,
				   .max_entries = 16, .name = "vals" };
	struct rs_map_ref pool = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
				   .max_entries = 1, .flags = BPF_F_RDONLY_PROG,
				   .name = "rs_pool" };
	uint8_t pv[8] = { 0, 0, 0, 0, 5, 0, 0, 0 };

	rs_prog_init(p);
	snprintf(p->name, sizeof(p->name), "rs_elf_t");
	snprintf(p->license, sizeof(p->license), "GPL");
	p->type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_prog_set_insns(p, insns, RS_ARRAY_SIZE(insns)), 0);
	assert_int_equal(rs_prog_add_map(p, &hash), 0);
	pool.init_value = pv;
	assert_int_equal(rs_prog_add_map(p, &pool), 1);
}

static void test_write_load_run(void **state)
{
	char path[] = "/tmp/rs-elf-XXXXXX";
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_map *m;
	struct rs_prog p;
	uint8_t pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt));
	uint32_t k = 7, v = 10;
	int fd, n = 0;

	(void)state;
	make_prog(&p);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rs_elf_write(&p, path, NULL), 0);

	obj = bpf_object__open_file(path, NULL);
	assert_false(libbpf_get_error(obj));
	prog = bpf_object__find_program_by_name(obj, "rs_elf_t");
	assert_non_null(prog);
	assert_int_equal(bpf_program__type(prog), BPF_PROG_TYPE_XDP);
	m = bpf_object__find_map_by_name(obj, "vals");
	assert_non_null(m);
	assert_int_equal(bpf_map__type(m), BPF_MAP_TYPE_HASH);
	assert_int_equal(bpf_map__key_size(m), 4);
	assert_int_equal(bpf_map__value_size(m), 4);
	assert_int_equal(bpf_map__max_entries(m), 16);
	bpf_object__for_each_map(m, obj)
		n++;
	assert_int_equal(n, 2);				/* vals + the pool's .rodata section */
	assert_int_equal(bpf_object__load(obj), 0);

	/* absent key: 0 + pool 5, doubled by the subprogram */
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &t), 0);
	assert_int_equal(t.retval, 10);
	m = bpf_object__find_map_by_name(obj, "vals");
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(m), &k, &v, BPF_ANY), 0);
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &t), 0);
	assert_int_equal(t.retval, 30);			/* (10 + 5) * 2 */

	bpf_object__close(obj);
	unlink(path);
	rs_prog_free(&p);
}

static void test_refusals(void **state)
{
	char path[] = "/tmp/rs-elf-XXXXXX";
	struct rs_prog p;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	/* a direct value load into the hash map */
	make_prog(&p);
	p.insns[9].imm = 0;			/* the map: 0 (vals) */
	p.insns[10].imm = 0;
	assert_int_equal(rs_elf_write(&p, path, NULL), -EOPNOTSUPP);
	rs_prog_free(&p);
	/* a kfunc call */
	make_prog(&p);
	p.insns[5].src_reg = BPF_PSEUDO_KFUNC_CALL;
	p.insns[5].imm = 1;
	assert_int_equal(rs_elf_write(&p, path, NULL), -EOPNOTSUPP);
	rs_prog_free(&p);
	/* unsupported program type */
	make_prog(&p);
	p.type = BPF_PROG_TYPE_KPROBE;
	assert_int_equal(rs_elf_write(&p, path, NULL), -RS_ERR_PROG_TYPE);
	rs_prog_free(&p);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_load_run),
		cmocka_unit_test(test_refusals),
	};

	if (geteuid()) {
		fprintf(stderr, "SKIP: needs root for BPF\n");
		return 77;
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
