// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_guard.c - the guard generation array and the watcher on bpf() (agent/guard.c,
 * bpf/watcher.bpf.c), on both hooks (syscall tracepoints and raw_tp).
 *
 * Watch a map; every user-space write command (update, delete, lookup-and-delete, the three batch
 * writes) bumps its generation by the time the syscall returns, and a reader that sees the new
 * value never sees the old generation afterwards; loading a program that references the map (by
 * fd, through fd_array, or bound by fd_array_cnt) bumps it, unless the load comes from the agent's
 * own process; an unwatched map never bumps a slot; a group slot moves with any of its maps; a program reads its slot with a direct value
 * load as a specialized program does; unwatch bumps and slots never go back; the quiescence wait
 * refuses while an older write is in flight; churn counts writes per map; a pinned watcher keeps
 * bumping after the agent closed it, a new agent takes the pins over, and unpin stops it.  End to
 * end with the specializer: a program folded by rs_optimize() against a guarded snapshot returns
 * its constant (even after a write the watcher cannot see) until a user-space write or a manual
 * bump sends it to its original code.  Everything the test creates (maps, programs, pins, the
 * helper child) is removed at the end.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "bpf/watcher.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tests/kernel/ktest.h"

#define LD_MAP(dst, src, imm0, imm1)						\
	{ .code = BPF_LD | BPF_IMM | BPF_DW, .dst_reg = dst, .src_reg = src, .imm = imm0 }, \
	{ .imm = imm1 }
#define MOV64_IMM(dst, v) { .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .imm = v }
#define LDX_W(dst, src, o) { .code = BPF_LDX | BPF_MEM | BPF_W, .dst_reg = dst, .src_reg = src, .off = o }
#define EXIT_INSN() { .code = BPF_JMP | BPF_EXIT }

static char pin_dir[128];
static pid_t quiesce_child;

static int new_hash(const char *name)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, name, 4, 8, 64, NULL);

	assert_true(fd >= 0);
	return fd;
}

static uint32_t map_id(int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(fd, &info, &len), 0);
	return info.id;
}

static uint64_t gen_of(struct rs_guard *g, uint32_t slot)
{
	uint64_t v;

	assert_int_equal(rs_guard_read(g, slot, &v), 0);
	return v;
}

/* Load "r1 = map; r0 = XDP_PASS; exit" referring to map_fd directly or through fd_array. */
static int load_referencing(int map_fd, bool via_fd_array)
{
	struct bpf_insn direct[] = {
		LD_MAP(1, BPF_PSEUDO_MAP_FD, map_fd, 0),
		MOV64_IMM(0, 2),
		EXIT_INSN(),
	};
	struct bpf_insn idx[] = {
		LD_MAP(1, BPF_PSEUDO_MAP_IDX, 0, 0),
		MOV64_IMM(0, 2),
		EXIT_INSN(),
	};
	int fds[1] = { map_fd };
	LIBBPF_OPTS(bpf_prog_load_opts, o, .fd_array = via_fd_array ? fds : NULL);

	return bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_gt_ref", "GPL", via_fd_array ? idx : direct,
			     RS_ARRAY_SIZE(idx), &o);
}

/*
 * Load "r0 = XDP_PASS; exit" with fd_array = { map_fd } and fd_array_cnt = 1 (kernel 6.14+:
 * the map is bound to the program without any instruction referring to it).  The 6.1 uapi
 * has no fd_array_cnt: it sits 12 bytes after core_relo_rec_size (log_true_size,
 * prog_token_fd, fd_array_cnt).
 */
static int load_fd_array_cnt(int map_fd)
{
	struct bpf_insn insns[] = { MOV64_IMM(0, 2), EXIT_INSN() };
	int fds[1] = { map_fd };
	uint8_t buf[256] = {};
	union bpf_attr *attr = (union bpf_attr *)buf;
	size_t cnt_off = offsetof(union bpf_attr, core_relo_rec_size) + 12;
	uint32_t one = 1;

	attr->prog_type = BPF_PROG_TYPE_XDP;
	attr->insns = (uintptr_t)insns;
	attr->insn_cnt = RS_ARRAY_SIZE(insns);
	attr->license = (uintptr_t)"GPL";
	attr->fd_array = (uintptr_t)fds;
	memcpy(buf + cnt_off, &one, sizeof(one));
	return syscall(__NR_bpf, BPF_PROG_LOAD, attr, cnt_off + 8);
}

