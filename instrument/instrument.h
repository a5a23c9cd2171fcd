/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * instrument.h - measuring: scenarios (map contents from JSON, encoded through BTF), replay of
 * packets through programs, cost per packet, snapshots and profiles.
 */
#ifndef RS_INSTRUMENT_H
#define RS_INSTRUMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "optimizer/ir.h"

struct btf;
struct bpf_object;
typedef struct json_t json_t;

/* ==== scenarios (docs/scenario.md) ==================================================== */

struct rs_scenario;

/* Parse a scenario file.  Errors name the file and the JSON path ("scenario.json: maps.vip_map[3].key: ..."). */
int rs_scenario_load(const char *path, struct rs_scenario **sc);
void rs_scenario_free(struct rs_scenario *sc);
const char *rs_scenario_path(const struct rs_scenario *sc);
/* The "traffic" object (borrowed reference, NULL when absent). */
json_t *rs_scenario_traffic(const struct rs_scenario *sc);
/* The "updates" array (borrowed, NULL when absent). */
json_t *rs_scenario_updates(const struct rs_scenario *sc);

/*
 * Encode one JSON key or value for a map into bytes, guided by BTF type `type_id` of `btf`
 * (type_id 0 or btf NULL: only "hex:..." accepted).  `buf` has `size` bytes; it is zeroed first.
 * `what` names the place for error messages.
 */
int rs_scenario_encode(const struct btf *btf, uint32_t type_id, json_t *v,
		       void *buf, size_t size, const char *what);

/*
 * Fill the maps of a loaded object (or any map fds) from the scenario.  `map_fd_by_name`
 * resolves a scenario map name to an fd plus its BTF key/value type ids.  Maps named in the
 * scenario but absent from the program are an error naming the map.
 */
struct rs_scenario_map {
	const char *name;
	int fd;
	uint32_t type;			/* enum bpf_map_type */
	uint32_t key_size, value_size, max_entries;
	uint32_t btf_key_type_id, btf_value_type_id;
};
int rs_scenario_apply(const struct rs_scenario *sc, const struct btf *btf,
		      const struct rs_scenario_map *maps, size_t map_cnt,
		      const struct bpf_object *obj /* for PROG_ARRAY values, may be NULL */);
/* Convenience: fill every map of a libbpf object that the scenario names. */
int rs_scenario_apply_object(const struct rs_scenario *sc, struct bpf_object *obj);
/* Apply one entry of "updates" (index i) to the same maps. */
int rs_scenario_apply_update(const struct rs_scenario *sc, size_t i, const struct btf *btf,
			     const struct rs_scenario_map *maps, size_t map_cnt);

/* The scenario's "program" string (NULL when absent) and its "maps" object (borrowed). */
const char *rs_scenario_program(const struct rs_scenario *sc);
json_t *rs_scenario_maps(const struct rs_scenario *sc);
/* Number of "updates" entries; position of entry i (*seconds: "unit": "s", else fraction). */
size_t rs_scenario_update_cnt(const struct rs_scenario *sc);
int rs_scenario_update_at(const struct rs_scenario *sc, size_t i, double *at, bool *seconds);

/*
 * Describe every map of a libbpf object (loaded) as rs_scenario_map entries.  *maps is
 * allocated (free with free()); names point into the object.
 */
int rs_scenario_object_maps(struct bpf_object *obj, struct rs_scenario_map **maps, size_t *cnt);
/* Find a map by name in an rs_scenario_map array (NULL when absent). */
const struct rs_scenario_map *rs_scenario_find_map(const struct rs_scenario_map *maps,
						   size_t map_cnt, const char *name);
/*
 * One control-plane write outside a scenario file (loaders' stdin commands): encode `key` and
 * `value` (NULL for a delete) for map `m` and update / delete the element.  `what` names the
 * source for messages.  Per-CPU and PROG_ARRAY values as in rs_scenario_apply (obj may be NULL).
 */
