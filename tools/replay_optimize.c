// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay_optimize.c - `respec replay OBJ --optimize`: the whole offline pipeline in one command
 * (instrument/offline.c): profile on --train, snapshot of the scenario's maps under the real
 * guard, rs_optimize, kernel verification, then the original and the optimized program replayed
 * and timed on --pcap.  JSON: the fields of plain replay (ratio = optimized / original) plus
 * optimizer_ms, load_ms, remarks, guards, passes and verify.  See docs/optimize.md.
 *
 * --invalidate-guards bumps every guard slot before the measured run (the optimized program
 * runs the original code it carries).  --updates replays the first half, applies the
 * scenario's "updates" (the watcher bumps the guards), replays a quarter on the now stale
 * program (it must fall back: 0 divergences), re-specializes from a fresh snapshot and replays
 * the rest with the new program.
 *
 * --log FILE appends the optimization log (docs/log.md): run, then per specialization the
 * snapshot, programs, remarks, pass_stats and verify records (rs_offline_oplog), and at the end
 * a measure record of the replay (ns/packet of original and optimized, divergences; method
 * "none" with --no-timing).  With --invalidate-guards the specialized program is timed first
 * with its guards valid, so the log has both the "guards_invalidated" (fallback) and the
 * "replay" figures; the latter is written last, it is what `respec log stats` reports.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tools/main.h"

struct phase {
	const char *name;
	size_t first, cnt;		/* packets [first, first + cnt) of the trace */
	int stale;			/* guard slots stale during the phase */
	unsigned int spec;		/* which specialization ran (1 = first) */
	struct rs_replay_result res;
};

/* What the optimizer did: pass statistics, remark counts, guards, instruction counts. */
static json_t *optimizer_json(const struct rs_offline_info *in)
{
	const struct rs_opt_result *r = in->res;
	json_t *passes = json_array();
	size_t i, applied = 0, missed = 0;

	for (i = 0; r && i < r->stat_cnt; i++)
		json_array_append_new(passes, json_pack("{s:s,s:I,s:I,s:I,s:I}",
			"pass", r->stats[i].pass, "applied", (json_int_t)r->stats[i].applied,
			"missed", (json_int_t)r->stats[i].missed,
			"insns_before", (json_int_t)r->stats[i].insns_before,
			"insns_after", (json_int_t)r->stats[i].insns_after));
	for (i = 0; r && i < r->remarks.cnt; i++) {
		applied += r->remarks.v[i].kind == RS_REMARK_APPLIED;
		missed += r->remarks.v[i].kind == RS_REMARK_MISSED;
	}
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:o}",
		"insns_original", (json_int_t)in->orig->insn_cnt,
		"insns_optimized", (json_int_t)(r ? r->prog.insn_cnt : 0),
		"remarks", (json_int_t)(r ? r->remarks.cnt : 0),
		"remarks_applied", (json_int_t)applied, "remarks_missed", (json_int_t)missed,
		"passes", passes);
}

static int run_phase(struct rs_offline *off, const struct rs_trace *tr, struct phase *ph,
		     const struct rs_replay_opts *ro)
{
	struct rs_trace view = *tr;
	int stale;

	view.pkts = tr->pkts + ph->first;
	view.cnt = ph->cnt;
	stale = rs_offline_stale_guards(off);
	ph->stale = stale < 0 ? 0 : stale;
	ph->spec = rs_offline_get_info(off)->specializations;
	return rs_replay_compare(rs_offline_original(off), rs_offline_optimized(off), &view, ro,
				 &ph->res);
}

