// SPDX-License-Identifier: BSD-2-Clause
/*
 * restore.c - putting originals back (docs/swap.md).
 *
 * rs_restore*() work from the journal: for each entry, look at the attach point; if one of our
 * programs is there, compare-and-swap the original (from its pin) back; if the original is
 * already there, or the point is gone, just clean up; if someone else's program is there,
 * leave it and say so.  Then unpin and close the entry.
 *
 * rs_restore_all_signal_safe() works from an in-memory table that rs_swap() fills in normal
 * context with everything a restore needs already open (namespace, link, map, original and
 * our program fds) and the journal's "closed" line pre-formatted, so the signal handler only
 * makes raw bpf() and rtnetlink syscalls, write(), unlink() and setns().  Netlink messages are
 * built on the stack here because libbpf's netlink helpers allocate.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "agent/agent.h"
#include "agent/swap_internal.h"
#include "agent/tcx.h"

const char *rs_restore_outcome_name(enum rs_restore_outcome o)
{
	switch (o) {
	case RS_RESTORE_DONE:		return "restored";
	case RS_RESTORE_ALREADY:	return "already original";
	case RS_RESTORE_FOREIGN:	return "foreign program left in place";
	case RS_RESTORE_GONE:		return "gone";
	case RS_RESTORE_FAILED:		return "failed";
	}
	return "unknown";
}

/* ---- restore from the journal ---------------------------------------------------------- */

static int close_entry(struct journal *j, struct rs_journal_entry *e)
{
	e->closed = true;
	sigtab_forget(e->key, e->orig_id);
	journal_unpin(e);
	return journal_write(j, e);	/* e is gone from j->v afterwards */
}

int restore_entry(struct journal *j, struct rs_journal_entry *e, struct rs_restore_report *rep)
{
	char where[160], a[48], b[48];
	uint32_t found = 0, cur = 0;
	int saved = -1, orig_fd = -1, err, k;

	memset(rep, 0, sizeof(*rep));
	rs_attach_point_str(&e->pt, where, sizeof(where));
	err = swap_enter_netns(&e->pt, &saved);
	if (err == -RS_ERR_NOT_FOUND) {
		rep->outcome = RS_RESTORE_GONE;
		goto close;
	}
	if (err)
		goto failed;
	err = swap_check(&e->pt, e->orig_id, &found);
	if (!err) {
		rep->found_id = e->orig_id;
		rep->outcome = RS_RESTORE_ALREADY;
		goto close;
	}
	if (err == -RS_ERR_NOT_FOUND) {
		rep->outcome = RS_RESTORE_GONE;
		goto close;
	}
	if (err != -EBUSY)
		goto failed;
	rep->found_id = found;
	/* which of ours is there (most recent first) */
	for (k = (int)e->ours_cnt - 1; k >= 0 && !cur; k--)
		if (!swap_check(&e->pt, e->ours[k], &found))
			cur = e->ours[k];
	if (!cur) {
		if (!rep->found_id) {
			rep->outcome = RS_RESTORE_GONE;	/* detached by someone */
			goto close;
		}
		rep->outcome = RS_RESTORE_FOREIGN;
		rs_warn("%s: prog %s is there, not one of ours: left in place, original prog %s "
			"not restored", where, swap_prog_desc(rep->found_id, a, sizeof(a)),
			swap_prog_desc(e->orig_id, b, sizeof(b)));
		goto close;
	}
	rep->found_id = cur;
	orig_fd = bpf_obj_get(e->pin);
	if (orig_fd < 0)
		orig_fd = bpf_prog_get_fd_by_id(e->orig_id);
	if (orig_fd < 0) {
		rs_warn("%s: original prog %u is neither pinned at %s nor loaded: cannot restore",
			where, e->orig_id, e->pin);
		rep->outcome = RS_RESTORE_GONE;
		goto close;
	}
	err = swap_cas(&e->pt, cur, orig_fd, &rep->op_ns);
	if (err == -EBUSY) {
		swap_check(&e->pt, cur, &found);
		rep->found_id = found;
		rep->outcome = RS_RESTORE_FOREIGN;
		rs_warn("%s: prog %s replaced ours meanwhile: left in place",
			where, swap_prog_desc(found, a, sizeof(a)));
		goto close;
	}
	if (err)
		goto failed;
	rep->outcome = RS_RESTORE_DONE;
	rs_info("%s: original prog %s restored in place of prog %u", where,
		swap_prog_desc(e->orig_id, a, sizeof(a)), cur);
close:
	if (orig_fd >= 0)
		close(orig_fd);
	swap_leave_netns(saved);
	err = close_entry(j, e);
	if (err) {
		rep->err = err;
		return err;
	}
	rep->err = rep->outcome == RS_RESTORE_FOREIGN ? -EBUSY : 0;
	return rep->err;
failed:
	if (orig_fd >= 0)
		close(orig_fd);
	swap_leave_netns(saved);
	rs_warn("%s: restoring original prog %u: %s", where, e->orig_id, rs_strerror(err));
	rep->outcome = RS_RESTORE_FAILED;
	rep->err = err;
	return err;
}

