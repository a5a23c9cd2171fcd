// SPDX-License-Identifier: BSD-2-Clause
/*
 * profile.c - the kernel side of profiling: turn a program into its instrumented variant
 * (optimizer/instrumented.c), create the maps the variant records into, and read them back
 * into a struct rs_profile (hot keys per lookup site, branch counts, sampled packets).
 *
 * The variant's own maps (control array, one key ring per lookup site) have id 0 in the
 * rewritten program; they are created here and their ids filled in, so the program loads with
 * rs_prog_load() or as a replay program (whose clones of them are read instead).  Rings are
 * drained into per-site key lists (rs_profiler_poll: each site's position in the control value
 * says how many keys were appended since the last drain); keys are counted when the profile
 * is built.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

#define VERIFIER_LOG_SIZE (1 << 16)

/* Keys drained from one site's ring. */
struct site_acc {
	uint32_t last_pos;		/* ring position at the last drain */
	uint8_t *keys;
	size_t cnt, cap;
	uint64_t lost;			/* overwritten before a drain */
};

struct rs_profiler {
	struct rs_prog prog;		/* the instrumented variant, maps by id */
	int loaded_fd;			/* loaded once to see the kernel takes it (or -1) */
	struct rs_instr_layout layout;
	int *fds;			/* per map of prog: fd of the maps made here, else -1 */
	size_t fd_cnt;
	struct site_acc *acc;		/* per layout site */
	uint8_t *ring_buf;		/* one ring value */
	size_t ring_buf_sz;
};

const struct rs_prog *rs_profiler_prog(const struct rs_profiler *pr) { return &pr->prog; }
const struct rs_instr_layout *rs_profiler_layout(const struct rs_profiler *pr)
{
	return &pr->layout;
}

/* Back to nothing built: program, layout and maps (to try the other layout, or to free). */
static void unmake(struct rs_profiler *pr)
{
	size_t i;

	for (i = 0; pr->fds && i < pr->fd_cnt; i++)
		if (pr->fds[i] >= 0)
			close(pr->fds[i]);
	free(pr->fds);
	pr->fds = NULL;
	pr->fd_cnt = 0;
	if (pr->loaded_fd >= 0)
		close(pr->loaded_fd);
	pr->loaded_fd = -1;
	rs_instr_layout_free(&pr->layout);
	rs_prog_free(&pr->prog);
}

void rs_profiler_free(struct rs_profiler *pr)
{
	size_t i;

	if (!pr)
		return;
	for (i = 0; pr->acc && i < pr->layout.site_cnt; i++)
		free(pr->acc[i].keys);
	free(pr->acc);
	free(pr->ring_buf);
	unmake(pr);
	free(pr);
}

/* Stack depth of the main program as the verifier reports it ("stack depth 40+0"), or 0. */
static int32_t verifier_stack_depth(const struct rs_prog *orig)
{
	char *log = calloc(1, VERIFIER_LOG_SIZE), *p;
	int32_t depth = 0;
	int fd;

	if (!log)
		return 0;
	{
		struct rs_load_opts lo = { .sz = sizeof(lo), .log_buf = log,
					   .log_size = VERIFIER_LOG_SIZE,
					   .log_level = 4 /* BPF_LOG_STATS */ };

		fd = rs_prog_load(orig, &lo);
	}
	if (fd >= 0) {
		close(fd);
		p = strstr(log, "stack depth ");
		if (p)
			depth = (int32_t)strtol(p + strlen("stack depth "), NULL, 10);
	} else {
		rs_info("prog %u (%s): stack depth from the verifier: %s; using the static one",
			orig->id, orig->name, rs_strerror(fd));
	}
	free(log);
	return depth;
}

