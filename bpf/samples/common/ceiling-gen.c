// SPDX-License-Identifier: BSD-2-Clause
/*
 * ceiling-gen.c - build-time generator for the samples' "ceiling" builds: reads a sample's
 * BPF object (for the BTF of its maps) and a scenario, encodes the named maps' entries exactly
 * as the loaders would (rs_scenario_encode), and writes a C header of compile-time constants
 * that bpf/samples/common/ceiling.h and the sample sources turn into constant lookups.
 *
 *   ceiling-gen OBJ.bpf.o SCENARIO.json OUT.h MAP...
 *
 * Per map type (NAME is the map name):
 *   ARRAY      CEIL_NAME_CNT (highest index + 1), CEIL_NAME_MAX (max_entries), CEIL_NAME_VALS
 *   HASH, LRU  CEIL_NAME_CNT, CEIL_NAME_KEYS, CEIL_NAME_VALS (file order, later duplicates win)
 *   LPM_TRIE   prefixes flattened into disjoint sorted intervals: CEIL_NAME_CNT, _STEPS,
 *              _STARTS (4-byte addresses) or _STARTS_HI/_STARTS_LO (16-byte), _IDX (entry or
 *              -1), CEIL_NAME_NVALS, CEIL_NAME_VALS
 * Every key / value is a `{ .raw = { bytes } }` initializer of a union with the real type.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "instrument/instrument.h"

typedef unsigned __int128 u128;

struct gen {
	FILE *out;
	const struct btf *btf;
	const char *base;		/* scenario file name, for messages */
};

static void log_stderr(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level == RS_LOG_DEBUG)
		return;
	fprintf(stderr, "ceiling-gen: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void emit_bytes(FILE *f, const uint8_t *b, size_t n, bool last)
{
	size_t i;

	fprintf(f, "\t{ .raw = { ");
	for (i = 0; i < n; i++)
		fprintf(f, "0x%02x%s", b[i], i + 1 < n ? "," : "");
	fprintf(f, " } }%s \\\n", last ? "" : ",");
}

static int encode_entry(struct gen *g, const struct bpf_map *map, json_t *ent, size_t i,
			uint8_t *k, uint8_t *v)
{
	char what[300];
	int err;

	snprintf(what, sizeof(what), "%s: maps.%.64s[%zu].key", g->base, bpf_map__name(map), i);
	err = rs_scenario_encode(g->btf, bpf_map__btf_key_type_id(map),
				 json_object_get(ent, "key"), k, bpf_map__key_size(map), what);
	if (err)
		return err;
	memset(v, 0, bpf_map__value_size(map));
	if (!json_object_get(ent, "value"))
		return 0;
	snprintf(what, sizeof(what), "%s: maps.%.64s[%zu].value", g->base, bpf_map__name(map), i);
	return rs_scenario_encode(g->btf, bpf_map__btf_value_type_id(map),
				  json_object_get(ent, "value"), v, bpf_map__value_size(map), what);
}

static int gen_array(struct gen *g, const struct bpf_map *map, json_t *arr)
{
	size_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map), i, cnt = 1;
	uint32_t max = bpf_map__max_entries(map);
	const char *name = bpf_map__name(map);
	uint8_t *vals, *v, k[8];
	int err = 0;

	if (ks != 4)
		return -EINVAL;
	vals = calloc(max, vs);
	v = calloc(1, vs);
	if (!vals || !v) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < json_array_size(arr); i++) {
		uint32_t idx;

		err = encode_entry(g, map, json_array_get(arr, i), i, k, v);
		if (err)
			goto out;
		memcpy(&idx, k, 4);
		if (idx >= max) {
			fprintf(stderr, "ceiling-gen: %s: maps.%s[%zu]: index %u >= %u\n", g->base,
				name, i, idx, max);
			err = -ERANGE;
			goto out;
		}
		memcpy(vals + (size_t)idx * vs, v, vs);
		if (idx + 1 > cnt)
			cnt = idx + 1;
	}
	fprintf(g->out, "#define CEIL_%s_CNT %zu\n#define CEIL_%s_MAX %u\n#define CEIL_%s_VALS \\\n",
		name, cnt, name, max, name);
	for (i = 0; i < cnt; i++)
		emit_bytes(g->out, vals + i * vs, vs, i + 1 == cnt);
	fprintf(g->out, "\n");
out:
	free(vals);
	free(v);
	return err;
}