/* Restore the entry (key, orig) and report it; the entry copy survives its closing. */
static int restore_one(struct journal *j, const char *key, uint32_t orig,
		       const struct rs_restore_opts *opts)
{
	rs_restore_cb cb = RS_OPTS_GET(opts, cb, NULL);
	struct rs_journal_entry *e, copy;
	struct rs_restore_report rep;
	int err;

	e = journal_find(j, key, orig);
	if (!e || e->orig_id != orig)
		return 0;	/* closed meanwhile */
	copy = *e;
	err = restore_entry(j, e, &rep);
	rep.entry = &copy;
	if (cb)
		cb(&rep, RS_OPTS_GET(opts, ctx, NULL));
	return err;
}

static bool entry_has(const struct rs_journal_entry *e, uint32_t id)
{
	uint32_t k;

	if (!id || e->orig_id == id)
		return true;
	for (k = 0; k < e->ours_cnt; k++)
		if (e->ours[k] == id)
			return true;
	return false;
}

/* Restore every entry with `id` (0: all) and, with key set, that key. */
static int restore_matching(const char *key, uint32_t id, const struct rs_restore_opts *opts)
{
	struct { char key[128]; uint32_t orig; } *todo = NULL;
	size_t n = 0, i;
	struct journal j;
	int err, first = 0;

	err = journal_open(&j, RS_OPTS_GET(opts, journal_dir, NULL));
	if (err)
		return err;
	todo = calloc(j.cnt ? j.cnt : 1, sizeof(*todo));
	if (!todo) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < j.cnt; i++) {
		if (key && strcmp(j.v[i].key, key))
			continue;
		if (!entry_has(&j.v[i], id))
			continue;
		snprintf(todo[n].key, sizeof(todo[n].key), "%s", j.v[i].key);
		todo[n++].orig = j.v[i].orig_id;
	}
	if (!n && (key || id)) {
		err = -RS_ERR_NOT_FOUND;
		goto out;
	}
	for (i = 0; i < n; i++) {
		err = restore_one(&j, todo[i].key, todo[i].orig, opts);
		if (err && !first)
			first = err;
	}
	err = first;
out:
	free(todo);
	journal_close(&j);
	return err;
}

int rs_restore(const struct rs_attach_point *pt, const struct rs_restore_opts *opts)
{
	char key[128], where[160];
	int err;

	rs_attach_point_key(pt, key, sizeof(key));
	/* tcx without a link may hold several of our entries: the point's program picks one */
	err = restore_matching(key, pt->kind == RS_ATTACH_TCX ? pt->prog_id : 0, opts);
	if (err == -RS_ERR_NOT_FOUND)
		rs_warn("%s: no swap of ours in the journal",
			rs_attach_point_str(pt, where, sizeof(where)));
	return err;
}

