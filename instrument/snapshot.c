// SPDX-License-Identifier: BSD-2-Clause
/*
 * snapshot.c - map snapshots (issue 4 item 1): what every map of a program holds, and what the
 * live system lets the specializer assume about it (DESIGN.md §3, docs/guards.md).
 *
 * Order with a guard, per attempt: watch every map (rs_guard_watch returns once every write
 * that entered bpf() before the watch has left it) and read its generation G; scan the other
 * loaded programs for writers; read the contents; read the generations again.  Any write or
 * load reaching a map after G was read bumps its slot, so a program built from these contents
 * and checking G at entry never runs on contents older than the live map.  When a generation
 * moved during the attempt it is repeated (a few times), else the snapshot is still correct
 * but would fall back at once.
 *
 * Group ("epoch") slot: the maps the specializer may rely on (arrays, and hash maps / LPM tries
 * the program does not update itself) are put in one guard group (rs_guard_group) right after
 * they are watched, and their guard_slot / generation become the group's: the watcher bumps
 * the group with any member, so the specialized program checks one generation at entry, not
 * one per map.  When no group can be made the maps keep their own slots (still sound).
 *
 * Contents: BPF_MAP_LOOKUP_BATCH for the hash and array families and LPM tries, else
 * get_next_key + lookup (devmaps, ...), per-index lookups for fd arrays (PROG_ARRAY,
 * ARRAY_OF_MAPS), whose empty slots a batch cannot skip.  Only reads: no map is ever written.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

#define BATCH_CHUNK	256
#ifndef ENOTSUPP
#define ENOTSUPP	524	/* kernel-internal, leaks to user space from some map ops */
#endif

struct snap_ctx {
	const struct rs_prog *prog;
	struct rs_snapshot *snap;
	int *fds;			/* per map */
	size_t limit;
	char who[64];			/* "prog 42 (xdp_lb)" */
	/* writer analysis cache: program id -> RS_EXT_* per map of prog */
	uint32_t *seen_ids;
	uint32_t *seen_ext;		/* seen_cnt * map_cnt */
	size_t seen_cnt;
	bool grouped;			/* the group slot was tried */
};

enum read_how { READ_NONE, READ_BATCH, READ_ITER, READ_INDEX };

static enum read_how read_strategy(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
	case BPF_MAP_TYPE_LPM_TRIE:	/* generic batch (get_next_key inside the kernel) */
		return READ_BATCH;
	case BPF_MAP_TYPE_PROG_ARRAY:
	case BPF_MAP_TYPE_ARRAY_OF_MAPS:
	case BPF_MAP_TYPE_CGROUP_ARRAY:
		return READ_INDEX;
	case BPF_MAP_TYPE_DEVMAP:
	case BPF_MAP_TYPE_DEVMAP_HASH:
	case BPF_MAP_TYPE_CPUMAP:
		return READ_ITER;
	default:			/* ring buffers, queues, stacks, perf arrays, storages ... */
		return READ_NONE;
	}
}

