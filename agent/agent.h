/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * agent.h - the part of respec that touches the live system: naming and finding programs,
 * discovering attach points in every network namespace, fetching translated programs, lifting
 * them back to loadable original form (with proof), capturing originals at load time, reading
 * load attributes, computing tags, loading programs.
 *
 * Every function returns 0 (or a non-negative count/fd) or a negative errno / -RS_ERR_*.
 * Messages go through rs_log() and name the entity ("prog 42 (xdp_lb): insn 17: ...").
 */
#ifndef RS_AGENT_H
#define RS_AGENT_H

#include <net/if.h>
#include <stdio.h>

#include "optimizer/ir.h"

/* uapi values newer than Debian 12's 6.1 headers (checked against the running kernel). */
#define RS_BPF_TCX_INGRESS	46	/* enum bpf_attach_type BPF_TCX_INGRESS */
#define RS_BPF_TCX_EGRESS	47	/* enum bpf_attach_type BPF_TCX_EGRESS */
#define RS_BPF_LINK_TYPE_TCX	11	/* enum bpf_link_type BPF_LINK_TYPE_TCX */

/* Route libbpf's print callback through rs_log, one level down (warn->info, info->debug). */
void rs_route_libbpf_log(void);

/* ==== naming programs: PROG := { id ID | pinned PATH | tag TAG | name NAME |
 *                                 dev IFNAME xdp | dev IFNAME tc ingress|egress } ====== */

enum rs_spec_kind {
	RS_SPEC_ID,
	RS_SPEC_PINNED,
	RS_SPEC_TAG,
	RS_SPEC_NAME,
	RS_SPEC_DEV_XDP,
	RS_SPEC_DEV_TC_INGRESS,
	RS_SPEC_DEV_TC_EGRESS,
};

struct rs_prog_spec {
	enum rs_spec_kind kind;
	uint32_t id;
	uint8_t tag[BPF_TAG_SIZE];
	char str[4096];			/* path, name or interface name */
};

/*
 * Parse a PROG from argv; on success *consumed is the number of words used.  Errors are
 * -EINVAL with a message through rs_warn naming the bad word.
 */
int rs_prog_spec_parse(int argc, char **argv, struct rs_prog_spec *spec, int *consumed);
/* Resolve to one program id (looks in every network namespace for dev specs). */
int rs_prog_spec_resolve(const struct rs_prog_spec *spec, uint32_t *prog_id);
/* Human text of a spec ("id 42", "dev veth0 xdp"). */
const char *rs_prog_spec_str(const struct rs_prog_spec *spec, char *buf, size_t sz);

/* ==== discovery of attach points ===================================================== */

enum rs_attach_kind {
	RS_ATTACH_XDP_LINK,		/* XDP through a bpf_link */
	RS_ATTACH_XDP_NETLINK,		/* XDP attached through netlink (mode in xdp_mode) */
	RS_ATTACH_TCX_LINK,		/* tcx through a bpf_link */
	RS_ATTACH_TCX,			/* tcx without a link */
	RS_ATTACH_TC_CLS,		/* tc cls_bpf filter */
	RS_ATTACH_PROG_ARRAY,		/* a slot of a PROG_ARRAY (tail-call target) */
};

struct rs_attach_point {
	enum rs_attach_kind kind;
	uint32_t prog_id;
	uint64_t netns_ino;		/* inode of the network namespace */
	char netns[64];			/* name under /run/netns, or "" / "pid N" */
	int ifindex;
	char ifname[IF_NAMESIZE];
	bool egress;			/* tc / tcx direction */
	uint32_t xdp_mode;		/* XDP_ATTACHED_DRV / SKB / HW for netlink XDP */
	uint32_t link_id;		/* bpf_link id, 0 when not a link */
	uint32_t tc_handle, tc_prio;	/* tc cls_bpf filter */
	uint32_t map_id, slot;		/* prog array slot */
	uint32_t owner_prog_id;		/* program that owns the prog array */
};

const char *rs_attach_kind_name(enum rs_attach_kind kind);
/* Every XDP / TC attach point in every network namespace (and prog array slots reachable from
 * them).  *pts is allocated; free with free(). */
int rs_discover(struct rs_attach_point **pts, size_t *cnt);

/* Text of one attach point ("xdp drv dev veth0 netns blue", "tc ingress dev eth0 handle 1 prio 1"). */
const char *rs_attach_point_str(const struct rs_attach_point *ap, char *buf, size_t sz);

/* ---- network namespaces (agent/netns.c) ---- */
struct rs_netns {
	uint64_t ino;			/* inode of the namespace */
	char name[64];			/* name under /run/netns, "" for our own, else "pid N" */
	char path[128];			/* path that opens it (/run/netns/X, /proc/N/ns/net) */
};

/* Every network namespace on the host, unique by inode, our own first.  Caller frees. */
int rs_netns_list(struct rs_netns **list, size_t *cnt);
/* Inode of the calling thread's network namespace. */
int rs_netns_self_ino(uint64_t *ino);
/* Move the calling thread into the namespace at `path`; *saved_fd keeps the old one. */
int rs_netns_enter(const char *path, int *saved_fd);
/* Return to the namespace saved by rs_netns_enter() and close saved_fd. */
int rs_netns_restore(int saved_fd);

