// SPDX-License-Identifier: BSD-2-Clause
/*
 * offline.c - the offline specialization pipeline as a library (docs/optimize.md):
 *
 *   OBJ + scenario -> A: the original in isolation (private maps filled from the scenario)
 *                  -> B: a second isolated instance of the original (its own private maps,
 *                        same contents) whose original bytecode is fetched back (lift)
 *   TRAIN          -> profile of B's original (instrumented variant against clones, every
 *                     packet sampled by default)
 *   B's maps       -> snapshot, every map watched by the real guard (generation array + the
 *                     watcher on bpf()), so control-plane writes made later bump for real
 *                  -> rs_optimize -> kernel load against B's maps themselves (not clones)
 *
 * The optimized program shares B's maps and the comparison runs A against it, so the map side
 * effects of the optimized program are compared with those of the original on its own maps.
 * Scenario updates are applied to both map sets; the watcher bumps the guards of B's maps and
 * the optimized program falls back to the original code it carries, until rs_offline_specialize
 * builds a new one from a fresh snapshot.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/btf.h>

#include "agent/agent.h"
#include "instrument/replay_internal.h"
#include "optimizer/optimizer.h"

#define RS_OFFLINE_LOG_SIZE	(4u << 20)

struct rs_offline {
	char path[4096];
	const struct rs_scenario *sc;
	struct rs_replay_prog *a;		/* the original on its own maps */
	struct rs_replay_prog *b0;		/* second instance: owns the maps B shares */
	struct rs_replay_prog *b;		/* the optimized program on b0's maps */
	struct rs_guard *guard;
	struct rs_prog orig;			/* b0's original (maps by id of b0's maps) */
	struct rs_profile prof;
	bool has_prof;
	struct rs_snapshot snap;
	bool has_snap;
	struct rs_opt_result res;
	bool has_res;
	struct rs_opt_opts opt;
	struct rs_offline_info info;
	char *vlog;
	int load_err;				/* errno of the last refused load (0: loaded) */
	const char **names;			/* per map of orig (borrowed from b0) */
	uint32_t *key_types, *value_types;	/* per map of orig: BTF ids in b0's BTF */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

const struct rs_offline_info *rs_offline_get_info(const struct rs_offline *off)
{
	return &off->info;
}

struct rs_replay_prog *rs_offline_original(const struct rs_offline *off) { return off->a; }
struct rs_replay_prog *rs_offline_optimized(const struct rs_offline *off) { return off->b; }
struct rs_guard *rs_offline_guard(const struct rs_offline *off) { return off->guard; }

static void clear_spec(struct rs_offline *off)
{
	if (off->has_res)
		rs_opt_result_free(&off->res);
	if (off->has_snap)
		rs_snapshot_free(&off->snap);
	off->has_res = off->has_snap = false;
	off->info.res = NULL;
	off->info.snap = NULL;
}

void rs_offline_close(struct rs_offline *off)
{
	if (!off)
		return;
	rs_replay_close(off->b);
	clear_spec(off);
	rs_replay_close(off->b0);
	rs_replay_close(off->a);
	if (off->has_prof)
		rs_profile_free(&off->prof);
	rs_prog_free(&off->orig);
	rs_guard_close(off->guard);
	free(off->names);
	free(off->key_types);
	free(off->value_types);
	free(off->vlog);
	free(off);
}

struct drain {
	struct rs_profiler *pr;
	struct rs_replay_prog *ip;
};

/* Called every few thousand packets by the replay: drain the variant's key rings. */
static void drain_keys(const char *phase, size_t done, size_t total, void *ctx)
{
	struct drain *d = ctx;

	(void)phase;
	(void)done;
	(void)total;
	rs_profiler_poll(d->pr, d->ip);
}

