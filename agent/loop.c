// SPDX-License-Identifier: BSD-2-Clause
/*
 * loop.c - the agent's control loop for one attach point: an explicit state machine.
 *
 *   DISCOVERED -> FETCH (capture, else lift) -> BASE (cost window on the program in place)
 *   -> PROFILE (instrumented variant swapped in for a window, then back; packets sampled for
 *   the canary) -> SNAPSHOT (map contents under the guard) -> OPTIMIZE -> LOAD (verifier)
 *   -> CANARY (replay original vs optimized on the sampled packets) -> SWAP -> WATCH
 *
 * Like libbpf's phased load, every phase either completes or rolls back what it did: a failed
 * or refused version is closed and the point goes to IDLE (retried after retry_s) with the
 * original in place.  WATCH re-enters the machine: a guard generation moved (SETTLE until the
 * map had no write for settle_s, then SNAPSHOT), a periodic profile window showed drift
 * (PROFILE, then OPTIMIZE when the specialized hot keys cover too little), the periodic
 * re-optimization timer (SNAPSHOT), or a cost window showed ours slower than the original
 * (revert: the original back, IDLE).  If the program at the point is not the one we expect,
 * someone else replaced it: it is never overwritten; our state is dropped (GONE) and the daemon
 * starts over from the new program.  Steps never sleep: windows are deadlines checked on each
 * rs_agent_point_step(), so one thread serves every point and signals are handled promptly.
 * Every transition goes to the agent's event stream and to rs_info (visible with -v); the
 * optimization log (rs_oplog) gets snapshots, remarks, verdicts, measures and swaps.
 * This file: the machine, WATCH/SETTLE/IDLE/SWAP and the point's lifetime; the preparing
 * phases are in loop_prepare.c, the canary in canary.c (shared state: loop_internal.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>

#include "agent/loop_internal.h"

const char *const lp_why_names[] = { "initial", "guard", "drift", "periodic" };

static const char *const state_names[RS_AGENT_STATE_CNT] = {
	[RS_AGENT_DISCOVERED] = "discovered", [RS_AGENT_FETCH] = "fetch",
	[RS_AGENT_BASE] = "base", [RS_AGENT_PROFILE] = "profile",
	[RS_AGENT_SNAPSHOT] = "snapshot", [RS_AGENT_OPTIMIZE] = "optimize",
	[RS_AGENT_LOAD] = "load", [RS_AGENT_CANARY] = "canary", [RS_AGENT_SWAP] = "swap",
	[RS_AGENT_WATCH] = "watch", [RS_AGENT_SETTLE] = "settle", [RS_AGENT_IDLE] = "idle",
	[RS_AGENT_GONE] = "gone",
};

const char *rs_agent_state_name(enum rs_agent_state s)
{
	return s < RS_AGENT_STATE_CNT ? state_names[s] : "?";
}

uint64_t lp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

uint64_t lp_secs(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

uint32_t lp_id_of_fd(int fd)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);

	return bpf_obj_get_info_by_fd(fd, &info, &len) ? 0 : info.id;
}

static json_t *point_json(struct rs_agent_point *p)
{
	char buf[160], key[160];

	return json_pack("{s:s,s:s,s:I,s:s}", "point", rs_attach_point_str(&p->pt, buf, sizeof(buf)),
			 "key", rs_attach_point_key(&p->pt, key, sizeof(key)), "orig_id",
			 (json_int_t)p->orig_id, "prog", p->orig.name[0] ? p->orig.name : "?");
}

void lp_event(struct rs_agent_point *p, const char *ev, json_t *extra, const char *fmt, ...)
{
	json_t *rec = point_json(p);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_set_new(rec, "msg", json_string(msg));
	if (extra) {
		json_object_update(rec, extra);
		json_decref(extra);
	}
	rs_agent_oplog(p->env, ev, rec);
	rs_info("%s: %s\n", p->desc, msg);
}

void lp_go(struct rs_agent_point *p, enum rs_agent_state to, const char *why)
{
	if (p->state == to)
		return;
	p->env->stats.transitions++;
	lp_event(p, "state", json_pack("{s:s,s:s}", "from", rs_agent_state_name(p->state), "to",
				    rs_agent_state_name(to)),
	      "%s -> %s%s%s", rs_agent_state_name(p->state), rs_agent_state_name(to),
	      why ? ": " : "", why ? why : "");
	p->state = to;
}

void lp_unwatch_snapshot(struct rs_agent_point *p, struct rs_snapshot *s)
{
	size_t i;

	for (i = 0; p->env->guard && i < s->map_cnt; i++)
		if (s->maps[i].watched && s->maps[i].id)
			rs_guard_unwatch(p->env->guard, s->maps[i].id);
	rs_snapshot_free(s);
	memset(s, 0, sizeof(*s));
}

/* Drop the candidate version (not what is at the point). */
void lp_drop_candidate(struct rs_agent_point *p)
{
	if (p->have_res)
		rs_opt_result_free(&p->res);
	p->have_res = false;
	if (p->have_snap)
		lp_unwatch_snapshot(p, &p->snap);
	p->have_snap = false;
	if (p->new_fd >= 0)
		close(p->new_fd);
	p->new_fd = -1;
	p->new_id = 0;
}