/* ---- tc cls_bpf filters through rtnetlink (agent/netlink.c), current netns ---- */
struct rs_tc_filter {
	uint32_t prog_id;
	uint32_t handle;
	uint32_t prio;
	bool egress;
	bool direct_action;
};

/* Every cls_bpf filter on the clsact ingress/egress hooks of `ifindex`.  Caller frees. */
int rs_tc_bpf_filters(int ifindex, struct rs_tc_filter **out, size_t *cnt);

/* ==== fetching ======================================================================= */

/*
 * The translated ("xlated") program of a loaded program with its metadata: name, tag, type,
 * maps (map refs turned into the IDX form of ir.h), BTF func_info/line_info.  Instructions are
 * exactly what the kernel reports (helper calls as kernel address offsets, pseudo calls as the
 * kernel dumps them, ...).  Rejects non-XDP/TC programs with -RS_ERR_PROG_TYPE.
 */
int rs_fetch_translated(uint32_t prog_id, struct rs_prog *out);
/* JIT image and per-instruction offsets (jited_line_info not needed).  Caller frees. */
int rs_fetch_jited(uint32_t prog_id, uint8_t **image, size_t *len,
		   uint64_t **ksyms, size_t *ksym_cnt);
/* JIT image of a loaded program by fd: the image, the start address of each function
 * (ksyms) and the JIT address of each BTF line_info record.  -ENODATA: no JIT image. */
struct rs_jit_image {
	uint8_t *image;
	size_t len;
	uint64_t *ksyms;
	size_t ksym_cnt;
	uint64_t *line_addrs;
	size_t line_cnt;
};
int rs_fetch_jited_fd(int fd, struct rs_jit_image *out);
void rs_jit_image_free(struct rs_jit_image *img);

/* Load attributes the program info does not report: expected attach type and flags. Uses an
 * iter/bpf_prog program. */
int rs_prog_load_attrs(uint32_t prog_id, uint32_t *expected_attach_type, uint32_t *prog_flags);

/* Tag of a program as the running kernel computes it (algorithm detected: SHA-256 or SHA-1). */
enum rs_tag_algo { RS_TAG_UNKNOWN, RS_TAG_SHA1, RS_TAG_SHA256 };
int rs_tag_detect(enum rs_tag_algo *algo);
int rs_tag_compute(const struct rs_prog *p, enum rs_tag_algo algo, uint8_t tag[BPF_TAG_SIZE]);

struct rs_load_opts {
	size_t sz;
	char *log_buf;			/* verifier log (may be NULL) */
	size_t log_size;
	uint32_t log_level;
	uint32_t prog_ifindex;
};
/* Load an rs_prog into the kernel (maps by id through fd_array).  Returns an fd. */
int rs_prog_load(const struct rs_prog *p, const struct rs_load_opts *opts);

/* ==== lifting ======================================================================== */

struct rs_lift_report {
	size_t patterns_learned;	/* probe-derived patterns available */
	size_t sites_lifted;		/* rewritten sites turned back */
	bool proven;			/* reload translated identically */
	long fail_insn;			/* xlated insn that could not be lifted / first mismatch, -1 */
	char fail_pattern[64];		/* pattern name at fault */
	char msg[256];			/* human explanation of a failure */
};

/*
 * Lift a loaded program back to loadable original form and prove it: the lifted program is
 * reloaded and its translated form must equal the running one.  On failure: -RS_ERR_UNLIFTABLE
 * or -RS_ERR_PROOF with the report naming the instruction and pattern.
 */
int rs_lift(uint32_t prog_id, struct rs_prog *out, struct rs_lift_report *rep);

/* The original bytecode: a capture stored while the agent ran, else the lift. */
int rs_fetch_original(uint32_t prog_id, struct rs_prog *out, struct rs_lift_report *rep);

/* ==== capture at load ================================================================= */

#define RS_CAPTURE_DIR "/run/respec/capture"

struct rs_capture;

struct rs_capture_opts {
	size_t sz;
	const char *store_dir;		/* where captures are written; default RS_CAPTURE_DIR */
	bool force_raw_tp;		/* use raw_tp/sys_enter even when tracefs works */
};

/* Start capturing every BPF_PROG_LOAD on the host. */
int rs_capture_start(const struct rs_capture_opts *opts, struct rs_capture **cap);
/* Process pending events (timeout in ms, 0 = do not wait); returns events handled. */
int rs_capture_poll(struct rs_capture *cap, int timeout_ms);
/* "tracepoint" or "raw_tp": which hook is in use. */
const char *rs_capture_hook(const struct rs_capture *cap);
/* The captured original of a program loaded while capturing (also read from store_dir). */
int rs_capture_get(struct rs_capture *cap, uint32_t prog_id, struct rs_prog *out);
void rs_capture_stop(struct rs_capture *cap);
/* Read a stored capture without a running capture (dir NULL = RS_CAPTURE_DIR). */
int rs_capture_load_stored(const char *dir, uint32_t prog_id, struct rs_prog *out);

