// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop_prepare.c - the phases of the agent's control loop that prepare a new version of a
 * point's program: FETCH (capture, else lift), BASE (bpf_stats cost window on the program in
 * place), PROFILE (instrumented variant swapped in for a window and back, hot keys, drift
 * check of periodic profiles), SNAPSHOT (map contents under the guard), OPTIMIZE (rs_optimize)
 * and LOAD (kernel verifier).  The state machine itself is agent/loop.c; docs/agent.md.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/loop_internal.h"

void lp_st_fetch(struct rs_agent_point *p, uint64_t now)
{
	struct rs_lift_report rep = {};
	int err = -ENOENT;

	rs_prog_free(&p->orig);
	if (p->env->cap)
		err = rs_capture_get(p->env->cap, p->orig_id, &p->orig);
	if (!err) {
		snprintf(p->source, sizeof(p->source), "capture");
	} else {
		err = rs_fetch_original(p->orig_id, &p->orig, &rep);
		snprintf(p->source, sizeof(p->source), "%s",
			 err ? "none" : rs_prog_source_name(p->orig.source));
	}
	if (err) {
		p->env->stats.errors++;
		lp_event(p, "fetch", json_pack("{s:s,s:s,s:I}", "error", rs_strerror(err), "detail",
					    rep.msg, "fail_insn", (json_int_t)rep.fail_insn),
		      "no original bytecode: %s%s%s", rs_strerror(err), *rep.msg ? ": " : "",
		      rep.msg);
		lp_idle(p, now, "no original");
		return;
	}
	p->orig.id = p->orig_id;
	p->fetched = true;
	if (p->orig_fd < 0)
		p->orig_fd = bpf_prog_get_fd_by_id(p->orig_id);
	if (p->orig_fd < 0) {
		lp_go(p, RS_AGENT_GONE, "original program gone");
		return;
	}
	lp_event(p, "fetch", json_pack("{s:s,s:I,s:I}", "source", p->source, "insns",
				    (json_int_t)p->orig.insn_cnt, "maps",
				    (json_int_t)p->orig.map_cnt),
	      "original from %s: %zu insns, %zu maps", p->source, p->orig.insn_cnt,
	      p->orig.map_cnt);
	lp_go(p, RS_AGENT_BASE, NULL);
}

void lp_start_sampler(struct rs_agent_point *p)
{
	int err;

	if (p->sampler)
		return;
	err = rs_pkt_sampler_open(&p->pt, p->env->cfg->canary_max_packets, &p->sampler);
	if (err)
		rs_info("%s: no packet sample for the canary: %s\n", p->desc, rs_strerror(err));
}

void lp_st_base(struct rs_agent_point *p, uint64_t now)
{
	struct rs_stats_result r = {};

	if (!p->deadline) {
		lp_start_sampler(p);
		p->w_open = !rs_stats_window_begin(p->live_id, &p->w);
		p->deadline = now + lp_secs(p->env->cfg->base_window_s);
		return;
	}
	rs_pkt_sampler_drain(p->sampler);
	if (now < p->deadline)
		return;
	p->deadline = 0;
	if (p->w_open && !rs_stats_window_end(&p->w, &r) && r.window_s > 0)
		p->pps = (double)r.run_cnt / r.window_s;
	else
		r.run_cnt = 0;	/* no window: nothing measured */
	if (!isnan(r.ns_per_packet) && r.run_cnt) {
		if (p->live_id == p->orig_id)
			p->orig_ns = r.ns_per_packet;
		else
			p->ours_ns = r.ns_per_packet;
		lp_event(p, "measure", json_pack("{s:s,s:I,s:f,s:I,s:f}", "what", p->live_id ==
					      p->orig_id ? "original" : "optimized", "prog_id",
					      (json_int_t)p->live_id, "ns_per_packet",
					      r.ns_per_packet, "packets", (json_int_t)r.run_cnt,
					      "window_s", r.window_s),
		      "prog %u: %.1f ns/packet over %llu packets (bpf_stats window)", p->live_id,
		      r.ns_per_packet, (unsigned long long)r.run_cnt);
	}
	p->w_open = false;
	lp_go(p, RS_AGENT_PROFILE, NULL);
}

