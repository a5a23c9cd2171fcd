// SPDX-License-Identifier: BSD-2-Clause
/*
 * spec.c - naming programs on the command line the way bpftool does:
 *
 *   PROG := { id ID | pinned PATH | tag TAG | name NAME |
 *             dev IFNAME xdp | dev IFNAME tc { ingress | egress } }
 *
 * Parsing is pure; resolution walks the kernel's program ids (name, tag), opens pins, or asks
 * discovery (dev specs are looked up in every network namespace).  A name or tag that matches
 * several programs is -RS_ERR_AMBIGUOUS with the candidate ids in the message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <bpf/bpf.h>

#include "agent/agent.h"

static int parse_u32(const char *s, uint32_t *out)
{
	unsigned long v;
	char *end;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = v;
	return 0;
}

/* 16 hex digits, optionally written as bpftool prints them ("aa:bb:..."). */
static int parse_tag(const char *s, uint8_t tag[BPF_TAG_SIZE])
{
	return rs_hex_decode(s, tag, BPF_TAG_SIZE, ':') == BPF_TAG_SIZE ? 0 : -EINVAL;
}

int rs_prog_spec_parse(int argc, char **argv, struct rs_prog_spec *spec, int *consumed)
{
	const char *kw, *arg;

	memset(spec, 0, sizeof(*spec));
	*consumed = 0;
	if (argc < 1 || !argv[0]) {
		rs_warn("expected PROG (id ID | pinned PATH | tag TAG | name NAME | dev IFNAME ...)");
		return -EINVAL;
	}
	kw = argv[0];
	if (strcmp(kw, "id") && strcmp(kw, "pinned") && strcmp(kw, "tag") &&
	    strcmp(kw, "name") && strcmp(kw, "dev")) {
		rs_warn("'%s': expected id, pinned, tag, name or dev", kw);
		return -EINVAL;
	}
	if (argc < 2 || !argv[1] || !*argv[1]) {
		rs_warn("'%s': missing argument", kw);
		return -EINVAL;
	}
	arg = argv[1];

	if (!strcmp(kw, "id")) {
		if (parse_u32(arg, &spec->id) || !spec->id) {
			rs_warn("id '%s': not a program id", arg);
			return -EINVAL;
		}
		spec->kind = RS_SPEC_ID;
		*consumed = 2;
		return 0;
	}
	if (!strcmp(kw, "tag")) {
		if (parse_tag(arg, spec->tag)) {
			rs_warn("tag '%s': expected 16 hex digits", arg);
			return -EINVAL;
		}
		spec->kind = RS_SPEC_TAG;
		*consumed = 2;
		return 0;
	}
	if (!strcmp(kw, "pinned") || !strcmp(kw, "name")) {
		if (strlen(arg) >= sizeof(spec->str)) {
			rs_warn("%s: argument too long", kw);
			return -EINVAL;
		}
		strcpy(spec->str, arg);
		spec->kind = kw[0] == 'p' ? RS_SPEC_PINNED : RS_SPEC_NAME;
		*consumed = 2;
		return 0;
	}

	/* dev IFNAME xdp | dev IFNAME tc ingress|egress */
	if (strlen(arg) >= IF_NAMESIZE) {
		rs_warn("dev '%s': interface name too long (max %d)", arg, IF_NAMESIZE - 1);
		return -EINVAL;
	}
	strcpy(spec->str, arg);
	if (argc < 3 || !argv[2]) {
		rs_warn("dev %s: expected 'xdp' or 'tc ingress|egress'", arg);
		return -EINVAL;
	}
	if (!strcmp(argv[2], "xdp")) {
		spec->kind = RS_SPEC_DEV_XDP;
		*consumed = 3;
		return 0;
	}
	if (strcmp(argv[2], "tc")) {
		rs_warn("dev %s: '%s': expected 'xdp' or 'tc'", arg, argv[2]);
		return -EINVAL;
	}
	if (argc < 4 || !argv[3] ||
	    (strcmp(argv[3], "ingress") && strcmp(argv[3], "egress"))) {
		rs_warn("dev %s tc: expected 'ingress' or 'egress'%s%s", arg,
			argc >= 4 && argv[3] ? ", got " : "", argc >= 4 && argv[3] ? argv[3] : "");
		return -EINVAL;
	}
	spec->kind = argv[3][0] == 'i' ? RS_SPEC_DEV_TC_INGRESS : RS_SPEC_DEV_TC_EGRESS;
	*consumed = 4;
	return 0;
}