/* ---- capture area additions: tags and load attributes -------------------------------- */

/*
 * Tag of raw loader instructions exactly as given (fd form: the kernel zeroes the imm of
 * BPF_PSEUDO_MAP_FD / _VALUE ld_imm64; fd_array indexes stay in the hash).  algo
 * RS_TAG_UNKNOWN means "detect".  rs_tag_compute() turns the IDX form of an rs_prog back into
 * the fd form first (the form libbpf and most loaders use).
 */
int rs_tag_compute_insns(const struct bpf_insn *insns, size_t cnt, enum rs_tag_algo algo,
			 uint8_t tag[BPF_TAG_SIZE]);
const char *rs_tag_algo_name(enum rs_tag_algo algo);	/* "sha1", "sha256", "unknown" */

/* Unload the iter/bpf_prog program rs_prog_load_attrs() keeps loaded for the process. */
void rs_prog_load_attrs_cleanup(void);

/*
 * Capture store (docs/capture.md): one JSON file "<id>-<tag>.json" per captured program in
 * `dir` (NULL = RS_CAPTURE_DIR; created if missing).  `hook` is recorded ("tracepoint",
 * "raw_tp").  rs_capture_read_file() parses one file; `out` is treated as uninitialized.
 */
int rs_capture_store(const char *dir, const struct rs_prog *p, const char *hook);
int rs_capture_read_file(const char *path, struct rs_prog *out);
/* Loads seen but not captured (incomplete, unresolvable maps, tag mismatch). */
size_t rs_capture_dropped(const struct rs_capture *cap);

/* ==== swap: compare-and-swap at attach points, pins, journal, restore ================
 * (agent/swap.c, agent/journal.c, agent/restore.c; docs/swap.md)
 *
 * rs_swap() replaces the program at an attach point only if the program there is the one the
 * caller expects, by the kernel's own compare-and-swap where one exists (XDP link / netlink,
 * tcx link / prog attach) and by check-then-replace for tc cls_bpf and PROG_ARRAY slots.
 * Anything else found there is left alone: -EBUSY, with a message naming who is there now.
 * Before the first swap at a point the original is pinned under pin_dir and a journal entry
 * (JSON lines, <journal_dir>/journal) is written ahead of the swap, so `respec restore` can put
 * the original back after a crash.  Attach points in other network namespaces are entered with
 * setns on the calling thread and left again before returning.
 */
#define RS_PIN_DIR	"/sys/fs/bpf/respec"
#define RS_JOURNAL_DIR	"/run/respec"
#define RS_SWAP_MAX_OURS	16	/* program ids of ours remembered per attach point */

struct rs_swap_opts {
	size_t sz;
	const char *journal_dir;	/* NULL = RS_JOURNAL_DIR */
	const char *pin_dir;		/* NULL = RS_PIN_DIR (bpffs mounted there if needed) */
	bool no_journal;		/* bare compare-and-swap: no pin, no journal entry */
	uint64_t op_ns;			/* out: wall time of the kernel replace operation */
};

/*
 * Put new_fd at `pt` in place of the program with id expected_prog_id.  pt->prog_id is not
 * used (discovery may be stale); the live state is checked.  Returns 0, -EBUSY when another
 * program is there (nothing changed), -RS_ERR_NOT_FOUND when the attach point is gone, or
 * another negative errno.  Swapping the journal's original back in closes the entry (that is
 * a restore).
 */
int rs_swap(const struct rs_attach_point *pt, uint32_t expected_prog_id, int new_fd,
	    struct rs_swap_opts *opts);
/* Id of the program at the attach point now (-RS_ERR_NOT_FOUND when the point is gone). */
int rs_attach_point_current(const struct rs_attach_point *pt, uint32_t *prog_id);
/* Stable identity of an attach point (program id excluded): journal key and pin name. */
const char *rs_attach_point_key(const struct rs_attach_point *pt, char *buf, size_t sz);

/* ---- journal (agent/journal.c) ---- */
struct rs_journal_entry {
	struct rs_attach_point pt;	/* pt.prog_id: the original */
	char key[128];
	uint32_t orig_id;		/* original program, pinned at pin */
	uint32_t cur_id;		/* ours, last swapped in */
	uint32_t ours[RS_SWAP_MAX_OURS];	/* every id of ours put there (most recent last) */
	uint32_t ours_cnt;
	char pin[256];
	uint64_t time;			/* unix seconds of the last change */
	bool closed;
};

/* Active journal entries in `dir` (NULL = RS_JOURNAL_DIR).  Caller frees *out. */
int rs_journal_list(const char *dir, struct rs_journal_entry **out, size_t *cnt);

/* ---- restore (agent/restore.c) ---- */
enum rs_restore_outcome {
	RS_RESTORE_DONE,		/* the original is back */
	RS_RESTORE_ALREADY,		/* the original was already there */
	RS_RESTORE_FOREIGN,		/* someone else's program is there: left alone */
	RS_RESTORE_GONE,		/* attach point or original no longer exists */
	RS_RESTORE_FAILED,		/* error (err) */
};