/* Share of the new profile's lookups the hot keys of ours cover (1 when nothing to compare). */
static double coverage(const struct rs_profile *old, const struct rs_profile *cur)
{
	uint64_t total = 0, hit = 0;
	size_t i, j, k, l;

	for (i = 0; i < cur->site_cnt; i++) {
		const struct rs_site_profile *s = &cur->sites[i];

		for (j = 0; j < old->site_cnt; j++) {
			const struct rs_site_profile *o = &old->sites[j];

			if (o->insn != s->insn || o->key_size != s->key_size || !o->key_cnt)
				continue;
			total += s->lookups;
			for (k = 0; k < s->key_cnt; k++)
				for (l = 0; l < o->key_cnt; l++)
					if (!memcmp(s->keys + k * s->key_size,
						    o->keys + l * o->key_size, s->key_size))
						hit += s->counts[k];
		}
	}
	return total ? (double)hit / (double)total : 1.0;
}

static void profile_done(struct rs_agent_point *p, uint64_t now)
{
	size_t n = 0, seen = 0;
	double cov;

	if (p->sampler) {
		rs_pkt_sampler_drain(p->sampler);
		n = rs_pkt_sampler_count(p->sampler, &seen);
		rs_trace_free(&p->canary);
		rs_pkt_sampler_trace(p->sampler, &p->canary);
		rs_pkt_sampler_close(p->sampler);
		p->sampler = NULL;
	}
	if (p->have_prof) {
		json_t *sites = json_array();
		size_t i;

		for (i = 0; i < p->prof.site_cnt; i++) {
			const struct rs_site_profile *sp = &p->prof.sites[i];
			json_t *top = json_array();
			char hex[2 * 64 + 1];
			size_t k, b;

			for (k = 0; k < sp->key_cnt && k < 3; k++) {
				for (b = 0; b < sp->key_size && b < 64; b++)
					snprintf(hex + 2 * b, 3, "%02x", sp->keys[k * sp->key_size + b]);
				hex[2 * b] = 0;
				json_array_append_new(top, json_pack("{s:s,s:f}", "key", hex, "share",
						      rs_site_key_share(sp, k)));
			}
			json_array_append_new(sites, json_pack("{s:I,s:s,s:I,s:I,s:o}", "insn",
				(json_int_t)sp->insn, "map", sp->map_idx < p->orig.map_cnt ?
				p->orig.maps[sp->map_idx].name : "?", "lookups",
				(json_int_t)sp->lookups, "hot_keys", (json_int_t)sp->key_cnt, "top",
				top));
		}
		lp_event(p, "profile", json_pack("{s:I,s:I,s:f,s:o,s:I,s:I}", "packets",
					      (json_int_t)p->prof.packets, "sample_rate",
					      (json_int_t)p->prof.sample_rate, "window_s",
					      p->prof.window_s, "sites", sites, "canary_packets",
					      (json_int_t)n, "frames_seen", (json_int_t)seen),
		      "profile: %llu sampled packets (1 in %u), %zu lookup sites, %zu branches; "
		      "%zu packets kept for the canary",
		      (unsigned long long)p->prof.packets, p->prof.sample_rate, p->prof.site_cnt,
		      p->prof.branch_cnt, n);
	}
	if (p->profiling_only) {
		p->profiling_only = false;
		p->reprofile_at = now + lp_secs(p->env->cfg->reprofile_interval_s);
		cov = p->have_prof && p->ours_has_prof ? coverage(&p->ours_prof, &p->prof) : 1;
		if (cov >= p->env->cfg->drift_min_coverage) {
			lp_event(p, "drift", json_pack("{s:f,s:b}", "coverage", cov, "reoptimize", 0),
			      "hot keys of version %u still cover %.0f%% of lookups: kept",
			      p->version, 100 * cov);
			if (p->have_prof)
				rs_profile_free(&p->prof);
			p->have_prof = false;
			lp_go(p, RS_AGENT_WATCH, "no drift");
			return;
		}
		lp_event(p, "drift", json_pack("{s:f,s:b}", "coverage", cov, "reoptimize", 1),
		      "hot keys of version %u cover only %.0f%% of lookups: re-optimizing",
		      p->version, 100 * cov);
		p->why = WHY_DRIFT;
	}
	lp_go(p, RS_AGENT_SNAPSHOT, NULL);
}

/*
 * Sampling of this window: the configured 1 in N in bursts of B, lowered when the last cost
 * window's packet rate says the window would see fewer than LP_MIN_SAMPLES samples or
 * LP_MIN_BURSTS bursts (little traffic: sampling more costs little where packets are few,
 * and a profile of a handful of packets is worth nothing).  Unknown rate: as configured.
 */
