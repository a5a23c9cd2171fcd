/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * loop_internal.h - what the files of the agent's control loop share (agent/loop.c: the state
 * machine, agent/loop_prepare.c: fetch, cost window, profile, snapshot, optimize, load;
 * agent/canary.c: the canary replay).  Not a public header: agent.h has the API.
 */
#ifndef RS_AGENT_LOOP_INTERNAL_H
#define RS_AGENT_LOOP_INTERNAL_H

#include <jansson.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

#define NS 1000000000ull
#define MAX_GUARDS 64
#define CHECK_NS (NS / 2)	/* who is at the point: checked twice a second */

enum why { WHY_INITIAL, WHY_GUARD, WHY_DRIFT, WHY_PERIODIC };
extern const char *const lp_why_names[];

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
	bool foreign;			/* GONE because someone else replaced our program */
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
	double pps;			/* packets per second in the last cost window (0: none) */
	double replay_orig_ns, replay_ours_ns;	/* A/B on the canary packets (trace driver) */
	double replay_ratio;			/* ours / original, 0 unknown */

	unsigned int idle_streak;		/* consecutive IDLE entries: retry backoff */

	/* timers (CLOCK_MONOTONIC ns) */
	uint64_t retry_at, check_at, cost_at, reprofile_at, reopt_at, invalid_at;
};

uint64_t lp_now_ns(void);
uint64_t lp_secs(double s);
uint32_t lp_id_of_fd(int fd);
/* Log an event of this point: agent event stream + rs_info.  `extra` is taken. */
void lp_event(struct rs_agent_point *p, const char *ev, json_t *extra, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void lp_go(struct rs_agent_point *p, enum rs_agent_state to, const char *why);
void lp_unwatch_snapshot(struct rs_agent_point *p, struct rs_snapshot *s);
void lp_drop_candidate(struct rs_agent_point *p);
void lp_close_windows(struct rs_agent_point *p);
void lp_drop_ours(struct rs_agent_point *p);
/* Nothing (more) to do now: drop the candidate, retry later with backoff. */
void lp_idle(struct rs_agent_point *p, uint64_t now, const char *why);
int lp_do_swap(struct rs_agent_point *p, uint32_t expected, int fd, uint64_t *op_ns);
/* Who is at the point?  false (state changed to GONE) when it is not live_id. */
bool lp_still_ours(struct rs_agent_point *p);
void lp_start_sampler(struct rs_agent_point *p);

/* phases (loop_prepare.c, canary.c) */
void lp_st_fetch(struct rs_agent_point *p, uint64_t now);
void lp_st_base(struct rs_agent_point *p, uint64_t now);
void lp_st_profile(struct rs_agent_point *p, uint64_t now);
void lp_st_snapshot(struct rs_agent_point *p, uint64_t now);
void lp_st_optimize(struct rs_agent_point *p, uint64_t now);
void lp_st_load(struct rs_agent_point *p, uint64_t now);
void lp_st_canary(struct rs_agent_point *p, uint64_t now);

#endif /* RS_AGENT_LOOP_INTERNAL_H */
