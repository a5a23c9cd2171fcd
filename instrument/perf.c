// SPDX-License-Identifier: BSD-2-Clause
/*
 * perf.c - hardware counters around program runs (DESIGN.md section 5).
 *
 * Events are encoded with libpfm4 (pfm_get_os_event_encoding) and probed with a real
 * perf_event_open: libpfm4 may claim a PMU the kernel does not expose (these machines: every
 * hardware event fails with ENOENT).  When any hardware event cannot be opened, the counters
 * fall back to the software events task-clock and cpu-clock, and every event records its
 * source and why it fell back, so a report never passes a software figure off as a hardware
 * one.  The open call is injectable so the fallback decision is unit-tested without a PMU.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <perfmon/pfmlib_perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "instrument/replay_internal.h"

/* Generic names and the libpfm4 event strings they encode to. */
static const struct {
	const char *name, *pfm;
} hw_events[] = {
	{ "cycles",		"cycles" },
	{ "instructions",	"instructions" },
	{ "branch-misses",	"branch-misses" },
	{ "LLC-misses",		"perf::LLC-LOAD-MISSES" },
};

static const struct {
	const char *name;
	uint64_t config;
} sw_events[] = {
	{ "task-clock",		PERF_COUNT_SW_TASK_CLOCK },
	{ "cpu-clock",		PERF_COUNT_SW_CPU_CLOCK },
};

static int real_open(void *attr, int pid, int cpu, int group_fd, unsigned long flags)
{
	int fd = (int)syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags);

	return fd < 0 ? -errno : fd;
}

static rs_perf_open_fn open_fn = real_open;

void rs_perf_set_open_fn(rs_perf_open_fn fn)
{
	open_fn = fn ?: real_open;
}

const char *rs_perf_source_name(enum rs_perf_source s)
{
	switch (s) {
	case RS_PERF_HW:	return "hardware";
	case RS_PERF_SW:	return "software";
	default:		return "none";
	}
}

int rs_perf_encode(const char *name, uint32_t *type, uint64_t *config)
{
	static bool inited;
	struct perf_event_attr attr;
	pfm_perf_encode_arg_t arg;
	const char *pfm = NULL;
	size_t i;
	int ret;

	for (i = 0; i < RS_ARRAY_SIZE(hw_events); i++)
		if (!strcmp(name, hw_events[i].name))
			pfm = hw_events[i].pfm;
	if (!pfm)
		return -EINVAL;
	if (!inited) {
		ret = pfm_initialize();
		if (ret != PFM_SUCCESS) {
			rs_info("libpfm4: %s", pfm_strerror(ret));
			return -ENODEV;
		}
		inited = true;
	}
	memset(&attr, 0, sizeof(attr));
	memset(&arg, 0, sizeof(arg));
	arg.attr = &attr;
	arg.size = sizeof(arg);
	ret = pfm_get_os_event_encoding(pfm, PFM_PLM0 | PFM_PLM3, PFM_OS_PERF_EVENT, &arg);
	if (ret != PFM_SUCCESS) {
		rs_info("libpfm4: event %s (%s): %s", name, pfm, pfm_strerror(ret));
		return -ENOENT;
	}
	*type = attr.type;
	*config = attr.config;
	return 0;
}

static int open_one(struct rs_perf_event *e)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = e->type;
	attr.config = e->config;
	attr.disabled = 1;
	attr.exclude_hv = 1;
	e->fd = open_fn(&attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
	return e->fd < 0 ? e->fd : 0;
}

void rs_perf_close(struct rs_perf *p)
{
	size_t i;

	for (i = 0; i < p->cnt; i++)
		if (p->ev[i].fd >= 0)
			close(p->ev[i].fd);
	memset(p, 0, sizeof(*p));
}

int rs_perf_open(struct rs_perf *p)
{
	char why[96] = "";
	size_t i;
	int err;

	memset(p, 0, sizeof(*p));
	for (i = 0; i < RS_ARRAY_SIZE(hw_events); i++) {
		struct rs_perf_event *e = &p->ev[p->cnt];

		snprintf(e->name, sizeof(e->name), "%s", hw_events[i].name);
		e->fd = -1;
		e->source = RS_PERF_HW;
		err = rs_perf_encode(e->name, &e->type, &e->config);
		if (!err)
			err = open_one(e);
		if (err) {
			snprintf(why, sizeof(why), "%s: %s", e->name,
				 err == -ENOENT || err == -EOPNOTSUPP || err == -ENODEV ?
				 "no hardware PMU event" : rs_strerror(err));
			break;
		}
		p->cnt++;
	}
	if (p->cnt == RS_ARRAY_SIZE(hw_events)) {
		p->hw = true;
		return 0;
	}
	rs_perf_close(p);
	rs_info("hardware counters unavailable (%s): software events instead", why);
	for (i = 0; i < RS_ARRAY_SIZE(sw_events); i++) {
		struct rs_perf_event *e = &p->ev[p->cnt];

		snprintf(e->name, sizeof(e->name), "%s", sw_events[i].name);
		snprintf(e->why, sizeof(e->why), "%s", why);
		e->source = RS_PERF_SW;
		e->type = PERF_TYPE_SOFTWARE;
		e->config = sw_events[i].config;
		err = open_one(e);
		if (err) {
			char name[32];

			memcpy(name, e->name, sizeof(name));
			e->source = RS_PERF_NONE;
			e->fd = -1;
			snprintf(e->why, sizeof(e->why), "%s; %s: %s", why, name,
				 rs_strerror(err));
		}
		p->cnt++;
	}
	return p->ev[0].source == RS_PERF_NONE && p->ev[1].source == RS_PERF_NONE ? -ENODEV : 0;
}

static int ctl_all(struct rs_perf *p, unsigned long req)
{
	size_t i;

	for (i = 0; i < p->cnt; i++)
		if (p->ev[i].fd >= 0 && ioctl(p->ev[i].fd, req, 0))
			return -errno;
	return 0;
}

int rs_perf_start(struct rs_perf *p)
{
	int err = ctl_all(p, PERF_EVENT_IOC_RESET);

	return err ?: ctl_all(p, PERF_EVENT_IOC_ENABLE);
}

int rs_perf_stop(struct rs_perf *p)
{
	size_t i;
	int err = ctl_all(p, PERF_EVENT_IOC_DISABLE);

	for (i = 0; i < p->cnt && !err; i++) {
		struct rs_perf_event *e = &p->ev[i];

		if (e->fd < 0)
			continue;
		if (read(e->fd, &e->value, sizeof(e->value)) != sizeof(e->value))
			err = -EIO;
	}
	return err;
}

int rs_perf_measure_runs(struct rs_replay_prog *rp, const struct rs_trace *tr, size_t max,
			 struct rs_perf *p, size_t *runs)
{
	size_t i, n = max && max < tr->cnt ? max : tr->cnt;
	cpu_set_t saved;
	struct rs_run run;
	int err, pinned;

	*runs = 0;
	err = rs_perf_open(p);
	if (err)
		return err;
	pinned = rs_replay_pin_cpu(&saved);
	err = rs_perf_start(p);
	for (i = 0; i < n && !err; i++)
		if (!rs_replay_run_one(rp->fd, rp->type, 1, &tr->pkts[i], NULL, &run))
			(*runs)++;
	if (!err)
		err = rs_perf_stop(p);
	if (!pinned)
		rs_replay_unpin_cpu(&saved);
	for (i = 0; i < p->cnt; i++) {
		if (p->ev[i].fd >= 0)
			close(p->ev[i].fd);
		p->ev[i].fd = -1;
	}
	return err;
}
