/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swap_env.h - the environment the swap kernel tests share (test_swap.c, test_swap_traffic.c):
 * a network namespace rs-swap-PID with a veth pair rsv0/rsv1, the programs of
 * tests/kernel/progs/swap_progs.bpf.c, a private journal directory and pin directory, and
 * helpers that attach / detach a program at rsv1 ingress in each of the six ways and find the
 * attach point through rs_discover().  Header-only (static functions): each test program
 * includes it once.
 */
#ifndef RS_TEST_SWAP_ENV_H
#define RS_TEST_SWAP_ENV_H

#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "tests/kernel/ktest.h"

enum { P_A, P_B, P_C, P_NR };

struct swap_env {
	char ns[64], ns_path[128];
	uint64_t ns_ino;
	int if0, if1;			/* rsv0 (sender side), rsv1 (programs) */
	unsigned char mac0[6], mac1[6];
	struct bpf_object *obj;
	int xdp[P_NR], tc[P_NR];
	uint32_t xdp_id[P_NR], tc_id[P_NR];
	int owner_fd, jmp_fd, counts_fd;
	uint32_t jmp_id;
	int link_fd;			/* link of the current link attach */
	char jdir[64], pdir[96];
	int saved_ns;			/* >= 0 while inside the namespace */
};

static struct swap_env env = { .link_fd = -1, .saved_ns = -1 };

static const enum rs_attach_kind swap_kinds[] = {
	RS_ATTACH_XDP_NETLINK, RS_ATTACH_XDP_LINK, RS_ATTACH_TCX_LINK,
	RS_ATTACH_TCX, RS_ATTACH_TC_CLS, RS_ATTACH_PROG_ARRAY,
};

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void ns_in(void)
{
	if (env.saved_ns < 0 && rs_netns_enter(env.ns_path, &env.saved_ns))
		env.saved_ns = -1;
}

static void ns_out(void)
{
	if (env.saved_ns >= 0)
		rs_netns_restore(env.saved_ns);
	env.saved_ns = -1;
}

/* MAC address of an interface of the current namespace (sysfs shows the host's). */
static int read_mac(const char *ifname, unsigned char mac[6])
{
	struct ifreq ifr;
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	close(fd);
	return err;
}

static int prog_fd(const char *name)
{
	struct bpf_program *p = bpf_object__find_program_by_name(env.obj, name);

	return p ? bpf_program__fd(p) : -1;
}

static void env_destroy(void)
{
	ns_out();
	if (env.link_fd >= 0)
		close(env.link_fd);
	env.link_fd = -1;
	if (env.ns[0])
		run("ip netns del %s 2>/dev/null", env.ns);
	env.ns[0] = 0;
	if (env.obj)
		bpf_object__close(env.obj);
	env.obj = NULL;
	if (env.jdir[0])
		run("rm -rf %s", env.jdir);
	if (env.pdir[0])
		run("rm -rf %s", env.pdir);
}

static int env_create(void)
{
	static const char *const names[P_NR] = { "a", "b", "c" };
	const char *dir = getenv("RS_BUILD_DIR");
	char path[4096], name[16];
	struct stat st;
	int i;

	snprintf(env.ns, sizeof(env.ns), "rs-swap-%d", getpid());
	snprintf(env.ns_path, sizeof(env.ns_path), "/run/netns/%s", env.ns);
	if (run("ip netns add %s", env.ns) ||
	    run("ip -n %s link add rsv0 type veth peer name rsv1", env.ns) ||
	    run("ip -n %s link set lo up && ip -n %s link set rsv0 up && "
		"ip -n %s link set rsv1 up", env.ns, env.ns, env.ns) ||
	    run("ip -n %s addr add 10.250.0.1/24 dev rsv0 && "
		"ip -n %s addr add 10.250.0.2/24 dev rsv1", env.ns, env.ns))
		goto fail;
	if (stat(env.ns_path, &st))
		goto fail;
	env.ns_ino = st.st_ino;
	ns_in();
	env.if0 = if_nametoindex("rsv0");
	env.if1 = if_nametoindex("rsv1");
	if (read_mac("rsv0", env.mac0) || read_mac("rsv1", env.mac1))
		env.if0 = 0;
	ns_out();
	if (!env.if0 || !env.if1)
		goto fail;

	snprintf(path, sizeof(path), "%s/tests/progs/test_swap_progs.bpf.o", dir ? dir : "build");
	env.obj = bpf_object__open_file(path, NULL);
	if (!env.obj || bpf_object__load(env.obj)) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto fail;
	}
	for (i = 0; i < P_NR; i++) {
		snprintf(name, sizeof(name), "xdp_%s", names[i]);
		env.xdp[i] = prog_fd(name);
		snprintf(name, sizeof(name), "tc_%s", names[i]);
		env.tc[i] = prog_fd(name);
		env.xdp_id[i] = ktest_prog_id(env.xdp[i]);
		env.tc_id[i] = ktest_prog_id(env.tc[i]);
	}
	env.owner_fd = prog_fd("xdp_owner");
	env.jmp_fd = bpf_object__find_map_fd_by_name(env.obj, "jmp");
	env.counts_fd = bpf_object__find_map_fd_by_name(env.obj, "counts");
	{
		struct bpf_map_info mi;
		__u32 len = sizeof(mi);

		memset(&mi, 0, sizeof(mi));
		if (bpf_obj_get_info_by_fd(env.jmp_fd, &mi, &len))
			goto fail;
		env.jmp_id = mi.id;
	}
	snprintf(env.jdir, sizeof(env.jdir), "/tmp/rs-swap-journal-%d", getpid());
	snprintf(env.pdir, sizeof(env.pdir), RS_PIN_DIR "-test-%d", getpid());
	return 0;