static int gen_hash(struct gen *g, const struct bpf_map *map, json_t *arr)
{
	size_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map), i, j, n = 0;
	size_t cnt = json_array_size(arr);
	const char *name = bpf_map__name(map);
	uint8_t *keys, *vals;
	int err = 0;

	keys = calloc(cnt + 1, ks);
	vals = calloc(cnt + 1, vs);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		err = encode_entry(g, map, json_array_get(arr, i), i, keys + n * ks, vals + n * vs);
		if (err)
			goto out;
		for (j = 0; j < n; j++)
			if (!memcmp(keys + j * ks, keys + n * ks, ks))
				break;
		if (j < n)
			memcpy(vals + j * vs, vals + n * vs, vs);
		else
			n++;
	}
	fprintf(g->out, "#define CEIL_%s_CNT %zu\n#define CEIL_%s_KEYS \\\n", name, n, name);
	for (i = 0; i < n; i++)
		emit_bytes(g->out, keys + i * ks, ks, i + 1 == n);
	fprintf(g->out, "\n#define CEIL_%s_VALS \\\n", name);
	for (i = 0; i < n; i++)
		emit_bytes(g->out, vals + i * vs, vs, i + 1 == n);
	fprintf(g->out, "\n");
out:
	free(keys);
	free(vals);
	return err;
}

struct prefix {
	u128 start, end;		/* inclusive, address as a big number */
	uint32_t plen;
	int idx;			/* index into the values */
};

struct bound {
	u128 start;
	int idx;
};

static int cmp_u128(const void *a, const void *b)
{
	u128 x = *(const u128 *)a, y = *(const u128 *)b;

	return x < y ? -1 : x > y;
}

static u128 addr_to_u128(const uint8_t *a, size_t n)
{
	u128 v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | a[i];
	return v;
}

static int gen_lpm(struct gen *g, const struct bpf_map *map, json_t *arr)
{
	size_t ks = bpf_map__key_size(map), vs = bpf_map__value_size(map), alen = ks - 4;
	size_t cnt = json_array_size(arr), n = 0, nb = 0, nm = 0, i, j, steps;
	const char *name = bpf_map__name(map);
	struct prefix *px = NULL;
	struct bound *iv = NULL;
	uint8_t *vals = NULL, key[20];
	u128 *pts = NULL, top;
	int err = 0;

	if (alen != 4 && alen != 16)
		return -EINVAL;
	top = alen == 4 ? (u128)0xffffffffu : ~(u128)0;
	px = calloc(cnt + 1, sizeof(*px));
	vals = calloc(cnt + 1, vs);
	pts = calloc(2 * cnt + 1, sizeof(*pts));
	if (!px || !vals || !pts) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		struct prefix p;
		u128 mask;

		err = encode_entry(g, map, json_array_get(arr, i), i, key, vals + n * vs);
		if (err)
			goto out;
		memcpy(&p.plen, key, 4);
		if (p.plen > alen * 8) {
			fprintf(stderr, "ceiling-gen: %s: maps.%s[%zu]: prefix length %u\n", g->base,
				name, i, p.plen);
			err = -EINVAL;
			goto out;
		}
		mask = p.plen ? top ^ ((top >> p.plen)) : 0;
		p.start = addr_to_u128(key + 4, alen) & mask;
		p.end = p.start | (top & ~mask);
		p.idx = (int)n;
		for (j = 0; j < n; j++)
			if (px[j].plen == p.plen && px[j].start == p.start)
				break;
		if (j < n) {		/* same prefix again: the later value wins */
			memcpy(vals + j * vs, vals + n * vs, vs);
			continue;
		}
		px[n++] = p;
	}
	pts[nb++] = 0;
	for (i = 0; i < n; i++) {
		pts[nb++] = px[i].start;
		if (px[i].end != top)
			pts[nb++] = px[i].end + 1;
	}
	qsort(pts, nb, sizeof(*pts), cmp_u128);
	iv = calloc(nb, sizeof(*iv));
	if (!iv) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < nb; i++) {
		int best = -1;
		uint32_t best_len = 0;

		if (i && pts[i] == pts[i - 1])
			continue;
		for (j = 0; j < n; j++)
			if (px[j].start <= pts[i] && pts[i] <= px[j].end &&
			    (best < 0 || px[j].plen > best_len)) {
				best = px[j].idx;
				best_len = px[j].plen;
			}
		if (nm && iv[nm - 1].idx == best)
			continue;
		iv[nm].start = pts[i];
		iv[nm++].idx = best;
	}
	for (steps = 1; ((size_t)1 << (steps - 1)) < nm; steps++)
		;
	fprintf(g->out, "#define CEIL_%s_CNT %zu\n#define CEIL_%s_STEPS %zu\n", name, nm, name,
		steps + 1);
	if (alen == 4) {
		fprintf(g->out, "#define CEIL_%s_STARTS \\\n", name);
		for (i = 0; i < nm; i++)
			fprintf(g->out, "\t0x%08xu%s \\\n", (unsigned int)iv[i].start,
				i + 1 < nm ? "," : "");
	} else {
		fprintf(g->out, "#define CEIL_%s_STARTS_HI \\\n", name);
		for (i = 0; i < nm; i++)
			fprintf(g->out, "\t0x%016llxull%s \\\n",
				(unsigned long long)(iv[i].start >> 64), i + 1 < nm ? "," : "");
		fprintf(g->out, "\n#define CEIL_%s_STARTS_LO \\\n", name);
		for (i = 0; i < nm; i++)
			fprintf(g->out, "\t0x%016llxull%s \\\n", (unsigned long long)iv[i].start,
				i + 1 < nm ? "," : "");
	}
	fprintf(g->out, "\n#define CEIL_%s_IDX \\\n", name);
	for (i = 0; i < nm; i++)
		fprintf(g->out, "\t%d%s \\\n", iv[i].idx, i + 1 < nm ? "," : "");
	fprintf(g->out, "\n#define CEIL_%s_NVALS %zu\n#define CEIL_%s_VALS \\\n", name,
		n ? n : 1, name);
	for (i = 0; i < (n ? n : 1); i++)
		emit_bytes(g->out, vals + i * vs, vs, i + 1 >= n);
	fprintf(g->out, "\n");
