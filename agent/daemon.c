// SPDX-License-Identifier: BSD-2-Clause
/*
 * daemon.c - the `respec agent` process: one thread that
 *   - restores what a previous agent left in the swap journal (it may have been killed),
 *   - opens the guard (pinned, so specialized programs stay correct if we die) and the load
 *     capture (programs loaded while we run are captured exactly),
 *   - discovers attach points on a timer and soon after program-load events, and creates one
 *     control loop (loop.c) per selected point,
 *   - steps every loop each tick, writes the JSON-lines optimization log and the metrics,
 *   - tells systemd READY=1 / STOPPING=1 through $NOTIFY_SOCKET (no libsystemd),
 *   - on SIGTERM/SIGINT finishes running windows and restores every original before exiting;
 *     a second signal restores through the async-signal-safe path and exits at once.
 * --once runs one pass over every point and exits leaving the specialized programs in place
 * (guards pinned and active, journal entries open: `respec restore` undoes them).
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "agent/agent.h"

#define NS 1000000000ull
#define EVENT_DISCOVER_MIN_NS (NS)	/* load events trigger a scan at most once a second */

static volatile sig_atomic_t stop_signals;

static void on_signal(int sig)
{
	if (stop_signals++ > 0) {
		/* second signal: restore what we swapped, now, and go */
		rs_restore_all_signal_safe();
		_exit(128 + sig);
	}
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* sd_notify(3) by hand: one datagram to $NOTIFY_SOCKET ('@' = abstract namespace). */
static void notify(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = 0;
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len) < 0)
		rs_debug("agent: sd_notify: %s\n", strerror(errno));
	close(fd);
}

void rs_agent_oplog(struct rs_agent_env *env, const char *event, struct json_t *rec)
{
	struct timespec ts;
	json_t *line;
	char *s;

	if (!rec)
		return;
	if (!env || !env->oplog) {
		json_decref(rec);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	line = json_pack("{s:f,s:s}", "time", (double)ts.tv_sec + (double)ts.tv_nsec / 1e9,
			 "event", event);
	json_object_update(line, rec);
	json_decref(rec);
	s = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (!s)
		return;
	fprintf(env->oplog, "%s\n", s);
	fflush(env->oplog);
	free(s);
}

struct daemon {
	struct rs_agent_env env;
	const struct rs_agent_config *cfg;
	struct rs_agent_point **pts;
	size_t cnt, cap;
	struct rs_agent_metrics *metrics;
	char *mbuf;
	size_t mlen;
	uint64_t next_discover, next_metrics, last_event_discover;
	bool discover_soon, discovered_once;
	/* programs someone else put in place of ours: left alone until `until` (DESIGN §4:
	 * back off); a ring, the oldest entry is reused */
	struct { uint32_t prog_id; uint64_t until; } backoff[32];
	unsigned int backoff_next;
	int argc;
	char **argv;
};

static int prog_name(uint32_t id, char *name, size_t sz)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = 0;

	*name = 0;
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else
		snprintf(name, sz, "%s", info.name);
	close(fd);
	return err;
}

static bool tracked(struct daemon *d, const struct rs_attach_point *pt)
{
	struct rs_agent_point_info pi;
	char k1[160], k2[160];
	size_t i;

	rs_attach_point_key(pt, k1, sizeof(k1));
	for (i = 0; i < d->cnt; i++) {
		rs_agent_point_info(d->pts[i], &pi);
		if (!strcmp(k1, rs_attach_point_key(&pi.pt, k2, sizeof(k2))))
			return true;
	}
	return false;
}

/* A program someone else put in place of ours, still inside its back-off? */
static bool backing_off(const struct daemon *d, uint32_t prog_id)
{
	uint64_t now = mono_ns();
	size_t k;

	for (k = 0; k < RS_ARRAY_SIZE(d->backoff); k++)
		if (d->backoff[k].prog_id == prog_id && now < d->backoff[k].until)
			return true;
	return false;
}

static int discover(struct daemon *d)
{
	struct rs_attach_point *pts = NULL;
	struct rs_agent_point *p;
	size_t cnt = 0, i;
	char name[BPF_OBJ_NAME_LEN];
	int err;

	err = rs_discover(&pts, &cnt);
	if (err) {
		rs_warn("agent: discovery failed: %s\n", rs_strerror(err));
		return err;
	}
	for (i = 0; i < cnt; i++) {
		if (tracked(d, &pts[i]) || backing_off(d, pts[i].prog_id) ||
		    prog_name(pts[i].prog_id, name, sizeof(name)) ||
		    !rs_agent_config_selects(d->cfg, &pts[i], name))
			continue;
		if (d->cnt == d->cap) {
			size_t nc = d->cap ? 2 * d->cap : 8;
			void *np = realloc(d->pts, nc * sizeof(*d->pts));

			if (!np)
				break;
			d->pts = np;
			d->cap = nc;
		}
		if (!rs_agent_point_new(&d->env, &pts[i], &p))
			d->pts[d->cnt++] = p;
	}
	free(pts);
	d->discovered_once = true;
	return 0;
}