static int create_maps(struct rs_profiler *pr)
{
	size_t i;

	pr->fds = malloc((pr->prog.map_cnt + 1) * sizeof(*pr->fds));
	if (!pr->fds)
		return -ENOMEM;
	pr->fd_cnt = pr->prog.map_cnt;
	for (i = 0; i < pr->fd_cnt; i++)
		pr->fds[i] = -1;
	for (i = 0; i < pr->prog.map_cnt; i++) {
		struct rs_map_ref *m = &pr->prog.maps[i];
		LIBBPF_OPTS(bpf_map_create_opts, co, .map_flags = m->flags);
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		int fd, err;

		if (m->id || m->init_value)
			continue;
		fd = bpf_map_create(m->type, m->name, m->key_size, m->value_size,
				    m->max_entries, &co);
		if (fd < 0) {
			err = -errno;
			rs_warn("prog %s: creating profile map %s: %s", pr->prog.name, m->name,
				rs_strerror(err));
			return err;
		}
		pr->fds[i] = fd;
		if (bpf_obj_get_info_by_fd(fd, &info, &len))
			return -errno;
		m->id = info.id;
	}
	return 0;
}

/* Does the kernel take the variant?  The fd is kept for the first rs_profiler_load.  No
 * verifier log: a verbose one costs seconds on a large program (and ENOSPC when it is cut). */
static int try_load(struct rs_profiler *pr)
{
	int fd;

	fd = rs_prog_load(&pr->prog, NULL);
	if (fd < 0)
		return fd;
	pr->loaded_fd = fd;
	return 0;
}

int rs_profiler_load(struct rs_profiler *pr)
{
	int fd = pr->loaded_fd;

	pr->loaded_fd = -1;
	return fd >= 0 ? fd : rs_prog_load(&pr->prog, NULL);
}

static int write_ctl(const struct rs_profiler *pr);


int rs_profiler_new(const struct rs_prog *orig, const struct rs_profiler_opts *opts,
		    struct rs_profiler **out)
{
	RS_OPTS(rs_instr_opts, io,
		.sample_rate = RS_OPTS_GET(opts, sample_rate, 0),
		.key_slots = RS_OPTS_GET(opts, key_slots, 0),
		.percpu_countdown = RS_OPTS_GET(opts, percpu_countdown, false),
		.burst = RS_OPTS_GET(opts, burst, 0));
	struct rs_profiler *pr;
	int err = 0;

	*out = NULL;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	pr->loaded_fd = -1;
	rs_prog_init(&pr->prog);
	if (!RS_OPTS_GET(opts, no_verifier_depth, false)) {
		int32_t vd = verifier_stack_depth(orig);
		uint32_t sd = rs_prog_main_stack_depth(orig);

		io.stack_depth = vd > (int32_t)sd ? vd : (int32_t)sd;
	}
	if (!RS_OPTS_GET(opts, inline_copy, false)) {
		err = rs_instrument(orig, &io, &pr->prog, &pr->layout);
		if (!err) {
			snprintf(pr->prog.name, sizeof(pr->prog.name), "%s", orig->name);
			err = create_maps(pr);
		}
		if (!err)
			err = try_load(pr);
		if (err) {
			rs_info("prog %u (%s): the variant with the copy as a subprogram did not "
				"load: %s; the copy goes inline", orig->id, orig->name,
				rs_strerror(err));
			unmake(pr);
		}
	}
	if (!pr->layout.call) {
		io.inline_copy = true;
		err = rs_instrument(orig, &io, &pr->prog, &pr->layout);
		if (err)
			goto err;
		snprintf(pr->prog.name, sizeof(pr->prog.name), "%s", orig->name);
		err = create_maps(pr);
	}
	if (!err)
		err = write_ctl(pr);
	if (err)
		goto err;
	pr->acc = calloc(pr->layout.site_cnt + 1, sizeof(*pr->acc));
	if (!pr->acc) {
		err = -ENOMEM;
		goto err;
	}
	rs_info("prog %u (%s): instrumented variant (%s): %zu insns (original %zu), %zu lookup "
		"sites, %zu branches, 1 in %u packets, stack depth %u", orig->id, orig->name,
		pr->layout.call ? "copy called" : "copy inline", pr->prog.insn_cnt,
		orig->insn_cnt, pr->layout.site_cnt, pr->layout.branch_cnt,
		pr->layout.sample_rate, pr->layout.stack_depth);
	*out = pr;
	return 0;
err:
	rs_profiler_free(pr);
	return err;
}

/* fd of map i of the variant: the replay clone (by name) or our own. */
static int map_fd(const struct rs_profiler *pr, const struct rs_replay_prog *rp, uint32_t i)
{
	if (i >= pr->prog.map_cnt)
		return -EINVAL;
	if (rp)
		return rs_replay_map_fd(rp, pr->prog.maps[i].name);
	return pr->fds[i] >= 0 ? pr->fds[i] : -ENOENT;
}

