// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_config.c - the agent's strict JSON configuration (agent/config.c): defaults, every
 * section, errors that name the file and the key (unknown keys, wrong types, ranges,
 * duplicates), and the selector that decides which attach points the agent may touch.
 * Pure: no kernel needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/agent.h"

static char last_warn[512];

static void capture_log(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_WARN)
		vsnprintf(last_warn, sizeof(last_warn), fmt, ap);
}

static int parse(const char *text, struct rs_agent_config *c)
{
	last_warn[0] = 0;
	return rs_agent_config_parse(text, "agent.json", c);
}

static void test_defaults(void **state)
{
	struct rs_agent_config c;

	(void)state;
	assert_int_equal(parse("{}", &c), 0);
	assert_string_equal(c.path, "agent.json");
	assert_int_equal(c.select_cnt, 0);
	assert_true(c.capture);
	assert_true(c.settle_s > 0 && c.settle_s < 3);
	assert_true(c.foreign_backoff_s == 60);
	assert_true(c.revert_ratio > 1);
	assert_int_equal(c.sample_rate, 256);
	assert_int_equal(c.sample_burst, 64);
}

static void test_full(void **state)
{
	struct rs_agent_config c;
	const char *text =
		"{ \"select\": [ {\"name\": \"xdp_*\", \"ifname\": \"veth*\", \"kind\": [\"xdp\", \"tc\"]},\n"
		"                {\"id\": 42} ],\n"
		"  \"exclude\": [ {\"netns\": \"prod-*\"} ],\n"
		"  \"tick_s\": 0.05, \"discover_interval_s\": 2, \"settle_s\": 0.2, \"retry_s\": 5,\n"
		"  \"foreign_backoff_s\": 0,\n"
		"  \"reoptimize_interval_s\": 0,\n"
		"  \"profile\": {\"base_window_s\": 0.5, \"window_s\": 1.5, \"sample_rate\": 16,\n"
		"               \"top_k\": 4, \"interval_s\": 30, \"drift_min_coverage\": 0.7},\n"
		"  \"canary\": {\"max_packets\": 100, \"min_packets\": 10},\n"
		"  \"revert\": {\"delay_s\": 0.5, \"window_s\": 1, \"ratio\": 1.2, \"min_packets\": 50},\n"
		"  \"optimizer\": {\"max_hot_keys\": 4, \"min_hot_share\": 0.05, \"small_table_max\": 8,\n"
		"                 \"passes\": \"map_fold,dce\"},\n"
		"  \"metrics\": {\"file\": \"/tmp/m.prom\", \"listen\": \"127.0.0.1:9435\", \"interval_s\": 1},\n"
		"  \"log\": \"/tmp/oplog.jsonl\", \"events\": \"/tmp/ev.jsonl\", \"journal_dir\": \"/tmp/j\", \"pin_dir\": \"/sys/fs/bpf/x\",\n"
		"  \"capture_dir\": \"/tmp/cap\", \"capture\": false }";

	(void)state;
	assert_int_equal(parse(text, &c), 0);
	assert_int_equal(c.select_cnt, 2);
	assert_string_equal(c.select[0].name, "xdp_*");
	assert_string_equal(c.select[0].ifname, "veth*");
	assert_int_equal(c.select[0].kinds, RS_SEL_XDP | RS_SEL_TC);
	assert_int_equal(c.select[1].id, 42);
	assert_int_equal(c.exclude_cnt, 1);
	assert_string_equal(c.exclude[0].netns, "prod-*");
	assert_true(c.tick_s == 0.05 && c.discover_interval_s == 2 && c.settle_s == 0.2);
	assert_true(c.foreign_backoff_s == 0);		/* 0: start over at once */
	assert_true(c.profile_window_s == 1.5 && c.base_window_s == 0.5);
	assert_int_equal(c.sample_rate, 16);
	assert_int_equal(c.top_k, 4);
	assert_true(c.reprofile_interval_s == 30 && c.drift_min_coverage == 0.7);
	assert_true(c.reoptimize_interval_s == 0);
	assert_int_equal(c.canary_max_packets, 100);
	assert_int_equal(c.canary_min_packets, 10);
	assert_true(c.revert_ratio == 1.2 && c.cost_window_s == 1 && c.cost_delay_s == 0.5);
	assert_int_equal(c.cost_min_packets, 50);
	assert_int_equal(c.max_hot_keys, 4);
	assert_int_equal(c.small_table_max, 8);
	assert_string_equal(c.passes, "map_fold,dce");
	assert_string_equal(c.metrics_path, "/tmp/m.prom");
	assert_string_equal(c.metrics_listen, "127.0.0.1:9435");
	assert_string_equal(c.log_path, "/tmp/oplog.jsonl");
	assert_string_equal(c.events_path, "/tmp/ev.jsonl");
	assert_string_equal(c.journal_dir, "/tmp/j");
	assert_string_equal(c.pin_dir, "/sys/fs/bpf/x");
	assert_string_equal(c.capture_dir, "/tmp/cap");
	assert_false(c.capture);
}

