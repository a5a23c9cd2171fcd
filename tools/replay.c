// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay.c - `respec replay`: run a program (an ELF object or a loaded program, always in
 * isolation with private maps) over a pcap, optionally against a second program, and report
 * verdicts, divergences and cost per packet.  A thin front end over instrument/replay*.c and
 * instrument/timing.c; see docs/replay.md.
 *
 *   respec replay PROG|OBJ --pcap FILE [--scenario FILE] [--against PROG|OBJ] [--prog NAME]
 *                 [--against-prog NAME] [--max-divergences N] [--mask MAP:OFF:LEN]...
 *                 [--no-timing] [--rounds N] [--instrumented [--rate N] [--burst B]] [-j]
 *   respec replay OBJ --pcap EVAL --scenario FILE --optimize [--train TRAIN]
 *                 [--invalidate-guards] [--updates] [--log FILE] [-j]   (tools/replay_optimize.c)
 *
 * --instrumented [--rate N] [--burst B] [--percpu] [--sampled] (docs/profile.md): B is the
 * instrumented variant of A (instrument/profile.c), and the profile it collected over the
 * trace is reported under "profile"; its compare pass sends every packet through the copy
 * unless --sampled.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tools/main.h"

#define MAX_MASKS 64
#define HEX_ROWS_MAX 8

struct target {
	bool is_prog;
	struct rs_prog_spec spec;
	const char *path;
};

struct replay_args {
	struct target a, b;
	bool has_b;
	const char *pcap, *scenario, *prog_name, *against_prog;
	size_t max_div;
	struct rs_replay_mask masks[MAX_MASKS];
	size_t mask_cnt;
	bool no_timing;
	unsigned int rounds;
	bool instrumented;		/* B = instrumented variant of A */
	uint32_t rate;			/* its sampling rate (0: default) */
	uint32_t burst;			/* packets per sample burst (0: default) */
	bool percpu;			/* per-CPU sampling countdowns */
	bool sampled;			/* compare pass at 1 in N too, not every packet */
	bool optimize;			/* B = A specialized (tools/replay_optimize.c) */
	bool invalidate_guards, updates;
	const char *train, *log;
};

static int replay_help(void)
{
	fprintf(stderr,
		"Usage: %s replay PROG|OBJ --pcap FILE [--scenario FILE] [--against PROG|OBJ]\n"
		"                 [--prog NAME] [--against-prog NAME] [--max-divergences N]\n"
		"                 [--mask MAP:OFF:LEN]... [--no-timing] [--rounds N]\n"
		"                 [--instrumented [--rate N] [--burst B] [--percpu] [--sampled]]\n"
		"                 [-j]\n"
		"       %s replay OBJ --pcap EVAL --scenario FILE --optimize [--train TRAIN]\n"
		"                 [--invalidate-guards] [--updates] [--log FILE] [-j]\n"
		"       %s replay help\n\n"
		"Runs the program over every packet of the pcap in isolation (fresh maps for OBJ,\n"
		"clones of the live maps for PROG), compares it with --against packet by packet\n"
		"(verdict, output bytes) and by map contents, and times both (trace driver for XDP,\n"
		"single runs for TC).  Exit 1 when the programs diverge.\n"
		"Timing: --rounds N rounds (default 1001 with the trace driver, each ~250 us per\n"
		"program on the next chunk of the trace; 21 with single runs), 4 instances of\n"
		"each program in turn; interquartile means, harness subtracted (docs/replay.md).\n"
		"--instrumented compares A (its original against clones of its maps) with its\n"
		"profiling variant (1 in --rate N packets sampled, default %u, in bursts of\n"
		"--burst B consecutive packets, default %u) and reports the profile it collected.\n"
		"The compare pass sends every packet through the variant's instrumented copy\n"
		"(each is checked, the profile is exact; --sampled: only 1 in N, as live);\n"
		"timing runs at 1 in N.\n"
		"--optimize compares A with A specialized for the scenario's maps (profiled\n"
		"on --train): see docs/optimize.md.\n\n"
		"OBJ  := path of a BPF ELF object (first XDP/TC program, or --prog NAME;\n"
		"        --against-prog NAME for the --against object, default --prog)\n"
		"PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
		"          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n",
		bin_name, bin_name, bin_name, RS_PROF_DEFAULT_RATE, RS_PROF_DEFAULT_BURST);
	return RS_EXIT_OK;
}

