// SPDX-License-Identifier: BSD-2-Clause
/*
 * timing.c - cost per packet of isolated programs (DESIGN.md section 5).
 *
 * XDP: the trace driver (bpf/replay_driver.bpf.c) runs with a repeat, restores the frame
 * after every run, copies the next trace packet in and tail-calls the program in the slot it
 * is told, so one test run times a whole mix of packets.  The same driver with an empty
 * program gives the harness cost, reported separately and subtracted.  A round times A, B and
 * the empty program on the same chunk of the trace (~250 us each, the order rotating through
 * all six permutations); rounds walk through the trace.  TC programs, and XDP programs the
 * driver cannot tail-call, fall back to single runs (repeat 1) per packet timed by the kernel,
 * a round being the whole trace.  Results are interquartile means over rounds with quartiles
 * and extremes as the spread; the ratio is the IQM of the per-round ratios.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/if_link.h>

#include "bpf/replay_driver.h"
#include "instrument/replay_internal.h"
#include "replay_driver.skel.h"

/*
 * Trace driver: many short test runs, A B E in rotating order on the same chunk of the trace.
 * On these machines one test run's cost moves by ~10% from one millisecond to the next (a
 * shared host); pairing A and B within microseconds and averaging many pairs is what makes a
 * ratio repeatable (docs/replay.md, "How timing works").
 */
#define RS_TIMING_CHUNK_NS	250000ULL	/* ~250 us of runs per test run */
#define RS_TIMING_MIN_REPEAT	1024		/* runs per test run at least */
#define RS_TIMING_DRIVER_ROUNDS	1001		/* default rounds, trace driver */
#define RS_TIMING_SINGLE_ROUNDS	21		/* default rounds, single runs (whole trace each) */
#define RS_TIMING_COPIES	4		/* default instances of each program (placements) */

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

static double quantile(const double *sorted, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t i = (size_t)pos;

	return i + 1 < n ? sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]) : sorted[i];
}

/*
 * Interquartile mean (the mean of the middle half), quartiles and extremes of v[0..n).  The
 * IQM keeps the median's indifference to the rounds a neighbour or an interrupt spoiled, and
 * unlike the median it is not stuck to the whole nanoseconds the kernel reports per run.
 */
static void stat_of(const double *v, size_t n, struct rs_timing_stat *s)
{
	size_t i, lo, hi;
	double sum = 0;
	double *t;

	memset(s, 0, sizeof(*s));
	if (!n) {
		s->iqm = s->p25 = s->p75 = s->min = s->max = NAN;
		return;
	}
	t = malloc(n * sizeof(*t));
	if (!t) {
		s->iqm = s->p25 = s->p75 = s->min = s->max = NAN;
		return;
	}
	memcpy(t, v, n * sizeof(*t));
	qsort(t, n, sizeof(*t), cmp_double);
	s->min = t[0];
	s->max = t[n - 1];
	s->p25 = quantile(t, n, 0.25);
	s->p75 = quantile(t, n, 0.75);
	lo = n / 4;
	hi = n - n / 4;
	for (i = lo; i < hi; i++)
		sum += t[i];
	s->iqm = sum / (double)(hi - lo);
	free(t);
}

/*
 * A test run with repeat > 1 adds the XDP program to the kernel's XDP dispatcher and removes
 * it afterwards; each change rewrites the dispatcher image and waits for RCU, ~17 ms here,
 * per test run.  A program that is attached somewhere stays in the dispatcher and test runs
 * start in ~40 us, so short runs become affordable.  Attach it in SKB mode to the loopback
 * device of a network namespace of our own, made by a short-lived thread (unshare affects
 * only that thread) and kept alive by the namespace fd alone: closing the fd - or the
 * process dying - destroys the namespace and the attachment with it.  Nothing on the host
 * changes.  Returns the namespace fd or a negative error (timing then works, only slower).
 */
struct dispatch_hold {
	int prog_fd;
	int ns_fd;
};

static void *dispatch_hold_thread(void *arg)
{
	struct dispatch_hold *h = arg;
	int fd, err;

	if (unshare(CLONE_NEWNET)) {
		h->ns_fd = -errno;
		return NULL;
	}
	fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		h->ns_fd = -errno;
		return NULL;
	}
	err = bpf_xdp_attach(1 /* lo */, h->prog_fd, XDP_FLAGS_SKB_MODE, NULL);
	if (err) {
		close(fd);
		fd = err;
	}
	h->ns_fd = fd;
	return NULL;
}

