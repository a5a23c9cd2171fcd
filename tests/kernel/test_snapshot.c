// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_snapshot.c - map snapshots (instrument/snapshot.c).
 *
 * Every map type the sample data planes use (HASH, ARRAY, LRU_HASH, LPM_TRIE, PERCPU_ARRAY)
 * plus PERCPU_HASH, PROG_ARRAY, ARRAY_OF_MAPS, DEVMAP and a ring buffer: entries and values
 * equal what was written (per-CPU values per CPU, fd maps as ids), the complete flag (entry
 * limit), the frozen flag, types and sizes; ext_writers: a second loaded program that updates
 * a map makes it RS_EXT_UPDATES, a map only the program itself writes stays 0, an excluded
 * program does not count, offline snapshots (from fds) skip the scan; with a guard the maps
 * are watched and the recorded generation is the live one until a write moves it.
 * The test runs in a network namespace of its own (unshare) for the devmap's device.
 */
#include <errno.h>
#include <sched.h>
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

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tests/kernel/ktest.h"

#define LD_MAP(dst, src, imm0, imm1)						\
	{ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = dst, .src_reg = src, .imm = imm0 }, \
	{ .imm = imm1 }
#define MOV64_IMM(dst, v) { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = v }
#define MOV64_REG(dst, src) { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = dst, .src_reg = src }
#define ADD64_IMM(dst, v) { .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = dst, .imm = v }
#define STX_W(dst, src, o) { .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = dst, .src_reg = src, .off = o }
#define STX_DW(dst, src, o) { .code = BPF_STX | BPF_MEM | BPF_DW, .dst_reg = dst, .src_reg = src, .off = o }
#define CALL(f) { .code = BPF_JMP | BPF_CALL, .imm = f }
#define EXIT_INSN() { .code = BPF_JMP | BPF_EXIT }

struct lpm_key {
	uint32_t prefixlen;
	uint8_t addr[4];
};

enum { M_HASH, M_ARRAY, M_LRU, M_LPM, M_PCPU_ARRAY, M_PCPU_HASH, M_PROG_ARRAY, M_AOM, M_DEVMAP,
       M_RINGBUF, M_CNT };

struct fixture {
	int fds[M_CNT];
	int inner_fd;
	int prog_fd;			/* an XDP program for the prog array */
	int ncpus;
	struct rs_prog prog;		/* maps only, as a fetched program would describe them */
};

static uint32_t map_id(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

static uint32_t prog_id(int fd)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

static int pass_prog(void)
{
	struct bpf_insn insns[] = { MOV64_IMM(0, 2), EXIT_INSN() };
	int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_st_pass", "GPL", insns, 2, NULL);

	assert_true(fd >= 0);
	return fd;
}

/*
 * "key 0 := 0 in map_a, key 0 := 0 in map_b (when >= 0); return XDP_PASS": a program that
 * writes maps with the update helper.
 */
static int writer_prog(const char *name, int map_a, int map_b)
{
	struct bpf_insn insns[32];
	struct bpf_insn upd[] = {
		MOV64_IMM(1, 0),
		STX_W(10, 1, -4),
		STX_DW(10, 1, -16),
		MOV64_REG(2, 10),
		ADD64_IMM(2, -4),
		MOV64_REG(3, 10),
		ADD64_IMM(3, -16),
		LD_MAP(1, BPF_PSEUDO_MAP_FD, 0, 0),
		MOV64_IMM(4, 0),
		CALL(BPF_FUNC_map_update_elem),
	};
	size_t n = 0, u = RS_ARRAY_SIZE(upd);
	int fd;

	memcpy(insns + n, upd, sizeof(upd));
	insns[n + 7].imm = map_a;
	n += u;
	if (map_b >= 0) {
		memcpy(insns + n, upd, sizeof(upd));
		insns[n + 7].imm = map_b;
		n += u;
	}
	insns[n++] = (struct bpf_insn)MOV64_IMM(0, 2);
	insns[n++] = (struct bpf_insn)EXIT_INSN();
	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, name, "GPL", insns, n, NULL);
	assert_true(fd >= 0);
	return fd;
}

static void add_ref(struct rs_prog *p, int fd, const char *name)
{
	struct rs_map_ref r = { .id = map_id(fd) };

	snprintf(r.name, sizeof(r.name), "%s", name);
	assert_true(rs_prog_add_map(p, &r) >= 0);
}

