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
 * Every transition goes to the optimization log and to rs_info (visible with -v).
 */
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

#define NS 1000000000ull
#define MAX_GUARDS 64
#define CHECK_NS (NS / 2)	/* who is at the point: checked twice a second */

enum why { WHY_INITIAL, WHY_GUARD, WHY_DRIFT, WHY_PERIODIC };
static const char *const why_names[] = { "initial", "guard", "drift", "periodic" };

struct rs_agent_point {
	struct rs_agent_env *env;
	struct rs_attach_point pt;
	char desc[160];			/* "xdp drv dev rsv1 netns x (prog 42 xdp_l4lb)" */
	enum rs_agent_state state;
	enum why why;
	bool profiling_only;		/* periodic profile: decide drift afterwards */

	/* the original */
	uint32_t orig_id;
	struct rs_prog orig;
	bool fetched;
	int orig_fd;
	char source[16];

	/* what is at the point */
	uint32_t live_id;
	int ours_fd;
	uint32_t ours_id, version;
	struct rs_snapshot ours_snap;	/* maps watched for ours (unwatched when replaced) */
	struct rs_profile ours_prof;	/* profile ours was built from */
	bool ours_has_prof;
	uint32_t gslot[MAX_GUARDS], gmap[MAX_GUARDS];
	uint64_t ggen[MAX_GUARDS];
	size_t gcnt;
	uint32_t guarded_maps;

	/* the candidate version */
	struct rs_snapshot snap;
	bool have_snap;
	struct rs_profile prof;
	bool have_prof;
	struct rs_opt_result res;
	bool have_res;
	int new_fd;
	uint32_t new_id;
	struct rs_trace canary;

	/* windows */
	struct rs_profiler *pr;
	int instr_fd;
	uint32_t instr_id;
	struct rs_pkt_sampler *sampler;
	struct rs_stats_window w;
	bool w_open;
	uint64_t deadline;
	double orig_ns, ours_ns;
	double replay_orig_ns, replay_ours_ns;	/* A/B on the canary packets (trace driver) */
	double replay_ratio;			/* ours / original, 0 unknown */

	unsigned int idle_streak;		/* consecutive IDLE entries: retry backoff */

	/* timers (CLOCK_MONOTONIC ns) */
	uint64_t retry_at, check_at, cost_at, reprofile_at, reopt_at, invalid_at;
};

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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static uint64_t secs(double s)
{
	return s <= 0 ? 0 : (uint64_t)(s * 1e9);
}

static uint32_t id_of_fd(int fd)
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