void lp_close_windows(struct rs_agent_point *p)
{
	struct rs_stats_result r;

	if (p->w_open)
		rs_stats_window_end(&p->w, &r);
	p->w_open = false;
	rs_pkt_sampler_close(p->sampler);
	p->sampler = NULL;
	if (p->instr_fd >= 0)
		close(p->instr_fd);
	p->instr_fd = -1;
	p->instr_id = 0;
	rs_profiler_free(p->pr);
	p->pr = NULL;
}

void lp_drop_ours(struct rs_agent_point *p)
{
	if (p->ours_fd >= 0)
		close(p->ours_fd);
	p->ours_fd = -1;
	p->ours_id = 0;
	lp_unwatch_snapshot(p, &p->ours_snap);
	if (p->ours_has_prof)
		rs_profile_free(&p->ours_prof);
	p->ours_has_prof = false;
	p->gcnt = 0;
	p->guarded_maps = 0;
	p->ours_ns = 0;
}

void lp_idle(struct rs_agent_point *p, uint64_t now, const char *why)
{
	lp_drop_candidate(p);
	lp_close_windows(p);
	if (p->have_prof)
		rs_profile_free(&p->prof);
	p->have_prof = false;
	/* back off: retry_s, 2x, 4x, ... up to 64x while nothing gets swapped in */
	p->retry_at = now + lp_secs(p->env->cfg->retry_s) * (1ull << (p->idle_streak < 6 ?
								     p->idle_streak : 6));
	p->idle_streak++;
	lp_go(p, RS_AGENT_IDLE, why);
}

static const char *journal_dir(const struct rs_agent_point *p)
{
	return *p->env->cfg->journal_dir ? p->env->cfg->journal_dir : NULL;
}

static const char *pin_dir(const struct rs_agent_point *p)
{
	return *p->env->cfg->pin_dir ? p->env->cfg->pin_dir : NULL;
}

int lp_do_swap(struct rs_agent_point *p, uint32_t expected, int fd, uint64_t *op_ns)
{
	RS_OPTS(rs_swap_opts, so, .journal_dir = journal_dir(p), .pin_dir = pin_dir(p));
	int err = rs_swap(&p->pt, expected, fd, &so);

	if (op_ns)
		*op_ns = so.op_ns;
	return err;
}

/* Someone else's program is at the point: never overwrite it; forget the point. */
static void foreign(struct rs_agent_point *p, uint32_t found)
{
	RS_OPTS(rs_restore_opts, ro, .journal_dir = journal_dir(p));

	p->env->stats.foreign_replacements++;
	lp_event(p, "foreign", json_pack("{s:I,s:I}", "expected", (json_int_t)p->live_id, "found",
				      (json_int_t)found),
	      "expected prog %u at the point but prog %u is there: someone else replaced it; "
	      "left alone, state dropped; back off %.0f s before starting over from it",
	      p->live_id, found, p->env->cfg->foreign_backoff_s);
	/* close our journal entry (restore leaves a foreign program in place) */
	if (p->live_id != p->orig_id)
		rs_restore(&p->pt, &ro);
	lp_drop_candidate(p);
	lp_close_windows(p);
	lp_drop_ours(p);
	p->live_id = found;
	p->foreign = true;
	lp_go(p, RS_AGENT_GONE, "foreign program");
}

