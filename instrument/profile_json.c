// SPDX-License-Identifier: BSD-2-Clause
/*
 * profile_json.c - profiles as JSON (docs/profile.md): written by `respec profile -o` and
 * `respec replay --instrumented`, read by `respec optimize --profile` and people.
 *
 * Keys are stored as hex (exact bytes, what the optimizer compares) and, when the program has
 * BTF for the map's key type, also decoded for people ("decoded", never read back).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "instrument/instrument.h"
#include "optimizer/optimizer.h"

#define RS_PROFILE_FORMAT 1

static void hex_of(const uint8_t *p, uint32_t n, char *out)
{
	static const char d[] = "0123456789abcdef";
	uint32_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = 0;
}

static int unhex(const char *s, uint8_t *out, uint32_t n)
{
	uint32_t i;

	if (strlen(s) != 2 * (size_t)n)
		return -1;
	for (i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;

		if (v < 0)
			return -1;
		if (i & 1)
			out[i / 2] |= (uint8_t)v;
		else
			out[i / 2] = (uint8_t)(v << 4);
	}
	return 0;
}

/* ---- decoding keys with BTF ------------------------------------------------------------ */

struct dump_buf {
	char *buf;
	size_t sz, n;
};

static void dump_printf(void *ctx, const char *fmt, va_list args)
{
	struct dump_buf *d = ctx;
	int w;

	if (d->n >= d->sz)
		return;
	w = vsnprintf(d->buf + d->n, d->sz - d->n, fmt, args);
	if (w > 0)
		d->n += (size_t)w < d->sz - d->n ? (size_t)w : d->sz - d->n - 1;
}

int rs_profile_key_str(const struct btf *btf, uint32_t type_id, const uint8_t *key,
		       uint32_t size, char *buf, size_t sz)
{
	struct dump_buf d = { .buf = buf, .sz = sz };
	struct btf_dump *bd;
	size_t i, o;
	int err = -ENOENT;

	if (!sz)
		return -EINVAL;
	buf[0] = 0;
	if (btf && type_id) {
		LIBBPF_OPTS(btf_dump_type_data_opts, to, .compact = true, .emit_zeroes = true);

		bd = btf_dump__new(btf, dump_printf, &d, NULL);
		if (!libbpf_get_error(bd)) {
			err = btf_dump__dump_type_data(bd, type_id, key, size, &to);
			btf_dump__free(bd);
		}
		if (err >= 0) {
			/* one line: drop newlines and tabs btf_dump may emit */
			for (i = 0, o = 0; buf[i]; i++)
				if (buf[i] != '\n' && buf[i] != '\t')
					buf[o++] = buf[i];
			buf[o] = 0;
			return 0;
		}
	}
	if (sz < 2 * (size_t)size + 1)
		return -ENOSPC;
	hex_of(key, size, buf);
	return 0;
}

/* ---- writing ------------------------------------------------------------------------------ */

static json_t *site_json(const struct rs_site_profile *s, const struct rs_profile_names *nm)
{
	const struct rs_prog *prog = nm ? nm->prog : NULL;
	json_t *o, *keys = json_array();
	uint32_t tid = 0;
	char *hex, dec[1024];
	size_t i;

	hex = malloc(2 * (size_t)s->key_size + 1);
	if (!hex || !keys) {
		free(hex);
		json_decref(keys);
		return NULL;
	}
	if (nm && nm->key_type_ids && prog && s->map_idx < prog->map_cnt)
		tid = nm->key_type_ids[s->map_idx];
	o = json_pack("{s:I,s:I,s:I,s:I}", "insn", (json_int_t)s->insn, "map_idx",
		      (json_int_t)s->map_idx, "key_size", (json_int_t)s->key_size, "lookups",
		      (json_int_t)s->lookups);
	if (prog && s->map_idx < prog->map_cnt)
		json_object_set_new(o, "map", json_string(prog->maps[s->map_idx].name));
	for (i = 0; i < s->key_cnt; i++) {
		const uint8_t *k = s->keys + i * s->key_size;
		json_t *e;

		hex_of(k, s->key_size, hex);
		e = json_pack("{s:s,s:I,s:f}", "key", hex, "count", (json_int_t)s->counts[i],
			      "share", rs_site_key_share(s, i));
		if (tid && nm->btf &&
		    !rs_profile_key_str(nm->btf, tid, k, s->key_size, dec, sizeof(dec)))
			json_object_set_new(e, "decoded", json_string(dec));
		json_array_append_new(keys, e);
	}
	json_object_set_new(o, "keys", keys);
	free(hex);
	return o;
}

