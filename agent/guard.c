// SPDX-License-Identifier: BSD-2-Clause
/*
 * guard.c - the guard generation array and the watcher on bpf() (DESIGN.md §3, docs/guards.md;
 * kernel half bpf/watcher.bpf.c).
 *
 * The agent owns one BPF_F_MMAPABLE array of u64 generations, one slot per watched map, and a hash
 * map id -> slot the watcher reads.  The array has a single entry holding every slot (struct
 * rs_guard_gens): the kernel allows direct value loads, which a specialized program's guard
 * prologue uses, only on single-entry arrays.  The watcher bumps a slot (atomic add) on entry to
 * every bpf() write command aimed at a watched map and on every load of a program that references
 * one; user space bumps through the mmap'ed array with the same atomic add. Generations only grow:
 * a freed slot keeps its value (bumped once more on release), so a program built against a
 * generation can never see that generation again.
 *
 * Group slots (rs_guard_group): one slot for a set of watched maps, bumped by the watcher
 * together with any member's own slot (rs_guard_subs[member slot] lists it), so a specialized
 * program relying on several maps checks a single generation at entry (one load, one compare).
 * The same set of maps gets the same group back while it exists; unwatching a member for the
 * last time dissolves every group it is in (bumped, freed).  Group membership lives only in
 * the kernel's rs_guard_subs, so a pinned watcher keeps it and a new agent reads it back.
 *
 * Hooks: the tracepoints syscalls/sys_{enter,exit}_bpf (tracefs is mounted just long enough to
 * read their ids) or, without tracefs, raw_tp/sys_{enter,exit}.  The tracepoint is attached by
 * hand (perf_event_open + BPF_LINK_CREATE, then the perf fd is closed) rather than through
 * bpf_program__attach_tracepoint(): libbpf keeps the perf fd and disables the event when the
 * link is destroyed, which would stop a pinned watcher when the agent exits.  With pin_dir the
 * maps and both links are pinned (links replaced atomically by rename, so a restarted agent
 * takes over without a moment without a watcher) and outlive the agent.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "bpf/watcher.h"
#include "watcher.skel.h"

#define TRACEFS			"/sys/kernel/tracing"
#define BPFFS_ROOT		"/sys/fs/bpf"
#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC		0xcafe4a11
#endif
#define QUIESCE_DEFAULT_MS	2000

enum { HOOK_ENTER, HOOK_EXIT, HOOK_CNT };

static const char *const map_pin_names[] = {
	"guard_gen", "guard_slots", "guard_churn", "guard_inflight", "guard_subs",
};
#define SLOT_GROUP		UINT32_MAX	/* slot_map[] of a group slot (map ids < 2^31) */
static const char *const link_pin_names[HOOK_CNT] = { "guard_link_enter", "guard_link_exit" };

struct rs_guard {
	struct watcher *skel;
	int link_fd[HOOK_CNT];
	const char *hook;
	char pin_dir[256];
	uint64_t *gen;			/* mmap of rs_guard_gen */
	size_t gen_len;
	struct rs_guard_subs *subs;	/* mmap of rs_guard_subs: groups per slot */
	size_t subs_len;
	uint32_t nslots;
	uint32_t *slot_map;		/* map id watched through each slot, 0 when free,
					 * SLOT_GROUP for a group slot */
	uint32_t *slot_refs;
	unsigned int quiesce_ms;
	uint32_t gen_map_id;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static int gen_fd(const struct rs_guard *g)
{
	return bpf_map__fd(g->skel->maps.rs_guard_gen);
}

static int slots_fd(const struct rs_guard *g)
{
	return bpf_map__fd(g->skel->maps.rs_guard_slots);
}

/* ---- pins ---------------------------------------------------------------------------- */

static int ensure_pin_dir(const char *dir)
{
	struct statfs st;

	if (!strncmp(dir, BPFFS_ROOT "/", strlen(BPFFS_ROOT) + 1) &&
	    (statfs(BPFFS_ROOT, &st) || st.f_type != BPF_FS_MAGIC) &&
	    mount("bpf", BPFFS_ROOT, "bpf", 0, NULL)) {
		rs_warn("guard: cannot mount bpffs on %s: %s\n", BPFFS_ROOT, rs_strerror(-errno));
		return -errno;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rs_warn("guard: cannot create %s: %s\n", dir, rs_strerror(-errno));
		return -errno;
	}
	if (statfs(dir, &st) || st.f_type != BPF_FS_MAGIC) {
		rs_warn("guard: %s is not on a bpf file system\n", dir);
		return -EINVAL;
	}
	return 0;
}

/* Slots of a pinned watch list (its max_entries), 0 when there is none. */
static uint32_t pinned_slots(const char *dir)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[512];
	uint32_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, map_pin_names[1]);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		n = info.max_entries;
	close(fd);
	return n;
}

