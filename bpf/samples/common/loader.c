// SPDX-License-Identifier: BSD-2-Clause
/*
 * loader.c - the control plane of a sample data plane, built once per sample as NAME-loader
 * (SAMPLE_NAME, SAMPLE_OBJ_DIR set by CMake):
 *
 *   NAME-loader --dev IF --scenario FILE [--xdp-mode skb|native] [--pin DIR] [--updates]
 *               [--obj FILE] [--xdp] [-v]
 *
 * loads NAME.bpf.o, fills its maps from the scenario, attaches it (XDP with bpf_xdp_attach;
 * the firewall on TC ingress with bpf_tc_hook_create/bpf_tc_attach, or as XDP with --xdp), then
 * stays running like a control plane.  SIGUSR1 applies every "updates" entry; --updates applies
 * each at its time ("at", in seconds after start).  Commands on stdin, one per line, answered
 * with "ok" or "error: ..." on stdout:
 *     update MAP KEYJSON VALUEJSON
 *     delete MAP KEYJSON
 *     updates                       (same as SIGUSR1)
 *     quit
 * SIGTERM, SIGINT or quit detach the program, remove pins and exit 0.  Once attached, one line
 * "ready prog ID NAME dev IF HOOK" goes to stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent/agent.h"
#include "instrument/instrument.h"

#ifndef SAMPLE_NAME
#error "SAMPLE_NAME must be defined"
#endif

static int verbosity;

static void log_stderr(enum rs_log_level level, const char *fmt, va_list ap)
{
	char buf[4096];
	size_t n;

	if (level == RS_LOG_DEBUG && verbosity < 1)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fprintf(stderr, "%s-loader: %s\n", SAMPLE_NAME, buf);
}

struct loader {
	const char *dev, *scenario_path, *pin_dir, *obj_path;
	int ifindex;
	__u32 xdp_flags;
	bool timed_updates, use_xdp;
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct rs_scenario *sc;
	struct rs_scenario_map *maps;
	size_t map_cnt;
	bool attached, tc_hook_created, pinned;
	struct bpf_tc_hook tc_hook;
	struct bpf_tc_opts tc_opts;
	bool *update_done;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s-loader --dev IF --scenario FILE [--xdp-mode skb|native] [--pin DIR]\n"
		"                 [--updates] [--obj FILE]%s [-v]\n"
		"stdin: update MAP KEYJSON VALUEJSON | delete MAP KEYJSON | updates | quit\n",
		SAMPLE_NAME, strcmp(SAMPLE_NAME, "firewall") ? "" : " [--xdp]");
}

static bool is_tc(const struct loader *l)
{
	return !strcmp(SAMPLE_NAME, "firewall") && !l->use_xdp;
}

static int attach(struct loader *l)
{
	int fd = bpf_program__fd(l->prog), err;

	if (!is_tc(l)) {
		err = bpf_xdp_attach(l->ifindex, fd, l->xdp_flags | XDP_FLAGS_UPDATE_IF_NOEXIST,
				     NULL);
		if (err) {
			rs_warn("dev %s: XDP attach failed: %s", l->dev, strerror(-err));
			return err;
		}
		l->attached = true;
		return 0;
	}
	l->tc_hook = (struct bpf_tc_hook){ .sz = sizeof(l->tc_hook), .ifindex = l->ifindex,
					   .attach_point = BPF_TC_INGRESS };
	err = bpf_tc_hook_create(&l->tc_hook);
	if (err && err != -EEXIST) {
		rs_warn("dev %s: creating the clsact qdisc failed: %s", l->dev, strerror(-err));
		return err;
	}
	l->tc_hook_created = !err;
	l->tc_opts = (struct bpf_tc_opts){ .sz = sizeof(l->tc_opts), .prog_fd = fd };
	err = bpf_tc_attach(&l->tc_hook, &l->tc_opts);
	if (err) {
		rs_warn("dev %s: TC attach failed: %s", l->dev, strerror(-err));
		return err;
	}
	l->attached = true;
	return 0;
}

static void detach(struct loader *l)
{
	int err;

	if (l->attached && !is_tc(l)) {
		err = bpf_xdp_detach(l->ifindex, l->xdp_flags, NULL);
		if (err)
			rs_warn("dev %s: XDP detach failed: %s", l->dev, strerror(-err));
	} else if (l->attached) {
		l->tc_opts.prog_fd = 0;
		l->tc_opts.prog_id = 0;
		l->tc_opts.flags = 0;
		err = bpf_tc_detach(&l->tc_hook, &l->tc_opts);
		if (err)
			rs_warn("dev %s: TC detach failed: %s", l->dev, strerror(-err));
	}
	if (l->tc_hook_created) {
		/* both directions: destroys the clsact qdisc we created */
		l->tc_hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&l->tc_hook);
	}
	l->attached = false;
	l->tc_hook_created = false;
}

