// SPDX-License-Identifier: BSD-2-Clause
/*
 * discover.c - every XDP and TC attach point on the host, in every network namespace.
 *
 * Per namespace (entered with setns on the calling thread, then restored) and per interface:
 *   - XDP through netlink (bpf_xdp_query: drv / skb / hw program ids),
 *   - tcx (raw BPF_PROG_QUERY on the ifindex with BPF_TCX_INGRESS/EGRESS: program and link ids),
 *   - tc cls_bpf filters on the clsact hooks (netlink dump, agent/netlink.c).
 * bpf_links are walked once: an XDP link only knows its ifindex, so it is matched to the
 * namespace where that ifindex carries that program.  Finally PROG_ARRAY maps referenced by
 * the programs found (and, transitively, by their tail-call targets) contribute one attach
 * point per occupied slot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "agent/agent.h"
#include "agent/tcx.h"

struct ap_vec {
	struct rs_attach_point *v;
	size_t cnt, cap;
};

struct link_rec {
	uint32_t link_id, prog_id, type, attach_type;
	int ifindex;
};

struct link_vec {
	struct link_rec *v;
	size_t cnt, cap;
};

const char *rs_attach_kind_name(enum rs_attach_kind kind)
{
	switch (kind) {
	case RS_ATTACH_XDP_LINK:	return "xdp_link";
	case RS_ATTACH_XDP_NETLINK:	return "xdp";
	case RS_ATTACH_TCX_LINK:	return "tcx_link";
	case RS_ATTACH_TCX:		return "tcx";
	case RS_ATTACH_TC_CLS:		return "tc";
	case RS_ATTACH_PROG_ARRAY:	return "prog_array";
	}
	return "unknown";
}

static const char *xdp_mode_name(uint32_t mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:	return "drv";
	case XDP_ATTACHED_SKB:	return "skb";
	case XDP_ATTACHED_HW:	return "hw";
	}
	return "?";
}

const char *rs_attach_point_str(const struct rs_attach_point *ap, char *buf, size_t sz)
{
	char ns[80];
	int n;

	if (ap->netns[0])
		snprintf(ns, sizeof(ns), " netns %s", ap->netns);
	else
		ns[0] = 0;
	switch (ap->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_XDP_NETLINK:
		n = snprintf(buf, sz, "xdp %s dev %s%s", xdp_mode_name(ap->xdp_mode), ap->ifname, ns);
		break;
	case RS_ATTACH_TCX_LINK:
	case RS_ATTACH_TCX:
		n = snprintf(buf, sz, "tcx %s dev %s%s", ap->egress ? "egress" : "ingress",
			     ap->ifname, ns);
		break;
	case RS_ATTACH_TC_CLS:
		n = snprintf(buf, sz, "tc %s dev %s%s handle 0x%x prio %u",
			     ap->egress ? "egress" : "ingress", ap->ifname, ns, ap->tc_handle,
			     ap->tc_prio);
		break;
	case RS_ATTACH_PROG_ARRAY:
		n = snprintf(buf, sz, "prog_array map %u slot %u (owner prog %u)", ap->map_id,
			     ap->slot, ap->owner_prog_id);
		break;
	default:
		n = snprintf(buf, sz, "unknown");
	}
	if (ap->link_id && n >= 0 && (size_t)n < sz)
		snprintf(buf + n, sz - n, " link %u", ap->link_id);
	return buf;
}

static struct rs_attach_point *ap_push(struct ap_vec *av)
{
	struct rs_attach_point *ap;

	if (av->cnt == av->cap) {
		size_t ncap = av->cap ? av->cap * 2 : 16;

		ap = realloc(av->v, ncap * sizeof(*ap));
		if (!ap)
			return NULL;
		av->v = ap;
		av->cap = ncap;
	}
	ap = &av->v[av->cnt++];
	memset(ap, 0, sizeof(*ap));
	return ap;
}

/* ---- bpf links ------------------------------------------------------------------------- */

static int collect_links(struct link_vec *lv)
{
	uint32_t id = 0;
	int fd, err;

	while (!(err = bpf_link_get_next_id(id, &id))) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);
		uint32_t *u;

		fd = bpf_link_get_fd_by_id(id);
		if (fd < 0)
			continue;
		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (err)
			continue;
		if (info.type != BPF_LINK_TYPE_XDP && info.type != RS_BPF_LINK_TYPE_TCX)
			continue;
		if (lv->cnt == lv->cap) {
			size_t ncap = lv->cap ? lv->cap * 2 : 16;
			struct link_rec *n = realloc(lv->v, ncap * sizeof(*n));

			if (!n)
				return -ENOMEM;
			lv->v = n;
			lv->cap = ncap;
		}
		/* xdp: { ifindex }, tcx: { ifindex, attach_type } at the start of the union */
		u = (uint32_t *)&info.xdp;
		lv->v[lv->cnt++] = (struct link_rec){
			.link_id = info.id, .prog_id = info.prog_id, .type = info.type,
			.ifindex = u[0], .attach_type = info.type == RS_BPF_LINK_TYPE_TCX ? u[1] : 0,
		};
	}
	if (err != -ENOENT) {
		rs_warn("discover: walking bpf links: %s%s", rs_strerror(err),
			err == -EPERM ? " (needs root: CAP_SYS_ADMIN)" : "");
		return err;
	}
	return 0;
}