int rs_scenario_map_write(const struct btf *btf, const struct rs_scenario_map *m,
			  json_t *key, json_t *value, const struct bpf_object *obj,
			  const char *what);

/* ==== replay (docs/replay.md) ======================================================== */

struct bpf_program;

/* A packet trace read from a pcap / pcapng file (Ethernet link type). */
struct rs_packet {
	uint8_t *data;
	uint32_t len;
};

struct rs_trace {
	char path[4096];
	struct rs_packet *pkts;
	size_t cnt;
	uint32_t max_len;
};

/*
 * Read every packet of a pcap into memory.  Errors (-RS_ERR_FORMAT) name the file and the
 * packet number: "t.pcap: packet 3: truncated ...", "t.pcap: not a pcap file ...".
 */
int rs_trace_load_pcap(const char *path, struct rs_trace *tr);
void rs_trace_free(struct rs_trace *tr);

/*
 * A program loaded in isolation for replay: its own private maps (fresh ones for an ELF
 * object, clones with copied contents for a loaded program), never the pinned or live ones.
 */
struct rs_replay_prog;

struct rs_replay_open_opts {
	size_t sz;
	const char *prog_name;		/* ELF: program to use (default: first XDP/TC program) */
	const struct rs_scenario *scenario;	/* fill the maps from it (may be NULL) */
	/* ELF only: called after open, before load (e.g. to change instructions in a test). */
	int (*prepare)(struct bpf_object *obj, struct bpf_program *prog, void *ctx);
	void *prepare_ctx;
};

int rs_replay_open_object(const char *path, const struct rs_replay_open_opts *opts,
			  struct rs_replay_prog **out);
/* An rs_prog whose maps[] refer to kernel maps by id: each map is cloned (type, sizes, flags,
 * BTF, contents; PROG_ARRAY clones stay empty), then the program is loaded against the clones. */
int rs_replay_open_prog(const struct rs_prog *prog, const struct rs_replay_open_opts *opts,
			struct rs_replay_prog **out);
/* A loaded program: its original (rs_fetch_original) against clones of its maps. */
int rs_replay_open_id(uint32_t prog_id, const struct rs_replay_open_opts *opts,
		      struct rs_replay_prog **out);
void rs_replay_close(struct rs_replay_prog *rp);

const char *rs_replay_name(const struct rs_replay_prog *rp);	/* "xdp_filter" */
const char *rs_replay_origin(const struct rs_replay_prog *rp);	/* "obj.o:xdp_filter", "id 42" */
int rs_replay_fd(const struct rs_replay_prog *rp);
uint32_t rs_replay_prog_type(const struct rs_replay_prog *rp);
uint32_t rs_replay_expected_attach_type(const struct rs_replay_prog *rp);
uint32_t rs_replay_prog_flags(const struct rs_replay_prog *rp);
/* fd of the isolated program's private map `name` (libbpf or kernel name), -ENOENT if none. */
int rs_replay_map_fd(const struct rs_replay_prog *rp, const char *name);

/* Name of a verdict of a program type ("XDP_PASS", "TC_ACT_SHOT", "ret 7"). */
const char *rs_verdict_name(uint32_t prog_type, int32_t verdict, char *buf, size_t sz);

/* Bytes of a map's values that may legitimately differ (timestamps...): MAP:OFF:LEN. */
struct rs_replay_mask {
	char map[64];			/* map name (libbpf or kernel name) */
	uint32_t off, len;		/* byte range inside each value (each CPU's value) */
};
int rs_replay_mask_parse(const char *s, struct rs_replay_mask *m);

enum rs_div_kind {
	RS_DIV_PACKET,			/* verdict, length or output bytes differ */
	RS_DIV_MAP,			/* map contents differ after the run */
	RS_DIV_ERROR,			/* a test run failed for one program only */
};