static int set_map_pins(struct rs_guard *g)
{
	struct bpf_map *maps[] = {
		g->skel->maps.rs_guard_gen, g->skel->maps.rs_guard_slots,
		g->skel->maps.rs_guard_churn, g->skel->maps.rs_guard_inflight,
		g->skel->maps.rs_guard_subs,
	};
	char path[512];
	size_t i;
	int err;

	for (i = 0; i < RS_ARRAY_SIZE(maps); i++) {
		snprintf(path, sizeof(path), "%s/%s", g->pin_dir, map_pin_names[i]);
		err = bpf_map__set_pin_path(maps[i], path);
		if (err)
			return err;
	}
	return 0;
}

/* Pin a link under a temporary name and rename it over the old pin: never a moment without. */
static int pin_link(struct rs_guard *g, int fd, const char *name)
{
	char path[512], tmp[512];

	snprintf(path, sizeof(path), "%s/%s", g->pin_dir, name);
	/* bpffs refuses dots in names */
	snprintf(tmp, sizeof(tmp), "%s/%s_new%d", g->pin_dir, name, getpid());
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		goto fail;
	if (rename(tmp, path)) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	rs_warn("guard: cannot pin %s: %s\n", path, rs_strerror(-errno));
	return -errno;
}

int rs_guard_unpin(const char *dir)
{
	char path[512];
	size_t i;
	int err = 0;

	if (!dir)
		dir = RS_GUARD_PIN_DIR;
	for (i = 0; i < RS_ARRAY_SIZE(link_pin_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, link_pin_names[i]);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	for (i = 0; i < RS_ARRAY_SIZE(map_pin_names); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, map_pin_names[i]);
		if (unlink(path) && errno != ENOENT && !err)
			err = -errno;
	}
	rmdir(dir);	/* only when empty: other pins (swap) may live there */
	return err;
}

/* ---- hooks ----------------------------------------------------------------------------- */

/* Id of tracepoint syscalls/NAME; tracefs is mounted for the read if it is not. */
static int tracepoint_id(const char *name)
{
	char path[256], buf[32];
	bool mounted = false;
	int fd, n, id = -ENOENT;

	snprintf(path, sizeof(path), TRACEFS "/events/syscalls/%s/id", name);
	if (access(TRACEFS "/events", F_OK)) {
		if (mount("tracefs", TRACEFS, "tracefs", 0, NULL))
			return -errno;
		mounted = true;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			id = atoi(buf);
		}
		close(fd);
	} else {
		id = -errno;
	}
	if (mounted && umount(TRACEFS))
		rs_debug("guard: tracefs stays mounted: %s\n", rs_strerror(-errno));
	return id;
}

/* Attach prog to a syscall tracepoint through a BPF perf link; the perf fd is not kept. */
static int attach_tracepoint(int prog_fd, const char *name)
{
	struct perf_event_attr attr;
	int id, pfd, lfd;

	id = tracepoint_id(name);
	if (id < 0)
		return id;
	memset(&attr, 0, sizeof(attr));
	attr.type = PERF_TYPE_TRACEPOINT;
	attr.size = sizeof(attr);
	attr.config = id;
	attr.sample_period = 1;
	attr.wakeup_events = 1;
	pfd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -errno;
	lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, NULL);
	if (lfd < 0)
		lfd = -errno;
	close(pfd);		/* the link holds the event */
	return lfd;
}

static void close_links(struct rs_guard *g)
{
	int i;

	for (i = 0; i < HOOK_CNT; i++) {
		if (g->link_fd[i] >= 0)
			close(g->link_fd[i]);
		g->link_fd[i] = -1;
	}
}