int rs_map_fd_frozen(int fd, bool *frozen)
{
	char path[64], line[256];
	int err = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "frozen:", 7)) {
			*frozen = strtoul(line + 7, NULL, 10) != 0;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

/* ---- contents ------------------------------------------------------------------------ */

static int grow(struct rs_map_snapshot *m, size_t *cap, size_t need)
{
	uint8_t *k, *v;
	size_t n = *cap ? *cap : 64;

	if (need <= *cap)
		return 0;
	while (n < need)
		n *= 2;
	k = realloc(m->keys, n * m->key_size);
	if (!k)
		return -ENOMEM;
	m->keys = k;
	v = realloc(m->values, n * m->value_stride);
	if (!v)
		return -ENOMEM;
	m->values = v;
	*cap = n;
	return 0;
}

static bool unsupported(int err)
{
	return err == -EINVAL || err == -ENOTSUPP || err == -EOPNOTSUPP || err == -ENOTSUP;
}

/* 0 done (complete decided), 1: the map type has no batch ops (try another way), <0 error. */
static int read_batch(struct snap_ctx *c, struct rs_map_snapshot *m, int fd, size_t *cap)
{
	size_t tok = m->key_size > 8 ? m->key_size : 8, chunk = BATCH_CHUNK;
	uint8_t *in = calloc(1, tok), *out = calloc(1, tok);
	bool first = true;
	__u32 count;
	int err = 0;

	if (!in || !out) {
		err = -ENOMEM;
		goto out;
	}
	m->complete = false;
	for (;;) {
		if (m->cnt >= c->limit) {
			/* exactly `limit` entries is complete: probe for one more (read into the
			 * room after the last entry, not counted) */
			if (first || grow(m, cap, m->cnt + 1))
				break;
			count = 1;
			err = bpf_map_lookup_batch(fd, in, out, m->keys + m->cnt * m->key_size,
						   m->values + m->cnt * m->value_stride, &count,
						   NULL);
			err = err ? -errno : 0;
			m->complete = err == -ENOENT && count == 0;
			err = 0;
			break;			/* else more follow: incomplete */
		}
		if (chunk > c->limit - m->cnt)
			chunk = c->limit - m->cnt;
		err = grow(m, cap, m->cnt + chunk);
		if (err)
			goto out;
		count = chunk;
		err = bpf_map_lookup_batch(fd, first ? NULL : in, out, m->keys + m->cnt * m->key_size,
					   m->values + m->cnt * m->value_stride, &count, NULL);
		err = err ? -errno : 0;
		if (err == -ENOSPC && count == 0 && chunk < c->limit - m->cnt) {
			chunk *= 2;		/* a hash bucket bigger than the chunk */
			err = 0;
			continue;
		}
		if (err == -ENOSPC && count == 0) {
			err = 0;		/* the next bucket does not fit under the limit */
			break;			/* incomplete */
		}
		if (err && err != -ENOENT) {
			if (first && unsupported(err)) {
				err = 1;
				goto out;
			}
			rs_warn("%s: map %u (%s): batch lookup: %s\n", c->who, m->id,
				c->prog->maps[m->map_idx].name, rs_strerror(err));
			goto out;
		}
		m->cnt += count;
		first = false;
		if (err == -ENOENT) {		/* the end */
			m->complete = true;
			err = 0;
			break;
		}
		memcpy(in, out, tok);
	}
out:
	free(in);
	free(out);
	return err;
}

/* get_next_key from the start; entries deleted meanwhile are skipped. */
static int read_iter(struct snap_ctx *c, struct rs_map_snapshot *m, int fd, size_t *cap)
{
	uint8_t *prev = malloc(m->key_size ?: 1), *key = malloc(m->key_size ?: 1);
	bool have_prev = false;
	size_t steps = 0;
	int err = 0;

	m->complete = false;
	if (!prev || !key) {
		err = -ENOMEM;
		goto out;
	}
	/* a hash map rewritten meanwhile may restart the walk: bound the steps */
	while (m->cnt < c->limit && ++steps <= 2 * c->limit + 16) {
		if (bpf_map_get_next_key(fd, have_prev ? prev : NULL, key)) {
			err = -errno;
			if (err == -ENOENT) {
				m->complete = true;
				err = 0;
			}
			break;
		}
		memcpy(prev, key, m->key_size);
		have_prev = true;
		err = grow(m, cap, m->cnt + 1);
		if (err)
			goto out;
		if (bpf_map_lookup_elem(fd, key, m->values + m->cnt * m->value_stride)) {
			err = -errno;
			if (err == -ENOENT) {	/* deleted (or an empty slot): skip it */
				err = 0;
				continue;
			}
			break;
		}
		memcpy(m->keys + m->cnt * m->key_size, key, m->key_size);
		m->cnt++;
	}
	/* stopped at the limit: complete when nothing follows the last key */
	if (!err && !m->complete && m->cnt >= c->limit && have_prev &&
	    bpf_map_get_next_key(fd, prev, key) && errno == ENOENT)
		m->complete = true;
	if (err && unsupported(err)) {
		rs_debug("%s: map %u (%s): entries not readable from user space: %s\n", c->who,
			 m->id, c->prog->maps[m->map_idx].name, rs_strerror(err));
		m->cnt = 0;
		m->complete = false;
		err = 0;
	} else if (err) {
		rs_warn("%s: map %u (%s): reading entries: %s\n", c->who, m->id,
			c->prog->maps[m->map_idx].name, rs_strerror(err));
	}
out:
	free(prev);
	free(key);
	return err;
}

/* Arrays of fds (prog / map ids as values): every index, empty slots skipped. */
static int read_index(struct snap_ctx *c, struct rs_map_snapshot *m, int fd, size_t *cap)
{
	uint32_t i, n = m->max_entries;
	int err;

	m->complete = n <= c->limit;
	if (n > c->limit)
		n = c->limit;
	for (i = 0; i < n; i++) {
		err = grow(m, cap, m->cnt + 1);
		if (err)
			return err;
		if (bpf_map_lookup_elem(fd, &i, m->values + m->cnt * m->value_stride)) {
			err = -errno;
			if (err == -ENOENT)
				continue;
			if (unsupported(err)) {
				m->cnt = 0;
				m->complete = false;
				return 0;
			}
			rs_warn("%s: map %u (%s): index %u: %s\n", c->who, m->id,
				c->prog->maps[m->map_idx].name, i, rs_strerror(err));
			return err;
		}
		memcpy(m->keys + m->cnt * m->key_size, &i, sizeof(i));
		m->cnt++;
	}
	return 0;
}

static int read_contents(struct snap_ctx *c, struct rs_map_snapshot *m, int fd)
{
	enum read_how how = read_strategy(m->type);
	size_t cap = 0;
	int err = 0;

	free(m->keys);
	free(m->values);
	m->keys = m->values = NULL;
	m->cnt = 0;
	m->complete = false;
	if (how == READ_INDEX && m->key_size != sizeof(uint32_t))
		how = READ_ITER;
	if (how == READ_BATCH) {
		err = read_batch(c, m, fd, &cap);
		if (err == 1) {
			m->cnt = 0;
			how = READ_ITER;
			err = 0;
		} else {
			return err;
		}
	}
	if (how == READ_ITER)
		return read_iter(c, m, fd, &cap);
	if (how == READ_INDEX)
		return read_index(c, m, fd, &cap);
	rs_debug("%s: map %u (%s): %s maps have no readable entries\n", c->who, m->id,
		 c->prog->maps[m->map_idx].name, libbpf_bpf_map_type_str(m->type) ?: "?");
	return 0;
}

/* ---- other programs that write the maps ------------------------------------------------ */

static bool excluded(const struct rs_snapshot_opts *opts, uint32_t id)
{
	const uint32_t *ex = RS_OPTS_GET(opts, exclude_progs, NULL);
	size_t i, n = RS_OPTS_GET(opts, exclude_cnt, 0);

	for (i = 0; ex && i < n; i++)
		if (ex[i] == id)
			return true;
	return false;
}

/* Map ids a loaded program references (*ids allocated). */
static int prog_map_ids(uint32_t id, uint32_t **ids, uint32_t *cnt)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), n;
	int fd, err = 0;

	*ids = NULL;
	*cnt = 0;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	n = info.nr_map_ids;
	if (!n)
		goto out;
	*ids = calloc(n, sizeof(**ids));
	if (!*ids) {
		err = -ENOMEM;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = n;
	info.map_ids = (uintptr_t)*ids;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		free(*ids);
		*ids = NULL;
		goto out;
	}
	*cnt = info.nr_map_ids < n ? info.nr_map_ids : n;
