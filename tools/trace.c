// SPDX-License-Identifier: BSD-2-Clause
/*
 * trace.c - respec trace { gen | help }: synthetic pcap traces from a scenario's "traffic"
 * section (docs/traces.md).  A thin front end over benchmarks/tracegen; the scenario file is
 * read with instrument's rs_scenario_load.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchmarks/tracegen.h"
#include "instrument/instrument.h"
#include "optimizer/common.h"
#include "tools/main.h"

static int do_trace_help(void)
{
	printf(		"Usage: %s trace gen --scenario FILE --profile PROFILE --packets N\n"
		"                        [--seed S] [--flows N] [--zipf S] [--truth FILE.json]\n"
		"                        [--top K] -o FILE.pcap\n"
		"       %s trace help\n\n"
		"PROFILE := { high | low | none | shift }\n"
		"  high   Zipf s=1.2 over 1k flows (a few hot flows)\n"
		"  low    Zipf s=0.7 over 100k flows (long tail)\n"
		"  none   uniform over 1M flows\n"
		"  shift  like high, the hot set changes halfway through the trace\n\n"
		"Writes a pcap (Ethernet) from the scenario's \"traffic\" section; the same seed gives\n"
		"the same bytes.  --truth writes the true top-K flows (default K 100) as JSON.\n",
		bin_name, bin_name);
	return RS_EXIT_OK;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	double d;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*v = strtoull(s, &end, 0);
	if (!errno && !*end)
		return 0;
	/* 1e6 style */
	d = strtod(s, &end);
	if (*end || d < 0 || d > 1.8e19 || d != (double)(uint64_t)d)
		return -EINVAL;
	*v = (uint64_t)d;
	return 0;
}

static void progress(uint64_t done, uint64_t total, void *ctx)
{
	fprintf(stderr, "trace: %3u%% (%" PRIu64 "/%" PRIu64 " packets)\n",
		(unsigned int)(done * 100 / total), done, total);
}

static int write_truth(struct rs_tracegen *g, FILE *f, const char *path, size_t k)
{
	json_t *t = rs_tracegen_truth(g, k);
	int err = 0;

	if (!t) {
		p_err("truth: out of memory");
		return -ENOMEM;
	}
	if (json_dumpf(t, f, JSON_INDENT(2) | JSON_SORT_KEYS) || fputc('\n', f) == EOF ||
	    fflush(f)) {
		p_err("%s: cannot write the truth file: %s", path, strerror(errno ?: EIO));
		err = -EIO;
	}
	json_decref(t);
	return err;
}