static void print_text(const struct replay_optimize_args *ra, struct rs_offline *off,
		       const struct phase *ph, size_t phase_cnt,
		       const struct rs_timing_result *tm, bool timed, const char *why_not,
		       size_t divs)
{
	const struct rs_offline_info *in = rs_offline_get_info(off);
	size_t i;

	printf("A: %s\nB: %s\n", rs_replay_origin(rs_offline_original(off)),
	       rs_replay_origin(rs_offline_optimized(off)));
	printf("optimizer: %zu -> %zu insns, %zu remarks, %u guarded maps, %.2f ms "
	       "(load %.2f ms, snapshot %.2f ms%s)\n",
	       in->orig->insn_cnt, in->res->prog.insn_cnt, in->res->remarks.cnt,
	       in->res->guarded_maps, in->optimizer_ms, in->load_ms, in->snapshot_ms,
	       in->prof ? ", profiled on --train" : ", no profile");
	for (i = 0; i < phase_cnt; i++)
		printf("%-14s packets %zu..%zu: %zu divergences (guards stale: %d, program #%u)\n",
		       ph[i].name, ph[i].first + 1, ph[i].first + ph[i].cnt, ph[i].res.divergences,
		       ph[i].stale, ph[i].spec);
	printf("divergences: %zu\n", divs);
	if (!timed) {
		printf("timing: skipped (%s)\n", why_not);
		return;
	}
	printf("timing (%s, %u rounds, harness subtracted%s):\n", tm->method, tm->rounds,
	       ra->invalidate_guards ? ", every guard invalidated" : "");
	printf("  original  %8.2f ns/packet\n  optimized %8.2f ns/packet\n  ratio     %8.3f "
	       "[quartiles %.3f, %.3f]\n", tm->a.iqm, tm->b.iqm, tm->ratio.iqm,
	       tm->ratio.p25, tm->ratio.p75);
}

static void print_json(const struct replay_optimize_args *ra, struct rs_offline *off,
		       const struct phase *ph, size_t phase_cnt,
		       const struct rs_timing_result *tm, bool timed, const char *why_not,
		       size_t divs, int stale_timed)
{
	struct rs_replay_prog *a = rs_offline_original(off), *b = rs_offline_optimized(off);
	const struct rs_offline_info *in = rs_offline_get_info(off);
	uint32_t type = rs_replay_prog_type(a);
	uint64_t va[RS_VERDICT_SLOTS] = {}, vb[RS_VERDICT_SLOTS] = {};
	json_t *o = json_object(), *list = json_array(), *phases = json_array();
	size_t i, j, packets = 0;

	for (i = 0; i < phase_cnt; i++) {
		json_t *l = json_array();

		for (j = 0; j < ph[i].res.div_cnt; j++)
			json_array_append_new(l, replay_divergence_json(type, &ph[i].res.div[j],
									ph[i].first));

		packets += ph[i].res.packets;
		for (j = 0; j < RS_VERDICT_SLOTS; j++) {
			va[j] += ph[i].res.verdicts_a[j];
			vb[j] += ph[i].res.verdicts_b[j];
		}
		json_array_extend(list, l);
		json_array_append_new(phases, json_pack("{s:s,s:I,s:I,s:I,s:i,s:i,s:o}",
			"phase", ph[i].name, "first", (json_int_t)ph[i].first + 1,
			"packets", (json_int_t)ph[i].res.packets,
			"divergences", (json_int_t)ph[i].res.divergences,
			"stale_guards", ph[i].stale, "program", (int)ph[i].spec,
			"divergence_list", l));
	}
	json_object_set_new(o, "pcap", json_string(ra->pcap));
	json_object_set_new(o, "packets", json_integer(packets));
	json_object_set_new(o, "programs", json_pack("{s:s,s:s}", "a", rs_replay_origin(a),
						     "b", rs_replay_origin(b)));
	json_object_set_new(o, "verdicts", json_pack("{s:o,s:o}",
		"a", replay_verdicts_json(type, va), "b", replay_verdicts_json(type, vb)));
	json_object_set_new(o, "divergences", json_integer(divs));
	json_object_set_new(o, "divergence_list", list);
	replay_timing_json(o, tm, timed, true, why_not);
	json_object_set_new(o, "optimizer_ms", json_real(in->optimizer_ms));
	json_object_set_new(o, "load_ms", json_real(in->load_ms));
	json_object_set_new(o, "snapshot_ms", json_real(in->snapshot_ms));
	json_object_set_new(o, "profile_ms", in->prof ? json_real(in->profile_ms) : json_null());
	json_object_set_new(o, "train", ra->train ? json_string(ra->train) : json_null());
	json_object_set_new(o, "remarks", json_integer(in->res->remarks.cnt));
	json_object_set_new(o, "optimizer", optimizer_json(in));
	json_object_set_new(o, "guards", json_pack("{s:I,s:s,s:b,s:i,s:i}",
		"guarded_maps", (json_int_t)in->res->guarded_maps,
		"hook", rs_guard_hook_name(rs_offline_guard(off)),
		"invalidated", ra->invalidate_guards, "stale_in_timing", stale_timed,
		"specializations", (int)in->specializations));
	json_object_set_new(o, "verify", json_pack("{s:b}", "accepted", 1));
	if (ra->updates)
		json_object_set_new(o, "phases", phases);
	else
		json_decref(phases);
	json_print(o);
}

