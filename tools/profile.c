// SPDX-License-Identifier: BSD-2-Clause
/*
 * profile.c - `respec profile`: profile a live XDP/TC program for a window.
 *
 *   respec profile PROG --seconds S [--rate N] [--burst B] [--top K] [--churn] [--percpu]
 *                  [-o FILE.json] [-j]
 *
 * The original bytecode is fetched (capture or lift), its instrumented variant is built and
 * loaded (instrument/profile.c), swapped in at every attach point of the program by
 * compare-and-swap (agent/swap.c, journaled so `respec restore` undoes it after a crash;
 * SIGINT/SIGTERM put the original back), left for S seconds, and swapped out again.  Cost per
 * packet comes from run-time statistics windows (BPF_ENABLE_STATS fd: one second on the
 * original before the swap, then the whole window on the variant).  With --churn the guard
 * watcher counts control-plane writes per map during the window.  Hot keys are printed per
 * lookup site, decoded with the maps' BTF key types where there are any.  See docs/profile.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tools/main.h"

#define MAX_POINTS 16

struct profile_args {
	struct rs_prog_spec spec;
	double seconds;
	uint32_t rate, burst;
	size_t top;
	bool churn, percpu;
	const char *out;
};

static int profile_help(void)
{
	fprintf(stderr,
		"Usage: %s profile PROG --seconds S [--rate N] [--burst B] [--top K] [--churn]\n"
		"                  [--percpu] [-o FILE.json] [-j]\n"
		"       %s profile help\n\n"
		"Swaps the instrumented variant of a live program in at its attach points for S\n"
		"seconds (compare-and-swap, journaled), then the original back, and prints the hot\n"
		"keys of every map lookup site (1 in N packets sampled, default %u, in bursts of\n"
		"B consecutive packets, default %u), branch probabilities and the cost per\n"
		"packet (bpf_stats windows).  --churn also counts control-plane writes per map\n"
		"through the guard watcher.  --percpu gives every CPU its own sampling countdown\n"
		"(hosts where many CPUs run the program).  -o saves the profile for\n"
		"`respec optimize --profile`.\n\n"
		"PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
		"          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n",
		bin_name, bin_name, RS_PROF_DEFAULT_RATE, RS_PROF_DEFAULT_BURST);
	return RS_EXIT_OK;
}

static int parse_args(int argc, char **argv, struct profile_args *pa)
{
	int i = 0, used = 0;
	char *end;

	if (rs_prog_spec_parse(argc, argv, &pa->spec, &used))
		return usage_err("profile", "expected PROG");
	for (i = used; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "-j") || !strcmp(o, "--json") || !strcmp(o, "-p") ||
		    !strcmp(o, "--pretty")) {
			json_output = true;
			pretty_output |= o[1] == 'p' || o[2] == 'p';
			continue;
		}
		if (!strcmp(o, "--churn")) {
			pa->churn = true;
			continue;
		}
		if (!strcmp(o, "--percpu")) {
			pa->percpu = true;
			continue;
		}
		if (!v)
			return usage_err("profile", "option '%s' needs a value", o);
		i++;
		if (!strcmp(o, "--seconds")) {
			pa->seconds = strtod(v, &end);
			if (*end || !(pa->seconds > 0) || pa->seconds > 86400)
				return usage_err("profile", "--seconds: '%s' is not in (0, 86400]", v);
		} else if (!strcmp(o, "--rate") || !strcmp(o, "--top") || !strcmp(o, "--burst")) {
			unsigned long n = strtoul(v, &end, 10);

			if (*end || !*v || !n || n > (1u << 30))
				return usage_err("profile", "%s: '%s' is not a positive number", o, v);
			if (o[2] == 'r')
				pa->rate = (uint32_t)n;
			else if (o[2] == 't')
				pa->top = n;
			else if (n > RS_PROF_MAX_BURST)
				return usage_err("profile", "--burst: '%s' is above %u", v,
						 RS_PROF_MAX_BURST);
			else
				pa->burst = (uint32_t)n;
		} else if (!strcmp(o, "-o")) {
			pa->out = v;
		} else {
			return usage_err("profile", "unknown option '%s'", o);
		}
	}
	if (!pa->seconds)
		return usage_err("profile", "--seconds S is required");
	if ((uint64_t)(pa->rate ?: RS_PROF_DEFAULT_RATE) * (pa->burst ?: 1) > (1u << 30))
		return usage_err("profile", "--rate x --burst above 2^30");
	return 0;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
			       .tv_nsec = (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Attach points of a program (every namespace). */