int parse_prog_or_obj(const char *cmd, int argc, char **argv, int *i,
		      struct rs_prog_spec *spec, bool *is_prog, const char **path)
{
	const char *w = *i < argc ? argv[*i] : NULL;
	int used = 0;

	if (!w)
		return usage_err(cmd, "expected PROG or OBJ");
	if (strcmp(w, "id") && strcmp(w, "pinned") && strcmp(w, "tag") && strcmp(w, "name") &&
	    strcmp(w, "dev")) {
		*path = w;
		(*i)++;
		return 0;
	}
	if (rs_prog_spec_parse(argc - *i, argv + *i, spec, &used))
		return usage_err(cmd, "bad PROG '%s'", w);
	*is_prog = true;
	*i += used;
	return 0;
}

/* Parse PROG|OBJ at argv[*i]; advances *i. */
static int parse_target(int argc, char **argv, int *i, struct target *t)
{
	return parse_prog_or_obj("replay", argc, argv, i, &t->spec, &t->is_prog, &t->path);
}

static int parse_args(int argc, char **argv, struct replay_args *ra)
{
	int i = 0, err;
	char *end;

	err = parse_target(argc, argv, &i, &ra->a);
	if (err)
		return err;
	while (i < argc) {
		const char *o = argv[i++];
		const char *v = i < argc ? argv[i] : NULL;

		if (!strcmp(o, "--no-timing")) {
			ra->no_timing = true;
			continue;
		}
		if (!strcmp(o, "--instrumented")) {
			ra->instrumented = true;
			continue;
		}
		if (!strcmp(o, "--sampled")) {
			ra->sampled = true;
			continue;
		}
		if (!strcmp(o, "--percpu")) {
			ra->percpu = true;
			continue;
		}
		if (!strcmp(o, "--optimize") || !strcmp(o, "--invalidate-guards") ||
		    !strcmp(o, "--updates")) {
			ra->optimize |= o[2] == 'o';
			ra->invalidate_guards |= o[2] == 'i';
			ra->updates |= o[2] == 'u';
			continue;
		}
		if (!strcmp(o, "-j") || !strcmp(o, "--json") || !strcmp(o, "-p") ||
		    !strcmp(o, "--pretty")) {
			json_output = true;
			pretty_output |= o[1] == 'p' || o[2] == 'p';
			continue;
		}
		if (!strcmp(o, "--against")) {
			err = parse_target(argc, argv, &i, &ra->b);
			if (err)
				return err;
			ra->has_b = true;
			continue;
		}
		if (!v)
			return usage_err("replay", "option '%s' needs a value", o);
		i++;
		if (!strcmp(o, "--pcap")) {
			ra->pcap = v;
		} else if (!strcmp(o, "--scenario")) {
			ra->scenario = v;
		} else if (!strcmp(o, "--prog")) {
			ra->prog_name = v;
		} else if (!strcmp(o, "--train")) {
			ra->train = v;
		} else if (!strcmp(o, "--log")) {
			ra->log = v;
		} else if (!strcmp(o, "--against-prog")) {
			ra->against_prog = v;
		} else if (!strcmp(o, "--rate")) {
			unsigned long n = strtoul(v, &end, 10);

			if (*end || !*v || !n || n > (1u << 30))
				return usage_err("replay", "--rate: '%s' is not a number in 1..2^30", v);
			ra->rate = (uint32_t)n;
		} else if (!strcmp(o, "--burst")) {
			unsigned long n = strtoul(v, &end, 10);

			if (*end || !*v || !n || n > RS_PROF_MAX_BURST)
				return usage_err("replay", "--burst: '%s' is not a number in 1..%u", v,
						 RS_PROF_MAX_BURST);
			ra->burst = (uint32_t)n;
		} else if (!strcmp(o, "--max-divergences") || !strcmp(o, "--rounds")) {
			unsigned long n = strtoul(v, &end, 10);

			if (*end || !*v)
				return usage_err("replay", "%s: '%s' is not a number", o, v);
			if (o[2] == 'm')
				ra->max_div = n;
			else
				ra->rounds = n;
		} else if (!strcmp(o, "--mask")) {
			if (ra->mask_cnt == MAX_MASKS)
				return usage_err("replay", "at most %d masks", MAX_MASKS);
			if (rs_replay_mask_parse(v, &ra->masks[ra->mask_cnt]))
				return RS_EXIT_USAGE;
			ra->mask_cnt++;
		} else {
			return usage_err("replay", "unknown option '%s'", o);
		}
	}
	if (!ra->pcap)
		return usage_err("replay", "--pcap FILE is required");
	if (ra->instrumented && ra->has_b)
		return usage_err("replay", "--instrumented and --against exclude each other");
	if ((ra->rate || ra->burst || ra->percpu || ra->sampled) && !ra->instrumented)
		return usage_err("replay", "--rate, --burst, --percpu and --sampled need "
				 "--instrumented");
	if ((uint64_t)(ra->rate ?: RS_PROF_DEFAULT_RATE) * (ra->burst ?: 1) > (1u << 30))
		return usage_err("replay", "--rate x --burst above 2^30");
	if ((ra->train || ra->invalidate_guards || ra->updates || ra->log) && !ra->optimize)
		return usage_err("replay", "--train, --invalidate-guards, --updates and --log need "
				 "--optimize");
	if (ra->optimize && (ra->has_b || ra->instrumented || ra->a.is_prog))
		return usage_err("replay", "--optimize takes an OBJ, without --against or --instrumented");
	return 0;
}

