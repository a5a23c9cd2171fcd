// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_tag.c - program tags.
 *
 * Without a kernel: map fds do not change the tag, fd_array indexes do, the IDX form of an
 * rs_prog hashes like the fd form, and the tags are the first 8 bytes of SHA-1 / SHA-256 of
 * the same bytes (known vectors from sha1sum / sha256sum).
 * With the kernel: rs_tag_detect() finds the hash the running kernel uses, and
 * rs_tag_compute() / rs_tag_compute_insns() reproduce the kernel tag of several programs:
 * plain, with map references through fds (pointer and value), and through fd_array.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>

#include "agent/agent.h"

#define LD_MAP(dst, src, imm0, imm1)						\
	{ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = dst, .src_reg = src, .imm = imm0 }, \
	{ .imm = imm1 }
#define MOV64_IMM(dst, v) { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = v }
#define EXIT_INSN() { .code = BPF_JMP | BPF_EXIT }

static void test_fd_zeroed(void **state)
{
	struct bpf_insn a[] = { LD_MAP(1, BPF_PSEUDO_MAP_FD, 3, 0),
				LD_MAP(2, BPF_PSEUDO_MAP_VALUE, 3, 16), EXIT_INSN() };
	struct bpf_insn b[] = { LD_MAP(1, BPF_PSEUDO_MAP_FD, 9, 0),
				LD_MAP(2, BPF_PSEUDO_MAP_VALUE, 11, 0), EXIT_INSN() };
	uint8_t ta[BPF_TAG_SIZE], tb[BPF_TAG_SIZE];

	for (int algo = RS_TAG_SHA1; algo <= RS_TAG_SHA256; algo++) {
		assert_int_equal(rs_tag_compute_insns(a, RS_ARRAY_SIZE(a), algo, ta), 0);
		assert_int_equal(rs_tag_compute_insns(b, RS_ARRAY_SIZE(b), algo, tb), 0);
		assert_memory_equal(ta, tb, BPF_TAG_SIZE);
	}
}

static void test_idx_hashed(void **state)
{
	struct bpf_insn a[] = { LD_MAP(1, BPF_PSEUDO_MAP_IDX, 0, 0), EXIT_INSN() };
	struct bpf_insn b[] = { LD_MAP(1, BPF_PSEUDO_MAP_IDX, 1, 0), EXIT_INSN() };
	uint8_t ta[BPF_TAG_SIZE], tb[BPF_TAG_SIZE];

	assert_int_equal(rs_tag_compute_insns(a, RS_ARRAY_SIZE(a), RS_TAG_SHA256, ta), 0);
	assert_int_equal(rs_tag_compute_insns(b, RS_ARRAY_SIZE(b), RS_TAG_SHA256, tb), 0);
	assert_memory_not_equal(ta, tb, BPF_TAG_SIZE);
}

static void test_prog_idx_form(void **state)
{
	struct bpf_insn fd[] = { LD_MAP(1, BPF_PSEUDO_MAP_FD, 7, 0),
				 LD_MAP(2, BPF_PSEUDO_MAP_VALUE, 8, 4),
				 MOV64_IMM(0, 2), EXIT_INSN() };
	struct bpf_insn idx[] = { LD_MAP(1, BPF_PSEUDO_MAP_IDX, 0, 0),
				  LD_MAP(2, BPF_PSEUDO_MAP_IDX_VALUE, 1, 4),
				  MOV64_IMM(0, 2), EXIT_INSN() };
	struct rs_prog p = { .insns = idx, .insn_cnt = RS_ARRAY_SIZE(idx) };
	uint8_t ta[BPF_TAG_SIZE], tb[BPF_TAG_SIZE];

	assert_int_equal(rs_tag_compute_insns(fd, RS_ARRAY_SIZE(fd), RS_TAG_SHA1, ta), 0);
	assert_int_equal(rs_tag_compute(&p, RS_TAG_SHA1, tb), 0);
	assert_memory_equal(ta, tb, BPF_TAG_SIZE);
	/* the instructions of the rs_prog are left untouched */
	assert_int_equal(idx[0].src_reg, BPF_PSEUDO_MAP_IDX);
	assert_int_equal(idx[2].imm, 1);
}

static void test_known_vector(void **state)
{
	/* 16 bytes: "r0 = 0; exit" */
	struct bpf_insn p[] = { MOV64_IMM(0, 0), EXIT_INSN() };
	/* sha1sum / sha256sum of b7 00 00 00 00 00 00 00 95 00 00 00 00 00 00 00 */
	const uint8_t sha1[BPF_TAG_SIZE] = { 0xa0, 0x4f, 0x5e, 0xef, 0x06, 0xa7, 0xf5, 0x55 };
	const uint8_t sha256[BPF_TAG_SIZE] = { 0x59, 0xf4, 0xa9, 0x31, 0x74, 0x4d, 0xcd, 0xc6 };
	uint8_t t[BPF_TAG_SIZE];

	assert_int_equal(rs_tag_compute_insns(p, 2, RS_TAG_SHA1, t), 0);
	assert_memory_equal(t, sha1, BPF_TAG_SIZE);
	assert_int_equal(rs_tag_compute_insns(p, 2, RS_TAG_SHA256, t), 0);
	assert_memory_equal(t, sha256, BPF_TAG_SIZE);
}