/* Check who is at the point; false (and state changed) when it is not live_id. */
bool lp_still_ours(struct rs_agent_point *p)
{
	uint32_t cur = 0;
	int err = rs_attach_point_current(&p->pt, &cur);

	if (err == -RS_ERR_NOT_FOUND || (!err && !cur)) {
		lp_drop_candidate(p);
		lp_close_windows(p);
		lp_drop_ours(p);
		lp_go(p, RS_AGENT_GONE, "attach point or program gone");
		return false;
	}
	if (err)
		return true;	/* transient: look again later */
	if (cur != p->live_id) {
		foreign(p, cur);
		return false;
	}
	return true;
}

/* ---- phases ------------------------------------------------------------------------------ */

static void record_guards(struct rs_agent_point *p)
{
	size_t i, j;

	p->gcnt = 0;
	for (i = 0; i < p->res.remarks.cnt; i++) {
		const struct rs_remark *r = &p->res.remarks.v[i];

		if (r->guard_slot < 0)
			continue;
		for (j = 0; j < p->gcnt; j++)
			if (p->gslot[j] == (uint32_t)r->guard_slot)
				break;
		if (j < p->gcnt || p->gcnt == MAX_GUARDS)
			continue;
		p->gslot[p->gcnt] = (uint32_t)r->guard_slot;
		p->ggen[p->gcnt] = r->guard_gen;
		p->gmap[p->gcnt] = 0;
		for (j = 0; j < p->snap.map_cnt; j++)
			if (p->snap.maps[j].watched &&
			    p->snap.maps[j].guard_slot == (uint32_t)r->guard_slot)
				p->gmap[p->gcnt] = p->snap.maps[j].id;
		p->gcnt++;
	}
}

/* Put the candidate (or, with no candidate, the original) at the point. */
static void st_swap(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	bool to_orig = p->new_fd < 0;
	uint32_t target = to_orig ? p->orig_id : p->new_id;
	uint64_t op_ns = 0;
	int err;

	err = lp_do_swap(p, p->live_id, to_orig ? p->orig_fd : p->new_fd, &op_ns);
	if (p->env->olog) {
		if (to_orig)
			rs_oplog_rollback(p->env->olog, &p->orig, &p->pt, p->live_id, target,
					  "the new version was refused or is not needed", err);
		else
			rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->live_id, target, err,
				      op_ns);
	}
	if (err == -EBUSY) {
		lp_still_ours(p);
		return;
	}
	if (err) {
		p->env->stats.errors++;
		lp_event(p, "swap", json_pack("{s:s}", "error", rs_strerror(err)),
		      "swap failed: %s", rs_strerror(err));
		if (err == -RS_ERR_NOT_FOUND) {
			lp_drop_candidate(p);
			lp_drop_ours(p);
			lp_go(p, RS_AGENT_GONE, "attach point gone");
			return;
		}
		if (p->ours_id)
			lp_go(p, RS_AGENT_WATCH, "swap failed: keeping the version in place");
		else
			lp_idle(p, now, "swap failed");
		return;
	}
	p->env->stats.swaps++;
	lp_event(p, "swap", json_pack("{s:I,s:I,s:I,s:f}", "old_id", (json_int_t)p->live_id,
				   "new_id", (json_int_t)target, "version",
				   (json_int_t)(to_orig ? 0 : p->version + 1), "op_us",
				   (double)op_ns / 1e3),
	      "prog %u in place of %u%s (kernel op %.0f us)", target, p->live_id,
	      to_orig ? " (the original)" : "", (double)op_ns / 1e3);
	p->live_id = target;
	if (to_orig) {
		lp_drop_ours(p);
		lp_idle(p, now, "original in place");
		return;
	}
	if (p->ours_id)
		p->env->stats.respecializations++;
	p->idle_streak = 0;
	lp_drop_ours(p);
	p->ours_fd = p->new_fd;
	p->ours_id = p->new_id;
	p->new_fd = -1;
	p->new_id = 0;
	p->version++;
	p->ours_snap = p->snap;
	p->have_snap = false;
	memset(&p->snap, 0, sizeof(p->snap));
	record_guards(p);
	p->guarded_maps = p->res.guarded_maps;
	rs_opt_result_free(&p->res);
	p->have_res = false;
	if (p->have_prof) {
		p->ours_prof = p->prof;
		p->ours_has_prof = true;
		memset(&p->prof, 0, sizeof(p->prof));
		p->have_prof = false;
	}
	p->cost_at = now + lp_secs(c->cost_delay_s);
	p->check_at = now + CHECK_NS;
	p->reprofile_at = c->reprofile_interval_s > 0 ? now + lp_secs(c->reprofile_interval_s) : 0;
	p->reopt_at = c->reoptimize_interval_s > 0 ? now + lp_secs(c->reoptimize_interval_s) : 0;
	p->invalid_at = 0;
	lp_go(p, RS_AGENT_WATCH, NULL);
}