int rs_restore_prog(uint32_t prog_id, const struct rs_restore_opts *opts)
{
	int err;

	if (!prog_id)
		return -EINVAL;
	err = restore_matching(NULL, prog_id, opts);
	if (err == -RS_ERR_NOT_FOUND)
		rs_warn("prog %u: not in the swap journal (neither an original nor ours)", prog_id);
	return err;
}

int rs_restore_all(const struct rs_restore_opts *opts)
{
	return restore_matching(NULL, 0, opts);
}

/* ---- the in-memory table for signal handlers -------------------------------------------- */

#define SIGTAB_MAX	64

struct sigent {
	volatile sig_atomic_t used;
	enum rs_attach_kind kind;
	char key[128];
	uint32_t orig_id, ours_id;
	int orig_fd, ours_fd;
	uint32_t link_id, map_id;
	char ns_path[128];		/* "" when no namespace is involved */
	uint64_t ns_ino;
	int ifindex;
	bool egress;
	uint32_t xdp_flags, handle, prio, slot;
	char tc_name[32];
	char journal_path[300];
	char closed_line[2048];
	int closed_len;
	char pin[256];
};

static struct sigent sigtab[SIGTAB_MAX];
static pthread_mutex_t sigtab_lock = PTHREAD_MUTEX_INITIALIZER;

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void sigent_clear(struct sigent *s)
{
	s->used = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	close_fd(&s->orig_fd);
	close_fd(&s->ours_fd);
}

void sigtab_register(const struct rs_journal_entry *e, const char *journal_path, int orig_fd,
		     int ours_fd)
{
	struct rs_journal_entry closed = *e;
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	struct sigent *s = NULL;
	bool own;
	size_t i;

	pthread_mutex_lock(&sigtab_lock);
	for (i = 0; i < SIGTAB_MAX && !s; i++)
		if (sigtab[i].used && sigtab[i].orig_id == e->orig_id &&
		    !strcmp(sigtab[i].key, e->key))
			s = &sigtab[i];
	for (i = 0; i < SIGTAB_MAX && !s; i++)
		if (!sigtab[i].used && !sigtab[i].key[0])
			s = &sigtab[i];
	for (i = 0; i < SIGTAB_MAX && !s; i++)
		if (!sigtab[i].used)
			s = &sigtab[i];
	if (!s) {
		rs_warn("%s: more than %d swapped points: not restored on signals", e->key,
			SIGTAB_MAX);
		goto out;
	}
	if (s->used)
		sigent_clear(s);
	else
		s->orig_fd = s->ours_fd = -1;
	snprintf(s->key, sizeof(s->key), "%s", e->key);
	s->kind = e->pt.kind;
	s->orig_id = e->orig_id;
	s->ours_id = e->cur_id;
	s->ifindex = e->pt.ifindex;
	s->egress = e->pt.egress;
	s->handle = e->pt.tc_handle;
	s->prio = e->pt.tc_prio;
	s->slot = e->pt.slot;
	s->xdp_flags = XDP_FLAGS_REPLACE |
		       (e->pt.xdp_mode == XDP_ATTACHED_SKB ? XDP_FLAGS_SKB_MODE :
			e->pt.xdp_mode == XDP_ATTACHED_HW ? XDP_FLAGS_HW_MODE : XDP_FLAGS_DRV_MODE);
	snprintf(s->pin, sizeof(s->pin), "%s", e->pin);
	snprintf(s->journal_path, sizeof(s->journal_path), "%s", journal_path);
	closed.closed = true;
	s->closed_len = journal_format(&closed, s->closed_line, sizeof(s->closed_line));
	if (s->closed_len < 0)
		s->closed_len = 0;
	/*
	 * Links, maps and namespaces are kept by id / path, not by fd: an fd of ours would keep
	 * a link attached, or a namespace alive, after its owner let it go.
	 */
	s->link_id = e->pt.link_id;
	s->map_id = e->pt.map_id;
	s->ns_ino = e->pt.netns_ino;
	if (swap_netns_path(&e->pt, s->ns_path, sizeof(s->ns_path), &own))
		s->ns_path[0] = 0;
	s->orig_fd = fcntl(orig_fd, F_DUPFD_CLOEXEC, 3);
	s->ours_fd = fcntl(ours_fd, F_DUPFD_CLOEXEC, 3);
	/* cls_bpf filter name as libbpf sets it: "<prog name>:[<id>]" */
	if (!bpf_obj_get_info_by_fd(orig_fd, &info, &len))
		snprintf(s->tc_name, sizeof(s->tc_name), "%.15s:[%u]", info.name, info.id);
	if (s->orig_fd < 0 || s->ours_fd < 0 ||
	    (e->pt.kind != RS_ATTACH_PROG_ARRAY && !s->ns_path[0])) {
		rs_warn("%s: cannot keep fds for signal-time restore", e->key);
		sigent_clear(s);
		goto out;
	}
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	s->used = 1;
out:
	pthread_mutex_unlock(&sigtab_lock);
}

