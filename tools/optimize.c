// SPDX-License-Identifier: BSD-2-Clause
/*
 * optimize.c - `respec optimize`: specialize a program for its map contents (and traffic, with
 * --train) and write the result: a loadable ELF object for an OBJ (agent/elf_write.c), or a
 * program pinned under /sys/fs/bpf/respec/ for a loaded PROG.  The kernel verifier must
 * accept it first; on rejection the verifier log goes to the optimization log (--log) and
 * nothing is written.  See docs/optimize.md.
 *
 *   respec optimize OBJ --scenario FILE [--train PCAP] [--prog NAME] [-o OUT] [--log FILE] [-j]
 *   respec optimize PROG [--train PCAP] [-o PIN] [--log FILE] [-j]
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/agent.h"
#include "instrument/instrument.h"
#include "optimizer/optimizer.h"
#include "tools/main.h"

struct opt_args {
	bool is_prog;
	struct rs_prog_spec spec;
	const char *obj, *scenario, *train, *prog_name, *out, *log;
	int argc;
	char **argv;
};

static int optimize_help(void)
{
	fprintf(stderr,
		"Usage: %s optimize OBJ --scenario FILE [--train PCAP] [--prog NAME] [-o OUT]\n"
		"                   [--log FILE] [-j]\n"
		"       %s optimize PROG [--train PCAP] [-o PIN] [--log FILE] [-j]\n\n"
		"Specializes the program for its map contents (OBJ: the scenario's, in isolation;\n"
		"PROG: the live maps, watched by the guard) and, with --train, for the traffic of a\n"
		"training trace; the kernel verifier must accept the result.  OBJ: writes a BPF\n"
		"ELF object loadable with libbpf (default NAME.opt.bpf.o).  PROG: pins the loaded\n"
		"program (default %s/opt-ID).  --log appends the optimization log (JSON lines,\n"
		"docs/log.md); on a verifier rejection the log keeps the verifier's output.\n"
		"PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
		"          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n",
		bin_name, bin_name, RS_PIN_DIR);
	return RS_EXIT_OK;
}

static int parse_args(int argc, char **argv, struct opt_args *oa)
{
	int i = 0, err;

	err = parse_prog_or_obj("optimize", argc, argv, &i, &oa->spec, &oa->is_prog, &oa->obj);
	if (err)
		return err;
	while (i < argc) {
		const char *o = argv[i++];
		const char *v = i < argc ? argv[i] : NULL;

		if (!strcmp(o, "-j") || !strcmp(o, "--json") || !strcmp(o, "-p") ||
		    !strcmp(o, "--pretty")) {
			json_output = true;
			pretty_output |= o[1] == 'p' || o[2] == 'p';
			continue;
		}
		if (!v)
			return usage_err("optimize", "option '%s' needs a value", o);
		i++;
		if (!strcmp(o, "--scenario"))
			oa->scenario = v;
		else if (!strcmp(o, "--train"))
			oa->train = v;
		else if (!strcmp(o, "--prog"))
			oa->prog_name = v;
		else if (!strcmp(o, "-o") || !strcmp(o, "--output"))
			oa->out = v;
		else if (!strcmp(o, "--log"))
			oa->log = v;
		else
			return usage_err("optimize", "unknown option '%s'", o);
	}
	if (!oa->is_prog && !oa->scenario)
		return usage_err("optimize", "OBJ needs --scenario FILE (the map contents)");
	if (oa->is_prog && (oa->scenario || oa->prog_name))
		return usage_err("optimize", "--scenario and --prog are for OBJ");
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The guard array's contents the program was built against: each watched map's generation. */
static uint8_t *guard_contents(const struct rs_prog *opt, const struct rs_snapshot *snap)
{
	const struct rs_map_ref *g = &opt->maps[opt->map_cnt - 1];
	uint8_t *v = calloc(1, g->value_size ?: 1);
	size_t i;

	if (!v)
		return NULL;
	for (i = 0; i < snap->map_cnt; i++) {
		const struct rs_map_snapshot *m = &snap->maps[i];

		if (m->watched && (m->guard_slot + 1) * 8 <= g->value_size)
			memcpy(v + 8 * m->guard_slot, &m->generation, 8);
	}
	return v;
}