static uint32_t find_xdp_link(const struct link_vec *lv, int ifindex, uint32_t prog_id)
{
	size_t i;

	for (i = 0; i < lv->cnt; i++)
		if (lv->v[i].type == BPF_LINK_TYPE_XDP && lv->v[i].ifindex == ifindex &&
		    lv->v[i].prog_id == prog_id)
			return lv->v[i].link_id;
	return 0;
}

/* ---- per interface ------------------------------------------------------------------------ */

static void fill_place(struct rs_attach_point *ap, const struct rs_netns *ns, int ifindex,
		       const char *ifname)
{
	ap->netns_ino = ns->ino;
	snprintf(ap->netns, sizeof(ap->netns), "%s", ns->name);
	ap->ifindex = ifindex;
	snprintf(ap->ifname, sizeof(ap->ifname), "%s", ifname);
}

static int discover_xdp(const struct rs_netns *ns, int ifindex, const char *ifname,
			const struct link_vec *lv, struct ap_vec *av)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	struct {
		uint32_t id, mode;
	} progs[3];
	struct rs_attach_point *ap;
	int err, i;

	err = bpf_xdp_query(ifindex, 0, &q);
	if (err) {
		rs_debug("dev %s (netns '%s'): xdp query: %s", ifname, ns->name, rs_strerror(err));
		return 0;
	}
	progs[0].id = q.drv_prog_id;
	progs[0].mode = XDP_ATTACHED_DRV;
	progs[1].id = q.skb_prog_id;
	progs[1].mode = XDP_ATTACHED_SKB;
	progs[2].id = q.hw_prog_id;
	progs[2].mode = XDP_ATTACHED_HW;
	for (i = 0; i < 3; i++) {
		if (!progs[i].id)
			continue;
		ap = ap_push(av);
		if (!ap)
			return -ENOMEM;
		fill_place(ap, ns, ifindex, ifname);
		ap->prog_id = progs[i].id;
		ap->xdp_mode = progs[i].mode;
		ap->link_id = find_xdp_link(lv, ifindex, progs[i].id);
		ap->kind = ap->link_id ? RS_ATTACH_XDP_LINK : RS_ATTACH_XDP_NETLINK;
	}
	return 0;
}

static int discover_tcx(const struct rs_netns *ns, int ifindex, const char *ifname,
			uint32_t attach_type, struct ap_vec *av)
{
	uint32_t prog_ids[RS_TCX_MAX_PROGS] = {}, link_ids[RS_TCX_MAX_PROGS] = {};
	uint32_t i, cnt = RS_TCX_MAX_PROGS;
	struct rs_attach_point *ap;
	int err;

	err = rs_tcx_query(ifindex, attach_type == RS_BPF_TCX_EGRESS, prog_ids, link_ids, &cnt,
			   NULL);
	if (err) {
		/* EINVAL: kernel without tcx */
		rs_debug("dev %s (netns '%s'): tcx query: %s", ifname, ns->name, strerror(-err));
		return 0;
	}
	for (i = 0; i < cnt; i++) {
		ap = ap_push(av);
		if (!ap)
			return -ENOMEM;
		fill_place(ap, ns, ifindex, ifname);
		ap->prog_id = prog_ids[i];
		ap->link_id = link_ids[i];
		ap->egress = attach_type == RS_BPF_TCX_EGRESS;
		ap->kind = link_ids[i] ? RS_ATTACH_TCX_LINK : RS_ATTACH_TCX;
	}
	return 0;
}

static int discover_tc(const struct rs_netns *ns, int ifindex, const char *ifname,
		       struct ap_vec *av)
{
	struct rs_tc_filter *f = NULL;
	struct rs_attach_point *ap;
	size_t cnt = 0, i;
	int err;

	err = rs_tc_bpf_filters(ifindex, &f, &cnt);
	if (err)
		return 0;	/* reported; other attach points still count */
	for (i = 0; i < cnt; i++) {
		ap = ap_push(av);
		if (!ap) {
			free(f);
			return -ENOMEM;
		}
		fill_place(ap, ns, ifindex, ifname);
		ap->kind = RS_ATTACH_TC_CLS;
		ap->prog_id = f[i].prog_id;
		ap->egress = f[i].egress;
		ap->tc_handle = f[i].handle;
		ap->tc_prio = f[i].prio;
	}
	free(f);
	return 0;
}

static int discover_netns(const struct rs_netns *ns, bool own, const struct link_vec *lv,
			  struct ap_vec *av)
{
	struct if_nameindex *ifs, *it;
	int saved = -1, err = 0;

