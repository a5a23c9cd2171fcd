/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * replay_internal.h - what the replay files (instrument/replay*.c, instrument/timing.c) share
 * and nobody else needs: the layout of an isolated program and one test run.
 */
#ifndef RS_REPLAY_INTERNAL_H
#define RS_REPLAY_INTERNAL_H

#include <sched.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "instrument/instrument.h"

/* One private map of an isolated program. */
struct rs_replay_map {
	char name[64];			/* libbpf name (ELF) or kernel name */
	char kname[BPF_OBJ_NAME_LEN];	/* kernel name */
	int fd;
	bool owned;			/* fd is ours to close (clones) */
	uint32_t type, key_size, value_size, max_entries, flags;
};

struct rs_replay_prog {
	char name[BPF_OBJ_NAME_LEN + 64];
	char origin[4200];
	int fd;
	uint32_t type, expected_attach_type, prog_flags;
	struct bpf_object *obj;		/* ELF mode: owns fd and maps */
	struct rs_replay_map *maps;
	size_t map_cnt;
	struct rs_prog *src;		/* rs_prog mode: what was loaded (maps by the clones' ids) */
};

/* Result of one test run of one packet. */
struct rs_run {
	int err;			/* 0, or the negative errno of the test run */
	int32_t verdict;
	uint32_t len;			/* output length */
	uint32_t duration;		/* ns, as the kernel reports */
};

#define RS_RUN_OUT_MAX 65536

/* One test run (repeat 1) of a packet; `out` has RS_RUN_OUT_MAX bytes (may be NULL). */
int rs_replay_run_one(int prog_fd, uint32_t prog_type, uint32_t ifindex,
		      const struct rs_packet *pkt, uint8_t *out, struct rs_run *run);

/* Pin the calling thread to the CPU it runs on (per-CPU maps, stable timing); undo after. */
int rs_replay_pin_cpu(cpu_set_t *saved);
void rs_replay_unpin_cpu(const cpu_set_t *saved);

/*
 * n more instances of rp's program against rp's own maps (same instructions: rp->src, or for an
 * ELF program fetched back from the kernel; each gets its own JIT image and so its own
 * placement).  fds[0..n) get the fds;
 * on error all are -1 and nothing is left open.
 */
int rs_replay_load_copies(const struct rs_replay_prog *rp, int *fds, size_t n);

/* Compare the maps of two programs (by name); appends divergences to res (replay_maps.c). */
int rs_replay_compare_maps(const struct rs_replay_prog *a, const struct rs_replay_prog *b,
			   const struct rs_replay_opts *opts, struct rs_replay_result *res);
/* Record a divergence (copied); keeps at most max, counts all. */
int rs_replay_add_div(struct rs_replay_result *res, size_t max, const struct rs_divergence *d,
		      const void *a, const void *b);

#endif /* RS_REPLAY_INTERNAL_H */
