// SPDX-License-Identifier: BSD-2-Clause
/*
 * config.c - the agent's configuration file: strict JSON (jansson) into struct
 * rs_agent_config, and the selector that decides which attach points the agent may touch.
 *
 * Strict means: every key must be known, every value must have the documented type and range,
 * and each error names the file and the key path ("agent.json: profile.windw_s: unknown key"),
 * so a typo never silently falls back to a default.  Keys absent from the file keep their
 * defaults (rs_agent_config_defaults).  The format is in docs/agent.md.
 */
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/agent.h"
#include "optimizer/optimizer.h"

enum field_type { F_DOUBLE, F_SIZE, F_U32, F_U64, F_BOOL, F_STR, F_SECTION, F_SELECTORS };

struct field {
	const char *key;
	enum field_type type;
	size_t off;			/* into struct rs_agent_config */
	size_t size;			/* strings: buffer size; selectors: which list */
	double min, max;
	const struct field *sub;	/* F_SECTION */
};

#define OFF(f) offsetof(struct rs_agent_config, f)
#define D(k, f, lo, hi) { k, F_DOUBLE, OFF(f), 0, lo, hi, NULL }
#define Z(k, f, lo, hi) { k, F_SIZE, OFF(f), 0, lo, hi, NULL }
#define U(k, f, lo, hi) { k, F_U32, OFF(f), 0, lo, hi, NULL }
#define U64(k, f, lo, hi) { k, F_U64, OFF(f), 0, lo, hi, NULL }
#define B(k, f) { k, F_BOOL, OFF(f), 0, 0, 0, NULL }
#define S(k, f) { k, F_STR, OFF(f), sizeof(((struct rs_agent_config *)0)->f), 0, 0, NULL }
#define SEC(k, t) { k, F_SECTION, 0, 0, 0, 0, t }
#define END { NULL, 0, 0, 0, 0, 0, NULL }

static const struct field profile_fields[] = {
	D("base_window_s", base_window_s, 0, 3600),
	D("window_s", profile_window_s, 0.05, 3600),
	U("sample_rate", sample_rate, 1, 1u << 30),
	U("sample_burst", sample_burst, 1, RS_PROF_MAX_BURST),
	Z("top_k", top_k, 1, 4096),
	D("interval_s", reprofile_interval_s, 0, 1e7),
	D("drift_min_coverage", drift_min_coverage, 0, 1),
	END
};

static const struct field canary_fields[] = {
	Z("max_packets", canary_max_packets, 1, 1 << 20),
	Z("min_packets", canary_min_packets, 0, 1 << 20),
	END
};

static const struct field revert_fields[] = {
	D("delay_s", cost_delay_s, 0, 3600),
	D("window_s", cost_window_s, 0, 3600),
	D("ratio", revert_ratio, 1, 100),
	U64("min_packets", cost_min_packets, 0, 1e15),
	END
};

static const struct field optimizer_fields[] = {
	Z("max_hot_keys", max_hot_keys, 0, 1024),
	D("min_hot_share", min_hot_share, 0, 1),
	Z("small_table_max", small_table_max, 0, 65536),
	S("passes", passes),
	END
};

static const struct field metrics_fields[] = {
	S("file", metrics_path),
	S("listen", metrics_listen),
	D("interval_s", metrics_interval_s, 0.1, 3600),
	END
};

static const struct field top_fields[] = {
	{ "select", F_SELECTORS, 0, 0, 0, 0, NULL },
	{ "exclude", F_SELECTORS, 0, 1, 0, 0, NULL },
	D("tick_s", tick_s, 0.01, 10),
	D("discover_interval_s", discover_interval_s, 0.1, 86400),
	D("settle_s", settle_s, 0, 3600),
	D("retry_s", retry_s, 0.1, 86400),
	D("foreign_backoff_s", foreign_backoff_s, 0, 86400),
	D("reoptimize_interval_s", reoptimize_interval_s, 0, 1e7),
	SEC("profile", profile_fields),
	SEC("canary", canary_fields),
	SEC("revert", revert_fields),
	SEC("optimizer", optimizer_fields),
	SEC("metrics", metrics_fields),
	S("log", log_path),
	S("events", events_path),
	S("journal_dir", journal_dir),
	S("pin_dir", pin_dir),
	S("capture_dir", capture_dir),
	B("capture", capture),
	END
};

void rs_agent_config_defaults(struct rs_agent_config *c)
{
	memset(c, 0, sizeof(*c));
	c->tick_s = 0.1;
	c->discover_interval_s = 10;
	c->base_window_s = 1;
	c->profile_window_s = 3;
	c->sample_rate = RS_PROF_DEFAULT_RATE;
	c->sample_burst = RS_PROF_DEFAULT_BURST;
	c->top_k = 8;
	c->reprofile_interval_s = 300;
	c->reoptimize_interval_s = 600;
	c->drift_min_coverage = 0.5;
	c->settle_s = 0.3;
	c->retry_s = 60;
	c->foreign_backoff_s = 60;
	c->canary_max_packets = 2048;
	c->canary_min_packets = 1;
	c->cost_delay_s = 1;
	c->cost_window_s = 2;
	c->revert_ratio = 1.10;
	c->cost_min_packets = 1000;
	c->max_hot_keys = 8;
	c->min_hot_share = 0.01;
	c->small_table_max = 16;
	c->metrics_interval_s = 5;
	c->capture = true;
}