json_t *rs_profile_to_json(const struct rs_profile *p, const struct rs_profile_names *nm)
{
	json_t *o, *sites = json_array(), *brs = json_array();
	size_t i;

	o = json_pack("{s:i,s:I,s:I,s:f}", "format", RS_PROFILE_FORMAT, "packets",
		      (json_int_t)p->packets, "sample_rate", (json_int_t)p->sample_rate,
		      "window_s", p->window_s);
	if (!o || !sites || !brs) {
		json_decref(o);
		json_decref(sites);
		json_decref(brs);
		return NULL;
	}
	if (nm && nm->prog) {
		json_object_set_new(o, "program", json_string(nm->prog->name));
		if (nm->prog->id)
			json_object_set_new(o, "prog_id", json_integer(nm->prog->id));
	}
	if (p->ns_per_packet > 0 && isfinite(p->ns_per_packet)) {
		json_object_set_new(o, "ns_per_packet", json_real(p->ns_per_packet));
		json_object_set_new(o, "ns_source", json_string(p->ns_source));
	}
	for (i = 0; i < p->site_cnt; i++) {
		json_t *s = site_json(&p->sites[i], nm);

		if (s)
			json_array_append_new(sites, s);
	}
	for (i = 0; i < p->branch_cnt; i++) {
		const struct rs_branch_profile *b = &p->branches[i];
		double pt = rs_branch_taken_prob(b);

		json_array_append_new(brs, json_pack("{s:I,s:I,s:I,s:o}", "insn",
			(json_int_t)b->insn, "taken", (json_int_t)b->taken, "not_taken",
			(json_int_t)b->not_taken, "p_taken",
			isnan(pt) ? json_null() : json_real(pt)));
	}
	json_object_set_new(o, "sites", sites);
	json_object_set_new(o, "branches", brs);
	return o;
}

int rs_profile_save(const char *path, const struct rs_profile *p,
		    const struct rs_profile_names *names)
{
	json_t *o = rs_profile_to_json(p, names);
	int err = 0;

	if (!o)
		return -ENOMEM;
	if (json_dump_file(o, path, JSON_INDENT(1) | JSON_SORT_KEYS)) {
		err = -errno ?: -EIO;
		rs_warn("%s: cannot write the profile: %s", path, rs_strerror(err));
	}
	json_decref(o);
	return err;
}

/* ---- reading ------------------------------------------------------------------------------ */

static int bad(const char *what, size_t i, const char *field)
{
	rs_warn("profile: %s[%zu].%s: missing or malformed", what, i, field);
	return -RS_ERR_FORMAT;
}

static int u64_field(json_t *o, const char *k, uint64_t *v)
{
	json_t *x = json_object_get(o, k);

	if (!json_is_integer(x) || json_integer_value(x) < 0)
		return -1;
	*v = (uint64_t)json_integer_value(x);
	return 0;
}

