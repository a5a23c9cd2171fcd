// SPDX-License-Identifier: BSD-2-Clause
/*
 * agent.c - `respec agent`: run the optimizer in the background (docs/agent.md).
 *
 *   respec agent [--config FILE] [--once] [--log FILE] [--events FILE] [--metrics FILE]
 *                [--metrics-listen ADDR:PORT] [--duration S] [-v]
 *   respec agent check FILE      validate a config file (strict) and print it as JSON
 *
 * Options given here override the config file.  Transitions of every attach point's state
 * machine are printed on stderr with -v; the optimization log (`respec log` reads it) goes to
 * --log, the agent's own event stream (state transitions, guards, canaries) to --events.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "tools/main.h"

static int agent_help(void)
{
	fprintf(stderr,
		"Usage: %s agent [--config FILE] [--once] [--log FILE] [--events FILE]\n"
		"                [--metrics FILE] [--metrics-listen ADDR:PORT] [--duration S] [-v]\n"
		"       %s agent check FILE\n"
		"       %s agent help\n\n"
		"Discovers the XDP and TC programs the config selects (default: all), and for\n"
		"each attach point: fetches the original (capture, else lift), profiles it, takes\n"
		"a guarded snapshot of its maps, specializes it, has the verifier and a canary\n"
		"replay accept it, and swaps it in by compare-and-swap; then watches guards,\n"
		"drift and cost.  SIGTERM/SIGINT put every original back.  --once: one pass, then\n"
		"exit leaving the specialized programs in place (guards stay active; `respec\n"
		"restore all` undoes them).  -v prints every state transition.  --log: the\n"
		"optimization log (`respec log`); --events: every transition as JSON lines.\n",
		bin_name, bin_name, bin_name);
	return RS_EXIT_OK;
}

static json_t *config_json(const struct rs_agent_config *c)
{
	json_t *sel = json_array(), *exc = json_array();
	size_t i;

	for (i = 0; i < c->select_cnt + c->exclude_cnt; i++) {
		const struct rs_agent_selector *s = i < c->select_cnt ? &c->select[i] :
						    &c->exclude[i - c->select_cnt];

		json_array_append_new(i < c->select_cnt ? sel : exc,
			json_pack("{s:s,s:I,s:s,s:s,s:I}", "name", s->name, "id",
				  (json_int_t)s->id, "ifname", s->ifname, "netns", s->netns,
				  "kinds", (json_int_t)s->kinds));
	}
	return json_pack("{s:s,s:o,s:o,s:f,s:f,s:f,s:f,s:f,s:I,s:f,s:f,s:f,s:f,s:f,s:I,s:f,"
			 "s:s,s:s,s:s,s:s,s:s,s:s,s:b}",
			 "path", c->path, "select", sel, "exclude", exc, "tick_s", c->tick_s,
			 "discover_interval_s", c->discover_interval_s,
			 "profile_window_s", c->profile_window_s, "base_window_s",
			 c->base_window_s, "settle_s", c->settle_s, "sample_rate",
			 (json_int_t)c->sample_rate, "reprofile_interval_s",
			 c->reprofile_interval_s, "reoptimize_interval_s",
			 c->reoptimize_interval_s, "revert_ratio", c->revert_ratio,
			 "retry_s", c->retry_s, "foreign_backoff_s", c->foreign_backoff_s,
			 "canary_max_packets",
			 (json_int_t)c->canary_max_packets, "drift_min_coverage",
			 c->drift_min_coverage, "log", c->log_path, "events", c->events_path,
			 "metrics_file",
			 c->metrics_path, "metrics_listen", c->metrics_listen, "journal_dir",
			 c->journal_dir, "pin_dir", c->pin_dir, "capture", c->capture);
}

static int set_str(char *dst, size_t sz, const char *v, const char *opt)
{
	if (strlen(v) >= sz)
		return usage_err("agent", "%s: too long", opt);
	snprintf(dst, sz, "%s", v);
	return 0;
}

int do_agent(int argc, char **argv)
{
	RS_OPTS(rs_agent_run_opts, ro);
	struct rs_agent_config *cfg;
	const char *config = NULL, *log = NULL, *metrics = NULL, *listen = NULL, *events = NULL;
	int i, err, ret = RS_EXIT_FAIL;
	char *end;

	if (argc >= 1 && (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
			  !strcmp(argv[0], "-h")))
		return agent_help();
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return RS_EXIT_FAIL;
	rs_agent_config_defaults(cfg);
	if (argc >= 1 && !strcmp(argv[0], "check")) {
		if (argc != 2) {
			free(cfg);
			return usage_err("agent", "check FILE");
		}
		if (rs_agent_config_load(argv[1], cfg)) {
			free(cfg);
			return RS_EXIT_FAIL;
		}
		if (json_output)
			json_print(config_json(cfg));
		else
			printf("%s: ok\n", argv[1]);
		free(cfg);
		return RS_EXIT_OK;
	}
	for (i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(o, "--once")) {
			ro.once = true;
			continue;
		}
		if (!strcmp(o, "-v") || !strcmp(o, "--verbose")) {
			verbose++;
			continue;
		}
		if (!strcmp(o, "-j") || !strcmp(o, "--json")) {
			json_output = true;
			continue;
		}
		if (!v) {
			free(cfg);
			return usage_err("agent", "option '%s' needs a value", o);
		}
		i++;
		if (!strcmp(o, "--config") || !strcmp(o, "-c")) {
			config = v;
		} else if (!strcmp(o, "--log")) {
			log = v;
		} else if (!strcmp(o, "--events")) {
			events = v;
		} else if (!strcmp(o, "--metrics")) {
			metrics = v;
		} else if (!strcmp(o, "--metrics-listen")) {
			listen = v;
		} else if (!strcmp(o, "--duration")) {
			ro.duration_s = strtod(v, &end);
			if (*end || !(ro.duration_s > 0)) {
				free(cfg);
				return usage_err("agent", "--duration: '%s' is not a positive number",
						 v);
			}
		} else {
			free(cfg);
			return usage_err("agent", "unknown option '%s'", o);
		}
	}
	if (config && rs_agent_config_load(config, cfg))
		goto out;
	if ((log && set_str(cfg->log_path, sizeof(cfg->log_path), log, "--log")) ||
	    (events && set_str(cfg->events_path, sizeof(cfg->events_path), events, "--events")) ||
	    (metrics && set_str(cfg->metrics_path, sizeof(cfg->metrics_path), metrics,
				"--metrics")) ||
	    (listen && set_str(cfg->metrics_listen, sizeof(cfg->metrics_listen), listen,
			       "--metrics-listen"))) {
		ret = RS_EXIT_USAGE;
		goto out;
	}
	{
		/* "respec agent ARGS" for the optimization log's run record */
		char **cmd = calloc((size_t)argc + 3, sizeof(*cmd));

		if (cmd) {
			cmd[0] = (char *)bin_name;
			cmd[1] = "agent";
			memcpy(cmd + 2, argv, (size_t)argc * sizeof(*argv));
			ro.argc = argc + 2;
			ro.argv = cmd;
		}
		err = rs_agent_run(cfg, &ro);
		free(cmd);
	}
	if (err)
		p_err("agent: %s", rs_strerror(err));
	else
		ret = RS_EXIT_OK;
out:
	free(cfg);
	return ret;
}