out:
	close(fd);
	return err;
}

/* RS_EXT_* that program `id` contributes to each map of the snapshot (ext[map_cnt]). */
static int analyze_writer(struct snap_ctx *c, uint32_t id, const uint32_t *ids, uint32_t nids,
			  uint32_t *ext)
{
	struct rs_snapshot *s = c->snap;
	struct rs_lift_report rep;
	struct rs_prog other;
	bool any = false;
	size_t i, k;
	uint32_t j;
	int err;

	for (i = 0; i < s->map_cnt; i++)
		for (j = 0; j < nids; j++)
			if (s->maps[i].id && ids[j] == s->maps[i].id)
				any = true;
	if (!any)
		return 0;
	memset(&rep, 0, sizeof(rep));
	rs_prog_init(&other);
	err = rs_fetch_original(id, &other, &rep);
	if (err)
		rs_debug("%s: prog %u shares maps but its original is unavailable (%s): its writes "
			 "are unknown\n", c->who, id, rs_strerror(err));
	for (i = 0; i < s->map_cnt; i++) {
		uint32_t mid = s->maps[i].id;
		long idx = -1;

		for (j = 0; j < nids && mid; j++)
			if (ids[j] == mid)
				break;
		if (!mid || j == nids)
			continue;
		for (k = 0; !err && k < other.map_cnt; k++)
			if (other.maps[k].id == mid)
				idx = k;
		if (err || idx < 0)	/* unavailable, or reaches it without a reference */
			ext[i] |= RS_EXT_UNKNOWN;
		else
			ext[i] |= rs_prog_map_writes(&other, idx);
		if (ext[i])
			rs_debug("%s: map %u (%s): prog %u (%s) writes it (0x%x)\n", c->who, mid,
				 c->prog->maps[i].name, id, err ? "?" : other.name, ext[i]);
	}
	rs_prog_free(&other);
	return 0;
}