static void default_out(const struct opt_args *oa, const struct rs_prog *p, char *buf,
			size_t sz)
{
	if (oa->out) {
		snprintf(buf, sz, "%s", oa->out);
	} else if (oa->is_prog) {
		snprintf(buf, sz, "%s/opt-%u", RS_PIN_DIR, p->id);
	} else {
		char tmp[4096], *b, *dot;

		snprintf(tmp, sizeof(tmp), "%s", oa->obj);
		b = basename(tmp);
		dot = strstr(b, ".bpf.o") ?: strrchr(b, '.');
		if (dot)
			*dot = 0;
		snprintf(buf, sz, "%s.opt.bpf.o", b);
	}
}

static void report(const struct opt_args *oa, const struct rs_prog *orig,
		   const struct rs_opt_result *res, double opt_ms, double load_ms,
		   const char *out, bool obj_loads)
{
	if (json_output) {
		json_print(json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:f,s:f,s:{s:b},s:b,s:s?}",
			"program", orig->name, "output", out,
			"kind", oa->is_prog ? "pin" : "object",
			"insns_original", (json_int_t)orig->insn_cnt,
			"insns_optimized", (json_int_t)res->prog.insn_cnt,
			"remarks", (json_int_t)res->remarks.cnt,
			"guarded_maps", (json_int_t)res->guarded_maps,
			"optimizer_ms", opt_ms, "load_ms", load_ms,
			"verify", "accepted", 1, "object_loads", obj_loads, "log", oa->log));
		return;
	}
	printf("%s: %zu -> %zu insns, %zu remarks, %u guarded maps; optimizer %.2f ms, "
	       "verifier load %.2f ms\nwritten: %s%s\n", orig->name, orig->insn_cnt,
	       res->prog.insn_cnt, res->remarks.cnt, res->guarded_maps, opt_ms, load_ms, out,
	       oa->is_prog ? " (pinned)" : obj_loads ? " (libbpf loads it)" : "");
}

static struct rs_oplog *open_log(const struct opt_args *oa)
{
	struct rs_oplog *log = NULL;

	if (!oa->log)
		return NULL;
	if (rs_oplog_open(oa->log, NULL, &log)) {
		p_err("%s: cannot open the optimization log", oa->log);
		return NULL;
	}
	rs_oplog_run(log, oa->argc, oa->argv);
	return log;
}

/*
 * PROG: snapshot, a round of programs/remarks/pass_stats, the live original (its JIT image
 * and verifier-processed instructions) and verify.  `respec optimize` does not time the
 * programs, so it writes no measure record (replay --optimize --log does).
 */
static void log_optimization(struct rs_oplog *log, const struct rs_prog *orig,
			     const struct rs_snapshot *snap, const struct rs_profile *prof,
			     const struct rs_opt_result *res, double opt_ms, int fd, int err,
			     const char *vlog, double load_ms)
{
	struct rs_oplog_remark_opts ro = { .sz = sizeof(ro), .snap = snap, .prof = prof,
					   .optimizer_ms = opt_ms };
	int ofd, e;

	if (!log)
		return;
	e = rs_oplog_snapshot(log, orig, snap, prof);
	if (!e && res)
		e = rs_oplog_remarks(log, res, orig, &ro);
	ofd = bpf_prog_get_fd_by_id(orig->id);
	if (!e && ofd >= 0)
		e = rs_oplog_program(log, orig, orig, "before", ofd);
	if (ofd >= 0)
		close(ofd);
	if (!e)
		e = rs_oplog_verify(log, orig, res ? &res->prog : NULL, fd, err, vlog, load_ms);
	if (e)
		p_err("prog %u (%s): writing the optimization log: %s", orig->id, orig->name,
		      rs_strerror(e));
}

