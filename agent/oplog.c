// SPDX-License-Identifier: BSD-2-Clause
/*
 * oplog.c - the optimization log writer (DESIGN.md §6, docs/log.md).
 *
 * One JSON object per line, written and flushed at once so that readers (`respec log`) see
 * whole records and a crash leaves at most one truncated line.  Everything a reader needs to
 * render the log later is put in it now: instructions as raw hex, their text, source lines
 * resolved through the program's BTF (which may be gone when the log is read), JIT images.
 * This file touches the live system only to read BTF objects and loaded programs' info.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <jansson.h>

#include "agent/agent.h"
#include "optimizer/optimizer.h"

#define OPLOG_MAX_VLOG	(64 * 1024)	/* verifier log text kept per failed verify */
#define OPLOG_BTF_CACHE	8

struct btf_ent {
	uint32_t id;
	struct btf *btf;
};

struct rs_oplog {
	FILE *f;
	bool own;
	char path[4096];
	char run[48];
	uint64_t seq;
	uint32_t round;
	const struct btf *user_btf;
	struct btf_ent cache[OPLOG_BTF_CACHE];
	size_t cache_cnt;
};

/* ---- helpers --------------------------------------------------------------------------- */

static void now_str(char *buf, size_t sz)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, sz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
		 (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, (int)(ts.tv_nsec / 1000000) % 1000);
}

static json_t *hex_json(const void *data, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = data;
	json_t *v;
	char *s;
	size_t i;

	s = malloc(2 * len + 1);
	if (!s)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = digits[b[i] >> 4];
		s[2 * i + 1] = digits[b[i] & 15];
	}
	s[2 * len] = 0;
	v = json_string(s);
	free(s);
	return v;
}

static const char *src_name(enum rs_prog_source s)
{
	return rs_prog_source_name(s);
}

static const char *map_type_str(uint32_t type)
{
	const char *s = libbpf_bpf_map_type_str(type);

	return s ? s : "unknown";
}

static json_t *prog_ident(const struct rs_prog *p)
{
	if (!p)
		return json_null();
	return json_pack("{s:I, s:s, s:o, s:s, s:s}", "id", (json_int_t)p->id, "name", p->name,
			 "tag", hex_json(p->tag, sizeof(p->tag)), "source", src_name(p->source),
			 "type", rs_prog_type_name(p->type));
}

/* Fill the common fields, write one line, flush; takes ownership of rec. */
static int emit(struct rs_oplog *log, const char *kind, json_t *rec)
{
	char ts[64], *line;
	int err = 0;

	if (!rec)
		return -ENOMEM;
	now_str(ts, sizeof(ts));
	json_object_set_new(rec, "v", json_integer(1));
	json_object_set_new(rec, "kind", json_string(kind));
	json_object_set_new(rec, "time", json_string(ts));
	json_object_set_new(rec, "run", json_string(log->run));
	json_object_set_new(rec, "seq", json_integer((json_int_t)log->seq++));
	line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(rec);
	if (!line)
		return -ENOMEM;
	if (fprintf(log->f, "%s\n", line) < 0 || fflush(log->f))
		err = -errno ? -errno : -EIO;
	free(line);
	if (err)
		rs_warn("oplog %s: write: %s", log->path, rs_strerror(err));
	return err;
}

/* ---- BTF and source lines -------------------------------------------------------------- */

static const struct btf *prog_btf(struct rs_oplog *log, const struct rs_prog *p)
{
	struct btf *btf;
	size_t i;

	if (!p->btf_id)
		return log->user_btf;
	for (i = 0; i < log->cache_cnt; i++)
		if (log->cache[i].id == p->btf_id)
			return log->cache[i].btf;
	btf = btf__load_from_kernel_by_id(p->btf_id);
	if (!btf) {
		rs_info("prog %u (%s): BTF %u: %s; source lines not resolved", p->id, p->name,
			p->btf_id, rs_strerror(-errno));
		return log->user_btf;
	}
	if (log->cache_cnt == OPLOG_BTF_CACHE) {
		btf__free(log->cache[0].btf);
		memmove(log->cache, log->cache + 1, (OPLOG_BTF_CACHE - 1) * sizeof(log->cache[0]));
		log->cache_cnt--;
	}
	log->cache[log->cache_cnt].id = p->btf_id;
	log->cache[log->cache_cnt++].btf = btf;
	return btf;
}

