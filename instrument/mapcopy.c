// SPDX-License-Identifier: BSD-2-Clause
/*
 * mapcopy.c - copy the contents of one BPF map into another of the same shape (replay clones,
 * the agent's canary alignment).
 *
 * Why: cloning xdp-filter's 65536-entry port array key by key (get_next_key + lookup + update:
 * three syscalls per entry) dominated the agent's re-specialization time.  Batch lookups and
 * updates (BPF_MAP_LOOKUP_BATCH / BPF_MAP_UPDATE_BATCH, thousands of entries per syscall) do
 * the same in a few dozen syscalls.  Map types without batch operations (LPM trie, devmap,
 * cpumap, ...) fall back to the key iteration.  Arrays need no deletion pass (every index
 * exists); a hash copied into a non-empty destination is emptied first when asked
 * (clear_dst), so the destination ends up equal to the source.  Per-CPU values use the layout
 * user space always sees: round_up(value_size, 8) bytes per possible CPU.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "instrument/instrument.h"
#include "optimizer/common.h"

#ifndef ENOTSUPP
#define ENOTSUPP 524			/* kernel-internal "operation not supported" */
#endif

#define RS_MAP_COPY_DEFAULT_BATCH 4096u

static bool type_is_array(uint32_t type)
{
	return type == BPF_MAP_TYPE_ARRAY || type == BPF_MAP_TYPE_PERCPU_ARRAY;
}

static bool batch_unsupported(int err)
{
	return err == -ENOTSUPP || err == -EOPNOTSUPP || err == -EINVAL;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/*
 * Delete every entry of a hash-like destination: collect the keys first (deleting the first
 * key over and over rescans the buckets from the start each time), then delete them.
 */
static int clear_map(int dst, const struct bpf_map_info *info)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	size_t ks = info->key_size, cnt = 0, cap = 256, i;
	uint8_t *keys, *tmp;
	uint32_t n;
	int err = 0;

	keys = malloc(cap * ks);
	if (!keys)
		return -ENOMEM;
	while (!bpf_map_get_next_key(dst, cnt ? keys + (cnt - 1) * ks : NULL, keys + cnt * ks)) {
		if (++cnt == cap) {
			tmp = realloc(keys, 2 * cap * ks);
			if (!tmp) {
				err = -ENOMEM;
				goto out;
			}
			keys = tmp;
			cap *= 2;
		}
	}
	n = (uint32_t)cnt;
	if (!cnt || !bpf_map_delete_batch(dst, keys, &n, &bo))
		goto out;
	for (i = 0; i < cnt; i++) {
		if (bpf_map_delete_elem(dst, keys + i * ks) && errno != ENOENT) {
			err = -errno;
			rs_warn("map %u (%s): emptying the copy: %s", info->id, info->name,
				rs_strerror(err));
			goto out;
		}
	}
out:
	free(keys);
	return err;
}

/* Key by key: get_next_key + lookup + update (every map type that has them). */
static int copy_iter(int src, int dst, const struct bpf_map_info *info, size_t vsz,
		     uint64_t *copied)
{
	void *key, *next, *val;
	bool first = true;
	int err = 0;

	key = calloc(1, info->key_size + 8);
	next = calloc(1, info->key_size + 8);
	val = calloc(1, vsz + 8);
	if (!key || !next || !val) {
		err = -ENOMEM;
		goto out;
	}
	while (!bpf_map_get_next_key(src, first ? NULL : key, next)) {
		first = false;
		memcpy(key, next, info->key_size);
		if (bpf_map_lookup_elem(src, key, val))
			continue;	/* deleted meanwhile */
		if (bpf_map_update_elem(dst, key, val, BPF_ANY)) {
			err = -errno;
			rs_warn("map %u (%s): copying an entry: %s", info->id, info->name,
				rs_strerror(err));
			goto out;
		}
		(*copied)++;
	}
out:
	free(key);
	free(next);
	free(val);
	return err;
}

/*
 * Batches: lookup up to `chunk` entries of src, update them into dst.  Returns -ENOTSUPP
 * (or -EOPNOTSUPP / -EINVAL) from the first lookup when the map type has no batch operations,
 * before anything was written.
 */
