// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_perf_fallback.c - hardware counters (instrument/perf.c): the libpfm4 encodings of the
 * four generic events, and the fallback decision with perf_event_open injected: every
 * hardware event opens -> hardware; one fails (ENOENT, as on machines without a PMU) ->
 * software events with the reason recorded; software fails too -> -ENODEV.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <string.h>
#include <unistd.h>

#include "instrument/instrument.h"

static int opened_hw, opened_sw, fail_type = -1, fail_config = -1, fail_err = ENOENT;

static int fake_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags)
{
	struct perf_event_attr *a = attr;

	(void)pid; (void)cpu; (void)group_fd; (void)flags;
	if ((int)a->type == fail_type && (fail_config < 0 || (int)a->config == fail_config))
		return -fail_err;
	if (a->type == PERF_TYPE_SOFTWARE)
		opened_sw++;
	else
		opened_hw++;
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void test_encode(void **state)
{
	uint32_t type;
	uint64_t config;

	(void)state;
	assert_int_equal(rs_perf_encode("cycles", &type, &config), 0);
	assert_int_equal(type, PERF_TYPE_HARDWARE);
	assert_int_equal(config, PERF_COUNT_HW_CPU_CYCLES);
	assert_int_equal(rs_perf_encode("instructions", &type, &config), 0);
	assert_int_equal(config, PERF_COUNT_HW_INSTRUCTIONS);
	assert_int_equal(rs_perf_encode("branch-misses", &type, &config), 0);
	assert_int_equal(config, PERF_COUNT_HW_BRANCH_MISSES);
	assert_int_equal(rs_perf_encode("LLC-misses", &type, &config), 0);
	assert_int_equal(type, PERF_TYPE_HW_CACHE);
	assert_int_equal(config, PERF_COUNT_HW_CACHE_LL | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
				 (PERF_COUNT_HW_CACHE_RESULT_MISS << 16));
	assert_int_equal(rs_perf_encode("bogus", &type, &config), -EINVAL);
}

static void test_all_hardware(void **state)
{
	struct rs_perf p;
	size_t i;

	(void)state;
	opened_hw = opened_sw = 0;
	fail_type = -1;
	rs_perf_set_open_fn(fake_open);
	assert_int_equal(rs_perf_open(&p), 0);
	assert_true(p.hw);
	assert_int_equal(p.cnt, 4);
	assert_int_equal(opened_hw, 4);
	assert_int_equal(opened_sw, 0);
	for (i = 0; i < p.cnt; i++)
		assert_int_equal(p.ev[i].source, RS_PERF_HW);
	assert_string_equal(p.ev[3].name, "LLC-misses");
	rs_perf_close(&p);
	rs_perf_set_open_fn(NULL);
}

static void test_fallback(void **state)
{
	struct rs_perf p;

	(void)state;
	opened_hw = opened_sw = 0;
	fail_type = PERF_TYPE_HW_CACHE;		/* LLC-misses: no such event here */
	fail_config = -1;
	rs_perf_set_open_fn(fake_open);
	assert_int_equal(rs_perf_open(&p), 0);
	assert_false(p.hw);
	assert_int_equal(p.cnt, 2);
	assert_int_equal(opened_sw, 2);
	assert_string_equal(p.ev[0].name, "task-clock");
	assert_string_equal(p.ev[1].name, "cpu-clock");
	assert_int_equal(p.ev[0].source, RS_PERF_SW);
	assert_non_null(strstr(p.ev[0].why, "LLC-misses"));
	assert_non_null(strstr(p.ev[0].why, "no hardware PMU event"));
	assert_string_equal(rs_perf_source_name(p.ev[1].source), "software");
	rs_perf_close(&p);

	/* the first hardware event already fails (EACCES): reason names the error */
	fail_type = PERF_TYPE_HARDWARE;
	fail_err = EACCES;
	assert_int_equal(rs_perf_open(&p), 0);
	assert_false(p.hw);
	assert_non_null(strstr(p.ev[0].why, "cycles"));
	rs_perf_close(&p);

	rs_perf_set_open_fn(NULL);
}

static int fail_all(void *attr, int pid, int cpu, int group_fd, unsigned long flags)
{
	(void)attr; (void)pid; (void)cpu; (void)group_fd; (void)flags;
	return -ENOENT;
}

static void test_nothing(void **state)
{
	struct rs_perf p;

	(void)state;
	rs_perf_set_open_fn(fail_all);
	assert_int_equal(rs_perf_open(&p), -ENODEV);
	assert_int_equal(p.ev[0].source, RS_PERF_NONE);
	assert_int_equal(p.ev[1].source, RS_PERF_NONE);
	rs_perf_close(&p);
	rs_perf_set_open_fn(NULL);
}

/* The real machine: whatever it has, every event states its source and counts. */
static void test_real(void **state)
{
	struct rs_perf p;
	size_t i;
	volatile uint64_t x = 0;

	(void)state;
	if (rs_perf_open(&p))
		return;
	assert_int_equal(rs_perf_start(&p), 0);
	for (i = 0; i < 1000000; i++)
		x += i;
	assert_int_equal(rs_perf_stop(&p), 0);
	for (i = 0; i < p.cnt; i++) {
		assert_int_not_equal(p.ev[i].source, RS_PERF_NONE);
		assert_true(p.ev[i].value > 0);
	}
	rs_perf_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_all_hardware),
		cmocka_unit_test(test_fallback),
		cmocka_unit_test(test_nothing),
		cmocka_unit_test(test_real),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
