// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_optimize_verify.c - optimized sample data planes are accepted by the kernel verifier
 * and behave like the originals.
 *
 * For each sample (l4lb, router, firewall) with a scenario: the object is opened for replay
 * (private maps filled from the scenario), its original bytecode is fetched back from the
 * kernel (lift, proven), the maps are snapshotted offline, a guard array is created (every map
 * treated as watched, slot i = map i, generation 0), and rs_optimize() specializes it.  The
 * output must validate, guard at least one map, load (rs_prog_load, verifier log printed on
 * failure), and replay with 0 divergences against the original on a `respec trace gen` trace,
 * first with the guards valid (specialized body) and then with every guard invalidated (ORIG
 * fallback).  Needs root and BPF; everything it creates is private to the test (replay maps,
 * the guard array, a temporary pcap) and released at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/pass.h"
#include "tests/kernel/ktest.h"
#include "tests/guard_testlib.h"

#define PACKETS "20000"

static char build_dir[2048], src_dir[2048], pcap_dir[64];

struct sample {
	const char *name, *scenario;
};

static const struct sample samples[] = {
	{ "l4lb", "l4lb-16x64.json" },
	{ "router", "router-1k.json" },
	{ "firewall", "firewall-100.json" },
};

static void replay_zero(struct rs_replay_prog *a, struct rs_replay_prog *b,
			const struct rs_trace *tr, const char *what)
{
	struct rs_replay_opts ro = { .sz = sizeof(ro) };
	struct rs_replay_result rr;
	size_t i;

	memset(&rr, 0, sizeof(rr));
	assert_int_equal(rs_replay_compare(a, b, tr, &ro, &rr), 0);
	fprintf(stderr, "%s: %zu packets, %zu divergences\n", what, rr.packets, rr.divergences);
	for (i = 0; i < rr.div_cnt; i++)
		fprintf(stderr, "  divergence: packet %zu kind %d verdicts %d/%d len %u/%u %s\n",
			rr.div[i].packet, rr.div[i].kind, rr.div[i].verdict_a, rr.div[i].verdict_b,
			rr.div[i].len_a, rr.div[i].len_b, rr.div[i].what);
	assert_int_equal(rr.packets, tr->cnt);
	assert_int_equal(rr.divergences, 0);
	rs_replay_result_free(&rr);
}

/*
 * A profile as if the traffic hit the first few keys of each lookup site's map (the keys the
 * snapshot holds): enough to make hot_keys inline real entries; branch counts move blocks.
 */
static void fake_profile(const struct rs_prog *p, const struct rs_snapshot *snap,
			 struct rs_profile *prof)
{
	struct rs_map_fact *mf;
	struct rs_site_fact *sf;
	size_t mfc, sfc, i, k;

	memset(prof, 0, sizeof(*prof));
	assert_int_equal(rs_analyze(p, snap, &mf, &mfc, &sf, &sfc), 0);
	prof->sites = calloc(sfc + 1, sizeof(*prof->sites));
	assert_non_null(prof->sites);
	prof->packets = 1000;
	prof->sample_rate = 1;
	for (i = 0; i < sfc; i++) {
		const struct rs_map_snapshot *m = &snap->maps[sf[i].map_idx];
		struct rs_site_profile *sp = &prof->sites[prof->site_cnt];
		size_t n = m->cnt < 4 ? m->cnt : 4;

		if (!n)
			continue;
		sp->insn = sf[i].insn;
		sp->map_idx = sf[i].map_idx;
		sp->key_size = m->key_size;
		sp->lookups = 1000;
		sp->key_cnt = n;
		sp->keys = malloc(n * m->key_size);
		sp->counts = calloc(n, sizeof(*sp->counts));
		assert_non_null(sp->keys);
		memcpy(sp->keys, m->keys, n * m->key_size);
		for (k = 0; k < n; k++)
			sp->counts[k] = 400 >> k;
		prof->site_cnt++;
	}
	/* and branch counts that make every third conditional jump mostly taken (layout) */
	prof->branches = calloc(p->insn_cnt + 1, sizeof(*prof->branches));
	assert_non_null(prof->branches);
	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i])) {
		struct rs_branch_profile *bp = &prof->branches[prof->branch_cnt];

		if (!rs_insn_is_cond_jmp(&p->insns[i]))
			continue;
		bp->insn = (uint32_t)i;
		bp->taken = i % 3 ? 1 : 100;
		bp->not_taken = 10;
		prof->branch_cnt++;
	}
	free(mf);
	free(sf);
}

