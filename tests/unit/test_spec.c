// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_spec.c - PROG spec parsing (bpftool grammar) and the text forms of specs and attach
 * points.  Pure: no kernel needed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <linux/if_link.h>

#include "agent/agent.h"

static char last_warn[512];

static void capture_log(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_WARN)
		vsnprintf(last_warn, sizeof(last_warn), fmt, ap);
}

static int parse(const char *line, struct rs_prog_spec *spec, int *consumed)
{
	static char copy[512];
	char *argv[16], *tok, *save = NULL;
	int argc = 0;

	snprintf(copy, sizeof(copy), "%s", line);
	for (tok = strtok_r(copy, " ", &save); tok && argc < 16; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	last_warn[0] = 0;
	return rs_prog_spec_parse(argc, argv, spec, consumed);
}

static void test_id(void **state)
{
	struct rs_prog_spec s;
	int used;

	assert_int_equal(parse("id 42", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_ID);
	assert_int_equal(s.id, 42);
	assert_int_equal(used, 2);
	/* words after the spec are left for the command */
	assert_int_equal(parse("id 7 jited linum", &s, &used), 0);
	assert_int_equal(used, 2);
	assert_int_equal(s.id, 7);
	assert_int_equal(parse("id 0x10", &s, &used), 0);
	assert_int_equal(s.id, 16);

	assert_int_equal(parse("id 0", &s, &used), -EINVAL);
	assert_int_equal(parse("id -1", &s, &used), -EINVAL);
	assert_int_equal(parse("id abc", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "abc"));
	assert_int_equal(parse("id 12x", &s, &used), -EINVAL);
	assert_int_equal(parse("id 4294967296", &s, &used), -EINVAL);
	assert_int_equal(parse("id", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "missing"));
	assert_int_equal(used, 0);
}

static void test_tag(void **state)
{
	static const uint8_t want[8] = { 0x3b, 0x18, 0x51, 0x87, 0xf1, 0x85, 0x5c, 0x4c };
	struct rs_prog_spec s;
	char buf[64];
	int used;

	assert_int_equal(parse("tag 3b185187f1855c4c", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_TAG);
	assert_memory_equal(s.tag, want, 8);
	assert_int_equal(parse("tag 3B:18:51:87:F1:85:5C:4C", &s, &used), 0);
	assert_memory_equal(s.tag, want, 8);
	assert_string_equal(rs_prog_spec_str(&s, buf, sizeof(buf)), "tag 3b185187f1855c4c");

	assert_int_equal(parse("tag 3b185187f1855c4", &s, &used), -EINVAL);	/* 15 digits */
	assert_int_equal(parse("tag 3b185187f1855c4c00", &s, &used), -EINVAL);	/* 18 */
	assert_int_equal(parse("tag 3b185187f1855c4g", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "16 hex digits"));
	assert_int_equal(parse("tag 3b:18:51:87:f1:85:5c:4c:", &s, &used), -EINVAL);
}

static void test_name_pinned(void **state)
{
	struct rs_prog_spec s;
	char buf[64];
	int used;

	assert_int_equal(parse("name xdp_filter", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_NAME);
	assert_string_equal(s.str, "xdp_filter");
	assert_string_equal(rs_prog_spec_str(&s, buf, sizeof(buf)), "name xdp_filter");
	assert_int_equal(parse("pinned /sys/fs/bpf/x", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_PINNED);
	assert_string_equal(s.str, "/sys/fs/bpf/x");
	assert_int_equal(used, 2);
	assert_int_equal(parse("pinned", &s, &used), -EINVAL);
	assert_int_equal(parse("name", &s, &used), -EINVAL);
}

static void test_dev(void **state)
{
	struct rs_prog_spec s;
	char buf[64];
	int used;

	assert_int_equal(parse("dev eth0 xdp", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_DEV_XDP);
	assert_string_equal(s.str, "eth0");
	assert_int_equal(used, 3);
	assert_int_equal(parse("dev eth0 tc ingress", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_DEV_TC_INGRESS);
	assert_int_equal(used, 4);
	assert_string_equal(rs_prog_spec_str(&s, buf, sizeof(buf)), "dev eth0 tc ingress");
	assert_int_equal(parse("dev eth0 tc egress", &s, &used), 0);
	assert_int_equal(s.kind, RS_SPEC_DEV_TC_EGRESS);

	assert_int_equal(parse("dev eth0", &s, &used), -EINVAL);
	assert_int_equal(parse("dev eth0 tc", &s, &used), -EINVAL);
	assert_int_equal(parse("dev eth0 tc sideways", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "sideways"));
	assert_int_equal(parse("dev eth0 lwt", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "lwt"));
	assert_int_equal(parse("dev averyveryverylongname xdp", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "too long"));
}

static void test_bad_keyword(void **state)
{
	struct rs_prog_spec s;
	int used = 99;

	assert_int_equal(parse("ident 4", &s, &used), -EINVAL);
	assert_non_null(strstr(last_warn, "ident"));
	assert_int_equal(used, 0);
	assert_int_equal(parse("", &s, &used), -EINVAL);
}

/* Every spec's text parses back to the same spec. */
static void test_roundtrip(void **state)
{
	static const char *const lines[] = {
		"id 1", "id 4294967295", "pinned /sys/fs/bpf/a", "tag 0011223344556677",
		"name foo", "dev veth0 xdp", "dev veth0 tc ingress", "dev lo tc egress",
	};
	struct rs_prog_spec a, b;
	char buf[128];
	size_t i;
	int used;

	for (i = 0; i < RS_ARRAY_SIZE(lines); i++) {
		assert_int_equal(parse(lines[i], &a, &used), 0);
		rs_prog_spec_str(&a, buf, sizeof(buf));
		assert_string_equal(buf, lines[i]);
		assert_int_equal(parse(buf, &b, &used), 0);
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

static void test_attach_point_str(void **state)
{
	struct rs_attach_point ap = {
		.kind = RS_ATTACH_TC_CLS, .prog_id = 3, .ifindex = 2, .ifname = "veth0",
		.netns = "blue", .egress = true, .tc_handle = 1, .tc_prio = 49152,
	};
	char buf[256];

	assert_string_equal(rs_attach_point_str(&ap, buf, sizeof(buf)),
			    "tc egress dev veth0 netns blue handle 0x1 prio 49152");
	ap = (struct rs_attach_point){ .kind = RS_ATTACH_XDP_LINK, .ifname = "eth0",
				       .xdp_mode = XDP_ATTACHED_DRV, .link_id = 9 };
	assert_string_equal(rs_attach_point_str(&ap, buf, sizeof(buf)), "xdp drv dev eth0 link 9");
	assert_string_equal(rs_attach_kind_name(RS_ATTACH_TCX_LINK), "tcx_link");
	assert_string_equal(rs_attach_kind_name(RS_ATTACH_PROG_ARRAY), "prog_array");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_id),
		cmocka_unit_test(test_tag),
		cmocka_unit_test(test_name_pinned),
		cmocka_unit_test(test_dev),
		cmocka_unit_test(test_bad_keyword),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_attach_point_str),
	};

	rs_set_log_fn(capture_log);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
