/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * swap_internal.h - what agent/swap.c, agent/journal.c and agent/restore.c share and nobody
 * else needs: the bare compare-and-swap, the journal file primitives (lock, fold, append,
 * compact), pins, and the in-memory table the signal-safe restore works from.
 */
#ifndef RS_AGENT_SWAP_INTERNAL_H
#define RS_AGENT_SWAP_INTERNAL_H

#include "agent/agent.h"

/* ---- swap.c ---- */

/*
 * A path that opens the attach point's network namespace (/run/netns/NAME, /proc/PID/ns/net);
 * *own when it is the caller's (path "" when no namespace is involved: prog array slots).
 */
int swap_netns_path(const struct rs_attach_point *pt, char *path, size_t sz, bool *own);
/* Move into the attach point's network namespace (*saved = -1 when already there). */
int swap_enter_netns(const struct rs_attach_point *pt, int *saved);
void swap_leave_netns(int saved);

/*
 * Look at the attach point (current namespace): 0 when `expected` is there, -EBUSY when
 * another program is (*found = its id, 0 for an empty point), -RS_ERR_NOT_FOUND when the
 * point itself is gone.  For tcx without a link "there" means "in the hook's list".
 */
int swap_check(const struct rs_attach_point *pt, uint32_t expected, uint32_t *found);

/*
 * The bare replace (current namespace), the kernel's compare-and-swap where it has one.
 * Returns 0 or a negative errno; -EBUSY when the expected program was not there.
 */
int swap_cas(const struct rs_attach_point *pt, uint32_t expected, int new_fd,
	     uint64_t *op_ns);

/* "42 (xdp_lb)" or "42 (unloaded)"; "none" for 0. */
const char *swap_prog_desc(uint32_t id, char *buf, size_t sz);
/* Id of the program behind an fd, 0 on error. */
uint32_t swap_fd_prog_id(int fd);

/* ---- journal.c ---- */

struct journal {
	char dir[256];
	char path[300];
	int lock_fd;
	struct rs_journal_entry *v;	/* active entries (folded) */
	size_t cnt;
};

/* Create the directory if needed, take the exclusive lock, read and fold the journal. */
int journal_open(struct journal *j, const char *dir);
/* Release the lock and the entries. */
void journal_close(struct journal *j);
/* The active entry of a point whose original or one of ours is `id` (or, with id 0, any
 * active entry of the point's key). */
struct rs_journal_entry *journal_find(struct journal *j, const char *key, uint32_t id);
/* Append the entry's state as one line (fsync'd); a closed entry leaves the active set and
 * the file is compacted. */
int journal_write(struct journal *j, struct rs_journal_entry *e);
/* The JSON line for an entry (with newline); -ENOSPC when buf is too small. */
int journal_format(const struct rs_journal_entry *e, char *buf, size_t sz);

/* Pin a program under pin_dir (mounting bpffs on /sys/fs/bpf if needed); path out. */
int journal_pin(const char *pin_dir, const struct rs_journal_entry *e, int prog_fd,
		char *path, size_t sz);
void journal_unpin(const struct rs_journal_entry *e);

/* ---- restore.c: the table rs_restore_all_signal_safe() uses ---- */

/* Remember (or update) a point where we put `ours_fd`, with the original's fd; fds are
 * duplicated.  Called from the caller's own namespace (the point's is found by path). */
void sigtab_register(const struct rs_journal_entry *e, const char *journal_path, int orig_fd,
		     int ours_fd);
void sigtab_forget(const char *key, uint32_t orig_id);

/* The restore of one entry with the journal held (used by rs_swap for "swap the original back"
 * and by the rs_restore* entry points). */
int restore_entry(struct journal *j, struct rs_journal_entry *e, struct rs_restore_report *rep);

#endif