void sigtab_forget(const char *key, uint32_t orig_id)
{
	size_t i;

	pthread_mutex_lock(&sigtab_lock);
	for (i = 0; i < SIGTAB_MAX; i++)
		if (sigtab[i].used && sigtab[i].orig_id == orig_id &&
		    !strcmp(sigtab[i].key, key))
			sigent_clear(&sigtab[i]);
	pthread_mutex_unlock(&sigtab_lock);
}

/* ---- async-signal-safe operations --------------------------------------------------------- */

static long sys_bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

static int obj_fd_by_id(int cmd, uint32_t id)
{
	union bpf_attr attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	if (cmd == BPF_LINK_GET_FD_BY_ID)
		attr.link_id = id;
	else
		attr.map_id = id;
	fd = sys_bpf(cmd, &attr);
	return fd < 0 ? -ENOENT : (int)fd;	/* gone: nothing to restore */
}

/* Enter the entry's namespace: opened by path, checked by inode (paths can be reused). */
static int sig_enter(const struct sigent *s)
{
	struct stat st;
	int fd, err = 0;

	if (!s->ns_path[0])
		return 0;
	fd = open(s->ns_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ENOENT;
	if (fstat(fd, &st) || st.st_ino != s->ns_ino)
		err = -ENOENT;
	else if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
}

static void nl_put(struct nlmsghdr *nh, size_t cap, int type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));
	size_t need = NLMSG_ALIGN(nh->nlmsg_len) + RTA_SPACE(len);

	if (need > cap)
		return;
	a->rta_type = type;
	a->rta_len = RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	nh->nlmsg_len = need;
}

static struct rtattr *nl_nest(struct nlmsghdr *nh, size_t cap, int type)
{
	struct rtattr *a = (struct rtattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	nl_put(nh, cap, type, NULL, 0);
	return a;
}

static void nl_nest_end(struct nlmsghdr *nh, struct rtattr *a)
{
	a->rta_len = (char *)nh + nh->nlmsg_len - (char *)a;
}

/* Send one request; the answer (ack or message) lands in reply.  0 or negative errno. */
static int nl_talk(struct nlmsghdr *req, char *reply, size_t cap)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlmsghdr *nh;
	int sock, err = -EIO;
	ssize_t n;

	sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (sock < 0)
		return -errno;
	req->nlmsg_seq = 1;
	if (sendto(sock, req, req->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto out;
	}
	do {
		n = recv(sock, reply, cap, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		err = -errno;
		goto out;
	}
	nh = (struct nlmsghdr *)reply;
	if (!NLMSG_OK(nh, (size_t)n))
		goto out;
	if (nh->nlmsg_type == NLMSG_ERROR)
		err = ((struct nlmsgerr *)NLMSG_DATA(nh))->error;
	else
		err = 0;
out:
	close(sock);
	return err;
}

static int sig_xdp(const struct sigent *s)
{
	struct {
		struct nlmsghdr nh;
		struct ifinfomsg ifi;
		char attrs[128];
	} req;
	char reply[1024];
	struct rtattr *nest;
	int32_t fd = s->orig_fd, exp = s->ours_fd;
	uint32_t flags = s->xdp_flags;

	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(req.ifi));
	req.nh.nlmsg_type = RTM_SETLINK;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.ifi.ifi_family = AF_UNSPEC;
	req.ifi.ifi_index = s->ifindex;
	nest = nl_nest(&req.nh, sizeof(req), IFLA_XDP | NLA_F_NESTED);
	nl_put(&req.nh, sizeof(req), IFLA_XDP_FD, &fd, sizeof(fd));
	nl_put(&req.nh, sizeof(req), IFLA_XDP_FLAGS, &flags, sizeof(flags));
	nl_put(&req.nh, sizeof(req), IFLA_XDP_EXPECTED_FD, &exp, sizeof(exp));
	nl_nest_end(&req.nh, nest);
	return nl_talk(&req.nh, reply, sizeof(reply));
}

static void tc_msg(struct nlmsghdr *nh, struct tcmsg *t, const struct sigent *s, int type,
		   int flags)
{
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*t));
	nh->nlmsg_type = type;
	nh->nlmsg_flags = NLM_F_REQUEST | flags;
	t->tcm_family = AF_UNSPEC;
	t->tcm_ifindex = s->ifindex;
	t->tcm_handle = s->handle;
	t->tcm_parent = rs_tc_clsact_parent(s->egress);
	t->tcm_info = TC_H_MAKE(s->prio << 16, htons(ETH_P_ALL));
}

static int sig_tc(const struct sigent *s)
{
	struct {
		struct nlmsghdr nh;
		struct tcmsg t;
		char attrs[256];
	} req;
	char reply[4096];
	struct nlmsghdr *rh = (struct nlmsghdr *)reply;
	struct rtattr *a, *opts = NULL, *nest;
	uint32_t id = 0, fd = s->orig_fd, flags = TCA_BPF_FLAG_ACT_DIRECT;
	int len, err;

	/* check: which program does the filter run now? */
	memset(&req, 0, sizeof(req));
	tc_msg(&req.nh, &req.t, s, RTM_GETTFILTER, 0);
	nl_put(&req.nh, sizeof(req), TCA_KIND, "bpf", 4);
	err = nl_talk(&req.nh, reply, sizeof(reply));
	if (err)
		return err;
	if (rh->nlmsg_type != RTM_NEWTFILTER)
		return -EIO;
	len = rh->nlmsg_len - NLMSG_LENGTH(sizeof(struct tcmsg));
	for (a = (struct rtattr *)((char *)NLMSG_DATA(rh) + NLMSG_ALIGN(sizeof(struct tcmsg)));
	     RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == TCA_OPTIONS)
			opts = a;
	if (!opts)
		return -EIO;
	len = RTA_PAYLOAD(opts);
	for (a = RTA_DATA(opts); RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == TCA_BPF_ID && RTA_PAYLOAD(a) >= sizeof(id))
			memcpy(&id, RTA_DATA(a), sizeof(id));
	if (id != s->ours_id)
		return -EBUSY;
	/* replace on the same handle and priority */
	memset(&req, 0, sizeof(req));
	tc_msg(&req.nh, &req.t, s, RTM_NEWTFILTER, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE);
	nl_put(&req.nh, sizeof(req), TCA_KIND, "bpf", 4);
	nest = nl_nest(&req.nh, sizeof(req), TCA_OPTIONS | NLA_F_NESTED);
	nl_put(&req.nh, sizeof(req), TCA_BPF_FD, &fd, sizeof(fd));
	nl_put(&req.nh, sizeof(req), TCA_BPF_NAME, s->tc_name, strlen(s->tc_name) + 1);
	nl_put(&req.nh, sizeof(req), TCA_BPF_FLAGS, &flags, sizeof(flags));
	nl_nest_end(&req.nh, nest);
	return nl_talk(&req.nh, reply, sizeof(reply));
}

