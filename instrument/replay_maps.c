// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay_maps.c - map side effects of a replay: after both programs ran the trace, dump every
 * map the two have in common (matched by name; same type and sizes) and report each key that
 * is present in one only or whose value differs outside the masked byte ranges.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instrument/replay_internal.h"

struct dump {
	uint8_t *buf;			/* cnt records of key_size + value bytes */
	size_t cnt, cap;
	size_t ksz, vsz;
};

static size_t rec_sz(const struct dump *d) { return d->ksz + d->vsz; }

static bool comparable(uint32_t type)
{
	switch (type) {
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
		return true;
	default:
		return false;
	}
}

static size_t g_ksz;

static int cmp_key(const void *x, const void *y)
{
	return memcmp(x, y, g_ksz);
}

static int dump_map(const struct rs_replay_map *m, struct dump *d)
{
	int ncpu = rs_map_type_percpu(m->type) ? libbpf_num_possible_cpus() : 1;
	uint8_t *key = NULL, *next = NULL;
	bool first = true;
	int err = 0;

	memset(d, 0, sizeof(*d));
	d->ksz = m->key_size;
	d->vsz = m->value_size;
	if (rs_map_type_percpu(m->type))
		d->vsz = (size_t)((m->value_size + 7) & ~7u) * (ncpu > 0 ? ncpu : 1);
	key = calloc(1, d->ksz + 1);
	next = calloc(1, d->ksz + 1);
	if (!key || !next) {
		err = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(m->fd, first ? NULL : key, next)) {
		uint8_t *rec;

		first = false;
		memcpy(key, next, d->ksz);
		if (d->cnt == d->cap) {
			size_t ncap = d->cap ? d->cap * 2 : 64;

			rec = realloc(d->buf, ncap * rec_sz(d));
			if (!rec) {
				err = -ENOMEM;
				goto out;
			}
			d->buf = rec;
			d->cap = ncap;
		}
		rec = d->buf + d->cnt * rec_sz(d);
		memcpy(rec, key, d->ksz);
		if (bpf_map_lookup_elem(m->fd, key, rec + d->ksz))
			continue;
		d->cnt++;
	}
	g_ksz = d->ksz;
	if (d->cnt)
		qsort(d->buf, d->cnt, rec_sz(d), cmp_key);
out:
	free(key);
	free(next);
	return err;
}

static void apply_masks(const struct rs_replay_map *m, uint8_t *val, size_t vsz,
			const struct rs_replay_opts *opts)
{
	size_t stride = rs_map_type_percpu(m->type) ? (size_t)((m->value_size + 7) & ~7u)
						    : m->value_size;
	const struct rs_replay_mask *masks = RS_OPTS_GET(opts, masks, NULL);
	size_t i, n = RS_OPTS_GET(opts, mask_cnt, 0), s;

	for (i = 0; masks && i < n; i++) {
		const struct rs_replay_mask *k = &masks[i];

		if (strcmp(k->map, m->name) && strcmp(k->map, m->kname))
			continue;
		for (s = 0; s + stride <= vsz && stride; s += stride) {
			size_t off = k->off, len = k->len;

			if (off >= m->value_size)
				continue;
			if (len > m->value_size - off)
				len = m->value_size - off;
			memset(val + s + off, 0, len);
		}
	}
}

static void key_hex(const uint8_t *key, size_t ksz, char *buf, size_t sz)
{
	size_t i, n = 0;

	for (i = 0; i < ksz && n + 3 < sz; i++)
		n += snprintf(buf + n, sz - n, "%02x", key[i]);
	if (i < ksz && sz > 4)
		snprintf(buf + sz - 4, 4, "...");
}

static int diverge(struct rs_replay_result *res, size_t max, const struct rs_replay_map *m,
		   const uint8_t *key, const uint8_t *va, const uint8_t *vb, size_t vsz,
		   const char *why)
{
	struct rs_divergence d = {};
	char kh[160];

	key_hex(key, m->key_size, kh, sizeof(kh));
	d.kind = RS_DIV_MAP;
	d.packet = res->packets;
	d.len_a = va ? vsz : 0;
	d.len_b = vb ? vsz : 0;
	snprintf(d.what, sizeof(d.what), "map %s: key %s: %s", m->name, kh, why);
	return rs_replay_add_div(res, max, &d, va, vb);
}

static int compare_one(const struct rs_replay_map *ma, const struct rs_replay_map *mb,
		       const struct rs_replay_opts *opts, struct rs_replay_result *res)
{
	size_t max = RS_OPTS_GET(opts, max_divergences, 10);
	struct dump da, db;
	size_t i = 0, j = 0;
	int err, c;

	err = dump_map(ma, &da);
	if (!err)
		err = dump_map(mb, &db);
	else
		memset(&db, 0, sizeof(db));
	if (err)
		goto out;
	while (!err && (i < da.cnt || j < db.cnt)) {
		uint8_t *ra = i < da.cnt ? da.buf + i * rec_sz(&da) : NULL;
		uint8_t *rb = j < db.cnt ? db.buf + j * rec_sz(&db) : NULL;

		c = !ra ? 1 : !rb ? -1 : memcmp(ra, rb, da.ksz);
		if (c < 0) {
			err = diverge(res, max, ma, ra, ra + da.ksz, NULL, da.vsz,
				      "only in the first program's map");
			i++;
		} else if (c > 0) {
			err = diverge(res, max, ma, rb, NULL, rb + db.ksz, db.vsz,
				      "only in the second program's map");
			j++;
		} else {
			apply_masks(ma, ra + da.ksz, da.vsz, opts);
			apply_masks(mb, rb + db.ksz, db.vsz, opts);
			if (memcmp(ra + da.ksz, rb + db.ksz, da.vsz))
				err = diverge(res, max, ma, ra, ra + da.ksz, rb + db.ksz, da.vsz,
					      "values differ");
			i++;
			j++;
		}
	}
out:
	free(da.buf);
	free(db.buf);
	return err;
}

int rs_replay_compare_maps(const struct rs_replay_prog *a, const struct rs_replay_prog *b,
			   const struct rs_replay_opts *opts, struct rs_replay_result *res)
{
	size_t i, j;
	int err;

	for (i = 0; i < a->map_cnt; i++) {
		const struct rs_replay_map *ma = &a->maps[i], *mb = NULL;

		if (!comparable(ma->type))
			continue;
		for (j = 0; j < b->map_cnt && !mb; j++)
			if (!strcmp(ma->name, b->maps[j].name) ||
			    !strcmp(ma->kname, b->maps[j].kname))
				mb = &b->maps[j];
		if (!mb) {
			rs_debug("map %s: only %s has it, not compared", ma->name, a->origin);
			continue;
		}
		if (mb->type != ma->type || mb->key_size != ma->key_size ||
		    mb->value_size != ma->value_size) {
			rs_info("map %s: type or sizes differ between %s and %s, not compared",
				ma->name, a->origin, b->origin);
			continue;
		}
		err = compare_one(ma, mb, opts, res);
		if (err)
			return err;
	}
	return 0;
}
