/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * ir.h - the program model of respec: instructions, programs, CFG, liveness, edits.
 *
 * Pure: nothing here makes a system call.  Instructions are the kernel's own `struct bpf_insn`;
 * a program is a `struct rs_prog`, which owns its arrays.
 *
 * Map references.  Inside an rs_prog, every ld_imm64 that refers to a map uses the fd_array
 * encodings of the kernel: src_reg BPF_PSEUDO_MAP_IDX (map pointer) or BPF_PSEUDO_MAP_IDX_VALUE
 * (address of a value; the second half's imm is the offset), with imm = index into
 * prog->maps[].  Such a program loads as is when fd_array[i] is an fd of prog->maps[i].
 * Producers (capture, lift, object reader) convert whatever they read (fds, map ids) to this
 * form; consumers never see fds or ids inside instructions.
 */
#ifndef RS_IR_H
#define RS_IR_H

#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optimizer/common.h"

/* Kernel encodings newer than the 6.1 uapi headers of Debian 12. */
#ifndef BPF_JCOND
#define BPF_JCOND		0xe0
#endif
#ifndef BPF_ADDR_SPACE_CAST
#define BPF_ADDR_SPACE_CAST	1
#endif
#ifndef BPF_MEMSX
#define BPF_MEMSX		0x80		/* sign-extending load (cpu v4) */
#endif
#ifndef BPF_MAY_GOTO
#define BPF_MAY_GOTO		0		/* src_reg of BPF_JCOND */
#endif
#ifndef BPF_ADDR_PERCPU
#define BPF_ADDR_PERCPU		(-1)		/* off of the kernel-internal percpu mov (xlated) */
#endif
#ifndef BPF_LOAD_ACQ
#define BPF_LOAD_ACQ		0x100		/* atomic imm: load-acquire */
#endif
#ifndef BPF_STORE_REL
#define BPF_STORE_REL		0x110		/* atomic imm: store-release */
#endif

#define RS_MAX_REG		11		/* r0..r10 */
#define RS_REG_FP		10
typedef uint16_t rs_regmask_t;			/* bit n = register rn */

/* ---- instructions -------------------------------------------------------------------- */

static inline uint8_t rs_insn_class(const struct bpf_insn *i) { return BPF_CLASS(i->code); }

bool rs_insn_is_ldimm64(const struct bpf_insn *i);	/* first half of a 16-byte ld_imm64 */
bool rs_insn_is_map_ref(const struct bpf_insn *i);	/* ld_imm64 with a pseudo map src_reg */
bool rs_insn_is_jmp(const struct bpf_insn *i);		/* any branch: cond, ja, gotol (not call/exit) */
bool rs_insn_is_cond_jmp(const struct bpf_insn *i);
bool rs_insn_is_uncond_jmp(const struct bpf_insn *i);	/* ja (off) or gotol (JMP32 ja, imm) */
bool rs_insn_is_call(const struct bpf_insn *i);		/* any BPF_CALL */
bool rs_insn_is_helper_call(const struct bpf_insn *i);	/* src_reg 0 */
bool rs_insn_is_kfunc_call(const struct bpf_insn *i);	/* src_reg BPF_PSEUDO_KFUNC_CALL */
bool rs_insn_is_pseudo_call(const struct bpf_insn *i);	/* bpf-to-bpf, src_reg BPF_PSEUDO_CALL */
bool rs_insn_is_pseudo_func(const struct bpf_insn *i);	/* ld_imm64 BPF_PSEUDO_FUNC (callback) */
bool rs_insn_is_exit(const struct bpf_insn *i);
bool rs_insn_is_tail_call(const struct bpf_insn *i);	/* call bpf_tail_call */

/* 2 for the first half of ld_imm64, else 1. */
static inline size_t rs_insn_width(const struct bpf_insn *i) { return rs_insn_is_ldimm64(i) ? 2 : 1; }

/* Branch displacement (off, or imm for gotol); meaningful only for rs_insn_is_jmp(). */
int32_t rs_insn_jmp_off(const struct bpf_insn *i);
/*
 * Set the displacement of a branch, pseudo call or pseudo func at index `idx` so that it
 * reaches `target`.  Returns -RS_ERR_RANGE when the displacement does not fit the field
 * (s16 for branches, s32 for gotol and calls) and leaves the instruction unchanged.
 */
int rs_insn_set_target(struct bpf_insn *insns, size_t idx, size_t target);
/* Index an instruction at `idx` branches or calls to (branch, pseudo call, pseudo func). */
long rs_insn_target(const struct bpf_insn *insns, size_t idx);

/* Registers read / written by an instruction (calls: r1-r5 read, r0-r5 written). */
rs_regmask_t rs_insn_uses(const struct bpf_insn *i);
rs_regmask_t rs_insn_defs(const struct bpf_insn *i);

/* Opcode and field sanity of one instruction (not its context). 0 or -EINVAL. */
int rs_insn_check(const struct bpf_insn *insns, size_t cnt, size_t idx);

/*
 * Text of the instruction at `idx` in the kernel verifier's syntax ("r0 = *(u32 *)(r1 +4)",
 * "if r1 > 0x5 goto pc+3", "call 1").  Returns the length as snprintf does.  Helper names are
 * printed when known (rs_helper_name()).
 */
int rs_insn_snprint(char *buf, size_t sz, const struct bpf_insn *insns, size_t cnt, size_t idx);
const char *rs_helper_name(int32_t func_id);	/* "map_lookup_elem", NULL if unknown */

/* ---- programs ------------------------------------------------------------------------ */

enum rs_prog_source {
	RS_SRC_NONE,
	RS_SRC_CAPTURE,		/* copied at BPF_PROG_LOAD: exact original bytes */
	RS_SRC_LIFT,		/* lifted from the translated program and proven */
	RS_SRC_OBJECT,		/* read from an ELF object given by the user */
	RS_SRC_BUILD,		/* produced by respec (optimizer, instrumentation) */
};

struct rs_map_ref {
	uint32_t id;		/* kernel map id, 0 when not (yet) a kernel map */
	uint32_t type;		/* enum bpf_map_type */
	uint32_t key_size;
	uint32_t value_size;
	uint32_t max_entries;
	uint32_t flags;
	char name[BPF_OBJ_NAME_LEN];
	/*
	 * Initial contents of a map respec creates itself (id 0), e.g. the constant pool of the
	 * specializer passes (ARRAY, max_entries 1, BPF_F_RDONLY_PROG): value_size bytes for key
	 * 0.  NULL for every other map.  Owned by the rs_prog: rs_prog_copy, rs_prog_add_map and
	 * rs_edit_apply copy it, rs_prog_free frees it.  rs_prog_load creates such a map, writes
	 * key 0 and freezes it.
	 */
	uint8_t *init_value;
};

struct rs_func_info {
	uint32_t insn_off;
	uint32_t type_id;
};

struct rs_line_info {
	uint32_t insn_off;
	uint32_t file_name_off;
	uint32_t line_off;
	uint32_t line_col;
};

struct rs_prog {
	char name[BPF_OBJ_NAME_LEN];
	uint32_t id;			/* kernel program id this came from, 0 if none */
	uint8_t tag[BPF_TAG_SIZE];	/* kernel tag of the program it came from */
	uint32_t type;			/* enum bpf_prog_type */
	uint32_t expected_attach_type;
	uint32_t prog_flags;		/* BPF_F_XDP_HAS_FRAGS, ... */
	char license[128];
	enum rs_prog_source source;

	struct bpf_insn *insns;
	size_t insn_cnt;
	struct rs_map_ref *maps;
	size_t map_cnt;

	uint32_t btf_id;		/* kernel BTF object id, 0 when none */
	struct rs_func_info *func_info;	/* one per subprogram, sorted by insn_off */
	size_t func_info_cnt;
	struct rs_line_info *line_info;	/* sorted by insn_off */
	size_t line_info_cnt;
};

void rs_prog_init(struct rs_prog *p);
void rs_prog_free(struct rs_prog *p);		/* frees arrays, leaves p initialized */
/* Deep copy.  dst must be initialized (or hold a program, which is freed on success). */
int rs_prog_copy(struct rs_prog *dst, const struct rs_prog *src);
/* Replace the instruction array (copies `insns`). */
int rs_prog_set_insns(struct rs_prog *p, const struct bpf_insn *insns, size_t cnt);
/* Append a map reference (init_value deep-copied); returns its index or a negative errno. */
int rs_prog_add_map(struct rs_prog *p, const struct rs_map_ref *m);
/* Deep copy / free of a map reference array (init_value included). */
int rs_map_refs_dup(struct rs_map_ref **dst, const struct rs_map_ref *src, size_t cnt);
void rs_map_refs_free(struct rs_map_ref *maps, size_t cnt);

const char *rs_prog_type_name(uint32_t type);	/* "xdp", "sched_cls", ... */
const char *rs_prog_source_name(enum rs_prog_source src);

/*
 * Structural validation: every opcode valid, every branch / pseudo call lands inside the
 * program and not on the second half of an ld_imm64, pseudo calls land on subprogram starts,
 * every subprogram ends in exit or an unconditional jump, map indexes < map_cnt, func_info
 * matches the subprogram starts, line_info sorted and in range, r10 never written.
 * On failure returns -RS_ERR_INVALID_PROG and writes "insn N: why" into err.
 */
int rs_prog_validate(const struct rs_prog *p, char *err, size_t errsz);

/* ---- control flow -------------------------------------------------------------------- */

#define RS_NO_SUCC (-1)

struct rs_bb {
	size_t start;		/* first instruction index */
	size_t end;		/* one past the last instruction */
	int subprog;		/* index into cfg->subprogs */
	int succ[2];		/* [0] fall-through / jump target for ja, [1] taken branch; RS_NO_SUCC */
	int *preds;
	size_t pred_cnt;
};

struct rs_subprog {
	size_t start;		/* first instruction */
	size_t end;		/* one past the last */
	int entry_bb;
};

struct rs_cfg {
	struct rs_bb *bbs;		/* in instruction order */
	size_t bb_cnt;
	struct rs_subprog *subprogs;	/* subprogs[0] is the main program */
	size_t subprog_cnt;
	int *insn_bb;			/* per instruction: its block, -1 for 2nd half of ld_imm64 */
	size_t insn_cnt;
};

/* Blocks end at branches, exits, tail calls (no: calls do not end blocks) and before targets. */
int rs_cfg_build(const struct bpf_insn *insns, size_t cnt, struct rs_cfg *cfg);
void rs_cfg_free(struct rs_cfg *cfg);
/* Same, with func_info offsets as additional subprogram starts. */
int rs_cfg_build_prog(const struct rs_prog *p, struct rs_cfg *cfg);
/*
 * Sorted, distinct subprogram starts: 0, every pseudo call / pseudo func target and every
 * func_info offset (fi may be NULL).  Out-of-range targets are skipped (the validator reports
 * them).  *starts is allocated; the caller frees it.
 */
int rs_subprog_starts(const struct bpf_insn *insns, size_t cnt, const struct rs_func_info *fi,
		      size_t fi_cnt, size_t **starts, size_t *n);

/*
 * Register liveness per instruction: live_in[i] = registers read on some path from i before
 * being written.  Calls to subprograms are treated as reading r1-r5 and clobbering r0-r5;
 * exit reads r0.  *live_in is allocated (cfg->insn_cnt entries); the caller frees it.
 * The second half of an ld_imm64 gets the registers live after the ld_imm64.
 */
int rs_liveness(const struct rs_cfg *cfg, const struct bpf_insn *insns, rs_regmask_t **live_in);

/* ---- edits ----------------------------------------------------------------------------- */

/*
 * An edit list records changes to a program against its *old* instruction indexes and
 * linearizes them once.  Semantics:
 *   - replace(idx, n_old, new): instructions [idx, idx+n_old) give way to `new`; branches that
 *     targeted idx now target the first new instruction; branches into (idx, idx+n_old) are an
 *     error at apply time (-EINVAL).  A replace with n == 0 is a delete.
 *   - insert_before(idx, new): branches to idx land on the first inserted instruction.
 *     idx == insn_cnt appends at the end.
 *   - insert_after(idx, new): code placed after old idx (after both halves of an ld_imm64);
 *     branches to idx+1 still land on the old idx+1.
 *   - delete(idx, n): branches to a deleted instruction go to the next surviving one (more
 *     precisely: to whatever is laid out next: code inserted before the next old instruction,
 *     a replacement, or the instruction itself).
 * Several inserts at the same place are laid out in recording order; between old i and i+1
 * the code inserted after i comes first, then the code inserted before i+1.  Pseudo calls and
 * pseudo funcs (ld_imm64 BPF_PSEUDO_FUNC) follow the same rules as branches, so code inserted
 * before a subprogram's first instruction becomes the subprogram's new head.
 * Branches inside new code: `targets` (may be NULL) is parallel to `new`; RS_TARGET_LOCAL means
 * the branch's own displacement is relative within the new sequence (0..n, n = just after the
 * sequence); a value >= 0 is an *old* instruction index the branch must reach: the old
 * instruction itself when it survives (NOT code inserted before it, so a guard inserted before
 * i can jump to i), else where a branch to it would go.  A target on a non-branch is -EINVAL.
 * Replace/delete ranges may not overlap each other or split an ld_imm64, and nothing may be
 * inserted inside or after a removed range's instructions (inserting before its first one is
 * fine).  apply() re-encodes every branch, pseudo call and pseudo func with a range check first
 * (-RS_ERR_RANGE "insn N: ..." naming the old instruction, nothing written), moves func_info
 * and line_info with the instructions (info of removed code moves to whatever is laid out next;
 * when two land on one instruction the later one, i.e. the survivor's own, wins; info of code
 * removed at the very end is dropped), and returns the old-to-new index map (new index of each
 * old instruction, second halves included, or -1 when it was removed/replaced).
 * The rs_edit keeps a pointer to the program: do not change it before apply().
 */
#define RS_TARGET_LOCAL (-1L)

struct rs_edit;

struct rs_edit *rs_edit_new(const struct rs_prog *prog);
void rs_edit_free(struct rs_edit *e);
int rs_edit_replace(struct rs_edit *e, size_t idx, size_t n_old,
		    const struct bpf_insn *insns, const long *targets, size_t n);
int rs_edit_insert_before(struct rs_edit *e, size_t idx,
			  const struct bpf_insn *insns, const long *targets, size_t n);
int rs_edit_insert_after(struct rs_edit *e, size_t idx,
			 const struct bpf_insn *insns, const long *targets, size_t n);
int rs_edit_delete(struct rs_edit *e, size_t idx, size_t n);
/*
 * Linearize into `out` (initialized or freed-and-reinitialized by the call; metadata and maps
 * copied from the original).  old_to_new may be NULL; else *old_to_new is allocated with
 * prog->insn_cnt entries.  On error, `err` (may be NULL) gets "insn N: why".
 * `out` must be initialized (rs_prog_init) or hold a program, which is freed on success; it
 * may be the edited program itself.  On error neither `out` nor *old_to_new is touched.
 */
int rs_edit_apply(struct rs_edit *e, struct rs_prog *out, long **old_to_new,
		  char *err, size_t errsz);

#endif /* RS_IR_H */
