// SPDX-License-Identifier: BSD-2-Clause
/*
 * scenario.c - scenario files (docs/scenario.md): load and check the JSON, and write its map
 * contents and updates into maps (per-CPU replication, PROG_ARRAY values by program name).
 * The encoding of single keys and values through BTF lives in scenario_encode.c.
 *
 * Every error names the file and the JSON path, e.g. "router-1k.json: maps.routes4[7].key: ...".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "instrument/instrument.h"

/* snprintf for message prefixes: silently truncated (vsnprintf keeps gcc quiet about it). */
static void fmt_what(char *buf, size_t sz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fmt_what(char *buf, size_t sz, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sz, fmt, ap);
	va_end(ap);
}

struct rs_scenario {
	char *path;
	const char *base;		/* file name part of path, for messages */
	json_t *root;
	json_t *maps;			/* object, may be NULL */
	json_t *updates;		/* array, may be NULL */
	json_t *traffic;		/* object, may be NULL */
};

/* ---- loading ------------------------------------------------------------------------------ */

static int check_update(const struct rs_scenario *sc, json_t *u, size_t i)
{
	json_t *map = json_object_get(u, "map"), *op = json_object_get(u, "op");
	json_t *at = json_object_get(u, "at"), *unit = json_object_get(u, "unit");
	const char *ops;

	if (!json_is_object(u)) {
		rs_warn("%s: updates[%zu]: expected an object", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (!json_is_string(map)) {
		rs_warn("%s: updates[%zu].map: expected a map name", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	ops = json_string_value(op);
	if (!ops || (strcmp(ops, "update") && strcmp(ops, "delete"))) {
		rs_warn("%s: updates[%zu].op: expected \"update\" or \"delete\"", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (!json_object_get(u, "key")) {
		rs_warn("%s: updates[%zu].key: missing", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (!strcmp(ops, "update") && !json_object_get(u, "value")) {
		rs_warn("%s: updates[%zu].value: missing for an update", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (at && (!json_is_number(at) || json_number_value(at) < 0)) {
		rs_warn("%s: updates[%zu].at: expected a non-negative number", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (unit && (!json_is_string(unit) || strcmp(json_string_value(unit), "s"))) {
		rs_warn("%s: updates[%zu].unit: only \"s\" is known", sc->base, i);
		return -RS_ERR_FORMAT;
	}
	if (at && !unit && json_number_value(at) > 1) {
		rs_warn("%s: updates[%zu].at: a fraction of the trace must be 0..1 (or give \"unit\": \"s\")",
			sc->base, i);
		return -RS_ERR_FORMAT;
	}
	return 0;
}

static int check_maps(const struct rs_scenario *sc)
{
	const char *name;
	json_t *arr;

	json_object_foreach(sc->maps, name, arr) {
		size_t i;

		if (!json_is_array(arr)) {
			rs_warn("%s: maps.%s: expected an array of entries", sc->base, name);
			return -RS_ERR_FORMAT;
		}
		for (i = 0; i < json_array_size(arr); i++) {
			json_t *ent = json_array_get(arr, i);

			if (!json_is_object(ent) || !json_object_get(ent, "key")) {
				rs_warn("%s: maps.%s[%zu]: expected an object with \"key\"",
					sc->base, name, i);
				return -RS_ERR_FORMAT;
			}
		}
	}
	return 0;
}

int rs_scenario_load(const char *path, struct rs_scenario **out)
{
	static const char *const known[] = { "program", "description", "maps", "updates",
					     "traffic", "comment" };
	struct rs_scenario *sc;
	json_error_t jerr;
	const char *key, *slash;
	json_t *val;
	size_t i;
	int err;

	*out = NULL;
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		return -ENOMEM;
	sc->path = strdup(path);
	if (!sc->path) {
		err = -ENOMEM;
		goto err_free;
	}
	slash = strrchr(sc->path, '/');
	sc->base = slash ? slash + 1 : sc->path;
	sc->root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!sc->root) {
		if (jerr.line < 0) {
			rs_warn("%s: %s", sc->base, jerr.text);
			err = -ENOENT;
		} else {
			rs_warn("%s:%d:%d: %s", sc->base, jerr.line, jerr.column, jerr.text);
			err = -RS_ERR_FORMAT;
		}
		goto err_free;
	}
	err = -RS_ERR_FORMAT;
	if (!json_is_object(sc->root)) {
		rs_warn("%s: expected a JSON object at top level", sc->base);
		goto err_free;
	}
	json_object_foreach(sc->root, key, val) {
		for (i = 0; i < RS_ARRAY_SIZE(known); i++)
			if (!strcmp(key, known[i]))
				break;
		if (i == RS_ARRAY_SIZE(known))
			rs_warn("%s: %s: unknown top-level key (ignored)", sc->base, key);
	}
	val = json_object_get(sc->root, "program");
	if (val && !json_is_string(val)) {
		rs_warn("%s: program: expected a string", sc->base);
		goto err_free;
	}
	sc->maps = json_object_get(sc->root, "maps");
	if (sc->maps && !json_is_object(sc->maps)) {
		rs_warn("%s: maps: expected an object of map names", sc->base);
		goto err_free;
	}
	if (sc->maps) {
		err = check_maps(sc);
		if (err)
			goto err_free;
	}
	sc->updates = json_object_get(sc->root, "updates");
	if (sc->updates && !json_is_array(sc->updates)) {
		rs_warn("%s: updates: expected an array", sc->base);
		err = -RS_ERR_FORMAT;
		goto err_free;
	}
	for (i = 0; sc->updates && i < json_array_size(sc->updates); i++) {
		err = check_update(sc, json_array_get(sc->updates, i), i);
		if (err)
			goto err_free;
	}
	sc->traffic = json_object_get(sc->root, "traffic");
	if (sc->traffic && !json_is_object(sc->traffic)) {
		rs_warn("%s: traffic: expected an object", sc->base);
		err = -RS_ERR_FORMAT;
		goto err_free;
	}
	*out = sc;
	return 0;

err_free:
	rs_scenario_free(sc);
	return err;
}

void rs_scenario_free(struct rs_scenario *sc)
{
	if (!sc)
		return;
	json_decref(sc->root);
	free(sc->path);
	free(sc);
}

const char *rs_scenario_path(const struct rs_scenario *sc)
{
	return sc->path;
}

const char *rs_scenario_program(const struct rs_scenario *sc)
{
	return json_string_value(json_object_get(sc->root, "program"));
}

json_t *rs_scenario_maps(const struct rs_scenario *sc)
{
	return sc->maps;
}

json_t *rs_scenario_traffic(const struct rs_scenario *sc)
{
	return sc->traffic;
}

json_t *rs_scenario_updates(const struct rs_scenario *sc)
{
	return sc->updates;
}

size_t rs_scenario_update_cnt(const struct rs_scenario *sc)
{
	return sc->updates ? json_array_size(sc->updates) : 0;
}

int rs_scenario_update_at(const struct rs_scenario *sc, size_t i, double *at, bool *seconds)
{
	json_t *u;

	if (i >= rs_scenario_update_cnt(sc))
		return -ERANGE;
	u = json_array_get(sc->updates, i);
	*at = json_is_number(json_object_get(u, "at")) ?
	      json_number_value(json_object_get(u, "at")) : 0;
	*seconds = json_object_get(u, "unit") != NULL;
	return 0;
}

/* ---- writing maps -------------------------------------------------------------------------- */

static bool btf_type_is_array(const struct btf *btf, uint32_t id)
{
	const struct btf_type *t;
	int rid;

	if (!btf || !id)
		return false;
	rid = btf__resolve_type(btf, id);
	t = rid > 0 ? btf__type_by_id(btf, rid) : NULL;
	return t && btf_is_array(t);
}

/* Encode a value for map m into buf (sized for per-CPU maps by the caller). */
static int encode_value(const struct btf *btf, const struct rs_scenario_map *m, json_t *v,
			const struct bpf_object *obj, uint8_t *buf, size_t buf_sz,
			const char *what)
{
	int ncpu, err, i;
	size_t stride;

	memset(buf, 0, buf_sz);
	if (m->type == BPF_MAP_TYPE_PROG_ARRAY) {
		struct bpf_program *p;
		int fd;

		if (!json_is_string(v)) {
			rs_warn("%s: expected a program name", what);
			return -EINVAL;
		}
		p = obj ? bpf_object__find_program_by_name(obj, json_string_value(v)) : NULL;
		fd = p ? bpf_program__fd(p) : -1;
		if (fd < 0) {
			rs_warn("%s: no loaded program \"%s\" in the object", what,
				json_string_value(v));
			return -RS_ERR_NOT_FOUND;
		}
		memcpy(buf, &fd, sizeof(fd));
		return 0;
	}
	if (!v)
		return 0;	/* sets: zero value */
	if (!rs_map_type_percpu(m->type))
		return rs_scenario_encode(btf, m->btf_value_type_id, v, buf, m->value_size, what);

	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu ? ncpu : -EINVAL;
	stride = (m->value_size + 7) & ~7u;
	if (json_is_array(v) && (!btf_type_is_array(btf, m->btf_value_type_id) ||
				 (json_array_size(v) && (json_is_array(json_array_get(v, 0)) ||
							 json_is_string(json_array_get(v, 0)))))) {
		char sub[600];

		if (json_array_size(v) > (size_t)ncpu) {
			rs_warn("%s: %zu per-CPU values for %d CPUs", what, json_array_size(v), ncpu);
			return -EINVAL;
		}
		for (i = 0; i < (int)json_array_size(v); i++) {
			fmt_what(sub, sizeof(sub), "%s[%d]", what, i);
			err = rs_scenario_encode(btf, m->btf_value_type_id, json_array_get(v, i),
						 buf + i * stride, m->value_size, sub);
			if (err)
				return err;
		}
		return 0;
	}
	err = rs_scenario_encode(btf, m->btf_value_type_id, v, buf, m->value_size, what);
	for (i = 1; !err && i < ncpu; i++)
		memcpy(buf + i * stride, buf, m->value_size);
	return err;
}

static size_t value_buf_size(const struct rs_scenario_map *m)
{
	int ncpu;

	if (m->type == BPF_MAP_TYPE_PROG_ARRAY)
		return m->value_size > sizeof(int) ? m->value_size : sizeof(int);
	if (!rs_map_type_percpu(m->type))
		return m->value_size ? m->value_size : 1;
	ncpu = libbpf_num_possible_cpus();
	return ((m->value_size + 7) & ~7u) * (ncpu > 0 ? ncpu : 1);
}

static int map_write(const struct btf *btf, const struct rs_scenario_map *m, json_t *key,
		     json_t *value, bool del, const struct bpf_object *obj, const char *what)
{
	size_t vsz = value_buf_size(m);
	uint8_t *kbuf, *vbuf;
	char sub[600];
	int err;

	kbuf = calloc(1, m->key_size ? m->key_size : 1);
	vbuf = calloc(1, vsz);
	if (!kbuf || !vbuf) {
		err = -ENOMEM;
		goto out;
	}
	fmt_what(sub, sizeof(sub), "%s.key", what);
	err = rs_scenario_encode(btf, m->btf_key_type_id, key, kbuf, m->key_size, sub);
	if (err)
		goto out;
	if (del) {
		if (bpf_map_delete_elem(m->fd, kbuf)) {
			err = -errno;
			rs_warn("%s: delete from map %s failed: %s", what, m->name, strerror(-err));
		}
		goto out;
	}
	fmt_what(sub, sizeof(sub), "%s.value", what);
	err = encode_value(btf, m, value, obj, vbuf, vsz, sub);
	if (err)
		goto out;
	if (bpf_map_update_elem(m->fd, kbuf, vbuf, BPF_ANY)) {
		err = -errno;
		rs_warn("%s: update of map %s failed: %s", what, m->name, strerror(-err));
	}
out:
	free(kbuf);
	free(vbuf);
	return err;
}

int rs_scenario_map_write(const struct btf *btf, const struct rs_scenario_map *m,
			  json_t *key, json_t *value, const struct bpf_object *obj,
			  const char *what)
{
	return map_write(btf, m, key, value, !value, obj, what);
}

const struct rs_scenario_map *rs_scenario_find_map(const struct rs_scenario_map *maps,
						   size_t map_cnt, const char *name)
{
	size_t i;

	for (i = 0; i < map_cnt; i++)
		if (maps[i].name && !strcmp(maps[i].name, name))
			return &maps[i];
	return NULL;
}

int rs_scenario_apply(const struct rs_scenario *sc, const struct btf *btf,
		      const struct rs_scenario_map *maps, size_t map_cnt,
		      const struct bpf_object *obj)
{
	const char *name;
	json_t *arr;
	int err;

	if (!sc->maps)
		return 0;
	json_object_foreach(sc->maps, name, arr) {
		const struct rs_scenario_map *m = rs_scenario_find_map(maps, map_cnt, name);
		size_t i;

		if (!m) {
			rs_warn("%s: maps.%s: the program has no map named %s", sc->base, name, name);
			return -RS_ERR_NOT_FOUND;
		}
		for (i = 0; i < json_array_size(arr); i++) {
			json_t *ent = json_array_get(arr, i);
			char what[512];

			fmt_what(what, sizeof(what), "%s: maps.%s[%zu]", sc->base, name, i);
			/* an entry without a value is a member of a set: zero value */
			err = map_write(btf, m, json_object_get(ent, "key"),
					json_object_get(ent, "value"), false, obj, what);
			if (err)
				return err;
		}
		rs_debug("%s: map %s: %zu entries written", sc->base, name, json_array_size(arr));
	}
	return 0;
}

int rs_scenario_apply_update(const struct rs_scenario *sc, size_t i, const struct btf *btf,
			     const struct rs_scenario_map *maps, size_t map_cnt)
{
	const struct rs_scenario_map *m;
	const char *name, *op;
	char what[512];
	json_t *u;

	if (i >= rs_scenario_update_cnt(sc))
		return -ERANGE;
	u = json_array_get(sc->updates, i);
	name = json_string_value(json_object_get(u, "map"));
	op = json_string_value(json_object_get(u, "op"));
	m = rs_scenario_find_map(maps, map_cnt, name);
	if (!m) {
		rs_warn("%s: updates[%zu].map: the program has no map named %s", sc->base, i, name);
		return -RS_ERR_NOT_FOUND;
	}
	fmt_what(what, sizeof(what), "%s: updates[%zu]", sc->base, i);
	return map_write(btf, m, json_object_get(u, "key"), json_object_get(u, "value"),
			 !strcmp(op, "delete"), NULL, what);
}

int rs_scenario_object_maps(struct bpf_object *obj, struct rs_scenario_map **out, size_t *cnt)
{
	struct rs_scenario_map *maps = NULL, *tmp;
	struct bpf_map *map;
	size_t n = 0;

	*out = NULL;
	*cnt = 0;
	bpf_object__for_each_map(map, obj) {
		tmp = realloc(maps, (n + 1) * sizeof(*maps));
		if (!tmp) {
			free(maps);
			return -ENOMEM;
		}
		maps = tmp;
		maps[n] = (struct rs_scenario_map){
			.name = bpf_map__name(map),
			.fd = bpf_map__fd(map),
			.type = bpf_map__type(map),
			.key_size = bpf_map__key_size(map),
			.value_size = bpf_map__value_size(map),
			.max_entries = bpf_map__max_entries(map),
			.btf_key_type_id = bpf_map__btf_key_type_id(map),
			.btf_value_type_id = bpf_map__btf_value_type_id(map),
		};
		n++;
	}
	*out = maps;
	*cnt = n;
	return 0;
}

int rs_scenario_apply_object(const struct rs_scenario *sc, struct bpf_object *obj)
{
	struct rs_scenario_map *maps;
	size_t cnt;
	int err;

	err = rs_scenario_object_maps(obj, &maps, &cnt);
	if (err)
		return err;
	err = rs_scenario_apply(sc, bpf_object__btf(obj), maps, cnt, obj);
	free(maps);
	return err;
}
