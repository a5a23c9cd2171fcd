// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_lift.c - lifting with proof on the real kernel.
 *
 * Loads the lifter's own BPF test programs (tests/kernel/progs/NAME.bpf.c, built into
 * $RS_BUILD_DIR/tests/progs) with libbpf, lifts every program by id and requires the proof
 * (reload translates identically).  Also: unknown ids, non-XDP/TC programs and an unliftable
 * program (kfunc call) give the documented errors naming the instruction.
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
#include "agent/lift.h"
#include "tests/kernel/ktest.h"

static struct bpf_object *open_test_obj(const char *name)
{
	const char *dir = getenv("RS_BUILD_DIR");
	struct bpf_object *obj;
	char path[4096];

	snprintf(path, sizeof(path), "%s/tests/progs/test_%s.bpf.o", dir ? dir : "build", name);
	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "%s: load: %s\n", path, strerror(errno));
		bpf_object__close(obj);
		return NULL;
	}
	return obj;
}

/* Lift one loaded program by fd; 1 when proven. */
static int lift_one(int fd, const char *objname, const char *pname)
{
	struct rs_lift_report rep;
	struct rs_prog out;
	uint32_t id = ktest_prog_id(fd);
	int err, proven = 0;

	assert_true(id > 0);
	err = rs_lift(id, &out, &rep);
	fprintf(stderr, "%s/%s (id %u): %s: %zu patterns, %zu sites: %s\n", objname, pname, id,
		err ? rs_strerror(err) : "ok", rep.patterns_learned, rep.sites_lifted, rep.msg);
	if (err && getenv("RS_TEST_DEBUG")) {
		char cmd[64];

		snprintf(cmd, sizeof(cmd), "bpftool prog dump xlated id %u >&2", id);
		if (system(cmd))
			fprintf(stderr, "bpftool failed\n");
	}
	if (!err && rep.proven) {
		proven = 1;
		assert_int_equal(out.source, RS_SRC_LIFT);
		assert_true(out.insn_cnt > 0);
	}
	rs_prog_free(&out);
	return proven;
}

/* Lift every loaded program of an object; returns the number tried, *proven_out set. */
static int lift_obj(struct bpf_object *obj, const char *objname, int *proven_out)
{
	struct bpf_program *p;
	int n = 0, proven = 0;

	bpf_object__for_each_program(p, obj) {
		if (bpf_program__fd(p) < 0)
			continue;
		proven += lift_one(bpf_program__fd(p), objname, bpf_program__name(p));
		n++;
	}
	*proven_out = proven;
	return n;
}

/* Lift every program of one of our test objects and require each proof. */
static void lift_all(const char *objname)
{
	struct bpf_object *obj = open_test_obj(objname);
	int n, proven;

	assert_non_null(obj);
	n = lift_obj(obj, objname, &proven);
	bpf_object__close(obj);
	assert_true(n > 0);
	assert_int_equal(proven, n);
}

/*
 * Every XDP / TC program built in this repository (sample data planes, their ceilings, the
 * benchmark floor, the replay driver): loaded as built, lifted, proven.
 */
static void test_repo_programs(void **state)
{
	static const char *const objs[] = {
		"bpf/samples/firewall.bpf.o", "bpf/samples/firewall-ceiling.bpf.o",
		"bpf/samples/firewall-xdp.bpf.o", "bpf/samples/firewall-xdp-ceiling.bpf.o",
		"bpf/samples/router.bpf.o", "bpf/samples/router-ceiling.bpf.o",
		"bpf/samples/l4lb.bpf.o", "bpf/samples/l4lb-ceiling.bpf.o",
		"benchmarks/floor.bpf.o", "bpf/replay_driver.bpf.o",
	};
	const char *dir = getenv("RS_BUILD_DIR");
	int total = 0, total_proven = 0;
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(objs); i++) {
		struct bpf_object *obj;
		struct bpf_program *p;
		char path[4096];
		int n, proven;

		snprintf(path, sizeof(path), "%s/%s", dir ? dir : "build", objs[i]);
		if (access(path, R_OK)) {
			fprintf(stderr, "%s: not built here, skipped\n", objs[i]);
			continue;
		}
		obj = bpf_object__open_file(path, NULL);
		assert_non_null(obj);
		bpf_object__for_each_program(p, obj) {
			enum bpf_prog_type t = bpf_program__type(p);

			if (t != BPF_PROG_TYPE_XDP && t != BPF_PROG_TYPE_SCHED_CLS &&
			    t != BPF_PROG_TYPE_SCHED_ACT)
				bpf_program__set_autoload(p, false);
		}
		if (bpf_object__load(obj)) {
			fprintf(stderr, "%s: does not load as built (%s), skipped\n", objs[i],
				strerror(errno));
			bpf_object__close(obj);
			continue;
		}
		n = lift_obj(obj, objs[i], &proven);
		bpf_object__close(obj);
		total += n;
		total_proven += proven;
	}
	fprintf(stderr, "repository programs: %d of %d proven\n", total_proven, total);
	assert_int_equal(total_proven, total);
}

static void test_xdp(void **state)
{
	lift_all("lift_xdp");
}

static void test_maps(void **state)
{
	lift_all("lift_maps");
}

static void test_tc(void **state)
{
	lift_all("lift_tc");
}

/* A kfunc call cannot be lifted: the error names the instruction. */
static void test_unliftable(void **state)
{
	struct bpf_object *obj = open_test_obj("lift_kfunc");
	struct bpf_program *p;
	struct rs_lift_report rep;
	struct rs_prog out;
	int err;

	assert_non_null(obj);
	p = bpf_object__find_program_by_name(obj, "lift_kfunc");
	assert_non_null(p);
	err = rs_lift(ktest_prog_id(bpf_program__fd(p)), &out, &rep);
	fprintf(stderr, "lift_kfunc: %s: %s\n", rs_strerror(err), rep.msg);
	assert_int_equal(err, -RS_ERR_UNLIFTABLE);
	assert_false(rep.proven);
	assert_true(rep.fail_insn >= 0);
	assert_string_equal(rep.fail_pattern, "kfunc call");
	assert_non_null(strstr(rep.msg, "xlated insn"));
	bpf_object__close(obj);
}

/* Unknown ids and programs of other types are refused with the documented codes. */
static void test_refusals(void **state)
{
	static const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	struct rs_lift_report rep;
	struct rs_prog out;
	int fd;

	assert_int_equal(rs_lift(0x7ffffff0, &out, &rep), -RS_ERR_NOT_FOUND);
	fd = bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "rs_sockf", "GPL", ret0, 2, NULL);
	assert_true(fd >= 0);
	assert_int_equal(rs_lift(ktest_prog_id(fd), &out, &rep), -RS_ERR_PROG_TYPE);
	assert_int_equal(rs_fetch_translated(ktest_prog_id(fd), &out), -RS_ERR_PROG_TYPE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xdp),
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_tc),
		cmocka_unit_test(test_repo_programs),
		cmocka_unit_test(test_unliftable),
		cmocka_unit_test(test_refusals),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
