// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_scenario.c - scenario files without a kernel: the BTF-guided encoder on types built in
 * memory (ints, __be typedefs, enums, arrays, structs, unions, bitfields, LPM keys, addresses,
 * "hex:"), raw encoding without BTF, file loading and the error messages naming file + path.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/btf.h>
#include <jansson.h>

#include "instrument/instrument.h"

static char last_msg[1024];

static void capture_log(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_WARN)
		vsnprintf(last_msg, sizeof(last_msg), fmt, ap);
}

struct types {
	struct btf *btf;
	int u8, u16, u32, s32, u64, be16, be32, proto_enum;
	int addr16, mac, arr3, vip_key, bits, lpm4, lpm6, wrap_union, nested;
};

static int setup(void **state)
{
	struct types *t = calloc(1, sizeof(*t));
	struct btf *b = btf__new_empty();
	int anon;

	assert_non_null(t);
	assert_non_null(b);
	t->btf = b;
	t->u8 = btf__add_int(b, "unsigned char", 1, 0);
	t->u16 = btf__add_int(b, "unsigned short", 2, 0);
	t->u32 = btf__add_int(b, "unsigned int", 4, 0);
	t->s32 = btf__add_int(b, "int", 4, BTF_INT_SIGNED);
	t->u64 = btf__add_int(b, "unsigned long long", 8, 0);
	anon = btf__add_typedef(b, "__u16", t->u16);
	t->be16 = btf__add_typedef(b, "__be16", anon);
	t->be32 = btf__add_typedef(b, "__be32", t->u32);
	t->proto_enum = btf__add_enum(b, "proto", 4);
	btf__add_enum_value(b, "PROTO_TCP", 6);
	btf__add_enum_value(b, "PROTO_UDP", 17);
	t->addr16 = btf__add_array(b, t->u32, t->u8, 16);
	t->mac = btf__add_array(b, t->u32, t->u8, 6);
	t->arr3 = btf__add_array(b, t->u32, t->u32, 3);

	/* struct vip_key { union { __be32 v4; __u8 v6[16]; }; __be16 port; __u8 proto; __u8 pad; } */
	anon = btf__add_union(b, NULL, 16);
	btf__add_field(b, "v4", t->be32, 0, 0);
	btf__add_field(b, "v6", t->addr16, 0, 0);
	t->vip_key = btf__add_struct(b, "vip_key", 20);
	btf__add_field(b, NULL, anon, 0, 0);
	btf__add_field(b, "port", t->be16, 128, 0);
	btf__add_field(b, "proto", t->u8, 144, 0);
	btf__add_field(b, "pad", t->u8, 152, 0);

	/* struct bits { __u32 a:3, b:5; __u32 c; } */
	t->bits = btf__add_struct(b, "bits", 8);
	btf__add_field(b, "a", t->u32, 0, 3);
	btf__add_field(b, "b", t->u32, 3, 5);
	btf__add_field(b, "c", t->u32, 32, 0);

	anon = btf__add_array(b, t->u32, t->u8, 4);	/* fields must follow their struct */
	t->lpm4 = btf__add_struct(b, "lpm4", 8);
	btf__add_field(b, "prefixlen", t->u32, 0, 0);
	btf__add_field(b, "addr", anon, 32, 0);
	t->lpm6 = btf__add_struct(b, "lpm6", 20);
	btf__add_field(b, "prefixlen", t->u32, 0, 0);
	btf__add_field(b, "addr", t->addr16, 32, 0);

	/* struct nested { __u8 smac[6]; __u8 dmac[6]; __u32 ifindex; enum proto p; __u32 w[3]; } */
	t->nested = btf__add_struct(b, "nested", 32);
	btf__add_field(b, "smac", t->mac, 0, 0);
	btf__add_field(b, "dmac", t->mac, 48, 0);
	btf__add_field(b, "ifindex", t->u32, 96, 0);
	btf__add_field(b, "p", t->proto_enum, 128, 0);
	btf__add_field(b, "w", t->arr3, 160, 0);
	assert_true(t->nested > 0);
	*state = t;
	rs_set_log_fn(capture_log);
	return 0;
}

