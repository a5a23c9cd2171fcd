/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * tcx.h - agent-internal: the tc hooks.  What is on a tcx hook (BPF_PROG_QUERY with the
 * Linux 6.6 mprog layout, newer than our 6.1 uapi and without a libbpf 1.1 helper), shared by
 * discovery (agent/discover.c) and the compare-and-swap checks (agent/swap.c); the clsact
 * parent handle of a cls_bpf hook, shared by the filter dump (agent/netlink.c) and the
 * signal-safe restore (agent/restore.c).
 */
#ifndef RS_AGENT_TCX_H
#define RS_AGENT_TCX_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/pkt_sched.h>

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

/* tcm_parent of the clsact ingress (ffff:fff2) or egress (ffff:fff3) hook. */
static inline uint32_t rs_tc_clsact_parent(bool egress)
{
	return TC_H_MAKE(TC_H_CLSACT, egress ? TC_H_MIN_EGRESS : TC_H_MIN_INGRESS);
}

#endif /* RS_AGENT_TCX_H */
