/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tcx.h - agent-internal: what is on a tcx hook (BPF_PROG_QUERY with the Linux 6.6 mprog
 * layout, newer than our 6.1 uapi and without a libbpf 1.1 helper).  Shared by discovery
 * (agent/discover.c) and the compare-and-swap checks (agent/swap.c).
 */
#ifndef RS_AGENT_TCX_H
#define RS_AGENT_TCX_H

#include <stdbool.h>
#include <stdint.h>

/* How many programs one query returns at most (more are cut, not an error). */
#define RS_TCX_MAX_PROGS	64

/*
 * Programs on the tcx ingress / egress hook of ifindex (current network namespace), in hook
 * order: *cnt in = room in prog_ids / link_ids, out = entries filled; link_ids[i] is 0 for a
 * program attached without a link.  revision (may be NULL) gets the hook's revision.
 * Returns 0 or -errno (EINVAL: kernel without tcx; ENODEV: no such device).
 */
int rs_tcx_query(int ifindex, bool egress, uint32_t *prog_ids, uint32_t *link_ids,
		 uint32_t *cnt, uint64_t *revision);

#endif /* RS_AGENT_TCX_H */