/* Line record in effect at instruction idx: the last one with insn_off <= idx and a line. */
static const struct rs_line_info *line_at(const struct rs_prog *p, long idx)
{
	size_t lo = 0, hi = p->line_info_cnt, mid;

	if (idx < 0 || !p->line_info_cnt)
		return NULL;
	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (p->line_info[mid].insn_off <= (uint32_t)idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* line 0 marks compiler-made code: the nearest real line before it (else after) */
	for (mid = lo; mid > 0; mid--)
		if (p->line_info[mid - 1].line_col >> 10)
			return &p->line_info[mid - 1];
	for (mid = lo; mid < p->line_info_cnt; mid++)
		if (p->line_info[mid].line_col >> 10)
			return &p->line_info[mid];
	return lo ? &p->line_info[lo - 1] : NULL;
}

static const char *btf_str(const struct btf *btf, uint32_t off)
{
	const char *s = btf ? btf__name_by_offset(btf, off) : NULL;

	return s ? s : "";
}

static const char *func_name(const struct btf *btf, const struct rs_prog *p, long idx)
{
	const struct btf_type *t;
	const char *name = NULL;
	size_t i;

	for (i = 0; btf && i < p->func_info_cnt; i++) {
		if ((long)p->func_info[i].insn_off > idx)
			break;
		t = btf__type_by_id(btf, p->func_info[i].type_id);
		name = t ? btf__name_by_offset(btf, t->name_off) : NULL;
	}
	return name;
}

static json_t *line_json(const struct btf *btf, const struct rs_line_info *li)
{
	const char *file = btf_str(btf, li->file_name_off), *slash = strrchr(file, '/');

	return json_pack("{s:I, s:s, s:s, s:I, s:I, s:s}", "insn", (json_int_t)li->insn_off,
			 "file", slash ? slash + 1 : file, "path", file,
			 "line", (json_int_t)(li->line_col >> 10),
			 "col", (json_int_t)(li->line_col & 0x3ff), "src",
			 btf_str(btf, li->line_off));
}

static json_t *insns_hex(const struct bpf_insn *insns, size_t cnt)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a && i < cnt; i++)
		json_array_append_new(a, hex_json(&insns[i], sizeof(insns[i])));
	return a;
}

static json_t *insns_text(const struct bpf_insn *insns, size_t cnt)
{
	json_t *a = json_array();
	char buf[256];
	size_t i;

	for (i = 0; a && i < cnt; i++) {
		if (i && rs_insn_is_ldimm64(&insns[i - 1])) {
			json_array_append_new(a, json_string(""));
			continue;
		}
		rs_insn_snprint(buf, sizeof(buf), insns, cnt, i);
		json_array_append_new(a, json_string(buf));
	}
	return a;
}

static json_t *insn_block(const struct bpf_insn *insns, size_t cnt)
{
	if (!insns || !cnt)
		return json_null();
	return json_pack("{s:o, s:o}", "insns", insns_hex(insns, cnt), "text",
			 insns_text(insns, cnt));
}

static json_t *map_json(const struct rs_map_ref *m, size_t idx)
{
	return json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I}", "idx", (json_int_t)idx,
			 "id", (json_int_t)m->id, "name", m->name, "type",
			 map_type_str(m->type), "key_size", (json_int_t)m->key_size,
			 "value_size", (json_int_t)m->value_size, "max_entries",
			 (json_int_t)m->max_entries, "flags", (json_int_t)m->flags);
}

/* ---- open / close / run ---------------------------------------------------------------- */