out:
	free(px);
	free(vals);
	free(pts);
	free(iv);
	return err;
}

int main(int argc, char **argv)
{
	struct rs_scenario *sc = NULL;
	struct bpf_object *obj;
	struct gen g = {};
	int i, err;

	if (argc < 5) {
		fprintf(stderr, "usage: %s OBJ.bpf.o SCENARIO.json OUT.h MAP...\n", argv[0]);
		return 2;
	}
	rs_set_log_fn(log_stderr);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "ceiling-gen: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	err = rs_scenario_load(argv[2], &sc);
	if (err)
		goto out;
	g.btf = bpf_object__btf(obj);
	g.base = strrchr(argv[2], '/') ? strrchr(argv[2], '/') + 1 : argv[2];
	g.out = fopen(argv[3], "w");
	if (!g.out) {
		err = -errno;
		fprintf(stderr, "ceiling-gen: %s: %s\n", argv[3], strerror(errno));
		goto out;
	}
	fprintf(g.out, "/* Generated by ceiling-gen from %s and %s: do not edit. */\n", g.base,
		strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1]);
	fprintf(g.out, "#ifndef CEILING_GENERATED_H\n#define CEILING_GENERATED_H\n\n");
	for (i = 4; i < argc && !err; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(obj, argv[i]);
		json_t *arr = json_object_get(rs_scenario_maps(sc), argv[i]);

		if (!map) {
			fprintf(stderr, "ceiling-gen: %s: no map %s\n", argv[1], argv[i]);
			err = -ENOENT;
			break;
		}
		if (!arr)
			arr = json_array();
		else
			json_incref(arr);
		switch (bpf_map__type(map)) {
		case BPF_MAP_TYPE_ARRAY:
			err = gen_array(&g, map, arr);
			break;
		case BPF_MAP_TYPE_HASH:
		case BPF_MAP_TYPE_LRU_HASH:
			err = gen_hash(&g, map, arr);
			break;
		case BPF_MAP_TYPE_LPM_TRIE:
			err = gen_lpm(&g, map, arr);
			break;
		default:
			fprintf(stderr, "ceiling-gen: map %s: type %d not supported\n", argv[i],
				bpf_map__type(map));
			err = -EOPNOTSUPP;
		}
		json_decref(arr);
		if (err)
			fprintf(stderr, "ceiling-gen: map %s: %s\n", argv[i], rs_strerror(err));
	}
	fprintf(g.out, "#endif\n");
	if (fclose(g.out) && !err)
		err = -errno;
	if (err)
		unlink(argv[3]);
out:
	rs_scenario_free(sc);
	bpf_object__close(obj);
	return err ? 1 : 0;
}