/* Low 32 bits of generation slot `slot`, as a specialized program reads it (direct value). */
static uint32_t gen_from_prog(int gen_fd, uint32_t slot)
{
	struct bpf_insn insns[] = {
		LD_MAP(1, BPF_PSEUDO_MAP_VALUE, gen_fd, (int)(slot * 8)),
		LDX_W(0, 1, 0),
		EXIT_INSN(),
	};
	uint8_t pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt));
	int fd;

	fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_gt_gen", "GPL", insns, 4, NULL);
	if (fd < 0)
		fprintf(stderr, "load: %s\n", strerror(errno));
	assert_true(fd >= 0);
	assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
	close(fd);
	return t.retval;
}

static void write_commands(struct rs_guard *g, bool raw)
{
	int a = new_hash("rs_gt_a"), b = new_hash("rs_gt_b");
	uint32_t ida = map_id(a), idb = map_id(b), slot, slot2, k[4] = { 1, 2, 3, 4 }, cnt;
	uint64_t g0, g1, v[4] = { 10, 20, 30, 40 }, writes = 0, last = 0, out_batch;
	int pfd;

	(void)raw;
	assert_int_equal(rs_guard_watch(g, ida, &slot, &g0), 0);
	assert_int_equal(rs_guard_slot_of(g, ida, &slot2), 0);
	assert_int_equal(slot, slot2);

	/* unwatched map: no slot moves */
	assert_int_equal(bpf_map_update_elem(b, &k[0], &v[0], BPF_ANY), 0);
	assert_int_equal(gen_of(g, slot), g0);
	assert_int_equal(rs_guard_slot_of(g, idb, &slot2), -ENOENT);
	assert_int_equal(rs_guard_churn(g, idb, &writes, &last), 0);
	assert_int_equal(writes, 1);
	assert_true(last > 0);

	/* every write command bumps */
	assert_int_equal(bpf_map_update_elem(a, &k[0], &v[0], BPF_ANY), 0);
	g1 = gen_of(g, slot);
	assert_true(g1 > g0);
	assert_int_equal(gen_from_prog(rs_guard_map_fd(g), slot), (uint32_t)g1);
	assert_int_equal(bpf_map_delete_elem(a, &k[0]), 0);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	assert_int_equal(bpf_map_update_elem(a, &k[1], &v[1], BPF_ANY), 0);
	g1 = gen_of(g, slot);
	assert_int_equal(bpf_map_lookup_and_delete_elem(a, &k[1], &v[3]), 0);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	cnt = 4;
	assert_int_equal(bpf_map_update_batch(a, k, v, &cnt, NULL), 0);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	cnt = 2;
	assert_int_equal(bpf_map_delete_batch(a, k, &cnt, NULL), 0);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	cnt = 4;
	bpf_map_lookup_and_delete_batch(a, NULL, &out_batch, k, v, &cnt, NULL);
	assert_true(gen_of(g, slot) > g1);
	/* a failed write still bumped (conservative): deleting a missing key */
	g1 = gen_of(g, slot);
	assert_int_not_equal(bpf_map_delete_elem(a, &k[0]), 0);
	assert_true(gen_of(g, slot) > g1);
	/* churn: 1 + 1 + 1 + 1 + 4 + 2 + 4 + 1 elements */
	assert_int_equal(rs_guard_churn(g, ida, &writes, &last), 0);
	assert_int_equal(writes, 15);

	/* reads do not bump */
	g1 = gen_of(g, slot);
	bpf_map_lookup_elem(a, &k[0], &v[0]);
	assert_int_equal(gen_of(g, slot), g1);

	/* loads referencing the watched map bump (bump_own_loads), by fd and via fd_array */
	pfd = load_referencing(a, false);
	assert_true(pfd >= 0);
	close(pfd);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	pfd = load_referencing(a, true);
	assert_true(pfd >= 0);
	close(pfd);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	pfd = load_fd_array_cnt(a);
	assert_true(pfd >= 0);
	close(pfd);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	pfd = load_referencing(b, false);
	assert_true(pfd >= 0);
	close(pfd);
	assert_int_equal(gen_of(g, slot), g1);

	/* watching again shares the slot; unwatch needs both references gone, then bumps */
	assert_int_equal(rs_guard_watch(g, ida, &slot2, &g0), 0);
	assert_int_equal(slot2, slot);
	assert_int_equal(g0, g1);
	assert_int_equal(rs_guard_unwatch(g, ida), 0);
	assert_int_equal(rs_guard_slot_of(g, ida, &slot2), 0);
	assert_int_equal(rs_guard_unwatch(g, ida), 0);
	assert_int_equal(rs_guard_slot_of(g, ida, &slot2), -ENOENT);
	assert_true(gen_of(g, slot) > g1);
	g1 = gen_of(g, slot);
	assert_int_equal(bpf_map_update_elem(a, &k[0], &v[0], BPF_ANY), 0);
	assert_int_equal(gen_of(g, slot), g1);
	/* the freed slot is reused with its generation: never goes back */
	assert_int_equal(rs_guard_watch(g, idb, &slot2, &g0), 0);
	assert_int_equal(slot2, slot);
	assert_int_equal(g0, g1);
	assert_int_equal(rs_guard_unwatch(g, idb), 0);
	assert_int_equal(rs_guard_unwatch(g, idb), -ENOENT);

	/* by hand */
	g1 = gen_of(g, 3);
	assert_int_equal(rs_guard_bump(g, 3), 0);
	assert_int_equal(gen_of(g, 3), g1 + 1);
	assert_int_equal(rs_guard_bump_all(g), 0);
	assert_int_equal(gen_of(g, 3), g1 + 2);
	assert_int_equal(rs_guard_bump(g, rs_guard_slot_cnt(g)), -EINVAL);
	close(a);
	close(b);
}

