// SPDX-License-Identifier: BSD-2-Clause
/*
 * journal.c - the swap journal and the pins of originals (docs/swap.md).
 *
 * The journal is a JSON-lines file <dir>/journal (default /run/respec/journal: bpffs holds
 * only BPF objects).  Every line is the whole state of one entry after a change: attach point,
 * original program id and its pin path, every program id of ours put there, the current one,
 * and whether the entry is closed.  Reading folds the lines: the last line of an entry (key +
 * original id) wins and closed entries drop out.  Lines are appended with one write() and
 * fsync'd, so a crash leaves at worst a torn last line, which is skipped.  Closing an entry
 * compacts the file (rewrite + rename); with no active entry left the file is removed.
 * Writers serialize on an flock of the directory.
 *
 * Originals are pinned under /sys/fs/bpf/respec/<key>_orig<id> (bpffs mounted on /sys/fs/bpf
 * when it is not), so they stay loaded even when their loader exits after our swap.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <jansson.h>
#include <linux/magic.h>

#include "agent/agent.h"
#include "agent/swap_internal.h"

#define JOURNAL_FILE	"journal"
#define BPFFS_ROOT	"/sys/fs/bpf"

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[256];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) && errno != EEXIST)
		return -errno;
	return 0;
}

/* ---- entry <-> JSON -------------------------------------------------------------------- */

static json_t *entry_json(const struct rs_journal_entry *e)
{
	const struct rs_attach_point *pt = &e->pt;
	json_t *ours, *point;
	uint32_t i;

	ours = json_array();
	for (i = 0; i < e->ours_cnt; i++)
		json_array_append_new(ours, json_integer(e->ours[i]));
	point = json_pack("{s:s, s:s, s:I, s:i, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
			  "kind", rs_attach_kind_name(pt->kind), "netns", pt->netns,
			  "netns_ino", (json_int_t)pt->netns_ino, "ifindex", pt->ifindex,
			  "ifname", pt->ifname, "egress", pt->egress,
			  "xdp_mode", (int)pt->xdp_mode, "link_id", (int)pt->link_id,
			  "tc_handle", (int)pt->tc_handle, "tc_prio", (int)pt->tc_prio,
			  "map_id", (int)pt->map_id, "slot", (int)pt->slot,
			  "owner_prog_id", (int)pt->owner_prog_id);
	return json_pack("{s:s, s:b, s:I, s:o, s:i, s:s, s:i, s:o}",
			 "key", e->key, "closed", e->closed, "time", (json_int_t)e->time,
			 "point", point, "orig_id", (int)e->orig_id, "pin", e->pin,
			 "cur_id", (int)e->cur_id, "ours", ours);
}

static int kind_parse(const char *s, enum rs_attach_kind *kind)
{
	int k;

	for (k = RS_ATTACH_XDP_LINK; k <= RS_ATTACH_PROG_ARRAY; k++)
		if (!strcmp(s, rs_attach_kind_name(k))) {
			*kind = k;
			return 0;
		}
	return -RS_ERR_FORMAT;
}

static int entry_parse(json_t *o, struct rs_journal_entry *e)
{
	const char *key = NULL, *pin = NULL, *kind = NULL, *netns = NULL, *ifname = NULL;
	int orig = 0, cur = 0, ifindex = 0, egress = 0, closed = 0;
	int mode = 0, link = 0, handle = 0, prio = 0, map = 0, slot = 0, owner = 0;
	json_int_t t = 0, ino = 0;
	json_t *ours = NULL, *v;
	json_error_t jerr;
	size_t i;

	memset(e, 0, sizeof(*e));
	if (json_unpack_ex(o, &jerr, 0,
			   "{s:s, s:b, s?I, s:{s:s, s?s, s?I, s?i, s?s, s?b, s?i, s?i, s?i, s?i,"
			   " s?i, s?i, s?i}, s:i, s:s, s:i, s:o}",
			   "key", &key, "closed", &closed, "time", &t,
			   "point", "kind", &kind, "netns", &netns, "netns_ino", &ino,
			   "ifindex", &ifindex, "ifname", &ifname, "egress", &egress,
			   "xdp_mode", &mode, "link_id", &link, "tc_handle", &handle,
			   "tc_prio", &prio, "map_id", &map, "slot", &slot,
			   "owner_prog_id", &owner,
			   "orig_id", &orig, "pin", &pin, "cur_id", &cur, "ours", &ours) ||
	    !json_is_array(ours))
		return -RS_ERR_FORMAT;
	if (kind_parse(kind, &e->pt.kind))
		return -RS_ERR_FORMAT;
	snprintf(e->key, sizeof(e->key), "%s", key);
	snprintf(e->pin, sizeof(e->pin), "%s", pin);
	snprintf(e->pt.netns, sizeof(e->pt.netns), "%s", netns ? netns : "");
	snprintf(e->pt.ifname, sizeof(e->pt.ifname), "%s", ifname ? ifname : "");
	e->pt.netns_ino = ino;
	e->pt.ifindex = ifindex;
	e->pt.egress = egress;
	e->pt.xdp_mode = mode;
	e->pt.link_id = link;
	e->pt.tc_handle = handle;
	e->pt.tc_prio = prio;
	e->pt.map_id = map;
	e->pt.slot = slot;
	e->pt.owner_prog_id = owner;
	e->pt.prog_id = orig;
	e->orig_id = orig;
	e->cur_id = cur;
	e->time = t;
	e->closed = closed;
	json_array_foreach(ours, i, v) {
		if (e->ours_cnt == RS_SWAP_MAX_OURS)
			break;
		e->ours[e->ours_cnt++] = json_integer_value(v);
	}
	return 0;
}

