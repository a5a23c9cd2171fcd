// SPDX-License-Identifier: BSD-2-Clause
/*
 * netlink.c - tc cls_bpf filters of an interface, through an rtnetlink RTM_GETTFILTER dump on
 * the clsact ingress and egress parents (ffff:fff2, ffff:fff3), or only ingress under a legacy
 * ingress qdisc.  libbpf's bpf_tc_query() needs
 * a known handle and priority, so discovery dumps the filter chains itself.
 *
 * Works in the calling thread's current network namespace (the socket is created per call).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "agent/agent.h"
#include "agent/tcx.h"

struct filter_vec {
	struct rs_tc_filter *v;
	size_t cnt, cap;
};

static int vec_push(struct filter_vec *fv, const struct rs_tc_filter *f)
{
	if (fv->cnt == fv->cap) {
		size_t ncap = fv->cap ? fv->cap * 2 : 8;
		struct rs_tc_filter *n = realloc(fv->v, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		fv->v = n;
		fv->cap = ncap;
	}
	fv->v[fv->cnt++] = *f;
	return 0;
}

/* One RTM_NEWTFILTER message: keep it when it is a cls_bpf filter with a program. */
static int parse_filter(struct nlmsghdr *nh, bool egress, struct filter_vec *fv)
{
	struct tcmsg *t = NLMSG_DATA(nh);
	int len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*t));
	struct rtattr *a, *opts = NULL;
	struct rs_tc_filter f = {};
	bool is_bpf = false, have_id = false;
	int olen;

	if (len < 0)
		return 0;
	for (a = (struct rtattr *)((char *)t + NLMSG_ALIGN(sizeof(*t))); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type == TCA_KIND)
			is_bpf = !strncmp(RTA_DATA(a), "bpf", RTA_PAYLOAD(a));
		else if (a->rta_type == TCA_OPTIONS)
			opts = a;
	}
	if (!is_bpf || !opts)
		return 0;	/* another classifier, or the per-priority header */
	olen = RTA_PAYLOAD(opts);
	for (a = RTA_DATA(opts); RTA_OK(a, olen); a = RTA_NEXT(a, olen)) {
		if (RTA_PAYLOAD(a) < sizeof(uint32_t))
			continue;
		if (a->rta_type == TCA_BPF_ID) {
			f.prog_id = *(uint32_t *)RTA_DATA(a);
			have_id = true;
		} else if (a->rta_type == TCA_BPF_FLAGS) {
			f.direct_action = *(uint32_t *)RTA_DATA(a) & TCA_BPF_FLAG_ACT_DIRECT;
		}
	}
	if (!have_id)
		return 0;
	f.handle = t->tcm_handle;
	f.prio = TC_H_MAJ(t->tcm_info) >> 16;
	f.egress = egress;
	return vec_push(fv, &f);
}

/* Called for each reply message of a dump; non-zero stops the dump with that result. */
typedef int (*tc_msg_cb)(struct nlmsghdr *nh, void *ctx);

/*
 * One rtnetlink dump request (`type` RTM_GETTFILTER / RTM_GETQDISC with a tcmsg for ifindex
 * and parent), reading up to NLMSG_DONE (the socket is reused) and handing every message of
 * type `reply` to cb.  An error answer is returned, except ENOENT / EINVAL when missing_ok
 * (no qdisc, no such hook: simply nothing to list).
 */
static int tc_dump(int sock, int ifindex, uint16_t type, uint32_t parent, uint32_t seq,
		   uint16_t reply, bool missing_ok, tc_msg_cb cb, void *ctx)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg t;
	} req = {};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	const size_t bufsz = 65536;
	struct nlmsghdr *nh;
	char *buf;
	ssize_t n;
	int err = 0;

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.t));
	req.nh.nlmsg_type = type;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = seq;
	req.t.tcm_family = AF_UNSPEC;
	req.t.tcm_ifindex = ifindex;
	req.t.tcm_parent = parent;
	if (sendto(sock, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	buf = malloc(bufsz);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		n = recv(sock, buf, bufsz, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto out;
		}
		if (n == 0)
			goto out;
		for (nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n); nh = NLMSG_NEXT(nh, n)) {
			if (nh->nlmsg_seq != seq)
				continue;
			if (nh->nlmsg_type == NLMSG_DONE)
				goto out;
			if (nh->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(nh);

				err = e->error;
				if (missing_ok && (err == -ENOENT || err == -EINVAL))
					err = 0;
				goto out;
			}
			if (nh->nlmsg_type != reply)
				continue;
			err = cb(nh, ctx);
			if (err)
				goto out;
		}
	}