static int open_one(const struct target *t, const char *prog_name,
		    const struct rs_scenario *sc, struct rs_replay_prog **rp)
{
	struct rs_replay_open_opts oo = { .sz = sizeof(oo), .prog_name = prog_name,
					  .scenario = sc };
	uint32_t id = 0;
	char buf[128];
	int err;

	if (!t->path) {
		err = rs_prog_spec_resolve(&t->spec, &id);
		if (err) {
			p_err("%s: %s", rs_prog_spec_str(&t->spec, buf, sizeof(buf)),
			      rs_strerror(err));
			return err;
		}
		return rs_replay_open_id(id, &oo, rp);
	}
	if (access(t->path, R_OK)) {
		err = -errno;
		p_err("%s: %s", t->path, strerror(errno));
		return err;
	}
	return rs_replay_open_object(t->path, &oo, rp);
}

void replay_progress(const char *phase, size_t done, size_t total, void *ctx)
{
	(void)ctx;
	if (!isatty(STDERR_FILENO) && total < 100000)
		return;
	fprintf(stderr, "\r%s: %zu/%zu%s", phase, done, total, done == total ? "\n" : "");
}

struct drain {
	struct rs_profiler *pr;
	struct rs_replay_prog *b;
};

/* Progress of the compare pass: also drain the instrumented variant's key rings (every
 * 4096 packets, well within a ring). */
static void progress_drain(const char *phase, size_t done, size_t total, void *ctx)
{
	struct drain *d = ctx;

	rs_profiler_poll(d->pr, d->b);
	replay_progress(phase, done, total, NULL);
}

/* ---- output ---- */

static void hex_row(char *buf, size_t sz, const uint8_t *p, uint32_t len, uint32_t off)
{
	size_t n = 0;
	uint32_t i;

	buf[0] = 0;
	for (i = off; i < off + 16 && i < len && n + 4 < sz; i++)
		n += snprintf(buf + n, sz - n, "%02x ", p[i]);
	if (n)
		buf[n - 1] = 0;
}