static void fixture_setup(struct fixture *f)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm_o, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, aom_o);
	static const char *const names[M_CNT] = {
		"rs_st_hash", "rs_st_array", "rs_st_lru", "rs_st_lpm", "rs_st_pcarr", "rs_st_pchash",
		"rs_st_progs", "rs_st_aom", "rs_st_dev", "rs_st_rb",
	};
	uint64_t v, *pc;
	uint32_t k, i, c;
	struct lpm_key lk;
	int fd;

	memset(f, 0, sizeof(*f));
	f->ncpus = libbpf_num_possible_cpus();
	assert_true(f->ncpus > 0);
	f->inner_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rs_st_inner", 4, 4, 1, NULL);
	assert_true(f->inner_fd >= 0);
	aom_o.inner_map_fd = f->inner_fd;
	f->fds[M_HASH] = bpf_map_create(BPF_MAP_TYPE_HASH, names[M_HASH], 4, 8, 16, NULL);
	f->fds[M_ARRAY] = bpf_map_create(BPF_MAP_TYPE_ARRAY, names[M_ARRAY], 4, 8, 8, NULL);
	f->fds[M_LRU] = bpf_map_create(BPF_MAP_TYPE_LRU_HASH, names[M_LRU], 4, 8, 16, NULL);
	f->fds[M_LPM] = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, names[M_LPM], 8, 4, 16, &lpm_o);
	f->fds[M_PCPU_ARRAY] = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, names[M_PCPU_ARRAY], 4, 4,
					      4, NULL);
	f->fds[M_PCPU_HASH] = bpf_map_create(BPF_MAP_TYPE_PERCPU_HASH, names[M_PCPU_HASH], 4, 12,
					     8, NULL);
	f->fds[M_PROG_ARRAY] = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, names[M_PROG_ARRAY], 4, 4,
					      4, NULL);
	f->fds[M_AOM] = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, names[M_AOM], 4, 4, 4, &aom_o);
	f->fds[M_DEVMAP] = bpf_map_create(BPF_MAP_TYPE_DEVMAP, names[M_DEVMAP], 4, 4, 4, NULL);
	f->fds[M_RINGBUF] = bpf_map_create(BPF_MAP_TYPE_RINGBUF, names[M_RINGBUF], 0, 0, 4096, NULL);
	for (i = 0; i < M_CNT; i++)
		assert_true(f->fds[i] >= 0);

	for (k = 1; k <= 3; k++) {		/* hash: 1->100, 2->200, 3->300 */
		v = k * 100;
		assert_int_equal(bpf_map_update_elem(f->fds[M_HASH], &k, &v, BPF_ANY), 0);
	}
	for (k = 0; k < 8; k++) {		/* array: i -> i * 7 */
		v = k * 7;
		assert_int_equal(bpf_map_update_elem(f->fds[M_ARRAY], &k, &v, BPF_ANY), 0);
	}
	for (k = 10; k <= 11; k++) {		/* lru: 10, 11 */
		v = k;
		assert_int_equal(bpf_map_update_elem(f->fds[M_LRU], &k, &v, BPF_ANY), 0);
	}
	for (i = 0; i < 3; i++) {		/* lpm: 10.0.0.0/8, 10.1.0.0/16, 192.168.1.0/24 */
		static const struct lpm_key keys[3] = {
			{ 8, { 10, 0, 0, 0 } }, { 16, { 10, 1, 0, 0 } }, { 24, { 192, 168, 1, 0 } },
		};
		uint32_t val = 1000 + i;

		lk = keys[i];
		assert_int_equal(bpf_map_update_elem(f->fds[M_LPM], &lk, &val, BPF_ANY), 0);
	}
	pc = calloc(f->ncpus, 16);		/* per-CPU: stride round_up(12, 8) = 16 */
	assert_non_null(pc);
	for (k = 0; k < 4; k++) {		/* pcpu array (value 4 bytes, stride 8): cpu*10+k */
		for (c = 0; c < (uint32_t)f->ncpus; c++)
			pc[c] = c * 10 + k;
		assert_int_equal(bpf_map_update_elem(f->fds[M_PCPU_ARRAY], &k, pc, BPF_ANY), 0);
	}
	k = 5;					/* pcpu hash: key 5, 12-byte value per cpu */
	memset(pc, 0, f->ncpus * 16);
	for (c = 0; c < (uint32_t)f->ncpus; c++)
		memset((uint8_t *)pc + c * 16, 0x11 * (c + 1), 12);
	assert_int_equal(bpf_map_update_elem(f->fds[M_PCPU_HASH], &k, pc, BPF_ANY), 0);
	free(pc);
	f->prog_fd = pass_prog();
	k = 2;
	fd = f->prog_fd;
	assert_int_equal(bpf_map_update_elem(f->fds[M_PROG_ARRAY], &k, &fd, BPF_ANY), 0);
	k = 1;
	fd = f->inner_fd;
	assert_int_equal(bpf_map_update_elem(f->fds[M_AOM], &k, &fd, BPF_ANY), 0);
	k = 3;
	fd = 1;					/* lo of our own namespace */
	assert_int_equal(bpf_map_update_elem(f->fds[M_DEVMAP], &k, &fd, BPF_ANY), 0);

	rs_prog_init(&f->prog);
	snprintf(f->prog.name, sizeof(f->prog.name), "rs_st_subject");
	for (i = 0; i < M_CNT; i++)
		add_ref(&f->prog, f->fds[i], names[i]);
}