static int optimize_obj(const struct opt_args *oa)
{
	struct rs_offline_opts oo = { .sz = sizeof(oo), .prog_name = oa->prog_name };
	const struct rs_offline_info *in;
	struct rs_scenario *sc = NULL;
	struct rs_offline *off = NULL;
	struct rs_oplog *log = NULL;
	struct rs_trace train = {};
	const uint8_t **data = NULL;
	uint8_t *gv = NULL;
	char out[4096];
	bool loads = false;
	int err, ret = RS_EXIT_FAIL;

	if (access(oa->obj, R_OK)) {
		p_err("%s: %s", oa->obj, strerror(errno));
		return RS_EXIT_FAIL;
	}
	if (rs_scenario_load(oa->scenario, &sc))
		goto out;
	if (oa->train && rs_trace_load_pcap(oa->train, &train))
		goto out;
	oo.scenario = sc;
	oo.train = oa->train ? &train : NULL;
	err = rs_offline_open(oa->obj, &oo, &off);
	if (err) {
		p_err("%s: %s", oa->obj, rs_strerror(err));
		goto out;
	}
	in = rs_offline_get_info(off);
	log = open_log(oa);
	err = rs_offline_specialize(off);
	if (log && in->snap && rs_offline_oplog(off, log))
		p_err("%s: the optimization log is incomplete", oa->log);
	if (err) {
		if (err == -RS_ERR_VERIFIER && verbose && in->verifier_log)
			fprintf(stderr, "%s", in->verifier_log);
		p_err("%s: %s%s", oa->obj, err == -RS_ERR_VERIFIER ?
		      "the verifier rejected the optimized program, nothing written" :
		      rs_strerror(err), err == -RS_ERR_VERIFIER && !oa->log && !verbose ?
		      " (--log or -v keeps the verifier log)" : "");
		goto out;
	}
	default_out(oa, in->orig, out, sizeof(out));
	data = calloc(in->res->prog.map_cnt + 1, sizeof(*data));
	gv = guard_contents(&in->res->prog, in->snap);
	if (!data || !gv)
		goto out;
	data[in->res->prog.map_cnt - 1] = gv;
	{
		size_t mc = in->res->prog.map_cnt + 1;
		const char **names = calloc(mc, sizeof(*names));
		uint32_t *kt = calloc(mc, sizeof(*kt)), *vt = calloc(mc, sizeof(*vt));
		struct rs_elf_write_opts wo = { .sz = sizeof(wo), .snap = in->snap,
						.map_data = data };
		size_t i;

		if (!names || !kt || !vt) {
			free(names);
			free(kt);
			free(vt);
			goto out;
		}
		for (i = 0; i < in->orig->map_cnt; i++) {
			names[i] = in->map_names[i];
			kt[i] = in->key_type_ids[i];
			vt[i] = in->value_type_ids[i];
		}
		wo.map_names = names;
		wo.btf = in->btf;
		wo.key_type_ids = kt;
		wo.value_type_ids = vt;
		err = rs_elf_write(&in->res->prog, out, &wo);
		free(names);
		free(kt);
		free(vt);
	}
	if (err) {
		p_err("%s: writing %s: %s", oa->obj, out, rs_strerror(err));
		goto out;
	}
	/* the object must open and load with libbpf, maps filled from the scenario */
	{
		struct rs_replay_open_opts ro = { .sz = sizeof(ro), .scenario = sc };
		struct rs_replay_prog *rp = NULL;

		err = rs_replay_open_object(out, &ro, &rp);
		rs_replay_close(rp);
		if (err) {
			p_err("%s: written, but libbpf cannot load it: %s", out, rs_strerror(err));
			goto out;
		}
		loads = true;
	}
	report(oa, in->orig, in->res, in->optimizer_ms, in->load_ms, out, loads);
	ret = RS_EXIT_OK;
out:
	free(gv);
	free(data);
	rs_oplog_close(log);
	rs_offline_close(off);
	rs_trace_free(&train);
	if (sc)
		rs_scenario_free(sc);
	return ret;
}

static int profile_live(const struct opt_args *oa, uint32_t id, struct rs_profile *prof,
			bool *has)
{
	struct rs_profiler_opts po = { .sz = sizeof(po), .sample_rate = 1 };
	struct rs_replay_opts ro = { .sz = sizeof(ro), .max_divergences = 1 };
	struct rs_replay_open_opts oo = { .sz = sizeof(oo) };
	struct rs_replay_prog *a = NULL, *b = NULL;
	struct rs_replay_result rr = {};
	struct rs_profiler *pr = NULL;
	struct rs_trace tr = {};
	int err;

	*has = false;
	if (!oa->train)
		return 0;
	err = rs_trace_load_pcap(oa->train, &tr);
	if (!err)
		err = rs_replay_open_id(id, &oo, &a);
	if (!err)
		err = rs_profiler_replay_open(a, &po, &pr, &b, NULL);
	if (!err)
		err = rs_replay_compare(b, NULL, &tr, &ro, &rr);
	if (!err)
		err = rs_profiler_collect(pr, b, 16, prof);
	*has = !err;
	rs_replay_result_free(&rr);
	rs_profiler_free(pr);
	rs_replay_close(b);
	rs_replay_close(a);
	rs_trace_free(&tr);
	return err;
}