/*
 * (Re)write the control value: counters zero, the countdown kept (a new variant: 0, so the
 * first packet is sampled), N and B for readers, and the sampling generators (the global one
 * and, with per-CPU countdowns, each CPU's) seeded so that two windows or two variants do not
 * draw the same sequence.  A zero state is valid too (the LCG has a full period from any
 * state): when getrandom fails the zeros stay.
 */
static int write_ctl(const struct rs_profiler *pr)
{
	const struct rs_instr_layout *l = &pr->layout;
	struct rs_prof_ctl *h;
	uint32_t zero = 0;
	int32_t cd = 0;
	uint64_t seed;
	uint8_t *ctl;
	size_t i;
	int fd, err = 0;

	fd = map_fd(pr, NULL, l->ctl_map_idx);
	ctl = calloc(1, l->ctl_value_size);
	if (fd < 0 || !ctl) {
		free(ctl);
		return fd < 0 ? fd : -ENOMEM;
	}
	h = (void *)ctl;
	if (!bpf_map_lookup_elem(fd, &zero, ctl))
		cd = h->countdown;
	memset(ctl, 0, l->ctl_value_size);
	h->countdown = cd;
	h->rate = l->sample_rate;
	h->burst = l->burst;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == sizeof(seed)) {
		h->rng = seed;
		for (i = 0; l->cpu_off && i < RS_PROF_CPU_SLOTS; i++) {
			uint64_t v = seed + 0x9e3779b97f4a7c15ULL * (i + 1);

			if (l->cpu_off + i * 64 + 16 <= l->ctl_value_size)
				memcpy(ctl + l->cpu_off + i * 64 + 8, &v, sizeof(v));
		}
	}
	if (bpf_map_update_elem(fd, &zero, ctl, BPF_ANY))
		err = -errno;
	free(ctl);
	return err;
}

/* The control value (malloc'ed into *ctl) and the fd of its map: the profiler's or rp's clone. */
static int read_ctl(const struct rs_profiler *pr, const struct rs_replay_prog *rp, int *fd,
		    uint8_t **ctl)
{
	uint32_t zero = 0;
	int err;

	*ctl = NULL;
	*fd = map_fd(pr, rp, pr->layout.ctl_map_idx);
	if (*fd < 0)
		return *fd;
	*ctl = malloc(pr->layout.ctl_value_size);
	if (!*ctl)
		return -ENOMEM;
	if (bpf_map_lookup_elem(*fd, &zero, *ctl)) {
		err = -errno;
		rs_warn("prog %s: reading the control map: %s", pr->prog.name, rs_strerror(err));
		free(*ctl);
		*ctl = NULL;
		return err;
	}
	return 0;
}

/*
 * Every packet through the copy, or back to 1 in N: a burst that never ends (countdown 0,
 * burst_left INT32_MAX, in every per-CPU slot too) or none under way (burst_left 0, the next
 * packet sampled and drawing the gap).  Counters and keys are left as they are.
 */
int rs_profiler_sample_all(struct rs_profiler *pr, const struct rs_replay_prog *rp, bool all)
{
	const struct rs_instr_layout *l = &pr->layout;
	int32_t cd = all ? 0 : 1, left = all ? INT32_MAX : 0;
	uint32_t zero = 0;
	uint8_t *ctl;
	size_t i;
	int fd, err;

	err = read_ctl(pr, rp, &fd, &ctl);
	if (err)
		return err;
	memcpy(ctl + offsetof(struct rs_prof_ctl, countdown), &cd, sizeof(cd));
	memcpy(ctl + offsetof(struct rs_prof_ctl, burst_left), &left, sizeof(left));
	for (i = 0; l->cpu_off && i < RS_PROF_CPU_SLOTS; i++) {
		if (l->cpu_off + i * 64 + 20 > l->ctl_value_size)
			break;
		memcpy(ctl + l->cpu_off + i * 64, &cd, sizeof(cd));
		memcpy(ctl + l->cpu_off + i * 64 + 16, &left, sizeof(left));
	}
	if (bpf_map_update_elem(fd, &zero, ctl, BPF_ANY)) {
		err = -errno;
		rs_warn("prog %s: writing the control map: %s", pr->prog.name, rs_strerror(err));
	}
	free(ctl);
	return err;
}