static int bad(const char *file, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(const char *file, const char *path, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rs_warn("%s: %s: %s\n", file, path, msg);
	return -RS_ERR_FORMAT;
}

static int kind_bit(const char *s, uint32_t *bit)
{
	static const struct { const char *name; uint32_t bit; } kinds[] = {
		{ "xdp", RS_SEL_XDP }, { "tc", RS_SEL_TC }, { "tcx", RS_SEL_TCX },
		{ "prog_array", RS_SEL_PROG_ARRAY },
	};
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(kinds); i++)
		if (!strcmp(s, kinds[i].name)) {
			*bit = kinds[i].bit;
			return 0;
		}
	return -EINVAL;
}

static int copy_str(const char *file, const char *path, json_t *v, char *dst, size_t size)
{
	if (!json_is_string(v))
		return bad(file, path, "expected a string");
	if (json_string_length(v) >= size)
		return bad(file, path, "longer than %zu bytes", size - 1);
	snprintf(dst, size, "%s", json_string_value(v));
	return 0;
}

static int parse_selector(const char *file, const char *path, json_t *o,
			  struct rs_agent_selector *sel)
{
	char p[160];
	const char *k;
	json_t *v;
	int err;

	if (!json_is_object(o))
		return bad(file, path, "expected an object");
	memset(sel, 0, sizeof(*sel));
	json_object_foreach(o, k, v) {
		snprintf(p, sizeof(p), "%s.%s", path, k);
		if (!strcmp(k, "name")) {
			err = copy_str(file, p, v, sel->name, sizeof(sel->name));
		} else if (!strcmp(k, "ifname")) {
			err = copy_str(file, p, v, sel->ifname, sizeof(sel->ifname));
		} else if (!strcmp(k, "netns")) {
			err = copy_str(file, p, v, sel->netns, sizeof(sel->netns));
		} else if (!strcmp(k, "id")) {
			if (!json_is_integer(v) || json_integer_value(v) <= 0 ||
			    json_integer_value(v) > UINT32_MAX)
				return bad(file, p, "expected a program id (positive integer)");
			sel->id = (uint32_t)json_integer_value(v);
			err = 0;
		} else if (!strcmp(k, "kind")) {
			json_t *arr = json_is_array(v) ? v : NULL, *e;
			size_t i;
			uint32_t bit;

			if (!arr && !json_is_string(v))
				return bad(file, p, "expected a kind or a list of kinds "
					   "(xdp, tc, tcx, prog_array)");
			if (!arr) {
				if (kind_bit(json_string_value(v), &bit))
					return bad(file, p, "unknown kind '%s' (xdp, tc, tcx, "
						   "prog_array)", json_string_value(v));
				sel->kinds |= bit;
			}
			json_array_foreach(arr, i, e) {
				if (!json_is_string(e) || kind_bit(json_string_value(e), &bit))
					return bad(file, p, "element %zu: expected one of xdp, tc, "
						   "tcx, prog_array", i);
				sel->kinds |= bit;
			}
			err = 0;
		} else {
			return bad(file, p, "unknown key (name, id, ifname, netns, kind)");
		}
		if (err)
			return err;
	}
	return 0;
}

static int parse_selectors(const char *file, const char *key, json_t *v,
			   struct rs_agent_selector *sels, size_t *cnt)
{
	char p[64];
	json_t *e;
	size_t i;
	int err;

	if (!json_is_array(v))
		return bad(file, key, "expected a list of selectors");
	if (json_array_size(v) > RS_AGENT_MAX_SELECTORS)
		return bad(file, key, "at most %d selectors", RS_AGENT_MAX_SELECTORS);
	json_array_foreach(v, i, e) {
		snprintf(p, sizeof(p), "%s[%zu]", key, i);
		err = parse_selector(file, p, e, &sels[i]);
		if (err)
			return err;
	}
	*cnt = json_array_size(v);
	return 0;
}

static int parse_number(const char *file, const char *path, json_t *v, const struct field *f,
			double *out)
{
	double d;

	if (!json_is_number(v) || json_is_true(v) || json_is_false(v))
		return bad(file, path, "expected a number");
	if (f->type != F_DOUBLE && !json_is_integer(v))
		return bad(file, path, "expected an integer");
	d = json_number_value(v);
	if (isnan(d) || d < f->min || d > f->max)
		return bad(file, path, "%g is out of range [%g, %g]", d, f->min, f->max);
	*out = d;
	return 0;
}