static int attach_hooks(struct rs_guard *g, bool raw)
{
	struct watcher *s = g->skel;
	int i;

	if (raw) {
		g->link_fd[HOOK_ENTER] = bpf_raw_tracepoint_open("sys_enter",
					bpf_program__fd(s->progs.rs_guard_raw_enter));
		g->link_fd[HOOK_EXIT] = bpf_raw_tracepoint_open("sys_exit",
					bpf_program__fd(s->progs.rs_guard_raw_exit));
	} else {
		g->link_fd[HOOK_ENTER] = attach_tracepoint(bpf_program__fd(s->progs.rs_guard_tp_enter),
							   "sys_enter_bpf");
		g->link_fd[HOOK_EXIT] = attach_tracepoint(bpf_program__fd(s->progs.rs_guard_tp_exit),
							  "sys_exit_bpf");
	}
	for (i = 0; i < HOOK_CNT; i++) {
		if (g->link_fd[i] < 0) {
			int err = g->link_fd[i] == -1 ? -errno : g->link_fd[i];

			g->link_fd[i] = -1;
			close_links(g);
			return err ? err : -EINVAL;
		}
	}
	g->hook = raw ? "raw_tp" : "tracepoint";
	return 0;
}

/* Learn the f_op of bpf map files (bpf/fd_resolve.h): the hook records the one of our own
 * BPF_OBJ_GET_INFO_BY_FD on a map fd. */
static int calibrate(struct rs_guard *g)
{
	struct watcher__bss *bss = g->skel->bss;
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	bss->calib_pid_tgid = (uint64_t)getpid() << 32 | (uint32_t)gettid();
	__sync_synchronize();
	memset(&info, 0, sizeof(info));
	bpf_obj_get_info_by_fd(gen_fd(g), &info, &len);
	g->gen_map_id = info.id;
	bss->calib_pid_tgid = 0;
	__sync_synchronize();
	if (!bss->map_fops) {
		rs_warn("guard: calibration of the fd walk failed (hook %s not firing?)\n", g->hook);
		return -ENOTSUP;
	}
	return 0;
}

/* ---- open / close ------------------------------------------------------------------------ */

static int load_skel(struct rs_guard *g, const struct rs_guard_opts *opts, bool raw, bool watcher)
{
	struct watcher *s;
	int err;

	s = watcher__open();
	if (!s)
		return -errno;
	g->skel = s;
	bpf_program__set_autoload(s->progs.rs_guard_tp_enter, watcher && !raw);
	bpf_program__set_autoload(s->progs.rs_guard_tp_exit, watcher && !raw);
	bpf_program__set_autoload(s->progs.rs_guard_raw_enter, watcher && raw);
	bpf_program__set_autoload(s->progs.rs_guard_raw_exit, watcher && raw);
	err = bpf_map__set_max_entries(s->maps.rs_guard_slots, g->nslots);
	if (!err && g->pin_dir[0])
		err = set_map_pins(g);
	if (err)
		return err;
	s->bss->exempt_tgid = RS_OPTS_GET(opts, bump_own_loads, false) ? 0 : (uint32_t)getpid();
	err = watcher__load(s);
	if (err)
		return err;
	if (!watcher) {
		g->hook = "none";
		return 0;
	}
	err = attach_hooks(g, raw);
	if (err)
		return err;
	return calibrate(g);
}

static void unload_skel(struct rs_guard *g)
{
	close_links(g);
	watcher__destroy(g->skel);
	g->skel = NULL;
}

/* Rebuild the slot table from the watch list (taken over from pins, or empty). */
static int read_watch_list(struct rs_guard *g)
{
	uint32_t key, next, slot;
	void *prev = NULL;

	while (!bpf_map_get_next_key(slots_fd(g), prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(slots_fd(g), &key, &slot))
			continue;
		if (slot >= g->nslots) {
			rs_warn("guard: map %u: slot %u out of range, dropped\n", key, slot);
			continue;
		}
		g->slot_map[slot] = key;
		g->slot_refs[slot] = 1;
	}
	/* groups: slots named in some watched map's subscription list */
	for (slot = 0; slot < g->nslots; slot++) {
		uint32_t k, e;

		for (k = 0; k < RS_GUARD_MAX_SUBS; k++) {
			e = g->subs[slot].sub[k];
			if (!e)
				continue;
			if (!g->slot_map[slot] || g->slot_map[slot] == SLOT_GROUP ||
			    e - 1 >= g->nslots ||
			    (g->slot_map[e - 1] && g->slot_map[e - 1] != SLOT_GROUP)) {
				__atomic_store_n(&g->subs[slot].sub[k], 0, __ATOMIC_SEQ_CST);
				continue;
			}
			g->slot_map[e - 1] = SLOT_GROUP;
			g->slot_refs[e - 1] = 1;
		}
	}
	return 0;
}

