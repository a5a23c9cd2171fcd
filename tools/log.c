// SPDX-License-Identifier: BSD-2-Clause
/*
 * log.c - `respec log`: optimization logs (docs/log.md) rendered for people.
 *
 *   respec log show LOG [--prog ID|NAME] [--pass P] [--kind K]
 *   respec log diff LOG [--prog ID|NAME] [--jited]
 *   respec log stats LOG
 *   respec log remarks LOG [--prog ID|NAME] --yaml
 *   respec log html LOG -o report.html [--prog ID|NAME]
 *
 * This file parses the command line and renders show, stats and the LLVM-remarks YAML; the
 * reader is log_read.c, diff log_diff.c, the report log_html.c.  A corrupt or truncated log
 * fails the command (exit 1) with FILE:LINE.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log.h"
#include "tools/main.h"

static void usage(void)
{
	fprintf(stderr,
		"Usage: %s log show LOG [--prog ID|NAME] [--pass PASS] [--kind KIND]\n"
		"       %s log diff LOG [--prog ID|NAME] [--jited]\n"
		"       %s log stats LOG\n"
		"       %s log remarks LOG [--prog ID|NAME] --yaml\n"
		"       %s log html LOG -o FILE [--prog ID|NAME]\n"
		"       %s log help\n\n"
		"KIND := { run | snapshot | profile | program | remark | pass_stats | verify |\n"
		"          swap | measure | rollback | restore }\n",
		bin_name, bin_name, bin_name, bin_name, bin_name, bin_name);
}

/* ---- show ------------------------------------------------------------------------------ */

static const char *prog_str(json_t *r, char *buf, size_t sz)
{
	json_t *p = json_object_get(r, "prog");

	if (!json_is_object(p))
		return "";
	snprintf(buf, sz, "prog %ld (%s)", log_int(p, "id", 0), log_str(p, "name", "?"));
	return buf;
}

static void show_site(json_t *s)
{
	long o = log_int(s, "orig_insn", -1), n = log_int(s, "new_insn", -1);

	if (o < 0) {
		printf(" program-wide");
		return;
	}
	printf(" insn %ld->", o);
	if (n >= 0)
		printf("%ld", n);
	else
		printf("gone");
	if (log_str(s, "file", NULL))
		printf(" %s:%ld", log_str(s, "file", ""), log_int(s, "line", 0));
	if (log_str(s, "func", NULL))
		printf(" (%s)", log_str(s, "func", ""));
}

static void show_block(const char *what, json_t *b)
{
	json_t *t = json_object_get(b, "text"), *x;
	size_t i;

	if (!json_is_array(t))
		return;
	printf("        %s:\n", what);
	json_array_foreach(t, i, x)
		if (json_string_length(x))
			printf("          %s\n", json_string_value(x));
}

