// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_profile_json.c - profiles as JSON (instrument/profile_json.c): a save/load round trip
 * keeps every field the optimizer reads (keys byte for byte, counts, branch counts, rate,
 * packets, window, cost), keys are decoded with BTF for people, and malformed files are
 * refused with -RS_ERR_FORMAT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

static void make_profile(struct rs_profile *p)
{
	static const uint8_t k[] = { 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x01 };

	memset(p, 0, sizeof(*p));
	p->packets = 1234;
	p->sample_rate = 64;
	p->window_s = 2.5;
	p->ns_per_packet = 71.25;
	strcpy(p->ns_source, "bpf_stats");
	p->site_cnt = 1;
	p->sites = calloc(1, sizeof(*p->sites));
	p->sites[0].insn = 42;
	p->sites[0].map_idx = 3;
	p->sites[0].key_size = 4;
	p->sites[0].lookups = 100;
	p->sites[0].key_cnt = 2;
	p->sites[0].keys = malloc(8);
	memcpy(p->sites[0].keys, k, 8);
	p->sites[0].counts = malloc(2 * sizeof(uint64_t));
	p->sites[0].counts[0] = 70;
	p->sites[0].counts[1] = 20;
	p->branch_cnt = 2;
	p->branches = calloc(2, sizeof(*p->branches));
	p->branches[0] = (struct rs_branch_profile){ .insn = 7, .taken = 3, .not_taken = 1 };
	p->branches[1] = (struct rs_branch_profile){ .insn = 9, .taken = 0, .not_taken = 0 };
}

static void test_roundtrip(void **state)
{
	char path[] = "/tmp/rs_profile_XXXXXX";
	struct rs_profile a, b;
	json_t *o, *k;
	int fd;

	(void)state;
	make_profile(&a);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(rs_profile_save(path, &a, NULL), 0);
	assert_int_equal(rs_profile_load(path, &b), 0);
	unlink(path);
	assert_int_equal(b.packets, 1234);
	assert_int_equal(b.sample_rate, 64);
	assert_true(b.window_s == 2.5);
	assert_true(b.ns_per_packet == 71.25);
	assert_string_equal(b.ns_source, "bpf_stats");
	assert_int_equal(b.site_cnt, 1);
	assert_int_equal(b.sites[0].insn, 42);
	assert_int_equal(b.sites[0].map_idx, 3);
	assert_int_equal(b.sites[0].key_size, 4);
	assert_int_equal(b.sites[0].lookups, 100);
	assert_int_equal(b.sites[0].key_cnt, 2);
	assert_memory_equal(b.sites[0].keys, a.sites[0].keys, 8);
	assert_int_equal(b.sites[0].counts[1], 20);
	assert_int_equal(b.branch_cnt, 2);
	assert_int_equal(b.branches[0].taken, 3);
	assert_int_equal(b.branches[0].not_taken, 1);

	/* the JSON itself: hex keys, shares, p_taken null for a branch never run */
	o = rs_profile_to_json(&a, NULL);
	k = json_array_get(json_object_get(json_array_get(json_object_get(o, "sites"), 0),
					   "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k, "key")), "deadbeef");
	assert_true(json_real_value(json_object_get(k, "share")) == 0.7);
	assert_true(json_is_null(json_object_get(json_array_get(json_object_get(o, "branches"),
								 1), "p_taken")));
	json_decref(o);
	rs_profile_free(&a);
	rs_profile_free(&b);
}

static void expect_bad(const char *text)
{
	struct rs_profile p;
	json_error_t je;
	json_t *o = json_loads(text, 0, &je);

	assert_non_null(o);
	assert_int_equal(rs_profile_from_json(o, &p), -RS_ERR_FORMAT);
	assert_null(p.sites);
	json_decref(o);
}

static void test_malformed(void **state)
{
	(void)state;
	expect_bad("[]");
	expect_bad("{\"format\":2,\"packets\":1,\"sample_rate\":1,\"sites\":[],\"branches\":[]}");
	expect_bad("{\"packets\":1,\"sites\":[],\"branches\":[]}");
	expect_bad("{\"packets\":1,\"sample_rate\":1,\"sites\":{},\"branches\":[]}");
	expect_bad("{\"packets\":1,\"sample_rate\":1,\"branches\":[],\"sites\":[{\"insn\":1,"
		   "\"map_idx\":0,\"key_size\":2,\"lookups\":1,\"keys\":[{\"key\":\"abc\","
		   "\"count\":1}]}]}");
	expect_bad("{\"packets\":1,\"sample_rate\":1,\"branches\":[],\"sites\":[{\"insn\":1,"
		   "\"map_idx\":0,\"key_size\":2,\"lookups\":1,\"keys\":[{\"key\":\"zz00\","
		   "\"count\":1}]}]}");
	expect_bad("{\"packets\":1,\"sample_rate\":1,\"sites\":[],\"branches\":[{\"insn\":1}]}");
	{
		struct rs_profile p;

		assert_int_equal(rs_profile_load("/nonexistent/p.json", &p), -RS_ERR_FORMAT);
	}
}

/* Keys decoded through BTF (a struct of two u16), hex without a type. */
static void test_key_str(void **state)
{
	struct btf *btf = btf__new_empty();
	uint8_t key[4] = { 1, 0, 2, 0 };
	char buf[128];
	int u16, st;

	(void)state;
	u16 = btf__add_int(btf, "u16", 2, 0);
	st = btf__add_struct(btf, "k", 4);
	btf__add_field(btf, "a", u16, 0, 0);
	btf__add_field(btf, "b", u16, 16, 0);
	assert_int_equal(rs_profile_key_str(btf, st, key, 4, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, ".a = (u16)1"));
	assert_non_null(strstr(buf, ".b = (u16)2"));
	assert_null(strchr(buf, '\n'));
	assert_int_equal(rs_profile_key_str(NULL, 0, key, 4, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "01000200");
	assert_int_equal(rs_profile_key_str(NULL, 0, key, 4, buf, 4), -ENOSPC);
	btf__free(btf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_key_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
