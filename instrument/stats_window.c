// SPDX-License-Identifier: BSD-2-Clause
/*
 * stats_window.c - cost per packet of a live program from the kernel's run-time statistics.
 *
 * run_time_ns / run_cnt only count while statistics are enabled, and enabling them costs
 * every BPF program on the host ~40 ns per run, so they are enabled only for a window,
 * through a BPF_ENABLE_STATS fd (never by writing the sysctl): closing the fd ends it, also
 * when the process dies.  The end of the window checks that kernel.bpf_stats_enabled is back
 * at the value it had before.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "instrument/instrument.h"

int rs_bpf_stats_sysctl(void)
{
	char c = 0;
	FILE *f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");

	if (!f)
		return -errno;
	if (fread(&c, 1, 1, f) != 1)
		c = 0;
	fclose(f);
	return c == '1' ? 1 : c == '0' ? 0 : -EINVAL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int prog_stats(uint32_t prog_id, uint64_t *run_time_ns, uint64_t *run_cnt)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int fd, err = 0;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0) {
		err = errno == ENOENT ? -RS_ERR_NOT_FOUND : -errno;
		rs_warn("prog %u: %s", prog_id, rs_strerror(err));
		return err;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	*run_time_ns = info.run_time_ns;
	*run_cnt = info.run_cnt;
	close(fd);
	return err;
}

int rs_stats_window_begin(uint32_t prog_id, struct rs_stats_window *w)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->prog_id = prog_id;
	w->stats_fd = -1;
	w->prev_sysctl = rs_bpf_stats_sysctl();
	w->stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (w->stats_fd < 0) {
		err = -errno;
		rs_warn("prog %u: BPF_ENABLE_STATS: %s", prog_id, rs_strerror(err));
		w->stats_fd = -1;
		return err;
	}
	err = prog_stats(prog_id, &w->run_time_ns0, &w->run_cnt0);
	if (err) {
		close(w->stats_fd);
		w->stats_fd = -1;
		return err;
	}
	w->t0_ns = now_ns();
	return 0;
}

int rs_stats_window_end(struct rs_stats_window *w, struct rs_stats_result *res)
{
	uint64_t rt = 0, cnt = 0;
	int err, after;

	memset(res, 0, sizeof(*res));
	res->ns_per_packet = NAN;
	err = prog_stats(w->prog_id, &rt, &cnt);
	res->window_s = (double)(now_ns() - w->t0_ns) / 1e9;
	if (w->stats_fd >= 0)
		close(w->stats_fd);
	w->stats_fd = -1;
	after = rs_bpf_stats_sysctl();
	res->sysctl_restored = w->prev_sysctl < 0 || after == w->prev_sysctl;
	if (!res->sysctl_restored)
		rs_warn("kernel.bpf_stats_enabled is %d after the window, was %d (someone else "
			"holds stats on?)", after, w->prev_sysctl);
	if (err)
		return err;
	res->run_time_ns = rt - w->run_time_ns0;
	res->run_cnt = cnt - w->run_cnt0;
	if (res->run_cnt)
		res->ns_per_packet = (double)res->run_time_ns / (double)res->run_cnt;
	return 0;
}