struct rs_restore_report {
	const struct rs_journal_entry *entry;
	uint32_t found_id;		/* program found at the point (0 none) */
	enum rs_restore_outcome outcome;
	int err;
	uint64_t op_ns;			/* kernel replace time when DONE */
};

typedef void (*rs_restore_cb)(const struct rs_restore_report *r, void *ctx);

struct rs_restore_opts {
	size_t sz;
	const char *journal_dir;	/* NULL = RS_JOURNAL_DIR */
	rs_restore_cb cb;		/* called once per journal entry handled */
	void *ctx;
};

const char *rs_restore_outcome_name(enum rs_restore_outcome o);
/*
 * Put the original back at `pt` by compare-and-swap, only if the program there is still one
 * of ours; then unpin and close the journal entry (also when the point is gone or someone
 * else's program is there, which is left alone and reported: -EBUSY).  -RS_ERR_NOT_FOUND when
 * the journal has no entry for the point.
 */
int rs_restore(const struct rs_attach_point *pt, const struct rs_restore_opts *opts);
/* Every entry whose original or one of ours has this id. */
int rs_restore_prog(uint32_t prog_id, const struct rs_restore_opts *opts);
/* Every journal entry.  0 when all went well, else the first error (all are attempted). */
int rs_restore_all(const struct rs_restore_opts *opts);
/*
 * Async-signal-safe restore of every swap this process made (kept in memory by rs_swap with
 * the fds it needs): raw bpf() and rtnetlink syscalls, no allocation, no stdio, no locks; the
 * journal gets a pre-formatted "closed" line and pins are unlinked.  Returns the number of
 * points not restored.  For SIGTERM/SIGINT handlers.
 */
int rs_restore_all_signal_safe(void);
/* Install SIGTERM/SIGINT handlers that call rs_restore_all_signal_safe() and then re-raise the
 * signal with the default action. */
int rs_restore_install_signal_handlers(void);

/* ==== guards: generation counters and the watcher on bpf() (agent/guard.c, docs/guards.md) ==
 *
 * One array map of u64 generations (one slot per watched map) and the watcher program
 * (bpf/watcher.bpf.c) that bumps a watched map's slot before any user-space write command
 * reaches the map and when a program that references it is loaded.  A specialized program
 * compares its slots with the generations its snapshot was taken at (rs_guard_map_ref() goes
 * into rs_opt_opts.guard_map).  With opts.pin_dir the maps and the hook links are pinned, so
 * the watcher keeps running when the agent exits or crashes; a later rs_guard_open() with the
 * same pin_dir takes the pinned maps over (generations and watch list survive).
 */
#define RS_GUARD_PIN_DIR "/sys/fs/bpf/respec"

struct rs_guard;

struct rs_guard_opts {
	size_t sz;
	const char *pin_dir;		/* pin maps + links here (RS_GUARD_PIN_DIR); NULL: none */
	uint32_t max_slots;		/* watched maps at most (default and limit 1024; pinned:
					 * the pinned watch list's) */
	bool force_raw_tp;		/* raw_tp/sys_enter even when tracefs works */
	bool no_watcher;		/* generation array only (offline replay of private maps):
					 * the caller bumps on each of its own writes */
	bool bump_own_loads;		/* also bump on BPF_PROG_LOADs of this process (tests) */
	unsigned int quiesce_ms;	/* rs_guard_watch: wait for older writes (default 2000) */
};

int rs_guard_open(const struct rs_guard_opts *opts, struct rs_guard **g);
/* Detach and free; with pin_dir the pinned watcher and maps stay (rs_guard_unpin removes). */
void rs_guard_close(struct rs_guard *g);
/* Remove the pins under dir (NULL = RS_GUARD_PIN_DIR): the watcher stops once unused. */
int rs_guard_unpin(const char *dir);

/*
 * Watch a map: give it a slot (the same one when it is already watched; a reference is
 * counted), then wait until every write / load command that entered bpf() before the watch
 * existed has left it, and return the slot's current generation.  From then on every write
 * reaching the map is preceded by a bump: contents read after this call are valid while the
 * slot still holds *gen.  -EBUSY when older writes do not drain within quiesce_ms, -ENOSPC
 * when every slot is taken.
 */
int rs_guard_watch(struct rs_guard *g, uint32_t map_id, uint32_t *slot, uint64_t *gen);
/*
 * One slot for a set of watched maps (a specialized program's "epoch"): the watcher bumps it
 * whenever it bumps any member's own slot, so a program relying on several maps checks one
 * generation at entry.  The same set gets the same group back while it exists; unwatching a
 * member for the last time dissolves it (bumped, slot freed).  Waits like rs_guard_watch for
 * commands older than the group.  -ENOENT: a map is not watched; -ENOSPC: no free slot, or
 * a member is in RS_GUARD_MAX_SUBS (8) groups already (use the maps' own slots then).
 */
int rs_guard_group(struct rs_guard *g, const uint32_t *map_ids, size_t n, uint32_t *slot,
		   uint64_t *gen);