/* Each bad config fails with -RS_ERR_FORMAT and a message naming the file and the key. */
static void test_errors(void **state)
{
	static const struct { const char *text, *expect; } cases[] = {
		{ "{\"tick\": 1}", "agent.json: tick: unknown key" },
		{ "{\"profile\": {\"windw_s\": 1}}", "agent.json: profile.windw_s: unknown key" },
		{ "{\"profile\": {\"window_s\": \"3\"}}", "profile.window_s: expected a number" },
		{ "{\"profile\": {\"sample_rate\": 1.5}}", "profile.sample_rate: expected an integer" },
		{ "{\"profile\": {\"sample_rate\": 0}}", "profile.sample_rate: 0 is out of range" },
		{ "{\"revert\": {\"ratio\": 0.5}}", "revert.ratio: 0.5 is out of range" },
		{ "{\"capture\": 1}", "capture: expected true or false" },
		{ "{\"log\": 3}", "log: expected a string" },
		{ "{\"metrics\": []}", "metrics: expected an object" },
		{ "{\"select\": {}}", "select: expected a list of selectors" },
		{ "{\"select\": [{\"nam\": \"x\"}]}", "select[0].nam: unknown key" },
		{ "{\"exclude\": [{}, {\"kind\": \"xdpp\"}]}", "exclude[1].kind: unknown kind 'xdpp'" },
		{ "{\"select\": [{\"kind\": [\"tc\", 4]}]}", "select[0].kind: element 1" },
		{ "{\"select\": [{\"id\": -1}]}", "select[0].id: expected a program id" },
		{ "{\"canary\": {\"max_packets\": 5, \"min_packets\": 6}}",
		  "canary.min_packets: larger than canary.max_packets" },
		{ "{\"tick_s\": 0.1, \"tick_s\": 0.2}", "agent.json: line 1" },
		{ "{\"tick_s\": ", "agent.json: line 1" },
		{ "[]", "expected an object" },
		{ "{\"log\": \"/x\", \"events\": \"/x\"}", "events: must not be the optimization log" },
	};
	struct rs_agent_config c;
	size_t i;

	(void)state;
	for (i = 0; i < RS_ARRAY_SIZE(cases); i++) {
		int err = parse(cases[i].text, &c);

		if (err != -RS_ERR_FORMAT || !strstr(last_warn, cases[i].expect)) {
			print_error("case %zu (%s): err %d, message '%s', expected '%s'\n", i,
				    cases[i].text, err, last_warn, cases[i].expect);
			fail();
		}
	}
}