int rs_guard_open(const struct rs_guard_opts *opts, struct rs_guard **gp)
{
	const char *pin = RS_OPTS_GET(opts, pin_dir, NULL);
	bool raw = RS_OPTS_GET(opts, force_raw_tp, false);
	bool watcher = !RS_OPTS_GET(opts, no_watcher, false);
	struct rs_guard *g;
	size_t page = sysconf(_SC_PAGESIZE);
	uint32_t n;
	int err, i;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	for (i = 0; i < HOOK_CNT; i++)
		g->link_fd[i] = -1;
	g->quiesce_ms = RS_OPTS_GET(opts, quiesce_ms, 0) ?: QUIESCE_DEFAULT_MS;
	g->nslots = RS_OPTS_GET(opts, max_slots, 0) ?: RS_GUARD_MAX_SLOTS;
	if (g->nslots > RS_GUARD_MAX_SLOTS)
		g->nslots = RS_GUARD_MAX_SLOTS;
	if (pin) {
		snprintf(g->pin_dir, sizeof(g->pin_dir), "%s", pin);
		err = ensure_pin_dir(g->pin_dir);
		if (err)
			goto fail;
		n = pinned_slots(g->pin_dir);
		if (n && n <= RS_GUARD_MAX_SLOTS)
			g->nslots = n;	/* take the pinned array over as it is */
	}
	err = load_skel(g, opts, raw, watcher);
	if (err && watcher && !raw) {
		rs_info("guard: tracepoint hook failed (%s), trying raw_tp\n", rs_strerror(err));
		unload_skel(g);
		raw = true;
		err = load_skel(g, opts, raw, watcher);
	}
	if (err) {
		rs_warn("guard: cannot load the watcher: %s\n", rs_strerror(err));
		goto fail;
	}
	g->gen_len = (sizeof(struct rs_guard_gens) + page - 1) / page * page;
	g->gen = mmap(NULL, g->gen_len, PROT_READ | PROT_WRITE, MAP_SHARED, gen_fd(g), 0);
	if (g->gen == MAP_FAILED) {
		err = -errno;
		g->gen = NULL;
		rs_warn("guard: cannot mmap the generation array: %s\n", rs_strerror(err));
		goto fail;
	}
	g->subs_len = (sizeof(struct rs_guard_subs) * RS_GUARD_MAX_SLOTS + page - 1) / page * page;
	g->subs = mmap(NULL, g->subs_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		       bpf_map__fd(g->skel->maps.rs_guard_subs), 0);
	if (g->subs == MAP_FAILED) {
		err = -errno;
		g->subs = NULL;
		rs_warn("guard: cannot mmap the group lists: %s\n", rs_strerror(err));
		goto fail;
	}
	g->slot_map = calloc(g->nslots, sizeof(*g->slot_map));
	g->slot_refs = calloc(g->nslots, sizeof(*g->slot_refs));
	if (!g->slot_map || !g->slot_refs) {
		err = -ENOMEM;
		goto fail;
	}
	err = read_watch_list(g);
	if (err)
		goto fail;
	if (pin && watcher) {
		for (i = 0; i < HOOK_CNT; i++) {
			err = pin_link(g, g->link_fd[i], link_pin_names[i]);
			if (err)
				goto fail;
		}
	}
	if (!g->gen_map_id) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(gen_fd(g), &info, &len))
			g->gen_map_id = info.id;
	}
	rs_info("guard: %u slots (map %u), hook %s%s%s\n", g->nslots, g->gen_map_id, g->hook,
		pin ? ", pinned in " : "", pin ? pin : "");
	*gp = g;
	return 0;
fail:
	rs_guard_close(g);
	return err;
}