static int teardown(void **state)
{
	struct types *t = *state;

	btf__free(t->btf);
	free(t);
	rs_set_log_fn(NULL);
	return 0;
}

/* Encode JSON text `js` as type `id` into buf; returns the encoder's result. */
static int enc(struct types *t, int id, const char *js, void *buf, size_t size)
{
	json_error_t jerr;
	json_t *v = json_loads(js, JSON_DECODE_ANY, &jerr);
	int err;

	assert_non_null(v);
	last_msg[0] = '\0';
	err = rs_scenario_encode(t ? t->btf : NULL, t ? (uint32_t)id : 0, v, buf, size,
				 "t.json: maps.m[3].key");
	json_decref(v);
	return err;
}

static void test_ints(void **state)
{
	struct types *t = *state;
	uint8_t buf[8];
	uint32_t u;
	int32_t s;
	uint64_t q;

	assert_int_equal(enc(t, t->u32, "1234", &u, 4), 0);
	assert_int_equal(u, 1234);
	assert_int_equal(enc(t, t->u32, "\"0xdeadbeef\"", &u, 4), 0);
	assert_int_equal(u, 0xdeadbeef);
	assert_int_equal(enc(t, t->s32, "-5", &s, 4), 0);
	assert_int_equal(s, -5);
	assert_int_equal(enc(t, t->u64, "\"0xffffffffffffffff\"", &q, 8), 0);
	assert_true(q == UINT64_MAX);
	/* IPv4 string in a 4-byte integer: network byte order in memory */
	assert_int_equal(enc(t, t->u32, "\"10.0.0.1\"", buf, 4), 0);
	assert_memory_equal(buf, "\x0a\x00\x00\x01", 4);
	/* range and type errors */
	assert_int_not_equal(enc(t, t->u8, "256", buf, 1), 0);
	assert_non_null(strstr(last_msg, "out of range"));
	assert_int_not_equal(enc(t, t->u32, "-1", buf, 4), 0);
	assert_int_not_equal(enc(t, t->u32, "1.5", buf, 4), 0);
	assert_int_not_equal(enc(t, t->u32, "\"fish\"", buf, 4), 0);
	assert_string_equal(last_msg, "t.json: maps.m[3].key: expected a number");
}

static void test_be(void **state)
{
	struct types *t = *state;
	uint8_t buf[4];

	assert_int_equal(enc(t, t->be16, "80", buf, 2), 0);
	assert_memory_equal(buf, "\x00\x50", 2);
	assert_int_equal(enc(t, t->be32, "\"0x01020304\"", buf, 4), 0);
	assert_memory_equal(buf, "\x01\x02\x03\x04", 4);
	assert_int_equal(enc(t, t->be32, "\"192.168.1.2\"", buf, 4), 0);
	assert_memory_equal(buf, "\xc0\xa8\x01\x02", 4);
	assert_int_not_equal(enc(t, t->be16, "65536", buf, 2), 0);
}

static void test_struct_union(void **state)
{
	struct types *t = *state;
	uint8_t buf[20], want[20] = { 0 };

	assert_int_equal(enc(t, t->vip_key, "{\"v4\": \"10.1.2.3\", \"port\": 443, \"proto\": 6}",
			     buf, sizeof(buf)), 0);
	memcpy(want, "\x0a\x01\x02\x03", 4);
	want[16] = 0x01;
	want[17] = 0xbb;
	want[18] = 6;
	assert_memory_equal(buf, want, sizeof(want));

	assert_int_equal(enc(t, t->vip_key, "{\"v6\": \"2001:db8::1\", \"port\": 80, \"proto\": 17}",
			     buf, sizeof(buf)), 0);
	memset(want, 0, sizeof(want));
	memcpy(want, "\x20\x01\x0d\xb8", 4);
	want[15] = 1;
	want[17] = 80;
	want[18] = 17;
	assert_memory_equal(buf, want, sizeof(want));

	/* errors name the JSON path down to the member */
	assert_int_not_equal(enc(t, t->vip_key, "{\"v4\": \"10.0.0.1\", \"port\": \"http\"}",
				 buf, sizeof(buf)), 0);
	assert_string_equal(last_msg, "t.json: maps.m[3].key.port: expected a number");
	assert_int_not_equal(enc(t, t->vip_key, "{\"prot\": 6}", buf, sizeof(buf)), 0);
	assert_non_null(strstr(last_msg, "no member \"prot\" in struct vip_key"));
	assert_int_not_equal(enc(t, t->vip_key, "[1, 2]", buf, sizeof(buf)), 0);
	assert_non_null(strstr(last_msg, "expected an object"));
	/* whole struct as hex of exactly its size */
	assert_int_equal(enc(t, t->vip_key, "\"hex:0a0000010000000000000000000000000050060\"",
			     buf, sizeof(buf)), -EINVAL);
	assert_int_equal(enc(t, t->vip_key, "\"hex:0a000001000000000000000000000000005006ff\"",
			     buf, sizeof(buf)), 0);
	assert_int_equal(buf[19], 0xff);
}