static bool guards_valid(struct rs_agent_point *p)
{
	uint64_t gen;
	size_t i;

	for (i = 0; i < p->gcnt; i++)
		if (!rs_guard_read(p->env->guard, p->gslot[i], &gen) && gen != p->ggen[i])
			return false;
	return true;
}

static void revert(struct rs_agent_point *p, uint64_t now, double ratio)
{
	uint64_t op_ns = 0;
	int err;

	err = lp_do_swap(p, p->ours_id, p->orig_fd, &op_ns);
	if (p->env->olog)
		rs_oplog_rollback(p->env->olog, &p->orig, &p->pt, p->ours_id, p->orig_id,
				  "slower than the original (live window and A/B replay)", err);
	if (err == -EBUSY) {
		lp_still_ours(p);
		return;
	}
	if (err) {
		p->env->stats.errors++;
		lp_event(p, "rollback", json_pack("{s:s}", "error", rs_strerror(err)),
		      "revert failed: %s", rs_strerror(err));
		return;
	}
	p->env->stats.reverts++;
	lp_event(p, "rollback", json_pack("{s:f,s:f,s:f,s:I}", "orig_ns", p->orig_ns, "ours_ns",
				       p->ours_ns, "ratio", ratio, "restored_id",
				       (json_int_t)p->orig_id),
	      "optimized %.1f ns/packet vs original %.1f (x%.2f > %.2f): original prog %u back",
	      p->ours_ns, p->orig_ns, ratio, p->env->cfg->revert_ratio, p->orig_id);
	p->live_id = p->orig_id;
	lp_drop_ours(p);
	lp_idle(p, now, "reverted (slower)");
}

static void watch_cost(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	struct rs_stats_result r;
	double ratio;

	if (!p->cost_at || now < p->cost_at)
		return;
	if (!p->w_open) {
		p->w_open = !rs_stats_window_begin(p->ours_id, &p->w);
		p->deadline = now + lp_secs(c->cost_window_s);
		if (!p->w_open)
			p->cost_at = 0;
		return;
	}
	if (now < p->deadline)
		return;
	p->w_open = false;
	p->cost_at = 0;
	p->deadline = 0;
	if (rs_stats_window_end(&p->w, &r) || isnan(r.ns_per_packet) ||
	    r.run_cnt < c->cost_min_packets) {
		rs_info("%s: cost window on prog %u: too few packets (%llu) to decide\n", p->desc,
			p->ours_id, (unsigned long long)r.run_cnt);
		return;
	}
	p->ours_ns = r.ns_per_packet;
	ratio = p->orig_ns > 0 ? p->ours_ns / p->orig_ns : 0;
	if (p->env->olog) {
		struct rs_oplog_measure m = { .sz = sizeof(m), .what = "live",
					      .method = "bpf_stats", .packets = r.run_cnt,
					      .ns_before = p->orig_ns, .ns_after = p->ours_ns,
					      .divergences = -1 };

		rs_oplog_measure(p->env->olog, &p->orig, &m);
	}
	lp_event(p, "measure", json_pack("{s:s,s:I,s:f,s:I,s:f,s:f}", "what", "optimized",
				      "prog_id", (json_int_t)p->ours_id, "ns_per_packet",
				      r.ns_per_packet, "packets", (json_int_t)r.run_cnt,
				      "orig_ns_per_packet", p->orig_ns, "ratio", ratio),
	      "prog %u: %.1f ns/packet over %llu packets (original %.1f, ratio %.2f)",
	      p->ours_id, r.ns_per_packet, (unsigned long long)r.run_cnt, p->orig_ns, ratio);
	if (ratio > c->revert_ratio && guards_valid(p)) {
		/* live windows are noisy (different traffic, other load): revert only when the
		 * A/B replay of the sampled packets agrees that ours is slower */
		if (p->replay_ratio > 0 && p->replay_ratio <= c->revert_ratio) {
			lp_event(p, "measure", json_pack("{s:s,s:f,s:f}", "what", "revert_check",
						      "live_ratio", ratio, "replay_ratio",
						      p->replay_ratio),
			      "live window says x%.2f but the A/B replay says x%.2f: kept",
			      ratio, p->replay_ratio);
			return;
		}
		revert(p, now, ratio);
	}
}