out:
	free(buf);
	return err;
}

struct filter_dump {
	bool egress;
	struct filter_vec *fv;
};

static int filter_cb(struct nlmsghdr *nh, void *ctx)
{
	struct filter_dump *d = ctx;

	return parse_filter(nh, d->egress, d->fv);
}

static int dump_parent(int sock, int ifindex, bool egress, uint32_t seq, struct filter_vec *fv)
{
	struct filter_dump d = { .egress = egress, .fv = fv };

	return tc_dump(sock, ifindex, RTM_GETTFILTER, rs_tc_clsact_parent(egress), seq,
		       RTM_NEWTFILTER, true, filter_cb, &d);
}

struct qdisc_dump {
	int ifindex;
	char *kind;
	size_t sz;
};

static int qdisc_cb(struct nlmsghdr *nh, void *ctx)
{
	struct qdisc_dump *d = ctx;
	struct tcmsg *t = NLMSG_DATA(nh);
	struct rtattr *a;
	int len;

	if (t->tcm_ifindex != d->ifindex || t->tcm_handle != TC_H_MAJ(TC_H_INGRESS))
		return 0;
	len = nh->nlmsg_len - NLMSG_LENGTH(sizeof(*t));
	for (a = (struct rtattr *)((char *)t + NLMSG_ALIGN(sizeof(*t)));
	     len > 0 && RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if (a->rta_type == TCA_KIND)
			snprintf(d->kind, d->sz, "%.*s", (int)RTA_PAYLOAD(a), (char *)RTA_DATA(a));
	}
	return 0;
}

/*
 * Kind of the qdisc on the ingress hook ("clsact", "ingress", or "" when none), from a qdisc
 * dump (a plain get of parent ffff:fff1 answers with an ACK only).  A legacy ingress qdisc has
 * the same handle ffff: as clsact but one block: dumping "egress" there would list the ingress
 * filters a second time.
 */
static int hook_qdisc_kind(int sock, int ifindex, uint32_t seq, char *kind, size_t sz)
{
	struct qdisc_dump d = { .ifindex = ifindex, .kind = kind, .sz = sz };

	kind[0] = 0;
	return tc_dump(sock, ifindex, RTM_GETQDISC, 0, seq, RTM_NEWQDISC, false, qdisc_cb, &d);
}

int rs_tc_bpf_filters(int ifindex, struct rs_tc_filter **out, size_t *cnt)
{
	struct filter_vec fv = {};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char kind[32];
	int sock, err;

	*out = NULL;
	*cnt = 0;
	sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sock < 0) {
		err = -errno;
		rs_warn("ifindex %d: netlink socket: %s", ifindex, rs_strerror(err));
		return err;
	}
	if (bind(sock, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		rs_warn("ifindex %d: netlink bind: %s", ifindex, rs_strerror(err));
		goto out;
	}
	err = hook_qdisc_kind(sock, ifindex, 1, kind, sizeof(kind));
	if (!err && (!strcmp(kind, "clsact") || !strcmp(kind, "ingress")))
		err = dump_parent(sock, ifindex, false, 2, &fv);
	if (!err && !strcmp(kind, "clsact"))
		err = dump_parent(sock, ifindex, true, 3, &fv);
	if (err) {
		rs_warn("ifindex %d: dumping tc filters: %s", ifindex, rs_strerror(err));
		free(fv.v);
		goto out;
	}
	*out = fv.v;
	*cnt = fv.cnt;
out:
	close(sock);
	return err;
}