#define LP_MIN_SAMPLES	2048
#define LP_MIN_BURSTS	16

static void window_sampling(const struct rs_agent_point *p, uint32_t *rate, uint32_t *burst)
{
	const struct rs_agent_config *c = p->env->cfg;
	double expect = p->pps * c->profile_window_s;

	*rate = c->sample_rate;
	*burst = c->sample_burst;
	if (p->pps <= 0)
		return;
	while (*rate > 1 && expect / *rate < LP_MIN_SAMPLES)
		*rate /= 2;
	while (*burst > 1 && expect / ((double)*rate * *burst) < LP_MIN_BURSTS)
		*burst /= 2;
}

void lp_st_profile(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	int back_fd = p->live_id == p->orig_id ? p->orig_fd : p->ours_fd;
	int err;

	if (!p->deadline) {
		RS_OPTS(rs_profiler_opts, po);

		window_sampling(p, &po.sample_rate, &po.burst);
		lp_start_sampler(p);
		if (p->have_prof)
			rs_profile_free(&p->prof);
		p->have_prof = false;
		err = rs_profiler_new(&p->orig, &po, &p->pr);
		if (!err) {
			p->instr_fd = rs_profiler_load(p->pr);
			err = p->instr_fd < 0 ? p->instr_fd : 0;
		}
		if (!err) {
			p->instr_id = lp_id_of_fd(p->instr_fd);
			err = lp_do_swap(p, p->live_id, p->instr_fd, NULL);
			if (p->env->olog)
				rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->live_id,
					      p->instr_id, err, 0);
			if (err == -EBUSY) {
				lp_close_windows(p);
				lp_still_ours(p);
				return;
			}
		}
		if (err) {
			lp_event(p, "profile", json_pack("{s:s}", "error", rs_strerror(err)),
			      "no profile window (%s): specializing from the snapshot alone",
			      rs_strerror(err));
			rs_profiler_free(p->pr);
			p->pr = NULL;
			if (p->instr_fd >= 0)
				close(p->instr_fd);
			p->instr_fd = -1;
			/* still sample packets for the canary over the window */
			p->deadline = now + lp_secs(c->profile_window_s);
			p->instr_id = 0;
			return;
		}
		p->env->stats.profile_windows++;
		p->env->stats.swaps++;
		lp_event(p, "swap", json_pack("{s:I,s:I,s:s}", "old_id", (json_int_t)p->live_id,
					   "new_id", (json_int_t)p->instr_id, "variant",
					   "instrumented"),
		      "instrumented prog %u in place of %u", p->instr_id, p->live_id);
		lp_event(p, "profile", json_pack("{s:I,s:I,s:I,s:f}", "instrumented_id",
					      (json_int_t)p->instr_id, "sample_rate",
					      (json_int_t)po.sample_rate, "sample_burst",
					      (json_int_t)po.burst, "window_s",
					      c->profile_window_s),
		      "instrumented variant prog %u in place of %u for %.1f s (1 in %u sampled, "
		      "bursts of %u)", p->instr_id, p->live_id, c->profile_window_s,
		      po.sample_rate, po.burst);
		p->deadline = now + lp_secs(c->profile_window_s);
		return;
	}
	rs_pkt_sampler_drain(p->sampler);
	if (now < p->deadline && !p->env->stopping)
		return;
	p->deadline = 0;
	if (p->pr) {
		err = lp_do_swap(p, p->instr_id, back_fd, NULL);
		if (p->env->olog)
			rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->instr_id, p->live_id, err,
				      0);
		if (err == -EBUSY) {
			uint32_t keep = p->live_id;

			p->live_id = p->instr_id;	/* what we expected there */
			lp_close_windows(p);
			if (lp_still_ours(p))
				p->live_id = keep;
			return;
		}
		if (err) {
			/* the variant behaves like the original; restore retries at exit */
			p->env->stats.errors++;
			lp_event(p, "profile", json_pack("{s:s}", "error", rs_strerror(err)),
			      "swapping prog %u back failed: %s", p->live_id, rs_strerror(err));
			p->live_id = p->instr_id;
			lp_close_windows(p);
			lp_idle(p, now, "swap back failed");
			return;
		}
		p->env->stats.swaps++;
		lp_event(p, "swap", json_pack("{s:I,s:I,s:s}", "old_id", (json_int_t)p->instr_id,
					   "new_id", (json_int_t)p->live_id, "variant",
					   p->live_id == p->orig_id ? "original" : "specialized"),
		      "prog %u back in place of the instrumented prog %u", p->live_id,
		      p->instr_id);
		err = rs_profiler_collect(p->pr, NULL, c->top_k, &p->prof);
		if (!err) {
			p->prof.window_s = c->profile_window_s;
			if (p->orig_ns > 0) {
				p->prof.ns_per_packet = p->orig_ns;
				snprintf(p->prof.ns_source, sizeof(p->prof.ns_source), "bpf_stats");
			}
			p->have_prof = true;
		}
		if (p->instr_fd >= 0)
			close(p->instr_fd);
		p->instr_fd = -1;
		rs_profiler_free(p->pr);
		p->pr = NULL;
	}
	profile_done(p, now);
}