void rs_guard_close(struct rs_guard *g)
{
	if (!g)
		return;
	/* a pinned watcher outlives us: stop exempting our pid, which may be reused */
	if (g->skel && g->skel->bss)
		g->skel->bss->exempt_tgid = 0;
	if (g->gen)
		munmap(g->gen, g->gen_len);
	if (g->subs)
		munmap(g->subs, g->subs_len);
	if (g->skel)
		unload_skel(g);
	free(g->slot_map);
	free(g->slot_refs);
	free(g);
}

/* ---- watch list ------------------------------------------------------------------------ */

static int find_slot(const struct rs_guard *g, uint32_t map_id)
{
	uint32_t i;

	for (i = 0; i < g->nslots; i++)
		if (g->slot_map[i] == map_id)
			return i;
	return -1;
}

static bool thread_alive(uint64_t pid_tgid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%u/task/%u", (unsigned)(pid_tgid >> 32),
		 (unsigned)pid_tgid);
	return access(path, F_OK) == 0;
}

/* Write / load commands that entered bpf() before `since` and are still inside it. */
static size_t older_in_flight(struct rs_guard *g, uint64_t since)
{
	int fd = bpf_map__fd(g->skel->maps.rs_guard_inflight);
	uint64_t key, next, t;
	void *prev = NULL;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &t) || t >= since)
			continue;
		if (!thread_alive(key)) {	/* exit never seen (hook swapped meanwhile) */
			bpf_map_delete_elem(fd, &key);
			continue;
		}
		n++;
	}
	return n;
}

static int quiesce(struct rs_guard *g, uint32_t map_id)
{
	uint64_t since = now_ns(), deadline = since + g->quiesce_ms * 1000000ull;
	struct timespec pause = { 0, 1000000 };
	size_t n;

	if (!strcmp(g->hook, "none"))
		return 0;
	while ((n = older_in_flight(g, since))) {
		if (now_ns() > deadline) {
			rs_warn("guard: map %u: %zu bpf() writes older than the watch still running "
				"after %u ms\n", map_id, n, g->quiesce_ms);
			return -EBUSY;
		}
		nanosleep(&pause, NULL);
	}
	if (g->skel->bss->stat_inflight_lost)
		rs_info("guard: in-flight table overflowed %llu times: quiescence may be short\n",
			(unsigned long long)g->skel->bss->stat_inflight_lost);
	return 0;
}

int rs_guard_watch(struct rs_guard *g, uint32_t map_id, uint32_t *slotp, uint64_t *gen)
{
	uint32_t slot;
	int s, err;

	if (!g || !map_id || map_id == SLOT_GROUP)
		return -EINVAL;
	s = find_slot(g, map_id);
	if (s >= 0) {
		g->slot_refs[s]++;
		slot = s;
		goto out;
	}
	s = find_slot(g, 0);
	if (s < 0) {
		rs_warn("guard: map %u: all %u slots in use\n", map_id, g->nslots);
		return -ENOSPC;
	}
	slot = s;
	if (bpf_map_update_elem(slots_fd(g), &map_id, &slot, BPF_NOEXIST)) {
		err = -errno;
		rs_warn("guard: map %u: cannot add to the watch list: %s\n", map_id,
			rs_strerror(err));
		return err;
	}
	g->slot_map[slot] = map_id;
	g->slot_refs[slot] = 1;
	err = quiesce(g, map_id);
	if (err) {
		g->slot_refs[slot] = 1;
		rs_guard_unwatch(g, map_id);
		return err;
	}
	rs_debug("guard: map %u watched in slot %u\n", map_id, slot);
out:
	if (slotp)
		*slotp = slot;
	if (gen)
		*gen = __atomic_load_n(&g->gen[slot], __ATOMIC_SEQ_CST);
	return 0;
}

/* Free group slot e: bump it (programs built against it fall back), drop it from every list. */
static void dissolve_group(struct rs_guard *g, uint32_t e)
{
	uint32_t s, k;

	__atomic_fetch_add(&g->gen[e], 1, __ATOMIC_SEQ_CST);
	for (s = 0; s < g->nslots; s++)
		for (k = 0; k < RS_GUARD_MAX_SUBS; k++)
			if (g->subs[s].sub[k] == e + 1)
				__atomic_store_n(&g->subs[s].sub[k], 0, __ATOMIC_SEQ_CST);
	g->slot_map[e] = 0;
	g->slot_refs[e] = 0;
	rs_debug("guard: group slot %u dissolved\n", e);
}