static struct rs_guard *open_guard(bool raw, bool own_loads)
{
	RS_OPTS(rs_guard_opts, o, .force_raw_tp = raw, .bump_own_loads = own_loads,
		.max_slots = 64);
	struct rs_guard *g = NULL;

	assert_int_equal(rs_guard_open(&o, &g), 0);
	assert_string_equal(rs_guard_hook_name(g), raw ? "raw_tp" : "tracepoint");
	return g;
}

static void test_tracepoint(void **state)
{
	struct rs_guard *g = open_guard(false, true);
	struct rs_map_ref ref;
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	(void)state;
	assert_int_equal(rs_guard_map_ref(g, &ref), 0);
	memset(&info, 0, sizeof(info));
	assert_int_equal(bpf_obj_get_info_by_fd(rs_guard_map_fd(g), &info, &len), 0);
	assert_int_equal(ref.id, info.id);
	assert_int_equal(ref.type, BPF_MAP_TYPE_ARRAY);
	assert_int_equal(ref.key_size, 4);
	/* one entry holding every slot (direct value loads need a single-entry array) */
	assert_int_equal(ref.max_entries, 1);
	assert_true(ref.value_size >= 64 * 8);
	assert_true(ref.flags & BPF_F_MMAPABLE);
	assert_int_equal(rs_guard_slot_cnt(g), 64);
	write_commands(g, false);
	rs_guard_close(g);
}

static void test_raw_tp(void **state)
{
	struct rs_guard *g = open_guard(true, true);

	(void)state;
	write_commands(g, true);
	rs_guard_close(g);
}

/* Loads from the agent's own process are exempt (its copies of analyzed programs); map
 * writes from it are not. */
static void test_own_loads_exempt(void **state)
{
	struct rs_guard *g = open_guard(false, false);
	int a = new_hash("rs_gt_own"), pfd;
	uint32_t slot, k = 1;
	uint64_t g0, v = 2;

	(void)state;
	assert_int_equal(rs_guard_watch(g, map_id(a), &slot, &g0), 0);
	pfd = load_referencing(a, false);
	assert_true(pfd >= 0);
	close(pfd);
	assert_int_equal(gen_of(g, slot), g0);
	assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
	assert_true(gen_of(g, slot) > g0);
	rs_guard_close(g);
	close(a);
}