static int find_points(uint32_t id, struct rs_attach_point *out, size_t *n)
{
	struct rs_attach_point *pts = NULL;
	size_t cnt = 0, i;
	int err;

	*n = 0;
	err = rs_discover(&pts, &cnt);
	if (err)
		return err;
	for (i = 0; i < cnt && *n < MAX_POINTS; i++)
		if (pts[i].prog_id == id)
			out[(*n)++] = pts[i];
	free(pts);
	return 0;
}

static uint32_t prog_id_of_fd(int fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

/* BTF of the program's maps and each map's key type (for decoding hot keys). */
static struct btf *map_key_types(const struct rs_prog *p, uint32_t *tids)
{
	struct btf *btf = NULL;
	uint32_t btf_id = 0;
	size_t i;

	for (i = 0; i < p->map_cnt; i++) {
		struct bpf_map_info info = {};
		uint32_t len = sizeof(info);
		int fd;

		tids[i] = 0;
		if (!p->maps[i].id)
			continue;
		fd = bpf_map_get_fd_by_id(p->maps[i].id);
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && info.btf_id &&
		    (!btf_id || info.btf_id == btf_id)) {
			btf_id = info.btf_id;
			tids[i] = info.btf_key_type_id;
		}
		close(fd);
	}
	if (btf_id) {
		btf = btf__load_from_kernel_by_id(btf_id);
		if (libbpf_get_error(btf))
			btf = NULL;
	}
	return btf;
}

static void print_text(const struct rs_profile *prof, const struct rs_prog *orig,
		       const struct btf *btf, const uint32_t *tids)
{
	char buf[1024];
	size_t i, j;

	printf("prog %u (%s): %llu sampled packets (1 in %u) in %.1f s\n", orig->id, orig->name,
	       (unsigned long long)prof->packets, prof->sample_rate, prof->window_s);
	if (prof->ns_per_packet > 0)
		printf("cost: %.1f ns/packet (%s)\n", prof->ns_per_packet, prof->ns_source);
	for (i = 0; i < prof->site_cnt; i++) {
		const struct rs_site_profile *s = &prof->sites[i];

		printf("lookup at insn %u in %s: %llu lookups, %zu hot keys\n", s->insn,
		       s->map_idx < orig->map_cnt ? orig->maps[s->map_idx].name : "?",
		       (unsigned long long)s->lookups, s->key_cnt);
		for (j = 0; j < s->key_cnt; j++) {
			rs_profile_key_str(btf, s->map_idx < orig->map_cnt ? tids[s->map_idx] : 0,
					   s->keys + j * s->key_size, s->key_size, buf,
					   sizeof(buf));
			printf("  %5.1f%% %10llu  %s\n", 100 * rs_site_key_share(s, j),
			       (unsigned long long)s->counts[j], buf);
		}
	}
	printf("branches (original insn: taken / executed):\n");
	for (i = 0; i < prof->branch_cnt; i++) {
		const struct rs_branch_profile *b = &prof->branches[i];
		double p = rs_branch_taken_prob(b);

		if (isnan(p))
			printf("  insn %-5u never executed\n", b->insn);
		else
			printf("  insn %-5u %5.1f%% (%llu / %llu)\n", b->insn, 100 * p,
			       (unsigned long long)b->taken,
			       (unsigned long long)(b->taken + b->not_taken));
	}
}

struct run {
	struct rs_attach_point pts[MAX_POINTS];
	size_t npts, swapped;
	int orig_fd, instr_fd;
	uint32_t instr_id;
};