static int pin(struct loader *l)
{
	char path[4096];
	int err;

	if (mkdir(l->pin_dir, 0700) && errno != EEXIST) {
		err = -errno;
		rs_warn("pin dir %s: %s (is bpffs mounted?)", l->pin_dir, strerror(errno));
		return err;
	}
	err = bpf_object__pin_maps(l->obj, l->pin_dir);
	if (err) {
		rs_warn("pin maps under %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	snprintf(path, sizeof(path), "%s/%s", l->pin_dir, bpf_program__name(l->prog));
	err = bpf_program__pin(l->prog, path);
	if (err) {
		rs_warn("pin program at %s: %s", path, strerror(-err));
		bpf_object__unpin_maps(l->obj, l->pin_dir);
		return err;
	}
	l->pinned = true;
	return 0;
}

static void unpin(struct loader *l)
{
	char path[4096];

	if (!l->pinned)
		return;
	snprintf(path, sizeof(path), "%s/%s", l->pin_dir, bpf_program__name(l->prog));
	bpf_program__unpin(l->prog, path);
	bpf_object__unpin_maps(l->obj, l->pin_dir);
	rmdir(l->pin_dir);
	l->pinned = false;
}

static int apply_update(struct loader *l, size_t i)
{
	int err = rs_scenario_apply_update(l->sc, i, bpf_object__btf(l->obj), l->maps,
					   l->map_cnt);

	if (!err)
		rs_info("applied update %zu of %s", i, rs_scenario_path(l->sc));
	return err;
}

static int apply_all_updates(struct loader *l)
{
	size_t i;
	int err = 0;

	for (i = 0; i < rs_scenario_update_cnt(l->sc); i++) {
		int e = apply_update(l, i);

		if (e && !err)
			err = e;
		l->update_done[i] = true;
	}
	return err;
}

/* Parse one JSON value from *s, advancing it.  NULL on error. */
static json_t *next_json(const char **s)
{
	json_error_t jerr;
	json_t *v;

	while (**s == ' ' || **s == '\t')
		(*s)++;
	v = json_loadb(*s, strlen(*s), JSON_DISABLE_EOF_CHECK | JSON_DECODE_ANY, &jerr);
	if (v)
		*s += jerr.position;
	return v;
}

/* One stdin command; returns 1 for quit, 0 otherwise (errors are answered, not fatal). */
static int command(struct loader *l, char *line)
{
	const struct rs_scenario_map *m;
	char op[16], map[256];
	json_t *key = NULL, *val = NULL;
	const char *rest;
	int n = 0, err;

	line[strcspn(line, "\n")] = '\0';
	if (sscanf(line, "%15s%n", op, &n) != 1)
		return 0;
	if (!strcmp(op, "quit"))
		return 1;
	if (!strcmp(op, "updates")) {
		err = apply_all_updates(l);
		goto answer;
	}
	if (strcmp(op, "update") && strcmp(op, "delete")) {
		printf("error: unknown command \"%s\"\n", op);
		goto out;
	}
	rest = line + n;
	if (sscanf(rest, "%255s%n", map, &n) != 1) {
		printf("error: %s needs a map name\n", op);
		goto out;
	}
	rest += n;
	m = rs_scenario_find_map(l->maps, l->map_cnt, map);
	if (!m) {
		printf("error: no map named %s\n", map);
		goto out;
	}
	key = next_json(&rest);
	if (key && !strcmp(op, "update"))
		val = next_json(&rest);
	if (!key || (!strcmp(op, "update") && !val)) {
		printf("error: %s %s: expected JSON %s\n", op, map,
		       key ? "VALUE after the key" : "KEY");
		goto out;
	}
	err = rs_scenario_map_write(bpf_object__btf(l->obj), m, key, val, l->obj, "stdin");
answer:
	if (err)
		printf("error: %s\n", rs_strerror(err));
	else
		printf("ok\n");
out:
	fflush(stdout);
	json_decref(key);
	json_decref(val);
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Timeout until the next timed update (ms), -1 when none is due. */
static int next_timeout(struct loader *l, double start)
{
	double best = -1, at;
	size_t i;
	bool secs;

	if (!l->timed_updates)
		return -1;
	for (i = 0; i < rs_scenario_update_cnt(l->sc); i++) {
		if (l->update_done[i] || rs_scenario_update_at(l->sc, i, &at, &secs))
			continue;
		if (best < 0 || at < best)
			best = at;
	}
	if (best < 0)
		return -1;
	best = (start + best - now_s()) * 1000;
	return best < 0 ? 0 : (int)best + 1;
}

static void run_due_updates(struct loader *l, double start)
{
	double at;
	size_t i;
	bool secs;

	if (!l->timed_updates)
		return;
	for (i = 0; i < rs_scenario_update_cnt(l->sc); i++) {
		if (l->update_done[i] || rs_scenario_update_at(l->sc, i, &at, &secs))
			continue;
		if (start + at <= now_s()) {
			apply_update(l, i);
			l->update_done[i] = true;
		}
	}
}

static int serve(struct loader *l, int sfd)
{
	struct pollfd pfd[2] = { { .fd = sfd, .events = POLLIN },
				 { .fd = STDIN_FILENO, .events = POLLIN } };
	double start = now_s();
	char line[65536];

	for (;;) {
		int n = poll(pfd, 2, next_timeout(l, start));

		if (n < 0 && errno != EINTR)
			return -errno;
		run_due_updates(l, start);
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGUSR1)
					apply_all_updates(l);
				else
					return 0;
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP)) {
			if (!fgets(line, sizeof(line), stdin)) {
				pfd[1].fd = -1;		/* EOF: keep serving signals */
				continue;
			}
			if (command(l, line))
				return 0;
		}
	}
}

