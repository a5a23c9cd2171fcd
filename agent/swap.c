// SPDX-License-Identifier: BSD-2-Clause
/*
 * swap.c - compare-and-swap of the program at an attach point (docs/swap.md).
 *
 * Per kind:
 *   XDP link, tcx link  BPF_LINK_UPDATE with BPF_F_REPLACE and old_prog_fd (kernel CAS),
 *   XDP netlink         IFLA_XDP with XDP_FLAGS_REPLACE and the expected fd, same mode flag
 *                       (bpf_xdp_attach; kernel CAS),
 *   tcx without link    BPF_PROG_ATTACH with BPF_F_REPLACE and replace_bpf_fd (mprog, kernel
 *                       CAS; uapi fields of 6.6 defined here),
 *   tc cls_bpf          check the filter's program id, then bpf_tc_attach with
 *                       BPF_TC_F_REPLACE on the same handle/prio (check-then-replace),
 *   PROG_ARRAY slot     check the slot's program id, then update it (check-then-replace).
 * rs_swap() wraps the bare replace with the journal and the pin of the original.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include "agent/agent.h"
#include "agent/swap_internal.h"
#include "agent/tcx.h"

/* BPF_PROG_ATTACH as of Linux 6.6 (mprog), newer than our 6.1 uapi. */
struct rs_attach_attr {
	uint32_t target_ifindex;
	uint32_t attach_bpf_fd;
	uint32_t attach_type;
	uint32_t attach_flags;
	uint32_t replace_bpf_fd;
	uint32_t relative_fd;
	uint64_t expected_revision;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

const char *swap_prog_desc(uint32_t id, char *buf, size_t sz)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd;

	if (!id) {
		snprintf(buf, sz, "none");
		return buf;
	}
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len)) {
		snprintf(buf, sz, "%u (unloaded)", id);
	} else {
		snprintf(buf, sz, "%u (%s)", id, info.name[0] ? info.name : "unnamed");
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

/* The kernel's fdinfo names the kind of object: "prog_id:" only for programs. */
uint32_t swap_fd_prog_id(int fd)
{
	char path[64], line[128];
	unsigned int id = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "prog_id: %u", &id) == 1)
			break;
	fclose(f);
	return id;
}

const char *rs_attach_point_key(const struct rs_attach_point *pt, char *buf, size_t sz)
{
	static const char *const mode[] = { "none", "drv", "skb", "hw" };
	const char *dir = pt->egress ? "egress" : "ingress";
	unsigned long long ns = pt->netns_ino;

	switch (pt->kind) {
	case RS_ATTACH_XDP_LINK:
		snprintf(buf, sz, "xdp_link_ns%llu_if%d_link%u", ns, pt->ifindex, pt->link_id);
		break;
	case RS_ATTACH_XDP_NETLINK:
		snprintf(buf, sz, "xdp_%s_ns%llu_if%d",
			 pt->xdp_mode < 4 ? mode[pt->xdp_mode] : "unknown", ns, pt->ifindex);
		break;
	case RS_ATTACH_TCX_LINK:
		snprintf(buf, sz, "tcx_link_ns%llu_if%d_%s_link%u", ns, pt->ifindex, dir,
			 pt->link_id);
		break;
	case RS_ATTACH_TCX:
		snprintf(buf, sz, "tcx_ns%llu_if%d_%s", ns, pt->ifindex, dir);
		break;
	case RS_ATTACH_TC_CLS:
		snprintf(buf, sz, "tc_ns%llu_if%d_%s_h%x_p%u", ns, pt->ifindex, dir,
			 pt->tc_handle, pt->tc_prio);
		break;
	case RS_ATTACH_PROG_ARRAY:
		snprintf(buf, sz, "prog_array_map%u_slot%u", pt->map_id, pt->slot);
		break;
	default:
		snprintf(buf, sz, "unknown");
	}
	return buf;
}

/* ---- network namespaces ---------------------------------------------------------------- */

