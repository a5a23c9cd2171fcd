// SPDX-License-Identifier: BSD-2-Clause
/*
 * canary.c - the CANARY phase of the agent's control loop: the original and the specialized
 * program are opened in isolation by the replay engine (private clones of the live maps),
 * the clones of maps the data path writes are aligned with rs_map_copy (they were cloned at
 * slightly different moments), and both run over the packets sampled at the point
 * (agent/pktsample.c): verdicts, output bytes and map contents must agree.  Then an A/B
 * timing of the same packets gives before/after ns/packet.  docs/agent.md.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/loop_internal.h"

/*
 * The two replay programs clone the live maps at slightly different moments; maps the data
 * path writes itself (counters, connection tables) moved in between.  Give b the exact
 * starting contents of a's clones so the comparison after the run is meaningful.
 */
static int sync_clones(struct rs_agent_point *p, struct rs_replay_prog *a,
		       struct rs_replay_prog *b)
{
	size_t i;
	int err;

	for (i = 0; i < p->orig.map_cnt; i++) {
		const struct rs_map_ref *m = &p->orig.maps[i];
		/* hashes: empty b first (entries the data path added to b's clone meanwhile) */
		RS_OPTS(rs_map_copy_opts, co, .clear_dst = true);
		bool array = m->type == BPF_MAP_TYPE_ARRAY ||
			     m->type == BPF_MAP_TYPE_PERCPU_ARRAY;
		int fa, fb;

		if (!rs_prog_map_writes(&p->orig, (uint32_t)i))
			continue;
		if (!array && !rs_map_type_percpu(m->type) && m->type != BPF_MAP_TYPE_HASH &&
		    m->type != BPF_MAP_TYPE_LRU_HASH)
			continue;
		fa = rs_replay_map_fd(a, m->name);
		fb = rs_replay_map_fd(b, m->name);
		if (fa < 0 || fb < 0)
			continue;
		err = rs_map_copy(fa, fb, NULL, &co);
		if (err) {
			rs_info("%s: canary: map %s: cannot align the clones: %s\n", p->desc,
				m->name, rs_strerror(err));
			return err;
		}
	}
	return 0;
}

/* Cost of original vs specialized on the sampled packets, A B A B alternating (replay engine). */
static void time_ab(struct rs_agent_point *p, struct rs_replay_prog *a, struct rs_replay_prog *b)
{
	RS_OPTS(rs_timing_opts, to, .rounds = 301);
	struct rs_timing_result tr = {};
	int err;

	p->replay_ratio = 0;
	if (rs_bpf_stats_sysctl() > 0)
		return;		/* someone's stats window is open: timing would be skewed */
	err = rs_replay_time(a, b, &p->canary, &to, &tr);
	if (err) {
		rs_info("%s: no replay timing: %s\n", p->desc, rs_strerror(err));
		return;
	}
	p->replay_orig_ns = tr.a.iqm;
	p->replay_ours_ns = tr.b.iqm;
	p->replay_ratio = tr.ratio.iqm;
	if (p->env->olog) {
		struct rs_oplog_measure m = { .sz = sizeof(m), .what = "replay",
					      .method = tr.method, .packets = p->canary.cnt,
					      .ns_before = tr.a.iqm, .ns_after = tr.b.iqm,
					      .driver_ns = tr.driver.iqm, .divergences = 0 };

		rs_oplog_measure(p->env->olog, &p->orig, &m);
	}
	lp_event(p, "measure", json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:I,s:I}", "what", "replay",
				      "method", tr.method, "orig_ns_per_packet", tr.a.iqm,
				      "opt_ns_per_packet", tr.b.iqm, "ratio", tr.ratio.iqm,
				      "driver_ns", tr.driver.iqm, "rounds",
				      (json_int_t)tr.rounds, "packets", (json_int_t)p->canary.cnt),
	      "replay of %zu sampled packets (%s, A/B x%u): original %.1f ns/packet, specialized "
	      "%.1f ns/packet, ratio %.2f", p->canary.cnt, tr.method, tr.rounds, tr.a.iqm,
	      tr.b.iqm, tr.ratio.iqm);
}