static void show_record(json_t *r, size_t line)
{
	const char *k = log_str(r, "kind", "");
	char pb[128];
	json_t *a, *x;
	size_t i;

	printf("%5zu %s %-10s %s", line, log_str(r, "time", ""), k, prog_str(r, pb, sizeof(pb)));
	if (!strcmp(k, "run")) {
		printf("%s", "respec");
		json_array_foreach(json_object_get(r, "command"), i, x)
			if (i)
				printf(" %s", json_string_value(x));
		printf(" (host %s, kernel %s, version %s)", log_str(r, "host", "?"),
		       log_str(r, "kernel", "?"), log_str(r, "version", "?"));
	} else if (!strcmp(k, "snapshot")) {
		a = json_object_get(r, "maps");
		printf(": %zu maps\n", json_array_size(a));
		json_array_foreach(a, i, x) {
			printf("        map %ld %s (%s): %ld entries%s%s", log_int(x, "idx", 0),
			       log_str(x, "name", "?"), log_str(x, "type", "?"),
			       log_int(x, "entries", 0),
			       json_is_true(json_object_get(x, "complete")) ? "" : " (partial)",
			       json_is_true(json_object_get(x, "frozen")) ? ", frozen" : "");
			if (json_is_true(json_object_get(x, "watched")))
				printf(", watched: guard slot %ld generation %ld",
				       log_int(x, "guard_slot", -1), log_int(x, "generation", 0));
			printf("\n");
		}
		return;
	} else if (!strcmp(k, "profile")) {
		printf(": %ld sampled packets (1 in %ld), %zu sites, %zu branches",
		       log_int(r, "packets", 0), log_int(r, "sample_rate", 0),
		       json_array_size(json_object_get(r, "sites")),
		       json_array_size(json_object_get(r, "branches")));
	} else if (!strcmp(k, "program")) {
		printf(" %s (round %ld): %ld insns, %zu source lines%s", log_str(r, "role", "?"),
		       log_int(r, "round", 0), log_int(r, "insn_cnt", 0),
		       json_array_size(json_object_get(r, "lines")),
		       json_object_get(r, "jit") ? ", JIT image" : "");
		if (log_int(r, "verified_insns", -1) >= 0)
			printf(", %ld insns processed by the verifier",
			       log_int(r, "verified_insns", 0));
	} else if (!strcmp(k, "remark")) {
		json_t *as = json_object_get(r, "assumption"), *g = json_object_get(r, "guard");

		printf(" [%s] %s", log_str(r, "pass", "?"), log_str(r, "type", "?"));
		show_site(json_object_get(r, "site"));
		printf(": %s\n", log_str(r, "msg", ""));
		if (log_str(as, "text", "")[0])
			printf("        assumed: %s\n", log_str(as, "text", ""));
		if (json_array_size(json_object_get(as, "keys")))
			printf("        keys: %zu hot keys from the profile\n",
			       json_array_size(json_object_get(as, "keys")));
		if (json_is_object(g))
			printf("        guard: slot %ld of %s, generation %ld\n", log_int(g, "slot", 0),
			       log_str(g, "map", "?"), log_int(g, "generation", 0));
		show_block("before", json_object_get(r, "before"));
		show_block("after", json_object_get(r, "after"));
		return;
	} else if (!strcmp(k, "pass_stats")) {
		if (!strcmp(log_str(r, "pass", ""), "*"))
			printf(" total: %ld -> %ld insns, %ld remarks, %ld maps guarded, "
			       "optimizer %.2f ms", log_int(r, "insns_before", 0),
			       log_int(r, "insns_after", 0), log_int(r, "remarks", 0),
			       log_int(r, "guarded_maps", 0), log_real(r, "optimizer_ms", 0));
		else
			printf(" %s: applied %ld, missed %ld, %ld -> %ld insns",
			       log_str(r, "pass", "?"), log_int(r, "applied", 0),
			       log_int(r, "missed", 0), log_int(r, "insns_before", 0),
			       log_int(r, "insns_after", 0));
	} else if (!strcmp(k, "verify")) {
		if (json_is_true(json_object_get(r, "ok")))
			printf(": accepted, %ld insns processed, new id %ld, load %.2f ms",
			       log_int(r, "verified_insns", -1), log_int(r, "new_id", 0),
			       log_real(r, "load_ms", 0));
		else
			printf(": REJECTED (%s)\n%s", log_str(r, "error", "?"),
			       log_str(r, "log", ""));
	} else if (!strcmp(k, "measure")) {
		printf(": %s %s%s%s: %.2f -> %.2f ns/packet", log_str(r, "what", "?"),
		       log_str(r, "method", ""), json_is_string(json_object_get(r, "pass")) ?
		       " pass " : "", log_str(r, "pass", ""), log_real(r, "ns_before", 0),
		       log_real(r, "ns_after", 0));
		if (log_real(r, "ratio", 0) > 0)
			printf(" (ratio %.3f)", log_real(r, "ratio", 0));
		printf(", %ld packets", log_int(r, "packets", 0));
		if (log_int(r, "divergences", -1) >= 0)
			printf(", %ld divergences", log_int(r, "divergences", 0));
	} else if (!strcmp(k, "swap") || !strcmp(k, "rollback") || !strcmp(k, "restore")) {
		json_t *at = json_object_get(r, "attach");

		printf(" at %s", log_str(at, "point", "?"));
		if (!strcmp(k, "swap"))
			printf(": %ld -> %ld", log_int(r, "old_id", 0), log_int(r, "new_id", 0));
		else if (!strcmp(k, "rollback"))
			printf(": %ld -> %ld (%s)", log_int(r, "from_id", 0), log_int(r, "to_id", 0),
			       log_str(r, "reason", ""));
		else
			printf(": %s (original %ld)", log_str(r, "outcome", "?"),
			       log_int(r, "orig_id", 0));
		if (log_str(r, "error", NULL))
			printf(": %s", log_str(r, "error", ""));
	}
	printf("\n");
}