int swap_netns_path(const struct rs_attach_point *pt, char *path, size_t sz, bool *own)
{
	struct rs_netns *list = NULL;
	uint64_t self = 0;
	size_t cnt = 0, i;
	char buf[160];
	struct stat st;
	int err;

	*own = true;
	path[0] = 0;
	/* prog array slots live in a map: no namespace needed */
	if (pt->kind == RS_ATTACH_PROG_ARRAY || !pt->netns_ino)
		return 0;
	err = rs_netns_self_ino(&self);
	if (err)
		return err;
	if (self == pt->netns_ino) {
		snprintf(path, sz, "/proc/%d/ns/net", (int)getpid());
		return 0;
	}
	*own = false;
	/* an ip-netns name still naming the same namespace saves walking /proc */
	if (pt->netns[0] && strncmp(pt->netns, "pid ", 4) && !strchr(pt->netns, '/')) {
		snprintf(path, sz, "/run/netns/%s", pt->netns);
		if (!stat(path, &st) && st.st_ino == pt->netns_ino)
			return 0;
	}
	err = rs_netns_list(&list, &cnt);
	if (err)
		return err;
	err = -RS_ERR_NOT_FOUND;
	for (i = 0; i < cnt; i++) {
		if (list[i].ino != pt->netns_ino)
			continue;
		snprintf(path, sz, "%s", list[i].path);
		err = 0;
		break;
	}
	free(list);
	if (err == -RS_ERR_NOT_FOUND)
		rs_warn("%s: network namespace %llu no longer exists",
			rs_attach_point_str(pt, buf, sizeof(buf)),
			(unsigned long long)pt->netns_ino);
	return err;
}

int swap_enter_netns(const struct rs_attach_point *pt, int *saved)
{
	char path[128];
	bool own;
	int err;

	*saved = -1;
	err = swap_netns_path(pt, path, sizeof(path), &own);
	if (err || own)
		return err;
	return rs_netns_enter(path, saved);
}

void swap_leave_netns(int saved)
{
	if (saved >= 0)
		rs_netns_restore(saved);
}

/* ---- what is at the point now ---------------------------------------------------------- */

/* Program of a link; -RS_ERR_NOT_FOUND when the link is gone or detached. */
static int link_prog(uint32_t link_id, uint32_t *prog_id)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int fd, err = 0;

	fd = bpf_link_get_fd_by_id(link_id);
	if (fd < 0)
		return -RS_ERR_NOT_FOUND;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	close(fd);
	if (err)
		return err;
	/* xdp: { ifindex }, tcx: { ifindex, attach_type }: 0 once the device is gone */
	if (!*(uint32_t *)&info.xdp)
		return -RS_ERR_NOT_FOUND;
	*prog_id = info.prog_id;
	return 0;
}

static int xdp_prog(const struct rs_attach_point *pt, uint32_t *prog_id)
{
	LIBBPF_OPTS(bpf_xdp_query_opts, q);
	char name[IF_NAMESIZE];
	int err;

	/* the query is a link dump filtered by ifindex: no error for a missing device */
	if (!if_indextoname(pt->ifindex, name))
		return -RS_ERR_NOT_FOUND;
	err = bpf_xdp_query(pt->ifindex, 0, &q);
	if (err)
		return err == -ENODEV ? -RS_ERR_NOT_FOUND : err;
	switch (pt->xdp_mode) {
	case XDP_ATTACHED_DRV:	*prog_id = q.drv_prog_id; break;
	case XDP_ATTACHED_SKB:	*prog_id = q.skb_prog_id; break;
	case XDP_ATTACHED_HW:	*prog_id = q.hw_prog_id; break;
	default:		return -EINVAL;
	}
	return 0;
}

/* Non-link programs on a tcx hook; *cnt = 0 when none (or no tcx in this kernel). */
static int tcx_progs(const struct rs_attach_point *pt, uint32_t *ids, uint32_t *cnt,
		     uint64_t *revision)
{
	uint32_t prog_ids[RS_TCX_MAX_PROGS] = {}, link_ids[RS_TCX_MAX_PROGS] = {};
	uint32_t i, got = RS_TCX_MAX_PROGS, n = 0;
	int err;

	err = rs_tcx_query(pt->ifindex, pt->egress, prog_ids, link_ids, &got, revision);
	if (err)
		return err == -ENODEV ? -RS_ERR_NOT_FOUND : err;
	for (i = 0; i < got; i++)
		if (!link_ids[i])
			ids[n++] = prog_ids[i];
	*cnt = n;
	return 0;
}

static int tc_prog(const struct rs_attach_point *pt, uint32_t *prog_id, bool *direct)
{
	struct rs_tc_filter *f = NULL;
	size_t cnt = 0, i;
	int err;

	err = rs_tc_bpf_filters(pt->ifindex, &f, &cnt);
	if (err)
		return err == -ENODEV ? -RS_ERR_NOT_FOUND : err;
	err = -RS_ERR_NOT_FOUND;
	for (i = 0; i < cnt; i++) {
		if (f[i].egress != pt->egress || f[i].handle != pt->tc_handle ||
		    f[i].prio != pt->tc_prio)
			continue;
		*prog_id = f[i].prog_id;
		if (direct)
			*direct = f[i].direct_action;
		err = 0;
		break;
	}
	free(f);
	return err;
}

