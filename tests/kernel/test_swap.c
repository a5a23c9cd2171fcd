// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_swap.c - compare-and-swap, journal, pins and restore on the real kernel, for every
 * attach kind (XDP netlink, XDP link, tcx link, tcx, tc cls_bpf, PROG_ARRAY slot) at rsv1
 * ingress inside a private network namespace (tests/kernel/swap_env.h), the test itself
 * staying in its own namespace so every call has to step in and out:
 *   - A -> B succeeds, the journal holds the original A and its pin is A;
 *   - a stale expectation (expect A while B is there) is refused (-EBUSY), B stays;
 *   - restore brings A back (same program id), journal and pin gone;
 *   - a foreign replacement (C put there behind our back) is never overwritten, neither by a
 *     swap nor by a restore, and the restore still cleans journal and pin;
 *   - rs_restore_all() / rs_restore_prog() and the signal-safe restore over all kinds at once;
 *   - a child that swaps and is killed (-9) leaves its programs in place, and `respec restore`
 *     (PROG, then all) brings the originals back; with the SIGTERM handlers installed the
 *     child's death itself restores them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "swap_env.h"

static struct rs_swap_opts sw_opts(void)
{
	struct rs_swap_opts o = { .sz = sizeof(o), .journal_dir = env.jdir,
				  .pin_dir = env.pdir };
	return o;
}

static struct rs_restore_opts rs_opts(void)
{
	struct rs_restore_opts o = { .sz = sizeof(o), .journal_dir = env.jdir };
	return o;
}

static size_t journal_cnt(void)
{
	struct rs_journal_entry *v = NULL;
	size_t cnt = 0;

	assert_int_equal(rs_journal_list(env.jdir, &v, &cnt), 0);
	free(v);
	return cnt;
}

static bool journal_file_exists(void)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/journal", env.jdir);
	return access(path, F_OK) == 0;
}

static uint32_t pinned_id(const char *path)
{
	int fd = bpf_obj_get(path);
	uint32_t id;

	if (fd < 0)
		return 0;
	id = ktest_prog_id(fd);
	close(fd);
	return id;
}

