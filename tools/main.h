/* SPDX-License-Identifier: BSD-2-Clause */
/* main.h - shared state and helpers of the respec command line (bpftool-like grammar). */
#ifndef RS_TOOLS_MAIN_H
#define RS_TOOLS_MAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* Exit codes: 0 ok, 1 failure, 2 usage. */
#define RS_EXIT_OK	0
#define RS_EXIT_FAIL	1
#define RS_EXIT_USAGE	2

extern bool json_output;	/* -j/--json */
extern bool pretty_output;	/* -p/--pretty (implies -j) */
extern int verbose;		/* -v, repeatable */
extern const char *bin_name;

/* One line on stderr: "respec: <msg>". */
void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: message, then "try respec ... help"; returns RS_EXIT_USAGE. */
int usage_err(const char *obj, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a JSON value on stdout honoring -p; takes ownership of v. */
void json_print(json_t *v);
bool is_prefix(const char *pfx, const char *str);

/* Subcommands: OBJECT COMMAND ... (argv[0] is the first word after OBJECT). */
int do_prog(int argc, char **argv);
int do_replay(int argc, char **argv);
int do_profile(int argc, char **argv);
int do_trace(int argc, char **argv);
int do_restore(int argc, char **argv);
int do_agent(int argc, char **argv);
int do_optimize(int argc, char **argv);

/* `respec replay OBJ --optimize ...` (tools/replay_optimize.c, docs/optimize.md) */
struct rs_replay_mask;
struct replay_optimize_args {
	const char *obj, *prog_name, *scenario, *pcap, *train;
	bool invalidate_guards;		/* bump every guard before the measured runs */
	bool updates;			/* scenario updates halfway, then re-specialize */
	bool no_timing;
	unsigned int rounds;
	size_t max_div;
	const struct rs_replay_mask *masks;
	size_t mask_cnt;
	const char *log;		/* --log FILE: optimization log (docs/log.md) */
	int argc;			/* the command line, for the log's "run" record */
	char **argv;
};
int replay_optimize(const struct replay_optimize_args *ra);
/* JSON of `respec replay` shared by both forms (tools/replay.c): progress on stderr, a
 * verdict histogram, one divergence (packet numbers + base), and the "timing",
 * "ns_per_packet", "ratio", "driver_ns" members of the report (has_b: a B program ran). */
struct rs_divergence;
struct rs_timing_result;
void replay_progress(const char *phase, size_t done, size_t total, void *ctx);
json_t *replay_verdicts_json(uint32_t type, const uint64_t *hist);
json_t *replay_divergence_json(uint32_t type, const struct rs_divergence *d, size_t base);
void replay_timing_json(json_t *o, const struct rs_timing_result *tm, bool timed, bool has_b,
			const char *why_not);
/* PROG (a { id | pinned | tag | name | dev } spec) or OBJ (a path) at argv[*i], for `respec
 * replay` and `respec optimize` (cmd names it in usage errors): fills *spec and sets *is_prog,
 * or sets *path; advances *i.  0 or RS_EXIT_USAGE (message printed). */
struct rs_prog_spec;
int parse_prog_or_obj(const char *cmd, int argc, char **argv, int *i,
		      struct rs_prog_spec *spec, bool *is_prog, const char **path);
/* Time a against b (b may be NULL) with replay_progress: NULL when timed, else why not. */
struct rs_replay_prog;
struct rs_trace;
const char *replay_time(struct rs_replay_prog *a, struct rs_replay_prog *b,
			const struct rs_trace *tr, unsigned int rounds, struct rs_timing_result *tm);
int do_log(int argc, char **argv);

#endif
