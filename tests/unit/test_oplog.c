// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_oplog.c - the optimization log writer (agent/oplog.c) and its reader `respec log`.
 *
 * Unit mode (no arguments, no root): a small program with hand-made BTF (file, source lines,
 * function) and a hand-made optimization result are written with every record kind; the
 * file is read back line by line (schema, resolved source lines, raw instructions), then
 * `respec log show/stats/remarks --yaml/diff/html` must render it and corrupt or truncated
 * copies must fail with FILE:LINE and exit 1.
 *
 * Producer mode, for tests/kernel/log_cli.sh (root + BPF):
 *     test_oplog --sample-log OBJ SCENARIO PCAP OUT
 * runs the real pipeline on a sample data plane: open for replay with the scenario, fetch
 * the original back (lift), profile it on PCAP through its instrumented variant, snapshot
 * the private maps, rs_optimize, load (verifier), replay and time both on PCAP, and writes
 * everything to the log OUT.  Everything it creates is released before it exits.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <jansson.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tests/guard_testlib.h"

static char tmpdir[64];

static void logf_cb(enum rs_log_level level, const char *fmt, va_list ap)
{
	if (level > RS_LOG_WARN && !getenv("RS_VERBOSE"))
		return;
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* ---- unit mode ------------------------------------------------------------------------- */

#define I(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), \
					     .off = (o), .imm = (i) })

static struct btf *make_btf(uint32_t *file, uint32_t *l1, uint32_t *l2, uint32_t *fn_type)
{
	struct btf *btf = btf__new_empty();
	int proto, fn;

	assert_non_null(btf);
	*file = btf__add_str(btf, "/src/samples/demo.bpf.c");
	*l1 = btf__add_str(btf, "\tr = bpf_map_lookup_elem(&cfg, &k);");
	*l2 = btf__add_str(btf, "\treturn r ? XDP_DROP : XDP_PASS;");
	proto = btf__add_func_proto(btf, 0);
	assert_true(proto > 0);
	fn = btf__add_func(btf, "xdp_demo", BTF_FUNC_GLOBAL, proto);
	assert_true(fn > 0);
	*fn_type = (uint32_t)fn;
	return btf;
}

static void make_prog(struct rs_prog *p, uint32_t file, uint32_t l1, uint32_t l2, uint32_t fnt)
{
	struct bpf_insn insns[] = {
		I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, 0),
		I(BPF_STX | BPF_MEM | BPF_W, 10, 1, -4, 0),
		I(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_IDX, 0, 0),
		I(0, 0, 0, 0, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
		I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
		I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, XDP_PASS),
		I(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1, 0),
		I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, XDP_DROP),
		I(BPF_ALU64 | BPF_MOV | BPF_X, 0, 1, 0, 0),
		I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
	};
	struct rs_map_ref m = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4,
				.max_entries = 1, .name = "cfg" };

	rs_prog_init(p);
	strcpy(p->name, "xdp_demo");
	p->id = 42;
	p->type = BPF_PROG_TYPE_XDP;
	p->source = RS_SRC_OBJECT;
	memset(p->tag, 0xab, sizeof(p->tag));
	assert_int_equal(rs_prog_set_insns(p, insns, RS_ARRAY_SIZE(insns)), 0);
	assert_int_equal(rs_prog_add_map(p, &m), 0);
	p->func_info = calloc(1, sizeof(*p->func_info));
	p->line_info = calloc(2, sizeof(*p->line_info));
	assert_non_null(p->func_info);
	assert_non_null(p->line_info);
	p->func_info[0] = (struct rs_func_info){ .insn_off = 0, .type_id = fnt };
	p->func_info_cnt = 1;
	p->line_info[0] = (struct rs_line_info){ 0, file, l1, 12 << 10 | 6 };
	p->line_info[1] = (struct rs_line_info){ 7, file, l2, 13 << 10 | 2 };
	p->line_info_cnt = 2;
}