static void fixture_teardown(struct fixture *f)
{
	int i;

	rs_prog_free(&f->prog);
	for (i = 0; i < M_CNT; i++)
		close(f->fds[i]);
	close(f->inner_fd);
	close(f->prog_fd);
}

static void test_map_types(void **state)
{
	struct fixture f;
	struct rs_snapshot s;
	const struct rs_map_snapshot *m;
	const uint8_t *val;
	struct lpm_key lk = { 16, { 10, 1, 0, 0 } };
	uint32_t k, c;
	uint64_t v;

	(void)state;
	fixture_setup(&f);
	assert_int_equal(rs_snapshot_take(&f.prog, NULL, &s), 0);
	assert_int_equal(s.map_cnt, M_CNT);
	for (k = 0; k < M_CNT; k++) {
		assert_int_equal(s.maps[k].map_idx, k);
		assert_int_equal(s.maps[k].id, f.prog.maps[k].id);
		assert_false(s.maps[k].frozen);
		assert_false(s.maps[k].watched);
		assert_int_equal(s.maps[k].ext_writers, 0);	/* nobody else uses them */
	}

	m = &s.maps[M_HASH];
	assert_int_equal(m->type, BPF_MAP_TYPE_HASH);
	assert_int_equal(m->key_size, 4);
	assert_int_equal(m->value_size, 8);
	assert_int_equal(m->max_entries, 16);
	assert_int_equal(m->cnt, 3);
	assert_true(m->complete);
	assert_int_equal(m->ncpus, 1);
	assert_int_equal(m->value_stride, 8);
	for (k = 1; k <= 3; k++) {
		val = rs_snapshot_lookup(m, &k);
		assert_non_null(val);
		memcpy(&v, val, 8);
		assert_int_equal(v, k * 100);
	}
	k = 4;
	assert_null(rs_snapshot_lookup(m, &k));

	m = &s.maps[M_ARRAY];
	assert_int_equal(m->cnt, 8);
	assert_true(m->complete);
	for (k = 0; k < 8; k++) {
		memcpy(&v, rs_snapshot_lookup(m, &k), 8);
		assert_int_equal(v, k * 7);
	}

	m = &s.maps[M_LRU];
	assert_int_equal(m->type, BPF_MAP_TYPE_LRU_HASH);
	assert_int_equal(m->cnt, 2);
	assert_true(m->complete);

	m = &s.maps[M_LPM];
	assert_int_equal(m->type, BPF_MAP_TYPE_LPM_TRIE);
	assert_int_equal(m->key_size, 8);
	assert_int_equal(m->map_flags & BPF_F_NO_PREALLOC, BPF_F_NO_PREALLOC);
	assert_int_equal(m->cnt, 3);
	assert_true(m->complete);
	val = rs_snapshot_lookup(m, &lk);
	assert_non_null(val);
	memcpy(&k, val, 4);
	assert_int_equal(k, 1001);

	m = &s.maps[M_PCPU_ARRAY];
	assert_int_equal(m->ncpus, f.ncpus);
	assert_int_equal(m->value_stride, 8 * f.ncpus);	/* round_up(4, 8) per CPU */
	assert_int_equal(m->cnt, 4);
	for (k = 0; k < 4; k++) {
		val = rs_snapshot_lookup(m, &k);
		assert_non_null(val);
		for (c = 0; c < (uint32_t)f.ncpus; c++) {
			uint32_t x;

			memcpy(&x, val + c * 8, 4);
			assert_int_equal(x, c * 10 + k);
		}
	}

	m = &s.maps[M_PCPU_HASH];
	assert_int_equal(m->value_stride, 16 * f.ncpus);
	assert_int_equal(m->cnt, 1);
	k = 5;
	val = rs_snapshot_lookup(m, &k);
	assert_non_null(val);
	for (c = 0; c < (uint32_t)f.ncpus; c++)
		assert_int_equal(val[c * 16 + 11], (uint8_t)(0x11 * (c + 1)));

	m = &s.maps[M_PROG_ARRAY];			/* values are program ids */
	assert_int_equal(m->cnt, 1);
	assert_true(m->complete);
	k = 2;
	val = rs_snapshot_lookup(m, &k);
	assert_non_null(val);
	memcpy(&c, val, 4);
	assert_int_equal(c, prog_id(f.prog_fd));

	m = &s.maps[M_AOM];				/* values are inner map ids */
	assert_int_equal(m->cnt, 1);
	k = 1;
	memcpy(&c, rs_snapshot_lookup(m, &k), 4);
	assert_int_equal(c, map_id(f.inner_fd));

	m = &s.maps[M_DEVMAP];				/* values are ifindexes */
	assert_int_equal(m->cnt, 1);
	assert_true(m->complete);
	k = 3;
	memcpy(&c, rs_snapshot_lookup(m, &k), 4);
	assert_int_equal(c, 1);

	m = &s.maps[M_RINGBUF];				/* no entries to read */
	assert_int_equal(m->type, BPF_MAP_TYPE_RINGBUF);
	assert_int_equal(m->cnt, 0);
	assert_false(m->complete);

	rs_snapshot_free(&s);
	fixture_teardown(&f);
}