int journal_format(const struct rs_journal_entry *e, char *buf, size_t sz)
{
	json_t *o = entry_json(e);
	size_t n;

	if (!o)
		return -ENOMEM;
	n = json_dumpb(o, buf, sz, JSON_COMPACT);
	json_decref(o);
	if (!n || n + 2 > sz)
		return -ENOSPC;
	buf[n++] = '\n';
	buf[n] = 0;
	return (int)n;
}

/* ---- the file ------------------------------------------------------------------------- */

static bool same_entry(const struct rs_journal_entry *a, const struct rs_journal_entry *b)
{
	return a->orig_id == b->orig_id && !strcmp(a->key, b->key);
}

static int fold(struct journal *j, const struct rs_journal_entry *e)
{
	struct rs_journal_entry *nv;
	size_t i;

	for (i = 0; i < j->cnt; i++) {
		if (!same_entry(&j->v[i], e))
			continue;
		if (e->closed) {
			memmove(&j->v[i], &j->v[i + 1], (j->cnt - i - 1) * sizeof(*e));
			j->cnt--;
		} else {
			j->v[i] = *e;
		}
		return 0;
	}
	if (e->closed)
		return 0;
	nv = realloc(j->v, (j->cnt + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	j->v = nv;
	j->v[j->cnt++] = *e;
	return 0;
}

static int journal_read(struct journal *j)
{
	struct rs_journal_entry e;
	size_t cap = 0, lineno = 0;
	char *line = NULL;
	int err = 0;
	FILE *f;

	f = fopen(j->path, "re");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (getline(&line, &cap, f) > 0) {
		json_error_t jerr;
		json_t *o;

		lineno++;
		o = json_loads(line, 0, &jerr);
		if (!o || entry_parse(o, &e)) {
			/* a torn last line after a crash */
			rs_warn("journal %s: line %zu unreadable: skipped", j->path, lineno);
			json_decref(o);
			continue;
		}
		json_decref(o);
		err = fold(j, &e);
		if (err)
			break;
	}
	free(line);
	fclose(f);
	return err;
}

int journal_open(struct journal *j, const char *dir)
{
	int err;

	memset(j, 0, sizeof(*j));
	j->lock_fd = -1;
	if (!dir)
		dir = RS_JOURNAL_DIR;
	snprintf(j->dir, sizeof(j->dir), "%s", dir);
	snprintf(j->path, sizeof(j->path), "%s/" JOURNAL_FILE, dir);
	err = mkdir_p(dir, 0700);
	if (err) {
		rs_warn("journal %s: cannot create the directory: %s", dir, rs_strerror(err));
		return err;
	}
	j->lock_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->lock_fd < 0 || flock(j->lock_fd, LOCK_EX)) {
		err = -errno;
		rs_warn("journal %s: cannot lock: %s", dir, rs_strerror(err));
		goto fail;
	}
	err = journal_read(j);
	if (err) {
		rs_warn("journal %s: %s", j->path, rs_strerror(err));
		goto fail;
	}
	return 0;
fail:
	journal_close(j);
	return err;
}

void journal_close(struct journal *j)
{
	if (j->lock_fd >= 0)
		close(j->lock_fd);	/* drops the flock */
	j->lock_fd = -1;
	free(j->v);
	j->v = NULL;
	j->cnt = 0;
}

struct rs_journal_entry *journal_find(struct journal *j, const char *key, uint32_t id)
{
	size_t i;
	uint32_t k;

	for (i = 0; i < j->cnt; i++) {
		struct rs_journal_entry *e = &j->v[i];

		if (strcmp(e->key, key))
			continue;
		if (!id || e->orig_id == id)
			return e;
		for (k = 0; k < e->ours_cnt; k++)
			if (e->ours[k] == id)
				return e;
	}
	return NULL;
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Rewrite the file with the active entries only; remove it when there are none. */
static int compact(struct journal *j)
{
	char tmp[320], line[2048];
	int fd, err = 0, n;
	size_t i;

	if (!j->cnt) {
		if (unlink(j->path) && errno != ENOENT)
			return -errno;
		return 0;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	for (i = 0; i < j->cnt && !err; i++) {
		n = journal_format(&j->v[i], line, sizeof(line));
		err = n < 0 ? n : write_all(fd, line, n);
	}
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, j->path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int journal_write(struct journal *j, struct rs_journal_entry *e)
{
	struct rs_journal_entry copy = *e;	/* e may point into j->v */
	char line[2048];
	int fd, n, err;

	n = journal_format(&copy, line, sizeof(line));
	if (n < 0)
		return n;
	fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = -errno;
		goto fail;
	}
	err = write_all(fd, line, n);
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (err)
		goto fail;
	err = fold(j, &copy);
	if (!err && copy.closed)
		err = compact(j);
	if (err)
		goto fail;
	return 0;
fail:
	rs_warn("journal %s: entry %s: %s", j->path, copy.key, rs_strerror(err));
	return err;
}

int rs_journal_list(const char *dir, struct rs_journal_entry **out, size_t *cnt)
{
	struct journal j;
	int err;

	*out = NULL;
	*cnt = 0;
	err = journal_open(&j, dir);
	if (err)
		return err;
	*out = j.v;
	*cnt = j.cnt;
	j.v = NULL;
	journal_close(&j);
	return 0;
}

/* ---- pins ------------------------------------------------------------------------------ */

static int ensure_bpffs(const char *pin_dir)
{
	struct statfs st;
	int err;

	if (!strncmp(pin_dir, BPFFS_ROOT "/", strlen(BPFFS_ROOT) + 1) &&
	    (statfs(BPFFS_ROOT, &st) || st.f_type != BPF_FS_MAGIC)) {
		if (mount("bpf", BPFFS_ROOT, "bpf", 0, NULL)) {
			err = -errno;
			rs_warn("pins: cannot mount bpffs on " BPFFS_ROOT ": %s", rs_strerror(err));
			return err;
		}
		rs_info("pins: mounted bpffs on " BPFFS_ROOT);
	}
	err = mkdir_p(pin_dir, 0700);
	if (err) {
		rs_warn("pins: cannot create %s: %s", pin_dir, rs_strerror(err));
		return err;
	}
	if (statfs(pin_dir, &st) || st.f_type != BPF_FS_MAGIC) {
		rs_warn("pins: %s is not on a bpf filesystem", pin_dir);
		return -EINVAL;
	}
	return 0;
}

int journal_pin(const char *pin_dir, const struct rs_journal_entry *e, int prog_fd,
		char *path, size_t sz)
{
	int err, fd;

	if (!pin_dir)
		pin_dir = RS_PIN_DIR;
	err = ensure_bpffs(pin_dir);
	if (err)
		return err;
	if (snprintf(path, sz, "%s/%s_orig%u", pin_dir, e->key, e->orig_id) >= (int)sz)
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* left over by a crashed run: keep it when it is the same program */
		uint32_t id = swap_fd_prog_id(fd);

		close(fd);
		if (id == e->orig_id)
			return 0;
		unlink(path);
	}
	if (bpf_obj_pin(prog_fd, path)) {
		err = -errno;
		rs_warn("pins: prog %u: pinning at %s: %s", e->orig_id, path, rs_strerror(err));
		return err;
	}
	return 0;
}

void journal_unpin(const struct rs_journal_entry *e)
{
	if (e->pin[0] && unlink(e->pin) && errno != ENOENT)
		rs_warn("pins: cannot remove %s: %s", e->pin, strerror(errno));
}