int rs_oplog_open(const char *path, const struct rs_oplog_opts *opts, struct rs_oplog **out)
{
	bool trunc = RS_OPTS_GET(opts, truncate, false);
	struct rs_oplog *log;
	int err;

	if (!path || !out)
		return -EINVAL;
	log = calloc(1, sizeof(*log));
	if (!log)
		return -ENOMEM;
	snprintf(log->path, sizeof(log->path), "%s", path);
	if (!strcmp(path, "-")) {
		log->f = stdout;
	} else {
		log->f = fopen(path, trunc ? "we" : "ae");
		if (!log->f) {
			err = -errno;
			rs_warn("oplog %s: %s", path, rs_strerror(err));
			free(log);
			return err;
		}
		log->own = true;
	}
	snprintf(log->run, sizeof(log->run), "%ld-%d", (long)time(NULL), (int)getpid());
	*out = log;
	return 0;
}

void rs_oplog_close(struct rs_oplog *log)
{
	size_t i;

	if (!log)
		return;
	for (i = 0; i < log->cache_cnt; i++)
		btf__free(log->cache[i].btf);
	if (log->own)
		fclose(log->f);
	else
		fflush(log->f);
	free(log);
}

void rs_oplog_set_btf(struct rs_oplog *log, const struct btf *btf)
{
	if (log)
		log->user_btf = btf;
}

int rs_oplog_run(struct rs_oplog *log, int argc, char **argv)
{
	struct utsname u;
	char host[256] = "";
	json_t *cmd;
	int i;

	if (!log)
		return -EINVAL;
	cmd = json_array();
	for (i = 0; cmd && i < argc; i++)
		json_array_append_new(cmd, json_string(argv[i]));
	if (uname(&u))
		memset(&u, 0, sizeof(u));
	gethostname(host, sizeof(host) - 1);
	return emit(log, "run", json_pack("{s:s, s:s, s:o, s:s, s:s, s:I}", "tool", "respec",
					  "version", RS_VERSION, "command", cmd, "host", host,
					  "kernel", u.release, "pid", (json_int_t)getpid()));
}

/* ---- snapshot / profile ---------------------------------------------------------------- */

static json_t *ext_json(uint32_t ext)
{
	json_t *a = json_array();

	if (ext & RS_EXT_UPDATES)
		json_array_append_new(a, json_string("updates"));
	if (ext & RS_EXT_STORES)
		json_array_append_new(a, json_string("stores"));
	if (ext & RS_EXT_UNKNOWN)
		json_array_append_new(a, json_string("unknown"));
	return a;
}

static const char *map_name(const struct rs_prog *p, long idx)
{
	return idx >= 0 && (size_t)idx < p->map_cnt ? p->maps[idx].name : "";
}

static json_t *profile_json(const struct rs_prog *p, const struct rs_profile *prof)
{
	json_t *sites = json_array(), *br = json_array();
	size_t i, k;

	for (i = 0; i < prof->site_cnt; i++) {
		const struct rs_site_profile *s = &prof->sites[i];
		json_t *keys = json_array();

		for (k = 0; k < s->key_cnt; k++)
			json_array_append_new(keys, json_pack("{s:o, s:I, s:f}", "key",
				hex_json(s->keys + k * s->key_size, s->key_size), "count",
				(json_int_t)s->counts[k], "share", rs_site_key_share(s, k)));
		json_array_append_new(sites, json_pack("{s:I, s:I, s:s, s:I, s:o}", "insn",
			(json_int_t)s->insn, "map_idx", (json_int_t)s->map_idx, "map",
			map_name(p, s->map_idx), "lookups", (json_int_t)s->lookups, "keys", keys));
	}
	for (i = 0; i < prof->branch_cnt; i++)
		json_array_append_new(br, json_pack("{s:I, s:I, s:I}", "insn",
			(json_int_t)prof->branches[i].insn, "taken",
			(json_int_t)prof->branches[i].taken, "not_taken",
			(json_int_t)prof->branches[i].not_taken));
	return json_pack("{s:o, s:I, s:I, s:f, s:f, s:s, s:o, s:o}", "prog", prog_ident(p),
			 "packets", (json_int_t)prof->packets, "sample_rate",
			 (json_int_t)prof->sample_rate, "window_s", prof->window_s,
			 "ns_per_packet", prof->ns_per_packet, "ns_source", prof->ns_source,
			 "sites", sites, "branches", br);
}

