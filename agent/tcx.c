// SPDX-License-Identifier: BSD-2-Clause
/*
 * tcx.c - BPF_PROG_QUERY on a tcx hook through the raw syscall: our uapi (6.1) and libbpf
 * 1.1 predate tcx, so the attr layout of Linux 6.6 is spelled out here, once.
 */
#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/bpf.h>

#include "agent/agent.h"
#include "agent/tcx.h"

/* BPF_PROG_QUERY as of Linux 6.6 (target_ifindex, link_ids, revision). */
struct rs_query_attr {
	uint32_t target_ifindex;
	uint32_t attach_type;
	uint32_t query_flags;
	uint32_t attach_flags;
	uint64_t prog_ids;
	uint32_t count;
	uint32_t pad;
	uint64_t prog_attach_flags;
	uint64_t link_ids;
	uint64_t link_attach_flags;
	uint64_t revision;
};

int rs_tcx_query(int ifindex, bool egress, uint32_t *prog_ids, uint32_t *link_ids,
		 uint32_t *cnt, uint64_t *revision)
{
	union {
		struct rs_query_attr q;
		union bpf_attr attr;
	} a;
	uint32_t room = *cnt;

	memset(&a, 0, sizeof(a));
	a.q.target_ifindex = (uint32_t)ifindex;
	a.q.attach_type = egress ? RS_BPF_TCX_EGRESS : RS_BPF_TCX_INGRESS;
	a.q.prog_ids = (uintptr_t)prog_ids;
	a.q.link_ids = (uintptr_t)link_ids;
	a.q.count = room;
	*cnt = 0;
	/* ENOSPC: more programs than room, the first `room` are filled */
	if (syscall(__NR_bpf, BPF_PROG_QUERY, &a, sizeof(a)) < 0 && errno != ENOSPC)
		return -errno;
	*cnt = a.q.count < room ? a.q.count : room;
	if (revision)
		*revision = a.q.revision;
	return 0;
}