/* Rows (16 bytes) where the two outputs differ, as JSON or printed. */
static json_t *hex_diff(const struct rs_divergence *d, bool print)
{
	uint32_t len = d->len_a > d->len_b ? d->len_a : d->len_b, off, shown = 0;
	json_t *rows = json_array();
	char ha[64], hb[64];

	for (off = 0; off < len; off += 16) {
		uint32_t la = d->out_a && off < d->len_a ? d->len_a - off : 0;
		uint32_t lb = d->out_b && off < d->len_b ? d->len_b - off : 0;

		if (la >= 16 && lb >= 16 && !memcmp(d->out_a + off, d->out_b + off, 16))
			continue;
		if (la == lb && la && !memcmp(d->out_a + off, d->out_b + off, la))
			continue;
		hex_row(ha, sizeof(ha), d->out_a ?: (const uint8_t *)"", d->out_a ? d->len_a : 0,
			off);
		hex_row(hb, sizeof(hb), d->out_b ?: (const uint8_t *)"", d->out_b ? d->len_b : 0,
			off);
		if (print && shown < HEX_ROWS_MAX) {
			printf("      %04x - %s\n", off, *ha ? ha : "(none)");
			printf("      %04x + %s\n", off, *hb ? hb : "(none)");
		}
		shown++;
		json_array_append_new(rows, json_pack("{s:i,s:s,s:s}", "offset", (int)off,
						      "a", ha, "b", hb));
	}
	if (print && shown > HEX_ROWS_MAX)
		printf("      ... %u more differing rows\n", shown - HEX_ROWS_MAX);
	if (print)
		json_decref(rows);
	return print ? NULL : rows;
}

json_t *replay_verdicts_json(uint32_t type, const uint64_t *hist)
{
	json_t *o = json_object();
	char buf[32];
	size_t i;

	for (i = 0; i < RS_VERDICT_SLOTS; i++)
		if (hist[i])
			json_object_set_new(o, i == RS_VERDICT_SLOTS - 1 ? "other" :
					    rs_verdict_name(type, rs_verdict_of_slot(i), buf,
							    sizeof(buf)),
					    json_integer(hist[i]));
	return o;
}

json_t *replay_divergence_json(uint32_t type, const struct rs_divergence *d, size_t base)
{
	char va[48], vb[48];

	return json_pack("{s:s,s:I,s:s,s:s,s:i,s:i,s:s}",
		"kind", d->kind == RS_DIV_PACKET ? "packet" : d->kind == RS_DIV_MAP ? "map" : "error",
		"packet", (json_int_t)(d->packet + base),
		"verdict_a", rs_verdict_name(type, d->verdict_a, va, sizeof(va)),
		"verdict_b", rs_verdict_name(type, d->verdict_b, vb, sizeof(vb)),
		"len_a", (int)d->len_a, "len_b", (int)d->len_b, "what", d->what);
}

static void print_verdicts(const char *who, uint32_t type, const uint64_t *hist)
{
	char buf[32];
	size_t i;

	printf("  %s ", who);
	for (i = 0; i < RS_VERDICT_SLOTS; i++)
		if (hist[i])
			printf(" %s %llu", i == RS_VERDICT_SLOTS - 1 ? "other" :
			       rs_verdict_name(type, rs_verdict_of_slot(i), buf, sizeof(buf)),
			       (unsigned long long)hist[i]);
	printf("\n");
}

const char *replay_time(struct rs_replay_prog *a, struct rs_replay_prog *b,
			const struct rs_trace *tr, unsigned int rounds, struct rs_timing_result *tm)
{
	struct rs_timing_opts to = { .sz = sizeof(to), .rounds = rounds,
				     .progress = replay_progress };
	int err = rs_replay_time(a, b, tr, &to, tm);

	if (!err)
		return NULL;
	return err == -EBUSY ? "kernel.bpf_stats_enabled is on" : "timing failed";
}

static json_t *stat_json(const struct rs_timing_stat *s)
{
	if (isnan(s->iqm))
		return json_null();
	return json_pack("{s:f,s:f,s:f,s:f,s:f}", "iqm", s->iqm, "p25", s->p25, "p75", s->p75,
			 "min", s->min, "max", s->max);
}