static int slot_prog(const struct rs_attach_point *pt, uint32_t *prog_id)
{
	uint32_t key = pt->slot, val = 0;
	int fd, err = 0;

	fd = bpf_map_get_fd_by_id(pt->map_id);
	if (fd < 0)
		return -RS_ERR_NOT_FOUND;
	if (bpf_map_lookup_elem(fd, &key, &val)) {
		err = -errno;
		if (err == -ENOENT) {
			val = 0;	/* empty slot */
			err = 0;
		}
	}
	close(fd);
	*prog_id = val;
	return err;
}

int swap_check(const struct rs_attach_point *pt, uint32_t expected, uint32_t *found)
{
	uint32_t ids[RS_TCX_MAX_PROGS], n = 0, i, cur = 0;
	int err;

	*found = 0;
	switch (pt->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_TCX_LINK:
		err = link_prog(pt->link_id, &cur);
		break;
	case RS_ATTACH_XDP_NETLINK:
		err = xdp_prog(pt, &cur);
		break;
	case RS_ATTACH_TC_CLS:
		err = tc_prog(pt, &cur, NULL);
		break;
	case RS_ATTACH_PROG_ARRAY:
		err = slot_prog(pt, &cur);
		break;
	case RS_ATTACH_TCX:
		err = tcx_progs(pt, ids, &n, NULL);
		if (err)
			return err;
		for (i = 0; i < n; i++)
			if (ids[i] == expected) {
				*found = expected;
				return 0;
			}
		*found = n ? ids[0] : 0;
		return -EBUSY;
	default:
		return -EINVAL;
	}
	if (err)
		return err;
	*found = cur;
	return cur == expected ? 0 : -EBUSY;
}

int rs_attach_point_current(const struct rs_attach_point *pt, uint32_t *prog_id)
{
	uint32_t found = 0;
	int saved, err;

	err = swap_enter_netns(pt, &saved);
	if (err)
		return err;
	err = swap_check(pt, pt->prog_id, &found);
	swap_leave_netns(saved);
	if (err && err != -EBUSY)
		return err;
	*prog_id = found;
	return 0;
}

/* ---- the replace operations ------------------------------------------------------------ */

static int cas_link(const struct rs_attach_point *pt, int old_fd, int new_fd, uint64_t *op_ns)
{
	LIBBPF_OPTS(bpf_link_update_opts, uo, .flags = BPF_F_REPLACE, .old_prog_fd = old_fd);
	uint64_t t0;
	int link_fd, err;

	link_fd = bpf_link_get_fd_by_id(pt->link_id);
	if (link_fd < 0)
		return -RS_ERR_NOT_FOUND;
	t0 = now_ns();
	err = bpf_link_update(link_fd, new_fd, &uo);
	*op_ns = now_ns() - t0;
	close(link_fd);
	/* the kernel says EPERM when the link's program is not old_prog_fd */
	return err == -EPERM ? -EBUSY : err;
}

static int cas_xdp(const struct rs_attach_point *pt, int old_fd, int new_fd, uint64_t *op_ns)
{
	LIBBPF_OPTS(bpf_xdp_attach_opts, ao, .old_prog_fd = old_fd);
	uint32_t flags = XDP_FLAGS_REPLACE;
	uint64_t t0;
	int err;

	switch (pt->xdp_mode) {
	case XDP_ATTACHED_DRV:	flags |= XDP_FLAGS_DRV_MODE; break;
	case XDP_ATTACHED_SKB:	flags |= XDP_FLAGS_SKB_MODE; break;
	case XDP_ATTACHED_HW:	flags |= XDP_FLAGS_HW_MODE; break;
	default:		return -EINVAL;
	}
	t0 = now_ns();
	err = bpf_xdp_attach(pt->ifindex, new_fd, flags, &ao);
	*op_ns = now_ns() - t0;
	/* EEXIST: "Active program does not match expected" */
	return err == -EEXIST ? -EBUSY : err;
}

static int cas_tcx(const struct rs_attach_point *pt, int old_fd, int new_fd, uint64_t *op_ns)
{
	union {
		struct rs_attach_attr a;
		union bpf_attr attr;
	} u;
	uint64_t t0;
	long ret;

	memset(&u, 0, sizeof(u));
	u.a.target_ifindex = pt->ifindex;
	u.a.attach_bpf_fd = new_fd;
	u.a.attach_type = pt->egress ? RS_BPF_TCX_EGRESS : RS_BPF_TCX_INGRESS;
	u.a.attach_flags = BPF_F_REPLACE;
	u.a.replace_bpf_fd = old_fd;
	t0 = now_ns();
	ret = syscall(__NR_bpf, BPF_PROG_ATTACH, &u, sizeof(u));
	*op_ns = now_ns() - t0;
	if (ret < 0)
		/* mprog: ENOENT when replace_bpf_fd is not in the hook's list */
		return errno == ENOENT ? -EBUSY : -errno;
	return 0;
}

