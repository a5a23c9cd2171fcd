// SPDX-License-Identifier: BSD-2-Clause
/*
 * netns.c - finding every network namespace on the host and stepping into them.
 *
 * Namespaces come from the names under /run/netns (ip netns) and from every process's
 * /proc/PID/ns/net, deduplicated by inode; our own namespace is listed first with the name "".
 * Entering uses setns(2) on the calling thread only, so the caller must restore the saved
 * namespace (rs_netns_restore) before doing anything else that depends on it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"

#define RUN_NETNS "/run/netns"

/* Inode of a namespace file; with nsfs_dev set, also require that it lives on nsfs. */
static int ino_of(const char *path, uint64_t *ino, dev_t *dev)
{
	struct stat st;

	if (stat(path, &st))
		return -errno;
	*ino = st.st_ino;
	if (dev)
		*dev = st.st_dev;
	return 0;
}

int rs_netns_self_ino(uint64_t *ino)
{
	return ino_of("/proc/thread-self/ns/net", ino, NULL);
}

static int add_ns(struct rs_netns **list, size_t *cnt, size_t *cap, uint64_t ino,
		  const char *name, const char *path)
{
	struct rs_netns *n;
	size_t i;

	for (i = 0; i < *cnt; i++) {
		if ((*list)[i].ino != ino)
			continue;
		/* prefer an ip-netns name over "pid N" */
		if (!strncmp((*list)[i].name, "pid ", 4) && strncmp(name, "pid ", 4)) {
			snprintf((*list)[i].name, sizeof((*list)[i].name), "%s", name);
			snprintf((*list)[i].path, sizeof((*list)[i].path), "%s", path);
		}
		return 0;
	}
	if (*cnt == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;

		n = realloc(*list, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		*list = n;
		*cap = ncap;
	}
	n = &(*list)[(*cnt)++];
	memset(n, 0, sizeof(*n));
	n->ino = ino;
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->path, sizeof(n->path), "%s", path);
	return 0;
}

int rs_netns_list(struct rs_netns **out, size_t *out_cnt)
{
	struct rs_netns *list = NULL;
	size_t cnt = 0, cap = 0;
	char path[300], name[64];
	struct dirent *de;
	dev_t nsfs = 0, dev = 0;
	uint64_t ino = 0;
	DIR *d;
	int err;

	err = ino_of("/proc/thread-self/ns/net", &ino, &nsfs);
	if (err) {
		rs_warn("netns: cannot read our own network namespace: %s", rs_strerror(err));
		return err;
	}
	err = add_ns(&list, &cnt, &cap, ino, "", "/proc/thread-self/ns/net");
	if (err)
		goto fail;

	d = opendir(RUN_NETNS);
	if (d) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), RUN_NETNS "/%s", de->d_name);
			/* an unmounted name is a plain file on tmpfs: not a namespace */
			if (ino_of(path, &ino, &dev) || dev != nsfs)
				continue;
			if (strlen(path) >= sizeof(list->path))
				continue;
			err = add_ns(&list, &cnt, &cap, ino, de->d_name, path);
			if (err) {
				closedir(d);
				goto fail;
			}
		}
		closedir(d);
	}

	d = opendir("/proc");
	if (!d) {
		err = -errno;
		rs_warn("netns: cannot list /proc: %s", rs_strerror(err));
		goto fail;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/ns/net", de->d_name);
		if (ino_of(path, &ino, NULL))
			continue;	/* exited meanwhile */
		snprintf(name, sizeof(name), "pid %.32s", de->d_name);
		err = add_ns(&list, &cnt, &cap, ino, name, path);
		if (err) {
			closedir(d);
			goto fail;
		}
	}
	closedir(d);
	*out = list;
	*out_cnt = cnt;
	return 0;
fail:
	free(list);
	return err;
}

int rs_netns_enter(const char *path, int *saved_fd)
{
	int self, fd, err;

	self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (self < 0) {
		err = -errno;
		rs_warn("netns: cannot open our own namespace: %s", rs_strerror(err));
		return err;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		rs_debug("netns %s: %s", path, rs_strerror(err));
		goto err_self;
	}
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		rs_warn("netns %s: setns: %s", path, rs_strerror(err));
		goto err_fd;
	}
	close(fd);
	*saved_fd = self;
	return 0;
err_fd:
	close(fd);
err_self:
	close(self);
	return err;
}

int rs_netns_restore(int saved_fd)
{
	int err = 0;

	if (setns(saved_fd, CLONE_NEWNET)) {
		err = -errno;
		rs_warn("netns: cannot return to the original namespace: %s", rs_strerror(err));
	}
	close(saved_fd);
	return err;
}