int rs_oplog_snapshot(struct rs_oplog *log, const struct rs_prog *p,
		      const struct rs_snapshot *snap, const struct rs_profile *prof)
{
	json_t *maps;
	size_t i;
	int err = 0;

	if (!log || !p)
		return -EINVAL;
	if (snap) {
		maps = json_array();
		for (i = 0; maps && i < snap->map_cnt; i++) {
			const struct rs_map_snapshot *m = &snap->maps[i];
			json_t *o = json_pack("{s:I, s:I, s:s, s:s, s:I, s:I, s:I, s:I, s:I}",
				"idx", (json_int_t)m->map_idx, "id", (json_int_t)m->id, "name",
				map_name(p, m->map_idx), "type", map_type_str(m->type),
				"key_size", (json_int_t)m->key_size, "value_size",
				(json_int_t)m->value_size, "max_entries", (json_int_t)m->max_entries,
				"flags", (json_int_t)m->map_flags, "entries", (json_int_t)m->cnt);

			json_object_set_new(o, "frozen", json_boolean(m->frozen));
			json_object_set_new(o, "complete", json_boolean(m->complete));
			json_object_set_new(o, "watched", json_boolean(m->watched));
			if (m->watched) {
				json_object_set_new(o, "guard_slot", json_integer(m->guard_slot));
				json_object_set_new(o, "generation",
						    json_integer((json_int_t)m->generation));
			}
			json_object_set_new(o, "ext_writers", ext_json(m->ext_writers));
			json_object_set_new(o, "updates_per_s", json_real(m->updates_per_s));
			json_array_append_new(maps, o);
		}
		err = emit(log, "snapshot", json_pack("{s:o, s:o}", "prog", prog_ident(p),
						      "maps", maps));
		if (err)
			return err;
	}
	if (prof)
		err = emit(log, "profile", profile_json(p, prof));
	return err;
}

/* ---- program records ------------------------------------------------------------------- */

/* JIT image, JIT addresses of the line records, id and processed insns of a loaded program. */
static void add_loaded_info(json_t *rec, const struct rs_prog *p, int fd)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	struct rs_jit_image img;
	json_t *j, *a;
	char addr[32];
	size_t i;
	int err;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		rs_info("prog %s: program info: %s", p->name, rs_strerror(-errno));
		return;
	}
	json_object_set_new(rec, "loaded_id", json_integer(info.id));
	json_object_set_new(rec, "verified_insns", json_integer(info.verified_insns));
	json_object_set_new(rec, "xlated_insns",
			    json_integer(info.xlated_prog_len / sizeof(struct bpf_insn)));
	err = rs_fetch_jited_fd(fd, &img);
	if (err) {
		if (err != -ENODATA)
			rs_info("prog %s: JIT image: %s", p->name, rs_strerror(err));
		return;
	}
	j = json_object();
	a = json_array();
	snprintf(addr, sizeof(addr), "0x%llx",
		 img.ksym_cnt ? (unsigned long long)img.ksyms[0] : 0ULL);
	json_object_set_new(j, "base", json_string(addr));
	json_object_set_new(j, "image", hex_json(img.image, img.len));
	for (i = 0; img.ksym_cnt && i < img.line_cnt; i++) {
		snprintf(addr, sizeof(addr), "0x%llx", (unsigned long long)img.line_addrs[i]);
		json_array_append_new(a, json_string(addr));
	}
	json_object_set_new(j, "line_addrs", a);
	json_object_set_new(rec, "jit", j);
	rs_jit_image_free(&img);
}