static int cmd_show(const struct log_file *lf, const char *sel, const char *pass,
		    const char *kind)
{
	struct log_prog *progs = NULL, one;
	size_t i, n = 0, shown = 0;
	json_t *out = json_output ? json_array() : NULL;

	log_group(lf, &progs, &n);
	for (i = 0; i < lf->cnt; i++) {
		json_t *r = lf->recs[i];
		const char *k = log_str(r, "kind", "");

		if (kind && strcmp(k, kind))
			continue;
		if (pass && (strcmp(k, "remark") && strcmp(k, "pass_stats") &&
			     strcmp(k, "measure")))
			continue;
		if (pass && strcmp(log_str(r, "pass", ""), pass))
			continue;
		if (sel) {
			json_t *p = json_object_get(r, "prog");

			if (!json_is_object(p))
				continue;
			memset(&one, 0, sizeof(one));
			one.id = log_int(p, "id", 0);
			one.name = log_str(p, "name", "");
			if (!log_prog_match(&one, sel))
				continue;
		}
		shown++;
		if (out)
			json_array_append(out, r);
		else
			show_record(r, lf->lines[i]);
	}
	free(progs);
	if (out)
		json_print(out);
	if (!shown && (sel || pass || kind))
		rs_info("%s: no record matches", lf->path);
	return RS_EXIT_OK;
}

/* ---- stats ----------------------------------------------------------------------------- */

static void num(char *buf, size_t sz, long v)
{
	if (v < 0)
		snprintf(buf, sz, "-");
	else
		snprintf(buf, sz, "%ld", v);
}

static void ns(char *buf, size_t sz, double v)
{
	if (v <= 0 || isnan(v))
		snprintf(buf, sz, "-");
	else
		snprintf(buf, sz, "%.2f", v);
}