/* Profile b0's original on the training trace: its instrumented variant against clones. */
static int profile_train(struct rs_offline *off, const struct rs_trace *train, uint32_t rate)
{
	struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = rate ?: 1,
				       .key_slots = 4 * RS_PROF_DEFAULT_KEYS };
	struct rs_replay_opts ro = { .sz = sizeof(ro), .max_divergences = 1,
				     .progress = drain_keys };
	struct drain dr = {};
	struct rs_replay_result rr = {};
	struct rs_profiler *pr = NULL;
	struct rs_replay_prog *ip = NULL;
	double t0 = now_ms();
	int err;

	err = rs_profiler_new(&off->orig, &po, &pr);
	if (err)
		return err;
	{
		struct rs_replay_open_opts oo = { .sz = sizeof(oo) };

		err = rs_replay_open_prog(rs_profiler_prog(pr), &oo, &ip);
	}
	if (err) {
		rs_warn("%s: the instrumented variant did not load: %s", off->path,
			rs_strerror(err));
		goto out;
	}
	dr.pr = pr;
	dr.ip = ip;
	ro.progress_ctx = &dr;
	err = rs_replay_compare(ip, NULL, train, &ro, &rr);
	if (err) {
		rs_warn("%s: running the instrumented variant over %s failed: %s", off->path,
			train->path, rs_strerror(err));
		goto out;
	}
	err = rs_profiler_collect(pr, ip, off->opt.max_hot_keys ?: 16, &off->prof);
	if (err)
		goto out;
	off->has_prof = true;
	off->info.prof = &off->prof;
	off->info.profile_ms = now_ms() - t0;
out:
	rs_replay_result_free(&rr);
	rs_replay_close(ip);
	rs_profiler_free(pr);
	return err;
}

/* Names of orig's maps as the object calls them (b0's map with the same id). */
static int map_names(struct rs_offline *off)
{
	size_t i, j;

	off->names = calloc(off->orig.map_cnt + 1, sizeof(*off->names));
	off->key_types = calloc(off->orig.map_cnt + 1, sizeof(*off->key_types));
	off->value_types = calloc(off->orig.map_cnt + 1, sizeof(*off->value_types));
	if (!off->names || !off->key_types || !off->value_types)
		return -ENOMEM;
	for (j = 0; j < off->b0->map_cnt; j++) {
		struct bpf_map_info mi = {};
		uint32_t len = sizeof(mi);

		if (bpf_obj_get_info_by_fd(off->b0->maps[j].fd, &mi, &len))
			return -errno;
		for (i = 0; i < off->orig.map_cnt; i++)
			if (off->orig.maps[i].id == mi.id) {
				off->names[i] = off->b0->maps[j].name;
				off->key_types[i] = mi.btf_key_type_id;
				off->value_types[i] = mi.btf_value_type_id;
			}
	}
	off->info.map_names = off->names;
	off->info.btf = off->b0->obj ? bpf_object__btf(off->b0->obj) : NULL;
	off->info.key_type_ids = off->key_types;
	off->info.value_type_ids = off->value_types;
	return 0;
}

int rs_offline_open(const char *path, const struct rs_offline_opts *opts,
		    struct rs_offline **out)
{
	const struct rs_opt_opts *oo = RS_OPTS_GET(opts, opt, NULL);
	const struct rs_trace *train = RS_OPTS_GET(opts, train, NULL);
	struct rs_guard_opts go = { .sz = sizeof(go) };
	struct rs_replay_open_opts ro = { .sz = sizeof(ro) };
	struct rs_lift_report rep = {};
	struct bpf_prog_info pi = {};
	uint32_t len = sizeof(pi);
	struct rs_offline *off;
	int err;

	*out = NULL;
	off = calloc(1, sizeof(*off));
	if (!off)
		return -ENOMEM;
	rs_prog_init(&off->orig);
	snprintf(off->path, sizeof(off->path), "%s", path);
	off->sc = RS_OPTS_GET(opts, scenario, NULL);
	off->opt.sz = sizeof(off->opt);
	if (oo)
		memcpy(&off->opt, oo, oo->sz < sizeof(off->opt) ? oo->sz : sizeof(off->opt));
	off->opt.sz = sizeof(off->opt);
	ro.prog_name = RS_OPTS_GET(opts, prog_name, NULL);
	ro.scenario = off->sc;

