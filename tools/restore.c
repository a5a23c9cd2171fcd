// SPDX-License-Identifier: BSD-2-Clause
/*
 * restore.c - respec restore { [all] | PROG | list | help } [journal DIR]: put the original
 * programs back after a crash of the agent (docs/swap.md).
 *
 * Works from the swap journal (default /run/respec/journal): for every entry (all) or the
 * entries whose original or one of ours is PROG, the original is swapped back by
 * compare-and-swap when one of ours is still at the attach point; a foreign program found
 * there is left alone (exit 1).  `list` prints the journal without touching anything.
 * One line per attach point on stdout (or a JSON array with -j); diagnostics on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "tools/main.h"

static int do_help(void)
{
	fprintf(stderr,
		"Usage: %s restore [all] [journal DIR]\n"
		"       %s restore PROG [journal DIR]\n"
		"       %s restore list [journal DIR]\n"
		"       %s restore help\n\n"
		"Put the original programs recorded in the swap journal back at their attach\n"
		"points (only where one of respec's programs is still there), unpin them and\n"
		"close their journal entries.  PROG selects the entries whose original or\n"
		"replacement it is.  When all is done and no journal entry is left open, the\n"
		"pinned guard watcher (" RS_GUARD_PIN_DIR ") is removed too: no specialized\n"
		"program needs it any more.  list prints the open entries.  DIR is the directory that\n"
		"holds the journal file (default " RS_JOURNAL_DIR ", i.e. " RS_JOURNAL_DIR "/journal).\n\n"
		"PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
		"          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n",
		bin_name, bin_name, bin_name, bin_name);
	return RS_EXIT_OK;
}

static json_t *entry_json(const struct rs_journal_entry *e)
{
	char where[160];

	return json_pack("{s:s, s:s, s:s, s:i, s:i, s:s, s:I}",
			 "point", rs_attach_point_str(&e->pt, where, sizeof(where)),
			 "kind", rs_attach_kind_name(e->pt.kind), "key", e->key,
			 "orig_id", (int)e->orig_id, "cur_id", (int)e->cur_id, "pin", e->pin,
			 "time", (json_int_t)e->time);
}

struct report_ctx {
	json_t *arr;
	size_t bad;
};

static void report(const struct rs_restore_report *r, void *ctx)
{
	struct report_ctx *c = ctx;
	const struct rs_journal_entry *e = r->entry;
	char where[160];
	json_t *o;

	if (r->outcome == RS_RESTORE_FOREIGN || r->outcome == RS_RESTORE_FAILED)
		c->bad++;
	if (json_output) {
		o = entry_json(e);
		json_object_set_new(o, "found_id", json_integer(r->found_id));
		json_object_set_new(o, "outcome", json_string(rs_restore_outcome_name(r->outcome)));
		if (r->err)
			json_object_set_new(o, "error", json_string(rs_strerror(r->err)));
		json_array_append_new(c->arr, o);
		return;
	}
	rs_attach_point_str(&e->pt, where, sizeof(where));
	switch (r->outcome) {
	case RS_RESTORE_DONE:
		printf("%s: original prog %u restored (replaced prog %u)\n", where, e->orig_id,
		       r->found_id);
		break;
	case RS_RESTORE_FOREIGN:
		printf("%s: prog %u is not ours: left in place (original prog %u not restored)\n",
		       where, r->found_id, e->orig_id);
		break;
	case RS_RESTORE_FAILED:
		printf("%s: original prog %u: %s\n", where, e->orig_id, rs_strerror(r->err));
		break;
	default:
		printf("%s: original prog %u: %s\n", where, e->orig_id,
		       rs_restore_outcome_name(r->outcome));
	}
}

static int do_list(const char *dir)
{
	struct rs_journal_entry *v = NULL;
	size_t cnt = 0, i;
	json_t *arr;
	char where[160];
	int err;

	err = rs_journal_list(dir, &v, &cnt);
	if (err) {
		p_err("journal: %s", rs_strerror(err));
		return RS_EXIT_FAIL;
	}
	if (json_output) {
		arr = json_array();
		for (i = 0; i < cnt; i++)
			json_array_append_new(arr, entry_json(&v[i]));
		json_print(arr);
	} else {
		for (i = 0; i < cnt; i++)
			printf("%s: original prog %u (pinned %s), ours prog %u\n",
			       rs_attach_point_str(&v[i].pt, where, sizeof(where)), v[i].orig_id,
			       v[i].pin, v[i].cur_id);
	}
	free(v);
	return RS_EXIT_OK;
}

/* Every original is back: the guard's pinned watcher protects nothing any more. */
static void unpin_guard_if_unused(const char *dir)
{
	struct rs_journal_entry *v = NULL;
	size_t cnt = 0;

	if (rs_journal_list(dir, &v, &cnt) || cnt) {
		free(v);
		return;
	}
	free(v);
	if (!access(RS_GUARD_PIN_DIR, F_OK) && rs_guard_unpin(NULL))
		p_err("guard: cannot remove the pins under %s", RS_GUARD_PIN_DIR);
}

int do_restore(int argc, char **argv)
{
	struct report_ctx ctx = {};
	struct rs_prog_spec spec;
	const char *dir = NULL;
	bool all = false, list = false, have_spec = false;
	uint32_t id = 0;
	int i = 0, used, err;

	if (argc >= 1 && !strcmp(argv[0], "help"))
		return do_help();
	if (argc >= 1 && !strcmp(argv[0], "all")) {
		all = true;
		i = 1;
	} else if (argc >= 1 && !strcmp(argv[0], "list")) {
		list = true;
		i = 1;
	} else if (argc >= 1 && strcmp(argv[0], "journal")) {
		if (rs_prog_spec_parse(argc, argv, &spec, &used))
			return usage_err("restore", "bad PROG");
		have_spec = true;
		i = used;
	} else {
		all = true;
	}
	while (i < argc) {
		if (!strcmp(argv[i], "journal") && i + 1 < argc) {
			dir = argv[i + 1];
			i += 2;
			continue;
		}
		return usage_err("restore", "unexpected '%s'", argv[i]);
	}
	if (list)
		return do_list(dir);

	RS_OPTS(rs_restore_opts, opts, .journal_dir = dir, .cb = report, .ctx = &ctx);
	ctx.arr = json_array();
	if (have_spec) {
		char what[64];

		err = rs_prog_spec_resolve(&spec, &id);
		if (err) {
			p_err("prog %s: %s", rs_prog_spec_str(&spec, what, sizeof(what)),
			      rs_strerror(err));
			json_decref(ctx.arr);
			return RS_EXIT_FAIL;
		}
		err = rs_restore_prog(id, &opts);
	} else {
		(void)all;
		err = rs_restore_all(&opts);
		if (!err && !ctx.bad)
			unpin_guard_if_unused(dir);
	}
	if (json_output)
		json_print(ctx.arr);
	else
		json_decref(ctx.arr);
	if (err == -RS_ERR_NOT_FOUND) {
		p_err("prog %u: not in the swap journal", id);
		return RS_EXIT_FAIL;
	}
	if (err && err != -EBUSY)
		p_err("restore: %s", rs_strerror(err));
	return err || ctx.bad ? RS_EXIT_FAIL : RS_EXIT_OK;
}