/* Swap the original back wherever the variant went in; returns the first error. */
static int swap_back(struct run *r)
{
	int err = 0, e;
	size_t i;
	char buf[128];

	for (i = 0; i < r->swapped; i++) {
		RS_OPTS(rs_swap_opts, so);

		e = rs_swap(&r->pts[i], r->instr_id, r->orig_fd, &so);
		if (e) {
			p_err("%s: putting the original back: %s (respec restore retries)",
			      rs_attach_point_str(&r->pts[i], buf, sizeof(buf)), rs_strerror(e));
			err = err ?: e;
		}
	}
	r->swapped = 0;
	return err;
}

static json_t *churn_json(const struct rs_prog *orig, const struct rs_map_churn *c)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < orig->map_cnt; i++)
		json_array_append_new(a, json_pack("{s:s,s:i,s:I,s:f}", "map", orig->maps[i].name,
						   "map_id", (int)c[i].map_id, "writes",
						   (json_int_t)c[i].writes, "updates_per_s",
						   c[i].updates_per_s));
	return a;
}

int do_profile(int argc, char **argv)
{
	struct profile_args pa = { .top = 10 };
	struct rs_stats_result st_orig = { .ns_per_packet = NAN }, st_instr = { .ns_per_packet = NAN };
	struct rs_stats_window w;
	struct rs_profiler *pr = NULL;
	struct rs_lift_report rep = {};
	struct rs_map_churn *churn = NULL;
	struct rs_guard *guard = NULL;
	struct rs_profile prof = {};
	struct run r = { .orig_fd = -1, .instr_fd = -1 };
	struct btf *btf = NULL;
	uint32_t id = 0, *tids = NULL;
	struct rs_prog orig;
	char buf[128];
	size_t i;
	int err, ret = RS_EXIT_FAIL;

	rs_prog_init(&orig);
	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h"))
		return argc < 1 ? (profile_help(), RS_EXIT_USAGE) : profile_help();
	err = parse_args(argc, argv, &pa);
	if (err)
		return err;
	err = rs_prog_spec_resolve(&pa.spec, &id);
	if (err) {
		p_err("%s: %s", rs_prog_spec_str(&pa.spec, buf, sizeof(buf)), rs_strerror(err));
		return RS_EXIT_FAIL;
	}
	if (find_points(id, r.pts, &r.npts) || !r.npts) {
		p_err("prog %u: not attached anywhere respec can swap (XDP, tc, tcx, prog array)",
		      id);
		return RS_EXIT_FAIL;
	}
	err = rs_fetch_original(id, &orig, &rep);
	if (err) {
		p_err("prog %u: no original bytecode: %s%s%s", id, rs_strerror(err),
		      *rep.msg ? ": " : "", rep.msg);
		goto out;
	}
	orig.id = id;
	{
		struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = pa.rate,
					       .percpu_countdown = pa.percpu, .burst = pa.burst };

		if (rs_profiler_new(&orig, &po, &pr))
			goto out;
	}
	r.instr_fd = rs_profiler_load(pr);
	if (r.instr_fd < 0) {
		p_err("prog %u (%s): the instrumented variant did not load: %s", id, orig.name,
		      rs_strerror(r.instr_fd));
		goto out;
	}
	r.instr_id = prog_id_of_fd(r.instr_fd);
	r.orig_fd = bpf_prog_get_fd_by_id(id);
	if (r.orig_fd < 0) {
		p_err("prog %u: %s", id, strerror(errno));
		goto out;
	}
	tids = calloc(orig.map_cnt + 1, sizeof(*tids));
	churn = calloc(orig.map_cnt + 1, sizeof(*churn));
	if (!tids || !churn)
		goto out;
	btf = map_key_types(&orig, tids);
	if (pa.churn) {
		RS_OPTS(rs_guard_opts, go);

		if (rs_guard_open(&go, &guard) || rs_churn_begin(guard, &orig, churn))
			goto out;
	}
	/* cost of the original: a short stats window before the swap */
	if (!rs_stats_window_begin(id, &w)) {
		sleep_s(pa.seconds < 1 ? pa.seconds : 1);
		rs_stats_window_end(&w, &st_orig);
	}
	rs_restore_install_signal_handlers();
	for (i = 0; i < r.npts; i++) {
		RS_OPTS(rs_swap_opts, so);

		err = rs_swap(&r.pts[i], id, r.instr_fd, &so);
		if (err) {
			p_err("%s: swapping the instrumented variant in: %s",
			      rs_attach_point_str(&r.pts[i], buf, sizeof(buf)), rs_strerror(err));
			swap_back(&r);
			goto out;
		}
		r.swapped++;
		rs_info("%s: prog %u in place of %u", rs_attach_point_str(&r.pts[i], buf,
			sizeof(buf)), r.instr_id, id);
	}
	err = rs_stats_window_begin(r.instr_id, &w);
	{
		/* drain the key rings every 50 ms through the window */
		double left = pa.seconds;

		while (left > 0) {
			sleep_s(left < 0.05 ? left : 0.05);
			left -= 0.05;
			rs_profiler_poll(pr, NULL);
		}
	}
	if (!err)
		rs_stats_window_end(&w, &st_instr);
	if (swap_back(&r))
		goto out;
	if (guard && rs_churn_end(guard, &orig, pa.seconds, churn))
		goto out;
	if (rs_profiler_collect(pr, NULL, pa.top, &prof))
		goto out;
	prof.window_s = pa.seconds;
	if (!isnan(st_orig.ns_per_packet)) {
		prof.ns_per_packet = st_orig.ns_per_packet;
		snprintf(prof.ns_source, sizeof(prof.ns_source), "bpf_stats");
	}
	{
		struct rs_profile_names nm = { .prog = &orig, .btf = btf, .key_type_ids = tids };
		json_t *o = rs_profile_to_json(&prof, &nm), *pts = json_array();

		for (i = 0; i < r.npts; i++)
			json_array_append_new(pts, json_string(rs_attach_point_str(&r.pts[i], buf,
										    sizeof(buf))));
		json_object_set_new(o, "attach_points", pts);
		if (rs_profiler_keys_lost(pr))
			json_object_set_new(o, "keys_lost", json_integer(rs_profiler_keys_lost(pr)));
		json_object_set_new(o, "cost", json_pack("{s:o,s:o,s:I,s:I}",
			"original_ns_per_packet", isnan(st_orig.ns_per_packet) ? json_null() :
				json_real(st_orig.ns_per_packet),
			"instrumented_ns_per_packet", isnan(st_instr.ns_per_packet) ? json_null() :
				json_real(st_instr.ns_per_packet),
			"packets_seen", (json_int_t)st_instr.run_cnt,
			"instrumented_prog_id", (json_int_t)r.instr_id));
		if (guard)
			json_object_set_new(o, "churn", churn_json(&orig, churn));
		if (pa.out && json_dump_file(o, pa.out, JSON_INDENT(1))) {
			p_err("%s: cannot write the profile", pa.out);
			json_decref(o);
			goto out;
		}
		if (json_output) {
			json_print(o);
		} else {
			json_decref(o);
			print_text(&prof, &orig, btf, tids);
			if (!isnan(st_instr.ns_per_packet))
				printf("instrumented variant: %.1f ns/packet over %llu packets\n",
				       st_instr.ns_per_packet,
				       (unsigned long long)st_instr.run_cnt);
			for (i = 0; guard && i < orig.map_cnt; i++)
				if (churn[i].writes)
					printf("churn: %s %.1f updates/s\n", orig.maps[i].name,
					       churn[i].updates_per_s);
		}
	}
	ret = RS_EXIT_OK;
out:
	if (r.swapped)
		swap_back(&r);
	rs_profile_free(&prof);
	if (guard)
		rs_guard_close(guard);
	btf__free(btf);
	free(tids);
	free(churn);
	if (r.instr_fd >= 0)
		close(r.instr_fd);
	if (r.orig_fd >= 0)
		close(r.orig_fd);
	rs_profiler_free(pr);
	rs_prog_free(&orig);
	return ret;
}