static void check_kind(enum rs_attach_kind k)
{
	struct rs_swap_opts so = sw_opts(), raw = sw_opts();
	struct rs_restore_opts ro = rs_opts();
	struct rs_journal_entry *v = NULL;
	struct rs_attach_point pt;
	const uint32_t *id;
	const int *fd = kind_progs(k, &id);
	size_t cnt = 0;
	char pin[256];

	raw.no_journal = true;
	fprintf(stderr, "-- %s\n", rs_attach_kind_name(k));
	assert_int_equal(attach(k, fd[P_A]), 0);
	assert_int_equal(find_point(k, &pt), 0);
	assert_int_equal(pt.prog_id, id[P_A]);

	/* A -> B, journal and pin */
	assert_int_equal(rs_swap(&pt, id[P_A], fd[P_B], &so), 0);
	assert_int_equal(current_id(&pt), id[P_B]);
	assert_int_equal(rs_journal_list(env.jdir, &v, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(v[0].orig_id, id[P_A]);
	assert_int_equal(v[0].cur_id, id[P_B]);
	assert_int_equal(v[0].pt.kind, k);
	snprintf(pin, sizeof(pin), "%s", v[0].pin);
	free(v);
	assert_int_equal(pinned_id(pin), id[P_A]);

	/* stale expectation: expect A while B is there */
	assert_int_equal(rs_swap(&pt, id[P_A], fd[P_C], &so), -EBUSY);
	assert_int_equal(current_id(&pt), id[P_B]);
	assert_int_equal(journal_cnt(), 1);

	/* restore: A back, same id; journal and pin gone */
	assert_int_equal(rs_restore(&pt, &ro), 0);
	assert_int_equal(current_id(&pt), id[P_A]);
	assert_int_equal(journal_cnt(), 0);
	assert_false(journal_file_exists());
	assert_int_equal(access(pin, F_OK), -1);

	/* foreign replacement: C put there behind our back is never overwritten */
	assert_int_equal(rs_swap(&pt, id[P_A], fd[P_B], &so), 0);
	assert_int_equal(rs_swap(&pt, id[P_B], fd[P_C], &raw), 0);	/* "someone else" */
	assert_int_equal(rs_swap(&pt, id[P_B], fd[P_A], &so), -EBUSY);
	assert_int_equal(current_id(&pt), id[P_C]);
	assert_int_equal(rs_restore(&pt, &ro), -EBUSY);
	assert_int_equal(current_id(&pt), id[P_C]);
	assert_int_equal(journal_cnt(), 0);
	assert_int_equal(access(pin, F_OK), -1);

	/* starting over from the foreign program: C is the new original */
	assert_int_equal(rs_swap(&pt, id[P_C], fd[P_B], &so), 0);
	assert_int_equal(rs_swap(&pt, id[P_B], fd[P_A], &so), 0);	/* ours again */
	assert_int_equal(current_id(&pt), id[P_A]);
	assert_int_equal(rs_restore_prog(id[P_A], &ro), 0);		/* by one of ours */
	assert_int_equal(current_id(&pt), id[P_C]);
	assert_int_equal(journal_cnt(), 0);

	/* swapping the original back in closes the entry like a restore */
	assert_int_equal(rs_swap(&pt, id[P_C], fd[P_A], &so), 0);
	assert_int_equal(journal_cnt(), 1);
	assert_int_equal(rs_swap(&pt, id[P_A], fd[P_C], &so), 0);
	assert_int_equal(journal_cnt(), 0);
	assert_int_equal(current_id(&pt), id[P_C]);

	/* a restore with nothing in the journal says so */
	assert_int_equal(rs_restore(&pt, &ro), -RS_ERR_NOT_FOUND);
	detach(k);
}

#define KIND_TEST(NAME, KIND)					\
static void NAME(void **state)					\
{								\
	(void)state;						\
	check_kind(KIND);					\
}

KIND_TEST(test_xdp_netlink, RS_ATTACH_XDP_NETLINK)
KIND_TEST(test_xdp_link, RS_ATTACH_XDP_LINK)
KIND_TEST(test_tcx_link, RS_ATTACH_TCX_LINK)
KIND_TEST(test_tcx, RS_ATTACH_TCX)
KIND_TEST(test_tc_cls, RS_ATTACH_TC_CLS)
KIND_TEST(test_prog_array, RS_ATTACH_PROG_ARRAY)

/*
 * Several points at once: XDP netlink + tc cls_bpf (TC programs at ingress) + tcx link +
 * PROG_ARRAY cannot share one device's XDP hook, so use XDP netlink, tc and tcx link on rsv1.
 */
static const enum rs_attach_kind multi[] = {
	RS_ATTACH_XDP_NETLINK, RS_ATTACH_TC_CLS, RS_ATTACH_TCX_LINK,
};

static void swap_multi(struct rs_attach_point *pts)
{
	struct rs_swap_opts so = sw_opts();
	const uint32_t *id;
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		const int *fd = kind_progs(multi[i], &id);

		assert_int_equal(attach(multi[i], fd[P_A]), 0);
		assert_int_equal(find_point(multi[i], &pts[i]), 0);
		assert_int_equal(rs_swap(&pts[i], id[P_A], fd[P_B], &so), 0);
		assert_int_equal(current_id(&pts[i]), id[P_B]);
	}
	assert_int_equal(journal_cnt(), RS_ARRAY_SIZE(multi));
}

static void test_restore_all(void **state)
{
	struct rs_attach_point pts[RS_ARRAY_SIZE(multi)];
	struct rs_restore_opts ro = rs_opts();
	const uint32_t *id;
	size_t i;

	(void)state;
	swap_multi(pts);
	assert_int_equal(rs_restore_all(&ro), 0);
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		kind_progs(multi[i], &id);
		assert_int_equal(current_id(&pts[i]), id[P_A]);
	}
	assert_int_equal(journal_cnt(), 0);
	assert_false(journal_file_exists());
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++)
		detach(multi[i]);
}

static void test_restore_signal_safe(void **state)
{
	struct rs_attach_point pts[RS_ARRAY_SIZE(multi)];
	const uint32_t *id;
	size_t i;

	(void)state;
	swap_multi(pts);
	/* what a SIGTERM handler runs; the journal learns it through pre-formatted lines */
	assert_int_equal(rs_restore_all_signal_safe(), 0);
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		kind_progs(multi[i], &id);
		assert_int_equal(current_id(&pts[i]), id[P_A]);
	}
	assert_int_equal(journal_cnt(), 0);
	/* nothing left to do for a second call */
	assert_int_equal(rs_restore_all_signal_safe(), 0);
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++)
		detach(multi[i]);

	/* the prog array slot and plain tcx through the signal path too */
	{
		static const enum rs_attach_kind more[] = { RS_ATTACH_PROG_ARRAY, RS_ATTACH_TCX,
							    RS_ATTACH_XDP_LINK };
		struct rs_swap_opts so = sw_opts();
		struct rs_attach_point pt;

		for (i = 0; i < RS_ARRAY_SIZE(more); i++) {
			const int *fd = kind_progs(more[i], &id);

			assert_int_equal(attach(more[i], fd[P_A]), 0);
			assert_int_equal(find_point(more[i], &pt), 0);
			assert_int_equal(rs_swap(&pt, id[P_A], fd[P_B], &so), 0);
			assert_int_equal(rs_restore_all_signal_safe(), 0);
			assert_int_equal(current_id(&pt), id[P_A]);
			assert_int_equal(journal_cnt(), 0);
			detach(more[i]);
		}
	}
}