static int kernel_tag(int fd, uint8_t tag[BPF_TAG_SIZE])
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	memcpy(tag, info.tag, BPF_TAG_SIZE);
	return 0;
}

static void test_detect(void **state)
{
	enum rs_tag_algo a = RS_TAG_UNKNOWN, b = RS_TAG_UNKNOWN;

	assert_int_equal(rs_tag_detect(&a), 0);
	assert_true(a == RS_TAG_SHA1 || a == RS_TAG_SHA256);
	assert_int_equal(rs_tag_detect(&b), 0);	/* cached */
	assert_int_equal(a, b);
	printf("kernel program tags use %s\n", rs_tag_algo_name(a));
}

/* Load raw insns (maps by fd, or by fd_array), compare kernel tag with both computations. */
static void check_prog(struct bpf_insn *insns, size_t cnt, const int *fd_array,
		       const struct rs_prog *idx_form)
{
	static char log[65536];
	LIBBPF_OPTS(bpf_prog_load_opts, o, .fd_array = fd_array, .log_buf = log,
		    .log_size = sizeof(log), .log_level = 1);
	uint8_t kt[BPF_TAG_SIZE], ct[BPF_TAG_SIZE], other[BPF_TAG_SIZE];
	enum rs_tag_algo algo;
	int fd;

	assert_int_equal(rs_tag_detect(&algo), 0);
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_tag_t", "GPL", insns, cnt, &o);
	if (fd < 0)
		fail_msg("load: %s\n%s", strerror(errno), log);
	assert_int_equal(kernel_tag(fd, kt), 0);
	close(fd);

	assert_int_equal(rs_tag_compute_insns(insns, cnt, algo, ct), 0);
	assert_memory_equal(kt, ct, BPF_TAG_SIZE);
	/* the other algorithm must not match (the test can fail) */
	assert_int_equal(rs_tag_compute_insns(insns, cnt,
					      algo == RS_TAG_SHA1 ? RS_TAG_SHA256 : RS_TAG_SHA1,
					      other), 0);
	assert_memory_not_equal(kt, other, BPF_TAG_SIZE);
	if (idx_form) {
		assert_int_equal(rs_tag_compute(idx_form, RS_TAG_UNKNOWN, ct), 0);
		assert_memory_equal(kt, ct, BPF_TAG_SIZE);
	}
}

static void test_plain(void **state)
{
	struct bpf_insn p[] = {
		MOV64_IMM(BPF_REG_0, XDP_DROP),
		{ .code = BPF_JMP | BPF_JA, .off = 0 },
		MOV64_IMM(BPF_REG_1, 77),
		MOV64_IMM(BPF_REG_0, XDP_PASS),
		EXIT_INSN(),
	};
	struct rs_prog rp = { .insns = p, .insn_cnt = RS_ARRAY_SIZE(p) };

	check_prog(p, RS_ARRAY_SIZE(p), NULL, &rp);
}

static void test_map_fd(void **state)
{
	int a = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rs_tag_a", 4, 8, 1, NULL);
	int b = bpf_map_create(BPF_MAP_TYPE_HASH, "rs_tag_b", 4, 4, 16, NULL);
	/* r1 = map a; r2 = &value of a (offset 4); r3 = map b */
	struct bpf_insn fd_form[] = {
		LD_MAP(BPF_REG_1, BPF_PSEUDO_MAP_FD, a, 0),
		LD_MAP(BPF_REG_2, BPF_PSEUDO_MAP_VALUE, a, 4),
		LD_MAP(BPF_REG_3, BPF_PSEUDO_MAP_FD, b, 0),
		MOV64_IMM(BPF_REG_0, XDP_PASS),
		EXIT_INSN(),
	};
	struct bpf_insn idx_form[] = {
		LD_MAP(BPF_REG_1, BPF_PSEUDO_MAP_IDX, 0, 0),
		LD_MAP(BPF_REG_2, BPF_PSEUDO_MAP_IDX_VALUE, 0, 4),
		LD_MAP(BPF_REG_3, BPF_PSEUDO_MAP_IDX, 1, 0),
		MOV64_IMM(BPF_REG_0, XDP_PASS),
		EXIT_INSN(),
	};
	struct rs_prog rp = { .insns = idx_form, .insn_cnt = RS_ARRAY_SIZE(idx_form) };
	int fds[2] = { a, b };

	assert_true(a >= 0 && b >= 0);
	/* maps loaded by fd: the rs_prog in IDX form hashes like the fd form */
	check_prog(fd_form, RS_ARRAY_SIZE(fd_form), NULL, &rp);
	/* maps loaded by fd_array: the index is hashed as is, only raw bytes reproduce it */
	check_prog(idx_form, RS_ARRAY_SIZE(idx_form), fds, NULL);
	close(a);
	close(b);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_fd_zeroed),
		cmocka_unit_test(test_idx_hashed),
		cmocka_unit_test(test_prog_idx_form),
		cmocka_unit_test(test_known_vector),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_map_fd),
	};

	int ret;

	ret = cmocka_run_group_tests_name("tag_pure", pure, NULL, NULL);
	if (ret)
		return ret;
	if (geteuid() != 0) {
		fprintf(stderr, "SKIP: kernel part needs root for BPF\n");
		return 77;
	}
	return cmocka_run_group_tests_name("tag_kernel", tests, NULL, NULL);
}