static int copy_batch(int src, int dst, const struct bpf_map_info *info, size_t vsz,
		      uint32_t chunk, bool skip_zero, uint64_t *copied)
{
	LIBBPF_OPTS(bpf_map_batch_opts, bo);
	size_t bsz = info->key_size > 8 ? info->key_size : 8;
	uint8_t *keys = NULL, *vals = NULL, *in, *out;
	bool first = true, last = false;
	int err = 0;

	in = calloc(1, bsz);
	out = calloc(1, bsz);
	if (!in || !out)
		goto enomem;
retry:
	free(keys);
	free(vals);
	keys = malloc((size_t)chunk * info->key_size);
	vals = malloc((size_t)chunk * vsz);
	if (!keys || !vals)
		goto enomem;
	while (!last) {
		uint32_t n = chunk, i, m;

		if (bpf_map_lookup_batch(src, first ? NULL : in, out, keys, vals, &n, &bo)) {
			err = -errno;
			if (err == -ENOSPC && !n && chunk < (1u << 20)) {
				/* a hash bucket holds more entries than one batch */
				chunk *= 4;
				goto retry;
			}
			if (err != -ENOENT)
				goto out;
			last = true;	/* ENOENT: this was the last (maybe empty) batch */
			err = 0;
		}
		first = false;
		memcpy(in, out, bsz);
		if (skip_zero) {
			/* fresh array destination: zero values are there already */
			for (i = 0, m = 0; i < n; i++) {
				if (all_zero(vals + (size_t)i * vsz, vsz))
					continue;
				if (m != i) {
					memcpy(keys + (size_t)m * info->key_size,
					       keys + (size_t)i * info->key_size, info->key_size);
					memcpy(vals + (size_t)m * vsz, vals + (size_t)i * vsz, vsz);
				}
				m++;
			}
			n = m;
		}
		if (!n)
			continue;
		m = n;
		if (bpf_map_update_batch(dst, keys, vals, &m, &bo)) {
			err = -errno;
			if (!*copied && batch_unsupported(err))
				goto out;	/* no batch update: the caller falls back */
			rs_warn("map %u (%s): batch update of %u entries: %s", info->id,
				info->name, n, rs_strerror(err));
			goto out;
		}
		*copied += n;
	}
	goto out;
enomem:
	err = -ENOMEM;
out:
	free(in);
	free(out);
	free(keys);
	free(vals);
	return err;
}

int rs_map_copy(int src_fd, int dst_fd, const struct bpf_map_info *info,
		const struct rs_map_copy_opts *opts)
{
	struct bpf_map_info own = {};
	uint32_t chunk = RS_OPTS_GET(opts, batch, 0) ? : RS_MAP_COPY_DEFAULT_BATCH;
	bool fresh = RS_OPTS_GET(opts, dst_empty, false);
	bool no_batch = RS_OPTS_GET(opts, no_batch, false);
	uint64_t copied = 0;
	size_t vsz;
	int err;

	if (!info) {
		uint32_t len = sizeof(own);

		if (bpf_obj_get_info_by_fd(src_fd, &own, &len))
			return -errno;
		info = &own;
	}
	vsz = info->value_size;
	if (rs_map_type_percpu(info->type)) {
		int ncpu = libbpf_num_possible_cpus();

		if (ncpu < 1)
			return ncpu < 0 ? ncpu : -EINVAL;
		vsz = (size_t)((info->value_size + 7) & ~7u) * ncpu;
	}
	if (!fresh && RS_OPTS_GET(opts, clear_dst, false) && !type_is_array(info->type)) {
		err = clear_map(dst_fd, info);
		if (err)
			return err;
	}
	err = -ENOTSUPP;
	if (!no_batch)
		err = copy_batch(src_fd, dst_fd, info, vsz, chunk,
				 fresh && type_is_array(info->type), &copied);
	if (err && batch_unsupported(err) && !copied) {
		if (!no_batch)
			rs_debug("map %u (%s): no batch operations for map type %u: copying key by key",
				 info->id, info->name, info->type);
		err = copy_iter(src_fd, dst_fd, info, vsz, &copied);
	}
	if (err)
		return err;
	if (RS_OPTS_HAS(opts, copied) && opts->copied)
		*opts->copied = copied;
	rs_debug("map %u (%s): %llu entries copied", info->id, info->name,
		 (unsigned long long)copied);
	return 0;
}
