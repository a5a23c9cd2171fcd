// SPDX-License-Identifier: BSD-2-Clause
/*
 * log_read.c - read an optimization log (docs/log.md) into memory and group it per program.
 *
 * Every line must be one JSON object with "v": 1 and a known "kind"; records about a program
 * carry "prog".  Anything else (bad JSON, a record cut short by a crash, a missing field) is
 * reported as FILE:LINE with the reason, and the whole command fails: a log that cannot be
 * trusted is not rendered half.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log.h"
#include "tools/main.h"

static const char *const kinds[] = {
	"run", "snapshot", "profile", "program", "remark", "pass_stats", "verify", "swap",
	"measure", "rollback", "restore",
};

static bool kind_known(const char *k)
{
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(kinds); i++)
		if (!strcmp(k, kinds[i]))
			return true;
	return false;
}

long log_int(json_t *o, const char *key, long dflt)
{
	json_t *v = o ? json_object_get(o, key) : NULL;

	if (json_is_integer(v))
		return (long)json_integer_value(v);
	if (json_is_real(v))
		return (long)json_real_value(v);
	return dflt;
}

double log_real(json_t *o, const char *key, double dflt)
{
	json_t *v = o ? json_object_get(o, key) : NULL;

	return json_is_number(v) ? json_number_value(v) : dflt;
}

const char *log_str(json_t *o, const char *key, const char *dflt)
{
	json_t *v = o ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Field checks of one record; returns the reason or NULL. */
static const char *check_record(json_t *r, char *why, size_t sz)
{
	const char *kind = log_str(r, "kind", NULL);
	json_t *p, *a;
	size_t i;

	if (!json_is_integer(json_object_get(r, "v")))
		return "missing \"v\" (format version)";
	if (json_integer_value(json_object_get(r, "v")) != 1) {
		snprintf(why, sz, "unsupported format version %lld",
			 (long long)json_integer_value(json_object_get(r, "v")));
		return why;
	}
	if (!kind)
		return "missing \"kind\"";
	if (!kind_known(kind)) {
		snprintf(why, sz, "unknown kind \"%.64s\"", kind);
		return why;
	}
	if (strcmp(kind, "run") && strcmp(kind, "restore")) {
		p = json_object_get(r, "prog");
		if (!json_is_object(p) && !json_is_null(p))
			return "missing \"prog\" object";
	}
	if (!strcmp(kind, "program")) {
		if (!log_str(r, "role", NULL))
			return "program record without \"role\"";
		a = json_object_get(r, "insns");
		if (!json_is_array(a))
			return "program record without \"insns\" array";
		for (i = 0; i < json_array_size(a); i++) {
			const char *h = json_string_value(json_array_get(a, i));

			if (!h || strlen(h) != 16 || rs_hex_decode(h, why, 8, 0) != 8) {
				snprintf(why, sz, "insns[%zu]: not 16 hex digits", i);
				return why;
			}
		}
	}
	if (!strcmp(kind, "remark")) {
		if (!log_str(r, "pass", NULL) || !log_str(r, "type", NULL))
			return "remark without \"pass\" or \"type\"";
		if (!json_is_object(json_object_get(r, "site")))
			return "remark without \"site\"";
	}
	return NULL;
}