static void test_limit_and_frozen(void **state)
{
	RS_OPTS(rs_snapshot_opts, o, .max_entries = 2, .no_ext_writers = true);
	struct fixture f;
	struct rs_snapshot s;

	(void)state;
	fixture_setup(&f);
	assert_int_equal(bpf_map_freeze(f.fds[M_ARRAY]), 0);
	assert_int_equal(rs_snapshot_take_opts(&f.prog, f.fds, &o, &s), 0);
	/* a hash batch returns whole buckets: a bucket that does not fit under the limit
	 * ends the read early */
	assert_true(s.maps[M_HASH].cnt >= 1 && s.maps[M_HASH].cnt <= 2);
	assert_false(s.maps[M_HASH].complete);
	assert_int_equal(s.maps[M_ARRAY].cnt, 2);
	assert_false(s.maps[M_ARRAY].complete);
	assert_true(s.maps[M_ARRAY].frozen);
	assert_false(s.maps[M_HASH].frozen);
	assert_int_equal(s.maps[M_LPM].cnt, 2);
	assert_false(s.maps[M_LPM].complete);
	assert_int_equal(s.maps[M_LRU].cnt, 2);		/* exactly the limit, all read */
	assert_true(s.maps[M_LRU].complete);
	assert_int_equal(s.maps[M_PROG_ARRAY].cnt, 0);	/* slots 0, 1 empty; 2 beyond */
	assert_false(s.maps[M_PROG_ARRAY].complete);
	rs_snapshot_free(&s);

	/* a limit equal to the entry count (xdp-filter's 65536-entry array at the default
	 * limit): everything was read, so the map is complete */
	o.max_entries = 8;
	assert_int_equal(rs_snapshot_take_opts(&f.prog, f.fds, &o, &s), 0);
	assert_int_equal(s.maps[M_ARRAY].cnt, 8);
	assert_true(s.maps[M_ARRAY].complete);
	assert_true(s.maps[M_LRU].complete);
	assert_int_equal(s.maps[M_HASH].cnt, 3);
	assert_true(s.maps[M_HASH].complete);
	o.max_entries = 7;				/* one short: incomplete */
	rs_snapshot_free(&s);
	assert_int_equal(rs_snapshot_take_opts(&f.prog, f.fds, &o, &s), 0);
	assert_int_equal(s.maps[M_ARRAY].cnt, 7);
	assert_false(s.maps[M_ARRAY].complete);
	rs_snapshot_free(&s);
	fixture_teardown(&f);
}