static int scan_writers(struct snap_ctx *c, const struct rs_snapshot_opts *opts)
{
	struct rs_snapshot *s = c->snap;
	uint32_t id = 0, *ids, nids, *ext;
	size_t i, k;
	int err;

	for (i = 0; i < s->map_cnt; i++)
		s->maps[i].ext_writers = 0;
	while (!bpf_prog_get_next_id(id, &id)) {
		if (id == c->prog->id || excluded(opts, id))
			continue;
		for (k = 0; k < c->seen_cnt; k++)
			if (c->seen_ids[k] == id)
				break;
		if (k == c->seen_cnt) {
			uint32_t *nid, *next;

			if (prog_map_ids(id, &ids, &nids))
				continue;	/* gone meanwhile */
			nid = realloc(c->seen_ids, (k + 1) * sizeof(*nid));
			if (nid)
				c->seen_ids = nid;
			next = realloc(c->seen_ext, (k + 1) * s->map_cnt * sizeof(*next) + 1);
			if (next)
				c->seen_ext = next;
			if (!nid || !next) {
				free(ids);
				return -ENOMEM;
			}
			ext = c->seen_ext + k * s->map_cnt;
			memset(ext, 0, s->map_cnt * sizeof(*ext));
			c->seen_ids[k] = id;
			c->seen_cnt++;
			err = analyze_writer(c, id, ids, nids, ext);
			free(ids);
			if (err)
				return err;
		}
		ext = c->seen_ext + k * s->map_cnt;
		for (i = 0; i < s->map_cnt; i++)
			s->maps[i].ext_writers |= ext[i];
	}
	if (errno != ENOENT) {
		err = -errno;
		rs_warn("%s: listing loaded programs: %s\n", c->who, rs_strerror(err));
		return err;
	}
	return 0;
}

/* ---- the snapshot ---------------------------------------------------------------------- */

static int describe(struct snap_ctx *c, size_t i, int fd)
{
	struct rs_map_snapshot *m = &c->snap->maps[i];
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	int ncpus, err;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		rs_warn("%s: map %zu (%s): %s\n", c->who, i, c->prog->maps[i].name,
			rs_strerror(err));
		return err;
	}
	m->map_idx = i;
	m->id = info.id;
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->map_flags = info.map_flags;
	if (rs_map_fd_frozen(fd, &m->frozen))
		m->frozen = false;
	m->ncpus = 1;
	m->value_stride = info.value_size;
	if (rs_map_type_percpu(info.type)) {
		ncpus = libbpf_num_possible_cpus();
		if (ncpus <= 0)
			return ncpus < 0 ? ncpus : -EINVAL;
		m->ncpus = ncpus;
		m->value_stride = ((info.value_size + 7) & ~7u) * ncpus;
	}
	return 0;
}