static void run_sample(const struct sample *s)
{
	char obj[4096], scen[4096], pcap[4200], cmd[16384], *log;
	RS_OPTS(rs_replay_open_opts, oo);
	RS_OPTS(rs_opt_opts, opts);
	RS_OPTS(rs_load_opts, lo);
	struct rs_replay_prog *a = NULL, *b = NULL;
	struct rs_scenario *sc = NULL;
	struct rs_opt_result res;
	struct rs_profile prof;
	struct rs_snapshot snap;
	struct timespec t0, t1;
	struct rs_trace tr;
	struct rs_prog p;
	uint32_t id = 0, key = 0;
	int *fds, gfd, bgfd, fd;
	uint64_t *gen;
	size_t i;

	snprintf(obj, sizeof(obj), "%s/bpf/samples/%s.bpf.o", build_dir, s->name);
	snprintf(scen, sizeof(scen), "%s/bpf/samples/%s/scenarios/%s", src_dir, s->name,
		 s->scenario);
	snprintf(pcap, sizeof(pcap), "%s/%s.pcap", pcap_dir, s->name);
	snprintf(cmd, sizeof(cmd), "%s/tools/respec trace gen --scenario %s --profile high "
		 "--packets " PACKETS " --seed 3 -o %s", build_dir, scen, pcap);
	assert_int_equal(system(cmd), 0);
	memset(&tr, 0, sizeof(tr));
	assert_int_equal(rs_trace_load_pcap(pcap, &tr), 0);
	unlink(pcap);		/* in memory now: nothing left behind if an assertion fails */

	assert_int_equal(rs_scenario_load(scen, &sc), 0);
	oo.scenario = sc;
	assert_int_equal(rs_replay_open_object(obj, &oo, &a), 0);
	id = ktest_prog_id(rs_replay_fd(a));
	assert_int_not_equal(id, 0);
	rs_prog_init(&p);
	assert_int_equal(rs_fetch_original(id, &p, NULL), 0);

	/* offline snapshot; every map watched at slot i, generation 0 */
	fds = calloc(p.map_cnt + 1, sizeof(*fds));
	assert_non_null(fds);
	for (i = 0; i < p.map_cnt; i++) {
		fds[i] = bpf_map_get_fd_by_id(p.maps[i].id);
		assert_true(fds[i] >= 0);
	}
	memset(&snap, 0, sizeof(snap));
	assert_int_equal(rs_snapshot_from_fds(&p, fds, &snap), 0);
	for (i = 0; i < snap.map_cnt; i++) {
		snap.maps[i].watched = true;
		snap.maps[i].guard_slot = (uint32_t)i;
		snap.maps[i].generation = 0;
	}
	gfd = guard_array(p.map_cnt, &opts.guard_map);
	assert_true(gfd >= 0);

	fake_profile(&p, &snap, &prof);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rs_optimize(&p, &snap, &prof, &opts, &res), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(rs_prog_validate(&res.prog, NULL, 0), 0);
	fprintf(stderr, "%s: %zu -> %zu instructions, %u maps guarded, %zu remarks, "
		"rs_optimize %.2f ms\n", s->name, p.insn_cnt, res.prog.insn_cnt, res.guarded_maps,
		res.remarks.cnt, (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
		(double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	for (i = 0; i < res.stat_cnt; i++)
		fprintf(stderr, "  %-10s applied %zu missed %zu insns %zu -> %zu\n",
			res.stats[i].pass, res.stats[i].applied, res.stats[i].missed,
			res.stats[i].insns_before, res.stats[i].insns_after);
	if (getenv("RS_VERBOSE") || !res.guarded_maps)
		for (i = 0; i < res.remarks.cnt; i++)
			fprintf(stderr, "  [%s] %d insn %ld->%ld map %d: %s%s%s\n",
				res.remarks.v[i].pass, res.remarks.v[i].kind,
				res.remarks.v[i].orig_insn, res.remarks.v[i].new_insn,
				res.remarks.v[i].map_idx, res.remarks.v[i].msg,
				res.remarks.v[i].assumption[0] ? " | assumed: " : "",
				res.remarks.v[i].assumption);
	assert_true(res.guarded_maps > 0);
	for (i = 0; i < res.stat_cnt; i++)
		if (!strcmp(res.stats[i].pass, "layout"))
			assert_true(res.stats[i].applied > 0);

	/* the verifier accepts it */
	log = calloc(1, 1 << 22);
	assert_non_null(log);
	lo.log_buf = log;
	lo.log_size = 1 << 22;
	lo.log_level = 1;
	fd = rs_prog_load(&res.prog, &lo);
	if (fd < 0) {
		size_t n = strlen(log);

		fprintf(stderr, "%s: verifier refused (%d):\n%s\n", s->name, fd,
			n > 6000 ? log + n - 6000 : log);
	}
	assert_true(fd >= 0);
	close(fd);
	free(log);

	/* same behaviour with guards valid, then all invalidated */
	assert_int_equal(rs_replay_open_prog(&res.prog, &oo, &b), 0);
	replay_zero(a, b, &tr, "guards valid");
	bgfd = rs_replay_map_fd(b, "rs_guard");
	assert_true(bgfd >= 0);
	gen = calloc(p.map_cnt + 1, sizeof(*gen));
	assert_non_null(gen);
	for (i = 0; i < p.map_cnt; i++)
		gen[i] = 1;
	assert_int_equal(bpf_map_update_elem(bgfd, &key, gen, BPF_ANY), 0);
	replay_zero(a, b, &tr, "guards invalidated");

	free(gen);
	rs_profile_free(&prof);
	rs_replay_close(b);
	rs_opt_result_free(&res);
	close(gfd);
	rs_snapshot_free(&snap);
	for (i = 0; i < p.map_cnt; i++)
		close(fds[i]);
	free(fds);
	rs_prog_free(&p);
	rs_replay_close(a);
	rs_scenario_free(sc);
	rs_trace_free(&tr);
}

static void test_l4lb(void **state)
{
	(void)state;
	run_sample(&samples[0]);
}

static void test_router(void **state)
{
	(void)state;
	run_sample(&samples[1]);
}

static void test_firewall(void **state)
{
	(void)state;
	run_sample(&samples[2]);
}

/*
 * Subprogram duplication on a real program with a static and a global function: every
 * subprogram gets a harmless change (`r0 = r0` before its exits), a map is "relied upon", and
 * the composed program (specialized + original copies, func_info repeated per copy) must load.
 */
static void test_subprog_duplication(void **state)
{
	struct bpf_insn nop = { .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = 0, .src_reg = 0 };
	RS_OPTS(rs_replay_open_opts, oo, .prog_name = "lift_xdp_fields");
	RS_OPTS(rs_load_opts, lo);
	struct rs_replay_prog *a = NULL;
	struct rs_opt_opts opts = { .sz = sizeof(opts) };
	struct rs_snapshot snap;
	struct rs_opt_ctx ctx;
	struct rs_remarks rms = { 0 };
	struct rs_prog p, out;
	struct rs_edit *e;
	char obj[4096], *log;
	uint32_t id = 0, guarded = 0;
	size_t *starts, ns, i, k, nexit = 0;
	long *pos = NULL;
	int *fds, gfd, fd;

	(void)state;
	snprintf(obj, sizeof(obj), "%s/tests/progs/test_lift_xdp.bpf.o", build_dir);
	assert_int_equal(rs_replay_open_object(obj, &oo, &a), 0);
	id = ktest_prog_id(rs_replay_fd(a));
	assert_int_not_equal(id, 0);
	rs_prog_init(&p);
	assert_int_equal(rs_fetch_original(id, &p, NULL), 0);
	assert_int_equal(rs_subprog_starts(p.insns, p.insn_cnt, p.func_info, p.func_info_cnt,
					   &starts, &ns), 0);
	fprintf(stderr, "lift_xdp_fields: %zu insns, %zu subprograms, %zu func_info, %zu maps\n",
		p.insn_cnt, ns, p.func_info_cnt, p.map_cnt);
	assert_true(ns >= 3);
	assert_true(p.map_cnt >= 1);

	fds = calloc(p.map_cnt + 1, sizeof(*fds));
	assert_non_null(fds);
	for (i = 0; i < p.map_cnt; i++)
		fds[i] = bpf_map_get_fd_by_id(p.maps[i].id);
	memset(&snap, 0, sizeof(snap));
	assert_int_equal(rs_snapshot_from_fds(&p, fds, &snap), 0);
	for (i = 0; i < snap.map_cnt; i++) {
		snap.maps[i].watched = true;
		snap.maps[i].guard_slot = (uint32_t)i;
	}
	gfd = guard_array(p.map_cnt, &opts.guard_map);
	assert_true(gfd >= 0);

	memset(&ctx, 0, sizeof(ctx));
	rs_prog_init(&ctx.prog);
	assert_int_equal(rs_prog_copy(&ctx.prog, &p), 0);
	ctx.orig = &p;
	ctx.snap = &snap;
	ctx.opts = &opts;
	ctx.remarks = &rms;
	ctx.orig_idx = calloc(p.insn_cnt, sizeof(long));
	ctx.orig_pos = calloc(p.insn_cnt, sizeof(long));
	ctx.map_guarded = calloc(p.map_cnt, sizeof(bool));
	assert_non_null(ctx.map_guarded);
	for (i = 0; i < p.insn_cnt; i++)
		ctx.orig_idx[i] = ctx.orig_pos[i] = (long)i;
	e = rs_edit_new(&ctx.prog);
	for (i = 0; i < p.insn_cnt; i += rs_insn_width(&p.insns[i])) {
		for (k = 1; k < ns && starts[k] <= i; k++)
			;
		if (k > 1 && rs_insn_is_exit(&p.insns[i])) {	/* exits of subprograms */
			assert_int_equal(rs_edit_insert_before(e, i, &nop, NULL, 1), 0);
			nexit++;
		}
	}
	assert_true(nexit > 0);
	assert_int_equal(rs_pass_commit(&ctx, e), 0);
	rs_pass_depend_on_map(&ctx, 0);
	rs_prog_init(&out);
	assert_int_equal(rs_guard_compose(&ctx, &out, &guarded, &pos), 0);
	assert_int_equal(rs_prog_validate(&out, NULL, 0), 0);
	assert_int_equal(guarded, 1);
	if (p.func_info_cnt)
		assert_int_equal(out.func_info_cnt, 2 * ns - 1);

	log = calloc(1, 1 << 22);
	assert_non_null(log);
	lo.log_buf = log;
	lo.log_size = 1 << 22;
	lo.log_level = 1;
	fd = rs_prog_load(&out, &lo);
	if (fd < 0) {
		size_t n = strlen(log);

		fprintf(stderr, "verifier refused (%d):\n%s\n", fd, n > 6000 ? log + n - 6000 : log);
	}
	assert_true(fd >= 0);
	fprintf(stderr, "composed: %zu insns, %zu func_info: loaded\n", out.insn_cnt,
		out.func_info_cnt);
	close(fd);
	free(log);
	free(pos);
	rs_prog_free(&out);
	rs_prog_free(&ctx.prog);
	free(ctx.orig_idx);
	free(ctx.orig_pos);
	free(ctx.map_guarded);
	rs_remarks_free(&rms);
	close(gfd);
	rs_snapshot_free(&snap);
	for (i = 0; i < p.map_cnt; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(starts);
	rs_prog_free(&p);
	rs_replay_close(a);
}

static int setup(void **state)
{
	const char *b = getenv("RS_BUILD_DIR"), *s = getenv("RS_SOURCE_DIR");

	(void)state;
	snprintf(build_dir, sizeof(build_dir), "%s", b ? b : ".");
	snprintf(src_dir, sizeof(src_dir), "%s", s ? s : "..");
	snprintf(pcap_dir, sizeof(pcap_dir), "/tmp/rs-optverify-%d", (int)getpid());
	return mkdir(pcap_dir, 0700) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	rmdir(pcap_dir);
	rs_prog_load_attrs_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_l4lb),
		cmocka_unit_test(test_router),
		cmocka_unit_test(test_firewall),
		cmocka_unit_test(test_subprog_duplication),
	};
	int ret = ktest_start();

	if (ret)
		return ret;
	return cmocka_run_group_tests(tests, setup, teardown);
}