static int sig_one(const struct sigent *s)
{
	union bpf_attr attr;
	uint32_t key = s->slot, val = 0;
	int fd, err = 0;

	memset(&attr, 0, sizeof(attr));
	switch (s->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_TCX_LINK:
		fd = obj_fd_by_id(BPF_LINK_GET_FD_BY_ID, s->link_id);
		if (fd < 0)
			return fd;
		memset(&attr, 0, sizeof(attr));
		attr.link_update.link_fd = fd;
		attr.link_update.new_prog_fd = s->orig_fd;
		attr.link_update.flags = BPF_F_REPLACE;
		attr.link_update.old_prog_fd = s->ours_fd;
		err = sys_bpf(BPF_LINK_UPDATE, &attr) ? -errno : 0;
		close(fd);
		return err;
	case RS_ATTACH_TCX:
		/* target_ifindex shares target_fd's place; relative_fd stays 0 */
		attr.target_fd = s->ifindex;
		attr.attach_bpf_fd = s->orig_fd;
		attr.attach_type = s->egress ? RS_BPF_TCX_EGRESS : RS_BPF_TCX_INGRESS;
		attr.attach_flags = BPF_F_REPLACE;
		attr.replace_bpf_fd = s->ours_fd;
		return sys_bpf(BPF_PROG_ATTACH, &attr) ? -errno : 0;
	case RS_ATTACH_PROG_ARRAY:
		fd = obj_fd_by_id(BPF_MAP_GET_FD_BY_ID, s->map_id);
		if (fd < 0)
			return fd;
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = fd;
		attr.key = (uintptr_t)&key;
		attr.value = (uintptr_t)&val;
		if (sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr) && errno != ENOENT)
			err = -errno;
		else if (val != s->ours_id)
			err = -EBUSY;
		if (!err) {
			val = s->orig_fd;
			attr.flags = BPF_ANY;
			err = sys_bpf(BPF_MAP_UPDATE_ELEM, &attr) ? -errno : 0;
		}
		close(fd);
		return err;
	case RS_ATTACH_XDP_NETLINK:
		return sig_xdp(s);
	case RS_ATTACH_TC_CLS:
		return sig_tc(s);
	}
	return -EINVAL;
}

static void sig_journal(const struct sigent *s)
{
	int fd;

	if (!s->closed_len)
		return;
	fd = open(s->journal_path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, s->closed_line, s->closed_len) == s->closed_len)
		fsync(fd);
	close(fd);
}

int rs_restore_all_signal_safe(void)
{
	int saved_errno = errno, self, left = 0, err;
	size_t i;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	for (i = 0; i < SIGTAB_MAX; i++) {
		struct sigent *s = &sigtab[i];

		if (!s->used)
			continue;
		err = sig_enter(s);
		if (!err)
			err = sig_one(s);
		if (self >= 0)
			setns(self, CLONE_NEWNET);
		/* restored, or not ours any more: either way the entry is done */
		if (!err || err == -EBUSY || err == -EPERM || err == -EEXIST || err == -ENOENT) {
			unlink(s->pin);
			sig_journal(s);
			s->used = 0;
			close(s->orig_fd);
			close(s->ours_fd);
			s->orig_fd = s->ours_fd = -1;
			if (err)
				left++;
		} else {
			left++;
		}
	}
	if (self >= 0)
		close(self);
	errno = saved_errno;
	return left;
}

static void on_signal(int sig)
{
	static const char msg[] = "respec: restoring original programs\n";
	ssize_t n;

	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	rs_restore_all_signal_safe();
	signal(sig, SIG_DFL);
	raise(sig);
}

int rs_restore_install_signal_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGINT);
	if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL))
		return -errno;
	return 0;
}