int rs_profiler_reset(struct rs_profiler *pr)
{
	size_t i;
	int err;

	err = write_ctl(pr);
	if (!err)
		err = rs_profiler_poll(pr, NULL);	/* forget what was recorded so far */
	for (i = 0; i < pr->layout.site_cnt; i++) {
		pr->acc[i].cnt = 0;
		pr->acc[i].lost = 0;
	}
	return err;
}

/* Append the keys site i's ring got since the last drain; pos: its position now. */
static int drain_site(struct rs_profiler *pr, size_t i, int fd, uint32_t pos)
{
	const struct rs_instr_site *st = &pr->layout.sites[i];
	size_t vsz = (size_t)st->ring_len * st->key_size;
	struct site_acc *a = &pr->acc[i];
	uint32_t zero = 0, n, k;

	n = pos - a->last_pos;		/* u32: wraps with the ring position */
	if (!n)
		return 0;
	if (pr->ring_buf_sz < vsz) {
		uint8_t *b = realloc(pr->ring_buf, vsz);

		if (!b)
			return -ENOMEM;
		pr->ring_buf = b;
		pr->ring_buf_sz = vsz;
	}
	if (bpf_map_lookup_elem(fd, &zero, pr->ring_buf))
		return -errno;
	if (n > st->ring_len) {
		a->lost += n - st->ring_len;
		n = st->ring_len;
	}
	if (a->cnt + n > a->cap) {
		size_t cap = a->cap ? a->cap : 1024;
		uint8_t *nk;

		while (cap < a->cnt + n)
			cap *= 2;
		nk = realloc(a->keys, cap * st->key_size);
		if (!nk)
			return -ENOMEM;
		a->keys = nk;
		a->cap = cap;
	}
	for (k = pos - n; k != pos; k++)
		memcpy(a->keys + a->cnt++ * st->key_size,
		       pr->ring_buf + (size_t)(k & (st->ring_len - 1)) * st->key_size,
		       st->key_size);
	a->last_pos = pos;
	return 0;
}

/*
 * The positions come first (one read of the control value), the rings after: a key appended
 * between the two reads is left for the next drain; one being written while its ring is read
 * may come out torn (concurrent CPUs; documented).
 */
int rs_profiler_poll(struct rs_profiler *pr, const struct rs_replay_prog *rp)
{
	const struct rs_instr_layout *l = &pr->layout;
	uint32_t pos;
	uint8_t *ctl;
	size_t i;
	int fd, err;

	if (!l->site_cnt)
		return 0;
	err = read_ctl(pr, rp, &fd, &ctl);
	if (err)
		return err;
	for (i = 0; i < l->site_cnt; i++) {
		memcpy(&pos, ctl + l->sites[i].pos_off, sizeof(pos));
		fd = map_fd(pr, rp, l->sites[i].ring_map_idx);
		err = fd < 0 ? fd : drain_site(pr, i, fd, pos);
		if (err) {
			rs_warn("prog %s: reading the key ring of insn %u: %s", pr->prog.name,
				l->sites[i].insn, rs_strerror(err));
			goto out;
		}
	}
out:
	free(ctl);
	return err;
}

uint64_t rs_profiler_keys_lost(const struct rs_profiler *pr)
{
	uint64_t lost = 0;
	size_t i;

	for (i = 0; i < pr->layout.site_cnt; i++)
		lost += pr->acc[i].lost;
	return lost;
}

static size_t cmp_ks;

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, cmp_ks);
}

