// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_mapcopy.c - rs_map_copy (instrument/mapcopy.c).
 *
 * Every map type the samples and xdp-filter use (ARRAY, PERCPU_ARRAY, HASH, PERCPU_HASH,
 * LRU_HASH, LRU_PERCPU_HASH, LPM_TRIE, 65536-entry arrays sparse and dense, a 10000-entry
 * hash) is copied into a fresh clone, by batches and key by key, and the clone must equal the
 * source entry for entry (every CPU's value); a hash copied with clear_dst into a clone that
 * holds stale entries ends equal too; an array copied into a non-empty clone gets its zero
 * values back; a DEVMAP (no batch operations) goes key by key.  The timing of a 65536-entry array copy, key by key vs batched, is printed
 * (not asserted).  Maps only: no program, no network.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "instrument/instrument.h"
#include "optimizer/common.h"
#include "tests/kernel/ktest.h"

static int ncpus;

struct lpm_key {
	uint32_t prefixlen;
	uint8_t addr[4];
};

struct shape {
	const char *name;
	uint32_t type, key_size, value_size, max_entries, flags;
};

static size_t user_vsz(const struct shape *s)
{
	if (rs_map_type_percpu(s->type))
		return (size_t)((s->value_size + 7) & ~7u) * ncpus;
	return s->value_size;
}

static int create(const struct shape *s)
{
	LIBBPF_OPTS(bpf_map_create_opts, co, .map_flags = s->flags);
	int fd = bpf_map_create(s->type, s->name, s->key_size, s->value_size, s->max_entries,
				&co);

	if (fd < 0)
		fprintf(stderr, "%s: create: %s\n", s->name, strerror(errno));
	assert_true(fd >= 0);
	return fd;
}

/* Deterministic key / value number i (values differ per CPU). */
static void make_key(const struct shape *s, uint32_t i, uint8_t *key)
{
	memset(key, 0, s->key_size);
	if (s->type == BPF_MAP_TYPE_LPM_TRIE) {
		/* /24 and /32 prefixes, host bits zero */
		struct lpm_key k = { .prefixlen = i % 2 ? 24 : 32,
				     .addr = { 10, (uint8_t)(i >> 8), (uint8_t)i, 0 } };

		memcpy(key, &k, sizeof(k));
		return;
	}
	if (s->type == BPF_MAP_TYPE_ARRAY || s->type == BPF_MAP_TYPE_PERCPU_ARRAY) {
		memcpy(key, &i, 4);
		return;
	}
	/* hashes: spread the number over the whole key */
	for (uint32_t b = 0; b < s->key_size; b++)
		key[b] = (uint8_t)((i * 2654435761u) >> (8 * (b % 4))) ^ (uint8_t)b;
	memcpy(key, &i, s->key_size < 4 ? s->key_size : 4);
}

static void make_val(const struct shape *s, uint32_t i, uint8_t *val)
{
	size_t stride = (s->value_size + 7) & ~7u;
	int c, n = rs_map_type_percpu(s->type) ? ncpus : 1;

	memset(val, 0, user_vsz(s));
	for (c = 0; c < n; c++)
		for (uint32_t b = 0; b < s->value_size; b++)
			val[c * stride + b] = (uint8_t)(i * 7 + b + c * 31 + 1);
}

/* Fill `cnt` entries (arrays: every `step`-th index). */
static void fill(const struct shape *s, int fd, uint32_t cnt, uint32_t step)
{
	uint8_t key[64], *val = malloc(user_vsz(s));
	uint32_t i;

	assert_non_null(val);
	for (i = 0; i < cnt; i++) {
		uint32_t n = i * step;

		make_key(s, n, key);
		make_val(s, n, val);
		if (bpf_map_update_elem(fd, key, val, BPF_ANY)) {
			fprintf(stderr, "%s: update %u: %s\n", s->name, n, strerror(errno));
			fail();
		}
	}
	free(val);
}

static uint32_t count(int fd, uint32_t key_size)
{
	uint8_t k[64], nk[64];
	uint32_t n = 0;
	bool first = true;

	(void)key_size;
	while (!bpf_map_get_next_key(fd, first ? NULL : k, nk)) {
		first = false;
		memcpy(k, nk, sizeof(k));
		n++;
	}
	return n;
}

/* dst equals src: same number of keys, every key of src in dst with identical bytes. */
static void assert_equal_maps(const struct shape *s, int src, int dst)
{
	size_t vsz = user_vsz(s);
	uint8_t k[64], nk[64];
	uint8_t *va = malloc(vsz), *vb = malloc(vsz);
	uint32_t n = 0;
	bool first = true;

	assert_non_null(va);
	assert_non_null(vb);
	while (!bpf_map_get_next_key(src, first ? NULL : k, nk)) {
		first = false;
		memcpy(k, nk, s->key_size);
		if (bpf_map_lookup_elem(src, k, va)) {
			/* a DEVMAP iterates empty slots too: empty in both */
			assert_int_equal(errno, ENOENT);
			assert_int_not_equal(bpf_map_lookup_elem(dst, k, vb), 0);
			n++;
			continue;
		}
		if (bpf_map_lookup_elem(dst, k, vb)) {
			fprintf(stderr, "%s: entry %u missing in the copy\n", s->name, n);
			fail();
		}
		if (memcmp(va, vb, vsz)) {
			fprintf(stderr, "%s: entry %u differs in the copy\n", s->name, n);
			fail();
		}
		n++;
	}
	assert_int_equal(count(dst, s->key_size), n);
	free(va);
	free(vb);
}

static const struct shape shapes[] = {
	{ "mc_array", BPF_MAP_TYPE_ARRAY, 4, 12, 64, 0 },
	{ "mc_pcpu_array", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 12, 64, 0 },
	{ "mc_hash", BPF_MAP_TYPE_HASH, 16, 24, 2048, 0 },
	{ "mc_hash_nopre", BPF_MAP_TYPE_HASH, 8, 8, 2048, BPF_F_NO_PREALLOC },
	{ "mc_pcpu_hash", BPF_MAP_TYPE_PERCPU_HASH, 8, 12, 1024, 0 },
	{ "mc_lru", BPF_MAP_TYPE_LRU_HASH, 8, 16, 4096, 0 },
	{ "mc_lru_pcpu", BPF_MAP_TYPE_LRU_PERCPU_HASH, 8, 8, 4096, 0 },
	{ "mc_lpm", BPF_MAP_TYPE_LPM_TRIE, 8, 8, 1024, BPF_F_NO_PREALLOC },
	{ "mc_ports", BPF_MAP_TYPE_ARRAY, 4, 4, 65536, 0 },	/* xdp-filter filter_ports */
	{ "mc_dense", BPF_MAP_TYPE_ARRAY, 4, 8, 65536, 0 },
	{ "mc_ipv4", BPF_MAP_TYPE_HASH, 4, 8, 10000, 0 },	/* xdp-filter filter_ipv4 */
};

/* entries filled per shape (arrays: every step-th index) */
static const uint32_t fills[][2] = {
	{ 20, 3 }, { 64, 1 }, { 1500, 1 }, { 700, 1 }, { 600, 1 }, { 1000, 1 }, { 900, 1 },
	{ 300, 1 }, { 40, 997 }, { 65536, 1 }, { 10000, 1 },
};

static void copy_one(const struct shape *s, uint32_t cnt, uint32_t step, bool no_batch,
		     uint32_t batch)
{
	uint64_t copied = ~0ull;
	RS_OPTS(rs_map_copy_opts, o, .dst_empty = true, .no_batch = no_batch, .batch = batch,
		.copied = &copied);
	int src = create(s), dst = create(s);

	fill(s, src, cnt, step);
	assert_int_equal(rs_map_copy(src, dst, NULL, &o), 0);
	assert_true(copied != ~0ull);
	assert_equal_maps(s, src, dst);
	if (s->type != BPF_MAP_TYPE_ARRAY && s->type != BPF_MAP_TYPE_PERCPU_ARRAY)
		assert_int_equal(copied, cnt);
	close(src);
	close(dst);
}

static void test_types_batched(void **state)
{
	(void)state;
	for (size_t i = 0; i < RS_ARRAY_SIZE(shapes); i++)
		copy_one(&shapes[i], fills[i][0], fills[i][1], false, 0);
}

static void test_types_key_by_key(void **state)
{
	(void)state;
	for (size_t i = 0; i < RS_ARRAY_SIZE(shapes); i++)
		copy_one(&shapes[i], fills[i][0], fills[i][1], true, 0);
}

/* Small batches: many round trips, hash buckets larger than a batch (ENOSPC -> bigger). */
static void test_small_batches(void **state)
{
	(void)state;
	copy_one(&shapes[2], 1500, 1, false, 7);
	copy_one(&shapes[1], 64, 1, false, 5);
	copy_one(&shapes[10], 10000, 1, false, 1);
}

/* Non-empty destinations: a hash with stale entries (clear_dst), an array with other values. */
static void test_dirty_destination(void **state)
{
	const struct shape *h = &shapes[2], *a = &shapes[0], *l = &shapes[7];
	RS_OPTS(rs_map_copy_opts, o, .clear_dst = true);
	uint8_t key[64];
	int src, dst;

	(void)state;
	src = create(h);
	dst = create(h);
	fill(h, src, 100, 1);
	fill(h, dst, 300, 1);			/* overlaps src, plus 200 stale keys */
	make_key(h, 5, key);
	assert_int_equal(bpf_map_delete_elem(src, key), 0);	/* present only in dst */
	assert_int_equal(rs_map_copy(src, dst, NULL, &o), 0);
	assert_equal_maps(h, src, dst);
	close(src);
	close(dst);

	src = create(a);
	dst = create(a);
	fill(a, src, 10, 5);
	fill(a, dst, 64, 1);			/* every index non-zero in dst */
	assert_int_equal(rs_map_copy(src, dst, NULL, &o), 0);
	assert_equal_maps(a, src, dst);		/* src's zero values overwrote dst's */
	close(src);
	close(dst);

	src = create(l);			/* no batch ops: cleared, then key by key */
	dst = create(l);
	fill(l, src, 50, 1);
	fill(l, dst, 200, 1);
	assert_int_equal(rs_map_copy(src, dst, NULL, &o), 0);
	assert_equal_maps(l, src, dst);
	close(src);
	close(dst);
}

/* A DEVMAP (no batch operations: the key-by-key fallback), values are ifindexes (lo). */
static void test_devmap(void **state)
{
	const struct shape s = { "mc_devmap", BPF_MAP_TYPE_DEVMAP, 4, 4, 8, 0 };
	uint64_t copied = 0;
	RS_OPTS(rs_map_copy_opts, o, .dst_empty = true, .copied = &copied);
	uint32_t k, lo = 1;
	int src, dst;

	(void)state;
	src = create(&s);
	dst = create(&s);
	for (k = 0; k < 8; k += 3)
		assert_int_equal(bpf_map_update_elem(src, &k, &lo, BPF_ANY), 0);
	assert_int_equal(rs_map_copy(src, dst, NULL, &o), 0);
	assert_int_equal(copied, 3);
	assert_equal_maps(&s, src, dst);
	close(src);
	close(dst);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* 65536-entry arrays: key by key vs batched, sparse (filter_ports) and dense. */
static void test_timing(void **state)
{
	(void)state;
	for (size_t i = 8; i <= 9; i++) {
		const struct shape *s = &shapes[i];
		int src = create(s), d1 = create(s), d2 = create(s), d3 = create(s);
		RS_OPTS(rs_map_copy_opts, slow, .no_batch = true, .dst_empty = true);
		RS_OPTS(rs_map_copy_opts, fast, .dst_empty = true);
		RS_OPTS(rs_map_copy_opts, full);
		double t0, t1, t2, t3;

		fill(s, src, fills[i][0], fills[i][1]);
		t0 = now_ms();
		assert_int_equal(rs_map_copy(src, d1, NULL, &slow), 0);
		t1 = now_ms();
		assert_int_equal(rs_map_copy(src, d2, NULL, &fast), 0);
		t2 = now_ms();
		assert_int_equal(rs_map_copy(src, d3, NULL, &full), 0);
		t3 = now_ms();
		assert_equal_maps(s, src, d1);
		assert_equal_maps(s, src, d2);
		assert_equal_maps(s, src, d3);
		printf("%s (65536 entries, %u set): key by key %.1f ms, batched %.1f ms "
		       "(fresh clone), %.1f ms (every value written)\n", s->name, fills[i][0],
		       t1 - t0, t2 - t1, t3 - t2);
		close(src);
		close(d1);
		close(d2);
		close(d3);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_batched),
		cmocka_unit_test(test_types_key_by_key),
		cmocka_unit_test(test_small_batches),
		cmocka_unit_test(test_dirty_destination),
		cmocka_unit_test(test_devmap),
		cmocka_unit_test(test_timing),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 1)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