int log_load(const char *path, struct log_file *lf)
{
	char *line = NULL, why[128];
	size_t cap = 0, lineno = 0, rcap = 0;
	ssize_t n;
	FILE *f;
	int err = 0;

	memset(lf, 0, sizeof(*lf));
	lf->path = path;
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		p_err("%s: %s", path, rs_strerror(err));
		return err;
	}
	while ((n = getline(&line, &cap, f)) >= 0) {
		bool eol = n > 0 && line[n - 1] == '\n';
		const char *bad;
		json_error_t je;
		json_t *r;

		lineno++;
		if (eol)
			line[--n] = 0;
		if (n && line[n - 1] == '\r')
			line[--n] = 0;
		if (!n)
			continue;
		r = json_loadb(line, n, 0, &je);
		if (!r) {
			if (!eol)
				p_err("%s:%zu: truncated record (the line ends after %zd bytes "
				      "without a newline: %s)", path, lineno, n, je.text);
			else
				p_err("%s:%zu: column %d: invalid JSON: %s", path, lineno,
				      je.column, je.text);
			err = -RS_ERR_FORMAT;
			break;
		}
		if (!json_is_object(r)) {
			json_decref(r);
			p_err("%s:%zu: a record must be a JSON object", path, lineno);
			err = -RS_ERR_FORMAT;
			break;
		}
		bad = check_record(r, why, sizeof(why));
		if (bad) {
			json_decref(r);
			p_err("%s:%zu: %s", path, lineno, bad);
			err = -RS_ERR_FORMAT;
			break;
		}
		if (lf->cnt == rcap) {
			size_t nc = rcap ? 2 * rcap : 256;
			json_t **nr = realloc(lf->recs, nc * sizeof(*nr));
			size_t *nl = nr ? realloc(lf->lines, nc * sizeof(*nl)) : NULL;

			if (nr)
				lf->recs = nr;
			if (!nr || !nl) {
				json_decref(r);
				err = -ENOMEM;
				break;
			}
			lf->lines = nl;
			rcap = nc;
		}
		lf->recs[lf->cnt] = r;
		lf->lines[lf->cnt++] = lineno;
	}
	free(line);
	if (!err && ferror(f)) {
		err = -EIO;
		p_err("%s: read error", path);
	}
	fclose(f);
	if (!err && !lf->cnt) {
		p_err("%s: empty log (no records)", path);
		err = -RS_ERR_FORMAT;
	}
	if (err)
		log_free(lf);
	return err;
}

void log_free(struct log_file *lf)
{
	size_t i;

	for (i = 0; i < lf->cnt; i++)
		json_decref(lf->recs[i]);
	free(lf->recs);
	free(lf->lines);
	memset(lf, 0, sizeof(*lf));
}

void log_prog_key(json_t *rec, char *buf, size_t sz)
{
	json_t *p = json_object_get(rec, "prog");

	if (!json_is_object(p)) {
		buf[0] = 0;
		return;
	}
	snprintf(buf, sz, "%ld/%.32s/%.16s", log_int(p, "id", 0), log_str(p, "name", ""),
		 log_str(p, "tag", ""));
}

bool log_prog_match(const struct log_prog *p, const char *sel)
{
	char *end;
	long id;

	if (!sel)
		return true;
	id = strtol(sel, &end, 0);
	if (*sel && !*end)
		return p->id == id;
	return !strcmp(p->name, sel);
}

json_t *log_next(const struct log_file *lf, const struct log_prog *p, const char *kind,
		 bool last_round, size_t *idx)
{
	char key[96];

	for (; *idx < lf->cnt; (*idx)++) {
		json_t *r = lf->recs[*idx];

		if (kind && strcmp(log_str(r, "kind", ""), kind))
			continue;
		if (p) {
			log_prog_key(r, key, sizeof(key));
			if (strcmp(key, p->key))
				continue;
			if (last_round && log_int(r, "round", p->round) != p->round)
				continue;
		}
		(*idx)++;
		return r;
	}
	return NULL;
}

static struct log_prog *find_or_add(struct log_prog **v, size_t *cnt, json_t *rec)
{
	struct log_prog *n;
	char key[96];
	size_t i;

	log_prog_key(rec, key, sizeof(key));
	if (!key[0])
		return NULL;
	for (i = 0; i < *cnt; i++)
		if (!strcmp((*v)[i].key, key))
			return &(*v)[i];
	n = realloc(*v, (*cnt + 1) * sizeof(*n));
	if (!n)
		return NULL;
	*v = n;
	n = &n[(*cnt)++];
	memset(n, 0, sizeof(*n));
	snprintf(n->key, sizeof(n->key), "%s", key);
	n->ident = json_object_get(rec, "prog");
	n->id = log_int(n->ident, "id", 0);
	n->name = log_str(n->ident, "name", "?");
	n->before_verified = n->after_verified = -1;
	return n;
}