static int cmd_stats(const struct log_file *lf, const char *sel)
{
	struct log_prog *progs = NULL;
	json_t *out = json_output ? json_array() : NULL;
	size_t i, n = 0;

	log_group(lf, &progs, &n);
	if (!out)
		printf("%-16s %8s %8s %9s %9s %9s %9s %7s %5s %5s %5s  %s\n", "Program",
		       "Insns", "Insns'", "Verified", "Verified'", "ns/pkt", "ns/pkt'", "Ratio",
		       "Appl", "Miss", "Anal", "Passes fired");
	for (i = 0; i < n; i++) {
		struct log_prog *p = &progs[i];
		long bi = p->before ? log_int(p->before, "insn_cnt", -1) :
			log_int(p->total, "insns_before", -1);
		long ai = p->after ? log_int(p->after, "insn_cnt", -1) :
			log_int(p->total, "insns_after", -1);
		double nb = log_real(p->measure, "ns_before", 0);
		double na = log_real(p->measure, "ns_after", 0);
		char c[8][32];

		if (!log_prog_match(p, sel))
			continue;
		if (out) {
			json_t *o = json_pack("{s:O, s:i, s:i, s:i, s:i, s:i}",
				"prog", p->ident, "round", (int)p->round, "insns_before", (int)bi,
				"insns_after", (int)ai, "verified_before", (int)p->before_verified,
				"verified_after", (int)p->after_verified);

			json_object_set_new(o, "ns_before", nb > 0 ? json_real(nb) : json_null());
			json_object_set_new(o, "ns_after", na > 0 ? json_real(na) : json_null());
			json_object_set_new(o, "ratio", nb > 0 && na > 0 ?
					    json_real(na / nb) : json_null());
			json_object_set_new(o, "passed", json_integer((json_int_t)p->remarks[0]));
			json_object_set_new(o, "missed", json_integer((json_int_t)p->remarks[1]));
			json_object_set_new(o, "analysis", json_integer((json_int_t)p->remarks[2]));
			json_object_set_new(o, "passes_fired", json_string(p->passes));
			json_array_append_new(out, o);
			continue;
		}
		num(c[0], 32, bi);
		num(c[1], 32, ai);
		num(c[2], 32, p->before_verified);
		num(c[3], 32, p->after_verified);
		ns(c[4], 32, nb);
		ns(c[5], 32, na);
		if (nb > 0 && na > 0)
			snprintf(c[6], 32, "%.3f", na / nb);
		else
			snprintf(c[6], 32, "-");
		printf("%-16.16s %8s %8s %9s %9s %9s %9s %7s %5zu %5zu %5zu  %s\n", p->name, c[0],
		       c[1], c[2], c[3], c[4], c[5], c[6], p->remarks[0], p->remarks[1],
		       p->remarks[2], p->passes[0] ? p->passes : "-");
	}
	free(progs);
	if (out)
		json_print(out);
	return RS_EXIT_OK;
}

/* ---- LLVM optimization remarks YAML ---------------------------------------------------- */

static void yaml_str(const char *s)
{
	putchar('\'');
	for (; *s; s++) {
		if (*s == '\'')
			putchar('\'');
		if (*s == '\n' || *s == '\r' || *s == '\t')
			putchar(' ');
		else
			putchar(*s);
	}
	putchar('\'');
}

static void camel(const char *pass, const char *suffix, char *buf, size_t sz)
{
	size_t o = 0;
	bool up = true;

	for (; *pass && o + 1 < sz; pass++) {
		if (*pass == '_') {
			up = true;
			continue;
		}
		buf[o++] = up && *pass >= 'a' && *pass <= 'z' ? *pass - 32 : *pass;
		up = false;
	}
	snprintf(buf + o, sz - o, "%s", suffix);
}

static int cmd_remarks(const struct log_file *lf, const char *sel)
{
	struct log_prog *progs = NULL;
	size_t i, n = 0, idx;

	log_group(lf, &progs, &n);
	for (i = 0; i < n; i++) {
		struct log_prog *p = &progs[i];
		json_t *r;

		if (!log_prog_match(p, sel))
			continue;
		idx = 0;
		while ((r = log_next(lf, p, "remark", true, &idx))) {
			const char *t = log_str(r, "type", ""), *tag;
			json_t *s = json_object_get(r, "site"), *as = json_object_get(r, "assumption");
			json_t *g = json_object_get(r, "guard"), *m = json_object_get(as, "map");
			char name[96];

			tag = !strcmp(t, "passed") ? "Passed" : !strcmp(t, "missed") ? "Missed" :
				"Analysis";
			camel(log_str(r, "pass", "x"), tag, name, sizeof(name));
			printf("--- !%s\nPass:            %s\nName:            %s\n", tag,
			       log_str(r, "pass", "?"), name);
			if (log_str(s, "file", NULL)) {
				printf("DebugLoc:        { File: ");
				yaml_str(log_str(s, "file", ""));
				printf(", Line: %ld, Column: %ld }\n", log_int(s, "line", 0),
				       log_int(s, "col", 0));
			}
			printf("Function:        ");
			yaml_str(log_str(s, "func", p->name));
			printf("\nArgs:\n  - String:          ");
			yaml_str(log_str(r, "msg", ""));
			printf("\n");
			if (json_is_object(m)) {
				printf("  - Map:             ");
				yaml_str(log_str(m, "name", ""));
				printf("\n");
			}
			if (log_str(as, "text", "")[0]) {
				printf("  - Assumption:      ");
				yaml_str(log_str(as, "text", ""));
				printf("\n");
			}
			if (log_int(s, "orig_insn", -1) >= 0)
				printf("  - OrigInsn:        '%ld'\n", log_int(s, "orig_insn", -1));
			if (log_int(s, "new_insn", -1) >= 0)
				printf("  - NewInsn:         '%ld'\n", log_int(s, "new_insn", -1));
			if (json_is_object(g))
				printf("  - GuardSlot:       '%ld'\n  - Generation:      '%ld'\n",
				       log_int(g, "slot", 0), log_int(g, "generation", 0));
			printf("...\n");
		}
	}
	free(progs);
	return RS_EXIT_OK;
}