static void snap_release(struct rs_snapshot *s)
{
	size_t i;

	for (i = 0; s->maps && i < s->map_cnt; i++) {
		free(s->maps[i].keys);
		free(s->maps[i].values);
	}
	free(s->maps);
	s->maps = NULL;
	s->map_cnt = 0;
}

/* Watch every map and record slots and generations. */
static int watch_all(struct snap_ctx *c, struct rs_guard *g)
{
	struct rs_snapshot *s = c->snap;
	uint64_t writes, first, last, now;
	struct timespec ts;
	size_t i;
	int err;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	for (i = 0; i < s->map_cnt; i++) {
		struct rs_map_snapshot *m = &s->maps[i];

		if (!m->watched) {
			err = rs_guard_watch(g, m->id, &m->guard_slot, &m->generation);
			if (err) {
				rs_warn("%s: map %u (%s): cannot watch: %s\n", c->who, m->id,
					c->prog->maps[i].name, rs_strerror(err));
				return err;
			}
			m->watched = true;
		} else {
			err = rs_guard_read(g, m->guard_slot, &m->generation);
			if (err)
				return err;
		}
		m->updates_per_s = 0;
		if (!rs_guard_churn_since(g, m->id, &writes, &first, &last) && now > first)
			m->updates_per_s = writes / ((now - first) / 1e9);
	}
	return 0;
}

/* May the specializer rely on this map's contents?  (mirrors optimizer/analysis.c coarsely:
 * other maps would never be guarded, and would only invalidate the group needlessly) */
static bool may_rely_on(const struct rs_prog *prog, const struct rs_map_snapshot *m)
{
	switch (m->type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return true;
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
		return !(rs_prog_map_writes(prog, m->map_idx) & (RS_EXT_UPDATES | RS_EXT_UNKNOWN));
	default:
		return false;
	}
}

/* One group slot for the maps the specializer may rely on (see the header comment). */
static int group_maps(struct snap_ctx *c, struct rs_guard *g)
{
	struct rs_snapshot *s = c->snap;
	uint32_t *ids, slot;
	bool *member;
	uint64_t gen;
	size_t i, n = 0;
	int err = -ENOMEM;

	c->grouped = true;
	ids = calloc(s->map_cnt, sizeof(*ids));
	member = calloc(s->map_cnt, sizeof(*member));
	if (!ids || !member)
		goto out;
	for (i = 0; i < s->map_cnt; i++) {
		member[i] = s->maps[i].watched && may_rely_on(c->prog, &s->maps[i]);
		if (member[i])
			ids[n++] = s->maps[i].id;
	}
	err = 0;
	if (n < 2)
		goto out;
	err = rs_guard_group(g, ids, n, &slot, &gen);
	if (err == -ENOSPC || err == -EBUSY) {
		rs_info("%s: no guard group (%s): %zu maps keep their own slots\n", c->who,
			rs_strerror(err), n);
		err = 0;
		goto out;
	}
	if (err)
		goto out;
	for (i = 0; i < s->map_cnt; i++) {
		if (!member[i])
			continue;
		s->maps[i].guard_slot = slot;
		s->maps[i].generation = gen;
	}
	rs_debug("%s: %zu maps share guard slot %u\n", c->who, n, slot);
out:
	free(ids);
	free(member);
	return err;
}

/* Did any generation move since watch_all()? */
static bool gens_moved(struct snap_ctx *c, struct rs_guard *g)
{
	uint64_t gen;
	size_t i;

	for (i = 0; i < c->snap->map_cnt; i++) {
		struct rs_map_snapshot *m = &c->snap->maps[i];

		if (m->watched && (rs_guard_read(g, m->guard_slot, &gen) || gen != m->generation))
			return true;
	}
	return false;
}

static void unwatch_all(struct snap_ctx *c, struct rs_guard *g)
{
	size_t i;

	for (i = 0; i < c->snap->map_cnt; i++)
		if (c->snap->maps[i].watched)
			rs_guard_unwatch(g, c->snap->maps[i].id);
}

