// SPDX-License-Identifier: BSD-2-Clause
/*
 * replay.c - the correctness pass of replay: every packet of a trace through one or two
 * isolated programs with BPF_PROG_TEST_RUN (repeat 1, a fresh buffer each time, never live
 * frames), verdict histograms, and per-packet divergences (verdict, output length, output
 * bytes) followed by the map comparison of replay_maps.c.
 */
#include <errno.h>
#include <linux/pkt_cls.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "instrument/replay_internal.h"

const char *rs_verdict_name(uint32_t prog_type, int32_t v, char *buf, size_t sz)
{
	static const char *const xdp[] = { "XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX",
					   "XDP_REDIRECT" };
	static const char *const tc[] = { "TC_ACT_OK", "TC_ACT_RECLASSIFY", "TC_ACT_SHOT",
					  "TC_ACT_PIPE", "TC_ACT_STOLEN", "TC_ACT_QUEUED",
					  "TC_ACT_REPEAT", "TC_ACT_REDIRECT", "TC_ACT_TRAP" };

	if (prog_type == BPF_PROG_TYPE_XDP && v >= 0 && v < (int32_t)RS_ARRAY_SIZE(xdp))
		snprintf(buf, sz, "%s", xdp[v]);
	else if (prog_type == BPF_PROG_TYPE_SCHED_CLS && v == -1)
		snprintf(buf, sz, "TC_ACT_UNSPEC");
	else if (prog_type == BPF_PROG_TYPE_SCHED_CLS && v >= 0 && v < (int32_t)RS_ARRAY_SIZE(tc))
		snprintf(buf, sz, "%s", tc[v]);
	else
		snprintf(buf, sz, "ret %d", v);
	return buf;
}

int rs_replay_mask_parse(const char *s, struct rs_replay_mask *m)
{
	const char *c1, *c2;
	char *end;
	unsigned long off, len;

	memset(m, 0, sizeof(*m));
	c2 = strrchr(s, ':');
	if (!c2 || c2 == s)
		goto bad;
	for (c1 = c2 - 1; c1 > s && *c1 != ':'; c1--)
		;
	if (c1 == s || (size_t)(c1 - s) >= sizeof(m->map))
		goto bad;
	memcpy(m->map, s, c1 - s);
	errno = 0;
	off = strtoul(c1 + 1, &end, 0);
	if (errno || end != c2 || off > UINT32_MAX)
		goto bad;
	len = strtoul(c2 + 1, &end, 0);
	if (errno || *end || !len || len > UINT32_MAX)
		goto bad;
	m->off = off;
	m->len = len;
	return 0;
bad:
	rs_warn("mask '%s': expected MAP:OFF:LEN (byte range of the map's values)", s);
	return -EINVAL;
}

int rs_replay_pin_cpu(cpu_set_t *saved)
{
	cpu_set_t one;
	int cpu;

	if (sched_getaffinity(0, sizeof(*saved), saved))
		return -errno;
	cpu = sched_getcpu();
	if (cpu < 0)
		return -errno;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		return -errno;
	return 0;
}

void rs_replay_unpin_cpu(const cpu_set_t *saved)
{
	sched_setaffinity(0, sizeof(*saved), saved);
}

int rs_replay_run_one(int prog_fd, uint32_t prog_type, uint32_t ifindex,
		      const struct rs_packet *pkt, uint8_t *out, struct rs_run *run)
{
	LIBBPF_OPTS(bpf_test_run_opts, to);
	struct __sk_buff skb = {};
	struct xdp_md xdp = {};

	to.data_in = pkt->data;
	to.data_size_in = pkt->len;
	to.data_out = out;
	to.data_size_out = out ? RS_RUN_OUT_MAX : 0;
	to.repeat = 1;
	if (prog_type == BPF_PROG_TYPE_XDP) {
		xdp.data_end = pkt->len;
		xdp.ingress_ifindex = ifindex;
		to.ctx_in = &xdp;
		to.ctx_size_in = sizeof(xdp);
	} else {
		skb.ifindex = ifindex;
		skb.ingress_ifindex = ifindex;
		to.ctx_in = &skb;
		to.ctx_size_in = sizeof(skb);
	}
	memset(run, 0, sizeof(*run));
	if (bpf_prog_test_run_opts(prog_fd, &to)) {
		run->err = -errno;
		return run->err;
	}
	run->verdict = (int32_t)to.retval;
	run->len = out ? to.data_size_out : 0;
	run->duration = to.duration;
	return 0;
}