static int parse_object(const char *file, const char *prefix, json_t *o,
			const struct field *fields, struct rs_agent_config *c)
{
	const struct field *f;
	char path[160];
	const char *k;
	json_t *v;
	double d = 0;
	int err;

	if (!json_is_object(o))
		return bad(file, *prefix ? prefix : "(top level)", "expected an object");
	json_object_foreach(o, k, v) {
		char *base = (char *)c;

		snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "." : "", k);
		for (f = fields; f->key; f++)
			if (!strcmp(f->key, k))
				break;
		if (!f->key)
			return bad(file, path, "unknown key");
		switch (f->type) {
		case F_SECTION:
			err = parse_object(file, path, v, f->sub, c);
			break;
		case F_SELECTORS:
			err = f->size ? parse_selectors(file, path, v, c->exclude, &c->exclude_cnt)
				      : parse_selectors(file, path, v, c->select, &c->select_cnt);
			break;
		case F_STR:
			err = copy_str(file, path, v, base + f->off, f->size);
			break;
		case F_BOOL:
			if (!json_is_boolean(v))
				return bad(file, path, "expected true or false");
			*(bool *)(base + f->off) = json_is_true(v);
			err = 0;
			break;
		default:
			err = parse_number(file, path, v, f, &d);
			if (err)
				break;
			if (f->type == F_DOUBLE)
				*(double *)(base + f->off) = d;
			else if (f->type == F_SIZE)
				*(size_t *)(base + f->off) = (size_t)d;
			else if (f->type == F_U32)
				*(uint32_t *)(base + f->off) = (uint32_t)d;
			else
				*(uint64_t *)(base + f->off) = (uint64_t)d;
			break;
		}
		if (err)
			return err;
	}
	return 0;
}

static int parse_root(json_t *root, const char *name, struct rs_agent_config *c)
{
	int err;

	rs_agent_config_defaults(c);
	snprintf(c->path, sizeof(c->path), "%s", name);
	err = parse_object(name, "", root, top_fields, c);
	if (err)
		return err;
	if (*c->log_path && !strcmp(c->log_path, c->events_path))
		return bad(name, "events", "must not be the optimization log's file");
	if (c->canary_min_packets > c->canary_max_packets)
		return bad(name, "canary.min_packets", "larger than canary.max_packets (%zu)",
			   c->canary_max_packets);
	return 0;
}

int rs_agent_config_parse(const char *text, const char *name, struct rs_agent_config *c)
{
	json_error_t je;
	json_t *root;
	int err;

	root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		rs_warn("%s: line %d column %d: %s\n", name, je.line, je.column, je.text);
		return -RS_ERR_FORMAT;
	}
	err = parse_root(root, name, c);
	json_decref(root);
	return err;
}

int rs_agent_config_load(const char *path, struct rs_agent_config *c)
{
	json_error_t je;
	json_t *root;
	int err;

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
		if (je.line < 0 || strstr(je.text, "unable to open")) {
			rs_warn("%s: %s\n", path, je.text);
			return -ENOENT;
		}
		rs_warn("%s: line %d column %d: %s\n", path, je.line, je.column, je.text);
		return -RS_ERR_FORMAT;
	}
	err = parse_root(root, path, c);
	json_decref(root);
	return err;
}

uint32_t rs_agent_kind_bit(enum rs_attach_kind kind)
{
	switch (kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_XDP_NETLINK:
		return RS_SEL_XDP;
	case RS_ATTACH_TCX_LINK:
	case RS_ATTACH_TCX:
		return RS_SEL_TCX;
	case RS_ATTACH_TC_CLS:
		return RS_SEL_TC;
	case RS_ATTACH_PROG_ARRAY:
		return RS_SEL_PROG_ARRAY;
	}
	return 0;
}

static bool glob_ok(const char *pattern, const char *s)
{
	return !*pattern || !fnmatch(pattern, s, 0);
}

static bool selector_matches(const struct rs_agent_selector *sel,
			     const struct rs_attach_point *pt, const char *prog_name)
{
	const char *ns = *pt->netns ? pt->netns : "host";

	if (sel->id && sel->id != pt->prog_id)
		return false;
	if (sel->kinds && !(sel->kinds & rs_agent_kind_bit(pt->kind)))
		return false;
	return glob_ok(sel->name, prog_name ? prog_name : "") &&
	       glob_ok(sel->ifname, pt->ifname) && glob_ok(sel->netns, ns);
}

bool rs_agent_config_selects(const struct rs_agent_config *c, const struct rs_attach_point *pt,
			     const char *prog_name)
{
	bool in = !c->select_cnt;
	size_t i;

	if (!rs_agent_kind_bit(pt->kind))
		return false;
	for (i = 0; i < c->select_cnt && !in; i++)
		in = selector_matches(&c->select[i], pt, prog_name);
	for (i = 0; i < c->exclude_cnt && in; i++)
		in = !selector_matches(&c->exclude[i], pt, prog_name);
	return in;
}
