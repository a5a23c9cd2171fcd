/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * optimizer.h - specialization of a program for what it really sees (DESIGN.md §3).
 *
 *   rs_optimize(prog, snapshot, profile, opts) -> prog', remarks, facts, pass statistics
 *
 * Pure: no system calls.  The snapshot (map contents and facts about the live system) and the
 * profile (hot keys, branch counts) are measured by instrument/ and agent/ and handed in.
 *
 * Shape of a specialized program (guards are always on; there is no switch):
 *
 *     main:  guard prologue: for each specialized map, load its generation from the guard
 *            array (direct value load, BPF_PSEUDO_MAP_IDX_VALUE) and compare with the
 *            generation the snapshot was taken at; any mismatch -> jump to ORIG
 *            specialized body (the passes' output)
 *     ORIG:  the original main body, unchanged (the fallback the program carries inside)
 *     subprograms (specialized copies where a pass changed them, originals otherwise)
 *
 * Maps: the guard array is appended to prog'->maps[] (opts->guard_map).  Every decision
 * (applied or not, and why) becomes a remark; every map and lookup site gets a soundness fact.
 */
#ifndef RS_OPTIMIZER_H
#define RS_OPTIMIZER_H

#include "optimizer/ir.h"

/* ==== snapshot: what the maps hold, and what the live system lets us assume ============ */

/* Writers of a map outside the program being optimized (other loaded programs). */
#define RS_EXT_UPDATES	(1u << 0)	/* some program calls update/delete helpers on it */
#define RS_EXT_STORES	(1u << 1)	/* some program stores through a lookup's value pointer */
#define RS_EXT_UNKNOWN	(1u << 2)	/* some program references it and could not be analyzed */

struct rs_map_snapshot {
	uint32_t map_idx;		/* index into prog->maps[] (snapshot maps are parallel) */
	uint32_t id;			/* kernel map id (0 offline when maps are private) */
	uint32_t type;			/* enum bpf_map_type */
	uint32_t key_size, value_size, max_entries, map_flags;
	bool frozen;
	bool complete;			/* every entry was read (else: no table elimination) */
	uint32_t ncpus;			/* per-CPU maps: values per entry; else 1 */
	uint32_t value_stride;		/* bytes per entry in values[]: value_size, or
					 * ncpus * round_up(value_size, 8) for per-CPU maps */
	size_t cnt;
	uint8_t *keys;			/* cnt * key_size (ARRAY maps: the u32 index) */
	uint8_t *values;		/* cnt * value_stride */

	/* facts from the live system (filled by instrument/agent, never guessed here) */
	uint32_t ext_writers;		/* RS_EXT_* */
	bool watched;			/* the guard watcher covers every user-space write path */
	uint32_t guard_slot;		/* its slot in the guard array (valid when watched) */
	uint64_t generation;		/* slot value when the snapshot was taken */
	double updates_per_s;		/* churn observed by the watcher, 0 when unknown */
};

struct rs_snapshot {
	struct rs_map_snapshot *maps;	/* maps[i] describes prog->maps[i] */
	size_t map_cnt;
};

void rs_snapshot_free(struct rs_snapshot *s);
/* Entry lookup in a snapshot map (exact key); NULL when absent. */
const uint8_t *rs_snapshot_lookup(const struct rs_map_snapshot *m, const void *key);

/* ==== profile: what the traffic does ================================================== */

struct rs_site_profile {
	uint32_t insn;			/* ORIGINAL instruction index of the lookup helper call */
	uint32_t map_idx;
	uint32_t key_size;
	uint64_t lookups;		/* sampled lookups at this site */
	size_t key_cnt;			/* top-K keys, most frequent first */
	uint8_t *keys;			/* key_cnt * key_size */
	uint64_t *counts;		/* key_cnt */
};

struct rs_branch_profile {
	uint32_t insn;			/* ORIGINAL instruction index of the conditional jump */
	uint64_t taken, not_taken;
};

struct rs_profile {
	uint64_t packets;		/* sampled packets */
	uint32_t sample_rate;		/* 1 in N */
	double window_s;
	double ns_per_packet;		/* 0 when not measured */
	char ns_source[32];		/* "bpf_stats", "test_run", ... */
	struct rs_site_profile *sites;
	size_t site_cnt;
	struct rs_branch_profile *branches;
	size_t branch_cnt;
};

void rs_profile_free(struct rs_profile *p);

/* ==== soundness facts ================================================================ */

enum rs_map_level {
	RS_MAP_UNSTABLE,		/* nothing may be assumed */
	RS_MAP_STABLE_KEYS,		/* membership may be answered (absent keys skip the lookup) */
	RS_MAP_STABLE_VALUES,		/* values may become constants */
};

struct rs_map_fact {
	uint32_t map_idx;
	enum rs_map_level level;
	char reason[200];		/* why this level ("program stores through lookup at insn 40") */
};

struct rs_site_fact {
	uint32_t insn;			/* ORIGINAL index of the lookup call */
	uint32_t map_idx;
	bool value_read_only;		/* value pointer only read: no store, no escape */
	bool key_known;			/* key built on the stack at a fixed offset (inlinable) */
	int32_t key_fp_off;		/* its frame-pointer offset when key_known */
	char reason[200];
};

/* Writes a program makes to its map `map_idx`: RS_EXT_UPDATES | RS_EXT_STORES (for the agent
 * to compute ext_writers from the other programs that share a map). */
uint32_t rs_prog_map_writes(const struct rs_prog *prog, uint32_t map_idx);

/* ==== remarks ========================================================================= */

enum rs_remark_kind {
	RS_REMARK_APPLIED,		/* a transformation was made */
	RS_REMARK_MISSED,		/* a candidate was left alone, with the reason */
	RS_REMARK_ANALYSIS,		/* a decision of the analysis (map/site facts) */
};

struct rs_remark {
	enum rs_remark_kind kind;
	char pass[32];
	long orig_insn;			/* site in the original program, -1 program-wide */
	long new_insn;			/* site in the optimized program, -1 when gone/none */
	int map_idx;			/* map concerned, -1 */
	char msg[256];			/* what was done / why not */
	char assumption[256];		/* what was assumed ("vip_map values stable, 3 hot keys") */
	int guard_slot;			/* guard protecting it, -1 */
	uint64_t guard_gen;
	struct bpf_insn *before;	/* original instructions at the site (owned) */
	size_t before_cnt;
	struct bpf_insn *after;		/* replacement (owned) */
	size_t after_cnt;
};

struct rs_remarks {
	struct rs_remark *v;
	size_t cnt, cap;
};

int rs_remarks_add(struct rs_remarks *r, const struct rs_remark *rm);	/* deep-copies insns */
void rs_remarks_free(struct rs_remarks *r);

struct rs_pass_stats {
	char pass[32];
	size_t applied, missed;
	size_t insns_before, insns_after;
};

/* ==== the pipeline ==================================================================== */

struct rs_opt_opts {
	size_t sz;
	struct rs_map_ref guard_map;	/* the guard array (id may be 0 offline) */
	size_t max_hot_keys;		/* per lookup site (default 8) */
	double min_hot_share;		/* a key must have at least this share of lookups (0.01) */
	size_t small_table_max;		/* small-table elimination up to this many entries (16) */
	const char *passes;		/* comma-separated subset, NULL = all in order */
};
#define rs_opt_opts__last_field passes

struct rs_opt_result {
	struct rs_prog prog;		/* the specialized program */
	struct rs_remarks remarks;
	struct rs_pass_stats *stats;
	size_t stat_cnt;
	struct rs_map_fact *map_facts;	/* one per map of the input program */
	size_t map_fact_cnt;
	struct rs_site_fact *site_facts;	/* one per lookup site */
	size_t site_fact_cnt;
	uint32_t guarded_maps;		/* maps whose generations the prologue checks */
};

/*
 * Specialize `prog` for `snap` (required) and `prof` (may be NULL: hot keys then come from
 * the snapshot, all keys of small maps).  When nothing can be specialized the result is the
 * original program (remarks say why).  Errors: -EINVAL, -ENOMEM, -RS_ERR_RANGE, ... with
 * rs_warn naming the pass and instruction.
 */
int rs_optimize(const struct rs_prog *prog, const struct rs_snapshot *snap,
		const struct rs_profile *prof, const struct rs_opt_opts *opts,
		struct rs_opt_result *res);
void rs_opt_result_free(struct rs_opt_result *res);

/* Names of the passes in pipeline order, NULL-terminated. */
const char *const *rs_pass_names(void);

/* ==== profiling: the instrumented variant (optimizer/instrumented.c, docs/profile.md) ====
 *
 * rs_instrument() rewrites a program into a variant that samples 1 in N packets at random and,
 * on those, records the key of every map lookup site and counts taken / not-taken for every
 * conditional branch of the main program.  Shape (the call layout, the default):
 *
 *     entry:  countdown = ctl.countdown - 1 (direct value load of the control map); store it;
 *             if countdown <= 0 -> SAMPLED, else fall through into ORIG (5 instructions and no
 *             taken branch on the non-sampled path)
 *     ORIG:   the original main body, unchanged
 *     SAMPLED: the next sample is the next packet while a burst of B lasts, else 1 + a draw
 *             in 0..2G-2 packets away (G = N*B - B + 1: each packet is sampled with
 *             probability 1/N; an inline LCG, ctl.rng); r0 = call PROF(ctx); exit
 *     PROF:   a subprogram (with BTF: the main function's type): ctl.sampled++, then a copy
 *             of the main body; before each lookup call its key (r2, key_size bytes) is
 *             appended to the site's key ring (an ARRAY value of ring_len keys, its u32
 *             position in the control value; no helper call, scratch registers r0/r3-r5
 *             which the call clobbers anyway); each conditional jump bumps a taken or a
 *             not-taken counter in the control map on its way out
 *     subprograms (unchanged, shared by both copies: sites and branches inside them are not
 *             recorded)
 *
 * Why a subprogram: the JIT gives each its own image, and a copy that is never run still
 * slows ORIG down when it shares ORIG's image (router: ~1.5%, docs/profile.md "Overhead").
 * The inline layout (opts.inline_copy) jumps to the copy instead, in the same image: for
 * programs whose stack or call depth leaves no room for one more frame (the profiler falls
 * back to it when the call layout does not load).
 *
 * Registers are preserved: key recording only uses registers the lookup call clobbers, branch
 * counters use dead registers or spill live ones to stack slots below the program's own stack
 * (stack_depth).  User space drains the rings (rs_profiler_poll) and counts keys.  The maps
 * respec adds have id 0 and no init_value: whoever loads the variant creates them
 * (instrument/profile.c) and sets their ids.
 */
#define RS_PROF_DEFAULT_RATE	256	/* 1 in N packets take the instrumented copy */
#define RS_PROF_DEFAULT_KEYS	8192	/* ring entries per site (power of two) */
#define RS_PROF_DEFAULT_BURST	64	/* consecutive packets per sample burst */
#define RS_PROF_MAX_BURST	1024
#define RS_PROF_RING_MAX_BYTES	(1u << 20)	/* a site's ring value at most (fewer entries) */
#define RS_PROF_CTL_NAME	"rs_prof_ctl"
#define RS_PROF_SITE_PREFIX	"rs_prof_k"	/* + original insn index */

/* Value of the control map (ARRAY, one entry); branch counters follow it. */
struct rs_prof_ctl {
	int32_t countdown;		/* packets left before the next sample */
	uint32_t rate;			/* N, for readers */
	uint64_t sampled;		/* packets that took the instrumented copy */
	uint64_t rng;			/* state of the sampling generator (64-bit LCG; per-CPU
					 * countdowns keep theirs 8 bytes after the countdown) */
	int32_t burst_left;		/* samples left in the current burst (per-CPU: 16 bytes
					 * after the countdown) */
	uint32_t burst;			/* B, for readers */
	/* then per branch b: uint64_t taken, not_taken at RS_PROF_BR_OFF(b); then the sites'
	 * u32 ring positions (rs_instr_site.pos_off); then, with per-CPU countdowns, 64-byte
	 * slots from rs_instr_layout.cpu_off */
};
#define RS_PROF_BR_OFF(b)	(sizeof(struct rs_prof_ctl) + 16 * (size_t)(b))

struct rs_instr_opts {
	size_t sz;
	uint32_t sample_rate;		/* 1 in N (default RS_PROF_DEFAULT_RATE; 1 = every packet) */
	uint32_t key_slots;		/* ring entries per site (default RS_PROF_DEFAULT_KEYS,
					 * rounded down to a power of two) */
	int32_t stack_depth;		/* main's stack depth as the verifier reports it; <= 0:
					 * computed from the instructions */
	bool no_keys;			/* branch counts only */
	bool no_branches;		/* key counts only */
	bool percpu_countdown;		/* one countdown per CPU (cache line each, indexed by
					 * the inlined bpf_get_smp_processor_id): no shared
					 * line written on every packet, 6 more instructions */
	uint32_t burst;			/* samples come in bursts of B consecutive packets
					 * (default RS_PROF_DEFAULT_BURST; 1 = single packets);
					 * each packet is still sampled with probability 1/N */
	bool inline_copy;		/* the inline layout: the copy in main's own code */
};
#define rs_instr_opts__last_field inline_copy
#define RS_PROF_CPU_SLOTS	64	/* per-CPU countdowns (CPUs beyond share them) */

struct rs_instr_site {
	uint32_t insn;			/* ORIGINAL index of the lookup call */
	uint32_t map_idx;		/* map looked up (index into the input's maps[]) */
	uint32_t key_size;
	uint32_t ring_map_idx;		/* its key ring (ARRAY, 1 entry) in the output's maps[]:
					 * ring_len keys of key_size bytes */
	uint32_t ring_len;		/* entries (power of two) */
	uint32_t pos_off;		/* its u32 ring position (keys appended so far, wraps)
					 * in the control value: the positions of all sites
					 * share a few lines of a small map instead of one page
					 * of each ring (a miss each per sample after a gap) */
};

struct rs_instr_branch {
	uint32_t insn;			/* ORIGINAL index of the conditional jump */
	uint32_t slot;			/* counters at RS_PROF_BR_OFF(slot) of the control value */
};

struct rs_instr_layout {
	uint32_t ctl_map_idx;		/* control map in the output's maps[] */
	uint32_t ctl_value_size;
	uint32_t sample_rate;
	uint32_t burst;			/* packets per sample burst */
	uint32_t stack_depth;		/* main's depth used (spill slots start below it) */
	uint32_t cpu_off;		/* per-CPU countdowns in the control value (0: global) */
	bool call;			/* call layout (the copy a subprogram), else inline */
	struct rs_instr_site *sites;
	size_t site_cnt;
	struct rs_instr_branch *branches;
	size_t branch_cnt;
	size_t skipped_sites;		/* lookups whose map could not be resolved */
	size_t skipped_branches;	/* no scratch register could be freed */
};

/*
 * Build the instrumented variant of `prog` into `out` (initialized or holding a program) and
 * describe where everything is recorded in `layout`.  Pure.  Errors: -EINVAL (bad program,
 * options), -E2BIG (stack or map limits), -EOPNOTSUPP (a branch to the first instruction),
 * -ENOMEM, -RS_ERR_RANGE, with rs_warn naming the program and instruction.
 */
int rs_instrument(const struct rs_prog *prog, const struct rs_instr_opts *opts,
		  struct rs_prog *out, struct rs_instr_layout *layout);
void rs_instr_layout_free(struct rs_instr_layout *l);
/* Stack depth of the main program from its instructions (fp-relative accesses, rounded to 8). */
uint32_t rs_prog_main_stack_depth(const struct rs_prog *prog);

/*
 * Build an rs_profile from raw counts (pure; instrument/profile.c reads the maps):
 * for site i, keys[i] holds cnt[i] distinct keys of layout->sites[i].key_size bytes with
 * their counts; the top `top_k` (0 = 10) are kept, most frequent first, ties by key bytes.
 * `ctl` is the control map value (sampled packets and branch counters).
 */
struct rs_site_counts {
	const uint8_t *keys;
	const uint64_t *counts;
	size_t cnt;
};
int rs_profile_from_counts(const struct rs_instr_layout *layout,
			   const struct rs_site_counts *sites, const uint8_t *ctl,
			   size_t top_k, struct rs_profile *prof);
/* Share of a site's lookups a key has (0 when the site saw none). */
double rs_site_key_share(const struct rs_site_profile *s, size_t i);
/* Probability that the branch at `b` was taken (NaN when never executed). */
double rs_branch_taken_prob(const struct rs_branch_profile *b);

#endif /* RS_OPTIMIZER_H */