static void add_pass(struct log_prog *p, const char *pass)
{
	size_t l = strlen(p->passes);

	if (strstr(p->passes, pass))
		return;
	snprintf(p->passes + l, sizeof(p->passes) - l, "%s%s", l ? "," : "", pass);
}

int log_group(const struct log_file *lf, struct log_prog **progs, size_t *cnt)
{
	struct log_prog *v = NULL, *p;
	size_t i, n = 0;

	/* pass 1: programs and their last round */
	for (i = 0; i < lf->cnt; i++) {
		json_t *r = lf->recs[i];

		p = find_or_add(&v, &n, r);
		if (!p)
			continue;
		if (log_int(r, "round", 0) > p->round)
			p->round = log_int(r, "round", 0);
	}
	/* pass 2: what the last round says */
	for (i = 0; i < lf->cnt; i++) {
		json_t *r = lf->recs[i];
		const char *kind = log_str(r, "kind", "");
		char key[96];
		size_t k;

		log_prog_key(r, key, sizeof(key));
		for (p = NULL, k = 0; k < n; k++)
			if (!strcmp(v[k].key, key))
				p = &v[k];
		if (!p || log_int(r, "round", p->round) != p->round)
			continue;
		if (!strcmp(kind, "program")) {
			bool after = !strcmp(log_str(r, "role", ""), "after");
			json_t *jit = json_object_get(r, "jit");
			long vi = log_int(r, "verified_insns", -1);

			if (after) {
				if (!p->after || !jit)
					p->after = r;
				if (jit)
					p->after_jit = jit;
				if (vi >= 0)
					p->after_verified = vi;
			} else {
				if (!p->before || !jit)
					p->before = r;
				if (jit)
					p->before_jit = jit;
				if (vi >= 0)
					p->before_verified = vi;
			}
		} else if (!strcmp(kind, "remark")) {
			const char *t = log_str(r, "type", "");

			p->remarks[!strcmp(t, "passed") ? 0 : !strcmp(t, "missed") ? 1 : 2]++;
		} else if (!strcmp(kind, "pass_stats")) {
			if (!strcmp(log_str(r, "pass", ""), "*"))
				p->total = r;
			else if (log_int(r, "applied", 0) > 0)
				add_pass(p, log_str(r, "pass", "?"));
		} else if (!strcmp(kind, "verify")) {
			p->verify = r;
			if (log_int(r, "verified_insns", -1) >= 0)
				p->after_verified = log_int(r, "verified_insns", -1);
		} else if (!strcmp(kind, "measure")) {
			if (!json_is_string(json_object_get(r, "pass")))
				p->measure = r;
		}
	}
	*progs = v;
	*cnt = n;
	return 0;
}

int log_prog_insns(json_t *rec, struct bpf_insn **insns, size_t *cnt)
{
	json_t *a = json_object_get(rec, "insns");
	size_t i, n = json_array_size(a);
	struct bpf_insn *v;

	*insns = NULL;
	*cnt = 0;
	v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (rs_hex_decode(json_string_value(json_array_get(a, i)), &v[i], 8, 0) != 8) {
			free(v);
			return -RS_ERR_FORMAT;
		}
	*insns = v;
	*cnt = n;
	return 0;
}

json_t **log_line_table(json_t *rec, size_t cnt)
{
	json_t *a = json_object_get(rec, "lines"), *l;
	json_t **t = calloc(cnt ? cnt : 1, sizeof(*t));
	size_t i;

	if (!t)
		return NULL;
	json_array_foreach(a, i, l) {
		long k = log_int(l, "insn", -1);

		if (k >= 0 && (size_t)k < cnt)
			t[k] = l;
	}
	return t;
}