static int do_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "scenario",	required_argument,	NULL, 's' },
		{ "profile",	required_argument,	NULL, 'P' },
		{ "packets",	required_argument,	NULL, 'n' },
		{ "seed",	required_argument,	NULL, 'S' },
		{ "flows",	required_argument,	NULL, 'f' },
		{ "zipf",	required_argument,	NULL, 'z' },
		{ "truth",	required_argument,	NULL, 't' },
		{ "top",	required_argument,	NULL, 'k' },
		{ "output",	required_argument,	NULL, 'o' },
		{ "help",	no_argument,		NULL, 'h' },
		{ 0 }
	};
	const char *scenario = NULL, *profile = NULL, *out = NULL, *truth = NULL;
	uint64_t packets = 0, seed = 1, flows = 0, top = 100;
	bool have_packets = false;
	struct rs_scenario *sc = NULL;
	json_t *traffic;
	struct rs_tracegen *g = NULL;
	FILE *truth_f = NULL;
	const struct rs_tracegen_stats *st;
	double zipf = 0;
	char *end;
	int opt, err, ret = RS_EXIT_FAIL;

	optind = 0;
	while ((opt = getopt_long(argc, argv, "s:P:n:S:f:z:t:k:o:h", opts, NULL)) >= 0) {
		switch (opt) {
		case 's': scenario = optarg; break;
		case 'P': profile = optarg; break;
		case 'o': out = optarg; break;
		case 't': truth = optarg; break;
		case 'n':
			if (parse_u64(optarg, &packets) || !packets)
				return usage_err("trace", "--packets: not a positive number: '%s'",
						 optarg);
			have_packets = true;
			break;
		case 'S':
			if (parse_u64(optarg, &seed))
				return usage_err("trace", "--seed: not a number: '%s'", optarg);
			break;
		case 'f':
			if (parse_u64(optarg, &flows) || !flows || flows > 100000000)
				return usage_err("trace", "--flows: not in 1..1e8: '%s'", optarg);
			break;
		case 'k':
			if (parse_u64(optarg, &top) || !top)
				return usage_err("trace", "--top: not a positive number: '%s'", optarg);
			break;
		case 'z':
			zipf = strtod(optarg, &end);
			if (*end || zipf <= 0 || zipf > 10)
				return usage_err("trace", "--zipf: not in (0, 10]: '%s'", optarg);
			break;
		case 'h':
			return do_trace_help();
		default:
			return usage_err("trace", "bad option");
		}
	}
	if (optind < argc)
		return usage_err("trace", "unexpected argument '%s'", argv[optind]);
	if (!scenario || !profile || !have_packets || !out)
		return usage_err("trace", "gen needs --scenario, --profile, --packets and -o");

	RS_OPTS(rs_tracegen_opts, gopts, .packets = packets, .seed = seed,
		.flows = (uint32_t)flows, .zipf_s = zipf, .name = scenario);
	if (rs_trace_profile_parse(profile, &gopts.profile)) {
		p_err("unknown profile '%s' (high, low, none or shift)", profile);
		return RS_EXIT_FAIL;
	}
	if (packets >= 1000000) {
		gopts.progress = progress;
		gopts.progress_every = packets / 10;
	}
	if (rs_scenario_load(scenario, &sc))
		return RS_EXIT_FAIL;	/* the library named the file and the problem */
	traffic = rs_scenario_traffic(sc);
	if (!traffic) {
		p_err("%s: no \"traffic\" section", scenario);
		goto out;
	}
	if (truth) {	/* fail before the long part, not after it */
		truth_f = fopen(truth, "w");
		if (!truth_f) {
			p_err("%s: cannot write the truth file: %s", truth, strerror(errno));
			goto out;
		}
	}
	err = rs_tracegen_new(traffic, &gopts, &g);
	if (err) {
		if (err == -ENOMEM)
			p_err("out of memory");
		goto out;	/* the library named the field */
	}
	err = rs_tracegen_write_pcap(g, out);
	if (err) {
		if (strcmp(out, "-"))
			unlink(out);
		goto out;
	}
	if (truth_f && write_truth(g, truth_f, truth, top))
		goto out;
	st = rs_tracegen_stats(g);
	if (json_output) {
		json_print(json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
				     "pcap", out, "profile", profile,
				     "seed", (json_int_t)seed, "packets", (json_int_t)st->packets,
				     "bytes", (json_int_t)st->bytes,
				     "flow", (json_int_t)st->kind[RS_TRACE_KIND_FLOW],
				     "icmp", (json_int_t)st->kind[RS_TRACE_KIND_ICMP],
				     "arp", (json_int_t)st->kind[RS_TRACE_KIND_ARP],
				     "miss", (json_int_t)st->kind[RS_TRACE_KIND_MISS],
				     "ipv6", (json_int_t)st->ipv6,
				     "vlan", (json_int_t)st->vlan));
	} else if (strcmp(out, "-")) {
		printf("%s: %" PRIu64 " packets, %" PRIu64 " bytes, profile %s, seed %" PRIu64 "\n",
		       out, st->packets, st->bytes, profile, seed);
	}
	ret = RS_EXIT_OK;
out:
	if (truth_f) {
		fclose(truth_f);
		if (ret)
			unlink(truth);
	}
	rs_tracegen_free(g);
	rs_scenario_free(sc);
	return ret;
}

int do_trace(int argc, char **argv)
{
	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h")) {
		do_trace_help();
		return argc < 1 ? RS_EXIT_USAGE : RS_EXIT_OK;
	}
	if (!strcmp(argv[0], "gen"))
		return do_gen(argc, argv);
	return usage_err("trace", "unknown command '%s'", argv[0]);
}
