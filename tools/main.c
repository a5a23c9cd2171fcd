// SPDX-License-Identifier: BSD-2-Clause
/*
 * main.c - respec command line entry: global options, OBJECT dispatch, logging to stderr.
 *
 *   respec [OPTIONS] OBJECT COMMAND [ARGS]
 *
 * Grammar and exit codes follow bpftool: machine output on stdout, diagnostics on stderr,
 * exit 0 ok / 1 failure / 2 usage.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "tools/main.h"

bool json_output;
bool pretty_output;
int verbose;
const char *bin_name = "respec";

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int do_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "prog",	do_prog,	"list, show, dump and lift loaded XDP/TC programs" },
	{ "trace",	do_trace,	"generate synthetic pcap traces from a scenario" },
	{ "replay",	do_replay,	"run programs over a pcap in isolation: divergences, ns/packet" },
	{ "profile",	do_profile,	"hot keys, branch probabilities and cost of a live program" },
	{ "log",	do_log,		"render optimization logs: show, diff, stats, remarks, html" },
	{ "optimize",	do_optimize,	"specialize a program for its maps and traffic: ELF object or pin" },
	{ "agent",	do_agent,	"run the optimizer on live XDP/TC programs (daemon or --once)" },
	{ "restore",	do_restore,	"put original programs back from the swap journal" },
	{ "help",	do_help,	"this text" },
	{ 0 }
};

static int do_help(int argc, char **argv)
{
	const struct cmd *c;

	printf("Usage: %s [OPTIONS] OBJECT COMMAND [ARGS]\n"
	       "       %s OBJECT help\n\n"
	       "OBJECT:\n", bin_name, bin_name);
	for (c = cmds; c->name; c++)
		printf("  %-10s %s\n", c->name, c->summary);
	printf("\nOPTIONS:\n"
	       "  -j, --json      machine-readable JSON on stdout\n"
	       "  -p, --pretty    pretty-printed JSON (implies -j)\n"
	       "  -v, --verbose   more diagnostics on stderr (repeat for debug)\n"
	       "  -h, --help      this text\n"
	       "  -V, --version   version\n\n"
	       "PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
	       "          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n");
	return RS_EXIT_OK;
}

void p_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", bin_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

int usage_err(const char *obj, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", bin_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\ntry '%s %s%shelp'\n", bin_name, obj ? obj : "", obj ? " " : "");
	va_end(ap);
	return RS_EXIT_USAGE;
}

void json_print(json_t *v)
{
	size_t flags = pretty_output ? JSON_INDENT(2) : JSON_COMPACT;

	json_dumpf(v, stdout, flags | JSON_ENCODE_ANY);
	fputc('\n', stdout);
	json_decref(v);
}

bool is_prefix(const char *pfx, const char *str)
{
	return pfx && str && *pfx && !strncmp(str, pfx, strlen(pfx));
}

static void log_stderr(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_INFO && verbose < 1)
		return;
	if (level == RS_LOG_DEBUG && verbose < 2)
		return;
	vfprintf(stderr, fmt, ap);
	if (*fmt && fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json",	no_argument,	NULL, 'j' },
		{ "pretty",	no_argument,	NULL, 'p' },
		{ "verbose",	no_argument,	NULL, 'v' },
		{ "help",	no_argument,	NULL, 'h' },
		{ "version",	no_argument,	NULL, 'V' },
		{ 0 }
	};
	const struct cmd *c;
	int opt;

	rs_set_log_fn(log_stderr);
	rs_route_libbpf_log();
	/* Stop at the first non-option so OBJECT COMMAND options stay for the subcommand. */
	while ((opt = getopt_long(argc, argv, "+jpvhV", opts, NULL)) >= 0) {
		switch (opt) {
		case 'j': json_output = true; break;
		case 'p': json_output = pretty_output = true; break;
		case 'v': verbose++; break;
		case 'h': return do_help(0, NULL);
		case 'V':
			if (json_output) {
				json_print(json_pack("{s:s}", "version", RS_VERSION));
			} else {
				printf("respec %s\n", RS_VERSION);
			}
			return RS_EXIT_OK;
		default:
			return usage_err(NULL, "unknown option");
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1) {
		do_help(0, NULL);
		return RS_EXIT_USAGE;
	}
	for (c = cmds; c->name; c++)
		if (!strcmp(argv[0], c->name))
			return c->fn(argc - 1, argv + 1);
	return usage_err(NULL, "unknown object '%s'", argv[0]);
}