static void test_arrays_enum(void **state)
{
	struct types *t = *state;
	uint8_t buf[32], want[32] = { 0 };
	uint32_t w[3];

	assert_int_equal(enc(t, t->nested,
			     "{\"smac\": \"02:00:00:00:00:01\", \"dmac\": \"hex:0a0b0c\","
			     " \"ifindex\": 7, \"p\": \"PROTO_UDP\", \"w\": [1, 2]}",
			     buf, sizeof(buf)), 0);
	memcpy(want, "\x02\x00\x00\x00\x00\x01\x0a\x0b\x0c", 9);
	want[12] = 7;
	want[16] = 17;
	want[20] = 1;
	want[24] = 2;
	assert_memory_equal(buf, want, sizeof(want));

	assert_int_equal(enc(t, t->proto_enum, "6", buf, 4), 0);
	assert_int_equal(buf[0], 6);
	assert_int_not_equal(enc(t, t->proto_enum, "\"PROTO_SCTP\"", buf, 4), 0);
	assert_non_null(strstr(last_msg, "not a member of the enum"));

	assert_int_not_equal(enc(t, t->arr3, "[1, 2, 3, 4]", w, sizeof(w)), 0);
	assert_int_not_equal(enc(t, t->arr3, "[1, \"x\", 3]", w, sizeof(w)), 0);
	assert_string_equal(last_msg, "t.json: maps.m[3].key[1]: expected a number");
	assert_int_not_equal(enc(t, t->mac, "\"2001:db8::1\"", buf, 6), 0);
	assert_non_null(strstr(last_msg, "IPv6 address needs 16 bytes"));
	assert_int_not_equal(enc(t, t->mac, "\"hex:00112233445566\"", buf, 6), 0);
}

static void test_bitfields(void **state)
{
	struct types *t = *state;
	uint8_t buf[8];

	assert_int_equal(enc(t, t->bits, "{\"a\": 5, \"b\": 31, \"c\": 9}", buf, sizeof(buf)), 0);
	assert_int_equal(buf[0], 5 | 31 << 3);
	assert_int_equal(buf[4], 9);
	assert_int_not_equal(enc(t, t->bits, "{\"a\": 8}", buf, sizeof(buf)), 0);
	assert_non_null(strstr(last_msg, "maps.m[3].key.a: value out of range for a 3-bit field"));
}

static void test_lpm_keys(void **state)
{
	struct types *t = *state;
	uint8_t buf[20], want[20] = { 0 };

	assert_int_equal(enc(t, t->lpm4, "\"10.20.0.0/16\"", buf, 8), 0);
	assert_memory_equal(buf, "\x10\x00\x00\x00\x0a\x14\x00\x00", 8);
	assert_int_equal(enc(t, t->lpm4, "{\"prefixlen\": 8, \"addr\": \"10.0.0.0\"}", buf, 8), 0);
	assert_memory_equal(buf, "\x08\x00\x00\x00\x0a\x00\x00\x00", 8);
	assert_int_equal(enc(t, t->lpm6, "\"2001:db8::/32\"", buf, 20), 0);
	want[0] = 32;
	memcpy(want + 4, "\x20\x01\x0d\xb8", 4);
	assert_memory_equal(buf, want, 20);
	assert_int_not_equal(enc(t, t->lpm4, "\"2001:db8::/32\"", buf, 8), 0);
	assert_int_not_equal(enc(t, t->lpm4, "\"10.0.0.0/33\"", buf, 8), 0);
	assert_non_null(strstr(last_msg, "bad prefix length"));
}