static int parse_args(struct loader *l, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dev", required_argument, NULL, 'd' },
		{ "scenario", required_argument, NULL, 's' },
		{ "xdp-mode", required_argument, NULL, 'm' },
		{ "pin", required_argument, NULL, 'p' },
		{ "updates", no_argument, NULL, 'u' },
		{ "obj", required_argument, NULL, 'o' },
		{ "xdp", no_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "d:s:m:p:uo:xvh", opts, NULL)) != -1) {
		switch (c) {
		case 'd': l->dev = optarg; break;
		case 's': l->scenario_path = optarg; break;
		case 'p': l->pin_dir = optarg; break;
		case 'u': l->timed_updates = true; break;
		case 'o': l->obj_path = optarg; break;
		case 'x': l->use_xdp = true; break;
		case 'v': verbosity++; break;
		case 'm':
			if (!strcmp(optarg, "skb")) {
				l->xdp_flags = XDP_FLAGS_SKB_MODE;
			} else if (!strcmp(optarg, "native")) {
				l->xdp_flags = XDP_FLAGS_DRV_MODE;
			} else {
				fprintf(stderr, "%s-loader: --xdp-mode: \"%s\" is not skb or native\n",
					SAMPLE_NAME, optarg);
				return -EINVAL;
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (!l->dev || !l->scenario_path || optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	if (l->use_xdp && strcmp(SAMPLE_NAME, "firewall")) {
		fprintf(stderr, "%s-loader: --xdp is for the firewall only\n", SAMPLE_NAME);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct loader l = {};
	char obj_buf[4096];
	sigset_t mask;
	int err, sfd = -1;

	rs_set_log_fn(log_stderr);
	rs_route_libbpf_log();
	if (parse_args(&l, argc, argv))
		return 2;
	l.ifindex = if_nametoindex(l.dev);
	if (!l.ifindex) {
		fprintf(stderr, "%s-loader: dev %s: %s\n", SAMPLE_NAME, l.dev, strerror(errno));
		return 1;
	}
	if (!l.obj_path) {
		snprintf(obj_buf, sizeof(obj_buf), "%s/%s%s.bpf.o", SAMPLE_OBJ_DIR, SAMPLE_NAME,
			 l.use_xdp ? "-xdp" : "");
		l.obj_path = obj_buf;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		err = -errno;
		goto out;
	}

	err = rs_scenario_load(l.scenario_path, &l.sc);
	if (err)
		goto out;
	l.update_done = calloc(rs_scenario_update_cnt(l.sc) + 1, sizeof(bool));
	l.obj = bpf_object__open_file(l.obj_path, NULL);
	if (!l.obj) {
		err = -errno;
		rs_warn("%s: %s", l.obj_path, strerror(errno));
		goto out;
	}
	err = bpf_object__load(l.obj);
	if (err) {
		rs_warn("%s: load failed: %s", l.obj_path, strerror(-err));
		goto out;
	}
	l.prog = bpf_object__next_program(l.obj, NULL);
	if (!l.prog || !l.update_done) {
		err = l.prog ? -ENOMEM : -RS_ERR_NOT_FOUND;
		goto out;
	}
	err = rs_scenario_object_maps(l.obj, &l.maps, &l.map_cnt);
	if (err)
		goto out;
	err = rs_scenario_apply(l.sc, bpf_object__btf(l.obj), l.maps, l.map_cnt, l.obj);
	if (err)
		goto out;
	if (l.pin_dir) {
		err = pin(&l);
		if (err)
			goto out;
	}
	err = attach(&l);
	if (err)
		goto out;
	{
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);

		bpf_obj_get_info_by_fd(bpf_program__fd(l.prog), &info, &len);
		printf("ready prog %u %s dev %s %s\n", info.id, bpf_program__name(l.prog), l.dev,
		       is_tc(&l) ? "tc" : "xdp");
		fflush(stdout);
	}
	err = serve(&l, sfd);
out:
	detach(&l);
	unpin(&l);
	free(l.maps);
	free(l.update_done);
	bpf_object__close(l.obj);
	rs_scenario_free(l.sc);
	if (sfd >= 0)
		close(sfd);
	if (err)
		fprintf(stderr, "%s-loader: %s\n", SAMPLE_NAME, rs_strerror(err));
	return err ? 1 : 0;
}