/* Other programs that write the maps: ext_writers. */
static void test_ext_writers(void **state)
{
	struct fixture f;
	struct rs_snapshot s;
	uint32_t excl[1];
	int self, other;

	(void)state;
	fixture_setup(&f);
	/* the program itself writes HASH and ARRAY; another program writes HASH and LRU */
	self = writer_prog("rs_st_self", f.fds[M_HASH], f.fds[M_ARRAY]);
	other = writer_prog("rs_st_other", f.fds[M_HASH], f.fds[M_LRU]);
	f.prog.id = prog_id(self);
	assert_int_equal(rs_snapshot_take(&f.prog, NULL, &s), 0);
	assert_int_equal(s.maps[M_HASH].ext_writers & RS_EXT_UPDATES, RS_EXT_UPDATES);
	assert_int_equal(s.maps[M_LRU].ext_writers & RS_EXT_UPDATES, RS_EXT_UPDATES);
	assert_int_equal(s.maps[M_ARRAY].ext_writers, 0);	/* only the program itself */
	assert_int_equal(s.maps[M_LPM].ext_writers, 0);
	rs_snapshot_free(&s);

	/* an excluded program (a copy of the subject) is not a writer */
	{
		RS_OPTS(rs_snapshot_opts, o, .exclude_progs = excl, .exclude_cnt = 1);

		excl[0] = prog_id(other);
		assert_int_equal(rs_snapshot_take_opts(&f.prog, NULL, &o, &s), 0);
		assert_int_equal(s.maps[M_HASH].ext_writers, 0);
		assert_int_equal(s.maps[M_LRU].ext_writers, 0);
		rs_snapshot_free(&s);
	}
	/* offline: private maps, no scan */
	assert_int_equal(rs_snapshot_from_fds(&f.prog, f.fds, &s), 0);
	assert_int_equal(s.maps[M_HASH].ext_writers, 0);
	assert_int_equal(s.maps[M_HASH].cnt, 3);
	rs_snapshot_free(&s);
	assert_int_equal(rs_snapshot_from_fds(&f.prog, NULL, &s), -EINVAL);

	close(self);
	close(other);
	fixture_teardown(&f);
}

/* With a guard: maps watched, generation = the live one, moved by the next write. */
static void test_guarded(void **state)
{
	RS_OPTS(rs_guard_opts, go, .max_slots = 32);
	struct rs_guard *g = NULL;
	struct fixture f;
	struct rs_snapshot s;
	uint64_t gen, v = 9;
	uint32_t k = 1, i, slot;

	(void)state;
	assert_int_equal(rs_guard_open(&go, &g), 0);	/* first: it sees the fixture's writes */
	fixture_setup(&f);
	{
		RS_OPTS(rs_snapshot_opts, o, .guard = g);

		assert_int_equal(rs_snapshot_take_opts(&f.prog, NULL, &o, &s), 0);
	}
	for (i = 0; i < M_CNT; i++) {
		assert_true(s.maps[i].watched);
		assert_int_equal(rs_guard_slot_of(g, s.maps[i].id, &slot), 0);
		assert_int_equal(rs_guard_read(g, s.maps[i].guard_slot, &gen), 0);
		assert_int_equal(gen, s.maps[i].generation);
	}
	/* maps the specializer may rely on share one group slot (one check at program entry);
	 * the others (prog array, devmap, ...) keep their own */
	assert_int_equal(rs_guard_slot_of(g, s.maps[M_ARRAY].id, &slot), 0);
	assert_int_not_equal(s.maps[M_ARRAY].guard_slot, slot);
	assert_int_equal(s.maps[M_PCPU_ARRAY].guard_slot, s.maps[M_ARRAY].guard_slot);
	assert_int_equal(s.maps[M_PCPU_ARRAY].generation, s.maps[M_ARRAY].generation);
	assert_int_equal(rs_guard_slot_of(g, s.maps[M_PROG_ARRAY].id, &slot), 0);
	assert_int_equal(s.maps[M_PROG_ARRAY].guard_slot, slot);
	assert_true(s.maps[M_HASH].updates_per_s > 0);	/* written by the fixture */
	assert_int_equal(bpf_map_update_elem(f.fds[M_HASH], &k, &v, BPF_ANY), 0);
	assert_int_equal(rs_guard_read(g, s.maps[M_HASH].guard_slot, &gen), 0);
	assert_true(gen > s.maps[M_HASH].generation);
	assert_int_equal(rs_guard_read(g, s.maps[M_PROG_ARRAY].guard_slot, &gen), 0);
	assert_int_equal(gen, s.maps[M_PROG_ARRAY].generation);
	/* a write to a member moves the group: the array's checks fall back too */
	k = 0;
	assert_int_equal(bpf_map_update_elem(f.fds[M_ARRAY], &k, &v, BPF_ANY), 0);
	assert_int_equal(rs_guard_read(g, s.maps[M_PCPU_ARRAY].guard_slot, &gen), 0);
	assert_true(gen > s.maps[M_PCPU_ARRAY].generation);
	rs_snapshot_free(&s);
	rs_guard_close(g);
	fixture_teardown(&f);
}