static int optimize_prog(const struct opt_args *oa)
{
	struct rs_guard_opts go = { .sz = sizeof(go), .pin_dir = RS_GUARD_PIN_DIR };
	struct rs_opt_opts opt = { .sz = sizeof(opt) };
	struct rs_lift_report rep = {};
	struct rs_snapshot snap = {};
	struct rs_opt_result res = {};
	struct rs_profile prof = {};
	struct rs_guard *g = NULL;
	struct rs_oplog *log = NULL;
	struct rs_prog orig;
	char out[4096], *vlog = NULL, buf[128];
	bool has_prof = false, has_snap = false, has_res = false;
	double t0, opt_ms = 0, load_ms = 0;
	int err, fd = -1, ret = RS_EXIT_FAIL;
	uint32_t id;

	rs_prog_init(&orig);
	err = rs_prog_spec_resolve(&oa->spec, &id);
	if (err) {
		p_err("%s: %s", rs_prog_spec_str(&oa->spec, buf, sizeof(buf)), rs_strerror(err));
		return RS_EXIT_FAIL;
	}
	err = rs_fetch_original(id, &orig, &rep);
	if (err) {
		p_err("prog %u: no original bytecode: %s%s%s", id, rs_strerror(err),
		      *rep.msg ? ": " : "", rep.msg);
		goto out;
	}
	if (!orig.id)
		orig.id = id;
	log = open_log(oa);
	if (profile_live(oa, id, &prof, &has_prof)) {
		p_err("prog %u: profiling on %s failed", id, oa->train);
		goto out;
	}
	/* pinned: the watcher must outlive this command, the pinned program relies on it */
	err = rs_guard_open(&go, &g);
	if (err) {
		p_err("prog %u: the guard watcher did not start: %s", id, rs_strerror(err));
		goto out;
	}
	{
		RS_OPTS(rs_snapshot_opts, so, .guard = g, .exclude_progs = &id, .exclude_cnt = 1);

		err = rs_snapshot_take_opts(&orig, NULL, &so, &snap);
	}
	if (err) {
		p_err("prog %u: snapshot of its maps failed: %s", id, rs_strerror(err));
		goto out;
	}
	has_snap = true;
	err = rs_guard_map_ref(g, &opt.guard_map);
	if (err)
		goto out;
	t0 = now_ms();
	err = rs_optimize(&orig, &snap, has_prof ? &prof : NULL, &opt, &res);
	opt_ms = now_ms() - t0;
	if (err) {
		p_err("prog %u (%s): the optimizer failed: %s", id, orig.name, rs_strerror(err));
		goto out;
	}
	has_res = true;
	t0 = now_ms();
	fd = rs_prog_load(&res.prog, NULL);
	load_ms = now_ms() - t0;
	if (fd < 0) {
		struct rs_load_opts lo = { .sz = sizeof(lo), .log_size = 4 << 20, .log_level = 1 };

		vlog = calloc(1, lo.log_size);
		lo.log_buf = vlog;
		if (vlog)
			rs_prog_load(&res.prog, &lo);
		log_optimization(log, &orig, &snap, has_prof ? &prof : NULL, &res, opt_ms, -1,
				 fd, vlog, load_ms);
		if (verbose && vlog)
			fprintf(stderr, "%s", vlog);
		p_err("prog %u (%s): the verifier rejected the optimized program, the original "
		      "stays", id, orig.name);
		goto out;
	}
	log_optimization(log, &orig, &snap, has_prof ? &prof : NULL, &res, opt_ms, fd, 0, NULL,
			 load_ms);
	default_out(oa, &orig, out, sizeof(out));
	mkdir(RS_PIN_DIR, 0700);
	if (bpf_obj_pin(fd, out)) {
		err = -errno;
		p_err("prog %u: pinning at %s: %s", id, out, rs_strerror(err));
		goto out;
	}
	report(oa, &orig, &res, opt_ms, load_ms, out, false);
	ret = RS_EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	free(vlog);
	rs_oplog_close(log);
	if (has_res)
		rs_opt_result_free(&res);
	if (has_snap)
		rs_snapshot_free(&snap);
	if (has_prof)
		rs_profile_free(&prof);
	rs_guard_close(g);
	rs_prog_free(&orig);
	return ret;
}

int do_optimize(int argc, char **argv)
{
	struct opt_args oa = { .argc = argc, .argv = argv };
	int err;

	if (argc < 1 || !strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h"))
		return argc < 1 ? (optimize_help(), RS_EXIT_USAGE) : optimize_help();
	err = parse_args(argc, argv, &oa);
	if (err)
		return err;
	return oa.is_prog ? optimize_prog(&oa) : optimize_obj(&oa);
}