/* Drop one reference; the last one removes the map from the watch list and bumps its slot
 * and its groups (programs still built against them fall back). */
int rs_guard_unwatch(struct rs_guard *g, uint32_t map_id);
/* Slot of a watched map (-ENOENT when not watched). */
int rs_guard_slot_of(struct rs_guard *g, uint32_t map_id, uint32_t *slot);
int rs_guard_read(struct rs_guard *g, uint32_t slot, uint64_t *gen);
/* Invalidate by hand (atomic add, like the watcher: a map's slot also bumps its groups):
 * --invalidate-guards, tests. */
int rs_guard_bump(struct rs_guard *g, uint32_t slot);
int rs_guard_bump_all(struct rs_guard *g);
/* The generation array as a map reference for rs_opt_opts.guard_map, and its fd. */
int rs_guard_map_ref(struct rs_guard *g, struct rs_map_ref *ref);
int rs_guard_map_fd(struct rs_guard *g);
uint32_t rs_guard_slot_cnt(struct rs_guard *g);
/* "tracepoint", "raw_tp", or "none" (no_watcher). */
const char *rs_guard_hook_name(struct rs_guard *g);
/*
 * User-space writes to map `map_id` seen by the watcher (watched or not; elements written,
 * batch commands count their elements) and the CLOCK_MONOTONIC time of the last one.
 * -ENOENT when none was seen since the watcher started.  rs_guard_churn_since() also gives
 * the time of the first one seen.
 */
int rs_guard_churn(struct rs_guard *g, uint32_t map_id, uint64_t *writes, uint64_t *last_ns);
int rs_guard_churn_since(struct rs_guard *g, uint32_t map_id, uint64_t *writes,
			 uint64_t *first_ns, uint64_t *last_ns);

/* ==== optimization log (agent/oplog.c, docs/log.md) =====================================
 *
 * JSON lines, one record per event, each with "v": 1, "kind", "time", "run" and (for records
 * about a program) "prog": {id, name, tag, source} naming the ORIGINAL program.  Kinds: run,
 * snapshot, profile, program (before/after instructions, resolved source lines, JIT image),
 * remark, pass_stats, verify, swap, measure, rollback, restore.  Every record is written and
 * flushed as one line, so a crash leaves at most a truncated last line (`respec log` reports
 * it with its line number).  Source lines are resolved at write time from the program's BTF
 * (kernel BTF object btf_id, or the BTF given with rs_oplog_set_btf() for offline objects), so
 * the log alone is enough to render it later.
 */
struct rs_oplog;
struct rs_snapshot;
struct rs_profile;
struct rs_opt_result;
struct btf;

struct rs_oplog_opts {
	size_t sz;
	bool truncate;			/* start a new file (default: append) */
};
#define rs_oplog_opts__last_field truncate

/* Open (create) the log at `path` ("-" = stdout); opts may be NULL. */
int rs_oplog_open(const char *path, const struct rs_oplog_opts *opts, struct rs_oplog **log);
void rs_oplog_close(struct rs_oplog *log);
/* BTF (borrowed, until the next call or close) for programs whose btf_id is 0. */
void rs_oplog_set_btf(struct rs_oplog *log, const struct btf *btf);
/* "run": who wrote what follows (command line, version, host, kernel). */
int rs_oplog_run(struct rs_oplog *log, int argc, char **argv);
/* "snapshot" (every map: type, sizes, entries, facts, guard slot/generation) and, when prof
 * is not NULL, "profile" (hot keys per site, branch probabilities, cost). */
int rs_oplog_snapshot(struct rs_oplog *log, const struct rs_prog *p,
		      const struct rs_snapshot *snap, const struct rs_profile *prof);
/*
 * "program": the instructions of `p` (raw hex and text), maps, functions and resolved source
 * lines, as `role` ("before", "after") of the original program `ident` (NULL: p itself).
 * prog_fd >= 0 (a loaded copy): its JIT image (with JIT addresses of the source lines), its
 * kernel id and the verifier's processed-instruction count are added.
 */
int rs_oplog_program(struct rs_oplog *log, const struct rs_prog *p, const struct rs_prog *ident,
		     const char *role, int prog_fd);

struct rs_oplog_remark_opts {
	size_t sz;
	const struct rs_snapshot *snap;	/* map facts for assumptions (may be NULL) */
	const struct rs_profile *prof;	/* hot keys of the sites (may be NULL) */
	double optimizer_ms;		/* time rs_optimize took (0: not recorded) */
	bool no_programs;		/* do not write the before/after "program" records */
};
#define rs_oplog_remark_opts__last_field no_programs

/*
 * One optimization of `orig`: "program" before and after (unless no_programs), a "remark"
 * per remark (site with source line, assumption with map, keys and generation, guard,
 * before/after instructions) and "pass_stats" per pass plus a "*" total.  Starts a new round.
 */
int rs_oplog_remarks(struct rs_oplog *log, const struct rs_opt_result *res,
		     const struct rs_prog *orig, const struct rs_oplog_remark_opts *opts);