static void test_file(void **state)
{
	char path[] = "/tmp/rs-test-config-XXXXXX";
	struct rs_agent_config c;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_true(write(fd, "{\"settle_s\": 1.5,\n \"bogus\": true}", 33) == 33);
	close(fd);
	last_warn[0] = 0;
	assert_int_equal(rs_agent_config_load(path, &c), -RS_ERR_FORMAT);
	assert_non_null(strstr(last_warn, path));
	assert_non_null(strstr(last_warn, "bogus: unknown key"));
	fd = open(path, O_WRONLY | O_TRUNC);
	assert_true(fd >= 0);
	assert_true(write(fd, "{\"settle_s\": 1.5}", 17) == 17);
	close(fd);
	assert_int_equal(rs_agent_config_load(path, &c), 0);
	assert_true(c.settle_s == 1.5);
	assert_string_equal(c.path, path);
	unlink(path);
	assert_int_equal(rs_agent_config_load(path, &c), -ENOENT);
}

static struct rs_attach_point point(enum rs_attach_kind kind, uint32_t id, const char *ifname,
				    const char *netns)
{
	struct rs_attach_point pt = { .kind = kind, .prog_id = id };

	snprintf(pt.ifname, sizeof(pt.ifname), "%s", ifname);
	snprintf(pt.netns, sizeof(pt.netns), "%s", netns);
	return pt;
}

static void test_select(void **state)
{
	struct rs_attach_point xdp = point(RS_ATTACH_XDP_NETLINK, 7, "veth0", "blue");
	struct rs_attach_point tc = point(RS_ATTACH_TC_CLS, 8, "eth0", "");
	struct rs_attach_point tcx = point(RS_ATTACH_TCX_LINK, 9, "eth1", "");
	struct rs_attach_point pa = point(RS_ATTACH_PROG_ARRAY, 10, "", "");
	struct rs_agent_config c;

	(void)state;
	/* default: every XDP/TC point */
	assert_int_equal(parse("{}", &c), 0);
	assert_true(rs_agent_config_selects(&c, &xdp, "xdp_lb"));
	assert_true(rs_agent_config_selects(&c, &tc, "fw"));
	assert_true(rs_agent_config_selects(&c, &tcx, "fw"));
	assert_true(rs_agent_config_selects(&c, &pa, "tail"));

	assert_int_equal(parse("{\"select\": [{\"name\": \"xdp_*\"}]}", &c), 0);
	assert_true(rs_agent_config_selects(&c, &xdp, "xdp_lb"));
	assert_false(rs_agent_config_selects(&c, &tc, "fw"));

	assert_int_equal(parse("{\"select\": [{\"kind\": \"tc\"}, {\"id\": 7}]}", &c), 0);
	assert_true(rs_agent_config_selects(&c, &xdp, "xdp_lb"));	/* by id */
	assert_true(rs_agent_config_selects(&c, &tc, "fw"));		/* by kind */
	assert_false(rs_agent_config_selects(&c, &tcx, "fw"));		/* tcx is not tc */
	assert_false(rs_agent_config_selects(&c, &pa, "tail"));

	/* all fields of one selector must match; netns "host" is our own namespace */
	assert_int_equal(parse("{\"select\": [{\"ifname\": \"eth*\", \"netns\": \"host\"}]}", &c), 0);
	assert_false(rs_agent_config_selects(&c, &xdp, "xdp_lb"));
	assert_true(rs_agent_config_selects(&c, &tc, "fw"));
	assert_true(rs_agent_config_selects(&c, &tcx, "fw"));

	/* exclude wins over select */
	assert_int_equal(parse("{\"exclude\": [{\"netns\": \"bl*\"}, {\"kind\": \"prog_array\"}]}",
			       &c), 0);
	assert_false(rs_agent_config_selects(&c, &xdp, "xdp_lb"));
	assert_true(rs_agent_config_selects(&c, &tc, "fw"));
	assert_false(rs_agent_config_selects(&c, &pa, "tail"));
	assert_int_equal(rs_agent_kind_bit(RS_ATTACH_XDP_LINK), RS_SEL_XDP);
	assert_int_equal(rs_agent_kind_bit(RS_ATTACH_TCX), RS_SEL_TCX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_file),
		cmocka_unit_test(test_select),
	};

	rs_set_log_fn(capture_log);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