static bool in_group(const struct rs_guard *g, uint32_t s, uint32_t e)
{
	uint32_t k;

	for (k = 0; k < RS_GUARD_MAX_SUBS; k++)
		if (g->subs[s].sub[k] == e + 1)
			return true;
	return false;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* own slots of the distinct maps in ids[] into os[] (sorted), their number; <0 error */
static int member_slots(struct rs_guard *g, const uint32_t *ids, size_t n, uint32_t *os)
{
	size_t i, m = 0;
	int s;

	for (i = 0; i < n; i++) {
		if (!ids[i] || ids[i] == SLOT_GROUP)
			return -EINVAL;
		s = find_slot(g, ids[i]);
		if (s < 0) {
			rs_warn("guard: map %u: not watched, cannot join a group\n", ids[i]);
			return -ENOENT;
		}
		os[i] = s;
	}
	qsort(os, n, sizeof(*os), cmp_u32);
	for (i = 0; i < n; i++)
		if (!m || os[m - 1] != os[i])
			os[m++] = os[i];
	return (int)m;
}

int rs_guard_group(struct rs_guard *g, const uint32_t *map_ids, size_t n, uint32_t *slotp,
		   uint64_t *gen)
{
	uint32_t *os, e, s, k, members;
	size_t i;
	int m, free_slot, err;

	if (!g || !map_ids || !n || n > g->nslots)
		return -EINVAL;
	os = calloc(n + 1, sizeof(*os));
	if (!os)
		return -ENOMEM;
	m = member_slots(g, map_ids, n, os);
	if (m < 0) {
		err = m;
		goto out;
	}
	/* the same set already has a group: reuse it */
	for (e = 0; e < g->nslots; e++) {
		if (g->slot_map[e] != SLOT_GROUP)
			continue;
		for (members = 0, s = 0; s < g->nslots; s++)
			members += g->slot_map[s] && g->slot_map[s] != SLOT_GROUP && in_group(g, s, e);
		if (members != (uint32_t)m)
			continue;
		for (i = 0; i < (size_t)m && in_group(g, os[i], e); i++)
			;
		if (i == (size_t)m)
			goto found;
	}
	for (i = 0; i < (size_t)m; i++) {
		for (k = 0; k < RS_GUARD_MAX_SUBS && g->subs[os[i]].sub[k]; k++)
			;
		if (k == RS_GUARD_MAX_SUBS) {
			rs_info("guard: map %u is in %d groups already\n", g->slot_map[os[i]],
				RS_GUARD_MAX_SUBS);
			err = -ENOSPC;
			goto out;
		}
	}
	free_slot = find_slot(g, 0);
	if (free_slot < 0) {
		rs_warn("guard: no free slot for a group of %d maps\n", m);
		err = -ENOSPC;
		goto out;
	}
	e = free_slot;
	g->slot_map[e] = SLOT_GROUP;
	g->slot_refs[e] = 1;
	for (i = 0; i < (size_t)m; i++) {
		for (k = 0; g->subs[os[i]].sub[k]; k++)
			;
		__atomic_store_n(&g->subs[os[i]].sub[k], e + 1, __ATOMIC_SEQ_CST);
	}
	/* commands that entered before the lists named e bumped the members only */
	err = quiesce(g, g->slot_map[os[0]]);
	if (err) {
		dissolve_group(g, e);
		goto out;
	}
	rs_debug("guard: group slot %u for %d maps\n", e, m);
found:
	if (slotp)
		*slotp = e;
	if (gen)
		*gen = __atomic_load_n(&g->gen[e], __ATOMIC_SEQ_CST);
	err = 0;
out:
	free(os);
	return err;
}

int rs_guard_unwatch(struct rs_guard *g, uint32_t map_id)
{
	uint32_t k, e;
	int s;

	if (!g || !map_id || map_id == SLOT_GROUP)
		return -EINVAL;
	s = find_slot(g, map_id);
	if (s < 0)
		return -ENOENT;
	if (--g->slot_refs[s])
		return 0;
	/* groups with this map cover it no more */
	for (k = 0; k < RS_GUARD_MAX_SUBS; k++) {
		e = g->subs[s].sub[k];
		if (e && e - 1 < g->nslots && g->slot_map[e - 1] == SLOT_GROUP)
			dissolve_group(g, e - 1);
		__atomic_store_n(&g->subs[s].sub[k], 0, __ATOMIC_SEQ_CST);
	}
	if (bpf_map_delete_elem(slots_fd(g), &map_id) && errno != ENOENT)
		rs_warn("guard: map %u: cannot remove from the watch list: %s\n", map_id,
			rs_strerror(-errno));
	/* programs still built against this slot must fall back; the value is never reused */
	__atomic_fetch_add(&g->gen[s], 1, __ATOMIC_SEQ_CST);
	g->slot_map[s] = 0;
	rs_debug("guard: map %u unwatched (slot %d)\n", map_id, s);
	return 0;
}

int rs_guard_slot_of(struct rs_guard *g, uint32_t map_id, uint32_t *slot)
{
	int s;

	if (!g || !map_id || map_id == SLOT_GROUP)
		return -EINVAL;
	s = find_slot(g, map_id);
	if (s < 0)
		return -ENOENT;
	*slot = s;
	return 0;
}

int rs_guard_read(struct rs_guard *g, uint32_t slot, uint64_t *gen)
{
	if (!g || slot >= g->nslots)
		return -EINVAL;
	*gen = __atomic_load_n(&g->gen[slot], __ATOMIC_SEQ_CST);
	return 0;
}

int rs_guard_bump(struct rs_guard *g, uint32_t slot)
{
	uint32_t k, e;

	if (!g || slot >= g->nslots)
		return -EINVAL;
	__atomic_fetch_add(&g->gen[slot], 1, __ATOMIC_SEQ_CST);
	/* like the watcher: a map's slot also bumps its groups */
	for (k = 0; k < RS_GUARD_MAX_SUBS; k++) {
		e = __atomic_load_n(&g->subs[slot].sub[k], __ATOMIC_SEQ_CST);
		if (e && e - 1 < g->nslots)
			__atomic_fetch_add(&g->gen[e - 1], 1, __ATOMIC_SEQ_CST);
	}
	return 0;
}

int rs_guard_bump_all(struct rs_guard *g)
{
	uint32_t i;

	if (!g)
		return -EINVAL;
	for (i = 0; i < g->nslots; i++)
		__atomic_fetch_add(&g->gen[i], 1, __ATOMIC_SEQ_CST);
	return 0;
}

int rs_guard_map_ref(struct rs_guard *g, struct rs_map_ref *ref)
{
	const struct bpf_map *m;

	if (!g || !ref)
		return -EINVAL;
	m = g->skel->maps.rs_guard_gen;
	memset(ref, 0, sizeof(*ref));
	ref->id = g->gen_map_id;
	ref->type = BPF_MAP_TYPE_ARRAY;
	ref->key_size = bpf_map__key_size(m);
	ref->value_size = bpf_map__value_size(m);
	ref->max_entries = bpf_map__max_entries(m);	/* 1: slot s at value offset s * 8 */
	ref->flags = bpf_map__map_flags(m);
	snprintf(ref->name, sizeof(ref->name), "%s", bpf_map__name(m));
	return 0;
}

int rs_guard_map_fd(struct rs_guard *g)
{
	return g ? gen_fd(g) : -EINVAL;
}

uint32_t rs_guard_slot_cnt(struct rs_guard *g)
{
	return g ? g->nslots : 0;
}

const char *rs_guard_hook_name(struct rs_guard *g)
{
	return g && g->hook ? g->hook : "none";
}

int rs_guard_churn_since(struct rs_guard *g, uint32_t map_id, uint64_t *writes,
			 uint64_t *first_ns, uint64_t *last_ns)
{
	struct rs_guard_churn_rec rec;

	if (!g || !map_id)
		return -EINVAL;
	if (bpf_map_lookup_elem(bpf_map__fd(g->skel->maps.rs_guard_churn), &map_id, &rec))
		return -errno;
	if (writes)
		*writes = rec.writes;
	if (first_ns)
		*first_ns = rec.first_ns;
	if (last_ns)
		*last_ns = rec.last_ns;
	return 0;
}

int rs_guard_churn(struct rs_guard *g, uint32_t map_id, uint64_t *writes, uint64_t *last_ns)
{
	return rs_guard_churn_since(g, map_id, writes, NULL, last_ns);
}