static int cas_tc(const struct rs_attach_point *pt, uint32_t expected, int new_fd,
		  uint64_t *op_ns)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = pt->ifindex,
			    .attach_point = pt->egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = new_fd, .flags = BPF_TC_F_REPLACE,
			    .handle = pt->tc_handle, .priority = pt->tc_prio);
	uint32_t cur = 0;
	bool direct = false;
	uint64_t t0;
	char buf[160];
	int err;

	err = tc_prog(pt, &cur, &direct);
	if (err)
		return err;
	if (cur != expected)
		return -EBUSY;
	if (!direct) {
		/* bpf_tc_attach() always installs direct-action filters */
		rs_warn("%s: filter is not direct-action; replacing it would change its actions",
			rs_attach_point_str(pt, buf, sizeof(buf)));
		return -EOPNOTSUPP;
	}
	/*
	 * Residual race: another writer may replace the filter between the dump above and the
	 * replace below; rtnetlink has no "expected program" attribute for cls_bpf.
	 */
	t0 = now_ns();
	err = bpf_tc_attach(&hook, &to);
	*op_ns = now_ns() - t0;
	return err;
}

static int cas_slot(const struct rs_attach_point *pt, uint32_t expected, int new_fd,
		    uint64_t *op_ns)
{
	uint32_t key = pt->slot, cur = 0;
	uint64_t t0;
	int fd, err;

	fd = bpf_map_get_fd_by_id(pt->map_id);
	if (fd < 0)
		return -RS_ERR_NOT_FOUND;
	/* check-then-update: the window is two syscalls wide (see docs/swap.md) */
	t0 = now_ns();
	if (bpf_map_lookup_elem(fd, &key, &cur) && errno != ENOENT) {
		err = -errno;
		goto out;
	}
	if (cur != expected) {
		err = -EBUSY;
		goto out;
	}
	err = bpf_map_update_elem(fd, &key, &new_fd, BPF_ANY) ? -errno : 0;
	*op_ns = now_ns() - t0;
out:
	close(fd);
	return err;
}

int swap_cas(const struct rs_attach_point *pt, uint32_t expected, int new_fd, uint64_t *op_ns)
{
	int old_fd = -1, err;

	*op_ns = 0;
	if (pt->kind != RS_ATTACH_TC_CLS && pt->kind != RS_ATTACH_PROG_ARRAY) {
		old_fd = bpf_prog_get_fd_by_id(expected);
		if (old_fd < 0)
			return -EBUSY;	/* the expected program no longer exists */
	}
	switch (pt->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_TCX_LINK:
		err = cas_link(pt, old_fd, new_fd, op_ns);
		break;
	case RS_ATTACH_XDP_NETLINK:
		err = cas_xdp(pt, old_fd, new_fd, op_ns);
		break;
	case RS_ATTACH_TCX:
		err = cas_tcx(pt, old_fd, new_fd, op_ns);
		break;
	case RS_ATTACH_TC_CLS:
		err = cas_tc(pt, expected, new_fd, op_ns);
		break;
	case RS_ATTACH_PROG_ARRAY:
		err = cas_slot(pt, expected, new_fd, op_ns);
		break;
	default:
		err = -EINVAL;
	}
	if (old_fd >= 0)
		close(old_fd);
	return err;
}

/* ---- rs_swap: journal + pin around the replace ------------------------------------------ */

static void busy_msg(const struct rs_attach_point *pt, uint32_t expected, uint32_t found)
{
	char where[160], exp[48], now[48];

	rs_warn("%s: expected prog %s but prog %s is there now: left alone",
		rs_attach_point_str(pt, where, sizeof(where)),
		swap_prog_desc(expected, exp, sizeof(exp)), swap_prog_desc(found, now, sizeof(now)));
}