static int dispatch_hold(int prog_fd)
{
	struct dispatch_hold h = { .prog_fd = prog_fd, .ns_fd = -EINVAL };
	pthread_t t;
	int err;

	err = pthread_create(&t, NULL, dispatch_hold_thread, &h);
	if (err)
		return -err;
	pthread_join(t, NULL);
	return h.ns_fd;
}

/* ---- trace driver ---- */

/*
 * Instances of A and B timed in turn: copy 0 is the program itself, the others are the same
 * instructions loaded again against the same maps (rs_replay_load_copies).  Each load puts
 * its JIT image at a new, randomly offset place, and where code lands moves its cost by a few
 * percent (alignment of branch targets and loops); averaging over several loads keeps that
 * luck out of a comparison of two different programs.  Round r times copy r % k of each.
 */
struct copies {
	int a[RS_TIMING_MAX_COPIES], b[RS_TIMING_MAX_COPIES];	/* b[0] < 0: no B */
	unsigned int k;
};

static void copies_close(struct copies *c)
{
	unsigned int i;

	for (i = 1; i < c->k; i++) {
		close(c->a[i]);
		if (c->b[0] >= 0)
			close(c->b[i]);
	}
	c->k = 1;
}

static void copies_open(struct copies *c, const struct rs_replay_prog *a,
			const struct rs_replay_prog *b, unsigned int want)
{
	unsigned int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < RS_TIMING_MAX_COPIES; i++)
		c->b[i] = -1;		/* no B: every B slot of the driver stays empty */
	c->a[0] = a->fd;
	c->b[0] = b ? b->fd : -1;
	c->k = 1;
	if (want > RS_TIMING_MAX_COPIES)
		want = RS_TIMING_MAX_COPIES;
	if (want < 2)
		return;
	if (rs_replay_load_copies(a, c->a + 1, want - 1))
		return;
	if (b && rs_replay_load_copies(b, c->b + 1, want - 1)) {
		for (i = 1; i < want; i++) {
			close(c->a[i]);
			c->b[i] = -1;
		}
		return;
	}
	c->k = want;
}

/*
 * One driver, kept in the XDP dispatcher, with the timed programs (every copy of A and B, the
 * empty program) in slots of its prog array set once: a test run picks its program through
 * `state.slot`.  Switching programs then never rewrites a prog array (a JIT text poke) and
 * all are reached through the same driver code and tail call.  Slot 0: the empty program;
 * copy i of A: 1 + 2i, of B: 2 + 2i.
 */
enum { DRV_A, DRV_B, DRV_E, DRV_CNT };

static uint32_t drv_slot(int role, unsigned int copy)
{
	return role == DRV_E ? 0 : 1 + 2 * copy + (role == DRV_B);
}

struct drv {
	struct replay_driver *skel;
	int prog_fd, state_fd;
	int hold_fd;			/* dispatch_hold() namespace, -1 if none */
	uint32_t cnt;
	uint8_t *frame;			/* initial frame: longest packet */
	uint32_t frame_len;
	uint32_t ifindex;
};

static void drv_close(struct drv *d)
{
	if (d->hold_fd >= 0)
		close(d->hold_fd);
	replay_driver__destroy(d->skel);
	free(d->frame);
	memset(d, 0, sizeof(*d));
	d->hold_fd = -1;
}

static int drv_fill(struct drv *d, int pkts_fd, const struct rs_trace *tr, size_t n)
{
	struct rs_drv_pkt *p;
	uint32_t i;
	int err = 0;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (i = 0; i < n && !err; i++) {
		const struct rs_packet *pk = &tr->pkts[i];

		p->len = pk->len;
		p->copy = pk->len < RS_DRV_COPY_MAX ? pk->len : RS_DRV_COPY_MAX;
		memset(p->data, 0, sizeof(p->data));
		memcpy(p->data, pk->data, p->copy);
		if (bpf_map_update_elem(pkts_fd, &i, p, BPF_ANY))
			err = -errno;
		if (pk->len > d->frame_len)
			d->frame_len = pk->len;
	}
	free(p);
	if (err)
		return err;
	d->frame = calloc(1, d->frame_len);
	return d->frame ? 0 : -ENOMEM;
}