/*
 * The sample data planes with their scenarios: for every map, the snapshot holds exactly the
 * entries a key walk of the live map finds, with the same value bytes.
 */
static void check_against_map(const struct rs_map_snapshot *m, int fd, const char *what)
{
	uint8_t *key = calloc(1, m->key_size ?: 1), *prev = calloc(1, m->key_size ?: 1);
	uint8_t *val = calloc(1, m->value_stride ?: 1);
	const uint8_t *sv;
	size_t n = 0;
	bool first = true;

	assert_non_null(key);
	assert_non_null(prev);
	assert_non_null(val);
	while (!bpf_map_get_next_key(fd, first ? NULL : prev, key)) {
		first = false;
		memcpy(prev, key, m->key_size);
		if (bpf_map_lookup_elem(fd, key, val))
			continue;	/* fd arrays: empty slots */
		sv = rs_snapshot_lookup(m, key);
		if (!sv)
			fail_msg("%s: key missing from the snapshot", what);
		if (memcmp(sv, val, m->value_stride))
			fail_msg("%s: value differs", what);
		n++;
	}
	assert_int_equal(n, m->cnt);
	free(key);
	free(prev);
	free(val);
}

static void snapshot_sample(const char *obj, const char *scenario)
{
	const char *bdir = getenv("RS_BUILD_DIR"), *sdir = getenv("RS_SOURCE_DIR");
	struct rs_replay_open_opts ro = { .sz = sizeof(ro) };
	struct rs_replay_prog *rp = NULL;
	struct rs_scenario *sc = NULL;
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	char path[4096], spath[4096], what[128];
	struct rs_snapshot s;
	struct rs_prog p;
	size_t i, total = 0;
	struct timespec t0, t1;
	int fd;

	snprintf(path, sizeof(path), "%s/bpf/samples/%s.bpf.o", bdir ? bdir : "build", obj);
	snprintf(spath, sizeof(spath), "%s/bpf/samples/%s", sdir ? sdir : ".", scenario);
	assert_int_equal(rs_scenario_load(spath, &sc), 0);
	ro.scenario = sc;
	assert_int_equal(rs_replay_open_object(path, &ro, &rp), 0);
	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(rs_replay_fd(rp), &info, &len), 0);
	assert_int_equal(rs_fetch_translated(info.id, &p), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rs_snapshot_take(&p, NULL, &s), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(s.map_cnt, p.map_cnt);
	for (i = 0; i < s.map_cnt; i++) {
		fd = bpf_map_get_fd_by_id(s.maps[i].id);
		assert_true(fd >= 0);
		snprintf(what, sizeof(what), "%s: map %s", obj, p.maps[i].name);
		if (s.maps[i].complete)
			check_against_map(&s.maps[i], fd, what);
		assert_int_equal(s.maps[i].ext_writers, 0);	/* private to this program */
		total += s.maps[i].cnt;
		close(fd);
	}
	printf("%s + %s: %zu maps, %zu entries, snapshot %.1f ms (not asserted)\n", obj, scenario,
	       s.map_cnt, total, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
	assert_true(total > 0);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
	rs_replay_close(rp);
	rs_scenario_free(sc);
}

static void test_samples(void **state)
{
	(void)state;
	snapshot_sample("l4lb", "l4lb/scenarios/l4lb-16x64.json");
	snapshot_sample("router", "router/scenarios/router-50k.json");
	snapshot_sample("firewall", "firewall/scenarios/firewall-2000.json");
	snapshot_sample("firewall-xdp", "firewall/scenarios/firewall-100.json");
}

static int setup(void **state)
{
	(void)state;
	/* a network namespace of our own (gone with the process) for the devmap's lo */
	if (unshare(CLONE_NEWNET)) {
		perror("unshare(CLONE_NEWNET)");
		return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_map_types),
		cmocka_unit_test(test_limit_and_frozen),
		cmocka_unit_test(test_ext_writers),
		cmocka_unit_test(test_guarded),
		cmocka_unit_test(test_samples),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, setup, NULL);
}