static void make_result(const struct rs_prog *p, struct rs_opt_result *res)
{
	struct bpf_insn folded[] = { I(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0) };
	struct rs_remark rm;

	memset(res, 0, sizeof(*res));
	rs_prog_init(&res->prog);
	assert_int_equal(rs_prog_copy(&res->prog, p), 0);
	memset(&rm, 0, sizeof(rm));
	rm.kind = RS_REMARK_APPLIED;
	strcpy(rm.pass, "map_fold");
	rm.orig_insn = 6;
	rm.new_insn = 6;
	rm.map_idx = 0;
	strcpy(rm.msg, "array cfg: lookup of key 0 folded to its value");
	strcpy(rm.assumption, "cfg values stable (guarded)");
	rm.guard_slot = 3;
	rm.guard_gen = 7;
	rm.before = (struct bpf_insn *)&p->insns[6];
	rm.before_cnt = 1;
	rm.after = folded;
	rm.after_cnt = 1;
	assert_int_equal(rs_remarks_add(&res->remarks, &rm), 0);
	memset(&rm, 0, sizeof(rm));
	rm.kind = RS_REMARK_MISSED;
	strcpy(rm.pass, "hot_keys");
	rm.orig_insn = 9;
	rm.new_insn = 9;
	rm.map_idx = -1;
	rm.guard_slot = -1;
	strcpy(rm.msg, "no chain cheaper than the lookup, it's \"fine\"");
	assert_int_equal(rs_remarks_add(&res->remarks, &rm), 0);
	memset(&rm, 0, sizeof(rm));
	rm.kind = RS_REMARK_ANALYSIS;
	strcpy(rm.pass, "analysis");
	rm.orig_insn = -1;
	rm.new_insn = -1;
	rm.map_idx = 0;
	rm.guard_slot = -1;
	strcpy(rm.msg, "map 0 (cfg): stable values");
	assert_int_equal(rs_remarks_add(&res->remarks, &rm), 0);
	res->stats = calloc(2, sizeof(*res->stats));
	assert_non_null(res->stats);
	res->stats[0] = (struct rs_pass_stats){ "map_fold", 1, 0, 12, 12 };
	res->stats[1] = (struct rs_pass_stats){ "hot_keys", 0, 1, 12, 12 };
	res->stat_cnt = 2;
	res->guarded_maps = 1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

/* run a shell command, capture stdout+stderr into *out (caller frees); returns exit code */
static int run(const char *cmd, char **out)
{
	char path[128], full[8192];
	int st;

	*out = NULL;
	if (snprintf(path, sizeof(path), "%s/out.txt", tmpdir) >= (int)sizeof(path) ||
	    snprintf(full, sizeof(full), "%s >%s 2>&1", cmd, path) >= (int)sizeof(full))
		return -1;
	st = system(full);
	*out = slurp(path);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void write_log(const char *path)
{
	uint32_t file, l1, l2, fnt, gen_keys[2] = { 0, 1 };
	uint64_t counts[2] = { 90, 10 };
	struct rs_map_snapshot ms = { .map_idx = 0, .id = 5, .type = BPF_MAP_TYPE_ARRAY,
				      .key_size = 4, .value_size = 4, .max_entries = 1,
				      .complete = true, .watched = true, .guard_slot = 3,
				      .generation = 7, .cnt = 1 };
	struct rs_snapshot snap = { .maps = &ms, .map_cnt = 1 };
	struct rs_site_profile site = { .insn = 6, .map_idx = 0, .key_size = 4, .lookups = 100,
					.key_cnt = 2, .keys = (uint8_t *)gen_keys,
					.counts = counts };
	struct rs_profile prof = { .packets = 100, .sample_rate = 64, .sites = &site,
				   .site_cnt = 1 };
	struct rs_attach_point pt = { .kind = RS_ATTACH_XDP_LINK, .ifindex = 3,
				      .ifname = "veth0", .prog_id = 42 };
	struct rs_journal_entry je = { .orig_id = 42, .cur_id = 77 };
	struct rs_restore_report rr = { .entry = &je, .found_id = 77,
					.outcome = RS_RESTORE_DONE };
	RS_OPTS(rs_oplog_remark_opts, ro, .snap = &snap, .prof = &prof, .optimizer_ms = 0.25);
	RS_OPTS(rs_oplog_measure, me, .what = "replay", .method = "driver", .packets = 1000,
		.ns_before = 20.0, .ns_after = 10.0, .divergences = 0);
	RS_OPTS(rs_oplog_opts, oo, .truncate = true);
	char *argv[] = { "respec", "optimize", "demo.o" };
	struct rs_opt_result res;
	struct rs_oplog *log;
	struct rs_prog p;
	struct btf *btf;

	btf = make_btf(&file, &l1, &l2, &fnt);
	make_prog(&p, file, l1, l2, fnt);
	make_result(&p, &res);
	assert_int_equal(rs_oplog_open(path, &oo, &log), 0);
	rs_oplog_set_btf(log, btf);
	assert_int_equal(rs_oplog_run(log, 3, argv), 0);
	assert_int_equal(rs_oplog_snapshot(log, &p, &snap, &prof), 0);
	assert_int_equal(rs_oplog_remarks(log, &res, &p, &ro), 0);
	assert_int_equal(rs_oplog_verify(log, &p, &res.prog, -1, -EACCES,
					 "0: (b7) r1 = 0\nR0 invalid mem access 'scalar'\n", 1.5), 0);
	assert_int_equal(rs_oplog_measure(log, &p, &me), 0);
	assert_int_equal(rs_oplog_swap(log, &p, &pt, 42, 77, 0, 12000), 0);
	assert_int_equal(rs_oplog_rollback(log, &p, &pt, 77, 42, "guard fallback rate", 0), 0);
	assert_int_equal(rs_oplog_restore(log, &rr), 0);
	rs_oplog_close(log);
	rs_prog_free(&res.prog);
	rs_remarks_free(&res.remarks);
	free(res.stats);
	rs_prog_free(&p);
	btf__free(btf);
}

static void test_schema(void **state)
{
	char path[128], *buf, *line, *save = NULL;
	size_t n = 0, remarks = 0, programs = 0;
	bool seen_site = false;

	(void)state;
	snprintf(path, sizeof(path), "%s/unit.jsonl", tmpdir);
	write_log(path);
	buf = slurp(path);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		json_error_t je;
		json_t *r = json_loads(line, 0, &je);
		const char *kind;

		assert_non_null(r);
		n++;
		assert_int_equal(json_integer_value(json_object_get(r, "v")), 1);
		kind = json_string_value(json_object_get(r, "kind"));
		assert_non_null(kind);
		assert_non_null(json_string_value(json_object_get(r, "time")));
		if (!strcmp(kind, "program")) {
			json_t *ins = json_object_get(r, "insns"), *l0;

			programs++;
			assert_int_equal(json_array_size(ins), 12);
			/* mov r1, 0 = b7 01 00 00 00 00 00 00 */
			assert_string_equal(json_string_value(json_array_get(ins, 0)),
					    "b701000000000000");
			l0 = json_array_get(json_object_get(r, "lines"), 1);
			assert_string_equal(json_string_value(json_object_get(l0, "file")),
					    "demo.bpf.c");
			assert_int_equal(json_integer_value(json_object_get(l0, "line")), 13);
			assert_string_equal(json_string_value(json_object_get(
				json_array_get(json_object_get(r, "funcs"), 0), "name")), "xdp_demo");
		}
		if (!strcmp(kind, "remark")) {
			json_t *s = json_object_get(r, "site");

			remarks++;
			if (json_integer_value(json_object_get(s, "orig_insn")) == 6) {
				json_t *a = json_object_get(r, "assumption");

				seen_site = true;
				assert_int_equal(json_integer_value(json_object_get(s, "line")), 12);
				assert_string_equal(json_string_value(json_object_get(s, "func")),
						    "xdp_demo");
				assert_int_equal(json_array_size(json_object_get(a, "keys")), 2);
				assert_int_equal(json_integer_value(json_object_get(
					json_object_get(r, "guard"), "generation")), 7);
				assert_string_equal(json_string_value(json_array_get(
					json_object_get(json_object_get(r, "after"), "text"), 0)),
					"r0 = 0");
			}
		}
		json_decref(r);
	}
	assert_int_equal(programs, 2);
	assert_int_equal(remarks, 3);
	assert_true(seen_site);
	assert_true(n >= 14);
	free(buf);
}

static const char *respec_bin(void)
{
	static char bin[4096];
	const char *b = getenv("RS_BUILD_DIR");

	snprintf(bin, sizeof(bin), "%s/tools/respec", b ? b : "..");
	return access(bin, X_OK) ? NULL : bin;
}

static void test_cli(void **state)
{
	char path[128], cmd[8192], *out;
	const char *bin = respec_bin();

	(void)state;
	if (!bin)
		skip();
	snprintf(path, sizeof(path), "%s/unit.jsonl", tmpdir);
	write_log(path);

	snprintf(cmd, sizeof(cmd), "%s log show %s --kind remark", bin, path);
	assert_int_equal(run(cmd, &out), 0);
	assert_non_null(strstr(out, "[map_fold] passed insn 6->6 demo.bpf.c:12 (xdp_demo)"));
	assert_null(strstr(out, " swap "));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s log show %s --pass hot_keys", bin, path);
	assert_int_equal(run(cmd, &out), 0);
	assert_non_null(strstr(out, "hot_keys"));
	assert_null(strstr(out, "[map_fold]"));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s log stats %s", bin, path);
	assert_int_equal(run(cmd, &out), 0);
	assert_non_null(strstr(out, "xdp_demo"));
	assert_non_null(strstr(out, "0.500"));		/* 10 / 20 ns */
	assert_non_null(strstr(out, "map_fold"));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s log remarks %s --yaml", bin, path);
	assert_int_equal(run(cmd, &out), 0);
	assert_non_null(strstr(out, "--- !Passed\nPass:            map_fold\n"));
	assert_non_null(strstr(out, "DebugLoc:        { File: 'demo.bpf.c', Line: 12, "
				    "Column: 6 }"));
	assert_non_null(strstr(out, "--- !Missed"));
	assert_non_null(strstr(out, "--- !Analysis"));
	assert_non_null(strstr(out, "it''s \"fine\""));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s log diff %s", bin, path);
	assert_int_equal(run(cmd, &out), 0);
	assert_non_null(strstr(out, "; demo.bpf.c:12: r = bpf_map_lookup_elem(&cfg, &k);"));
	assert_non_null(strstr(out, "^ [map_fold passed] insn 6 demo.bpf.c:12"));
	assert_non_null(strstr(out, "call 0x1"));
	free(out);
	snprintf(cmd, sizeof(cmd), "%s log html %s -o %s/r.html", bin, path, tmpdir);
	assert_int_equal(run(cmd, &out), 0);
	free(out);
	snprintf(cmd, sizeof(cmd), "%s/r.html", tmpdir);
	out = slurp(cmd);
	assert_non_null(strstr(out, "<svg class=\"plot cost-plot\""));
	assert_non_null(strstr(out, "data-remarks=\"3\""));
	assert_null(strstr(out, "http://") == NULL ? NULL : strstr(out, "src=\"http"));
	free(out);
}

static void test_corrupt(void **state)
{
	char path[128], bad[160], cmd[8192], *out, *buf;
	const char *bin = respec_bin();
	size_t len, cut;
	FILE *f;

	(void)state;
	if (!bin)
		skip();
	snprintf(path, sizeof(path), "%s/unit.jsonl", tmpdir);
	write_log(path);
	buf = slurp(path);
	len = strlen(buf);

	/* truncated: the last record cut in the middle (no newline) */
	snprintf(bad, sizeof(bad), "%s/trunc.jsonl", tmpdir);
	f = fopen(bad, "we");
	assert_non_null(f);
	cut = len - 20;
	fwrite(buf, 1, cut, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s log show %s", bin, bad);
	assert_int_equal(run(cmd, &out), 1);
	assert_non_null(strstr(out, "trunc.jsonl:"));
	assert_non_null(strstr(out, "truncated record"));
	free(out);

	/* garbage in line 3 */
	snprintf(bad, sizeof(bad), "%s/bad.jsonl", tmpdir);
	f = fopen(bad, "we");
	assert_non_null(f);
	{
		char *nl1 = strchr(buf, '\n'), *nl2 = strchr(nl1 + 1, '\n');

		fwrite(buf, 1, (size_t)(nl2 + 1 - buf), f);
		fputs("{\"v\":1,\"kind\":\"remark\",\"prog\":{\"id\":1}, oops}\n", f);
		fputs(nl2 + 1, f);
	}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s log stats %s", bin, bad);
	assert_int_equal(run(cmd, &out), 1);
	assert_non_null(strstr(out, "bad.jsonl:3: column"));
	free(out);

	/* a future version and an unknown kind */
	f = fopen(bad, "we");
	fputs("{\"v\":2,\"kind\":\"run\"}\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s log diff %s", bin, bad);
	assert_int_equal(run(cmd, &out), 1);
	assert_non_null(strstr(out, "bad.jsonl:1: unsupported format version 2"));
	free(out);
	f = fopen(bad, "we");
	fputs(buf, f);
	fputs("{\"v\":1,\"kind\":\"bogus\"}\n", f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "%s log html %s -o %s/x.html", bin, bad, tmpdir);
	assert_int_equal(run(cmd, &out), 1);
	assert_non_null(strstr(out, "unknown kind \"bogus\""));
	free(out);
	free(buf);
}

/* ---- producer mode --------------------------------------------------------------------- */

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

#define CHECK(x, what) do { int e_ = (x); if (e_ < 0) { \
	fprintf(stderr, "sample-log: %s: %s\n", what, rs_strerror(e_)); ret = 1; goto out; } } while (0)