/* Distinct keys of a site with their counts (sorts the drained keys in place). */
static int count_keys(struct site_acc *a, uint32_t ks, struct rs_site_counts *sc)
{
	uint8_t *keys;
	uint64_t *counts;
	size_t i, n = 0;

	sc->keys = NULL;
	sc->counts = NULL;
	sc->cnt = 0;
	if (!a->cnt)
		return 0;
	cmp_ks = ks;
	qsort(a->keys, a->cnt, ks, key_cmp);
	keys = malloc(a->cnt * ks);
	counts = malloc(a->cnt * sizeof(*counts));
	if (!keys || !counts) {
		free(keys);
		free(counts);
		return -ENOMEM;
	}
	for (i = 0; i < a->cnt; i++) {
		if (n && !memcmp(keys + (n - 1) * ks, a->keys + i * ks, ks)) {
			counts[n - 1]++;
			continue;
		}
		memcpy(keys + n * ks, a->keys + i * ks, ks);
		counts[n++] = 1;
	}
	sc->keys = keys;
	sc->counts = counts;
	sc->cnt = n;
	return 0;
}

int rs_profiler_collect(struct rs_profiler *pr, const struct rs_replay_prog *rp,
			size_t top_k, struct rs_profile *prof)
{
	const struct rs_instr_layout *l = &pr->layout;
	struct rs_site_counts *sc;
	uint8_t *ctl = NULL;
	uint32_t zero = 0;
	size_t i;
	int fd, err;

	memset(prof, 0, sizeof(*prof));
	sc = calloc(l->site_cnt + 1, sizeof(*sc));
	ctl = calloc(1, l->ctl_value_size);
	if (!sc || !ctl) {
		err = -ENOMEM;
		goto out;
	}
	fd = map_fd(pr, rp, l->ctl_map_idx);
	if (fd < 0 || bpf_map_lookup_elem(fd, &zero, ctl)) {
		err = fd < 0 ? fd : -errno;
		rs_warn("prog %s: reading the profile control map: %s", pr->prog.name,
			rs_strerror(err));
		goto out;
	}
	err = rs_profiler_poll(pr, rp);
	if (err)
		goto out;
	for (i = 0; i < l->site_cnt; i++) {
		err = count_keys(&pr->acc[i], l->sites[i].key_size, &sc[i]);
		if (err)
			goto out;
	}
	err = rs_profile_from_counts(l, sc, ctl, top_k, prof);
	if (!err && rs_profiler_keys_lost(pr))
		rs_info("prog %s: %llu sampled keys overwritten before they were read (poll "
			"more often)", pr->prog.name,
			(unsigned long long)rs_profiler_keys_lost(pr));
out:
	for (i = 0; sc && i < l->site_cnt; i++) {
		free((void *)sc[i].keys);
		free((void *)sc[i].counts);
	}
	free(sc);
	free(ctl);
	return err;
}

int rs_profiler_replay_open(const struct rs_replay_prog *a, const struct rs_profiler_opts *opts,
			    struct rs_profiler **pr, struct rs_replay_prog **b,
			    struct rs_replay_prog **twin)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	struct rs_lift_report rep = {};
	struct rs_prog orig;
	int err;

	*pr = NULL;
	*b = NULL;
	if (twin)
		*twin = NULL;
	rs_prog_init(&orig);
	if (bpf_obj_get_info_by_fd(rs_replay_fd(a), &info, &len))
		return -errno;
	err = rs_fetch_original(info.id, &orig, &rep);
	if (err) {
		rs_warn("%s: no original bytecode to instrument: %s%s%s", rs_replay_origin(a),
			rs_strerror(err), *rep.msg ? ": " : "", rep.msg);
		goto out;
	}
	if (!orig.id)
		orig.id = info.id;
	err = rs_profiler_new(&orig, opts, pr);
	if (err)
		goto out;
	{
		struct rs_replay_open_opts oo = { .sz = sizeof(oo) };

		err = rs_replay_open_prog(rs_profiler_prog(*pr), &oo, b);
	}
	if (err) {
		rs_warn("%s: the instrumented variant did not load: %s", rs_replay_origin(a),
			rs_strerror(err));
		rs_profiler_free(*pr);
		*pr = NULL;
		goto out;
	}
	if (twin) {
		char origin[512];
		struct rs_replay_open_opts oo = { .sz = sizeof(oo), .origin = origin };

		snprintf(origin, sizeof(origin), "%s (clone)", rs_replay_origin(a));
		err = rs_replay_open_prog(&orig, &oo, twin);
		if (err) {
			rs_replay_close(*b);
			*b = NULL;
			rs_profiler_free(*pr);
			*pr = NULL;
		}
	}
out:
	rs_prog_free(&orig);
	return err;
}