void replay_timing_json(json_t *o, const struct rs_timing_result *tm, bool timed, bool has_b,
			const char *why_not)
{
	json_t *ns;

	if (!timed) {
		json_object_set_new(o, "timing", json_pack("{s:s}", "skipped", why_not));
		json_object_set_new(o, "ns_per_packet", json_object());
		json_object_set_new(o, "ratio", json_null());
		json_object_set_new(o, "driver_ns", json_null());
		return;
	}
	json_object_set_new(o, "timing", json_pack("{s:s,s:i,s:I,s:i,s:o,s:i}",
		"method", tm->method, "rounds", (int)tm->rounds, "runs", (json_int_t)tm->runs,
		"copies", (int)tm->copies, "driver", stat_json(&tm->driver),
		"driver_errors", (int)tm->driver_errors));
	ns = json_pack("{s:o}", "a", stat_json(&tm->a));
	if (has_b)
		json_object_set_new(ns, "b", stat_json(&tm->b));
	json_object_set_new(o, "ns_per_packet", ns);
	json_object_set_new(o, "ratio", has_b ? stat_json(&tm->ratio) : json_null());
	json_object_set_new(o, "driver_ns", json_real(tm->driver.iqm));
}

static void report_json(const struct replay_args *ra, struct rs_replay_prog *a,
			struct rs_replay_prog *b, const struct rs_replay_result *res,
			const struct rs_timing_result *tm, bool timed, const char *why_not,
			json_t *profile)
{
	json_t *o = json_object(), *list = json_array(), *v, *dj;
	uint32_t type = rs_replay_prog_type(a);
	size_t i;

	json_object_set_new(o, "pcap", json_string(ra->pcap));
	json_object_set_new(o, "packets", json_integer(res->packets));
	v = json_pack("{s:s}", "a", rs_replay_origin(a));
	if (b)
		json_object_set_new(v, "b", json_string(rs_replay_origin(b)));
	json_object_set_new(o, "programs", v);
	v = json_pack("{s:o}", "a", replay_verdicts_json(type, res->verdicts_a));
	if (b)
		json_object_set_new(v, "b", replay_verdicts_json(type, res->verdicts_b));
	json_object_set_new(o, "verdicts", v);
	json_object_set_new(o, "divergences", json_integer(res->divergences));
	for (i = 0; i < res->div_cnt; i++) {
		dj = replay_divergence_json(type, &res->div[i], 0);
		json_object_set_new(dj, "diff", hex_diff(&res->div[i], false));
		json_array_append_new(list, dj);
	}
	json_object_set_new(o, "divergence_list", list);
	replay_timing_json(o, tm, timed, b != NULL, why_not);
	if (profile)
		json_object_set(o, "profile", profile);
	json_print(o);
}

static void report_text(const struct replay_args *ra, struct rs_replay_prog *a,
			struct rs_replay_prog *b, const struct rs_replay_result *res,
			const struct rs_timing_result *tm, bool timed, const char *why_not)
{
	uint32_t type = rs_replay_prog_type(a);
	size_t i;

	printf("A: %s (%s)\n", rs_replay_origin(a), rs_prog_type_name(type));
	if (b)
		printf("B: %s\n", rs_replay_origin(b));
	printf("packets: %zu (%s)\nverdicts:\n", res->packets, ra->pcap);
	print_verdicts("A", type, res->verdicts_a);
	if (b)
		print_verdicts("B", type, res->verdicts_b);
	if (b) {
		printf("divergences: %zu%s\n", res->divergences,
		       res->divergences > res->div_cnt ? " (first ones shown)" : "");
		for (i = 0; i < res->div_cnt; i++) {
			const struct rs_divergence *d = &res->div[i];

			if (d->kind == RS_DIV_MAP)
				printf("  after %zu packets: %s\n", d->packet, d->what);
			else
				printf("  packet %zu: %s\n", d->packet, d->what);
			hex_diff(d, true);
		}
	}
	if (!timed) {
		printf("timing: skipped (%s)\n", why_not);
		return;
	}
	printf("timing (%s, %u rounds x %llu runs, %u instance%s each, harness subtracted; "
	       "interquartile means over rounds, [quartiles]):\n", tm->method, tm->rounds,
	       (unsigned long long)tm->runs, tm->copies, tm->copies == 1 ? "" : "s");
	printf("  A      %8.2f ns/packet [%.2f, %.2f]\n", tm->a.iqm, tm->a.p25, tm->a.p75);
	if (b) {
		printf("  B      %8.2f ns/packet [%.2f, %.2f]\n", tm->b.iqm, tm->b.p25, tm->b.p75);
		printf("  B/A    %8.3f [%.3f, %.3f]\n", tm->ratio.iqm, tm->ratio.p25,
		       tm->ratio.p75);
	}
	printf("  %-6s %8.2f ns/packet [%.2f, %.2f]\n",
	       strcmp(tm->method, "driver") ? "empty" : "driver", tm->driver.iqm,
	       tm->driver.p25, tm->driver.p75);
}

