/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pass.h - the interface between the pipeline (optimizer/pipeline.c) and the passes
 * (optimizer/passes/NAME.c).  Internal to the optimizer.
 *
 * A pass reads ctx->prog (the working copy of the program body being specialized: the guard
 * prologue and the ORIG fallback are added by the pipeline after all passes), records its
 * changes in an edit list against ctx->prog's current indexes, and hands the edit list to
 * rs_pass_commit(), which linearizes it, keeps ctx->orig_idx (original index of every current
 * instruction) in step, and re-indexes the remarks.  Passes never touch the fallback code.
 *
 * Each pass file starts with a comment saying what it does, why, and under which
 * preconditions (which facts it relies on).  A pass that finds nothing to do returns 0
 * without committing.
 */
#ifndef RS_PASS_H
#define RS_PASS_H

#include "optimizer/optimizer.h"

struct rs_opt_ctx {
	struct rs_prog prog;			/* working copy, edited by passes */
	long *orig_idx;				/* per instruction of prog: original index, -1 new */
	const struct rs_prog *orig;		/* the input program (never modified) */
	const struct rs_snapshot *snap;
	const struct rs_profile *prof;		/* may be NULL */
	const struct rs_opt_opts *opts;		/* defaults filled in by the pipeline */
	struct rs_map_fact *map_facts;		/* per map of orig (analysis output) */
	size_t map_fact_cnt;
	struct rs_site_fact *site_facts;	/* per lookup site of orig */
	size_t site_fact_cnt;
	struct rs_remarks *remarks;
	struct rs_pass_stats *stats;		/* the running pass's statistics */
	bool *map_guarded;			/* per map of orig: a pass relied on its contents
						 * (the pipeline adds a guard for each) */
	/* private to the pipeline */
	long *orig_pos;				/* per ORIGINAL instruction: current index of
						 * its code (entry of a replacement), -1 gone */
	const char *pass_name;			/* the running pass */
};

struct rs_pass {
	const char *name;			/* "map_fold", "hot_keys", ... */
	int (*run)(struct rs_opt_ctx *ctx);
};

/* Apply an edit list made against ctx->prog; frees `e`.  On error ctx->prog is unchanged. */
int rs_pass_commit(struct rs_opt_ctx *ctx, struct rs_edit *e);

/* Record a remark for the running pass (pass name and stats filled in). orig_insn is an index
 * of ctx->orig; `before`/`after` may be NULL. */
int rs_pass_remark(struct rs_opt_ctx *ctx, enum rs_remark_kind kind, long orig_insn,
		   int map_idx, const struct bpf_insn *before, size_t before_cnt,
		   const struct bpf_insn *after, size_t after_cnt,
		   const char *assumption, const char *fmt, ...)
	__attribute__((format(printf, 10, 11)));

/*
 * Replace ctx->prog by `np` (taken over, `np` is left initialized) whose instruction j came
 * from ctx->prog's instruction i when old_to_new[i] == j (-1: removed); for passes that
 * rebuild the program themselves (layout).  On error nothing changes.
 */
int rs_pass_commit_prog(struct rs_opt_ctx *ctx, struct rs_prog *np, const long *old_to_new);

/* Facts by original index / map (NULL when absent). */
const struct rs_site_fact *rs_pass_site_fact(const struct rs_opt_ctx *ctx, long orig_insn);
const struct rs_map_fact *rs_pass_map_fact(const struct rs_opt_ctx *ctx, uint32_t map_idx);
/* Profile of the lookup site at original index `orig_insn` (NULL when none). */
const struct rs_site_profile *rs_pass_site_profile(const struct rs_opt_ctx *ctx, long orig_insn);
/* Mark that the result depends on map `map_idx`'s contents (adds its generation guard). */
void rs_pass_depend_on_map(struct rs_opt_ctx *ctx, uint32_t map_idx);

/* The passes, in pipeline order (each defined in optimizer/passes/NAME.c). */
extern const struct rs_pass rs_pass_map_fold;		/* map value folding */
extern const struct rs_pass rs_pass_table_elim;		/* empty / small table elimination */
extern const struct rs_pass rs_pass_hot_keys;		/* hot-key inlining */
extern const struct rs_pass rs_pass_constprop;		/* constant propagation, branch folding */
extern const struct rs_pass rs_pass_loop_unroll;	/* bpf_loop over a constant count inlined */
extern const struct rs_pass rs_pass_store_merge;	/* narrow stack stores -> one wide store */
extern const struct rs_pass rs_pass_dce;		/* dead code elimination */
extern const struct rs_pass rs_pass_layout;		/* profile-guided block layout */

/* ==== pipeline internals ============================================================== */

/* analysis.c: soundness facts of every map and lookup site of `prog` (snap may be NULL:
 * every map is then UNSTABLE).  Arrays allocated; the caller frees them. */
int rs_analyze(const struct rs_prog *prog, const struct rs_snapshot *snap,
	       struct rs_map_fact **map_facts, size_t *map_fact_cnt,
	       struct rs_site_fact **site_facts, size_t *site_fact_cnt);

/*
 * guard_compose.c: the final program = guard prologue + ctx->prog's main body + the original
 * main body (ORIG) + subprograms, guard array appended to the maps.  *guarded = number of
 * maps checked; *spec_pos (allocated, ctx->prog.insn_cnt entries) = final index of each
 * instruction of ctx->prog.
 */
int rs_guard_compose(const struct rs_opt_ctx *ctx, struct rs_prog *out, uint32_t *guarded,
		     long **spec_pos);

#endif /* RS_PASS_H */