	if (!own) {
		err = rs_netns_enter(ns->path, &saved);
		if (err)
			return 0;	/* namespace gone meanwhile */
	}
	ifs = if_nameindex();
	if (!ifs) {
		rs_debug("netns '%s': cannot list interfaces: %s", ns->name, strerror(errno));
		goto out;
	}
	for (it = ifs; it->if_index && !err; it++) {
		err = discover_xdp(ns, it->if_index, it->if_name, lv, av);
		if (!err)
			err = discover_tcx(ns, it->if_index, it->if_name, RS_BPF_TCX_INGRESS, av);
		if (!err)
			err = discover_tcx(ns, it->if_index, it->if_name, RS_BPF_TCX_EGRESS, av);
		if (!err)
			err = discover_tc(ns, it->if_index, it->if_name, av);
	}
	if_freenameindex(ifs);
out:
	if (saved >= 0) {
		int rerr = rs_netns_restore(saved);

		if (rerr && !err)
			err = rerr;
	}
	return err;
}

/* ---- prog arrays ------------------------------------------------------------------------ */

static int prog_map_ids(uint32_t prog_id, uint32_t **ids, uint32_t *cnt)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	uint32_t *v = NULL;
	int fd, err;

	*ids = NULL;
	*cnt = 0;
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return 0;	/* unloaded meanwhile */
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err || !info.nr_map_ids)
		goto out;
	v = calloc(info.nr_map_ids, sizeof(*v));
	if (!v) {
		err = -ENOMEM;
		goto out;
	}
	*cnt = info.nr_map_ids;
	memset(&info, 0, sizeof(info));
	info.nr_map_ids = *cnt;
	info.map_ids = (uintptr_t)v;
	len = sizeof(info);
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		free(v);
		v = NULL;
		*cnt = 0;
		err = 0;
		goto out;
	}
	if (info.nr_map_ids < *cnt)
		*cnt = info.nr_map_ids;
	*ids = v;
out:
	close(fd);
	return err == -ENOMEM ? err : 0;
}

static bool slot_known(const struct ap_vec *av, uint32_t map_id, uint32_t slot)
{
	size_t i;

	for (i = 0; i < av->cnt; i++)
		if (av->v[i].kind == RS_ATTACH_PROG_ARRAY && av->v[i].map_id == map_id &&
		    av->v[i].slot == slot)
			return true;
	return false;
}

static int scan_prog_array(const struct rs_attach_point *owner, uint32_t map_id,
			   struct ap_vec *av)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	struct rs_attach_point *ap;
	uint32_t key, val;
	int fd, err = 0;

	fd = bpf_map_get_fd_by_id(map_id);
	if (fd < 0)
		return 0;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) ||
	    info.type != BPF_MAP_TYPE_PROG_ARRAY || info.value_size != sizeof(uint32_t))
		goto out;
	for (key = 0; key < info.max_entries; key++) {
		if (bpf_map_lookup_elem(fd, &key, &val) || !val)
			continue;
		if (slot_known(av, map_id, key))
			continue;
		ap = ap_push(av);
		if (!ap) {
			err = -ENOMEM;
			goto out;
		}
		/* the slot lives where its owner runs */
		fill_place(ap, &(struct rs_netns){ .ino = owner->netns_ino }, owner->ifindex,
			   owner->ifname);
		snprintf(ap->netns, sizeof(ap->netns), "%s", owner->netns);
		ap->kind = RS_ATTACH_PROG_ARRAY;
		ap->prog_id = val;
		ap->map_id = map_id;
		ap->slot = key;
		ap->owner_prog_id = owner->prog_id;
		ap->egress = owner->egress;
	}
out:
	close(fd);
	return err;
}

/* Breadth first: tail-call targets can own prog arrays of their own. */
static int discover_prog_arrays(struct ap_vec *av)
{
	size_t i, j;
	int err;

	for (i = 0; i < av->cnt; i++) {
		struct rs_attach_point owner = av->v[i];
		uint32_t *maps, nmaps;
		bool seen = false;

		for (j = 0; j < i && !seen; j++)
			seen = av->v[j].prog_id == owner.prog_id;
		if (seen)
			continue;
		err = prog_map_ids(owner.prog_id, &maps, &nmaps);
		if (err)
			return err;
		for (j = 0; j < nmaps && !err; j++)
			err = scan_prog_array(&owner, maps[j], av);
		free(maps);
		if (err)
			return err;
	}
	return 0;
}

int rs_discover(struct rs_attach_point **pts, size_t *cnt)
{
	struct link_vec lv = {};
	struct ap_vec av = {};
	struct rs_netns *ns = NULL;
	size_t ns_cnt = 0, i;
	int err;

	*pts = NULL;
	*cnt = 0;
	err = collect_links(&lv);
	if (err)
		goto out;
	err = rs_netns_list(&ns, &ns_cnt);
	if (err)
		goto out;
	for (i = 0; i < ns_cnt; i++) {
		err = discover_netns(&ns[i], i == 0, &lv, &av);
		if (err) {
			rs_warn("discover: netns '%s': %s", ns[i].name, rs_strerror(err));
			goto out;
		}
	}
	err = discover_prog_arrays(&av);
	if (err)
		goto out;
	*pts = av.v;
	*cnt = av.cnt;
	av.v = NULL;
out:
	free(av.v);
	free(lv.v);
	free(ns);
	return err;
}