struct rs_divergence {
	enum rs_div_kind kind;
	size_t packet;			/* 1-based packet number (RS_DIV_MAP: packets replayed) */
	int32_t verdict_a, verdict_b;
	uint32_t len_a, len_b;		/* output lengths (RS_DIV_MAP: value sizes) */
	uint8_t *out_a, *out_b;		/* output bytes / map values (NULL when absent) */
	char what[256];			/* map name and key in hex, or the error */
};

#define RS_VERDICT_SLOTS 16		/* histogram of verdicts -1 .. 14 (others counted last) */

struct rs_replay_result {
	size_t packets;
	uint64_t verdicts_a[RS_VERDICT_SLOTS];
	uint64_t verdicts_b[RS_VERDICT_SLOTS];
	size_t divergences;		/* total found (packets + maps) */
	struct rs_divergence *div;	/* the first max_divergences of them */
	size_t div_cnt;
};
/* Verdict value of histogram slot i. */
static inline int32_t rs_verdict_of_slot(size_t i) { return (int32_t)i - 1; }

struct rs_replay_opts {
	size_t sz;
	size_t max_divergences;		/* kept in result->div (default 10) */
	const struct rs_replay_mask *masks;
	size_t mask_cnt;
	uint32_t ifindex;		/* ingress ifindex in the test-run context (default 1, lo) */
	void (*progress)(const char *phase, size_t done, size_t total, void *ctx);
	void *progress_ctx;
};

/*
 * Run every packet through `a` (and `b` when not NULL) with BPF_PROG_TEST_RUN (repeat 1, fresh
 * buffer each time), compare verdicts, output length and bytes per packet, then every map
 * both programs have (matched by name, masked as asked).  Returns 0 when the runs completed
 * (divergences are in *res), or a negative error (a program failed on every packet, ...).
 */
int rs_replay_compare(struct rs_replay_prog *a, struct rs_replay_prog *b,
		      const struct rs_trace *tr, const struct rs_replay_opts *opts,
		      struct rs_replay_result *res);
void rs_replay_result_free(struct rs_replay_result *res);

/* ---- cost per packet (instrument/timing.c) ---- */

/* 0 when kernel.bpf_stats_enabled is 0; -EBUSY (with a warning) when it is on. */
int rs_timing_check_stats(void);

struct rs_timing_opts {
	size_t sz;
	unsigned int rounds;		/* A/B rounds, made odd (default 7) */
	uint32_t repeat;		/* driver runs per test run (default ~200000, whole trace) */
	bool single;			/* force single runs (repeat 1 per packet) */
	size_t max_packets;		/* packets of the trace used (default 65536) */
	uint32_t ifindex;		/* ingress ifindex (default 1) */
	void (*progress)(const char *phase, size_t done, size_t total, void *ctx);
	void *progress_ctx;
};

struct rs_timing_stat {
	double median, min, max;	/* over rounds */
};

struct rs_timing_result {
	char method[16];		/* "driver" or "single" */
	unsigned int rounds;
	uint64_t runs;			/* program runs per program per round */
	struct rs_timing_stat a, b;	/* ns per packet, harness (driver / empty program) removed */
	struct rs_timing_stat ratio;	/* b / a per round (valid when has_b) */
	struct rs_timing_stat driver;	/* ns per packet of the harness alone */
	bool has_b;
	uint32_t driver_errors;		/* failed restores / tail calls in the driver */
};

/*
 * Cost per packet of `a` (and `b`, alternating A B A B ... over an odd number of rounds).  XDP
 * programs run under the trace driver; TC programs, and XDP programs the driver cannot call,
 * run once per packet (repeat 1) timed by the kernel.  Refuses (-EBUSY) when bpf_stats is on.
 */
int rs_replay_time(struct rs_replay_prog *a, struct rs_replay_prog *b, const struct rs_trace *tr,
		   const struct rs_timing_opts *opts, struct rs_timing_result *res);

#endif /* RS_INSTRUMENT_H */