/* Ordering: a reader that sees a new value must then see a bumped generation. */
struct order_ctx {
	int fd;
	struct rs_guard *g;
	uint32_t slot;
	volatile bool stop;
	uint64_t violations, seen_new;
	/* value being written (low 16 bits) and the generation before that write: one word,
	 * so the reader always sees a matching pair */
	uint64_t cur;
};

static void *order_reader(void *arg)
{
	struct order_ctx *c = arg;
	uint32_t k = 7;
	uint64_t v, gen, want, before, cur;

	while (!c->stop) {
		cur = __atomic_load_n(&c->cur, __ATOMIC_SEQ_CST);
		want = cur & 0xffff;
		before = cur >> 16;
		if (bpf_map_lookup_elem(c->fd, &k, &v))
			continue;
		rs_guard_read(c->g, c->slot, &gen);
		if (v == want && want) {
			__atomic_fetch_add(&c->seen_new, 1, __ATOMIC_SEQ_CST);
			if (gen <= before)
				c->violations++;
		}
	}
	return NULL;
}

static void test_ordering(void **state)
{
	struct rs_guard *g = open_guard(false, true);
	struct order_ctx c = { .g = g };
	pthread_t th;
	uint32_t k = 7;
	uint64_t v, i;

	(void)state;
	c.fd = new_hash("rs_gt_order");
	assert_int_equal(rs_guard_watch(g, map_id(c.fd), &c.slot, &v), 0);
	v = 0;
	assert_int_equal(bpf_map_update_elem(c.fd, &k, &v, BPF_ANY), 0);
	assert_int_equal(pthread_create(&th, NULL, order_reader, &c), 0);
	for (i = 1; i <= 3000; i++) {
		__atomic_store_n(&c.cur, gen_of(g, c.slot) << 16 | i, __ATOMIC_SEQ_CST);
		assert_int_equal(bpf_map_update_elem(c.fd, &k, &i, BPF_ANY), 0);
	}
	for (i = 0; i < 2000 && !__atomic_load_n(&c.seen_new, __ATOMIC_SEQ_CST); i++)
		usleep(1000);	/* let the reader see the last value at least */
	c.stop = true;
	pthread_join(th, NULL);
	assert_int_equal(c.violations, 0);
	assert_true(c.seen_new > 0);
	assert_true(gen_of(g, c.slot) >= 3000);
	printf("ordering: %llu reads saw a new value, none with the old generation\n",
	       (unsigned long long)c.seen_new);
	rs_guard_close(g);
	close(c.fd);
}

/* The watch waits for older writes still inside bpf(): fake one in the in-flight table. */
static void test_quiesce(void **state)
{
	RS_OPTS(rs_guard_opts, o, .pin_dir = pin_dir, .quiesce_ms = 100, .max_slots = 16);
	struct rs_guard *g = NULL;
	char path[256];
	uint64_t key, t = 1, g0;
	uint32_t slot;
	int a = new_hash("rs_gt_q"), fd;
	pid_t child;

	(void)state;
	/* a live thread that is not us (our own syscalls clear our entry on exit) */
	child = fork();
	assert_true(child >= 0);
	if (!child) {
		pause();
		_exit(0);
	}
	quiesce_child = child;
	key = (uint64_t)child << 32 | (uint32_t)child;
	assert_int_equal(rs_guard_open(&o, &g), 0);
	snprintf(path, sizeof(path), "%s/guard_inflight", pin_dir);
	fd = bpf_obj_get(path);
	assert_true(fd >= 0);
	assert_int_equal(bpf_map_update_elem(fd, &key, &t, BPF_ANY), 0);
	assert_int_equal(rs_guard_watch(g, map_id(a), &slot, &g0), -EBUSY);
	assert_int_equal(rs_guard_slot_of(g, map_id(a), &slot), -ENOENT);
	assert_int_equal(bpf_map_delete_elem(fd, &key), 0);
	assert_int_equal(rs_guard_watch(g, map_id(a), &slot, &g0), 0);
	close(fd);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	quiesce_child = 0;
	rs_guard_close(g);
	assert_int_equal(rs_guard_unpin(pin_dir), 0);
	close(a);
}

