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

/* ---- building raw instructions ------------------------------------------------------- */

#define RS_I(CODE, DST, SRC, OFF, IMM)						\
	((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC),	\
			    .off = (OFF), .imm = (IMM) })
#define RS_MOV64_REG(D, S)	RS_I(BPF_ALU64 | BPF_MOV | BPF_X, D, S, 0, 0)
#define RS_MOV64_IMM(D, IMM)	RS_I(BPF_ALU64 | BPF_MOV | BPF_K, D, 0, 0, IMM)
#define RS_ALU64_IMM(OP, D, IMM) RS_I(BPF_ALU64 | (OP) | BPF_K, D, 0, 0, IMM)
#define RS_LDX(SZ, D, S, OFF)	RS_I(BPF_LDX | BPF_MEM | (SZ), D, S, OFF, 0)
#define RS_STX(SZ, D, S, OFF)	RS_I(BPF_STX | BPF_MEM | (SZ), D, S, OFF, 0)
#define RS_ST(SZ, D, OFF, IMM)	RS_I(BPF_ST | BPF_MEM | (SZ), D, 0, OFF, IMM)
#define RS_CALL(ID)		RS_I(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define RS_EXIT()		RS_I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

#define RS_MAX_EXPANSION	64	/* longest expansion of one instruction we accept */
#define RS_MAX_PROBE		128	/* longest probe program */

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
	bool loose;			/* fp offsets may shift by one delta, pseudo call
					 * targets are free (inlined bpf_loop) */
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

/* Load a probe and return xlated[site, n - suffix) (the expansion of the site). */
int rs_probe_expansion(const struct rs_prog *like, const struct bpf_insn *insns, size_t cnt,
		       size_t site, size_t suffix, const int *fds, size_t fd_cnt,
		       struct bpf_insn **xl, size_t *xl_cnt);
/* Template from two expansions of the same site with registers (da, sa) and (db, sb). */
int rs_template_derive(const struct bpf_insn *xa, size_t na, uint8_t da, uint8_t sa,
		       const struct bpf_insn *xb, size_t nb, uint8_t db, uint8_t sb,
		       struct bpf_insn *out);
void rs_template_instantiate(const struct bpf_insn *t, size_t n, uint8_t d, uint8_t s,
			     struct bpf_insn *out);
/* Writes a probe for registers (d, s); returns its length, the site index and the original
 * instruction at the site (one instruction wide). */
typedef size_t (*rs_probe_build_fn)(void *ctx, uint8_t d, uint8_t s, struct bpf_insn *insns,
				    size_t *site, struct bpf_insn *orig);
/* Probe a site with registers (regs[0], regs[1]) and (regs[2], regs[3]) (and dst == src ==
 * same_reg when >= 0); store the pattern.  1 stored, 0 identity, < 0 probe refused. */
int rs_probe_site(const struct rs_prog *like, rs_probe_build_fn build, void *ctx,
		  const uint8_t regs[4], int same_reg, const int *fds, size_t fd_cnt,
		  enum rs_pat_kind kind, const char *name, struct rs_patterns *ps);

/*
 * Learn every pattern the target may need: ctx accesses of its program type, helper imms,
 * map helpers for each of its maps (by id), inlined helpers and expansions.  `target` supplies
 * type, expected attach type, flags and maps.
 */
int rs_lift_learn(const struct rs_prog *target, struct rs_patterns *ps);

/* A rewritten site: xlated range [idx, idx + n) and the pattern that explained it. */
struct rs_lift_site {
	size_t idx, n;
	char pattern[48];
};

struct rs_lift_sites {
	struct rs_lift_site *v;
	size_t cnt;
};

/*
 * Undo the rewrites in `xl` (a translated program in IDX form) using the patterns; the result
 * in `out` is the candidate original.  On failure fills rep (fail_insn, fail_pattern, msg).
 */
int rs_lift_match(const struct rs_prog *xl, const struct rs_patterns *ps, struct rs_prog *out,
		  struct rs_lift_sites *sites, struct rs_lift_report *rep);

/* Compare two translated programs (map references by map id).  Returns -1 when equal, else the
 * first differing index (of `a`). */
long rs_xlated_diff(const struct rs_prog *a, const struct rs_prog *b);

#endif /* RS_AGENT_LIFT_H */
