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
	const char *origin;		/* rs_prog: what reports call it (default "id N (name)") */
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
	unsigned int rounds;		/* rounds, made odd (default 1001 with the trace
					 * driver, 21 with single runs) */
	uint32_t repeat;		/* driver runs per test run (default ~250 us worth,
					 * >= 1024); each round takes the next chunk */
	bool single;			/* force single runs (repeat 1 per packet) */
	unsigned int copies;		/* instances of each program, round r times copy r % copies
					 * (default 4, at most RS_TIMING_MAX_COPIES; 1 = only the
					 * programs given): averages over JIT placements */
	size_t max_packets;		/* packets of the trace used (default 65536) */
	uint32_t ifindex;		/* ingress ifindex (default 1) */
	void (*progress)(const char *phase, size_t done, size_t total, void *ctx);
	void *progress_ctx;
};

#define RS_TIMING_MAX_COPIES	8

struct rs_timing_stat {
	double iqm;			/* interquartile mean over rounds */
	double p25, p75, min, max;	/* quartiles and extremes over rounds */
};

struct rs_timing_result {
	char method[16];		/* "driver" or "single" */
	unsigned int rounds;
	uint64_t runs;			/* program runs per program per round */
	unsigned int copies;		/* instances of each program timed (placements) */
	struct rs_timing_stat a, b;	/* ns per packet, harness (driver / empty program) removed */
	struct rs_timing_stat ratio;	/* (b / a) per round (valid when has_b) */
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

/* ==== snapshots of map contents (instrument/snapshot.c, docs/guards.md) ==================
 *
 * struct rs_snapshot (optimizer/optimizer.h) for every map a program references: type,
 * sizes, flags, frozen state (from /proc/self/fdinfo), entries (batch lookups where the map
 * type has them, else key iteration), per-CPU values (ncpus = possible CPUs, stride
 * round_up(value_size, 8) * ncpus), PROG_ARRAY / map-in-map / devmap values as the kernel
 * reports them (ids, ifindexes).  Facts: ext_writers from every other loaded program that
 * references the map (its original fetched and analyzed by rs_prog_map_writes(); RS_EXT_UNKNOWN
 * when that fails), and with a guard: watched, guard_slot, generation (read after the watch is
 * effective and before the contents), updates_per_s.  Read-only: the snapshot never writes a map.
 */
struct rs_guard;
struct rs_snapshot;

#define RS_SNAPSHOT_MAX_ENTRIES	65536	/* entries read per map by default */

struct rs_snapshot_opts {
	size_t sz;
	size_t max_entries;		/* per map (default RS_SNAPSHOT_MAX_ENTRIES); a map with more
					 * is read up to this many, complete = false */
	struct rs_guard *guard;		/* watch every map before reading it (may be NULL) */
	bool no_ext_writers;		/* skip the scan of other programs (ext_writers = 0) */
	const uint32_t *exclude_progs;	/* program ids that are copies of prog (not writers) */
	size_t exclude_cnt;
	unsigned int retries;		/* re-reads when a generation moves meanwhile (default 3) */
};

/* Live: maps by map_fds[i] (parallel to prog->maps[]) or, with map_fds NULL, by prog->maps[i].id. */
int rs_snapshot_take(const struct rs_prog *prog, const int *map_fds, struct rs_snapshot *out);
/* Offline (replay's private maps): map_fds required, no ext_writers scan. */
int rs_snapshot_from_fds(const struct rs_prog *prog, const int *map_fds, struct rs_snapshot *out);
int rs_snapshot_take_opts(const struct rs_prog *prog, const int *map_fds,
			  const struct rs_snapshot_opts *opts, struct rs_snapshot *out);
/* Frozen state of a map fd (BPF_MAP_FREEZE), from the "frozen:" line of its fdinfo. */
int rs_map_fd_frozen(int fd, bool *frozen);

/* ==== profile: instrumented variants, profiles, cost windows, counters, churn ==========
 * (instrument/profile.c, profile_json.c, stats_window.c, perf.c, churn.c; docs/profile.md)
 */
struct rs_profile;
struct rs_instr_layout;
struct rs_guard;

/* An instrumented variant of a program with the maps it records into (made by respec). */
struct rs_profiler;

struct rs_profiler_opts {
	size_t sz;
	uint32_t sample_rate;		/* 1 in N (default RS_PROF_DEFAULT_RATE) */
	uint32_t key_slots;		/* distinct keys per site (default RS_PROF_DEFAULT_KEYS) */
	bool no_verifier_depth;		/* do not ask the verifier for the stack depth */
	bool percpu_countdown;		/* rs_instr_opts.percpu_countdown */
	uint32_t burst;			/* rs_instr_opts.burst (0: RS_PROF_DEFAULT_BURST) */
	bool inline_copy;		/* rs_instr_opts.inline_copy */
};

/*
 * Instrument `orig` (maps by kernel id) and create the maps the variant records into.  Unless
 * no_verifier_depth, `orig` is loaded once with BPF_LOG_STATS so the spill slots go below the
 * stack depth the verifier reports.  The call layout (the copy a subprogram) is loaded once
 * against the profiler's own maps to see that the kernel takes it; when it does not (stack or
 * call depth), the variant is the inline one (rs_profiler_layout()->call says which).
 */
int rs_profiler_new(const struct rs_prog *orig, const struct rs_profiler_opts *opts,
		    struct rs_profiler **out);
void rs_profiler_free(struct rs_profiler *pr);
/* The instrumented program (maps by id, ready for rs_prog_load / rs_replay_open_prog). */
const struct rs_prog *rs_profiler_prog(const struct rs_profiler *pr);
/* An fd of it against the profiler's own maps (the first call hands over the one loaded by
 * rs_profiler_new to check the layout), or -errno. */
int rs_profiler_load(struct rs_profiler *pr);
const struct rs_instr_layout *rs_profiler_layout(const struct rs_profiler *pr);
/* Zero every counter and forget the keys drained so far (the countdown is kept). */
int rs_profiler_reset(struct rs_profiler *pr);
/*
 * all: every packet takes the instrumented copy from now on (an offline pass: the copy is
 * then compared on every packet and the profile is exact); !all: back to 1 in N.  `rp` as
 * for rs_profiler_poll.
 */
int rs_profiler_sample_all(struct rs_profiler *pr, const struct rs_replay_prog *rp, bool all);
/*
 * Drain the sites' key rings into the profiler (call often enough that no ring of
 * RS_PROF_DEFAULT_KEYS entries fills between two calls; keys overwritten before a drain are
 * counted as lost).  `rp`: read the private clones of an isolated replay program instead of
 * the profiler's own maps (NULL: own maps).
 */
int rs_profiler_poll(struct rs_profiler *pr, const struct rs_replay_prog *rp);
/*
 * Drain, then build a profile (top_k keys per site, 0 = 10) from every key drained since the
 * start (or the last reset) and the branch counters.  window_s is left to the caller.
 */
int rs_profiler_collect(struct rs_profiler *pr, const struct rs_replay_prog *rp,
			size_t top_k, struct rs_profile *prof);
/* Keys lost (overwritten before a drain) over every site. */
uint64_t rs_profiler_keys_lost(const struct rs_profiler *pr);
/*
 * Open the instrumented variant of replay program `a` (its original, fetched from the kernel)
 * against clones of a's maps, for `respec replay --instrumented`.  twin (may be NULL): also
 * that original against its own clones, origin "A-ORIGIN (clone)" - compare the variant with
 * the twin rather than with `a`: both then have maps filled the same way (clone order, not
 * scenario order, decides e.g. where LPM trie nodes land) and are loaded the same way.
 */
int rs_profiler_replay_open(const struct rs_replay_prog *a, const struct rs_profiler_opts *opts,
			    struct rs_profiler **pr, struct rs_replay_prog **b,
			    struct rs_replay_prog **twin);

/* ---- JSON (instrument/profile_json.c) ---- */

/* Names for the JSON: the program and its maps (may be NULL); btf decodes keys (may be NULL). */
struct rs_profile_names {
	const struct rs_prog *prog;	/* map names and key BTF ids come from here */
	const struct btf *btf;		/* program BTF for decoding keys */
	const uint32_t *key_type_ids;	/* per map of prog: BTF key type (0 unknown), may be NULL */
};
json_t *rs_profile_to_json(const struct rs_profile *p, const struct rs_profile_names *names);
/* Parse what rs_profile_to_json wrote.  Errors: -RS_ERR_FORMAT naming the JSON path. */
int rs_profile_from_json(json_t *o, struct rs_profile *p);
int rs_profile_save(const char *path, const struct rs_profile *p,
		    const struct rs_profile_names *names);
int rs_profile_load(const char *path, struct rs_profile *p);
/* A key as text: BTF-decoded ("{src=10.0.0.1,...}") when possible, else hex. */
int rs_profile_key_str(const struct btf *btf, uint32_t type_id, const uint8_t *key,
		       uint32_t size, char *buf, size_t sz);

/* ---- cost windows (instrument/stats_window.c) ---- */

struct rs_stats_window {
	uint32_t prog_id;
	int stats_fd;			/* BPF_ENABLE_STATS fd, held only inside the window */
	int prev_sysctl;		/* kernel.bpf_stats_enabled before (0/1, -1 unknown) */
	uint64_t run_time_ns0, run_cnt0;
	uint64_t t0_ns;
};

struct rs_stats_result {
	uint64_t run_time_ns, run_cnt;	/* deltas over the window */
	double ns_per_packet;		/* NaN when no run */
	double window_s;
	bool sysctl_restored;		/* kernel.bpf_stats_enabled back at its previous value */
};

/* Start a window on a live program: enable stats through a BPF_ENABLE_STATS fd, read
 * run_time_ns / run_cnt. */
int rs_stats_window_begin(uint32_t prog_id, struct rs_stats_window *w);
/* Read the deltas and close the stats fd (always, also on error). */
int rs_stats_window_end(struct rs_stats_window *w, struct rs_stats_result *res);
/* kernel.bpf_stats_enabled (0/1), or a negative errno. */
int rs_bpf_stats_sysctl(void);

/* ---- hardware counters (instrument/perf.c) ---- */

enum rs_perf_source {
	RS_PERF_HW,			/* hardware PMU event (libpfm4 encoding) */
	RS_PERF_SW,			/* software event fallback (task-clock, cpu-clock) */
	RS_PERF_NONE,			/* not available */
};

#define RS_PERF_MAX_EVENTS 8

struct rs_perf_event {
	char name[32];			/* "cycles", "task-clock", ... */
	enum rs_perf_source source;
	uint32_t type;			/* perf_event_attr.type */
	uint64_t config;
	int fd;
	uint64_t value;			/* after rs_perf_stop */
	char why[96];			/* why a fallback was taken */
};

struct rs_perf {
	struct rs_perf_event ev[RS_PERF_MAX_EVENTS];
	size_t cnt;
	bool hw;			/* hardware events are counting */
};

/* perf_event_open as the probe sees it (tests inject failures). */
typedef int (*rs_perf_open_fn)(void *attr, int pid, int cpu, int group_fd, unsigned long flags);
void rs_perf_set_open_fn(rs_perf_open_fn fn);	/* NULL restores the real syscall */

/* libpfm4 encoding of a generic hardware event name ("cycles", "instructions",
 * "branch-misses", "LLC-misses") as perf_event_attr type/config. */
int rs_perf_encode(const char *name, uint32_t *type, uint64_t *config);
/*
 * Open counters for the calling thread (pid 0, any CPU): the four hardware events when a
 * real perf_event_open of them succeeds, else the software events task-clock and cpu-clock;
 * each event says its source (and why the fallback).
 */
int rs_perf_open(struct rs_perf *p);
int rs_perf_start(struct rs_perf *p);
int rs_perf_stop(struct rs_perf *p);	/* reads values */
void rs_perf_close(struct rs_perf *p);
const char *rs_perf_source_name(enum rs_perf_source s);	/* "hardware", "software", "none" */
/*
 * Counters around single test runs (repeat 1) of `rp` over the first `max` packets of `tr`
 * (0 = all): opens, counts, closes `p` (values in p->ev[].value; *runs = runs made).  The
 * figures include the test-run syscall around each program run.
 */
int rs_perf_measure_runs(struct rs_replay_prog *rp, const struct rs_trace *tr, size_t max,
			 struct rs_perf *p, size_t *runs);

/* ---- map churn (instrument/churn.c) ---- */

struct rs_map_churn {
	uint32_t map_idx;		/* in the program's maps[] */
	uint32_t map_id;
	uint64_t writes;		/* user-space writes seen during the window */
	double updates_per_s;
};

/* Sample the watcher's write counts of every map of `prog` (begin), then compute rates
 * (end) over window_s.  `churn` has prog->map_cnt entries. */
int rs_churn_begin(struct rs_guard *g, const struct rs_prog *prog, struct rs_map_churn *churn);
int rs_churn_end(struct rs_guard *g, const struct rs_prog *prog, double window_s,
		 struct rs_map_churn *churn);

/* ==== the offline specialization pipeline (instrument/offline.c, docs/optimize.md) =======
 *
 * OBJ + scenario -> A (the original, private maps) and a second isolated instance whose
 * original is fetched back; profile on a training trace; snapshot of the second instance's
 * maps with every map watched by the real guard; rs_optimize; kernel load against those same
 * maps.  Replay A against rs_offline_optimized() to compare and time.  Scenario updates go to
 * both map sets (the watcher bumps the guards; the optimized program falls back).
 */
struct rs_opt_opts;
struct rs_opt_result;
struct rs_offline;

struct rs_offline_opts {
	size_t sz;
	const char *prog_name;		/* program of the object (default: first XDP/TC) */
	const struct rs_scenario *scenario;	/* map contents (may be NULL) */
	const struct rs_trace *train;	/* profile on it (NULL: no profile) */
	uint32_t sample_rate;		/* profiling: 1 in N (default 1: every packet) */
	const struct rs_opt_opts *opt;	/* optimizer options (guard_map is filled in) */
};
#define rs_offline_opts__last_field opt

struct rs_offline_info {
	const struct rs_prog *orig;		/* the original (maps by id of the private maps) */
	const struct rs_snapshot *snap;		/* last snapshot (NULL before specialize) */
	const struct rs_profile *prof;		/* NULL without a training trace */
	const struct rs_opt_result *res;	/* last optimizer result (NULL before) */
	const char *verifier_log;		/* set when the verifier rejected the result */
	int load_fd;				/* the loaded optimized program (-1: none) */
	const char *const *map_names;		/* per map of orig: name in the object */
	const struct btf *btf;			/* the object's BTF (NULL: none) */
	const uint32_t *key_type_ids;		/* per map of orig: BTF key / value types */
	const uint32_t *value_type_ids;
	double profile_ms, snapshot_ms, optimizer_ms, load_ms;
	unsigned int specializations;		/* optimized programs loaded so far */
};

/* Open A and the second instance, start the guard, profile on opts->train. */
int rs_offline_open(const char *path, const struct rs_offline_opts *opts,
		    struct rs_offline **out);
/*
 * Snapshot (guarded), optimize and load; the new optimized program replaces the previous one.
 * -RS_ERR_VERIFIER when the kernel refused it (info->verifier_log has the log).
 */
int rs_offline_specialize(struct rs_offline *off);
void rs_offline_close(struct rs_offline *off);
const struct rs_offline_info *rs_offline_get_info(const struct rs_offline *off);
struct rs_replay_prog *rs_offline_original(const struct rs_offline *off);
struct rs_replay_prog *rs_offline_optimized(const struct rs_offline *off);	/* NULL before */
struct rs_guard *rs_offline_guard(const struct rs_offline *off);
/* Bump every guard slot (--invalidate-guards). */
int rs_offline_invalidate(struct rs_offline *off);
/* Guard slots of the last snapshot whose generation moved since (0: specialized code runs). */
int rs_offline_stale_guards(const struct rs_offline *off);
/* Apply the scenario's update i to both map sets (through bpf(): the watcher bumps). */
int rs_offline_apply_update(struct rs_offline *off, size_t i);
/*
 * Write the last rs_offline_specialize() to an optimization log (agent/oplog.c): snapshot and
 * profile, a round of programs/remarks/pass_stats, the original's JIT image, and verify (with
 * the verifier log when the kernel refused).  log NULL: nothing.  -ENOENT before a snapshot.
 */
struct rs_oplog;
int rs_offline_oplog(const struct rs_offline *off, struct rs_oplog *log);

/* ==== map copy (instrument/mapcopy.c) ====================================================
 *
 * Copy every entry of map src_fd into dst_fd (same type, key/value sizes, max entries): batch
 * lookups/updates where the map type has them (arrays, hashes, LRU and per-CPU variants), else
 * key by key (LPM trie, devmap, cpumap, ...).  Per-CPU values keep every CPU's value.
 */
struct bpf_map_info;

struct rs_map_copy_opts {
	size_t sz;
	bool dst_empty;			/* dst was just created: arrays skip all-zero values */
	bool clear_dst;			/* hashes: delete every entry of dst first so dst == src
					 * afterwards (arrays need none: every index is written) */
	uint32_t batch;			/* entries per batch syscall (default 4096) */
	bool no_batch;			/* force the key-by-key copy (tests, timing) */
	uint64_t *copied;		/* out (may be NULL): entries written into dst */
};
#define rs_map_copy_opts__last_field copied

/* `info` describes src (NULL: read from src_fd).  0 or a negative errno (the message names
 * the map). */
int rs_map_copy(int src_fd, int dst_fd, const struct bpf_map_info *info,
		const struct rs_map_copy_opts *opts);

#endif /* RS_INSTRUMENT_H */
