// SPDX-License-Identifier: BSD-2-Clause
/*
 * snapshot_util.c - the pure helpers around snapshots and profiles: freeing them and looking up
 * an entry of a map snapshot by exact key.  Producing snapshots and profiles is instrument/'s
 * job; the optimizer only reads them.
 */
#include <stdlib.h>
#include <string.h>

#include "optimizer/optimizer.h"

void rs_snapshot_free(struct rs_snapshot *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < s->map_cnt; i++) {
		free(s->maps[i].keys);
		free(s->maps[i].values);
	}
	free(s->maps);
	s->maps = NULL;
	s->map_cnt = 0;
}

const uint8_t *rs_snapshot_lookup(const struct rs_map_snapshot *m, const void *key)
{
	size_t i;

	if (!m || !key || !m->key_size || !m->keys || !m->values)
		return NULL;
	for (i = 0; i < m->cnt; i++) {
		if (!memcmp(m->keys + i * m->key_size, key, m->key_size))
			return m->values + i * m->value_stride;
	}
	return NULL;
}

void rs_profile_free(struct rs_profile *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->site_cnt; i++) {
		free(p->sites[i].keys);
		free(p->sites[i].counts);
	}
	free(p->sites);
	free(p->branches);
	p->sites = NULL;
	p->site_cnt = 0;
	p->branches = NULL;
	p->branch_cnt = 0;
}