static int drv_open(struct drv *d, const struct rs_replay_prog *a, const struct copies *c,
		    int empty, const struct rs_trace *tr, size_t n, uint32_t ifindex)
{
	struct bpf_program *prog;
	uint32_t slot;
	int err;

	memset(d, 0, sizeof(*d));
	d->hold_fd = -1;
	d->ifindex = ifindex;
	d->cnt = n;
	d->skel = replay_driver__open();
	if (!d->skel)
		return -errno ?: -ENOMEM;
	prog = d->skel->progs.replay_driver;
	bpf_program__set_expected_attach_type(prog, a->expected_attach_type);
	bpf_program__set_flags(prog, bpf_program__flags(prog) |
			       (a->prog_flags & BPF_F_XDP_HAS_FRAGS));
	err = bpf_map__set_max_entries(d->skel->maps.pkts, n);
	if (!err)
		err = bpf_map__set_max_entries(d->skel->maps.target, 1 + 2 * c->k);
	if (!err)
		err = replay_driver__load(d->skel);
	if (err) {
		rs_info("trace driver: load failed: %s", rs_strerror(err));
		goto err;
	}
	d->prog_fd = bpf_program__fd(prog);
	d->state_fd = bpf_map__fd(d->skel->maps.state);
	for (slot = 0; slot <= 2 * c->k; slot++) {
		int fd = slot == 0 ? empty : (slot - 1) % 2 ? c->b[(slot - 1) / 2] :
			 c->a[(slot - 1) / 2];

		if (fd >= 0 && bpf_map_update_elem(bpf_map__fd(d->skel->maps.target), &slot, &fd,
						   BPF_ANY)) {
			err = -errno;
			goto err;
		}
	}
	err = drv_fill(d, bpf_map__fd(d->skel->maps.pkts), tr, n);
	if (err)
		goto err;
	d->hold_fd = dispatch_hold(d->prog_fd);
	if (d->hold_fd < 0)
		rs_info("trace driver: cannot keep it in the XDP dispatcher (%s): every test run "
			"pays ~20 ms of dispatcher updates", rs_strerror(d->hold_fd));
	return 0;
err:
	drv_close(d);
	return err;
}

