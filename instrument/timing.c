// SPDX-License-Identifier: BSD-2-Clause
/*
 * timing.c - cost per packet of isolated programs (DESIGN.md section 5).
 *
 * XDP: the trace driver (bpf/replay_driver.bpf.c) runs with a large repeat, restores the
 * frame after every run, copies the next trace packet in and tail-calls the target, so one
 * test run times a whole mix of packets.  The same driver with an empty target gives the
 * harness cost, reported separately and subtracted.  TC programs, and XDP programs the driver
 * cannot tail-call, fall back to single runs (repeat 1) per packet timed by the kernel, with
 * an empty program as the harness.  Programs alternate A B (E) A B (E) ... over an odd number
 * of rounds; results are medians over rounds with min/max as the spread.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpf/replay_driver.h"
#include "instrument/replay_internal.h"
#include "replay_driver.skel.h"

#define RS_TIMING_TARGET_NS	50000000ULL	/* aim for ~50 ms of runs per test run */

int rs_timing_check_stats(void)
{
	char c = '0';
	FILE *f;

	f = fopen("/proc/sys/kernel/bpf_stats_enabled", "r");
	if (!f)
		return 0;
	if (fread(&c, 1, 1, f) != 1)
		c = '0';
	fclose(f);
	if (c != '0') {
		rs_warn("kernel.bpf_stats_enabled is on: it adds ~40 ns to every run; refusing "
			"to time (respec does not change it; turn it off to measure)");
		return -EBUSY;
	}
	return 0;
}