/* A pinned watcher outlives its agent; a new agent takes it over; unpin stops it. */
static void test_pinned(void **state)
{
	RS_OPTS(rs_guard_opts, o, .pin_dir = pin_dir, .max_slots = 32);
	struct rs_guard *g = NULL;
	uint32_t slot, slot2, k = 1, zero = 0;
	uint64_t g0, g1, v = 5, gens[1024];
	char path[256];
	int i;
	int a = new_hash("rs_gt_pin"), gfd;

	(void)state;
	assert_int_equal(rs_guard_open(&o, &g), 0);
	assert_int_equal(rs_guard_watch(g, map_id(a), &slot, &g0), 0);
	rs_guard_close(g);

	snprintf(path, sizeof(path), "%s/guard_gen", pin_dir);
	gfd = bpf_obj_get(path);
	assert_true(gfd >= 0);
	assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
	assert_int_equal(bpf_map_lookup_elem(gfd, &zero, gens), 0);
	g1 = gens[slot];
	assert_true(g1 > g0);

	/* take over: same slots (even with another max_slots asked), same generations */
	o.max_slots = 8;
	assert_int_equal(rs_guard_open(&o, &g), 0);
	assert_int_equal(rs_guard_slot_cnt(g), 32);
	assert_int_equal(rs_guard_slot_of(g, map_id(a), &slot2), 0);
	assert_int_equal(slot2, slot);
	assert_int_equal(gen_of(g, slot), g1);
	assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
	assert_true(gen_of(g, slot) > g1);
	rs_guard_close(g);

	assert_int_equal(rs_guard_unpin(pin_dir), 0);
	/* the kernel releases an unpinned link after an RCU grace period: give it 2 s */
	for (i = 0; i < 200; i++) {
		assert_int_equal(bpf_map_lookup_elem(gfd, &zero, gens), 0);
		g1 = gens[slot];
		assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
		assert_int_equal(bpf_map_lookup_elem(gfd, &zero, gens), 0);
		if (gens[slot] == g1)
			break;
		usleep(10000);
	}
	assert_int_equal(gens[slot], g1);		/* nobody watches any more */
	assert_int_not_equal(access(pin_dir, F_OK), 0);
	close(gfd);
	close(a);
}

/*
 * Group slots: one slot for a set of maps, bumped by the watcher with any member (writes and
 * loads), by rs_guard_bump of a member's slot, reused for the same set, dissolved (bumped, then
 * silent) when a member is unwatched; limits; a pinned group survives a new agent.
 */