static struct rs_oplog *open_log(const struct replay_optimize_args *ra)
{
	struct rs_oplog *log = NULL;
	int err;

	if (!ra->log)
		return NULL;
	err = rs_oplog_open(ra->log, NULL, &log);
	if (err) {
		p_err("%s: cannot open the optimization log: %s", ra->log, rs_strerror(err));
		return NULL;
	}
	err = rs_oplog_run(log, ra->argc, ra->argv);
	if (err) {
		p_err("%s: writing the optimization log: %s", ra->log, rs_strerror(err));
		rs_oplog_close(log);
		return NULL;
	}
	return log;
}

/* One "measure" record: what the replay measured of the program the log's last round built. */
static int log_measure(struct rs_oplog *log, struct rs_offline *off, const char *what,
		       const struct rs_timing_result *tm, bool timed, size_t packets, long divs)
{
	RS_OPTS(rs_oplog_measure, me, .what = what, .method = timed ? tm->method : "none",
		.packets = packets, .divergences = divs);

	if (!log)
		return 0;
	if (timed) {
		me.ns_before = tm->a.iqm;
		me.ns_after = tm->b.iqm;
		me.driver_ns = isnan(tm->driver.iqm) ? 0 : tm->driver.iqm;
	}
	return rs_oplog_measure(log, rs_offline_get_info(off)->orig, &me);
}

static void report_rejection(const struct replay_optimize_args *ra, struct rs_offline *off)
{
	const struct rs_offline_info *in = rs_offline_get_info(off);

	if (json_output)
		json_print(json_pack("{s:s,s:{s:b,s:s},s:f,s:I}", "pcap", ra->pcap,
			"verify", "accepted", 0, "log", in->verifier_log ?: "",
			"optimizer_ms", in->optimizer_ms,
			"remarks", (json_int_t)(in->res ? in->res->remarks.cnt : 0)));
	else if (in->verifier_log && verbose)
		fprintf(stderr, "%s", in->verifier_log);
	p_err("%s: the verifier rejected the optimized program (the original stays)%s", ra->obj,
	      json_output || verbose ? "" : "; -v shows the verifier log");
}

/* rs_offline_specialize, its records in the log, and the error messages. */
static int specialize(const struct replay_optimize_args *ra, struct rs_offline *off,
		      struct rs_oplog *log, const char *what)
{
	int err = rs_offline_specialize(off);

	if ((!err || err == -RS_ERR_VERIFIER) && log && rs_offline_oplog(off, log))
		p_err("%s: the optimization log is incomplete", ra->log);
	if (err == -RS_ERR_VERIFIER)
		report_rejection(ra, off);
	else if (err)
		p_err("%s: %s failed: %s", ra->obj, what, rs_strerror(err));
	return err;
}