/* One test run of the program in slot `k` over `repeat` packets from `start` on; *ns per run. */
static int drv_run(struct drv *d, int k, uint32_t start, uint32_t repeat, double *ns,
		   int32_t *retval, uint32_t *errors)
{
	LIBBPF_OPTS(bpf_test_run_opts, to);
	struct rs_drv_state st = { .cnt = d->cnt, .next = start, .slot = k };
	struct xdp_md xdp = {};
	uint32_t zero = 0;

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

/* Check the driver can call `rp` in slot `k` and gets what a single run gets on the last packet. */
static int drv_check(struct drv *d, int k, const struct rs_replay_prog *rp,
		     const struct rs_trace *tr, double *ns)
{
	struct rs_run single;
	uint32_t errors = 0;
	int32_t ret = 0;
	int err;

	err = drv_run(d, k, 0, d->cnt, ns, &ret, &errors);
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

/* The six orders of A B E: over every six rounds each program runs first, second and third
 * twice and follows each other program equally often (cache warmth, drift). */
static const uint8_t drv_orders[6][DRV_CNT] = {
	{ DRV_A, DRV_B, DRV_E }, { DRV_B, DRV_E, DRV_A }, { DRV_E, DRV_A, DRV_B },
	{ DRV_A, DRV_E, DRV_B }, { DRV_B, DRV_A, DRV_E }, { DRV_E, DRV_B, DRV_A },
};

static int time_driver(struct rs_replay_prog *a, struct rs_replay_prog *b,
		       const struct copies *c,
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

	empty = load_empty(a->type, a->expected_attach_type, a->prog_flags & BPF_F_XDP_HAS_FRAGS);
	if (empty < 0)
		return empty;
	err = drv_open(&d, a, c, empty, tr, n, ifindex);
	if (err)
		goto out_empty;
	err = drv_check(&d, drv_slot(DRV_A, 0), a, tr, &ns);
	if (!err && b)
		err = drv_check(&d, drv_slot(DRV_B, 0), b, tr, &nb);
	if (err)
		goto out;
	if (!repeat) {
		double per = ns > nb ? ns : nb;
		uint64_t want = RS_TIMING_CHUNK_NS / (per > 1 ? per : 1);

		repeat = want < RS_TIMING_MIN_REPEAT ? RS_TIMING_MIN_REPEAT :
			 want > 0x7fffffff ? 0x7fffffff : want;
	}
	res->runs = repeat;
	for (r = 0; r < rounds; r++) {
		/* every round times the next chunk of the trace: within a round all programs
		 * see the same packets */
		uint32_t start = (uint32_t)(((uint64_t)r * repeat) % n), errs = 0;
		double *out[DRV_CNT] = { &va[r], &vb[r], &ve[r] };
		int i;

		for (i = 0; i < DRV_CNT && !err; i++) {
			int k = drv_orders[r % 6][i];

			if (k != DRV_B || b)
				err = drv_run(&d, drv_slot(k, r % c->k), start, repeat, out[k],
					      NULL, &errs);
		}
		if (err)
			goto out;
		res->driver_errors += errs;
		if (RS_OPTS_GET(opts, progress, NULL))
			opts->progress("timing", r + 1, rounds, opts->progress_ctx);
	}
	snprintf(res->method, sizeof(res->method), "driver");
out:
	drv_close(&d);
out_empty:
	close(empty);
	return err;
}

/* ---- single runs ---- */

static int time_single(struct rs_replay_prog *a, struct rs_replay_prog *b,
		       const struct copies *c, const struct rs_trace *tr, size_t n, const struct rs_timing_opts *opts,
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
			err = rs_replay_run_one(c->a[r % c->k], a->type, ifindex, &tr->pkts[i],
						NULL, &run);
			sa += run.duration;
			if (!err && b) {
				err = rs_replay_run_one(c->b[r % c->k], b->type, ifindex,
							&tr->pkts[i], NULL, &run);
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
	unsigned int want = RS_OPTS_GET(opts, rounds, 0), rounds;
	size_t n = RS_OPTS_GET(opts, max_packets, 0) ?: 65536;
	double *va = NULL, *vb = NULL, *ve = NULL, *ra = NULL, *rb = NULL, *rr = NULL;
	unsigned int cap = want ? want | 1 : RS_TIMING_DRIVER_ROUNDS;
	struct copies c = { .k = 1 };
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
	if (n > tr->cnt)
		n = tr->cnt;
	if (cap < RS_TIMING_SINGLE_ROUNDS)
		cap = RS_TIMING_SINGLE_ROUNDS;
	va = calloc(cap, sizeof(double));
	vb = calloc(cap, sizeof(double));
	ve = calloc(cap, sizeof(double));
	ra = calloc(cap, sizeof(double));
	rb = calloc(cap, sizeof(double));
	rr = calloc(cap, sizeof(double));
	if (!va || !vb || !ve || !ra || !rb || !rr) {
		err = -ENOMEM;
		goto out;
	}
	res->has_b = b != NULL;
	copies_open(&c, a, b, RS_OPTS_GET(opts, copies, 0) ?: RS_TIMING_COPIES);
	res->copies = c.k;
	pinned = !rs_replay_pin_cpu(&saved);
	err = -EOPNOTSUPP;
	if (a->type == BPF_PROG_TYPE_XDP && !RS_OPTS_GET(opts, single, false)) {
		rounds = want ? want | 1 : RS_TIMING_DRIVER_ROUNDS;
		err = time_driver(a, b, &c, tr, n, opts, rounds, va, vb, ve, res);
		if (err)
			rs_info("%s: trace driver unusable (%s): single runs instead", a->origin,
				rs_strerror(err));
	}
	if (err) {
		rounds = want ? want | 1 : RS_TIMING_SINGLE_ROUNDS;
		err = time_single(a, b, &c, tr, n, opts, rounds, va, vb, ve, res);
	}
	if (pinned)
		rs_replay_unpin_cpu(&saved);
	copies_close(&c);
	if (err)
		goto out;
	res->rounds = rounds;
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
		stat_of(rr, nr, &res->ratio);
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
