// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_progattr.c - rs_prog_load_attrs() reads back the expected attach type and the XDP
 * frags flag of programs loaded with them (iter/bpf_prog), and refuses unknown ids.
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
#include "tests/kernel/ktest.h"

#ifndef BPF_F_XDP_HAS_FRAGS
#define BPF_F_XDP_HAS_FRAGS	(1U << 5)
#endif

static const struct bpf_insn xdp_pass[] = {
	{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS },
	{ .code = BPF_JMP | BPF_EXIT },
};

static int load_xdp(const char *name, uint32_t eat, uint32_t flags, uint32_t *id)
{
	LIBBPF_OPTS(bpf_prog_load_opts, o, .expected_attach_type = eat, .prog_flags = flags);
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", xdp_pass, 2, &o);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return -errno;
	}
	*id = info.id;
	return fd;
}

static void test_attrs(void **state)
{
	uint32_t id_frags, id_devmap, id_plain, eat = 99, flags = 99;
	int fd_frags, fd_devmap, fd_plain;

	fd_frags = load_xdp("rs_pa_frags", BPF_XDP, BPF_F_XDP_HAS_FRAGS, &id_frags);
	assert_true(fd_frags >= 0);
	fd_devmap = load_xdp("rs_pa_devmap", BPF_XDP_DEVMAP, 0, &id_devmap);
	assert_true(fd_devmap >= 0);
	fd_plain = load_xdp("rs_pa_plain", 0, 0, &id_plain);
	assert_true(fd_plain >= 0);

	assert_int_equal(rs_prog_load_attrs(id_frags, &eat, &flags), 0);
	assert_int_equal(eat, BPF_XDP);
	assert_int_equal(flags, BPF_F_XDP_HAS_FRAGS);

	assert_int_equal(rs_prog_load_attrs(id_devmap, &eat, &flags), 0);
	assert_int_equal(eat, BPF_XDP_DEVMAP);
	assert_int_equal(flags, 0);

	assert_int_equal(rs_prog_load_attrs(id_plain, &eat, &flags), 0);
	assert_int_equal(eat, 0);
	assert_int_equal(flags, 0);

	close(fd_frags);
	close(fd_devmap);
	close(fd_plain);
}

static void test_unknown_id(void **state)
{
	uint32_t eat, flags;
	uint32_t id;
	int fd;

	/* an id that existed and is gone: ids are not reused until they wrap */
	fd = load_xdp("rs_pa_gone", 0, 0, &id);
	assert_true(fd >= 0);
	close(fd);
	/* freeing is deferred (RCU); wait until the iterator no longer sees it */
	for (int i = 0; i < 100; i++) {
		if (rs_prog_load_attrs(id, &eat, &flags) == -RS_ERR_NOT_FOUND)
			return;
		usleep(20000);
	}
	fail_msg("prog %u still reported after close", id);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attrs),
		cmocka_unit_test(test_unknown_id),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	rs_prog_load_attrs_cleanup();
	return ret;
}