int replay_optimize(const struct replay_optimize_args *ra)
{
	struct rs_replay_opts ro = { .sz = sizeof(ro), .max_divergences = ra->max_div,
				     .masks = ra->masks, .mask_cnt = ra->mask_cnt,
				     .progress = replay_progress };
	struct rs_offline_opts oo = { .sz = sizeof(oo), .prog_name = ra->prog_name };
	struct rs_trace tr = {}, train = {};
	struct rs_timing_result tm = {}, tm_valid = {};
	struct rs_scenario *sc = NULL;
	struct rs_oplog *log = NULL;
	struct rs_offline *off = NULL;
	struct phase ph[3] = {};
	const char *why_not = "--no-timing";
	size_t phase_cnt = 0, divs = 0, i, n;
	int err, ret = RS_EXIT_FAIL, stale_timed = 0;
	bool timed = false, timed_valid = false;

	if (rs_trace_load_pcap(ra->pcap, &tr))
		goto out;
	if (ra->train && rs_trace_load_pcap(ra->train, &train))
		goto out;
	if (ra->scenario && rs_scenario_load(ra->scenario, &sc))
		goto out;
	if (ra->updates && (!sc || !rs_scenario_update_cnt(sc))) {
		p_err("--updates: %s has no \"updates\"", ra->scenario ?: "no --scenario given");
		goto out;
	}
	if (access(ra->obj, R_OK)) {
		p_err("%s: %s", ra->obj, strerror(errno));
		goto out;
	}
	oo.scenario = sc;
	oo.train = ra->train ? &train : NULL;
	err = rs_offline_open(ra->obj, &oo, &off);
	if (err) {
		p_err("%s: offline pipeline: %s", ra->obj, rs_strerror(err));
		goto out;
	}
	if (ra->log && !(log = open_log(ra)))
		goto out;
	if (specialize(ra, off, log, "specialization"))
		goto out;
	n = tr.cnt;
	if (!ra->updates) {
		ph[phase_cnt++] = (struct phase){ .name = "all", .first = 0, .cnt = n };
	} else {
		ph[0] = (struct phase){ .name = "before", .first = 0, .cnt = n / 2 };
		ph[1] = (struct phase){ .name = "fallback", .first = n / 2,
					.cnt = (n - n / 2) / 2 };
		ph[2] = (struct phase){ .name = "respecialized", .first = ph[1].first + ph[1].cnt,
					.cnt = n - ph[1].first - ph[1].cnt };
		phase_cnt = 3;
	}
	if (ra->invalidate_guards && log && !ra->no_timing) {
		/* the log gets the specialized figure too: time it before the guards go stale */
		timed_valid = !replay_time(rs_offline_original(off), rs_offline_optimized(off),
					   &tr, ra->rounds, &tm_valid);
	}
	if (ra->invalidate_guards && rs_offline_invalidate(off)) {
		p_err("%s: invalidating the guards failed", ra->obj);
		goto out;
	}
	for (i = 0; i < phase_cnt; i++) {
		if (ra->updates && i == 1) {
			size_t u;

			for (u = 0; u < rs_scenario_update_cnt(sc); u++)
				if (rs_offline_apply_update(off, u)) {
					p_err("%s: applying update %zu failed", ra->scenario, u);
					goto out;
				}
		}
		if (ra->updates && i == 2) {
			if (specialize(ra, off, log, "re-specialization"))
				goto out;
			if (ra->invalidate_guards && rs_offline_invalidate(off))
				goto out;
		}
		if (run_phase(off, &tr, &ph[i], &ro)) {
			p_err("%s: replay of phase '%s' failed", ra->obj, ph[i].name);
			goto out;
		}
		divs += ph[i].res.divergences;
	}
	if (ra->updates && !ra->invalidate_guards && !ph[1].stale) {
		p_err("%s: the updates bumped no guard: the fallback phase ran specialized code",
		      ra->scenario);
		divs++;
	}
	stale_timed = rs_offline_stale_guards(off);
	if (!ra->no_timing) {
		why_not = replay_time(rs_offline_original(off), rs_offline_optimized(off), &tr,
				      ra->rounds, &tm);
		timed = !why_not;
	}
	if (log) {
		size_t packets = 0;

		for (i = 0; i < phase_cnt; i++)
			packets += ph[i].res.packets;
		err = log_measure(log, off, ra->invalidate_guards ? "guards_invalidated" : "replay",
				  &tm, timed, packets, (long)divs);
		/* the replay checked the fallback, not this timing: divergences unchecked */
		if (!err && ra->invalidate_guards && timed_valid)
			err = log_measure(log, off, "replay", &tm_valid, true, packets, -1);
		if (err)
			p_err("%s: writing the measure record: %s", ra->log, rs_strerror(err));
	}
	if (json_output)
		print_json(ra, off, ph, phase_cnt, &tm, timed, why_not, divs, stale_timed);
	else
		print_text(ra, off, ph, phase_cnt, &tm, timed, why_not, divs);
	ret = divs ? RS_EXIT_FAIL : RS_EXIT_OK;
out:
	for (i = 0; i < RS_ARRAY_SIZE(ph); i++)
		rs_replay_result_free(&ph[i].res);
	rs_oplog_close(log);
	rs_offline_close(off);
	if (sc)
		rs_scenario_free(sc);
	rs_trace_free(&train);
	rs_trace_free(&tr);
	return ret;
}