static int load_empty(uint32_t type, uint32_t eat, uint32_t flags)
{
	LIBBPF_OPTS(bpf_prog_load_opts, lo, .expected_attach_type = eat, .prog_flags = flags);
	struct bpf_insn insns[2] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0,
		  .imm = type == BPF_PROG_TYPE_XDP ? XDP_PASS : 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd;

	fd = bpf_prog_load(type, "rs_empty", "GPL", insns, 2, &lo);
	if (fd < 0) {
		fd = -errno;
		rs_warn("empty %s program for the timing harness: %s", rs_prog_type_name(type),
			rs_strerror(fd));
	}
	return fd;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static void stat_of(const double *v, size_t n, struct rs_timing_stat *s)
{
	double *t = malloc(n * sizeof(*t));

	memset(s, 0, sizeof(*s));
	if (!t || !n) {
		free(t);
		return;
	}
	memcpy(t, v, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_double);
	s->min = t[0];
	s->max = t[n - 1];
	s->median = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
	free(t);
}

/* ---- trace driver ---- */

struct drv {
	struct replay_driver *skel;
	int prog_fd, state_fd, target_fd;
	uint32_t cnt;
	uint8_t *frame;			/* initial frame: longest packet */
	uint32_t frame_len;
	uint32_t ifindex;
};

static void drv_close(struct drv *d)
{
	replay_driver__destroy(d->skel);
	free(d->frame);
	memset(d, 0, sizeof(*d));
}

static int drv_open(struct drv *d, const struct rs_replay_prog *a, const struct rs_trace *tr,
		    size_t n, uint32_t ifindex)
{
	struct rs_drv_pkt *p = NULL;
	struct bpf_program *prog;
	uint32_t i, maxlen = 0;
	int err;

	memset(d, 0, sizeof(*d));
	d->ifindex = ifindex;
	d->skel = replay_driver__open();
	if (!d->skel)
		return -errno ?: -ENOMEM;
	prog = d->skel->progs.replay_driver;
	bpf_program__set_expected_attach_type(prog, a->expected_attach_type);
	bpf_program__set_flags(prog, bpf_program__flags(prog) |
			       (a->prog_flags & BPF_F_XDP_HAS_FRAGS));
	err = bpf_map__set_max_entries(d->skel->maps.pkts, n);
	if (!err)
		err = replay_driver__load(d->skel);
	if (err) {
		rs_info("trace driver: load failed: %s", rs_strerror(err));
		goto err;
	}
	d->prog_fd = bpf_program__fd(prog);
	d->state_fd = bpf_map__fd(d->skel->maps.state);
	d->target_fd = bpf_map__fd(d->skel->maps.target);
	d->cnt = n;
	p = calloc(1, sizeof(*p));
	if (!p) {
		err = -ENOMEM;
		goto err;
	}
	for (i = 0; i < n; i++) {
		const struct rs_packet *pk = &tr->pkts[i];

		p->len = pk->len;
		p->copy = pk->len < RS_DRV_COPY_MAX ? pk->len : RS_DRV_COPY_MAX;
		memset(p->data, 0, sizeof(p->data));
		memcpy(p->data, pk->data, p->copy);
		if (bpf_map_update_elem(bpf_map__fd(d->skel->maps.pkts), &i, p, BPF_ANY)) {
			err = -errno;
			goto err;
		}
		if (pk->len > maxlen) {
			maxlen = pk->len;
			d->frame_len = pk->len;
		}
	}
	d->frame = calloc(1, d->frame_len);
	if (!d->frame) {
		err = -ENOMEM;
		goto err;
	}
	free(p);
	return 0;
err:
	free(p);
	drv_close(d);
	return err;
}

/* One test run of the driver over `repeat` packets into target `fd`; *ns per run. */
static int drv_run(struct drv *d, int fd, uint32_t repeat, double *ns, int32_t *retval,
		   uint32_t *errors)
{
	LIBBPF_OPTS(bpf_test_run_opts, to);
	struct rs_drv_state st = { .cnt = d->cnt };
	struct xdp_md xdp = {};
	uint32_t zero = 0;

	if (bpf_map_update_elem(d->target_fd, &zero, &fd, BPF_ANY))
		return -errno;
	if (bpf_map_update_elem(d->state_fd, &zero, &st, BPF_ANY))
		return -errno;
	xdp.data_end = d->frame_len;
	xdp.ingress_ifindex = d->ifindex;
	to.data_in = d->frame;
	to.data_size_in = d->frame_len;
	to.ctx_in = &xdp;
	to.ctx_size_in = sizeof(xdp);
	to.repeat = repeat;
	if (bpf_prog_test_run_opts(d->prog_fd, &to))
		return -errno;
	if (bpf_map_lookup_elem(d->state_fd, &zero, &st))
		return -errno;
	*ns = to.duration;
	if (retval)
		*retval = (int32_t)to.retval;
	if (errors)
		*errors = st.errors;
	return 0;
}

/* Check the driver can call `rp` and returns what a single run returns on the last packet. */
static int drv_check(struct drv *d, const struct rs_replay_prog *rp, const struct rs_trace *tr,
		     double *ns)
{
	struct rs_run single;
	uint32_t errors = 0;
	int32_t ret = 0;
	int err;

	err = drv_run(d, rp->fd, d->cnt, ns, &ret, &errors);
	if (err) {
		rs_info("%s: trace driver cannot run it: %s", rp->origin, rs_strerror(err));
		return err;
	}
	if (errors) {
		rs_info("%s: trace driver: %u failed frame restores or tail calls", rp->origin,
			errors);
		return -EINVAL;
	}
	if (!rs_replay_run_one(rp->fd, rp->type, d->ifindex, &tr->pkts[d->cnt - 1], NULL,
			       &single) && single.verdict != ret)
		rs_info("%s: packet %u: driver run returned %d, single run %d (map state?)",
			rp->origin, d->cnt, ret, single.verdict);
	return 0;
}

static int time_driver(struct rs_replay_prog *a, struct rs_replay_prog *b,
		       const struct rs_trace *tr, size_t n, const struct rs_timing_opts *opts,
		       unsigned int rounds, double *va, double *vb, double *ve,
		       struct rs_timing_result *res)
{
	uint32_t ifindex = RS_OPTS_GET(opts, ifindex, 0) ?: 1;
	uint32_t repeat = RS_OPTS_GET(opts, repeat, 0);
	int empty = -1, err;
	double ns = 0, nb = 0;
	unsigned int r;
	struct drv d;

	err = drv_open(&d, a, tr, n, ifindex);
	if (err)
		return err;
	empty = load_empty(a->type, a->expected_attach_type, a->prog_flags & BPF_F_XDP_HAS_FRAGS);
	if (empty < 0) {
		err = empty;
		goto out;
	}
	err = drv_check(&d, a, tr, &ns);
	if (!err && b)
		err = drv_check(&d, b, tr, &nb);
	if (err)
		goto out;
	if (!repeat) {
		double per = ns > nb ? ns : nb;
		uint64_t want = RS_TIMING_TARGET_NS / (per > 1 ? per : 1);

		if (want < n)
			want = n;
		want = (want + n - 1) / n * n;
		repeat = want > 0x7fffffff ? (0x7fffffff / n) * n : want;
	}
	res->runs = repeat;
	for (r = 0; r < rounds; r++) {
		uint32_t errs = 0;

		err = drv_run(&d, a->fd, repeat, &va[r], NULL, &errs);
		if (!err && b)
			err = drv_run(&d, b->fd, repeat, &vb[r], NULL, &errs);
		if (!err)
			err = drv_run(&d, empty, repeat, &ve[r], NULL, &errs);
		if (err)
			goto out;
		res->driver_errors += errs;
		if (RS_OPTS_GET(opts, progress, NULL))
			opts->progress("timing", r + 1, rounds, opts->progress_ctx);
	}
	snprintf(res->method, sizeof(res->method), "driver");
out:
	if (empty >= 0)
		close(empty);
	drv_close(&d);
	return err;
}

/* ---- single runs ---- */

static int time_single(struct rs_replay_prog *a, struct rs_replay_prog *b,
		       const struct rs_trace *tr, size_t n, const struct rs_timing_opts *opts,
		       unsigned int rounds, double *va, double *vb, double *ve,
		       struct rs_timing_result *res)
{
	uint32_t ifindex = RS_OPTS_GET(opts, ifindex, 0) ?: 1;
	unsigned int r;
	int empty, err = 0;
	size_t i;

	empty = load_empty(a->type, a->expected_attach_type, a->prog_flags & BPF_F_XDP_HAS_FRAGS);
	if (empty < 0)
		return empty;
	for (r = 0; r < rounds && !err; r++) {
		double sa = 0, sb = 0, se = 0;
		struct rs_run run;

		for (i = 0; i < n && !err; i++) {
			err = rs_replay_run_one(a->fd, a->type, ifindex, &tr->pkts[i], NULL, &run);
			sa += run.duration;
			if (!err && b) {
				err = rs_replay_run_one(b->fd, b->type, ifindex, &tr->pkts[i], NULL,
							&run);
				sb += run.duration;
			}
			if (!err) {
				err = rs_replay_run_one(empty, a->type, ifindex, &tr->pkts[i], NULL,
							&run);
				se += run.duration;
			}
		}
		va[r] = sa / n;
		vb[r] = sb / n;
		ve[r] = se / n;
		if (RS_OPTS_GET(opts, progress, NULL))
			opts->progress("timing", r + 1, rounds, opts->progress_ctx);
	}
	if (err)
		rs_warn("%s: single-run timing: packet %zu: %s", a->origin, i, rs_strerror(err));
	res->runs = n;
	snprintf(res->method, sizeof(res->method), "single");
	close(empty);
	return err;
}

int rs_replay_time(struct rs_replay_prog *a, struct rs_replay_prog *b, const struct rs_trace *tr,
		   const struct rs_timing_opts *opts, struct rs_timing_result *res)
{
	unsigned int rounds = RS_OPTS_GET(opts, rounds, 0) ?: 7;
	size_t n = RS_OPTS_GET(opts, max_packets, 0) ?: 65536;
	double *va = NULL, *vb = NULL, *ve = NULL, *ra = NULL, *rb = NULL, *rr = NULL;
	cpu_set_t saved;
	bool pinned;
	size_t nr = 0;
	unsigned int r;
	int err;

	memset(res, 0, sizeof(*res));
	err = rs_timing_check_stats();
	if (err)
		return err;
	if (b && (b->type != a->type || b->expected_attach_type != a->expected_attach_type ||
		  (b->prog_flags ^ a->prog_flags) & BPF_F_XDP_HAS_FRAGS)) {
		rs_warn("%s and %s differ in program type or load attributes: not comparable",
			a->origin, b->origin);
		return -RS_ERR_PROG_TYPE;
	}
	if (!tr->cnt)
		return -EINVAL;
	if (rounds % 2 == 0)
		rounds++;
	if (n > tr->cnt)
		n = tr->cnt;
	va = calloc(rounds, sizeof(double));
	vb = calloc(rounds, sizeof(double));
	ve = calloc(rounds, sizeof(double));
	ra = calloc(rounds, sizeof(double));
	rb = calloc(rounds, sizeof(double));
	rr = calloc(rounds, sizeof(double));
	if (!va || !vb || !ve || !ra || !rb || !rr) {
		err = -ENOMEM;
		goto out;
	}
	res->rounds = rounds;
	res->has_b = b != NULL;
	pinned = !rs_replay_pin_cpu(&saved);
	err = -EOPNOTSUPP;
	if (a->type == BPF_PROG_TYPE_XDP && !RS_OPTS_GET(opts, single, false)) {
		err = time_driver(a, b, tr, n, opts, rounds, va, vb, ve, res);
		if (err)
			rs_info("%s: trace driver unusable (%s): single runs instead", a->origin,
				rs_strerror(err));
	}
	if (err)
		err = time_single(a, b, tr, n, opts, rounds, va, vb, ve, res);
	if (pinned)
		rs_replay_unpin_cpu(&saved);
	if (err)
		goto out;
	for (r = 0; r < rounds; r++) {
		ra[r] = va[r] - ve[r];
		rb[r] = vb[r] - ve[r];
		if (b && ra[r] > 0)
			rr[nr++] = rb[r] / ra[r];
	}
	stat_of(ra, rounds, &res->a);
	stat_of(ve, rounds, &res->driver);
	if (b) {
		stat_of(rb, rounds, &res->b);
		if (nr)
			stat_of(rr, nr, &res->ratio);
		else
			res->ratio.median = res->ratio.min = res->ratio.max = NAN;
	}
out:
	free(va);
	free(vb);
	free(ve);
	free(ra);
	free(rb);
	free(rr);
	return err;
}
