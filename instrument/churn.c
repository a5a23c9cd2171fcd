// SPDX-License-Identifier: BSD-2-Clause
/*
 * churn.c - how often the control plane writes each map of a program, from the guard
 * watcher's per-map write counts (agent/guard.c, bpf/watcher.bpf.c).  The specializer skips
 * maps that change too often for a specialization to pay (rs_map_snapshot.updates_per_s).
 * Counts are sampled at the start and the end of a profiling window; the difference over the
 * window's length is the rate.
 */
#include <errno.h>
#include <string.h>

#include "agent/agent.h"
#include "instrument/instrument.h"

static int writes_of(struct rs_guard *g, uint32_t map_id, uint64_t *writes)
{
	uint64_t last = 0;
	int err;

	*writes = 0;
	err = rs_guard_churn(g, map_id, writes, &last);
	if (err == -ENOENT) {
		*writes = 0;	/* no write seen since the watcher started */
		return 0;
	}
	return err;
}

int rs_churn_begin(struct rs_guard *g, const struct rs_prog *prog, struct rs_map_churn *churn)
{
	size_t i;
	int err;

	for (i = 0; i < prog->map_cnt; i++) {
		memset(&churn[i], 0, sizeof(churn[i]));
		churn[i].map_idx = (uint32_t)i;
		churn[i].map_id = prog->maps[i].id;
		if (!churn[i].map_id)
			continue;
		err = writes_of(g, churn[i].map_id, &churn[i].writes);
		if (err) {
			rs_warn("map %u (%s): reading the watcher's write count: %s",
				churn[i].map_id, prog->maps[i].name, rs_strerror(err));
			return err;
		}
	}
	return 0;
}

int rs_churn_end(struct rs_guard *g, const struct rs_prog *prog, double window_s,
		 struct rs_map_churn *churn)
{
	size_t i;
	int err;

	for (i = 0; i < prog->map_cnt; i++) {
		uint64_t now;

		if (!churn[i].map_id)
			continue;
		err = writes_of(g, churn[i].map_id, &now);
		if (err)
			return err;
		churn[i].writes = now >= churn[i].writes ? now - churn[i].writes : 0;
		churn[i].updates_per_s = window_s > 0 ? (double)churn[i].writes / window_s : 0;
	}
	return 0;
}