/* The profile the instrumented variant `b` collected, as JSON (NULL on error). */
static json_t *instrumented_profile(struct rs_profiler *pr, struct rs_replay_prog *b)
{
	struct rs_profile_names nm = { .prog = rs_profiler_prog(pr) };
	struct rs_profile prof;
	json_t *o;

	if (rs_profiler_collect(pr, b, 10, &prof)) {
		p_err("%s: reading the profile failed", rs_replay_origin(b));
		return NULL;
	}
	o = rs_profile_to_json(&prof, &nm);
	if (o && rs_profiler_keys_lost(pr))
		json_object_set_new(o, "keys_lost", json_integer(rs_profiler_keys_lost(pr)));
	rs_profile_free(&prof);
	return o;
}

/* Counters (hardware, else software: each says which) around single runs of a program. */
static json_t *counters_json(struct rs_replay_prog *rp, const struct rs_trace *tr)
{
	json_t *a = json_array();
	struct rs_perf p;
	size_t runs = 0, i;

	if (rs_perf_measure_runs(rp, tr, 20000, &p, &runs))
		return a;
	for (i = 0; i < p.cnt; i++) {
		const struct rs_perf_event *e = &p.ev[i];
		json_t *o;

		if (e->source == RS_PERF_NONE)
			continue;
		o = json_pack("{s:s,s:s,s:I,s:I,s:f}", "event", e->name, "source",
			      rs_perf_source_name(e->source), "value", (json_int_t)e->value,
			      "runs", (json_int_t)runs, "per_run",
			      runs ? (double)e->value / (double)runs : 0.0);
		if (e->why[0])
			json_object_set_new(o, "why", json_string(e->why));
		json_array_append_new(a, o);
	}
	rs_perf_close(&p);
	return a;
}

static void print_profile_summary(json_t *profile)
{
	json_t *sites = json_object_get(profile, "sites"), *s;
	size_t i;

	printf("profile: %lld packets through the copy (%s; timed at 1 in %lld), %zu lookup "
	       "sites, %zu branches (-j for all of it)\n",
	       (long long)json_integer_value(json_object_get(profile, "packets")),
	       json_string_value(json_object_get(profile, "compare_pass")),
	       (long long)json_integer_value(json_object_get(profile, "sample_rate")),
	       json_array_size(sites), json_array_size(json_object_get(profile, "branches")));
	json_array_foreach(sites, i, s) {
		json_t *k0 = json_array_get(json_object_get(s, "keys"), 0);

		printf("  insn %-5lld %-16s %8lld lookups, %zu keys, top %s (%.1f%%)\n",
		       (long long)json_integer_value(json_object_get(s, "insn")),
		       json_string_value(json_object_get(s, "map")) ?: "?",
		       (long long)json_integer_value(json_object_get(s, "lookups")),
		       json_array_size(json_object_get(s, "keys")),
		       k0 ? json_string_value(json_object_get(k0, "key")) : "-",
		       k0 ? 100 * json_real_value(json_object_get(k0, "share")) : 0.0);
	}
}