/* Start a journal entry for a point seen for the first time: pin `orig` first. */
static int entry_start(struct journal *j, const char *pin_dir, const struct rs_attach_point *pt,
		       const char *key, uint32_t orig, struct rs_journal_entry **out)
{
	struct rs_journal_entry *e, *nv;
	int fd, err;

	nv = realloc(j->v, (j->cnt + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	j->v = nv;
	e = &j->v[j->cnt];
	memset(e, 0, sizeof(*e));
	e->pt = *pt;
	e->pt.prog_id = orig;
	snprintf(e->key, sizeof(e->key), "%s", key);
	e->orig_id = orig;
	fd = bpf_prog_get_fd_by_id(orig);
	if (fd < 0)
		return -EBUSY;
	err = journal_pin(pin_dir, e, fd, e->pin, sizeof(e->pin));
	close(fd);
	if (err)
		return err;
	j->cnt++;
	*out = e;
	return 0;
}

int rs_swap(const struct rs_attach_point *pt, uint32_t expected, int new_fd,
	    struct rs_swap_opts *opts)
{
	const char *jdir = RS_OPTS_GET(opts, journal_dir, NULL);
	const char *pin_dir = RS_OPTS_GET(opts, pin_dir, NULL);
	bool no_journal = RS_OPTS_GET(opts, no_journal, false);
	struct journal j = { .lock_fd = -1 };
	struct rs_journal_entry *e = NULL, *sig_entry = NULL, saved_e;
	uint32_t new_id, found = 0;
	char where[160], key[128];
	bool started = false;
	uint64_t op_ns = 0;
	int saved = -1, err, orig_fd;

	rs_attach_point_str(pt, where, sizeof(where));
	new_id = swap_fd_prog_id(new_fd);
	if (!new_id) {
		rs_warn("%s: swap: fd %d is not a BPF program", where, new_fd);
		return -EBADF;
	}
	rs_attach_point_key(pt, key, sizeof(key));
	if (!no_journal) {
		err = journal_open(&j, jdir);
		if (err)
			return err;
	}
	err = swap_enter_netns(pt, &saved);
	if (err)
		goto out;
	err = swap_check(pt, expected, &found);
	if (err == -EBUSY)
		busy_msg(pt, expected, found);
	if (err)
		goto out;
	if (new_id == expected)
		goto out;	/* already there */
	if (no_journal) {
		err = swap_cas(pt, expected, new_fd, &op_ns);
		goto done;
	}

	e = journal_find(&j, key, expected);
	if (!e) {
		/* a stale entry for this point (someone replaced ours): start over from here */
		struct rs_journal_entry *old = pt->kind == RS_ATTACH_TCX ? NULL :
					       journal_find(&j, key, 0);

		if (old) {
			rs_info("%s: journal entry of original prog %u is stale (prog %u is there): "
				"dropped", where, old->orig_id, expected);
			old->closed = true;
			sigtab_forget(old->key, old->orig_id);
			journal_unpin(old);
			err = journal_write(&j, old);
			if (err)
				goto out;
		}
		err = entry_start(&j, pin_dir, pt, key, expected, &e);
		if (err)
			goto out;
		started = true;
	} else if (new_id == e->orig_id) {
		/* putting the original back is a restore */
		struct rs_restore_report rep = {};

		err = restore_entry(&j, e, &rep);
		op_ns = rep.op_ns;
		goto done;
	}

	/* write ahead: the journal knows the new program before the kernel does */
	saved_e = *e;
	if (e->ours_cnt == RS_SWAP_MAX_OURS) {
		memmove(e->ours, e->ours + 1, (RS_SWAP_MAX_OURS - 1) * sizeof(e->ours[0]));
		e->ours_cnt--;
	}
	e->ours[e->ours_cnt++] = new_id;
	e->cur_id = new_id;
	e->time = time(NULL);
	err = journal_write(&j, e);
	if (err)
		goto fail_entry;
	err = swap_cas(pt, expected, new_fd, &op_ns);
	if (err)
		goto fail_entry;
	sig_entry = e;	/* for the signal-time restore, once back in our namespace */
	goto done;

fail_entry:
	if (started) {
		e->closed = true;
		journal_unpin(e);
	} else {
		*e = saved_e;
	}
	journal_write(&j, e);
done:
	if (err == -EBUSY) {
		swap_check(pt, expected, &found);
		busy_msg(pt, expected, found);
	} else if (err) {
		rs_warn("%s: swap of prog %u for prog %u: %s", where, expected, new_id,
			rs_strerror(err));
	} else {
		rs_debug("%s: swapped prog %u for prog %u in %llu ns", where, expected, new_id,
			 (unsigned long long)op_ns);
	}
out:
	swap_leave_netns(saved);
	if (sig_entry) {
		orig_fd = bpf_obj_get(sig_entry->pin);
		if (orig_fd >= 0) {
			sigtab_register(sig_entry, j.path, orig_fd, new_fd);
			close(orig_fd);
		}
	}
	if (!no_journal)
		journal_close(&j);
	if (RS_OPTS_HAS(opts, op_ns))
		opts->op_ns = op_ns;
	return err;
}