/*
 * "verify": the kernel verifier's verdict on the optimized program of `orig`: prog_fd >= 0
 * when it loaded (processed instructions and id read from it, and a "program" after record
 * with its JIT image is written when `opt` is given), else err and the verifier log text.
 */
int rs_oplog_verify(struct rs_oplog *log, const struct rs_prog *orig, const struct rs_prog *opt,
		    int prog_fd, int err, const char *verifier_log, double load_ms);

struct rs_oplog_measure {
	size_t sz;
	const char *what;		/* "replay", "live", "guards_invalidated", ... */
	const char *method;		/* "driver", "single", "bpf_stats" */
	size_t packets;
	double ns_before, ns_after;	/* ns per packet; 0 when not measured */
	double driver_ns;		/* harness cost removed (0 unknown) */
	long divergences;		/* -1 when not checked */
	const char *pass;		/* the gain is attributed to this pass (NULL: whole) */
};
#define rs_oplog_measure__last_field pass
int rs_oplog_measure(struct rs_oplog *log, const struct rs_prog *orig,
		     const struct rs_oplog_measure *m);
/* "swap": old_id replaced by new_id at pt (err 0) or refused (err < 0). */
int rs_oplog_swap(struct rs_oplog *log, const struct rs_prog *orig,
		  const struct rs_attach_point *pt, uint32_t old_id, uint32_t new_id, int err,
		  uint64_t op_ns);
/* "rollback": the original (to_id) put back in place of from_id, and why. */
int rs_oplog_rollback(struct rs_oplog *log, const struct rs_prog *orig,
		      const struct rs_attach_point *pt, uint32_t from_id, uint32_t to_id,
		      const char *reason, int err);
/* "restore": one outcome of respec restore. */
int rs_oplog_restore(struct rs_oplog *log, const struct rs_restore_report *r);

/* ==== agent daemon: config, control loop, metrics (agent/config.c, loop.c, daemon.c,
 * metrics.c; docs/agent.md) ====================================================================
 *
 * `respec agent` runs one control loop per selected attach point (an explicit state machine,
 * rs_agent_state) inside one process that also captures program loads, re-discovers attach
 * points on a timer and on load events, writes the JSON-lines optimization log and Prometheus
 * metrics, and restores every original on SIGTERM/SIGINT.
 */
#define RS_AGENT_MAX_SELECTORS	32

/* Attach kinds a selector may name (bit mask). */
#define RS_SEL_XDP		(1u << 0)	/* XDP link or netlink */
#define RS_SEL_TC		(1u << 1)	/* tc cls_bpf */
#define RS_SEL_TCX		(1u << 2)	/* tcx link or tcx without link */
#define RS_SEL_PROG_ARRAY	(1u << 3)	/* prog array slot */
#define RS_SEL_ALL		0xfu

/* One selector: every field given must match (globs with fnmatch); empty fields match all. */
struct rs_agent_selector {
	char name[64];			/* program name glob */
	uint32_t id;			/* program id (0: any) */
	char ifname[IF_NAMESIZE + 8];	/* interface name glob */
	char netns[64];			/* namespace name glob ("" for our own namespace: "host") */
	uint32_t kinds;			/* RS_SEL_* (0: any) */
};

struct rs_agent_config {
	char path[4096];		/* file it came from ("" for defaults) */
	/* selection: a point is touched when it matches some `select` (none given: every
	 * XDP/TC point) and no `exclude` */
	struct rs_agent_selector select[RS_AGENT_MAX_SELECTORS];
	size_t select_cnt;
	struct rs_agent_selector exclude[RS_AGENT_MAX_SELECTORS];
	size_t exclude_cnt;
	/* timing */
	double tick_s;			/* main loop period (0.1) */
	double discover_interval_s;	/* re-scan of attach points (10) */
	double base_window_s;		/* cost window on the original before profiling (1) */
	double profile_window_s;	/* instrumented variant in place (3) */
	uint32_t sample_rate;		/* 1 in N (RS_PROF_DEFAULT_RATE) */
	uint32_t sample_burst;		/* in bursts of B packets (RS_PROF_DEFAULT_BURST) */
	size_t top_k;			/* hot keys kept per site (8) */
	double reprofile_interval_s;	/* periodic profile window + drift check (300, 0 off) */
	double reoptimize_interval_s;	/* periodic re-optimization (600, 0 off) */
	double drift_min_coverage;	/* re-optimize when the specialized hot keys cover less
					 * than this share of a new profile's lookups (0.5) */
	double settle_s;		/* guard invalidated: wait for no writes this long (0.3) */
	double retry_s;			/* after a failure / refusal, try this point again (60) */
	double foreign_backoff_s;	/* leave a program someone else put in our place alone
					 * this long before treating it as new (60) */
	/* canary */
	size_t canary_max_packets;	/* packets kept from the profile window (2048) */
	size_t canary_min_packets;	/* fewer: no swap (1) */
	/* revert */
	double cost_delay_s;		/* after a swap, wait before the cost window (1) */
	double cost_window_s;		/* cost window on the optimized program (2) */
	double revert_ratio;		/* optimized / original above this: revert (1.10) */
	uint64_t cost_min_packets;	/* windows with fewer runs decide nothing (1000) */
	/* optimizer */
	size_t max_hot_keys;		/* 8 */
	double min_hot_share;		/* 0.01 */
	size_t small_table_max;		/* 16 */
	char passes[256];		/* "" = all */
	/* places */
	char log_path[4096];		/* optimization log (rs_oplog, `respec log`; "" none) */
	char events_path[4096];		/* agent events, JSON lines ("" none, "-" stderr) */
	char metrics_path[4096];	/* Prometheus text file ("" none) */
	char metrics_listen[128];	/* "ADDR:PORT" HTTP endpoint ("" none) */
	double metrics_interval_s;	/* metrics file rewrite period (5) */
	char journal_dir[4096];		/* "" = RS_JOURNAL_DIR */
	char pin_dir[4096];		/* "" = RS_PIN_DIR (swap pins and guard pins) */
	char capture_dir[4096];		/* "" = RS_CAPTURE_DIR */
	bool capture;			/* capture program loads (true) */
};

