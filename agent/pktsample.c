// SPDX-License-Identifier: BSD-2-Clause
/*
 * pktsample.c - recently seen packets of an attach point, for the agent's canary replay.
 *
 * While a point is profiled, an AF_PACKET socket in the point's network namespace keeps a
 * uniform sample (reservoir) of the frames that reach the program: frames received on the
 * interface, and for a veth interface also the frames its peer sends (XDP runs before the
 * packet taps, so frames an XDP program drops or bounces are only visible on the sending side).
 * tc egress points sample the interface's outgoing frames.  The sample becomes an rs_trace that
 * rs_replay_compare() runs through the original and the specialized program.  PROG_ARRAY slots
 * have no interface: nothing is sampled (docs/agent.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "agent/agent.h"
#include "instrument/instrument.h"

#define SNAP_LEN 2048

struct rs_pkt_sampler {
	int fd;
	int ifindex, peer_ifindex;
	bool outgoing;			/* tc egress: the interface's own outgoing frames */
	size_t max, seen;
	struct rs_packet *pkts;
	size_t cnt;
	unsigned int rnd;
};

/* IFLA_LINK of a veth in the current namespace (peer ifindex), 0 when none / elsewhere. */
static int peer_ifindex(int ifindex)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
	} req = {
		.nh = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			.nlmsg_flags = NLM_F_REQUEST },
		.ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex },
	};
	char buf[16384];
	struct nlmsghdr *nh;
	struct rtattr *rta;
	int fd, len, peer = 0, rtlen;
	bool other_ns = false;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return 0;
	if (send(fd, &req, sizeof(req), 0) < 0)
		goto out;
	len = (int)recv(fd, buf, sizeof(buf), 0);
	if (len <= 0)
		goto out;
	nh = (struct nlmsghdr *)buf;
	if (!NLMSG_OK(nh, (unsigned int)len) || nh->nlmsg_type != RTM_NEWLINK)
		goto out;
	rta = IFLA_RTA(NLMSG_DATA(nh));
	rtlen = IFLA_PAYLOAD(nh);
	for (; RTA_OK(rta, rtlen); rta = RTA_NEXT(rta, rtlen)) {
		if (rta->rta_type == IFLA_LINK && RTA_PAYLOAD(rta) >= 4)
			memcpy(&peer, RTA_DATA(rta), 4);
		if (rta->rta_type == IFLA_LINK_NETNSID)
			other_ns = true;
	}
out:
	close(fd);
	return other_ns || peer == ifindex ? 0 : peer;
}

static const char *netns_path(uint64_t ino, char *buf, size_t sz)
{
	struct rs_netns *list = NULL;
	size_t cnt = 0, i;
	const char *ret = NULL;

	if (rs_netns_list(&list, &cnt))
		return NULL;
	for (i = 0; i < cnt; i++)
		if (list[i].ino == ino) {
			snprintf(buf, sz, "%s", list[i].path);
			ret = buf;
		}
	free(list);
	return ret;
}

int rs_pkt_sampler_open(const struct rs_attach_point *pt, size_t max,
			struct rs_pkt_sampler **out)
{
	struct rs_pkt_sampler *s;
	char path[256];
	int saved = -1, err, size = 4 << 20;
	uint64_t self = 0;

	*out = NULL;
	if (pt->kind == RS_ATTACH_PROG_ARRAY || !pt->ifindex)
		return -EOPNOTSUPP;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->fd = -1;
	s->max = max ? max : 1;
	s->ifindex = pt->ifindex;
	s->outgoing = pt->egress;
	s->rnd = (unsigned int)pt->ifindex * 2654435761u;
	s->pkts = calloc(s->max, sizeof(*s->pkts));
	if (!s->pkts) {
		err = -ENOMEM;
		goto fail;
	}
	rs_netns_self_ino(&self);
	if (pt->netns_ino && pt->netns_ino != self) {
		if (!netns_path(pt->netns_ino, path, sizeof(path))) {
			err = -RS_ERR_NOT_FOUND;
			goto fail;
		}
		err = rs_netns_enter(path, &saved);
		if (err)
			goto fail;
	}
	s->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
	err = s->fd < 0 ? -errno : 0;
	if (!err && !s->outgoing)
		s->peer_ifindex = peer_ifindex(s->ifindex);
	if (saved >= 0)
		rs_netns_restore(saved);
	if (err)
		goto fail;
	setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	*out = s;
	return 0;
fail:
	rs_pkt_sampler_close(s);
	return err;
}

static bool wanted(const struct rs_pkt_sampler *s, const struct sockaddr_ll *sll)
{
	bool out = sll->sll_pkttype == PACKET_OUTGOING;

	if (sll->sll_ifindex == s->ifindex)
		return out == s->outgoing;
	return s->peer_ifindex && sll->sll_ifindex == s->peer_ifindex && out;
}

static void keep(struct rs_pkt_sampler *s, const uint8_t *data, size_t len)
{
	struct rs_packet *p;
	size_t slot;
	uint8_t *copy;

	s->seen++;
	if (s->cnt < s->max) {
		slot = s->cnt;
	} else {
		s->rnd = s->rnd * 1103515245u + 12345u;
		slot = (size_t)((((uint64_t)s->rnd << 16) ^ s->rnd) % s->seen);
		if (slot >= s->max)
			return;
	}
	copy = malloc(len);
	if (!copy)
		return;
	memcpy(copy, data, len);
	p = &s->pkts[slot];
	if (slot < s->cnt)
		free(p->data);
	else
		s->cnt++;
	p->data = copy;
	p->len = (uint32_t)len;
}

int rs_pkt_sampler_drain(struct rs_pkt_sampler *s)
{
	uint8_t buf[SNAP_LEN];
	struct sockaddr_ll sll;
	socklen_t sl;
	ssize_t n;
	int got = 0;

	if (!s || s->fd < 0)
		return 0;
	while (got < 65536) {
		sl = sizeof(sll);
		n = recvfrom(s->fd, buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&sll, &sl);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? got : -errno;
		got++;
		/* truncated frames cannot be replayed faithfully */
		if (n > (ssize_t)sizeof(buf) || n < ETH_HLEN || !wanted(s, &sll))
			continue;
		keep(s, buf, (size_t)n);
	}
	return got;
}

size_t rs_pkt_sampler_count(const struct rs_pkt_sampler *s, size_t *seen)
{
	if (seen)
		*seen = s ? s->seen : 0;
	return s ? s->cnt : 0;
}

int rs_pkt_sampler_trace(struct rs_pkt_sampler *s, struct rs_trace *tr)
{
	size_t i;

	memset(tr, 0, sizeof(*tr));
	snprintf(tr->path, sizeof(tr->path), "sampled on ifindex %d", s->ifindex);
	tr->pkts = s->pkts;
	tr->cnt = s->cnt;
	for (i = 0; i < s->cnt; i++)
		if (s->pkts[i].len > tr->max_len)
			tr->max_len = s->pkts[i].len;
	s->pkts = calloc(s->max, sizeof(*s->pkts));
	s->cnt = 0;
	s->seen = 0;
	return s->pkts ? 0 : -ENOMEM;
}

void rs_pkt_sampler_close(struct rs_pkt_sampler *s)
{
	size_t i;

	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	for (i = 0; s->pkts && i < s->cnt; i++)
		free(s->pkts[i].data);
	free(s->pkts);
	free(s);
}