static int sample_log(int argc, char **argv, const char *obj, const char *scen, const char *pcap,
		      const char *out_path)
{
	RS_OPTS(rs_replay_open_opts, oo);
	RS_OPTS(rs_opt_opts, opts);
	RS_OPTS(rs_load_opts, lo);
	RS_OPTS(rs_oplog_opts, logo, .truncate = true);
	struct rs_replay_prog *a = NULL, *b = NULL, *ib = NULL;
	struct rs_profiler *pr = NULL;
	struct rs_scenario *sc = NULL;
	struct rs_oplog *log = NULL;
	struct rs_opt_result res;
	struct rs_snapshot snap;
	struct rs_profile prof;
	struct rs_trace tr;
	struct rs_prog p;
	struct bpf_prog_info info;
	struct timespec t0;
	uint32_t len = sizeof(info);
	int *fds = NULL, gfd = -1, fd = -1, ret = 0;
	char *vlog = NULL;
	double opt_ms;
	size_t i;

	memset(&res, 0, sizeof(res));
	memset(&snap, 0, sizeof(snap));
	memset(&prof, 0, sizeof(prof));
	memset(&tr, 0, sizeof(tr));
	rs_prog_init(&p);
	rs_prog_init(&res.prog);
	CHECK(rs_trace_load_pcap(pcap, &tr), pcap);
	CHECK(rs_scenario_load(scen, &sc), scen);
	oo.scenario = sc;
	CHECK(rs_replay_open_object(obj, &oo, &a), obj);
	memset(&info, 0, sizeof(info));
	CHECK(bpf_obj_get_info_by_fd(rs_replay_fd(a), &info, &len) ? -errno : 0, "prog info");
	CHECK(rs_fetch_original(info.id, &p, NULL), "fetch original");
	CHECK(rs_oplog_open(out_path, &logo, &log), out_path);
	CHECK(rs_oplog_run(log, argc, argv), "log run");

	/* profile on the trace through the instrumented variant (sampling every packet) */
	{
		RS_OPTS(rs_profiler_opts, po, .sample_rate = 1);
		RS_OPTS(rs_replay_opts, rpo);
		struct rs_replay_result rr;

		memset(&rr, 0, sizeof(rr));
		CHECK(rs_profiler_replay_open(a, &po, &pr, &ib, NULL), "profiler");
		CHECK(rs_replay_compare(a, ib, &tr, &rpo, &rr), "profile replay");
		rs_replay_result_free(&rr);
		CHECK(rs_profiler_collect(pr, ib, 10, &prof), "profile collect");
	}
	fds = calloc(p.map_cnt + 1, sizeof(*fds));
	if (!fds)
		CHECK(-ENOMEM, "fds");
	for (i = 0; i < p.map_cnt; i++)
		fds[i] = bpf_map_get_fd_by_id(p.maps[i].id);
	CHECK(rs_snapshot_from_fds(&p, fds, &snap), "snapshot");
	for (i = 0; i < snap.map_cnt; i++) {
		snap.maps[i].watched = true;
		snap.maps[i].guard_slot = (uint32_t)i;
		snap.maps[i].generation = 0;
	}
	gfd = guard_array(p.map_cnt, &opts.guard_map);
	CHECK(gfd, "guard array");
	CHECK(rs_oplog_snapshot(log, &p, &snap, &prof), "log snapshot");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(rs_optimize(&p, &snap, &prof, &opts, &res), "rs_optimize");
	opt_ms = ms_since(&t0);
	{
		RS_OPTS(rs_oplog_remark_opts, ro, .snap = &snap, .prof = &prof,
			.optimizer_ms = opt_ms);

		CHECK(rs_oplog_remarks(log, &res, &p, &ro), "log remarks");
	}
	/* the original as loaded: JIT image and verifier-processed instructions */
	CHECK(rs_oplog_program(log, &p, &p, "before", rs_replay_fd(a)), "log before");

	vlog = calloc(1, 1 << 22);
	if (!vlog)
		CHECK(-ENOMEM, "verifier log");
	lo.log_buf = vlog;
	lo.log_size = 1 << 22;
	lo.log_level = 1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = rs_prog_load(&res.prog, &lo);
	CHECK(rs_oplog_verify(log, &p, &res.prog, fd, fd < 0 ? fd : 0, vlog, ms_since(&t0)),
	      "log verify");
	CHECK(fd, "load optimized");

	CHECK(rs_replay_open_prog(&res.prog, &oo, &b), "replay open optimized");
	{
		RS_OPTS(rs_replay_opts, rpo);
		RS_OPTS(rs_timing_opts, to, .rounds = 3, .max_packets = 4096);
		RS_OPTS(rs_oplog_measure, me, .what = "replay");
		struct rs_replay_result rr;
		struct rs_timing_result tm;

		memset(&rr, 0, sizeof(rr));
		CHECK(rs_replay_compare(a, b, &tr, &rpo, &rr), "replay");
		me.divergences = (long)rr.divergences;
		me.packets = rr.packets;
		rs_replay_result_free(&rr);
		memset(&tm, 0, sizeof(tm));
		if (!rs_replay_time(a, b, &tr, &to, &tm)) {
			me.method = tm.method;
			me.ns_before = tm.a.iqm;
			me.ns_after = tm.b.iqm;
			me.driver_ns = tm.driver.iqm;
		}
		CHECK(rs_oplog_measure(log, &p, &me), "log measure");
		fprintf(stderr, "%s: %zu -> %zu insns, %zu remarks, %.2f -> %.2f ns/packet (%s), "
			"%ld divergences\n", p.name, p.insn_cnt, res.prog.insn_cnt, res.remarks.cnt,
			me.ns_before, me.ns_after, me.method ? me.method : "not timed",
			me.divergences);
	}
out:
	if (fd >= 0)
		close(fd);
	if (gfd >= 0)
		close(gfd);
	for (i = 0; fds && i < p.map_cnt; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(fds);
	free(vlog);
	rs_oplog_close(log);
	rs_replay_close(b);
	rs_replay_close(ib);
	rs_profiler_free(pr);
	rs_replay_close(a);
	rs_opt_result_free(&res);
	rs_snapshot_free(&snap);
	rs_profile_free(&prof);
	rs_prog_free(&p);
	rs_scenario_free(sc);
	rs_trace_free(&tr);
	return ret;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_cli),
		cmocka_unit_test(test_corrupt),
	};
	char cmd[128];
	int ret;

	rs_set_log_fn(logf_cb);
	if (argc == 6 && !strcmp(argv[1], "--sample-log")) {
		rs_route_libbpf_log();
		return sample_log(argc, argv, argv[2], argv[3], argv[4], argv[5]);
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/rs-oplog-%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", tmpdir);
	if (system(cmd))
		return 1;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (!getenv("RS_OPLOG_KEEP") && system(cmd))
		ret = ret ? ret : 1;
	return ret;
}