void lp_st_canary(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	RS_OPTS(rs_replay_open_opts, oo);
	RS_OPTS(rs_replay_opts, ro, .max_divergences = 3);
	struct rs_replay_prog *a = NULL, *b = NULL;
	struct rs_replay_result rr = {};
	uint64_t t0 = lp_now_ns(), t1;
	cpu_set_t saved, one;
	bool pinned;
	int err;

	if (p->canary.cnt < c->canary_min_packets) {
		lp_event(p, "canary", json_pack("{s:b,s:I}", "ok", 0, "packets",
					     (json_int_t)p->canary.cnt),
		      "only %zu sampled packets (canary.min_packets %zu): no proof, no swap",
		      p->canary.cnt, c->canary_min_packets);
		if (p->ours_id) {
			lp_drop_candidate(p);
			lp_go(p, RS_AGENT_SWAP, "no canary: original back");
			return;
		}
		lp_idle(p, now, "no packets for the canary");
		return;
	}
	p->env->stats.canary_runs++;
	/* one CPU for both runs: per-CPU maps must see the same CPU to compare equal */
	pinned = !sched_getaffinity(0, sizeof(saved), &saved);
	if (pinned) {
		CPU_ZERO(&one);
		CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
		pinned = !sched_setaffinity(0, sizeof(one), &one);
	}
	err = rs_replay_open_prog(&p->orig, &oo, &a);
	if (!err)
		err = rs_replay_open_prog(&p->res.prog, &oo, &b);
	if (!err)
		err = sync_clones(p, a, b);
	t1 = lp_now_ns();
	if (!err && p->canary.cnt)
		err = rs_replay_compare(a, b, &p->canary, &ro, &rr);
	rs_debug("%s: canary: clones %.1f ms, replay %.1f ms\n", p->desc, (double)(t1 - t0) / 1e6,
		 (double)(lp_now_ns() - t1) / 1e6);
	/* the A/B timing takes ~0.5 s: not on the guard path, which must be quick */
	if (!err && !rr.divergences && p->why != WHY_GUARD)
		time_ab(p, a, b);
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
	p->env->stats.last_canary_ms = (double)(lp_now_ns() - t0) / 1e6;
	rs_replay_close(a);
	rs_replay_close(b);
	if (err || rr.divergences) {
		json_t *divs = json_array();
		size_t i;

		for (i = 0; i < rr.div_cnt; i++)
			json_array_append_new(divs, json_pack("{s:I,s:i,s:i,s:s}", "packet",
				(json_int_t)rr.div[i].packet, "verdict_orig", rr.div[i].verdict_a,
				"verdict_opt", rr.div[i].verdict_b, "what", rr.div[i].what));
		p->env->stats.canary_divergences += rr.divergences;
		lp_event(p, "canary", json_pack("{s:b,s:I,s:I,s:s,s:o}", "ok", 0, "packets",
					     (json_int_t)p->canary.cnt, "divergences",
					     (json_int_t)rr.divergences, "error",
					     err ? rs_strerror(err) : "", "first", divs),
		      "canary failed: %s%zu divergences on %zu sampled packets: version given up",
		      err ? rs_strerror(err) : "", rr.divergences, p->canary.cnt);
		rs_replay_result_free(&rr);
		if (p->ours_id) {
			lp_drop_candidate(p);
			lp_go(p, RS_AGENT_SWAP, "canary failed: original back");
			return;
		}
		lp_idle(p, now, "canary failed");
		return;
	}
	lp_event(p, "canary", json_pack("{s:b,s:I,s:I,s:f}", "ok", 1, "packets",
				     (json_int_t)rr.packets, "divergences", (json_int_t)0,
				     "canary_ms", p->env->stats.last_canary_ms),
	      "canary: %zu sampled packets, 0 divergences (%.0f ms)", rr.packets,
	      p->env->stats.last_canary_ms);
	rs_replay_result_free(&rr);
	lp_go(p, RS_AGENT_SWAP, NULL);
}

/* Slots (and generations) the specialized program's prologue checks. */