static void st_watch(struct rs_agent_point *p, uint64_t now)
{
	if (now >= p->check_at) {
		p->check_at = now + CHECK_NS;
		if (!lp_still_ours(p))
			return;
	}
	if (!guards_valid(p)) {
		p->env->stats.guard_invalidations++;
		p->invalid_at = now;
		if (p->w_open) {
			struct rs_stats_result r;

			rs_stats_window_end(&p->w, &r);
			p->w_open = false;
		}
		p->cost_at = 0;
		lp_event(p, "guard", json_pack("{s:I}", "prog_id", (json_int_t)p->ours_id),
		      "guard generation moved: prog %u runs its original code; re-specializing "
		      "once the map settles (%.1f s without writes)", p->ours_id,
		      p->env->cfg->settle_s);
		lp_start_sampler(p);	/* fresh packets for the next canary */
		lp_go(p, RS_AGENT_SETTLE, NULL);
		return;
	}
	watch_cost(p, now);
	if (p->state != RS_AGENT_WATCH || p->w_open)
		return;
	if (p->reprofile_at && now >= p->reprofile_at) {
		p->profiling_only = true;
		p->why = WHY_PERIODIC;
		lp_go(p, RS_AGENT_BASE, "periodic profile");
		return;
	}
	if (p->reopt_at && now >= p->reopt_at) {
		p->why = WHY_PERIODIC;
		lp_go(p, RS_AGENT_SNAPSHOT, "periodic re-optimization");
	}
}

static void st_settle(struct rs_agent_point *p, uint64_t now)
{
	uint64_t settle = lp_secs(p->env->cfg->settle_s), writes, last;
	size_t i;

	if (now >= p->check_at) {
		p->check_at = now + CHECK_NS;
		if (!lp_still_ours(p))
			return;
	}
	rs_pkt_sampler_drain(p->sampler);
	if (now < p->invalid_at + settle)
		return;
	for (i = 0; i < p->gcnt; i++)
		if (p->gmap[i] && !rs_guard_churn(p->env->guard, p->gmap[i], &writes, &last) &&
		    last + settle > now)
			return;
	p->why = WHY_GUARD;
	lp_go(p, RS_AGENT_SNAPSHOT, "map settled");
}

static void st_idle(struct rs_agent_point *p, uint64_t now)
{
	if (now < p->retry_at)
		return;
	if (!lp_still_ours(p))
		return;
	p->why = WHY_INITIAL;
	lp_go(p, p->fetched ? RS_AGENT_BASE : RS_AGENT_FETCH, "retry");
}

int rs_agent_point_step(struct rs_agent_point *p, uint64_t now)
{
	enum rs_agent_state before;
	int guard = 0;

	do {
		before = p->state;
		if (p->env->stopping && p->state != RS_AGENT_PROFILE)
			return 0;
		switch (p->state) {
		case RS_AGENT_DISCOVERED:
			p->why = WHY_INITIAL;
			lp_go(p, RS_AGENT_FETCH, NULL);
			break;
		case RS_AGENT_FETCH:
			lp_st_fetch(p, now);
			break;
		case RS_AGENT_BASE:
			lp_st_base(p, now);
			break;
		case RS_AGENT_PROFILE:
			lp_st_profile(p, now);
			break;
		case RS_AGENT_SNAPSHOT:
			lp_st_snapshot(p, now);
			break;
		case RS_AGENT_OPTIMIZE:
			lp_st_optimize(p, now);
			break;
		case RS_AGENT_LOAD:
			lp_st_load(p, now);
			break;
		case RS_AGENT_CANARY:
			lp_st_canary(p, now);
			break;
		case RS_AGENT_SWAP:
			st_swap(p, now);
			break;
		case RS_AGENT_WATCH:
			st_watch(p, now);
			break;
		case RS_AGENT_SETTLE:
			st_settle(p, now);
			break;
		case RS_AGENT_IDLE:
			st_idle(p, now);
			break;
		case RS_AGENT_GONE:
		case RS_AGENT_STATE_CNT:
			return 0;
		}
		now = lp_now_ns();
	} while (p->state != before && ++guard < 32);
	return 0;
}

