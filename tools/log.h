/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * log.h - internals of `respec log` (tools/log*.c): the optimization log read into memory
 * (records in file order, grouped per program), and the before/after alignment shared by the
 * text diff and the HTML report.  The format is docs/log.md, written by agent/oplog.c.
 */
#ifndef RS_TOOLS_LOG_H
#define RS_TOOLS_LOG_H

#include <stdio.h>
#include <jansson.h>

#include "optimizer/ir.h"
#include "tools/disasm.h"

struct log_file {
	const char *path;
	json_t **recs;			/* every record, file order */
	size_t *lines;			/* 1-based line number of each record */
	size_t cnt;
};

/* One program the log talks about (identity = the ORIGINAL program: id, name, tag). */
struct log_prog {
	char key[96];
	json_t *ident;			/* "prog" object (borrowed) */
	long id;
	const char *name;
	long round;			/* last optimization round */
	json_t *before, *after;		/* "program" records of the last round */
	json_t *before_jit, *after_jit;	/* "jit" objects found for them (may be NULL) */
	long before_verified, after_verified;	/* verifier-processed insns, -1 unknown */
	json_t *total;			/* pass_stats "*" of the last round */
	json_t *verify;			/* last verify */
	json_t *measure;		/* last measure (whole program) */
	size_t remarks[3];		/* last round: passed, missed, analysis */
	char passes[256];		/* passes that fired (applied > 0), comma-separated */
};

/* Read and check a log; errors name FILE:LINE on stderr and return -RS_ERR_FORMAT. */
int log_load(const char *path, struct log_file *lf);
void log_free(struct log_file *lf);
/* Group the records per program.  *progs allocated. */
int log_group(const struct log_file *lf, struct log_prog **progs, size_t *cnt);
/* Key of a record's "prog" ("" when it has none). */
void log_prog_key(json_t *rec, char *buf, size_t sz);
/* Does the program match a --prog selector (id or name)? NULL matches all. */
bool log_prog_match(const struct log_prog *p, const char *sel);
/* Records of kind `kind` (NULL any) about program p (NULL any) in the last round only
 * when last_round: iterate with idx starting at 0; returns NULL at the end. */
json_t *log_next(const struct log_file *lf, const struct log_prog *p, const char *kind,
		 bool last_round, size_t *idx);

/* Helpers on JSON fields (defaults when absent / of another type). */
long log_int(json_t *o, const char *key, long dflt);
double log_real(json_t *o, const char *key, double dflt);
const char *log_str(json_t *o, const char *key, const char *dflt);

/* Instructions of a "program" record (hex decoded).  *insns allocated. */
int log_prog_insns(json_t *prog_rec, struct bpf_insn **insns, size_t *cnt);
/* Per-instruction source line objects (NULL where no line record starts).  Allocated. */
json_t **log_line_table(json_t *prog_rec, size_t cnt);

/* ---- before/after alignment ---- */
enum diff_tag { DIFF_SAME, DIFF_CHANGED, DIFF_LEFT, DIFF_RIGHT, DIFF_FOLD };

struct diff_row {
	long l, r;			/* instruction index per side, -1 none */
	enum diff_tag tag;		/* DIFF_FOLD: r..r+l-1 of the after program folded (ORIG) */
};

struct log_listing {
	struct bpf_insn *bi, *ai;	/* before / after instructions */
	size_t bcnt, acnt;
	json_t **blines, **alines;	/* source lines per instruction */
	struct diff_row *rows;
	size_t row_cnt;
	long orig_start, orig_end;	/* ORIG fallback region of the after program, -1 */
	long guard_end;			/* end of the guard prologue, 0 none */
};

/* Align the last round's before/after programs of p (fallback copy folded). */
int log_listing_build(const struct log_prog *p, struct log_listing *ls);
void log_listing_free(struct log_listing *ls);
/* LLVM text of instruction i ("" for the second half of ld_imm64). */
void log_insn_text(struct rs_bpf_disasm *d, const struct bpf_insn *insns, size_t cnt, long i,
		   char *buf, size_t sz);

/* Append "  ; map NAME" / "  ; &NAME[0]+OFF" to buf for a map reference at i (maps of
 * the program record). */
void log_map_note(json_t *prog_rec, const struct bpf_insn *insns, size_t cnt, long i,
		  char *buf, size_t sz);

/* Subcommands (tools/log_diff.c, tools/log_html.c). */
int log_cmd_diff(const struct log_file *lf, const char *sel, bool jited);
int log_cmd_html(const struct log_file *lf, const char *sel, const char *out);

#endif