static void test_raw(void **state)
{
	uint8_t buf[8];
	uint32_t u;

	(void)state;
	assert_int_equal(enc(NULL, 0, "\"hex:00010203\"", buf, 4), 0);
	assert_memory_equal(buf, "\x00\x01\x02\x03", 4);
	assert_int_not_equal(enc(NULL, 0, "\"hex:000102\"", buf, 4), 0);
	assert_non_null(strstr(last_msg, "4 bytes"));
	assert_int_equal(enc(NULL, 0, "42", &u, 4), 0);
	assert_int_equal(u, 42);
	assert_int_not_equal(enc(NULL, 0, "42", buf, 6), 0);
	assert_int_not_equal(enc(NULL, 0, "{\"a\": 1}", buf, 4), 0);
}

static char *write_tmp(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/%s-%d-%s", "rs-test-scenario", (int)getpid(), name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_load(void **state)
{
	struct rs_scenario *sc;
	const char *p;
	double at;
	bool secs;

	(void)state;
	p = write_tmp("ok.json",
		      "{\"program\": \"l4lb\", \"maps\": {\"vips\": [{\"key\": 1, \"value\": 2}]},"
		      " \"updates\": [{\"at\": 0.5, \"map\": \"vips\", \"op\": \"delete\", \"key\": 1},"
		      "  {\"at\": 3, \"unit\": \"s\", \"map\": \"vips\", \"op\": \"update\","
		      "   \"key\": 1, \"value\": 3}],"
		      " \"traffic\": {\"flows\": []}}");
	assert_int_equal(rs_scenario_load(p, &sc), 0);
	unlink(p);
	assert_string_equal(rs_scenario_program(sc), "l4lb");
	assert_non_null(rs_scenario_traffic(sc));
	assert_int_equal(rs_scenario_update_cnt(sc), 2);
	assert_int_equal(rs_scenario_update_at(sc, 1, &at, &secs), 0);
	assert_true(secs);
	assert_true(at == 3);
	assert_int_equal(rs_scenario_update_at(sc, 0, &at, &secs), 0);
	assert_false(secs);
	/* a map named in the scenario but absent from the program is an error naming it */
	last_msg[0] = '\0';
	assert_int_equal(rs_scenario_apply(sc, NULL, NULL, 0, NULL), -RS_ERR_NOT_FOUND);
	assert_non_null(strstr(last_msg, "maps.vips: the program has no map named vips"));
	assert_int_equal(rs_scenario_apply_update(sc, 0, NULL, NULL, 0), -RS_ERR_NOT_FOUND);
	assert_non_null(strstr(last_msg, "updates[0].map"));
	rs_scenario_free(sc);

	p = write_tmp("bad.json", "{\"maps\": {\"vips\": [{\"key\": 1}, {\"value\": 2}]}}");
	assert_int_equal(rs_scenario_load(p, &sc), -RS_ERR_FORMAT);
	unlink(p);
	assert_null(sc);
	assert_non_null(strstr(last_msg, "-bad.json: maps.vips[1]: expected an object with \"key\""));

	p = write_tmp("op.json", "{\"updates\": [{\"map\": \"x\", \"op\": \"insert\", \"key\": 1}]}");
	assert_int_equal(rs_scenario_load(p, &sc), -RS_ERR_FORMAT);
	unlink(p);
	assert_non_null(strstr(last_msg, "updates[0].op"));

	p = write_tmp("syntax.json", "{\"maps\": {\n\"vips\": [}");
	assert_int_equal(rs_scenario_load(p, &sc), -RS_ERR_FORMAT);
	unlink(p);
	assert_non_null(strstr(last_msg, "-syntax.json:2:"));

	assert_int_equal(rs_scenario_load("/nonexistent/x.json", &sc), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ints),
		cmocka_unit_test(test_be),
		cmocka_unit_test(test_struct_union),
		cmocka_unit_test(test_arrays_enum),
		cmocka_unit_test(test_bitfields),
		cmocka_unit_test(test_lpm_keys),
		cmocka_unit_test(test_raw),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