void lp_st_snapshot(struct rs_agent_point *p, uint64_t now)
{
	uint32_t excl[3] = { p->ours_id, p->instr_id, p->new_id };
	RS_OPTS(rs_snapshot_opts, so, .guard = p->env->guard, .exclude_progs = excl,
		.exclude_cnt = 3);
	int err;

	if (!p->env->guard) {
		lp_idle(p, now, "no guard: nothing may be specialized");
		return;
	}
	if (p->sampler) {
		/* packets sampled while the map settled replace the older sample */
		rs_pkt_sampler_drain(p->sampler);
		if (rs_pkt_sampler_count(p->sampler, NULL) >= p->env->cfg->canary_min_packets &&
		    rs_pkt_sampler_count(p->sampler, NULL)) {
			rs_trace_free(&p->canary);
			rs_pkt_sampler_trace(p->sampler, &p->canary);
		}
		rs_pkt_sampler_close(p->sampler);
		p->sampler = NULL;
	}
	if (p->have_snap)
		lp_unwatch_snapshot(p, &p->snap);
	err = rs_snapshot_take_opts(&p->orig, NULL, &so, &p->snap);
	if (err) {
		p->env->stats.errors++;
		lp_event(p, "snapshot", json_pack("{s:s}", "error", rs_strerror(err)),
		      "snapshot failed: %s", rs_strerror(err));
		p->have_snap = false;
		if (p->ours_id)
			lp_go(p, RS_AGENT_WATCH, "snapshot failed");
		else
			lp_idle(p, now, "snapshot failed");
		return;
	}
	p->have_snap = true;
	{
		json_t *maps = json_array();
		size_t i;

		for (i = 0; i < p->snap.map_cnt; i++) {
			const struct rs_map_snapshot *m = &p->snap.maps[i];

			json_array_append_new(maps, json_pack("{s:s,s:I,s:I,s:b,s:b,s:I,s:I,s:f}",
				"name", p->orig.maps[i].name, "id", (json_int_t)m->id,
				"entries", (json_int_t)m->cnt, "complete", m->complete, "watched",
				m->watched, "slot", (json_int_t)m->guard_slot, "generation",
				(json_int_t)m->generation, "updates_per_s", m->updates_per_s));
		}
		lp_event(p, "snapshot", json_pack("{s:s,s:o}", "reason", lp_why_names[p->why], "maps",
					       maps),
		      "snapshot of %zu maps (%s)", p->snap.map_cnt, lp_why_names[p->why]);
	}
	lp_go(p, RS_AGENT_OPTIMIZE, NULL);
}

