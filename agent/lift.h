/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * lift.h - internal interfaces of the fetch / load / lift part of the agent.
 *
 * Not a public header: the CLI and other modules use agent/agent.h.  This header ties together
 * fetch.c (reading translated programs), load.c (loading rs_prog), lift_probe.c (learning the
 * verifier's rewrite patterns on the running kernel with tiny probe programs), lift_match.c
 * (finding and undoing those rewrites in a translated program) and lift.c (the driver and the
 * proof).
 */
#ifndef RS_AGENT_LIFT_H
#define RS_AGENT_LIFT_H

#include "agent/agent.h"

/* Translated program of an open program fd (as rs_fetch_translated; any prog type when
 * `any_type`). */
int rs_fetch_translated_fd(int fd, struct rs_prog *out, bool any_type);

/* Raw load of instructions for probing: same type/attach/flags as `like`, maps given as fds in
 * fd_array (may be NULL).  Returns an fd or a negative errno; never logs at warn level. */
int rs_probe_load(const struct rs_prog *like, const struct bpf_insn *insns, size_t cnt,
		  const int *fd_array, size_t fd_cnt);
/* Translated instructions of a probe fd (raw: no map-ref conversion needed by callers that
 * only look at code).  *out is malloc'ed. */
int rs_probe_xlated(int fd, struct bpf_insn **out, size_t *cnt);

/* ---- patterns ----------------------------------------------------------------------- */

/* Register placeholder values inside a template (real registers are 0..11). */
#define RS_PH_DST	0xe	/* the original instruction's dst_reg */
#define RS_PH_SRC	0xf	/* the original instruction's src_reg */

enum rs_pat_kind {
	RS_PAT_CTX,		/* ctx field load / store conversion */
	RS_PAT_EXPAND,		/* a call (or insn) expanded in place: inlined helper, tail call,
				 * division checks, ... */
	RS_PAT_PROLOGUE,	/* instructions the verifier puts before the first insn */
};

struct rs_pattern {
	enum rs_pat_kind kind;
	char name[48];
	struct bpf_insn orig;		/* original instruction (registers may be placeholders) */
	struct bpf_insn *xl;		/* its translation (registers may be placeholders) */
	size_t xl_cnt;
	bool need_same;			/* only when dst == src in the original */
	bool need_diff;			/* only when dst != src */
};

struct rs_helper_imm {
	int32_t imm;			/* imm in the translated call */
	int32_t func_id;		/* helper id in the original */
	char name[32];
};

struct rs_patterns {
	struct rs_pattern *pats;
	size_t pat_cnt;
	struct rs_helper_imm *helpers;
	size_t helper_cnt;
};

void rs_patterns_free(struct rs_patterns *ps);
int rs_patterns_add(struct rs_patterns *ps, const struct rs_pattern *p);
int rs_patterns_add_helper(struct rs_patterns *ps, int32_t imm, int32_t func_id, const char *name);
/* func_id for a translated helper imm, or -1. */
int32_t rs_patterns_helper(const struct rs_patterns *ps, int32_t imm);

/*
 * Learn every pattern the target may need: ctx accesses of its program type, helper imms,
 * map helpers for each of its maps (by id), inlined helpers and expansions.  `target` supplies
 * type, expected attach type, flags and maps.
 */
int rs_lift_learn(const struct rs_prog *target, struct rs_patterns *ps);

/*
 * Undo the rewrites in `xl` (a translated program in IDX form) using the patterns; the result
 * in `out` is the candidate original.  On failure fills rep (fail_insn, fail_pattern, msg).
 */
int rs_lift_match(const struct rs_prog *xl, const struct rs_patterns *ps, struct rs_prog *out,
		  struct rs_lift_report *rep);

/* Compare two translated programs (map references by map id).  Returns -1 when equal, else the
 * first differing index (of `a`). */
long rs_xlated_diff(const struct rs_prog *a, const struct rs_prog *b);

#endif /* RS_AGENT_LIFT_H */