	err = rs_replay_open_object(path, &ro, &off->a);
	if (err)
		goto err;
	err = rs_replay_open_object(path, &ro, &off->b0);
	if (err)
		goto err;
	if (bpf_obj_get_info_by_fd(rs_replay_fd(off->b0), &pi, &len)) {
		err = -errno;
		goto err;
	}
	err = rs_fetch_original(pi.id, &off->orig, &rep);
	if (err) {
		rs_warn("%s: no original bytecode of the isolated copy (prog %u): %s%s%s", path,
			pi.id, rs_strerror(err), *rep.msg ? ": " : "", rep.msg);
		goto err;
	}
	if (!off->orig.id)
		off->orig.id = pi.id;
	off->info.orig = &off->orig;
	off->info.load_fd = -1;
	err = map_names(off);
	if (err)
		goto err;
	/* the real watcher: the control plane's writes to b0's maps bump their guards */
	err = rs_guard_open(&go, &off->guard);
	if (err) {
		rs_warn("%s: the guard watcher did not start: %s", path, rs_strerror(err));
		goto err;
	}
	err = rs_guard_map_ref(off->guard, &off->opt.guard_map);
	if (err)
		goto err;
	if (train) {
		err = profile_train(off, train, RS_OPTS_GET(opts, sample_rate, 0));
		if (err)
			goto err;
	}
	*out = off;
	return 0;
err:
	rs_offline_close(off);
	return err;
}

/* The optimized program as an isolated replay program sharing b0's maps. */
static int open_optimized(struct rs_offline *off, int fd, struct rs_replay_prog **out)
{
	struct rs_replay_prog *rp;
	size_t i;
	int err = 0;

	rp = calloc(1, sizeof(*rp));
	if (!rp)
		return -ENOMEM;
	rp->fd = fd;
	snprintf(rp->name, sizeof(rp->name), "%s", off->b0->name);
	snprintf(rp->origin, sizeof(rp->origin), "%s:%s (optimized)", off->path, rp->name);
	rp->type = off->res.prog.type;
	rp->expected_attach_type = off->b0->expected_attach_type;
	rp->prog_flags = off->res.prog.prog_flags;
	rp->maps = calloc(off->b0->map_cnt + 1, sizeof(*rp->maps));
	if (!rp->maps) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < off->b0->map_cnt; i++) {
		rp->maps[i] = off->b0->maps[i];
		rp->maps[i].fd = dup(off->b0->maps[i].fd);
		rp->maps[i].owned = true;
		rp->map_cnt++;
		if (rp->maps[i].fd < 0) {
			err = -errno;
			goto out;
		}
	}
out:
	if (err) {
		rs_replay_close(rp);
		return err;
	}
	*out = rp;
	return 0;
}

static int load_optimized(struct rs_offline *off)
{
	struct rs_load_opts lo = { .sz = sizeof(lo) };
	double t0 = now_ms();
	int fd;

	fd = rs_prog_load(&off->res.prog, &lo);
	off->info.load_ms = now_ms() - t0;
	off->load_err = fd < 0 ? fd : 0;
	if (fd >= 0)
		return fd;
	/* again with a log: keep the verifier's words */
	if (!off->vlog)
		off->vlog = malloc(RS_OFFLINE_LOG_SIZE);
	if (off->vlog) {
		off->vlog[0] = 0;
		lo.log_buf = off->vlog;
		lo.log_size = RS_OFFLINE_LOG_SIZE;
		lo.log_level = 1;
		if (rs_prog_load(&off->res.prog, &lo) >= 0)
			rs_warn("%s: optimized program loaded only with a verifier log", off->path);
		off->info.verifier_log = off->vlog;
	}
	rs_warn("%s: the verifier rejected the optimized program: %s", off->path,
		rs_strerror(fd));
	return -RS_ERR_VERIFIER;
}