int rs_snapshot_take_opts(const struct rs_prog *prog, const int *map_fds,
			  const struct rs_snapshot_opts *opts, struct rs_snapshot *out)
{
	struct rs_guard *g = RS_OPTS_GET(opts, guard, NULL);
	unsigned int tries = RS_OPTS_GET(opts, retries, 0) ?: 3, t;
	struct snap_ctx c = { .prog = prog, .snap = out };
	size_t i;
	int err = 0;

	if (!prog || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	c.limit = RS_OPTS_GET(opts, max_entries, 0) ?: RS_SNAPSHOT_MAX_ENTRIES;
	snprintf(c.who, sizeof(c.who), "prog %u (%s)", prog->id, prog->name);
	if (!prog->map_cnt)
		return 0;
	out->maps = calloc(prog->map_cnt, sizeof(*out->maps));
	c.fds = malloc(prog->map_cnt * sizeof(*c.fds));
	if (!out->maps || !c.fds) {
		err = -ENOMEM;
		goto out;
	}
	out->map_cnt = prog->map_cnt;
	for (i = 0; i < prog->map_cnt; i++)
		c.fds[i] = -1;
	for (i = 0; i < prog->map_cnt; i++) {
		if (map_fds) {
			c.fds[i] = map_fds[i];
		} else if (!prog->maps[i].id) {
			rs_warn("%s: map %zu (%s) has no kernel map id\n", c.who, i,
				prog->maps[i].name);
			err = -RS_ERR_NOT_FOUND;
			goto out;
		} else {
			c.fds[i] = bpf_map_get_fd_by_id(prog->maps[i].id);
			if (c.fds[i] < 0) {
				err = -errno;
				rs_warn("%s: map %u (%s): %s\n", c.who, prog->maps[i].id,
					prog->maps[i].name, rs_strerror(err));
				goto out;
			}
		}
		err = describe(&c, i, c.fds[i]);
		if (err)
			goto out;
	}
	for (t = 0; t < tries; t++) {
		if (g) {
			err = watch_all(&c, g);
			if (!err && !c.grouped)
				err = group_maps(&c, g);
			if (err)
				goto out;
		}
		if (!RS_OPTS_GET(opts, no_ext_writers, false)) {
			err = scan_writers(&c, opts);
			if (err)
				goto out;
		}
		for (i = 0; i < out->map_cnt; i++) {
			err = read_contents(&c, &out->maps[i], c.fds[i]);
			if (err)
				goto out;
		}
		if (!g || !gens_moved(&c, g))
			break;
		rs_debug("%s: a map changed while it was read, reading again\n", c.who);
	}
	if (g && t == tries)
		rs_info("%s: maps kept changing while read: the snapshot is already stale "
			"(guards will fall back)\n", c.who);
	for (i = 0; i < out->map_cnt; i++)
		rs_debug("%s: map %u (%s): %s, %zu entries%s%s, ext_writers 0x%x\n", c.who,
			 out->maps[i].id, prog->maps[i].name,
			 libbpf_bpf_map_type_str(out->maps[i].type) ?: "?", out->maps[i].cnt,
			 out->maps[i].complete ? "" : " (incomplete)",
			 out->maps[i].frozen ? ", frozen" : "", out->maps[i].ext_writers);
out:
	if (err && g)
		unwatch_all(&c, g);
	if (err)
		snap_release(out);
	if (c.fds && !map_fds)
		for (i = 0; i < prog->map_cnt; i++)
			if (c.fds[i] >= 0)
				close(c.fds[i]);
	free(c.fds);
	free(c.seen_ids);
	free(c.seen_ext);
	return err;
}

int rs_snapshot_take(const struct rs_prog *prog, const int *map_fds, struct rs_snapshot *out)
{
	return rs_snapshot_take_opts(prog, map_fds, NULL, out);
}

int rs_snapshot_from_fds(const struct rs_prog *prog, const int *map_fds, struct rs_snapshot *out)
{
	RS_OPTS(rs_snapshot_opts, opts, .no_ext_writers = true);

	if (!map_fds)
		return -EINVAL;
	return rs_snapshot_take_opts(prog, map_fds, &opts, out);
}