static void drop_gone(struct daemon *d)
{
	struct rs_agent_point_info pi;
	size_t i = 0;

	while (i < d->cnt) {
		rs_agent_point_info(d->pts[i], &pi);
		if (pi.state != RS_AGENT_GONE) {
			i++;
			continue;
		}
		if (pi.foreign && pi.live_id && d->cfg->foreign_backoff_s > 0) {
			unsigned int k = d->backoff_next++ % RS_ARRAY_SIZE(d->backoff);

			d->backoff[k].prog_id = pi.live_id;
			d->backoff[k].until = mono_ns() +
					      (uint64_t)(d->cfg->foreign_backoff_s * 1e9);
		}
		rs_agent_point_free(d->pts[i]);
		d->pts[i] = d->pts[--d->cnt];
		d->discover_soon = true;	/* start over from whatever is there now */
	}
}

static void metrics_update(struct daemon *d, bool write_file)
{
	struct rs_agent_point_info *info;
	size_t i;

	if (!*d->cfg->metrics_path && !d->metrics)
		return;
	info = calloc(d->cnt + 1, sizeof(*info));
	if (!info)
		return;
	for (i = 0; i < d->cnt; i++)
		rs_agent_point_info(d->pts[i], &info[i]);
	free(d->mbuf);
	d->mbuf = NULL;
	if (!rs_agent_metrics_render(&d->env, info, d->cnt, cpu_seconds(), &d->mbuf, &d->mlen) &&
	    write_file && *d->cfg->metrics_path)
		rs_agent_metrics_write_file(d->cfg->metrics_path, d->mbuf, d->mlen);
	free(info);
}

static void wait_tick(struct daemon *d, int ms)
{
	struct pollfd pfd = { .fd = rs_agent_metrics_fd(d->metrics), .events = POLLIN };
	int n;

	if (d->metrics) {
		if (poll(&pfd, 1, ms) > 0)
			rs_agent_metrics_serve(d->metrics, d->mbuf ? d->mbuf : "", d->mbuf ?
					       d->mlen : 0);
		ms = 0;
	}
	if (d->env.cap) {
		n = rs_capture_poll(d->env.cap, ms);
		if (n > 0) {
			d->env.stats.capture_events += (uint64_t)n;
			d->discover_soon = true;
		}
	} else if (ms) {
		usleep((useconds_t)ms * 1000);
	}
}

static bool all_settled(struct daemon *d)
{
	size_t i;

	if (!d->discovered_once)
		return false;
	for (i = 0; i < d->cnt; i++)
		if (rs_agent_point_busy(d->pts[i]))
			return false;
	return true;
}

static void restore_journal(const struct rs_agent_config *cfg)
{
	RS_OPTS(rs_restore_opts, ro, .journal_dir = *cfg->journal_dir ? cfg->journal_dir : NULL);
	struct rs_journal_entry *e = NULL;
	size_t n = 0;

	if (rs_journal_list(ro.journal_dir, &e, &n) || !n) {
		free(e);
		return;
	}
	free(e);
	rs_info("agent: %zu journal entries of an earlier run: restoring their originals\n", n);
	rs_restore_all(&ro);
}

static int setup(struct daemon *d, const struct rs_agent_config *cfg)
{
	RS_OPTS(rs_guard_opts, go, .pin_dir = *cfg->pin_dir ? cfg->pin_dir : RS_GUARD_PIN_DIR);
	RS_OPTS(rs_capture_opts, co, .store_dir = *cfg->capture_dir ? cfg->capture_dir : NULL);
	int err;

	d->cfg = cfg;
	d->env.cfg = cfg;
	if (*cfg->events_path) {
		d->env.oplog = strcmp(cfg->events_path, "-") ? fopen(cfg->events_path, "ae") :
			       stderr;
		if (!d->env.oplog) {
			err = -errno;
			rs_warn("agent: events %s: %s\n", cfg->events_path, strerror(errno));
			return err;
		}
	}
	if (*cfg->log_path) {
		err = rs_oplog_open(cfg->log_path, NULL, &d->env.olog);
		if (err) {
			rs_warn("agent: log %s: %s\n", cfg->log_path, rs_strerror(err));
			return err;
		}
		rs_oplog_run(d->env.olog, d->argc, d->argv);
	}
	if (*cfg->metrics_listen) {
		err = rs_agent_metrics_open(cfg->metrics_listen, &d->metrics);
		if (err)
			return err;
	}
	restore_journal(cfg);
	err = rs_guard_open(&go, &d->env.guard);
	if (err) {
		rs_warn("agent: no guard (%s): programs will not be specialized\n",
			rs_strerror(err));
		d->env.guard = NULL;
	}
	if (cfg->capture) {
		err = rs_capture_start(&co, &d->env.cap);
		if (err) {
			rs_warn("agent: no load capture (%s): originals come from the lifter\n",
				rs_strerror(err));
			d->env.cap = NULL;
		}
	}
	rs_agent_oplog(&d->env, "run", json_pack("{s:i,s:s,s:s,s:s}", "pid", (int)getpid(),
						 "config", *cfg->path ? cfg->path : "(defaults)",
						 "guard", d->env.guard ?
						 rs_guard_hook_name(d->env.guard) : "none",
						 "capture", d->env.cap ?
						 rs_capture_hook(d->env.cap) : "none"));
	return 0;
}

