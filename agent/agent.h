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

#endif /* RS_AGENT_H */