static json_t *program_json(struct rs_oplog *log, const struct rs_prog *p,
			    const struct rs_prog *ident, const char *role)
{
	const struct btf *btf = prog_btf(log, p);
	json_t *maps = json_array(), *funcs = json_array(), *lines = json_array(), *rec;
	const struct btf_type *t;
	size_t i;

	for (i = 0; i < p->map_cnt; i++)
		json_array_append_new(maps, map_json(&p->maps[i], i));
	for (i = 0; i < p->func_info_cnt; i++) {
		t = btf ? btf__type_by_id(btf, p->func_info[i].type_id) : NULL;
		json_array_append_new(funcs, json_pack("{s:I, s:s}", "insn",
			(json_int_t)p->func_info[i].insn_off, "name",
			t ? btf_str(btf, t->name_off) : ""));
	}
	for (i = 0; btf && i < p->line_info_cnt; i++)
		json_array_append_new(lines, line_json(btf, &p->line_info[i]));
	rec = json_pack("{s:o, s:s, s:I, s:s, s:s, s:I, s:o, s:o, s:o, s:o, s:o}", "prog",
			prog_ident(ident ? ident : p), "role", role, "round",
			(json_int_t)log->round, "name", p->name, "type", rs_prog_type_name(p->type),
			"insn_cnt", (json_int_t)p->insn_cnt, "insns",
			insns_hex(p->insns, p->insn_cnt), "text", insns_text(p->insns, p->insn_cnt),
			"maps", maps, "funcs", funcs, "lines", lines);
	if (rec && !btf && p->line_info_cnt)
		json_object_set_new(rec, "lines_unresolved", json_string("no BTF"));
	return rec;
}

int rs_oplog_program(struct rs_oplog *log, const struct rs_prog *p, const struct rs_prog *ident,
		     const char *role, int prog_fd)
{
	json_t *rec;

	if (!log || !p || !role)
		return -EINVAL;
	rec = program_json(log, p, ident, role);
	if (rec && prog_fd >= 0)
		add_loaded_info(rec, p, prog_fd);
	return emit(log, "program", rec);
}

/* ---- remarks --------------------------------------------------------------------------- */

static const char *remark_type(enum rs_remark_kind k)
{
	switch (k) {
	case RS_REMARK_APPLIED:		return "passed";
	case RS_REMARK_MISSED:		return "missed";
	default:			return "analysis";
	}
}