/* Defaults (every XDP/TC point, timings above). */
void rs_agent_config_defaults(struct rs_agent_config *c);
/*
 * Strict JSON: unknown keys, wrong types and out-of-range values are errors naming the file
 * and the key ("agent.json: profile.windw_s: unknown key"), -RS_ERR_FORMAT.  Fields absent from
 * the file keep their defaults.  rs_agent_config_parse() reads from a string (`name` in messages).
 */
int rs_agent_config_load(const char *path, struct rs_agent_config *c);
int rs_agent_config_parse(const char *text, const char *name, struct rs_agent_config *c);
/* Does the config let the agent touch program `prog_name` at `pt`? */
bool rs_agent_config_selects(const struct rs_agent_config *c, const struct rs_attach_point *pt,
			     const char *prog_name);
/* Selector kind bit of an attach kind. */
uint32_t rs_agent_kind_bit(enum rs_attach_kind kind);

/* ---- control loop per attach point (agent/loop.c) ---- */
enum rs_agent_state {
	RS_AGENT_DISCOVERED,	/* found, selected */
	RS_AGENT_FETCH,		/* original bytecode: capture, else lift */
	RS_AGENT_BASE,		/* cost window on the program in place */
	RS_AGENT_PROFILE,	/* instrumented variant in place for a window */
	RS_AGENT_SNAPSHOT,	/* map contents under the guard */
	RS_AGENT_OPTIMIZE,	/* rs_optimize */
	RS_AGENT_LOAD,		/* kernel verifier */
	RS_AGENT_CANARY,	/* replay original vs optimized on sampled packets */
	RS_AGENT_SWAP,		/* compare-and-swap at the point */
	RS_AGENT_WATCH,		/* ours in place: guards, drift, cost, foreign changes */
	RS_AGENT_SETTLE,	/* a guard fell: waiting for the map to settle */
	RS_AGENT_IDLE,		/* nothing to do now (refused, reverted, failed): retry later */
	RS_AGENT_GONE,		/* the point or the program is gone; the daemon drops it */
	RS_AGENT_STATE_CNT,
};
const char *rs_agent_state_name(enum rs_agent_state s);

/* Counters of the whole agent (metrics). */
struct rs_agent_stats {
	uint64_t transitions, swaps, reverts, respecializations, guard_invalidations;
	uint64_t canary_runs, canary_divergences, verifier_rejections, foreign_replacements;
	uint64_t profile_windows, optimizations, errors, discoveries, capture_events;
	double last_optimize_ms, last_load_ms, last_canary_ms;
};

struct rs_guard;
struct rs_capture;
struct json_t;

/* What every point's loop shares, owned by the daemon. */
struct rs_agent_env {
	const struct rs_agent_config *cfg;
	struct rs_guard *guard;		/* may be NULL (no guard: nothing is specialized) */
	struct rs_capture *cap;		/* may be NULL */
	FILE *oplog;			/* agent events, JSON lines (may be NULL) */
	struct rs_oplog *olog;		/* optimization log (may be NULL) */
	struct rs_agent_stats stats;
	bool stopping;			/* no new work: finish and restore */
};

struct rs_agent_point;

/* What a point is doing, for metrics and status lines. */
struct rs_agent_point_info {
	struct rs_attach_point pt;
	enum rs_agent_state state;
	char prog_name[BPF_OBJ_NAME_LEN];
	uint32_t orig_id;		/* the original (what we restore) */
	uint32_t live_id;		/* what we expect at the point now */
	uint32_t ours_id;		/* our specialized program in place (0 none) */
	uint32_t version;		/* specializations swapped in so far */
	double orig_ns, ours_ns;	/* cost windows (0 unknown) */
	double replay_orig_ns, replay_ours_ns;	/* A/B replay of sampled packets (0 unknown) */
	uint32_t guarded_maps;
	bool guard_valid;		/* ours runs its specialized body */
	uint64_t profile_packets;
	bool foreign;			/* GONE because someone else replaced it: live_id is theirs */
};