/* A child process swaps and dies: by SIGKILL (crash) or by SIGTERM with the handlers on. */
static int child_swaps(enum rs_attach_kind k, bool handlers, int sig)
{
	struct rs_attach_point pt;
	const uint32_t *id;
	const int *fd = kind_progs(k, &id);
	int status = 0;
	pid_t pid;

	assert_int_equal(find_point(k, &pt), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct rs_swap_opts so = sw_opts();

		if (handlers && rs_restore_install_signal_handlers())
			_exit(3);
		if (rs_swap(&pt, id[P_A], fd[P_B], &so))
			_exit(2);
		kill(getpid(), sig);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), sig);
	return 0;
}

static void test_crash_then_cli_restore(void **state)
{
	const char *dir = getenv("RS_BUILD_DIR");
	struct rs_attach_point pt;
	const uint32_t *id;
	size_t i;

	(void)state;
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		kind_progs(multi[i], &id);
		assert_int_equal(attach(multi[i], kind_progs(multi[i], &id)[P_A]), 0);
		child_swaps(multi[i], false, SIGKILL);
		assert_int_equal(find_point(multi[i], &pt), 0);
		assert_int_equal(pt.prog_id, id[P_B]);	/* the crash left ours in place */
	}
	assert_int_equal(journal_cnt(), RS_ARRAY_SIZE(multi));
	/* one by PROG (ours), the rest with all */
	kind_progs(multi[0], &id);
	assert_int_equal(run("%s/tools/respec restore id %u journal %s", dir ? dir : "build",
			     id[P_B], env.jdir), 0);
	assert_int_equal(journal_cnt(), RS_ARRAY_SIZE(multi) - 1);
	assert_int_equal(run("%s/tools/respec restore all journal %s", dir ? dir : "build",
			     env.jdir), 0);
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		kind_progs(multi[i], &id);
		assert_int_equal(find_point(multi[i], &pt), 0);
		assert_int_equal(pt.prog_id, id[P_A]);	/* same program object back */
	}
	assert_int_equal(journal_cnt(), 0);
	assert_int_equal(run("ls %s/ 2>/dev/null | grep -q .", env.pdir) == 0, 0);
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++)
		detach(multi[i]);
}

static void test_sigterm_handlers(void **state)
{
	struct rs_attach_point pt;
	const uint32_t *id;
	size_t i;

	(void)state;
	for (i = 0; i < RS_ARRAY_SIZE(multi); i++) {
		const int *fd = kind_progs(multi[i], &id);

		assert_int_equal(attach(multi[i], fd[P_A]), 0);
		child_swaps(multi[i], true, SIGTERM);
		assert_int_equal(find_point(multi[i], &pt), 0);
		assert_int_equal(pt.prog_id, id[P_A]);	/* the handler put it back */
		assert_int_equal(journal_cnt(), 0);
		detach(multi[i]);
	}
}

static void test_errors(void **state)
{
	struct rs_swap_opts so = sw_opts();
	struct rs_attach_point pt;

	(void)state;
	assert_int_equal(attach(RS_ATTACH_XDP_NETLINK, env.xdp[P_A]), 0);
	assert_int_equal(find_point(RS_ATTACH_XDP_NETLINK, &pt), 0);
	/* not a program fd */
	assert_int_equal(rs_swap(&pt, env.xdp_id[P_A], env.counts_fd, &so), -EBADF);
	/* the point is gone once its device is */
	detach(RS_ATTACH_XDP_NETLINK);
	assert_int_equal(rs_swap(&pt, env.xdp_id[P_A], env.xdp[P_B], &so), -EBUSY);
	pt.ifindex = 999999;
	assert_int_equal(rs_swap(&pt, env.xdp_id[P_A], env.xdp[P_B], &so), -RS_ERR_NOT_FOUND);
	assert_int_equal(journal_cnt(), 0);
}

static int teardown_each(void **state)
{
	(void)state;
	env_reset();
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	return env_create();
}

static int group_teardown(void **state)
{
	(void)state;
	env_destroy();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_xdp_netlink, teardown_each),
		cmocka_unit_test_teardown(test_xdp_link, teardown_each),
		cmocka_unit_test_teardown(test_tcx_link, teardown_each),
		cmocka_unit_test_teardown(test_tcx, teardown_each),
		cmocka_unit_test_teardown(test_tc_cls, teardown_each),
		cmocka_unit_test_teardown(test_prog_array, teardown_each),
		cmocka_unit_test_teardown(test_restore_all, teardown_each),
		cmocka_unit_test_teardown(test_restore_signal_safe, teardown_each),
		cmocka_unit_test_teardown(test_crash_then_cli_restore, teardown_each),
		cmocka_unit_test_teardown(test_sigterm_handlers, teardown_each),
		cmocka_unit_test_teardown(test_errors, teardown_each),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