static void groups(struct rs_guard *g)
{
	int a = new_hash("rs_gt_ga"), b = new_hash("rs_gt_gb"), c = new_hash("rs_gt_gc"), pfd;
	uint32_t ids[3] = { map_id(a), map_id(b), map_id(c) }, rev[2] = { ids[1], ids[0] };
	uint32_t sa, sb, sc, e, e2, e3, k = 1, i, many[RS_GUARD_MAX_SUBS + 1];
	uint64_t g0, g1, ga, gx, v = 7;

	assert_int_equal(rs_guard_group(g, ids, 2, &e, &g0), -ENOENT);	/* not watched */
	assert_int_equal(rs_guard_watch(g, ids[0], &sa, NULL), 0);
	assert_int_equal(rs_guard_watch(g, ids[1], &sb, NULL), 0);
	assert_int_equal(rs_guard_watch(g, ids[2], &sc, NULL), 0);
	assert_int_equal(rs_guard_group(g, ids, 2, &e, &g0), 0);
	assert_true(e != sa && e != sb && e != sc);
	/* same set in another order (and with a duplicate) -> same group */
	assert_int_equal(rs_guard_group(g, rev, 2, &e2, &g1), 0);
	assert_int_equal(e2, e);
	assert_int_equal(g1, g0);
	many[0] = ids[0], many[1] = ids[1], many[2] = ids[0];
	assert_int_equal(rs_guard_group(g, many, 3, &e2, NULL), 0);
	assert_int_equal(e2, e);
	/* a subset is another group */
	assert_int_equal(rs_guard_group(g, ids, 1, &e3, NULL), 0);
	assert_true(e3 != e);

	/* writes to either member bump the group, a non-member does not */
	assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
	g1 = gen_of(g, e);
	assert_true(g1 > g0);
	assert_int_equal(gen_from_prog(rs_guard_map_fd(g), e), (uint32_t)g1);
	assert_int_equal(bpf_map_update_elem(b, &k, &v, BPF_ANY), 0);
	assert_true(gen_of(g, e) > g1);
	g1 = gen_of(g, e);
	ga = gen_of(g, e3);
	assert_int_equal(bpf_map_update_elem(c, &k, &v, BPF_ANY), 0);
	assert_int_equal(gen_of(g, e), g1);
	assert_int_equal(bpf_map_delete_elem(b, &k), 0);	/* b is not in group e3 */
	assert_int_equal(gen_of(g, e3), ga);
	g1 = gen_of(g, e);
	/* a load referencing a member bumps it (own loads bump in this guard) */
	pfd = load_referencing(b, true);
	assert_true(pfd >= 0);
	close(pfd);
	assert_true(gen_of(g, e) > g1);
	/* by hand through a member's slot, like the watcher */
	g1 = gen_of(g, e);
	assert_int_equal(rs_guard_bump(g, sa), 0);
	assert_int_equal(gen_of(g, e), g1 + 1);
	assert_int_equal(gen_of(g, e3), ga + 1);

	/* a map in RS_GUARD_MAX_SUBS groups joins no more: a is in {a, b} and {a}; add {a, m} */
	many[0] = ids[0];
	for (i = 2; i < RS_GUARD_MAX_SUBS; i++) {
		int fd = new_hash("rs_gt_gm");

		many[i] = map_id(fd);
		many[1] = many[i];
		assert_int_equal(rs_guard_watch(g, many[i], NULL, NULL), 0);
		assert_int_equal(rs_guard_group(g, many, 2, &e2, NULL), 0);
		close(fd);		/* the id stays watched (its map is gone: no writes) */
	}
	assert_int_equal(rs_guard_group(g, ids, 3, &e2, NULL), -ENOSPC);
	for (i = 2; i < RS_GUARD_MAX_SUBS; i++)
		assert_int_equal(rs_guard_unwatch(g, many[i]), 0);
	assert_int_equal(rs_guard_group(g, ids, 3, &e2, NULL), 0);

	/* the last unwatch of a member dissolves its groups: bumped once, then silent */
	g1 = gen_of(g, e);
	ga = gen_of(g, e3);
	assert_int_equal(rs_guard_unwatch(g, ids[0]), 0);
	assert_true(gen_of(g, e) > g1);
	assert_true(gen_of(g, e3) > ga);
	g1 = gen_of(g, e);
	assert_int_equal(bpf_map_update_elem(b, &k, &v, BPF_ANY), 0);
	assert_int_equal(gen_of(g, e), g1);
	/* a freed group slot may be reused: its generation never goes back */
	assert_int_equal(rs_guard_group(g, &ids[1], 2, &e2, &gx), 0);
	assert_true(e2 != e || gx >= g1);
	assert_int_equal(rs_guard_unwatch(g, ids[1]), 0);
	assert_int_equal(rs_guard_unwatch(g, ids[2]), 0);
	close(a);
	close(b);
	close(c);
}

static void test_groups(void **state)
{
	struct rs_guard *g = open_guard(false, true);

	(void)state;
	groups(g);
	rs_guard_close(g);
	g = open_guard(true, true);
	groups(g);
	rs_guard_close(g);
}

/* A pinned group survives the agent: the next one finds it for the same maps. */
static void test_pinned_group(void **state)
{
	RS_OPTS(rs_guard_opts, o, .pin_dir = pin_dir, .max_slots = 32);
	struct rs_guard *g = NULL;
	int a = new_hash("rs_gt_pga"), b = new_hash("rs_gt_pgb");
	uint32_t ids[2] = { map_id(a), map_id(b) }, e, e2, k = 1;
	uint64_t g0, g1, v = 3;

	(void)state;
	assert_int_equal(rs_guard_open(&o, &g), 0);
	assert_int_equal(rs_guard_watch(g, ids[0], NULL, NULL), 0);
	assert_int_equal(rs_guard_watch(g, ids[1], NULL, NULL), 0);
	assert_int_equal(rs_guard_group(g, ids, 2, &e, &g0), 0);
	rs_guard_close(g);
	assert_int_equal(bpf_map_update_elem(b, &k, &v, BPF_ANY), 0);	/* nobody in user space */
	assert_int_equal(rs_guard_open(&o, &g), 0);
	g1 = gen_of(g, e);
	assert_true(g1 > g0);
	assert_int_equal(rs_guard_group(g, ids, 2, &e2, &g0), 0);
	assert_int_equal(e2, e);
	assert_int_equal(g0, g1);
	assert_int_equal(rs_guard_unwatch(g, ids[1]), 0);		/* dissolved */
	assert_true(gen_of(g, e) > g1);
	assert_int_equal(rs_guard_unwatch(g, ids[0]), 0);
	rs_guard_close(g);
	assert_int_equal(rs_guard_unpin(pin_dir), 0);
	close(a);
	close(b);
}