int rs_offline_specialize(struct rs_offline *off)
{
	RS_OPTS(rs_snapshot_opts, so, .guard = off->guard, .no_ext_writers = true);
	struct rs_replay_prog *nb = NULL;
	int *fds = NULL, fd, err;
	double t0;
	size_t i;

	clear_spec(off);
	off->info.verifier_log = NULL;
	off->load_err = 0;
	rs_replay_close(off->b);
	off->b = NULL;
	off->info.load_fd = -1;
	fds = calloc(off->orig.map_cnt + 1, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (i = 0; i < off->orig.map_cnt; i++)
		fds[i] = -1;
	for (i = 0; i < off->orig.map_cnt; i++) {
		fds[i] = bpf_map_get_fd_by_id(off->orig.maps[i].id);
		if (fds[i] < 0) {
			err = -errno;
			rs_warn("%s: map %u (%s): cannot open: %s", off->path, off->orig.maps[i].id,
				off->orig.maps[i].name, rs_strerror(err));
			goto out;
		}
	}
	t0 = now_ms();
	err = rs_snapshot_take_opts(&off->orig, fds, &so, &off->snap);
	off->info.snapshot_ms = now_ms() - t0;
	if (err) {
		rs_warn("%s: snapshot of the private maps failed: %s", off->path, rs_strerror(err));
		goto out;
	}
	off->has_snap = true;
	off->info.snap = &off->snap;
	memset(&off->res, 0, sizeof(off->res));
	t0 = now_ms();
	err = rs_optimize(&off->orig, &off->snap, off->has_prof ? &off->prof : NULL, &off->opt,
			  &off->res);
	off->info.optimizer_ms = now_ms() - t0;
	if (err) {
		rs_warn("%s: the optimizer failed: %s", off->path, rs_strerror(err));
		goto out;
	}
	off->has_res = true;
	off->info.res = &off->res;
	fd = load_optimized(off);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = open_optimized(off, fd, &nb);
	if (err) {
		close(fd);
		goto out;
	}
	rs_replay_close(off->b);
	off->b = nb;
	off->info.load_fd = fd;
	off->info.specializations++;
out:
	for (i = 0; i < off->orig.map_cnt; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	return err;
}

int rs_offline_invalidate(struct rs_offline *off)
{
	return rs_guard_bump_all(off->guard);
}

int rs_offline_stale_guards(const struct rs_offline *off)
{
	size_t i, n = 0;
	uint64_t g;

	if (!off->has_snap)
		return 0;
	for (i = 0; i < off->snap.map_cnt; i++) {
		const struct rs_map_snapshot *m = &off->snap.maps[i];

		if (!m->watched)
			continue;
		if (rs_guard_read(off->guard, m->guard_slot, &g))
			return -EIO;
		n += g != m->generation;
	}
	return (int)n;
}

/* Apply scenario update i to the maps of one isolated program (an ELF instance). */
static int apply_update_one(const struct rs_offline *off, struct rs_replay_prog *rp, size_t i)
{
	struct rs_scenario_map *maps = NULL;
	size_t cnt = 0;
	int err;

	if (!rp->obj)
		return -EINVAL;
	err = rs_scenario_object_maps(rp->obj, &maps, &cnt);
	if (err)
		return err;
	err = rs_scenario_apply_update(off->sc, i, bpf_object__btf(rp->obj), maps, cnt);
	free(maps);
	return err;
}

int rs_offline_apply_update(struct rs_offline *off, size_t i)
{
	int err;

	if (!off->sc || i >= rs_scenario_update_cnt(off->sc))
		return -ENOENT;
	err = apply_update_one(off, off->a, i);
	if (!err)
		err = apply_update_one(off, off->b0, i);
	return err;
}

/*
 * The last specialization as optimization log records (docs/log.md): snapshot (and the
 * profile), a round of before/after programs, remarks and pass_stats, the original as loaded
 * (JIT image, verifier-processed instructions), and the verifier's verdict (its log on a
 * rejection; the optimized program's JIT image when it loaded).
 */
int rs_offline_oplog(const struct rs_offline *off, struct rs_oplog *log)
{
	const struct rs_profile *prof = off->has_prof ? &off->prof : NULL;
	RS_OPTS(rs_oplog_remark_opts, ro, .snap = &off->snap, .prof = prof,
		.optimizer_ms = off->info.optimizer_ms);
	int err;

	if (!log)
		return 0;
	if (!off->has_snap)
		return -ENOENT;
	err = rs_oplog_snapshot(log, &off->orig, &off->snap, prof);
	if (err || !off->has_res)
		return err;
	err = rs_oplog_remarks(log, &off->res, &off->orig, &ro);
	if (!err)
		err = rs_oplog_program(log, &off->orig, &off->orig, "before",
				       rs_replay_fd(off->b0));
	if (!err)
		err = rs_oplog_verify(log, &off->orig, &off->res.prog, off->info.load_fd,
				      off->info.load_fd >= 0 ? 0 : off->load_err ?: -RS_ERR_VERIFIER,
				      off->info.verifier_log, off->info.load_ms);
	if (err)
		rs_warn("%s: writing the optimization log: %s", off->path, rs_strerror(err));
	return err;
}