/* Log an event of this point: optimization log + rs_info. `extra` is taken. */
static void event(struct rs_agent_point *p, const char *ev, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void event(struct rs_agent_point *p, const char *ev, json_t *extra, const char *fmt, ...)
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

static void go(struct rs_agent_point *p, enum rs_agent_state to, const char *why)
{
	if (p->state == to)
		return;
	p->env->stats.transitions++;
	event(p, "state", json_pack("{s:s,s:s}", "from", rs_agent_state_name(p->state), "to",
				    rs_agent_state_name(to)),
	      "%s -> %s%s%s", rs_agent_state_name(p->state), rs_agent_state_name(to),
	      why ? ": " : "", why ? why : "");
	p->state = to;
}

static void unwatch_snapshot(struct rs_agent_point *p, struct rs_snapshot *s)
{
	size_t i;

	for (i = 0; p->env->guard && i < s->map_cnt; i++)
		if (s->maps[i].watched && s->maps[i].id)
			rs_guard_unwatch(p->env->guard, s->maps[i].id);
	rs_snapshot_free(s);
	memset(s, 0, sizeof(*s));
}

/* Drop the candidate version (not what is at the point). */
static void drop_candidate(struct rs_agent_point *p)
{
	if (p->have_res)
		rs_opt_result_free(&p->res);
	p->have_res = false;
	if (p->have_snap)
		unwatch_snapshot(p, &p->snap);
	p->have_snap = false;
	if (p->new_fd >= 0)
		close(p->new_fd);
	p->new_fd = -1;
	p->new_id = 0;
}

static void close_windows(struct rs_agent_point *p)
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

static void drop_ours(struct rs_agent_point *p)
{
	if (p->ours_fd >= 0)
		close(p->ours_fd);
	p->ours_fd = -1;
	p->ours_id = 0;
	unwatch_snapshot(p, &p->ours_snap);
	if (p->ours_has_prof)
		rs_profile_free(&p->ours_prof);
	p->ours_has_prof = false;
	p->gcnt = 0;
	p->guarded_maps = 0;
	p->ours_ns = 0;
}

static void idle(struct rs_agent_point *p, uint64_t now, const char *why)
{
	drop_candidate(p);
	close_windows(p);
	if (p->have_prof)
		rs_profile_free(&p->prof);
	p->have_prof = false;
	/* back off: retry_s, 2x, 4x, ... up to 64x while nothing gets swapped in */
	p->retry_at = now + secs(p->env->cfg->retry_s) * (1ull << (p->idle_streak < 6 ?
								     p->idle_streak : 6));
	p->idle_streak++;
	go(p, RS_AGENT_IDLE, why);
}

static const char *journal_dir(const struct rs_agent_point *p)
{
	return *p->env->cfg->journal_dir ? p->env->cfg->journal_dir : NULL;
}

static const char *pin_dir(const struct rs_agent_point *p)
{
	return *p->env->cfg->pin_dir ? p->env->cfg->pin_dir : NULL;
}

static int do_swap(struct rs_agent_point *p, uint32_t expected, int fd, uint64_t *op_ns)
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
	event(p, "foreign", json_pack("{s:I,s:I}", "expected", (json_int_t)p->live_id, "found",
				      (json_int_t)found),
	      "expected prog %u at the point but prog %u is there: someone else replaced it; "
	      "left alone, state dropped, starting over from the new program", p->live_id, found);
	/* close our journal entry (restore leaves a foreign program in place) */
	if (p->live_id != p->orig_id)
		rs_restore(&p->pt, &ro);
	drop_candidate(p);
	close_windows(p);
	drop_ours(p);
	p->live_id = found;
	go(p, RS_AGENT_GONE, "foreign program");
}

/* Check who is at the point; false (and state changed) when it is not live_id. */
static bool still_ours(struct rs_agent_point *p)
{
	uint32_t cur = 0;
	int err = rs_attach_point_current(&p->pt, &cur);

	if (err == -RS_ERR_NOT_FOUND || (!err && !cur)) {
		drop_candidate(p);
		close_windows(p);
		drop_ours(p);
		go(p, RS_AGENT_GONE, "attach point or program gone");
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

static void st_fetch(struct rs_agent_point *p, uint64_t now)
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
		event(p, "fetch", json_pack("{s:s,s:s,s:I}", "error", rs_strerror(err), "detail",
					    rep.msg, "fail_insn", (json_int_t)rep.fail_insn),
		      "no original bytecode: %s%s%s", rs_strerror(err), *rep.msg ? ": " : "",
		      rep.msg);
		idle(p, now, "no original");
		return;
	}
	p->orig.id = p->orig_id;
	p->fetched = true;
	if (p->orig_fd < 0)
		p->orig_fd = bpf_prog_get_fd_by_id(p->orig_id);
	if (p->orig_fd < 0) {
		go(p, RS_AGENT_GONE, "original program gone");
		return;
	}
	event(p, "fetch", json_pack("{s:s,s:I,s:I}", "source", p->source, "insns",
				    (json_int_t)p->orig.insn_cnt, "maps",
				    (json_int_t)p->orig.map_cnt),
	      "original from %s: %zu insns, %zu maps", p->source, p->orig.insn_cnt,
	      p->orig.map_cnt);
	go(p, RS_AGENT_BASE, NULL);
}

static void start_sampler(struct rs_agent_point *p)
{
	int err;

	if (p->sampler)
		return;
	err = rs_pkt_sampler_open(&p->pt, p->env->cfg->canary_max_packets, &p->sampler);
	if (err)
		rs_info("%s: no packet sample for the canary: %s\n", p->desc, rs_strerror(err));
}