int do_replay(int argc, char **argv)
{
	struct replay_args ra = { .max_div = 10 };
	struct rs_replay_prog *a = NULL, *b = NULL, *twin = NULL, *swap_a = NULL;
	struct rs_timing_result tm = {};
	struct rs_replay_result res = {};
	struct rs_scenario *sc = NULL;
	struct rs_trace tr = {};
	struct rs_profiler *pr = NULL;
	json_t *profile = NULL;
	const char *why_not = "--no-timing";
	bool timed = false;
	int err, ret = RS_EXIT_FAIL;

	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h"))
		return argc < 1 ? (replay_help(), RS_EXIT_USAGE) : replay_help();
	err = parse_args(argc, argv, &ra);
	if (err)
		return err;
	if (ra.optimize)
		return replay_optimize(&(struct replay_optimize_args){
			.obj = ra.a.path, .prog_name = ra.prog_name, .scenario = ra.scenario,
			.pcap = ra.pcap, .train = ra.train, .invalidate_guards = ra.invalidate_guards,
			.updates = ra.updates, .no_timing = ra.no_timing, .rounds = ra.rounds,
			.max_div = ra.max_div, .masks = ra.masks, .mask_cnt = ra.mask_cnt,
			.log = ra.log, .argc = argc, .argv = argv });

	if (rs_trace_load_pcap(ra.pcap, &tr))
		goto out;	/* the message names the file and the packet */
	if (ra.scenario) {
		if (rs_scenario_load(ra.scenario, &sc))
			goto out;
	}
	if (open_one(&ra.a, ra.prog_name, sc, &a))
		goto out;
	if (ra.instrumented) {
		struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = ra.rate,
					       .percpu_countdown = ra.percpu, .burst = ra.burst };

		/* the variant runs against clones: so does the original it is compared with */
		if (rs_profiler_replay_open(a, &po, &pr, &b, &twin))
			goto out;
		swap_a = a;
		a = twin;
	}
	if (ra.has_b) {
		if (open_one(&ra.b, ra.against_prog ?: ra.prog_name, sc, &b))
			goto out;
		if (rs_replay_prog_type(a) != rs_replay_prog_type(b)) {
			p_err("program type mismatch: %s is %s, %s is %s", rs_replay_origin(a),
			      rs_prog_type_name(rs_replay_prog_type(a)), rs_replay_origin(b),
			      rs_prog_type_name(rs_replay_prog_type(b)));
			goto out;
		}
	}
	{
		struct rs_replay_opts ro = { .sz = sizeof(ro), .max_divergences = ra.max_div,
					     .masks = ra.masks, .mask_cnt = ra.mask_cnt,
					     .progress = replay_progress };
		struct drain d = { .pr = pr, .b = b };

		if (pr) {
			ro.progress = progress_drain;
			ro.progress_ctx = &d;
			if (!ra.sampled && rs_profiler_sample_all(pr, b, true))
				goto out;
		}

		if (rs_replay_compare(a, b, &tr, &ro, &res))
			goto out;
	}
	if (pr) {
		/* one pass over the trace: collect before timing runs add more */
		profile = instrumented_profile(pr, b);
		if (!profile)
			goto out;
		json_object_set_new(profile, "compare_pass",
				    json_string(ra.sampled ? "sampled" : "every packet"));
		if (!ra.sampled && rs_profiler_sample_all(pr, b, false))
			goto out;
		/* counters around single runs (incl. the test-run syscall) of each */
		json_object_set_new(profile, "counters", json_pack("{s:o,s:o}",
			"original", counters_json(a, &tr), "instrumented", counters_json(b, &tr)));
	}
	if (!ra.no_timing) {
		why_not = replay_time(a, b, &tr, ra.rounds, &tm);
		timed = !why_not;
	}
	if (json_output)
		report_json(&ra, a, b, &res, &tm, timed, why_not, profile);
	else
		report_text(&ra, a, b, &res, &tm, timed, why_not);
	if (profile && !json_output)
		print_profile_summary(profile);
	ret = res.divergences ? RS_EXIT_FAIL : RS_EXIT_OK;
out:
	json_decref(profile);
	rs_profiler_free(pr);
	rs_replay_result_free(&res);
	rs_replay_close(b);
	rs_replay_close(a);
	rs_replay_close(swap_a);
	if (sc)
		rs_scenario_free(sc);
	rs_trace_free(&tr);
	return ret;
}