/* Offline: the array without a watcher. */
static void test_no_watcher(void **state)
{
	RS_OPTS(rs_guard_opts, o, .no_watcher = true, .max_slots = 4);
	struct rs_guard *g = NULL;
	int a = new_hash("rs_gt_nw");
	uint32_t slot, k = 1;
	uint64_t g0, v = 1;

	(void)state;
	assert_int_equal(rs_guard_open(&o, &g), 0);
	assert_string_equal(rs_guard_hook_name(g), "none");
	assert_int_equal(rs_guard_watch(g, map_id(a), &slot, &g0), 0);
	assert_int_equal(bpf_map_update_elem(a, &k, &v, BPF_ANY), 0);
	assert_int_equal(gen_of(g, slot), g0);
	assert_int_equal(rs_guard_bump(g, slot), 0);
	assert_int_equal(gen_from_prog(rs_guard_map_fd(g), slot), (uint32_t)(g0 + 1));
	rs_guard_close(g);
	close(a);
}

/*
 * The contract with the specializer: a program folded against a guarded snapshot returns the
 * snapshot's constant until a user-space write bumps the slot, then runs its original code
 * (the new value), with no agent involved.
 */
static void test_specialized_fallback(void **state)
{
	struct rs_guard *g = open_guard(false, false);
	int m = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rs_gt_spec", 4, 4, 1, NULL), fd;
	struct bpf_insn insns[] = {
		MOV64_IMM(1, 0),
		{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = 10, .src_reg = 1, .off = -4 },
		{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10 },
		{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -4 },
		LD_MAP(1, BPF_PSEUDO_MAP_IDX, 0, 0),
		{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_lookup_elem },
		{ .code = BPF_JMP | BPF_JEQ | BPF_K, .dst_reg = 0, .off = 2 },
		LDX_W(0, 0, 0),
		EXIT_INSN(),
		MOV64_IMM(0, 2),
		EXIT_INSN(),
	};
	uint8_t pkt[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, t, .data_in = pkt, .data_size_in = sizeof(pkt));
	RS_OPTS(rs_snapshot_opts, so, .guard = g);
	struct rs_opt_opts oo = { .sz = sizeof(oo) };
	struct rs_map_ref ref = { .id = 0 };
	struct rs_opt_result res;
	struct rs_snapshot snap;
	struct rs_prog p;
	uint32_t k = 0, v = 1;

	(void)state;
	assert_true(m >= 0);
	assert_int_equal(bpf_map_update_elem(m, &k, &v, BPF_ANY), 0);
	rs_prog_init(&p);
	snprintf(p.name, sizeof(p.name), "rs_gt_spec");
	snprintf(p.license, sizeof(p.license), "GPL");
	p.type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_prog_set_insns(&p, insns, RS_ARRAY_SIZE(insns)), 0);
	ref.id = map_id(m);
	ref.type = BPF_MAP_TYPE_ARRAY;
	ref.key_size = 4;
	ref.value_size = 4;
	ref.max_entries = 1;
	snprintf(ref.name, sizeof(ref.name), "rs_gt_spec");
	assert_int_equal(rs_prog_add_map(&p, &ref), 0);

	assert_int_equal(rs_snapshot_take_opts(&p, NULL, &so, &snap), 0);
	assert_true(snap.maps[0].watched);
	assert_int_equal(rs_guard_map_ref(g, &oo.guard_map), 0);
	memset(&res, 0, sizeof(res));
	assert_int_equal(rs_optimize(&p, &snap, NULL, &oo, &res), 0);
	assert_int_equal(res.guarded_maps, 1);
	fd = rs_prog_load(&res.prog, NULL);		/* own load: no bump */
	assert_true(fd >= 0);
	/* the folded constant and the live value agree: 1 */
	assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
	assert_int_equal(t.retval, 1);
	/* bpf_map_lookup_elem from user space does not disturb it; an update must */
	v = 7;
	assert_int_equal(bpf_map_update_elem(m, &k, &v, BPF_ANY), 0);
	assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
	assert_int_equal(t.retval, 7);		/* guard fell back to the original code */
	/* and it stays on the original path: a later write is seen too */
	v = 9;
	assert_int_equal(bpf_map_update_elem(m, &k, &v, BPF_ANY), 0);
	assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
	assert_int_equal(t.retval, 9);
	close(fd);

	/*
	 * The constant really is folded: a write the watcher does not see (a helper write by a
	 * program loaded from our own, exempt process) leaves the specialized program on its
	 * constant; bumping the guard by hand sends it to the original code and the live value.
	 */
	{
		struct bpf_insn wr[] = {
			MOV64_IMM(1, 0),
			{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = 10, .src_reg = 1, .off = -4 },
			MOV64_IMM(1, 5),
			{ .code = BPF_STX | BPF_MEM | BPF_W, .dst_reg = 10, .src_reg = 1, .off = -8 },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 2, .src_reg = 10 },
			{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 2, .imm = -4 },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 3, .src_reg = 10 },
			{ .code = BPF_ALU64 | BPF_ADD | BPF_K, .dst_reg = 3, .imm = -8 },
			LD_MAP(1, BPF_PSEUDO_MAP_FD, m, 0),
			MOV64_IMM(4, 0),
			{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_map_update_elem },
			MOV64_IMM(0, 2),
			EXIT_INSN(),
		};
		uint64_t gen;
		int wfd;

		rs_snapshot_free(&snap);
		rs_opt_result_free(&res);
		assert_int_equal(rs_snapshot_take_opts(&p, NULL, &so, &snap), 0);
		memset(&res, 0, sizeof(res));
		assert_int_equal(rs_optimize(&p, &snap, NULL, &oo, &res), 0);
		assert_int_equal(res.guarded_maps, 1);
		fd = rs_prog_load(&res.prog, NULL);
		assert_true(fd >= 0);
		wfd = bpf_prog_load(BPF_PROG_TYPE_XDP, "rs_gt_wr", "GPL", wr, RS_ARRAY_SIZE(wr),
				    NULL);
		assert_true(wfd >= 0);
		assert_int_equal(bpf_prog_test_run_opts(wfd, &t), 0);
		assert_int_equal(bpf_map_lookup_elem(m, &k, &v), 0);
		assert_int_equal(v, 5);
		assert_int_equal(rs_guard_read(g, snap.maps[0].guard_slot, &gen), 0);
		assert_int_equal(gen, snap.maps[0].generation);	/* unseen write */
		assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
		assert_int_equal(t.retval, 9);				/* the constant */
		assert_int_equal(rs_guard_bump_all(g), 0);
		assert_int_equal(bpf_prog_test_run_opts(fd, &t), 0);
		assert_int_equal(t.retval, 5);				/* original code */
		close(wfd);
		close(fd);
	}
	rs_snapshot_free(&snap);
	rs_opt_result_free(&res);
	rs_prog_free(&p);
	rs_guard_close(g);
	close(m);
}

static int setup(void **state)
{
	(void)state;
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/rs-guard-test-%d", getpid());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (quiesce_child > 0) {
		kill(quiesce_child, SIGKILL);
		waitpid(quiesce_child, NULL, 0);
	}
	rs_guard_unpin(pin_dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tracepoint),
		cmocka_unit_test(test_raw_tp),
		cmocka_unit_test(test_own_loads_exempt),
		cmocka_unit_test(test_ordering),
		cmocka_unit_test(test_quiesce),
		cmocka_unit_test(test_pinned),
		cmocka_unit_test(test_no_watcher),
		cmocka_unit_test(test_groups),
		cmocka_unit_test(test_pinned_group),
		cmocka_unit_test(test_specialized_fallback),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, setup, teardown);
}