bool rs_agent_point_busy(const struct rs_agent_point *p)
{
	switch (p->state) {
	case RS_AGENT_WATCH:
		return p->w_open || p->cost_at;	/* the cost window decides about a revert */
	case RS_AGENT_IDLE:
	case RS_AGENT_GONE:
		return false;
	default:
		return true;
	}
}

int rs_agent_point_new(struct rs_agent_env *env, const struct rs_attach_point *pt,
		       struct rs_agent_point **out)
{
	struct rs_agent_point *p = calloc(1, sizeof(*p));
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	char buf[128];
	int fd;

	if (!p)
		return -ENOMEM;
	p->env = env;
	p->pt = *pt;
	p->orig_id = p->live_id = pt->prog_id;
	p->orig_fd = p->ours_fd = p->new_fd = p->instr_fd = -1;
	rs_prog_init(&p->orig);
	fd = bpf_prog_get_fd_by_id(pt->prog_id);
	if (fd >= 0) {
		if (!bpf_obj_get_info_by_fd(fd, &info, &len))
			snprintf(p->orig.name, sizeof(p->orig.name), "%s", info.name);
		p->orig_fd = fd;
	}
	snprintf(p->desc, sizeof(p->desc), "%s (prog %u %s)",
		 rs_attach_point_str(pt, buf, sizeof(buf)), pt->prog_id, p->orig.name);
	p->state = RS_AGENT_DISCOVERED;
	env->stats.discoveries++;
	lp_event(p, "discover", json_pack("{s:s}", "kind", rs_attach_kind_name(pt->kind)),
	      "selected for optimization");
	*out = p;
	return 0;
}

static void restore_cb(const struct rs_restore_report *r, void *ctx)
{
	struct rs_agent_point *p = ctx;

	if (p->env->olog)
		rs_oplog_restore(p->env->olog, r);
}

int rs_agent_point_restore(struct rs_agent_point *p)
{
	RS_OPTS(rs_restore_opts, ro, .journal_dir = journal_dir(p), .cb = restore_cb, .ctx = p);
	int err = 0;

	lp_close_windows(p);
	if (p->state != RS_AGENT_GONE && p->live_id && p->live_id != p->orig_id) {
		err = rs_restore(&p->pt, &ro);
		lp_event(p, "restore", json_pack("{s:I,s:I,s:s}", "from", (json_int_t)p->live_id,
					      "to", (json_int_t)p->orig_id, "result",
					      err ? rs_strerror(err) : "ok"),
		      "original prog %u back in place of %u: %s", p->orig_id, p->live_id,
		      err ? rs_strerror(err) : "ok");
		if (!err)
			p->live_id = p->orig_id;
	}
	lp_drop_candidate(p);
	lp_drop_ours(p);
	return err;
}

void rs_agent_point_info(const struct rs_agent_point *p, struct rs_agent_point_info *info)
{
	memset(info, 0, sizeof(*info));
	info->pt = p->pt;
	info->state = p->state;
	snprintf(info->prog_name, sizeof(info->prog_name), "%s", p->orig.name);
	info->orig_id = p->orig_id;
	info->live_id = p->live_id;
	info->ours_id = p->ours_id;
	info->version = p->version;
	info->orig_ns = p->orig_ns;
	info->ours_ns = p->ours_ns;
	info->replay_orig_ns = p->replay_orig_ns;
	info->replay_ours_ns = p->replay_ours_ns;
	info->guarded_maps = p->guarded_maps;
	info->guard_valid = p->ours_id && p->env->guard &&
			    guards_valid((struct rs_agent_point *)p);
	info->profile_packets = p->ours_has_prof ? p->ours_prof.packets : 0;
	info->foreign = p->foreign;
}

void rs_agent_point_free(struct rs_agent_point *p)
{
	if (!p)
		return;
	lp_drop_candidate(p);
	lp_close_windows(p);
	lp_drop_ours(p);
	if (p->have_prof)
		rs_profile_free(&p->prof);
	if (p->orig_fd >= 0)
		close(p->orig_fd);
	rs_trace_free(&p->canary);
	rs_prog_free(&p->orig);
	free(p);
}