static int site_from_json(json_t *o, size_t si, struct rs_site_profile *s)
{
	uint64_t insn, map_idx, ks, lookups;
	json_t *keys = json_object_get(o, "keys"), *e;
	size_t i;

	if (u64_field(o, "insn", &insn))
		return bad("sites", si, "insn");
	if (u64_field(o, "map_idx", &map_idx))
		return bad("sites", si, "map_idx");
	if (u64_field(o, "key_size", &ks) || !ks || ks > 512)
		return bad("sites", si, "key_size");
	if (u64_field(o, "lookups", &lookups))
		return bad("sites", si, "lookups");
	if (!json_is_array(keys))
		return bad("sites", si, "keys");
	s->insn = (uint32_t)insn;
	s->map_idx = (uint32_t)map_idx;
	s->key_size = (uint32_t)ks;
	s->lookups = lookups;
	s->keys = calloc(json_array_size(keys) + 1, ks);
	s->counts = calloc(json_array_size(keys) + 1, sizeof(uint64_t));
	if (!s->keys || !s->counts)
		return -ENOMEM;
	json_array_foreach(keys, i, e) {
		json_t *k = json_object_get(e, "key");

		if (!json_is_string(k) ||
		    unhex(json_string_value(k), s->keys + i * ks, (uint32_t)ks)) {
			rs_warn("profile: sites[%zu].keys[%zu].key: expected %llu bytes of hex", si,
				i, (unsigned long long)ks);
			return -RS_ERR_FORMAT;
		}
		if (u64_field(e, "count", &s->counts[i])) {
			rs_warn("profile: sites[%zu].keys[%zu].count: missing", si, i);
			return -RS_ERR_FORMAT;
		}
		s->key_cnt = i + 1;
	}
	return 0;
}

int rs_profile_from_json(json_t *o, struct rs_profile *p)
{
	json_t *sites, *brs, *e, *x;
	uint64_t v;
	size_t i;
	int err;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(o)) {
		rs_warn("profile: not a JSON object");
		return -RS_ERR_FORMAT;
	}
	x = json_object_get(o, "format");
	if (x && json_integer_value(x) != RS_PROFILE_FORMAT) {
		rs_warn("profile: format %lld, expected %d", (long long)json_integer_value(x),
			RS_PROFILE_FORMAT);
		return -RS_ERR_FORMAT;
	}
	if (u64_field(o, "packets", &p->packets) || u64_field(o, "sample_rate", &v)) {
		rs_warn("profile: packets / sample_rate: missing or malformed");
		return -RS_ERR_FORMAT;
	}
	p->sample_rate = (uint32_t)v;
	x = json_object_get(o, "window_s");
	p->window_s = json_is_number(x) ? json_number_value(x) : 0;
	x = json_object_get(o, "ns_per_packet");
	p->ns_per_packet = json_is_number(x) ? json_number_value(x) : 0;
	x = json_object_get(o, "ns_source");
	if (json_is_string(x))
		snprintf(p->ns_source, sizeof(p->ns_source), "%s", json_string_value(x));
	sites = json_object_get(o, "sites");
	brs = json_object_get(o, "branches");
	if (!json_is_array(sites) || !json_is_array(brs)) {
		rs_warn("profile: sites / branches: expected arrays");
		return -RS_ERR_FORMAT;
	}
	p->sites = calloc(json_array_size(sites) + 1, sizeof(*p->sites));
	p->branches = calloc(json_array_size(brs) + 1, sizeof(*p->branches));
	if (!p->sites || !p->branches) {
		err = -ENOMEM;
		goto err;
	}
	json_array_foreach(sites, i, e) {
		p->site_cnt = i + 1;
		err = site_from_json(e, i, &p->sites[i]);
		if (err)
			goto err;
	}
	json_array_foreach(brs, i, e) {
		struct rs_branch_profile *b = &p->branches[i];

		if (u64_field(e, "insn", &v)) {
			err = bad("branches", i, "insn");
			goto err;
		}
		b->insn = (uint32_t)v;
		if (u64_field(e, "taken", &b->taken) || u64_field(e, "not_taken", &b->not_taken)) {
			err = bad("branches", i, "taken/not_taken");
			goto err;
		}
		p->branch_cnt = i + 1;
	}
	return 0;
err:
	rs_profile_free(p);
	return err;
}

int rs_profile_load(const char *path, struct rs_profile *p)
{
	json_error_t je;
	json_t *o;
	int err;

	memset(p, 0, sizeof(*p));
	o = json_load_file(path, 0, &je);
	if (!o) {
		rs_warn("%s:%d: %s", path, je.line, je.text);
		return -RS_ERR_FORMAT;
	}
	err = rs_profile_from_json(o, p);
	if (err)
		rs_warn("%s: not a respec profile", path);
	json_decref(o);
	return err;
}