static void st_base(struct rs_agent_point *p, uint64_t now)
{
	struct rs_stats_result r;

	if (!p->deadline) {
		start_sampler(p);
		p->w_open = !rs_stats_window_begin(p->live_id, &p->w);
		p->deadline = now + secs(p->env->cfg->base_window_s);
		return;
	}
	rs_pkt_sampler_drain(p->sampler);
	if (now < p->deadline)
		return;
	p->deadline = 0;
	if (p->w_open && !rs_stats_window_end(&p->w, &r) && !isnan(r.ns_per_packet) &&
	    r.run_cnt) {
		if (p->live_id == p->orig_id)
			p->orig_ns = r.ns_per_packet;
		else
			p->ours_ns = r.ns_per_packet;
		event(p, "measure", json_pack("{s:s,s:I,s:f,s:I,s:f}", "what", p->live_id ==
					      p->orig_id ? "original" : "optimized", "prog_id",
					      (json_int_t)p->live_id, "ns_per_packet",
					      r.ns_per_packet, "packets", (json_int_t)r.run_cnt,
					      "window_s", r.window_s),
		      "prog %u: %.1f ns/packet over %llu packets (bpf_stats window)", p->live_id,
		      r.ns_per_packet, (unsigned long long)r.run_cnt);
	}
	p->w_open = false;
	go(p, RS_AGENT_PROFILE, NULL);
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
		event(p, "profile", json_pack("{s:I,s:I,s:f,s:o,s:I,s:I}", "packets",
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
		p->reprofile_at = now + secs(p->env->cfg->reprofile_interval_s);
		cov = p->have_prof && p->ours_has_prof ? coverage(&p->ours_prof, &p->prof) : 1;
		if (cov >= p->env->cfg->drift_min_coverage) {
			event(p, "drift", json_pack("{s:f,s:b}", "coverage", cov, "reoptimize", 0),
			      "hot keys of version %u still cover %.0f%% of lookups: kept",
			      p->version, 100 * cov);
			if (p->have_prof)
				rs_profile_free(&p->prof);
			p->have_prof = false;
			go(p, RS_AGENT_WATCH, "no drift");
			return;
		}
		event(p, "drift", json_pack("{s:f,s:b}", "coverage", cov, "reoptimize", 1),
		      "hot keys of version %u cover only %.0f%% of lookups: re-optimizing",
		      p->version, 100 * cov);
		p->why = WHY_DRIFT;
	}
	go(p, RS_AGENT_SNAPSHOT, NULL);
}

static void st_profile(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	int back_fd = p->live_id == p->orig_id ? p->orig_fd : p->ours_fd;
	int err;

	if (!p->deadline) {
		RS_OPTS(rs_profiler_opts, po, .sample_rate = c->sample_rate);

		start_sampler(p);
		if (p->have_prof)
			rs_profile_free(&p->prof);
		p->have_prof = false;
		err = rs_profiler_new(&p->orig, &po, &p->pr);
		if (!err) {
			p->instr_fd = rs_prog_load(rs_profiler_prog(p->pr), NULL);
			err = p->instr_fd < 0 ? p->instr_fd : 0;
		}
		if (!err) {
			p->instr_id = id_of_fd(p->instr_fd);
			err = do_swap(p, p->live_id, p->instr_fd, NULL);
			if (p->env->olog)
				rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->live_id,
					      p->instr_id, err, 0);
			if (err == -EBUSY) {
				close_windows(p);
				still_ours(p);
				return;
			}
		}
		if (err) {
			event(p, "profile", json_pack("{s:s}", "error", rs_strerror(err)),
			      "no profile window (%s): specializing from the snapshot alone",
			      rs_strerror(err));
			rs_profiler_free(p->pr);
			p->pr = NULL;
			if (p->instr_fd >= 0)
				close(p->instr_fd);
			p->instr_fd = -1;
			/* still sample packets for the canary over the window */
			p->deadline = now + secs(c->profile_window_s);
			p->instr_id = 0;
			return;
		}
		p->env->stats.profile_windows++;
		p->env->stats.swaps++;
		event(p, "swap", json_pack("{s:I,s:I,s:s}", "old_id", (json_int_t)p->live_id,
					   "new_id", (json_int_t)p->instr_id, "variant",
					   "instrumented"),
		      "instrumented prog %u in place of %u", p->instr_id, p->live_id);
		event(p, "profile", json_pack("{s:I,s:I,s:f}", "instrumented_id",
					      (json_int_t)p->instr_id, "sample_rate",
					      (json_int_t)c->sample_rate, "window_s",
					      c->profile_window_s),
		      "instrumented variant prog %u in place of %u for %.1f s (1 in %u sampled)",
		      p->instr_id, p->live_id, c->profile_window_s, c->sample_rate);
		p->deadline = now + secs(c->profile_window_s);
		return;
	}
	rs_pkt_sampler_drain(p->sampler);
	if (now < p->deadline && !p->env->stopping)
		return;
	p->deadline = 0;
	if (p->pr) {
		err = do_swap(p, p->instr_id, back_fd, NULL);
		if (p->env->olog)
			rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->instr_id, p->live_id, err,
				      0);
		if (err == -EBUSY) {
			uint32_t keep = p->live_id;

			p->live_id = p->instr_id;	/* what we expected there */
			close_windows(p);
			if (still_ours(p))
				p->live_id = keep;
			return;
		}
		if (err) {
			/* the variant behaves like the original; restore retries at exit */
			p->env->stats.errors++;
			event(p, "profile", json_pack("{s:s}", "error", rs_strerror(err)),
			      "swapping prog %u back failed: %s", p->live_id, rs_strerror(err));
			p->live_id = p->instr_id;
			close_windows(p);
			idle(p, now, "swap back failed");
			return;
		}
		p->env->stats.swaps++;
		event(p, "swap", json_pack("{s:I,s:I,s:s}", "old_id", (json_int_t)p->instr_id,
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

static void st_snapshot(struct rs_agent_point *p, uint64_t now)
{
	uint32_t excl[3] = { p->ours_id, p->instr_id, p->new_id };
	RS_OPTS(rs_snapshot_opts, so, .guard = p->env->guard, .exclude_progs = excl,
		.exclude_cnt = 3);
	int err;

	if (!p->env->guard) {
		idle(p, now, "no guard: nothing may be specialized");
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
		unwatch_snapshot(p, &p->snap);
	err = rs_snapshot_take_opts(&p->orig, NULL, &so, &p->snap);
	if (err) {
		p->env->stats.errors++;
		event(p, "snapshot", json_pack("{s:s}", "error", rs_strerror(err)),
		      "snapshot failed: %s", rs_strerror(err));
		p->have_snap = false;
		if (p->ours_id)
			go(p, RS_AGENT_WATCH, "snapshot failed");
		else
			idle(p, now, "snapshot failed");
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
		event(p, "snapshot", json_pack("{s:s,s:o}", "reason", why_names[p->why], "maps",
					       maps),
		      "snapshot of %zu maps (%s)", p->snap.map_cnt, why_names[p->why]);
	}
	go(p, RS_AGENT_OPTIMIZE, NULL);
}

static void st_optimize(struct rs_agent_point *p, uint64_t now)
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
	t0 = now_ns();
	if (!err)
		err = rs_optimize(&p->orig, &p->snap, p->have_prof ? &p->prof : NULL, &oo,
				  &p->res);
	p->env->stats.last_optimize_ms = (double)(now_ns() - t0) / 1e6;
	if (err) {
		p->env->stats.errors++;
		event(p, "optimize", json_pack("{s:s}", "error", rs_strerror(err)),
		      "optimizer failed: %s", rs_strerror(err));
		idle(p, now, "optimizer failed");
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
	event(p, "optimize", json_pack("{s:s,s:I,s:I,s:I,s:I,s:f,s:o}", "reason",
				       why_names[p->why], "insns_before",
				       (json_int_t)p->orig.insn_cnt, "insns_after",
				       (json_int_t)p->res.prog.insn_cnt, "applied",
				       (json_int_t)applied, "guarded_maps",
				       (json_int_t)p->res.guarded_maps, "optimizer_ms",
				       p->env->stats.last_optimize_ms, "remarks", rm),
	      "specialized (%s): %zu -> %zu insns, %zu transformations, %u guarded maps, %.1f ms",
	      why_names[p->why], p->orig.insn_cnt, p->res.prog.insn_cnt, applied,
	      p->res.guarded_maps, p->env->stats.last_optimize_ms);
	if (!applied) {
		if (p->ours_id) {
			/* ours no longer applies (e.g. the map changed): the original is best */
			drop_candidate(p);
			go(p, RS_AGENT_SWAP, "nothing to specialize any more: original back");
			return;
		}
		idle(p, now, "nothing to specialize");
		return;
	}
	go(p, RS_AGENT_LOAD, NULL);
}

static void st_load(struct rs_agent_point *p, uint64_t now)
{
	uint64_t t0 = now_ns();
	int fd;

	fd = rs_prog_load(&p->res.prog, NULL);
	p->env->stats.last_load_ms = (double)(now_ns() - t0) / 1e6;
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
		event(p, "verify", json_pack("{s:b,s:s,s:s}", "ok", 0, "error", rs_strerror(fd),
					     "log", len > 4000 ? log + len - 4000 : log),
		      "the verifier refused the specialized program: %s (original stays)",
		      rs_strerror(fd));
		if (p->ours_id) {
			drop_candidate(p);
			go(p, RS_AGENT_SWAP, "refused: original back");
			return;
		}
		idle(p, now, "verifier refused");
		return;
	}
	p->new_fd = fd;
	p->new_id = id_of_fd(fd);
	if (p->env->olog)
		rs_oplog_verify(p->env->olog, &p->orig, &p->res.prog, fd, 0, NULL,
				p->env->stats.last_load_ms);
	event(p, "verify", json_pack("{s:b,s:I,s:f}", "ok", 1, "prog_id", (json_int_t)p->new_id,
				     "load_ms", p->env->stats.last_load_ms),
	      "verifier accepted prog %u (%.1f ms)", p->new_id, p->env->stats.last_load_ms);
	go(p, RS_AGENT_CANARY, NULL);
}

/* Copy every entry of map fa into fb with batch operations (per-key fallback). */
static int copy_map(int fa, int fb, uint32_t key_size, size_t vsz, bool array)
{
	uint32_t chunk = 4096, n;
	uint8_t *keys, *vals, *one = NULL, *next = NULL;
	uint64_t in = 0, out = 0;
	bool first = true;
	int err = 0;

	keys = malloc((size_t)chunk * key_size);
	vals = malloc((size_t)chunk * vsz);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	/* hashes: empty b first (entries the data path added to b's clone meanwhile) */
	one = calloc(1, key_size + 8);
	next = calloc(1, key_size + 8);
	if (!one || !next) {
		err = -ENOMEM;
		goto out;
	}
	while (!array && !bpf_map_get_next_key(fb, NULL, next))
		if (bpf_map_delete_elem(fb, next))
			break;
	for (;;) {
		LIBBPF_OPTS(bpf_map_batch_opts, bo);

		n = chunk;
		err = bpf_map_lookup_batch(fa, first ? NULL : &in, &out, keys, vals, &n, &bo);
		if (err && errno != ENOENT)
			break;
		first = false;
		if (n) {
			uint32_t m = n;

			if (bpf_map_update_batch(fb, keys, vals, &m, &bo)) {
				err = -errno;
				goto out;
			}
		}
		if (err)	/* ENOENT: that was the last batch */
			break;
		in = out;
	}
	if (!err || errno == ENOENT) {
		err = 0;
		goto out;
	}
	/* no batch support for this map type: key by key */
	err = 0;
	first = true;
	while (!bpf_map_get_next_key(fa, first ? NULL : one, next)) {
		first = false;
		memcpy(one, next, key_size);
		if (bpf_map_lookup_elem(fa, one, vals))
			continue;
		if (bpf_map_update_elem(fb, one, vals, BPF_ANY)) {
			err = -errno;
			break;
		}
	}
out:
	free(keys);
	free(vals);
	free(one);
	free(next);
	return err;
}

/*
 * The two replay programs clone the live maps at slightly different moments; maps the data
 * path writes itself (counters, connection tables) moved in between.  Give b the exact
 * starting contents of a's clones so the comparison after the run is meaningful.
 */
static int sync_clones(struct rs_agent_point *p, struct rs_replay_prog *a,
		       struct rs_replay_prog *b)
{
	int ncpu = libbpf_num_possible_cpus();
	size_t i;
	int err;

	for (i = 0; i < p->orig.map_cnt; i++) {
		const struct rs_map_ref *m = &p->orig.maps[i];
		bool percpu = m->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
			      m->type == BPF_MAP_TYPE_PERCPU_HASH ||
			      m->type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
		bool array = m->type == BPF_MAP_TYPE_ARRAY ||
			     m->type == BPF_MAP_TYPE_PERCPU_ARRAY;
		size_t vsz = percpu ? (size_t)ncpu * ((m->value_size + 7) & ~7u) : m->value_size;
		int fa, fb;

		if (!rs_prog_map_writes(&p->orig, (uint32_t)i))
			continue;
		if (!array && !percpu && m->type != BPF_MAP_TYPE_HASH &&
		    m->type != BPF_MAP_TYPE_LRU_HASH)
			continue;
		fa = rs_replay_map_fd(a, m->name);
		fb = rs_replay_map_fd(b, m->name);
		if (fa < 0 || fb < 0)
			continue;
		err = copy_map(fa, fb, m->key_size, vsz, array);
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
	RS_OPTS(rs_timing_opts, to, .rounds = 5, .repeat = 20000);
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
	p->replay_orig_ns = tr.a.median;
	p->replay_ours_ns = tr.b.median;
	p->replay_ratio = tr.ratio.median;
	if (p->env->olog) {
		struct rs_oplog_measure m = { .sz = sizeof(m), .what = "replay",
					      .method = tr.method, .packets = p->canary.cnt,
					      .ns_before = tr.a.median, .ns_after = tr.b.median,
					      .driver_ns = tr.driver.median, .divergences = 0 };

		rs_oplog_measure(p->env->olog, &p->orig, &m);
	}
	event(p, "measure", json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:I,s:I}", "what", "replay",
				      "method", tr.method, "orig_ns_per_packet", tr.a.median,
				      "opt_ns_per_packet", tr.b.median, "ratio", tr.ratio.median,
				      "driver_ns", tr.driver.median, "rounds",
				      (json_int_t)tr.rounds, "packets", (json_int_t)p->canary.cnt),
	      "replay of %zu sampled packets (%s, A/B x%u): original %.1f ns/packet, specialized "
	      "%.1f ns/packet, ratio %.2f", p->canary.cnt, tr.method, tr.rounds, tr.a.median,
	      tr.b.median, tr.ratio.median);
}

static void st_canary(struct rs_agent_point *p, uint64_t now)
{
	const struct rs_agent_config *c = p->env->cfg;
	RS_OPTS(rs_replay_open_opts, oo);
	RS_OPTS(rs_replay_opts, ro, .max_divergences = 3);
	struct rs_replay_prog *a = NULL, *b = NULL;
	struct rs_replay_result rr = {};
	uint64_t t0 = now_ns(), t1;
	cpu_set_t saved, one;
	bool pinned;
	int err;

	if (p->canary.cnt < c->canary_min_packets) {
		event(p, "canary", json_pack("{s:b,s:I}", "ok", 0, "packets",
					     (json_int_t)p->canary.cnt),
		      "only %zu sampled packets (canary.min_packets %zu): no proof, no swap",
		      p->canary.cnt, c->canary_min_packets);
		if (p->ours_id) {
			drop_candidate(p);
			go(p, RS_AGENT_SWAP, "no canary: original back");
			return;
		}
		idle(p, now, "no packets for the canary");
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
	t1 = now_ns();
	if (!err && p->canary.cnt)
		err = rs_replay_compare(a, b, &p->canary, &ro, &rr);
	rs_debug("%s: canary: clones %.1f ms, replay %.1f ms\n", p->desc, (double)(t1 - t0) / 1e6,
		 (double)(now_ns() - t1) / 1e6);
	/* the A/B timing takes ~0.5 s: not on the guard path, which must be quick */
	if (!err && !rr.divergences && p->why != WHY_GUARD)
		time_ab(p, a, b);
	if (pinned)
		sched_setaffinity(0, sizeof(saved), &saved);
	p->env->stats.last_canary_ms = (double)(now_ns() - t0) / 1e6;
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
		event(p, "canary", json_pack("{s:b,s:I,s:I,s:s,s:o}", "ok", 0, "packets",
					     (json_int_t)p->canary.cnt, "divergences",
					     (json_int_t)rr.divergences, "error",
					     err ? rs_strerror(err) : "", "first", divs),
		      "canary failed: %s%zu divergences on %zu sampled packets: version given up",
		      err ? rs_strerror(err) : "", rr.divergences, p->canary.cnt);
		rs_replay_result_free(&rr);
		if (p->ours_id) {
			drop_candidate(p);
			go(p, RS_AGENT_SWAP, "canary failed: original back");
			return;
		}
		idle(p, now, "canary failed");
		return;
	}
	event(p, "canary", json_pack("{s:b,s:I,s:I,s:f}", "ok", 1, "packets",
				     (json_int_t)rr.packets, "divergences", (json_int_t)0,
				     "canary_ms", p->env->stats.last_canary_ms),
	      "canary: %zu sampled packets, 0 divergences (%.0f ms)", rr.packets,
	      p->env->stats.last_canary_ms);
	rs_replay_result_free(&rr);
	go(p, RS_AGENT_SWAP, NULL);
}

/* Slots (and generations) the specialized program's prologue checks. */
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

	err = do_swap(p, p->live_id, to_orig ? p->orig_fd : p->new_fd, &op_ns);
	if (p->env->olog) {
		if (to_orig)
			rs_oplog_rollback(p->env->olog, &p->orig, &p->pt, p->live_id, target,
					  "the new version was refused or is not needed", err);
		else
			rs_oplog_swap(p->env->olog, &p->orig, &p->pt, p->live_id, target, err,
				      op_ns);
	}
	if (err == -EBUSY) {
		still_ours(p);
		return;
	}
	if (err) {
		p->env->stats.errors++;
		event(p, "swap", json_pack("{s:s}", "error", rs_strerror(err)),
		      "swap failed: %s", rs_strerror(err));
		if (err == -RS_ERR_NOT_FOUND) {
			drop_candidate(p);
			drop_ours(p);
			go(p, RS_AGENT_GONE, "attach point gone");
			return;
		}
		if (p->ours_id)
			go(p, RS_AGENT_WATCH, "swap failed: keeping the version in place");
		else
			idle(p, now, "swap failed");
		return;
	}
	p->env->stats.swaps++;
	event(p, "swap", json_pack("{s:I,s:I,s:I,s:f}", "old_id", (json_int_t)p->live_id,
				   "new_id", (json_int_t)target, "version",
				   (json_int_t)(to_orig ? 0 : p->version + 1), "op_us",
				   (double)op_ns / 1e3),
	      "prog %u in place of %u%s (kernel op %.0f us)", target, p->live_id,
	      to_orig ? " (the original)" : "", (double)op_ns / 1e3);
	p->live_id = target;
	if (to_orig) {
		drop_ours(p);
		idle(p, now, "original in place");
		return;
	}
	if (p->ours_id)
		p->env->stats.respecializations++;
	p->idle_streak = 0;
	drop_ours(p);
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
	p->cost_at = now + secs(c->cost_delay_s);
	p->check_at = now + CHECK_NS;
	p->reprofile_at = c->reprofile_interval_s > 0 ? now + secs(c->reprofile_interval_s) : 0;
	p->reopt_at = c->reoptimize_interval_s > 0 ? now + secs(c->reoptimize_interval_s) : 0;
	p->invalid_at = 0;
	go(p, RS_AGENT_WATCH, NULL);
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

	err = do_swap(p, p->ours_id, p->orig_fd, &op_ns);
	if (p->env->olog)
		rs_oplog_rollback(p->env->olog, &p->orig, &p->pt, p->ours_id, p->orig_id,
				  "slower than the original (live window and A/B replay)", err);
	if (err == -EBUSY) {
		still_ours(p);
		return;
	}
	if (err) {
		p->env->stats.errors++;
		event(p, "rollback", json_pack("{s:s}", "error", rs_strerror(err)),
		      "revert failed: %s", rs_strerror(err));
		return;
	}
	p->env->stats.reverts++;
	event(p, "rollback", json_pack("{s:f,s:f,s:f,s:I}", "orig_ns", p->orig_ns, "ours_ns",
				       p->ours_ns, "ratio", ratio, "restored_id",
				       (json_int_t)p->orig_id),
	      "optimized %.1f ns/packet vs original %.1f (x%.2f > %.2f): original prog %u back",
	      p->ours_ns, p->orig_ns, ratio, p->env->cfg->revert_ratio, p->orig_id);
	p->live_id = p->orig_id;
	drop_ours(p);
	idle(p, now, "reverted (slower)");
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
		p->deadline = now + secs(c->cost_window_s);
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
	event(p, "measure", json_pack("{s:s,s:I,s:f,s:I,s:f,s:f}", "what", "optimized",
				      "prog_id", (json_int_t)p->ours_id, "ns_per_packet",
				      r.ns_per_packet, "packets", (json_int_t)r.run_cnt,
				      "orig_ns_per_packet", p->orig_ns, "ratio", ratio),
	      "prog %u: %.1f ns/packet over %llu packets (original %.1f, ratio %.2f)",
	      p->ours_id, r.ns_per_packet, (unsigned long long)r.run_cnt, p->orig_ns, ratio);
	if (ratio > c->revert_ratio && guards_valid(p)) {
		/* live windows are noisy (different traffic, other load): revert only when the
		 * A/B replay of the sampled packets agrees that ours is slower */
		if (p->replay_ratio > 0 && p->replay_ratio <= c->revert_ratio) {
			event(p, "measure", json_pack("{s:s,s:f,s:f}", "what", "revert_check",
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
		if (!still_ours(p))
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
		event(p, "guard", json_pack("{s:I}", "prog_id", (json_int_t)p->ours_id),
		      "guard generation moved: prog %u runs its original code; re-specializing "
		      "once the map settles (%.1f s without writes)", p->ours_id,
		      p->env->cfg->settle_s);
		start_sampler(p);	/* fresh packets for the next canary */
		go(p, RS_AGENT_SETTLE, NULL);
		return;
	}
	watch_cost(p, now);
	if (p->state != RS_AGENT_WATCH || p->w_open)
		return;
	if (p->reprofile_at && now >= p->reprofile_at) {
		p->profiling_only = true;
		p->why = WHY_PERIODIC;
		go(p, RS_AGENT_BASE, "periodic profile");
		return;
	}
	if (p->reopt_at && now >= p->reopt_at) {
		p->why = WHY_PERIODIC;
		go(p, RS_AGENT_SNAPSHOT, "periodic re-optimization");
	}
}

static void st_settle(struct rs_agent_point *p, uint64_t now)
{
	uint64_t settle = secs(p->env->cfg->settle_s), writes, last;
	size_t i;

	if (now >= p->check_at) {
		p->check_at = now + CHECK_NS;
		if (!still_ours(p))
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
	go(p, RS_AGENT_SNAPSHOT, "map settled");
}

static void st_idle(struct rs_agent_point *p, uint64_t now)
{
	if (now < p->retry_at)
		return;
	if (!still_ours(p))
		return;
	p->why = WHY_INITIAL;
	go(p, p->fetched ? RS_AGENT_BASE : RS_AGENT_FETCH, "retry");
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
			go(p, RS_AGENT_FETCH, NULL);
			break;
		case RS_AGENT_FETCH:
			st_fetch(p, now);
			break;
		case RS_AGENT_BASE:
			st_base(p, now);
			break;
		case RS_AGENT_PROFILE:
			st_profile(p, now);
			break;
		case RS_AGENT_SNAPSHOT:
			st_snapshot(p, now);
			break;
		case RS_AGENT_OPTIMIZE:
			st_optimize(p, now);
			break;
		case RS_AGENT_LOAD:
			st_load(p, now);
			break;
		case RS_AGENT_CANARY:
			st_canary(p, now);
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
		now = now_ns();
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
	event(p, "discover", json_pack("{s:s}", "kind", rs_attach_kind_name(pt->kind)),
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

	close_windows(p);
	if (p->state != RS_AGENT_GONE && p->live_id && p->live_id != p->orig_id) {
		err = rs_restore(&p->pt, &ro);
		event(p, "restore", json_pack("{s:I,s:I,s:s}", "from", (json_int_t)p->live_id,
					      "to", (json_int_t)p->orig_id, "result",
					      err ? rs_strerror(err) : "ok"),
		      "original prog %u back in place of %u: %s", p->orig_id, p->live_id,
		      err ? rs_strerror(err) : "ok");
		if (!err)
			p->live_id = p->orig_id;
	}
	drop_candidate(p);
	drop_ours(p);
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
}

void rs_agent_point_free(struct rs_agent_point *p)
{
	if (!p)
		return;
	drop_candidate(p);
	close_windows(p);
	drop_ours(p);
	if (p->have_prof)
		rs_profile_free(&p->prof);
	if (p->orig_fd >= 0)
		close(p->orig_fd);
	rs_trace_free(&p->canary);
	rs_prog_free(&p->orig);
	free(p);
}