/* ---- dispatch -------------------------------------------------------------------------- */

int do_log(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "prog",	required_argument,	NULL, 'P' },
		{ "pass",	required_argument,	NULL, 's' },
		{ "kind",	required_argument,	NULL, 'k' },
		{ "jited",	no_argument,		NULL, 'J' },
		{ "yaml",	no_argument,		NULL, 'y' },
		{ "output",	required_argument,	NULL, 'o' },
		{ "json",	no_argument,		NULL, 'j' },
		{ "pretty",	no_argument,		NULL, 'p' },
		{ "verbose",	no_argument,		NULL, 'v' },
		{ "help",	no_argument,		NULL, 'h' },
		{ 0 }
	};
	const char *cmd, *path, *sel = NULL, *pass = NULL, *kind = NULL, *out = NULL;
	bool jited = false, yaml = false;
	struct log_file lf;
	int opt, ret;

	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h")) {
		usage();
		return argc < 1 ? RS_EXIT_USAGE : RS_EXIT_OK;
	}
	cmd = argv[0];
	if (strcmp(cmd, "show") && strcmp(cmd, "diff") && strcmp(cmd, "stats") &&
	    strcmp(cmd, "remarks") && strcmp(cmd, "html"))
		return usage_err("log", "unknown command '%s'", cmd);
	optind = 0;	/* GNU: reinitialize (main stopped at the object with "+") */
	while ((opt = getopt_long(argc, argv, "o:jpvh", opts, NULL)) >= 0) {
		switch (opt) {
		case 'P': sel = optarg; break;
		case 's': pass = optarg; break;
		case 'k': kind = optarg; break;
		case 'J': jited = true; break;
		case 'y': yaml = true; break;
		case 'o': out = optarg; break;
		case 'j': json_output = true; break;
		case 'p': json_output = pretty_output = true; break;
		case 'v': verbose++; break;
		case 'h': usage(); return RS_EXIT_OK;
		default: return usage_err("log", "bad option");
		}
	}
	if (optind >= argc)
		return usage_err("log", "%s: missing LOG", cmd);
	path = argv[optind++];
	if (optind < argc)
		return usage_err("log", "%s: unexpected argument '%s'", cmd, argv[optind]);
	if (!strcmp(cmd, "remarks") && !yaml)
		return usage_err("log", "remarks: only --yaml output exists");
	if (!strcmp(cmd, "html") && !out)
		return usage_err("log", "html: -o FILE is required");
	if (kind && strcmp(cmd, "show"))
		return usage_err("log", "--kind applies to show only");
	if (log_load(path, &lf))
		return RS_EXIT_FAIL;
	if (!strcmp(cmd, "show"))
		ret = cmd_show(&lf, sel, pass, kind);
	else if (!strcmp(cmd, "stats"))
		ret = cmd_stats(&lf, sel);
	else if (!strcmp(cmd, "remarks"))
		ret = cmd_remarks(&lf, sel);
	else if (!strcmp(cmd, "diff"))
		ret = log_cmd_diff(&lf, sel, jited);
	else
		ret = log_cmd_html(&lf, sel, out);
	log_free(&lf);
	return ret;
}