const char *rs_prog_spec_str(const struct rs_prog_spec *spec, char *buf, size_t sz)
{
	const uint8_t *t = spec->tag;

	switch (spec->kind) {
	case RS_SPEC_ID:
		snprintf(buf, sz, "id %u", spec->id);
		break;
	case RS_SPEC_PINNED:
		snprintf(buf, sz, "pinned %s", spec->str);
		break;
	case RS_SPEC_TAG:
		snprintf(buf, sz, "tag %02x%02x%02x%02x%02x%02x%02x%02x",
			 t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
		break;
	case RS_SPEC_NAME:
		snprintf(buf, sz, "name %s", spec->str);
		break;
	case RS_SPEC_DEV_XDP:
		snprintf(buf, sz, "dev %s xdp", spec->str);
		break;
	case RS_SPEC_DEV_TC_INGRESS:
		snprintf(buf, sz, "dev %s tc ingress", spec->str);
		break;
	case RS_SPEC_DEV_TC_EGRESS:
		snprintf(buf, sz, "dev %s tc egress", spec->str);
		break;
	default:
		snprintf(buf, sz, "(bad spec)");
	}
	return buf;
}

static int resolve_id(const struct rs_prog_spec *spec, uint32_t *prog_id)
{
	int fd = bpf_prog_get_fd_by_id(spec->id);

	if (fd < 0) {
		if (errno == ENOENT) {
			rs_warn("prog id %u: no such program", spec->id);
			return -RS_ERR_NOT_FOUND;
		}
		fd = -errno;
		rs_warn("prog id %u: %s%s", spec->id, rs_strerror(fd),
			fd == -EPERM ? " (needs root: CAP_SYS_ADMIN)" : "");
		return fd;
	}
	close(fd);
	*prog_id = spec->id;
	return 0;
}

/* Is fd a BPF program (and not a map, link or something else)? */
static bool fd_is_prog(int fd)
{
	char path[64], target[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0)
		return false;
	target[n] = 0;
	return !strcmp(target, "anon_inode:bpf-prog");
}

static bool on_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

static int resolve_pinned(const struct rs_prog_spec *spec, uint32_t *prog_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd, err;

	fd = bpf_obj_get(spec->str);
	if (fd < 0) {
		err = -errno;
		if (err != -ENOENT && !on_bpffs(spec->str))
			rs_warn("pinned %s: not on a bpffs mount, not a pinned BPF object",
				spec->str);
		else
			rs_warn("pinned %s: %s", spec->str, rs_strerror(err));
		return err == -ENOENT ? -RS_ERR_NOT_FOUND : err;
	}
	if (!fd_is_prog(fd)) {
		rs_warn("pinned %s: not a program", spec->str);
		err = -RS_ERR_NOT_FOUND;
		goto out;
	}
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err) {
		err = -errno;
		rs_warn("pinned %s: %s", spec->str, rs_strerror(err));
		goto out;
	}
	*prog_id = info.id;
out:
	close(fd);
	return err;
}

static void list_ids(char *buf, size_t sz, const uint32_t *ids, size_t n)
{
	size_t off = 0, i;

	buf[0] = 0;
	for (i = 0; i < n && off + 12 < sz; i++)
		off += snprintf(buf + off, sz - off, "%s%u", i ? ", " : "", ids[i]);
}