int rs_replay_add_div(struct rs_replay_result *res, size_t max, const struct rs_divergence *d,
		      const void *a, const void *b)
{
	struct rs_divergence *n;

	res->divergences++;
	if (res->div_cnt >= max)
		return 0;
	n = realloc(res->div, (res->div_cnt + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	res->div = n;
	n = &res->div[res->div_cnt];
	*n = *d;
	n->out_a = n->out_b = NULL;
	if (a) {
		n->out_a = malloc(d->len_a ? d->len_a : 1);
		if (!n->out_a)
			return -ENOMEM;
		memcpy(n->out_a, a, d->len_a);
	}
	if (b) {
		n->out_b = malloc(d->len_b ? d->len_b : 1);
		if (!n->out_b) {
			free(n->out_a);
			return -ENOMEM;
		}
		memcpy(n->out_b, b, d->len_b);
	}
	res->div_cnt++;
	return 0;
}

void rs_replay_result_free(struct rs_replay_result *res)
{
	size_t i;

	if (!res)
		return;
	for (i = 0; i < res->div_cnt; i++) {
		free(res->div[i].out_a);
		free(res->div[i].out_b);
	}
	free(res->div);
	memset(res, 0, sizeof(*res));
}

static void count_verdict(uint64_t *hist, int32_t v)
{
	size_t slot = v >= -1 && v < RS_VERDICT_SLOTS - 2 ? (size_t)(v + 1) : RS_VERDICT_SLOTS - 1;

	hist[slot]++;
}

static const char *run_str(const struct rs_replay_prog *rp, const struct rs_run *r,
			   char *buf, size_t sz)
{
	if (r->err)
		snprintf(buf, sz, "error %s", rs_strerror(r->err));
	else
		rs_verdict_name(rp->type, r->verdict, buf, sz);
	return buf;
}

int rs_replay_compare(struct rs_replay_prog *a, struct rs_replay_prog *b,
		      const struct rs_trace *tr, const struct rs_replay_opts *opts,
		      struct rs_replay_result *res)
{
	size_t max_div = RS_OPTS_GET(opts, max_divergences, 10);
	uint32_t ifindex = RS_OPTS_GET(opts, ifindex, 0) ?: 1;
	uint8_t *out_a = NULL, *out_b = NULL;
	size_t i, fails_a = 0;
	cpu_set_t saved;
	bool pinned;
	int err = 0;

	memset(res, 0, sizeof(*res));
	if (b && b->type != a->type) {
		rs_warn("%s is %s but %s is %s: program types differ", a->origin,
			rs_prog_type_name(a->type), b->origin, rs_prog_type_name(b->type));
		return -RS_ERR_PROG_TYPE;
	}
	out_a = malloc(RS_RUN_OUT_MAX);
	out_b = malloc(RS_RUN_OUT_MAX);
	if (!out_a || !out_b) {
		err = -ENOMEM;
		goto out;
	}
	pinned = !rs_replay_pin_cpu(&saved);
	for (i = 0; i < tr->cnt; i++) {
		const struct rs_packet *pkt = &tr->pkts[i];
		struct rs_divergence d = {};
		struct rs_run ra, rb;
		char va[48], vb[48];

		rs_replay_run_one(a->fd, a->type, ifindex, pkt, out_a, &ra);
		if (ra.err) {
			fails_a++;
			if (i == 0 || ra.err != -EINVAL)
				rs_debug("%s: packet %zu: test run failed: %s", a->origin, i + 1,
					 rs_strerror(ra.err));
		} else {
			count_verdict(res->verdicts_a, ra.verdict);
		}
		res->packets++;
		if (RS_OPTS_GET(opts, progress, NULL) && (i + 1) % 4096 == 0)
			opts->progress("replay", i + 1, tr->cnt, opts->progress_ctx);
		if (!b)
			continue;
		rs_replay_run_one(b->fd, b->type, ifindex, pkt, out_b, &rb);
		if (!rb.err)
			count_verdict(res->verdicts_b, rb.verdict);
		d.packet = i + 1;
		d.verdict_a = ra.verdict;
		d.verdict_b = rb.verdict;
		d.len_a = ra.len;
		d.len_b = rb.len;
		if (ra.err || rb.err) {
			if (ra.err == rb.err)
				continue;
			d.kind = RS_DIV_ERROR;
			snprintf(d.what, sizeof(d.what), "%s vs %s", run_str(a, &ra, va, sizeof(va)),
				 run_str(b, &rb, vb, sizeof(vb)));
			err = rs_replay_add_div(res, max_div, &d, NULL, NULL);
		} else if (ra.verdict != rb.verdict || ra.len != rb.len ||
			   memcmp(out_a, out_b, ra.len)) {
			d.kind = RS_DIV_PACKET;
			snprintf(d.what, sizeof(d.what), "%s vs %s, %u vs %u bytes",
				 run_str(a, &ra, va, sizeof(va)), run_str(b, &rb, vb, sizeof(vb)),
				 ra.len, rb.len);
			err = rs_replay_add_div(res, max_div, &d, out_a, out_b);
		}
		if (err)
			break;
	}
	if (pinned)
		rs_replay_unpin_cpu(&saved);
	if (err)
		goto out;
	if (fails_a == tr->cnt) {
		struct rs_run r;

		rs_replay_run_one(a->fd, a->type, ifindex, &tr->pkts[0], out_a, &r);
		rs_warn("%s: every test run failed (packet 1: %s)", a->origin, rs_strerror(r.err));
		err = r.err ?: -EINVAL;
		goto out;
	}
	if (b)
		err = rs_replay_compare_maps(a, b, opts, res);
out:
	free(out_a);
	free(out_b);
	if (err)
		rs_replay_result_free(res);
	return err;
}