fail:
	fprintf(stderr, "swap test environment: setup failed\n");
	env_destroy();
	return -1;
}

/* The programs for a kind: XDP programs for XDP and prog array slots, TC otherwise. */
static const int *kind_progs(enum rs_attach_kind k, const uint32_t **ids)
{
	bool xdp = k == RS_ATTACH_XDP_NETLINK || k == RS_ATTACH_XDP_LINK ||
		   k == RS_ATTACH_PROG_ARRAY;

	*ids = xdp ? env.xdp_id : env.tc_id;
	return xdp ? env.xdp : env.tc;
}

static int attach(enum rs_attach_kind k, int fd)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = env.if1, .attach_point = BPF_TC_INGRESS);
	DECLARE_LIBBPF_OPTS(bpf_tc_opts, to, .prog_fd = fd, .handle = 1, .priority = 1);
	uint32_t key = 0;
	int err = 0;

	ns_in();
	switch (k) {
	case RS_ATTACH_XDP_NETLINK:
		err = bpf_xdp_attach(env.if1, fd, XDP_FLAGS_DRV_MODE, NULL);
		break;
	case RS_ATTACH_XDP_LINK:
		env.link_fd = bpf_link_create(fd, env.if1, BPF_XDP, NULL);
		err = env.link_fd < 0 ? env.link_fd : 0;
		break;
	case RS_ATTACH_TCX_LINK:
		env.link_fd = bpf_link_create(fd, env.if1, RS_BPF_TCX_INGRESS, NULL);
		err = env.link_fd < 0 ? env.link_fd : 0;
		break;
	case RS_ATTACH_TCX:
		err = bpf_prog_attach(fd, env.if1, RS_BPF_TCX_INGRESS, 0);
		break;
	case RS_ATTACH_TC_CLS:
		err = bpf_tc_hook_create(&hook);
		if (err == -EEXIST)
			err = 0;
		if (!err)
			err = bpf_tc_attach(&hook, &to);
		break;
	case RS_ATTACH_PROG_ARRAY:
		err = bpf_map_update_elem(env.jmp_fd, &key, &fd, BPF_ANY);
		if (!err)
			err = bpf_xdp_attach(env.if1, env.owner_fd, XDP_FLAGS_DRV_MODE, NULL);
		break;
	}
	ns_out();
	if (err)
		fprintf(stderr, "attach %s: %s\n", rs_attach_kind_name(k), strerror(-err));
	return err;
}

/* Remove whatever is attached in kind k's way (best effort, for teardown too). */
static void detach(enum rs_attach_kind k)
{
	DECLARE_LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = env.if1, .attach_point = BPF_TC_INGRESS);
	uint32_t key = 0;
	int i;

	ns_in();
	switch (k) {
	case RS_ATTACH_XDP_NETLINK:
		bpf_xdp_detach(env.if1, XDP_FLAGS_DRV_MODE, NULL);
		break;
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_TCX_LINK:
		if (env.link_fd >= 0)
			close(env.link_fd);
		env.link_fd = -1;
		break;
	case RS_ATTACH_TCX:
		for (i = 0; i < P_NR; i++)
			bpf_prog_detach2(env.tc[i], env.if1, RS_BPF_TCX_INGRESS);
		break;
	case RS_ATTACH_TC_CLS:
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
		break;
	case RS_ATTACH_PROG_ARRAY:
		bpf_xdp_detach(env.if1, XDP_FLAGS_DRV_MODE, NULL);
		bpf_map_delete_elem(env.jmp_fd, &key);
		break;
	}
	ns_out();
}

/* Back to a clean state between tests: nothing attached, no journal, no pins. */
static void env_reset(void)
{
	size_t i;

	ns_out();
	for (i = 0; i < RS_ARRAY_SIZE(swap_kinds); i++)
		detach(swap_kinds[i]);
	run("rm -f %s/journal", env.jdir);
	run("rm -f %s/*", env.pdir);
}

/* The attach point of kind k on rsv1 in our namespace, as discovery reports it. */
static int find_point(enum rs_attach_kind k, struct rs_attach_point *out)
{
	struct rs_attach_point *pts = NULL;
	size_t cnt = 0, i, found = 0;
	int err;

	err = rs_discover(&pts, &cnt);
	if (err)
		return err;
	for (i = 0; i < cnt; i++) {
		if (pts[i].kind != k || pts[i].netns_ino != env.ns_ino ||
		    pts[i].ifindex != env.if1)
			continue;
		if (k == RS_ATTACH_PROG_ARRAY && pts[i].map_id != env.jmp_id)
			continue;
		*out = pts[i];
		found++;
	}
	free(pts);
	if (found != 1) {
		fprintf(stderr, "discovery: %zu attach points of kind %s on rsv1\n", found,
			rs_attach_kind_name(k));
		return -ENOENT;
	}
	return 0;
}

static uint32_t current_id(const struct rs_attach_point *pt)
{
	uint32_t id = 0;

	if (rs_attach_point_current(pt, &id))
		return 0;
	return id;
}

#endif