/* Walk every loaded program, matching name or tag. */
static int resolve_by_info(const struct rs_prog_spec *spec, uint32_t *prog_id)
{
	uint32_t id = 0, matches[16];
	size_t n = 0;
	char what[64], ids[256];
	int fd, err;

	while (!(err = bpf_prog_get_next_id(id, &id))) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		bool hit;

		fd = bpf_prog_get_fd_by_id(id);
		if (fd < 0)
			continue;	/* gone meanwhile */
		err = bpf_obj_get_info_by_fd(fd, &info, &len);
		close(fd);
		if (err)
			continue;
		if (spec->kind == RS_SPEC_TAG)
			hit = !memcmp(info.tag, spec->tag, BPF_TAG_SIZE);
		else
			hit = !strncmp(info.name, spec->str, BPF_OBJ_NAME_LEN - 1);
		if (!hit)
			continue;
		if (n < RS_ARRAY_SIZE(matches))
			matches[n] = id;
		n++;
	}
	if (err != -ENOENT && n == 0) {
		rs_warn("prog %s: listing programs: %s", rs_prog_spec_str(spec, what, sizeof(what)),
			rs_strerror(err));
		return err;
	}
	rs_prog_spec_str(spec, what, sizeof(what));
	if (n == 0) {
		rs_warn("prog %s: no such program", what);
		return -RS_ERR_NOT_FOUND;
	}
	if (n > 1) {
		list_ids(ids, sizeof(ids), matches, n < RS_ARRAY_SIZE(matches) ?
			 n : RS_ARRAY_SIZE(matches));
		rs_warn("prog %s: ambiguous, matches %zu programs: ids %s%s", what, n, ids,
			n > RS_ARRAY_SIZE(matches) ? ", ..." : "");
		return -RS_ERR_AMBIGUOUS;
	}
	*prog_id = matches[0];
	return 0;
}

static bool dev_kind_matches(enum rs_spec_kind sk, const struct rs_attach_point *ap)
{
	switch (ap->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_XDP_NETLINK:
		return sk == RS_SPEC_DEV_XDP;
	case RS_ATTACH_TCX_LINK:
	case RS_ATTACH_TCX:
	case RS_ATTACH_TC_CLS:
		return ap->egress ? sk == RS_SPEC_DEV_TC_EGRESS : sk == RS_SPEC_DEV_TC_INGRESS;
	default:
		return false;
	}
}

static int resolve_dev(const struct rs_prog_spec *spec, uint32_t *prog_id)
{
	struct rs_attach_point *pts = NULL;
	uint32_t matches[16];
	size_t cnt = 0, n = 0, i, j;
	char what[64], ids[256];
	int err;

	rs_prog_spec_str(spec, what, sizeof(what));
	err = rs_discover(&pts, &cnt);
	if (err) {
		rs_warn("prog %s: discovery failed: %s", what, rs_strerror(err));
		return err;
	}
	for (i = 0; i < cnt; i++) {
		if (strcmp(pts[i].ifname, spec->str) || !dev_kind_matches(spec->kind, &pts[i]))
			continue;
		for (j = 0; j < n && matches[j] != pts[i].prog_id; j++)
			;
		if (j < n || n == RS_ARRAY_SIZE(matches))
			continue;	/* same program seen in another place */
		matches[n++] = pts[i].prog_id;
	}
	free(pts);
	if (n == 0) {
		rs_warn("prog %s: no program attached there (in any network namespace)", what);
		return -RS_ERR_NOT_FOUND;
	}
	if (n > 1) {
		list_ids(ids, sizeof(ids), matches, n);
		rs_warn("prog %s: ambiguous, %zu programs attached: ids %s", what, n, ids);
		return -RS_ERR_AMBIGUOUS;
	}
	*prog_id = matches[0];
	return 0;
}

int rs_prog_spec_resolve(const struct rs_prog_spec *spec, uint32_t *prog_id)
{
	switch (spec->kind) {
	case RS_SPEC_ID:
		return resolve_id(spec, prog_id);
	case RS_SPEC_PINNED:
		return resolve_pinned(spec, prog_id);
	case RS_SPEC_TAG:
	case RS_SPEC_NAME:
		return resolve_by_info(spec, prog_id);
	case RS_SPEC_DEV_XDP:
	case RS_SPEC_DEV_TC_INGRESS:
	case RS_SPEC_DEV_TC_EGRESS:
		return resolve_dev(spec, prog_id);
	}
	return -EINVAL;
}