void lp_st_optimize(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	struct rs_opt_opts oo = { .sz = sizeof(oo), .max_hot_keys = c->max_hot_keys,
				  .min_hot_share = c->min_hot_share,
				  .small_table_max = c->small_table_max,
				  .passes = *c->passes ? c->passes : NULL };
	size_t applied = 0, i;
	uint64_t t0;
	json_t *rm;
	int err;

	err = rs_guard_map_ref(p->env->guard, &oo.guard_map);
	memset(&p->res, 0, sizeof(p->res));
	t0 = lp_now_ns();
	if (!err)
		err = rs_optimize(&p->orig, &p->snap, p->have_prof ? &p->prof : NULL, &oo,
				  &p->res);
	p->env->stats.last_optimize_ms = (double)(lp_now_ns() - t0) / 1e6;
	if (err) {
		p->env->stats.errors++;
		lp_event(p, "optimize", json_pack("{s:s}", "error", rs_strerror(err)),
		      "optimizer failed: %s", rs_strerror(err));
		lp_idle(p, now, "optimizer failed");
		return;
	}
	p->have_res = true;
	p->env->stats.optimizations++;
	rm = json_array();
	for (i = 0; i < p->res.remarks.cnt; i++) {
		const struct rs_remark *r = &p->res.remarks.v[i];

		if (r->kind == RS_REMARK_APPLIED)
			applied++;
		if (r->kind == RS_REMARK_ANALYSIS)
			continue;
		json_array_append_new(rm, json_pack("{s:s,s:s,s:I,s:I,s:s,s:s,s:i}", "kind",
			r->kind == RS_REMARK_APPLIED ? "applied" : "missed", "pass", r->pass,
			"orig_insn", (json_int_t)r->orig_insn, "new_insn", (json_int_t)r->new_insn,
			"msg", r->msg, "assumption", r->assumption, "guard_slot", r->guard_slot));
	}
	if (p->env->olog) {
		struct rs_oplog_remark_opts lro = { .sz = sizeof(lro), .snap = &p->snap,
						    .prof = p->have_prof ? &p->prof : NULL,
						    .optimizer_ms = p->env->stats.last_optimize_ms };

		rs_oplog_snapshot(p->env->olog, &p->orig, &p->snap, lro.prof);
		rs_oplog_remarks(p->env->olog, &p->res, &p->orig, &lro);
	}
	lp_event(p, "optimize", json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:o}", "reason",
				       lp_why_names[p->why], "insns_before",
				       (json_int_t)p->orig.insn_cnt, "insns_after",
				       (json_int_t)p->res.prog.insn_cnt, "applied",
				       (json_int_t)applied, "guarded_maps",
				       (json_int_t)p->res.guarded_maps, "optimizer_ms",
				       p->env->stats.last_optimize_ms, "remarks", rm),
	      "specialized (%s): %zu -> %zu insns, %zu transformations, %u guarded maps, %.1f ms",
	      lp_why_names[p->why], p->orig.insn_cnt, p->res.prog.insn_cnt, applied,
	      p->res.guarded_maps, p->env->stats.last_optimize_ms);
	if (!applied) {
		if (p->ours_id) {
			/* ours no longer applies (e.g. the map changed): the original is best */
			lp_drop_candidate(p);
			lp_go(p, RS_AGENT_SWAP, "nothing to specialize any more: original back");
			return;
		}
		lp_idle(p, now, "nothing to specialize");
		return;
	}
	lp_go(p, RS_AGENT_LOAD, NULL);
}

void lp_st_load(struct rs_agent_point *p, uint64_t now)
{
	uint64_t t0 = lp_now_ns();
	int fd;

	fd = rs_prog_load(&p->res.prog, NULL);
	p->env->stats.last_load_ms = (double)(lp_now_ns() - t0) / 1e6;
	if (fd < 0) {
		static char log[1 << 16];
		RS_OPTS(rs_load_opts, lo, .log_buf = log, .log_size = sizeof(log), .log_level = 1);
		size_t len;
		int fd2;

		log[0] = 0;
		fd2 = rs_prog_load(&p->res.prog, &lo);
		if (fd2 >= 0)
			close(fd2);
		len = strlen(log);
		p->env->stats.verifier_rejections++;
		if (p->env->olog)
			rs_oplog_verify(p->env->olog, &p->orig, &p->res.prog, -1, fd, log,
					p->env->stats.last_load_ms);
		lp_event(p, "verify", json_pack("{s:b,s:s,s:s}", "ok", 0, "error", rs_strerror(fd),
					     "log", len > 4000 ? log + len - 4000 : log),
		      "the verifier refused the specialized program: %s (original stays)",
		      rs_strerror(fd));
		if (p->ours_id) {
			lp_drop_candidate(p);
			lp_go(p, RS_AGENT_SWAP, "refused: original back");
			return;
		}
		lp_idle(p, now, "verifier refused");
		return;
	}
	p->new_fd = fd;
	p->new_id = lp_id_of_fd(fd);
	if (p->env->olog)
		rs_oplog_verify(p->env->olog, &p->orig, &p->res.prog, fd, 0, NULL,
				p->env->stats.last_load_ms);
	lp_event(p, "verify", json_pack("{s:b,s:I,s:f}", "ok", 1, "prog_id", (json_int_t)p->new_id,
				     "load_ms", p->env->stats.last_load_ms),
	      "verifier accepted prog %u (%.1f ms)", p->new_id, p->env->stats.last_load_ms);
	lp_go(p, RS_AGENT_CANARY, NULL);
}

/* Copy every entry of map fa into fb with batch operations (per-key fallback). */