int rs_agent_point_new(struct rs_agent_env *env, const struct rs_attach_point *pt,
		       struct rs_agent_point **out);
/* Advance the state machine as far as it can go without waiting.  now_ns: CLOCK_MONOTONIC. */
int rs_agent_point_step(struct rs_agent_point *p, uint64_t now_ns);
/* True while the point is between states that leave a variant of ours in place only briefly
 * (profile window, swaps): --once waits for these to finish. */
bool rs_agent_point_busy(const struct rs_agent_point *p);
/* Put the original back (compare-and-swap; a foreign program is left alone) and drop state. */
int rs_agent_point_restore(struct rs_agent_point *p);
void rs_agent_point_info(const struct rs_agent_point *p, struct rs_agent_point_info *info);
void rs_agent_point_free(struct rs_agent_point *p);

/* One JSON-lines agent event record: {"time":..,"event":EVENT, ...rec}.  Takes rec. */
void rs_agent_oplog(struct rs_agent_env *env, const char *event, struct json_t *rec);

/* ---- packets sampled at an attach point for the canary (agent/pktsample.c) ---- */
struct rs_pkt_sampler;
struct rs_trace;

/* AF_PACKET sample of the frames reaching the point's program (-EOPNOTSUPP: prog array slot). */
int rs_pkt_sampler_open(const struct rs_attach_point *pt, size_t max,
			struct rs_pkt_sampler **s);
/* Read what is pending (non-blocking); returns frames read. */
int rs_pkt_sampler_drain(struct rs_pkt_sampler *s);
/* Frames kept (and *seen: frames offered) so far. */
size_t rs_pkt_sampler_count(const struct rs_pkt_sampler *s, size_t *seen);
/* Move the kept frames into `tr` (free with rs_trace_free) and start a new sample. */
int rs_pkt_sampler_trace(struct rs_pkt_sampler *s, struct rs_trace *tr);
void rs_pkt_sampler_close(struct rs_pkt_sampler *s);

/* ---- metrics (agent/metrics.c) ---- */
struct rs_agent_metrics;

int rs_agent_metrics_open(const char *listen, struct rs_agent_metrics **m);
/* Render the Prometheus text exposition of the agent into *buf (malloc'd). */
int rs_agent_metrics_render(const struct rs_agent_env *env, const struct rs_agent_point_info *pts,
			    size_t cnt, double cpu_s, char **buf, size_t *len);
/* Write the exposition to `path` atomically (temporary file + rename). */
int rs_agent_metrics_write_file(const char *path, const char *buf, size_t len);
/* Serve pending HTTP requests on the endpoint with `buf` (non-blocking). */
int rs_agent_metrics_serve(struct rs_agent_metrics *m, const char *buf, size_t len);
int rs_agent_metrics_fd(const struct rs_agent_metrics *m);
void rs_agent_metrics_close(struct rs_agent_metrics *m);

/* ---- the daemon (agent/daemon.c) ---- */
struct rs_agent_run_opts {
	size_t sz;
	bool once;			/* one pass over all points, then exit (leaves ours in place) */
	double duration_s;		/* stop after this long (0: until a signal) */
	int argc;			/* command line for the optimization log's "run" record */
	char **argv;
};

/* Run the agent until SIGTERM/SIGINT (or --once / duration); restores originals on exit unless
 * once.  Returns 0 or a negative error. */
int rs_agent_run(const struct rs_agent_config *cfg, const struct rs_agent_run_opts *opts);

/* ==== an rs_prog as a loadable BPF ELF object (agent/elf_write.c, docs/optimize.md) ====
 *
 * The object opens and loads with libbpf 1.1: the program in its section ("xdp", "xdp.frags",
 * "tc"), subprograms in .text, BTF-defined maps in .maps (type, key_size, value_size,
 * max_entries, map_flags), single-entry arrays used through direct value loads (global data,
 * the constant pool, the guard array) as .data.NAME / .rodata.NAME sections with contents,
 * relocations for every map reference, license.  Maps in the object are fresh when libbpf
 * loads it; the guard array section holds the generations the program was built against, so
 * a loader that wants real guards reuses the agent's array (bpf_map__reuse_fd) first.
 */
struct rs_snapshot;

struct rs_elf_write_opts {
	size_t sz;
	const struct rs_snapshot *snap;		/* key-0 contents of data-section maps */
	const char *const *map_names;		/* per map: name in the object (NULL: ref name) */
	const uint8_t *const *map_data;		/* per map: data-section contents (value_size) */
	const char *sec_name;			/* program section (default from type/flags) */
	const struct btf *btf;			/* types of the maps' keys and values (copied) */
	const uint32_t *key_type_ids;		/* per map: key type in btf (0: key_size only) */
	const uint32_t *value_type_ids;		/* per map: value type in btf (0: value_size) */
};
#define rs_elf_write_opts__last_field value_type_ids

/* Write `p` (IDX map form) to `path`.  -EOPNOTSUPP for kfunc calls, callbacks, map-in-map. */
int rs_elf_write(const struct rs_prog *p, const char *path,
		 const struct rs_elf_write_opts *opts);

#endif /* RS_AGENT_H */
