/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * guard_testlib.h - a stand-in guard generation array for tests that build guarded programs
 * without the agent's watcher (rs_guard_open): one ARRAY entry of `slots` u64 generations,
 * described as the rs_map_ref that goes into rs_opt_opts.guard_map.
 *
 * Header-only (static functions) so every test stays one translation unit.
 */
#ifndef RS_GUARD_TESTLIB_H
#define RS_GUARD_TESTLIB_H

#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "optimizer/ir.h"

/* The array's fd (close it), or a negative value when it cannot be created. */
static inline int guard_array(size_t slots, struct rs_map_ref *ref)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info), vsz = (uint32_t)(slots ? slots : 1) * 8;
	int fd;

	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "rs_guard", 4, vsz, 1, NULL);
	if (fd < 0)
		return fd;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return -1;
	}
	memset(ref, 0, sizeof(*ref));
	ref->id = info.id;
	ref->type = BPF_MAP_TYPE_ARRAY;
	ref->key_size = 4;
	ref->value_size = vsz;
	ref->max_entries = 1;
	strcpy(ref->name, "rs_guard");
	return fd;
}

#endif /* RS_GUARD_TESTLIB_H */