static int teardown(struct daemon *d, bool restore)
{
	int err = 0, e;
	size_t i;
	bool all_ok = true;

	d->env.stopping = true;
	/* finish profile windows (the variant goes back out) */
	for (i = 0; i < d->cnt; i++)
		rs_agent_point_step(d->pts[i], mono_ns());
	for (i = 0; restore && i < d->cnt; i++) {
		e = rs_agent_point_restore(d->pts[i]);
		if (e) {
			all_ok = false;
			err = err ?: e;
		}
	}
	metrics_update(d, true);
	for (i = 0; i < d->cnt; i++)
		rs_agent_point_free(d->pts[i]);
	free(d->pts);
	d->pts = NULL;
	d->cnt = 0;
	if (d->env.cap)
		rs_capture_stop(d->env.cap);
	if (d->env.guard) {
		rs_guard_close(d->env.guard);
		/* nothing of ours is left in place: the pinned watcher is not needed any more */
		if (restore && all_ok)
			rs_guard_unpin(*d->cfg->pin_dir ? d->cfg->pin_dir : RS_GUARD_PIN_DIR);
	}
	rs_agent_oplog(&d->env, "exit", json_pack("{s:b,s:s}", "restored", restore, "result",
						  err ? rs_strerror(err) : "ok"));
	if (d->env.oplog && d->env.oplog != stderr)
		fclose(d->env.oplog);
	rs_oplog_close(d->env.olog);
	rs_agent_metrics_close(d->metrics);
	free(d->mbuf);
	rs_prog_load_attrs_cleanup();
	return err;
}

int rs_agent_run(const struct rs_agent_config *cfg, const struct rs_agent_run_opts *opts)
{
	bool once = RS_OPTS_GET(opts, once, false);
	double duration = RS_OPTS_GET(opts, duration_s, 0);
	struct sigaction sa = { .sa_handler = on_signal };
	struct daemon d = {};
	uint64_t now, t_end;
	int err, tick_ms = (int)(cfg->tick_s * 1000);
	size_t i;

	d.argc = RS_OPTS_GET(opts, argc, 0);
	d.argv = RS_OPTS_GET(opts, argv, NULL);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	err = setup(&d, cfg);
	if (err) {
		teardown(&d, false);
		return err;
	}
	now = mono_ns();
	t_end = duration > 0 ? now + (uint64_t)(duration * 1e9) : 0;
	d.discover_soon = true;
	notify("READY=1\nSTATUS=discovering attach points");
	while (!stop_signals) {
		now = mono_ns();
		if (t_end && now >= t_end)
			break;
		if (now >= d.next_discover ||
		    (d.discover_soon && now >= d.last_event_discover + EVENT_DISCOVER_MIN_NS)) {
			if (!once || !d.discovered_once)
				discover(&d);
			d.discover_soon = false;
			d.last_event_discover = now;
			d.next_discover = now + (uint64_t)(cfg->discover_interval_s * 1e9);
		}
		for (i = 0; i < d.cnt; i++)
			rs_agent_point_step(d.pts[i], mono_ns());
		drop_gone(&d);
		if (now >= d.next_metrics) {
			char st[96];

			metrics_update(&d, true);
			d.next_metrics = now + (uint64_t)(cfg->metrics_interval_s * 1e9);
			snprintf(st, sizeof(st), "STATUS=%zu attach points, %llu swaps", d.cnt,
				 (unsigned long long)d.env.stats.swaps);
			notify(st);
		}
		if (once && all_settled(&d))
			break;
		wait_tick(&d, tick_ms);
	}
	notify("STOPPING=1");
	if (stop_signals)
		rs_info("agent: signal received: restoring the originals\n");
	return teardown(&d, !once || stop_signals);
}