/* "after" regions of an optimized program: guard prologue, specialized body, ORIG copy. */
static bool same_insn(const struct bpf_insn *a, const struct bpf_insn *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static json_t *regions_json(const struct rs_prog *orig, const struct rs_prog *opt)
{
	size_t main_len = orig->insn_cnt, i, k, *starts = NULL, n = 0;
	long orig_at = -1, guard_end = 0;

	if (!rs_subprog_starts(orig->insns, orig->insn_cnt, orig->func_info,
			       orig->func_info_cnt, &starts, &n) && n > 1)
		main_len = starts[1];
	free(starts);
	/* the prologue's jumps go to ORIG, a byte-for-byte copy of the original main body */
	for (i = 0; i < opt->insn_cnt && i < 256; i++) {
		long t;
		bool match = true;

		if (!rs_insn_is_cond_jmp(&opt->insns[i]))
			continue;
		t = rs_insn_target(opt->insns, i);
		if (t < 0 || (size_t)t + main_len > opt->insn_cnt)
			break;
		for (k = 0; k < main_len && match; k++)
			match = same_insn(&opt->insns[t + k], &orig->insns[k]) ||
				rs_insn_is_pseudo_call(&orig->insns[k]);
		if (!match)
			break;
		if (orig_at >= 0 && t != orig_at)
			break;
		orig_at = t;
		guard_end = (long)i + 1;
	}
	if (orig_at < 0)
		return json_null();
	return json_pack("{s:[I,I], s:[I,I], s:[I,I], s:[I,I]}",
			 "guard", (json_int_t)0, (json_int_t)guard_end,
			 "spec", (json_int_t)guard_end, (json_int_t)orig_at,
			 "orig", (json_int_t)orig_at, (json_int_t)(orig_at + (long)main_len),
			 "subprogs", (json_int_t)(orig_at + (long)main_len),
			 (json_int_t)opt->insn_cnt);
}

static json_t *site_json(struct rs_oplog *log, const struct rs_prog *orig,
			 const struct rs_remark *rm)
{
	const struct btf *btf;
	const struct rs_line_info *li;
	const char *fn;
	json_t *s;

	s = json_pack("{s:I, s:I}", "orig_insn", (json_int_t)rm->orig_insn, "new_insn",
		      (json_int_t)rm->new_insn);
	if (!s || rm->orig_insn < 0)
		return s;
	btf = prog_btf(log, orig);
	li = line_at(orig, rm->orig_insn);
	if (btf && li) {
		json_t *l = line_json(btf, li);

		json_object_update(s, l);
		json_object_del(s, "insn");
		json_object_set_new(s, "line_insn", json_integer(li->insn_off));
		json_decref(l);
	}
	fn = func_name(btf, orig, rm->orig_insn);
	json_object_set_new(s, "func", json_string(fn ? fn : orig->name));
	return s;
}

static const struct rs_site_profile *site_prof(const struct rs_profile *prof, long insn)
{
	size_t i;

	for (i = 0; prof && insn >= 0 && i < prof->site_cnt; i++)
		if (prof->sites[i].insn == (uint32_t)insn)
			return &prof->sites[i];
	return NULL;
}

static json_t *assumption_json(const struct rs_prog *orig, const struct rs_remark *rm,
			       const struct rs_oplog_remark_opts *opts)
{
	const struct rs_snapshot *snap = RS_OPTS_GET(opts, snap, NULL);
	const struct rs_profile *prof = RS_OPTS_GET(opts, prof, NULL);
	const struct rs_site_profile *sp = site_prof(prof, rm->orig_insn);
	json_t *a, *keys = json_array();
	size_t k;

	a = json_pack("{s:s}", "text", rm->assumption);
	if (!a)
		return NULL;
	if (rm->map_idx >= 0 && (size_t)rm->map_idx < orig->map_cnt) {
		json_t *m = json_pack("{s:i, s:I, s:s}", "idx", rm->map_idx, "id",
				      (json_int_t)orig->maps[rm->map_idx].id, "name",
				      orig->maps[rm->map_idx].name);

		if (snap && (size_t)rm->map_idx < snap->map_cnt)
			json_object_set_new(m, "entries",
					    json_integer((json_int_t)snap->maps[rm->map_idx].cnt));
		json_object_set_new(a, "map", m);
	} else {
		json_object_set_new(a, "map", json_null());
	}
	for (k = 0; sp && k < sp->key_cnt; k++)
		json_array_append_new(keys, json_pack("{s:o, s:I, s:f}", "key",
			hex_json(sp->keys + k * sp->key_size, sp->key_size), "count",
			(json_int_t)sp->counts[k], "share", rs_site_key_share(sp, k)));
	json_object_set_new(a, "keys", keys);
	if (rm->guard_slot >= 0)
		json_object_set_new(a, "generation", json_integer((json_int_t)rm->guard_gen));
	return a;
}

int rs_oplog_remarks(struct rs_oplog *log, const struct rs_opt_result *res,
		     const struct rs_prog *orig, const struct rs_oplog_remark_opts *opts)
{
	double ms = RS_OPTS_GET(opts, optimizer_ms, 0.0);
	json_t *rec;
	size_t i;
	int err;

	if (!log || !res || !orig)
		return -EINVAL;
	log->round++;
	if (!RS_OPTS_GET(opts, no_programs, false)) {
		err = rs_oplog_program(log, orig, orig, "before", -1);
		if (err)
			return err;
		rec = program_json(log, &res->prog, orig, "after");
		if (rec)
			json_object_set_new(rec, "regions", regions_json(orig, &res->prog));
		err = emit(log, "program", rec);
		if (err)
			return err;
	}
	for (i = 0; i < res->remarks.cnt; i++) {
		const struct rs_remark *rm = &res->remarks.v[i];
		json_t *guard = json_null();

		if (rm->guard_slot >= 0)
			guard = json_pack("{s:i, s:I, s:s}", "slot", rm->guard_slot,
					  "generation", (json_int_t)rm->guard_gen, "map",
					  res->prog.map_cnt ?
					  res->prog.maps[res->prog.map_cnt - 1].name : "");
		rec = json_pack("{s:o, s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:n}",
				"prog", prog_ident(orig), "round", (json_int_t)log->round,
				"pass", rm->pass, "type", remark_type(rm->kind),
				"site", site_json(log, orig, rm), "msg", rm->msg,
				"assumption", assumption_json(orig, rm, opts), "guard", guard,
				"before", insn_block(rm->before, rm->before_cnt),
				"after", insn_block(rm->after, rm->after_cnt), "gain");
		err = emit(log, "remark", rec);
		if (err)
			return err;
	}
	for (i = 0; i < res->stat_cnt; i++) {
		const struct rs_pass_stats *s = &res->stats[i];

		err = emit(log, "pass_stats", json_pack("{s:o, s:I, s:s, s:I, s:I, s:I, s:I}",
			"prog", prog_ident(orig), "round", (json_int_t)log->round, "pass", s->pass,
			"applied", (json_int_t)s->applied, "missed", (json_int_t)s->missed,
			"insns_before", (json_int_t)s->insns_before, "insns_after",
			(json_int_t)s->insns_after));
		if (err)
			return err;
	}
	return emit(log, "pass_stats", json_pack("{s:o, s:I, s:s, s:I, s:I, s:I, s:I, s:f}",
		"prog", prog_ident(orig), "round", (json_int_t)log->round, "pass", "*",
		"remarks", (json_int_t)res->remarks.cnt, "guarded_maps",
		(json_int_t)res->guarded_maps, "insns_before", (json_int_t)orig->insn_cnt,
		"insns_after", (json_int_t)res->prog.insn_cnt, "optimizer_ms", ms));
}

/* ---- verify / measure / swap / rollback / restore -------------------------------------- */

/* "processed N insns" of a verifier log, -1 when absent. */
static long processed_insns(const char *vlog)
{
	const char *s = vlog ? strstr(vlog, "processed ") : NULL;
	long n;

	if (!s || sscanf(s, "processed %ld insns", &n) != 1)
		return -1;
	return n;
}

int rs_oplog_verify(struct rs_oplog *log, const struct rs_prog *orig, const struct rs_prog *opt,
		    int prog_fd, int err, const char *verifier_log, double load_ms)
{
	bool ok = prog_fd >= 0 && !err;
	json_t *rec;
	long n = processed_insns(verifier_log);
	int ret;

	if (!log || !orig)
		return -EINVAL;
	rec = json_pack("{s:o, s:I, s:b, s:f}", "prog", prog_ident(orig), "round",
			(json_int_t)log->round, "ok", ok, "load_ms", load_ms);
	if (!rec)
		return -ENOMEM;
	if (!ok)
		json_object_set_new(rec, "error", json_string(rs_strerror(err ? err : prog_fd)));
	if (ok) {
		struct bpf_prog_info info;
		uint32_t len = sizeof(info);

		memset(&info, 0, sizeof(info));
		if (!bpf_obj_get_info_by_fd(prog_fd, &info, &len)) {
			json_object_set_new(rec, "new_id", json_integer(info.id));
			n = info.verified_insns;
		}
	}
	json_object_set_new(rec, "verified_insns", json_integer(n));
	if (verifier_log && *verifier_log) {
		size_t l = strlen(verifier_log);
		const char *tail = l > OPLOG_MAX_VLOG ? verifier_log + l - OPLOG_MAX_VLOG :
			verifier_log;

		/* the whole text (tail) on failure, the statistics lines on success */
		if (ok) {
			const char *st = strstr(verifier_log, "processed ");

			tail = st ? st : tail;
		}
		json_object_set_new(rec, "log", json_string(tail));
	}
	ret = emit(log, "verify", rec);
	if (!ret && ok && opt)
		ret = rs_oplog_program(log, opt, orig, "after", prog_fd);
	return ret;
}

int rs_oplog_measure(struct rs_oplog *log, const struct rs_prog *orig,
		     const struct rs_oplog_measure *m)
{
	json_t *rec;
	double b, a;

	if (!log || !m)
		return -EINVAL;
	b = RS_OPTS_GET(m, ns_before, 0.0);
	a = RS_OPTS_GET(m, ns_after, 0.0);
	rec = json_pack("{s:o, s:I, s:s, s:s, s:I, s:f, s:f, s:f, s:I}", "prog",
			prog_ident(orig), "round", (json_int_t)log->round, "what",
			RS_OPTS_GET(m, what, NULL) ? m->what : "replay", "method",
			RS_OPTS_GET(m, method, NULL) ? m->method : "", "packets",
			(json_int_t)RS_OPTS_GET(m, packets, 0), "ns_before", b, "ns_after", a,
			"driver_ns", RS_OPTS_GET(m, driver_ns, 0.0), "divergences",
			(json_int_t)RS_OPTS_GET(m, divergences, -1L));
	if (!rec)
		return -ENOMEM;
	json_object_set_new(rec, "ratio", b > 0 && a > 0 ? json_real(a / b) : json_null());
	if (RS_OPTS_GET(m, pass, NULL))
		json_object_set_new(rec, "pass", json_string(m->pass));
	return emit(log, "measure", rec);
}

static json_t *attach_json(const struct rs_attach_point *pt)
{
	char buf[256];

	if (!pt)
		return json_null();
	return json_pack("{s:s, s:s, s:s, s:s}", "kind", rs_attach_kind_name(pt->kind),
			 "point", rs_attach_point_str(pt, buf, sizeof(buf)), "netns", pt->netns,
			 "ifname", pt->ifname);
}

int rs_oplog_swap(struct rs_oplog *log, const struct rs_prog *orig,
		  const struct rs_attach_point *pt, uint32_t old_id, uint32_t new_id, int err,
		  uint64_t op_ns)
{
	json_t *rec;

	if (!log)
		return -EINVAL;
	rec = json_pack("{s:o, s:I, s:o, s:I, s:I, s:b, s:I}", "prog", prog_ident(orig),
			"round", (json_int_t)log->round, "attach", attach_json(pt), "old_id",
			(json_int_t)old_id, "new_id", (json_int_t)new_id, "ok", !err, "op_ns",
			(json_int_t)op_ns);
	if (rec && err)
		json_object_set_new(rec, "error", json_string(rs_strerror(err)));
	return emit(log, "swap", rec);
}

int rs_oplog_rollback(struct rs_oplog *log, const struct rs_prog *orig,
		      const struct rs_attach_point *pt, uint32_t from_id, uint32_t to_id,
		      const char *reason, int err)
{
	json_t *rec;

	if (!log)
		return -EINVAL;
	rec = json_pack("{s:o, s:I, s:o, s:I, s:I, s:s, s:b}", "prog", prog_ident(orig),
			"round", (json_int_t)log->round, "attach", attach_json(pt), "from_id",
			(json_int_t)from_id, "to_id", (json_int_t)to_id, "reason",
			reason ? reason : "", "ok", !err);
	if (rec && err)
		json_object_set_new(rec, "error", json_string(rs_strerror(err)));
	return emit(log, "rollback", rec);
}

int rs_oplog_restore(struct rs_oplog *log, const struct rs_restore_report *r)
{
	json_t *rec;

	if (!log || !r)
		return -EINVAL;
	rec = json_pack("{s:o, s:s, s:I, s:I, s:I, s:I}", "attach",
			attach_json(r->entry ? &r->entry->pt : NULL), "outcome",
			rs_restore_outcome_name(r->outcome), "orig_id",
			(json_int_t)(r->entry ? r->entry->orig_id : 0), "found_id",
			(json_int_t)r->found_id, "cur_id",
			(json_int_t)(r->entry ? r->entry->cur_id : 0), "op_ns",
			(json_int_t)r->op_ns);
	if (rec && r->err)
		json_object_set_new(rec, "error", json_string(rs_strerror(r->err)));
	return emit(log, "restore", rec);
}
