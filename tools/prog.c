// SPDX-License-Identifier: BSD-2-Clause
/*
 * prog.c - respec prog { list | show | dump | lift | help }: the loaded XDP/TC programs of the
 * host, where they are attached (every network namespace), their code as the kernel runs it
 * (translated, JIT image) and as it was loaded (original: capture or proven lift).
 *
 * Output: text for people, or JSON with -j/-p on stdout; diagnostics on stderr.  A failing
 * command prints exactly one line on stderr (the most specific message: a library's warning
 * naming the entity when there is one) and exits 1; usage errors exit 2.  Nothing here
 * changes the system (the lift's proof loads a temporary program and closes it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/if_link.h>

#include "agent/agent.h"
#include "tools/disasm.h"
#include "tools/main.h"

/* ---- one stderr line per failure ---------------------------------------------------------- */

static rs_log_fn prev_log;
static char first_warn[512];
static char fail_msg[512];
static char **deferred;
static size_t deferred_cnt;

static void cli_log(enum rs_log_level level, const char *fmt, va_list ap)
{
	char buf[1024], **n;
	size_t l;

	if (level != RS_LOG_WARN || verbose) {
		prev_log(level, fmt, ap);
		return;
	}
	vsnprintf(buf, sizeof(buf), fmt, ap);
	l = strlen(buf);
	while (l && buf[l - 1] == '\n')
		buf[--l] = 0;
	if (!first_warn[0])
		snprintf(first_warn, sizeof(first_warn), "%s", buf);
	n = realloc(deferred, (deferred_cnt + 1) * sizeof(*n));
	if (!n)
		return;
	deferred = n;
	deferred[deferred_cnt] = strdup(buf);
	if (deferred[deferred_cnt])
		deferred_cnt++;
}

/* Record the failure; printed once when the command returns. */
static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	if (fail_msg[0])
		return RS_EXIT_FAIL;
	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
	return RS_EXIT_FAIL;
}

static void finish(int rc)
{
	size_t i;

	if (rc == RS_EXIT_FAIL) {
		if (verbose && fail_msg[0])
			p_err("%s", fail_msg);
		else if (first_warn[0])
			p_err("%s", first_warn);
		else
			p_err("%s", fail_msg[0] ? fail_msg : "failed");
	} else if (rc == RS_EXIT_OK) {
		for (i = 0; i < deferred_cnt; i++)
			fprintf(stderr, "%s\n", deferred[i]);
	}
	for (i = 0; i < deferred_cnt; i++)
		free(deferred[i]);
	free(deferred);
	deferred = NULL;
	deferred_cnt = 0;
}

/* ---- program info ------------------------------------------------------------------------ */

static bool type_supported(uint32_t type)
{
	return type == BPF_PROG_TYPE_XDP || type == BPF_PROG_TYPE_SCHED_CLS ||
	       type == BPF_PROG_TYPE_SCHED_ACT;
}

static const char *type_name(uint32_t type)
{
	const char *s = rs_prog_type_name(type);

	return s ? s : "unknown";
}

static void tag_str(const uint8_t *tag, char *buf)
{
	int i;

	for (i = 0; i < BPF_TAG_SIZE; i++)
		sprintf(buf + 2 * i, "%02x", tag[i]);
}

static int prog_info(uint32_t id, struct bpf_prog_info *info)
{
	__u32 len = sizeof(*info);
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return errno == ENOENT ? -RS_ERR_NOT_FOUND : -errno;
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		err = -errno;
	close(fd);
	return err;
}

/* Resolve PROG words, check it is XDP/TC; returns words consumed or an exit code < 0. */
static int get_prog(int argc, char **argv, uint32_t *id, struct bpf_prog_info *info)
{
	struct rs_prog_spec spec;
	char what[64];
	int used, err;

	err = rs_prog_spec_parse(argc, argv, &spec, &used);
	if (err) {
		/* the parser said what is wrong; a usage error is two lines by design */
		err = usage_err("prog", "%s", first_warn[0] ? first_warn : "bad PROG");
		first_warn[0] = 0;
		return -err;
	}
	rs_prog_spec_str(&spec, what, sizeof(what));
	err = rs_prog_spec_resolve(&spec, id);
	if (err)
		return -fail("prog %s: %s", what, rs_strerror(err));
	err = prog_info(*id, info);
	if (err)
		return -fail("prog %u: %s", *id, rs_strerror(err));
	if (!type_supported(info->type))
		return -fail("prog %u (%s): type %s is not XDP or TC", *id, info->name,
			     type_name(info->type));
	return used;
}

/* ---- attach points as text and JSON ----------------------------------------------------- */

static const char *mode_name(uint32_t mode)
{
	switch (mode) {
	case XDP_ATTACHED_DRV:	return "drv";
	case XDP_ATTACHED_SKB:	return "skb";
	case XDP_ATTACHED_HW:	return "hw";
	}
	return NULL;
}

static json_t *ap_json(const struct rs_attach_point *ap)
{
	json_t *o = json_object();

	json_object_set_new(o, "kind", json_string(rs_attach_kind_name(ap->kind)));
	json_object_set_new(o, "netns", json_string(ap->netns));
	json_object_set_new(o, "netns_ino", json_integer(ap->netns_ino));
	if (ap->kind != RS_ATTACH_PROG_ARRAY || ap->ifindex) {
		json_object_set_new(o, "ifname", json_string(ap->ifname));
		json_object_set_new(o, "ifindex", json_integer(ap->ifindex));
	}
	switch (ap->kind) {
	case RS_ATTACH_XDP_LINK:
	case RS_ATTACH_XDP_NETLINK:
		json_object_set_new(o, "mode", json_string(mode_name(ap->xdp_mode) ?: "?"));
		break;
	case RS_ATTACH_TC_CLS:
		json_object_set_new(o, "handle", json_integer(ap->tc_handle));
		json_object_set_new(o, "prio", json_integer(ap->tc_prio));
		/* fall through */
	case RS_ATTACH_TCX_LINK:
	case RS_ATTACH_TCX:
		json_object_set_new(o, "direction", json_string(ap->egress ? "egress" : "ingress"));
		break;
	case RS_ATTACH_PROG_ARRAY:
		json_object_set_new(o, "map_id", json_integer(ap->map_id));
		json_object_set_new(o, "slot", json_integer(ap->slot));
		json_object_set_new(o, "owner_prog_id", json_integer(ap->owner_prog_id));
		break;
	}
	if (ap->link_id)
		json_object_set_new(o, "link_id", json_integer(ap->link_id));
	return o;
}

static json_t *prog_json(const struct bpf_prog_info *info, const struct rs_attach_point *pts,
			 size_t cnt)
{
	json_t *o = json_object(), *arr = json_array();
	char tag[2 * BPF_TAG_SIZE + 1];
	size_t i;

	tag_str(info->tag, tag);
	json_object_set_new(o, "id", json_integer(info->id));
	json_object_set_new(o, "name", json_string(info->name));
	json_object_set_new(o, "type", json_string(type_name(info->type)));
	json_object_set_new(o, "tag", json_string(tag));
	for (i = 0; i < cnt; i++)
		if (pts[i].prog_id == info->id)
			json_array_append_new(arr, ap_json(&pts[i]));
	json_object_set_new(o, "attached", json_boolean(json_array_size(arr) > 0));
	json_object_set_new(o, "attach", arr);
	return o;
}

static void prog_text(const struct bpf_prog_info *info, const struct rs_attach_point *pts,
		      size_t cnt)
{
	char tag[2 * BPF_TAG_SIZE + 1], buf[256];
	size_t i, n = 0;

	tag_str(info->tag, tag);
	for (i = 0; i < cnt; i++)
		n += pts[i].prog_id == info->id;
	printf("%u: %s  name %s  tag %s%s\n", info->id, type_name(info->type), info->name, tag,
	       n ? "" : "  (not attached)");
	for (i = 0; i < cnt; i++)
		if (pts[i].prog_id == info->id)
			printf("\t%s\n", rs_attach_point_str(&pts[i], buf, sizeof(buf)));
}

/* ---- list ------------------------------------------------------------------------------- */

static int do_list(int argc, char **argv)
{
	struct rs_attach_point *pts = NULL;
	size_t cnt = 0;
	json_t *arr = NULL;
	uint32_t id = 0;
	int err;

	if (argc)
		return usage_err("prog", "list: unexpected argument '%s'", argv[0]);
	err = rs_discover(&pts, &cnt);
	if (err)
		return fail("prog list: discovery failed: %s", rs_strerror(err));
	if (json_output)
		arr = json_array();
	while (!(err = bpf_prog_get_next_id(id, &id))) {
		struct bpf_prog_info info;

		if (prog_info(id, &info) || !type_supported(info.type))
			continue;	/* gone meanwhile, or not a data plane program */
		if (arr)
			json_array_append_new(arr, prog_json(&info, pts, cnt));
		else
			prog_text(&info, pts, cnt);
	}
	free(pts);
	if (err != -ENOENT) {
		json_decref(arr);
		return fail("prog list: walking program ids: %s", rs_strerror(err));
	}
	if (arr)
		json_print(arr);
	return RS_EXIT_OK;
}

/* ---- show ------------------------------------------------------------------------------- */

static int do_show(int argc, char **argv)
{
	struct rs_attach_point *pts = NULL;
	struct bpf_prog_info info;
	uint32_t id, eat = 0, flags = 0;
	bool have_attrs;
	size_t cnt = 0;
	int used, err;

	if (!argc)
		return usage_err("prog", "show: expected PROG");
	used = get_prog(argc, argv, &id, &info);
	if (used < 0)
		return -used;
	if (argc > used)
		return usage_err("prog", "show: unexpected argument '%s'", argv[used]);
	err = rs_discover(&pts, &cnt);
	if (err)
		return fail("prog %u (%s): discovery failed: %s", id, info.name, rs_strerror(err));
	have_attrs = !rs_prog_load_attrs(id, &eat, &flags);
	rs_prog_load_attrs_cleanup();
	first_warn[0] = 0;	/* load attributes are optional: their failure is not ours */

	if (json_output) {
		json_t *o = prog_json(&info, pts, cnt);

		json_object_set_new(o, "xlated_insns", json_integer(info.xlated_prog_len / 8));
		json_object_set_new(o, "jited_bytes", json_integer(info.jited_prog_len));
		json_object_set_new(o, "nr_map_ids", json_integer(info.nr_map_ids));
		json_object_set_new(o, "btf_id", json_integer(info.btf_id));
		json_object_set_new(o, "load_time_ns", json_integer(info.load_time));
		json_object_set_new(o, "uid", json_integer(info.created_by_uid));
		json_object_set_new(o, "run_cnt", json_integer(info.run_cnt));
		json_object_set_new(o, "run_time_ns", json_integer(info.run_time_ns));
		if (have_attrs) {
			json_object_set_new(o, "expected_attach_type", json_integer(eat));
			json_object_set_new(o, "prog_flags", json_integer(flags));
		}
		json_print(o);
	} else {
		prog_text(&info, pts, cnt);
		printf("\txlated %u insns  jited %u bytes  maps %u  btf_id %u  uid %u\n",
		       info.xlated_prog_len / 8, info.jited_prog_len, info.nr_map_ids,
		       info.btf_id, info.created_by_uid);
		if (info.run_cnt)
			printf("\trun_cnt %llu  run_time_ns %llu\n",
			       (unsigned long long)info.run_cnt,
			       (unsigned long long)info.run_time_ns);
		if (have_attrs)
			printf("\texpected_attach_type %u  prog_flags 0x%x\n", eat, flags);
	}
	free(pts);
	return RS_EXIT_OK;
}

/* ---- dump of BPF code ------------------------------------------------------------------- */

struct bpf_printer {
	struct rs_bpf_disasm *llvm;
	struct rs_linum *lines;
	struct rs_ksyms *ks;		/* translated: name helper calls */
	uint64_t call_base;		/* __bpf_call_base */
	bool translated;
};

/* "; map[0] id 7 (hash name)" / "; helper name" annotation of an instruction. */
static void annotate(const struct bpf_printer *bp, const struct rs_prog *p, size_t idx,
		     char *buf, size_t sz)
{
	const struct bpf_insn *in = &p->insns[idx];
	const char *name = NULL;
	uint64_t off;

	buf[0] = 0;
	if (rs_insn_is_map_ref(in) && in->imm >= 0 && (size_t)in->imm < p->map_cnt) {
		const struct rs_map_ref *m = &p->maps[in->imm];

		snprintf(buf, sz, "map[%d] id %u %s", in->imm, m->id, m->name);
		return;
	}
	if (!rs_insn_is_helper_call(in))
		return;
	if (bp->translated && bp->ks && bp->call_base) {
		name = rs_ksyms_lookup(bp->ks, bp->call_base + (int64_t)in->imm, &off);
		if (name && off)
			name = NULL;
	}
	/* untranslated, or kept as a helper id by the verifier (bpf_tail_call) */
	if (!name && in->imm >= 0 && in->imm < 1024)
		name = rs_helper_name(in->imm);
	if (name)
		snprintf(buf, sz, "%s", name);
}

static json_t *insn_json(const struct bpf_printer *bp, const struct rs_prog *p, size_t idx,
			 const char *llvm, const char *own, const char *note)
{
	json_t *o = json_object();
	const uint8_t *b = (const uint8_t *)&p->insns[idx];
	char raw[2 * 16 + 1];
	size_t w = rs_insn_width(&p->insns[idx]), i;

	if (idx + w > p->insn_cnt)
		w = 1;
	for (i = 0; i < 8 * w; i++)
		sprintf(raw + 2 * i, "%02x", b[i]);
	json_object_set_new(o, "idx", json_integer(idx));
	json_object_set_new(o, "raw", json_string(raw));
	json_object_set_new(o, "insn", json_string(llvm));
	json_object_set_new(o, "own", json_string(own));
	if (note[0])
		json_object_set_new(o, "note", json_string(note));
	return o;
}

static int print_bpf(const struct rs_prog *p, bool translated, bool linum, json_t *arr)
{
	struct bpf_printer bp = { .translated = translated };
	char llvm[256], own[256], note[160];
	const char *src, *file, *func;
	uint32_t line, col;
	size_t idx;
	int err, w;

	err = rs_bpf_disasm_open(&bp.llvm);
	if (err)
		return err;
	if (linum) {
		err = rs_linum_open(p, &bp.lines);
		if (err == -ENOENT)
			rs_info("prog %u (%s): no BTF line info", p->id, p->name);
		else if (err)
			goto out;
		err = 0;
	}
	/* helper calls in translated code are encoded relative to __bpf_call_base */
	if (translated && !rs_ksyms_load(&bp.ks))
		bp.call_base = rs_ksyms_addr(bp.ks, "__bpf_call_base");

	for (idx = 0; idx < p->insn_cnt; idx += w) {
		w = rs_bpf_disasm_insn(bp.llvm, p->insns, p->insn_cnt, idx, llvm, sizeof(llvm));
		rs_insn_snprint(own, sizeof(own), p->insns, p->insn_cnt, idx);
		/* LLVM knows neither unknown encodings nor pseudo map loads */
		if (w < 0 || rs_insn_is_map_ref(&p->insns[idx])) {
			snprintf(llvm, sizeof(llvm), "%s", own);
			w = 1;
		}
		if (rs_insn_width(&p->insns[idx]) == 2 && idx + 1 < p->insn_cnt)
			w = 2;
		annotate(&bp, p, idx, note, sizeof(note));
		src = bp.lines ? rs_linum_at(bp.lines, idx, &file, &line, &col) : NULL;
		func = bp.lines ? rs_linum_func_at(bp.lines, idx) : NULL;
		if (arr) {
			json_t *o = insn_json(&bp, p, idx, llvm, own, note);

			if (src) {
				json_object_set_new(o, "src", json_pack("{s:s,s:I,s:I,s:s}",
					"file", file, "line", (json_int_t)line,
					"col", (json_int_t)col, "text", src));
			}
			if (func)
				json_object_set_new(o, "func", json_string(func));
			json_array_append_new(arr, o);
			continue;
		}
		if (func)
			printf("%s%s:\n", idx ? "\n" : "", func);
		if (src) {
			while (*src == ' ' || *src == '\t')
				src++;
			printf("; %s  [%s:%u:%u]\n", src, file, line, col);
		}
		if (note[0] || (verbose && strcmp(own, llvm))) {
			printf("%5zu: %-40s ;", idx, llvm);
			if (note[0])
				printf(" %s", note);
			if (verbose && strcmp(own, llvm))
				printf(" [%s]", own);
			printf("\n");
		} else {
			printf("%5zu: %s\n", idx, llvm);
		}
	}
out:
	rs_ksyms_free(bp.ks);
	rs_linum_close(bp.lines);
	rs_bpf_disasm_close(bp.llvm);
	return err;
}

/* ---- dump of the JIT image -------------------------------------------------------------- */

/*
 * Lengths of the JIT image of each subprogram (the image is their concatenation) and the JIT
 * address of each BTF line_info record (same order as line_info).
 */
static int jited_extra(uint32_t id, uint32_t **lens, uint32_t *nlens, uint64_t **laddr,
		       uint32_t *nladdr)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), n, m;
	uint32_t *v = NULL;
	uint64_t *a = NULL;
	int fd, err = 0;

	*lens = NULL;
	*laddr = NULL;
	*nlens = *nladdr = 0;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	n = info.nr_jited_func_lens;
	m = info.jited_line_info_rec_size == sizeof(uint64_t) ? info.nr_jited_line_info : 0;
	v = calloc(n + 1, sizeof(*v));
	a = calloc(m + 1, sizeof(*a));
	if (!v || !a) {
		err = -ENOMEM;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.nr_jited_func_lens = n;
	info.jited_func_lens = (uintptr_t)v;
	info.nr_jited_line_info = m;
	info.jited_line_info_rec_size = sizeof(uint64_t);
	info.jited_line_info = (uintptr_t)a;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	*lens = v;
	*nlens = info.nr_jited_func_lens < n ? info.nr_jited_func_lens : n;
	*laddr = a;
	*nladdr = info.nr_jited_line_info < m ? info.nr_jited_line_info : m;
	v = NULL;
	a = NULL;
out:
	free(v);
	free(a);
	close(fd);
	return err;
}

/* Source lines whose JIT address is `addr` (text) or the first of them (JSON object). */
static json_t *jit_src(const struct rs_linum *l, const uint64_t *laddr, uint32_t nladdr,
		       uint64_t addr, bool text)
{
	const char *src, *file, *last = NULL;
	uint32_t k, line, col;
	json_t *o = NULL;

	for (k = 0; l && k < nladdr; k++) {
		if (laddr[k] != addr)
			continue;
		src = rs_linum_rec(l, k, &file, &line, &col);
		if (!src || (last && !strcmp(last, src)))
			continue;
		last = src;
		while (*src == ' ' || *src == '\t')
			src++;
		if (text) {
			printf("; %s  [%s:%u:%u]\n", src, file, line, col);
		} else if (!o) {
			o = json_pack("{s:s,s:I,s:I,s:s}", "file", file, "line", (json_int_t)line,
				      "col", (json_int_t)col, "text", src);
		}
	}
	return o;
}

static int dump_jited(uint32_t id, const struct bpf_prog_info *info, bool linum, json_t *arr)
{
	uint8_t *image = NULL;
	uint64_t *ksyms = NULL, *laddr = NULL;
	uint32_t *lens = NULL, nlens = 0, nladdr = 0;
	size_t len = 0, nks = 0, off = 0, f, i, nfunc;
	struct rs_ksyms *ks = NULL;
	struct rs_linum *lines_src = NULL;
	struct rs_prog p;
	int err;

	rs_prog_init(&p);

	err = rs_fetch_jited(id, &image, &len, &ksyms, &nks);
	if (err)
		return fail("prog %u (%s): jited: %s", id, info->name, rs_strerror(err));
	if (!len) {
		err = fail("prog %u (%s): no JIT image (JIT disabled, or no privilege)", id,
			   info->name);
		goto out;
	}
	jited_extra(id, &lens, &nlens, &laddr, &nladdr);
	if (rs_ksyms_load(&ks))
		ks = NULL;
	/* source lines: BTF line_info of the translated program, JIT addresses per record */
	if (linum && nladdr) {
		if (rs_fetch_translated(id, &p) || rs_linum_open(&p, &lines_src) ||
		    p.line_info_cnt != nladdr) {
			rs_info("prog %u (%s): no usable line info for the JIT image", id, info->name);
			rs_linum_close(lines_src);
			lines_src = NULL;
		}
		first_warn[0] = 0;	/* optional: not the command's failure */
	}
	nfunc = nlens && nlens == nks ? nlens : 1;
	for (f = 0; f < nfunc && off < len; f++) {
		struct rs_jit_line *lines = NULL;
		size_t flen = nfunc > 1 ? lens[f] : len, cnt = 0;
		uint64_t base = f < nks ? ksyms[f] : 0, soff;
		const char *fname = rs_ksyms_lookup(ks, base, &soff);
		char fbuf[160];

		if (flen > len - off)
			flen = len - off;
		if (fname && !soff)
			snprintf(fbuf, sizeof(fbuf), "%s", fname);
		else
			snprintf(fbuf, sizeof(fbuf), "func %zu", f);
		err = rs_jit_disasm(image + off, flen, base, ks, &lines, &cnt);
		if (err) {
			err = fail("prog %u (%s): jited: cannot disassemble: %s", id, info->name,
				   rs_strerror(err));
			goto out;
		}
		if (!arr)
			printf("%s:\n", fbuf);
		for (i = 0; i < cnt; i++) {
			struct rs_jit_line *l = &lines[i];
			char hex[3 * 16 + 1] = "";
			size_t b;

			for (b = 0; b < l->len; b++)
				sprintf(hex + 3 * b, "%02x ", l->bytes[b]);
			if (arr) {
				char addr[24];
				json_t *o, *src;

				/* kernel addresses do not fit a JSON integer (int64) */
				snprintf(addr, sizeof(addr), "0x%" PRIx64, l->addr);
				if (l->len)
					hex[3 * l->len - 1] = 0;
				o = json_pack("{s:s,s:s,s:I,s:s,s:s}", "func", fbuf, "addr", addr,
					      "off", (json_int_t)(off + l->off), "bytes", hex,
					      "insn", l->text);
				src = jit_src(lines_src, laddr, nladdr, l->addr, false);
				if (l->sym[0])
					json_object_set_new(o, "sym", json_string(l->sym));
				if (src)
					json_object_set_new(o, "src", src);
				json_array_append_new(arr, o);
				continue;
			}
			jit_src(lines_src, laddr, nladdr, l->addr, true);
			printf("%5zx: %-30s %s%s%s\n", (size_t)(off + l->off), hex, l->text,
			       l->sym[0] ? "  ; " : "", l->sym);
		}
		free(lines);
		off += flen;
	}
	err = RS_EXIT_OK;
out:
	rs_linum_close(lines_src);
	rs_prog_free(&p);
	rs_ksyms_free(ks);
	free(laddr);
	free(lens);
	free(image);
	free(ksyms);
	return err;
}

/* ---- dump ------------------------------------------------------------------------------- */

static void lift_report_fail(uint32_t id, const char *name, int err,
			     const struct rs_lift_report *rep)
{
	char where[128] = "";

	if (rep->fail_insn >= 0)
		snprintf(where, sizeof(where), ": insn %ld%s%s%s", rep->fail_insn,
			 rep->fail_pattern[0] ? " (pattern " : "", rep->fail_pattern,
			 rep->fail_pattern[0] ? ")" : "");
	fail("prog %u (%s): %s%s%s%s", id, name, rs_strerror(err), where,
	     rep->msg[0] ? ": " : "", rep->msg);
	/* the report names the instruction: prefer it over a library warning */
	if (rep->fail_insn >= 0)
		first_warn[0] = 0;
}

static int do_dump(int argc, char **argv)
{
	enum { XLATED, ORIGINAL, JITED } what = XLATED;
	struct rs_lift_report rep = { .fail_insn = -1 };
	struct bpf_prog_info info;
	struct rs_prog p;
	bool linum = false;
	json_t *arr = NULL;
	uint32_t id;
	int used, err, i;

	if (!argc)
		return usage_err("prog", "dump: expected PROG");
	used = get_prog(argc, argv, &id, &info);
	for (i = used > 0 ? used : argc; i < argc; i++) {
		if (!strcmp(argv[i], "translated") || !strcmp(argv[i], "xlated"))
			what = XLATED;
		else if (!strcmp(argv[i], "original"))
			what = ORIGINAL;
		else if (!strcmp(argv[i], "jited"))
			what = JITED;
		else if (!strcmp(argv[i], "linum"))
			linum = true;
		else
			return usage_err("prog", "dump: '%s': expected translated, original, "
					 "jited or linum", argv[i]);
	}
	if (used < 0)
		return -used;
	if (json_output)
		arr = json_array();
	if (what == JITED) {
		err = dump_jited(id, &info, linum, arr);
		if (err) {
			json_decref(arr);
			return err;
		}
		if (arr)
			json_print(arr);
		return RS_EXIT_OK;
	}

	rs_prog_init(&p);
	if (what == XLATED) {
		err = rs_fetch_translated(id, &p);
		if (err) {
			err = fail("prog %u (%s): translated: %s", id, info.name, rs_strerror(err));
			goto out;
		}
	} else {
		err = rs_fetch_original(id, &p, &rep);
		if (err) {
			lift_report_fail(id, info.name, err, &rep);
			err = RS_EXIT_FAIL;
			goto out;
		}
		if (!arr)
			printf("; prog %u (%s): original from %s\n", id, info.name,
			       rs_prog_source_name(p.source));
	}
	err = print_bpf(&p, what == XLATED, linum, arr);
	if (err) {
		err = fail("prog %u (%s): disassembly: %s", id, info.name, rs_strerror(err));
		goto out;
	}
	if (arr) {
		json_print(arr);
		arr = NULL;
	}
	err = RS_EXIT_OK;
out:
	json_decref(arr);
	rs_prog_free(&p);
	return err;
}

/* ---- lift ------------------------------------------------------------------------------- */

static int do_lift(int argc, char **argv)
{
	struct rs_lift_report rep = { .fail_insn = -1 };
	struct bpf_prog_info info;
	struct rs_prog p;
	json_t *arr = NULL, *o;
	uint32_t id;
	int used, err;

	if (!argc)
		return usage_err("prog", "lift: expected PROG");
	used = get_prog(argc, argv, &id, &info);
	if (used < 0)
		return -used;
	if (argc > used)
		return usage_err("prog", "lift: unexpected argument '%s'", argv[used]);

	rs_prog_init(&p);
	err = rs_lift(id, &p, &rep);
	if (json_output) {
		o = json_pack("{s:I,s:s,s:b,s:I,s:I}", "id", (json_int_t)id, "name", info.name,
			      "proven", !err && rep.proven,
			      "patterns_learned", (json_int_t)rep.patterns_learned,
			      "sites_lifted", (json_int_t)rep.sites_lifted);
		if (err) {
			json_object_set_new(o, "error", json_string(rs_strerror(err)));
			json_object_set_new(o, "fail_insn", json_integer(rep.fail_insn));
			json_object_set_new(o, "fail_pattern", json_string(rep.fail_pattern));
			json_object_set_new(o, "msg", json_string(rep.msg));
		} else {
			arr = json_array();
			if (print_bpf(&p, false, false, arr)) {
				json_decref(arr);
				arr = json_null();
			}
			json_object_set_new(o, "insns", arr);
		}
		json_print(o);
	} else if (!err) {
		printf("; prog %u (%s): lifted, %zu sites, %zu patterns learned, proof: %s\n",
		       id, info.name, rep.sites_lifted, rep.patterns_learned,
		       rep.proven ? "translates identically" : "NOT proven");
		print_bpf(&p, false, false, NULL);
	}
	rs_prog_free(&p);
	if (err) {
		lift_report_fail(id, info.name, err, &rep);
		return RS_EXIT_FAIL;
	}
	if (!rep.proven)
		return fail("prog %u (%s): lift not proven%s%s", id, info.name,
			    rep.msg[0] ? ": " : "", rep.msg);
	return RS_EXIT_OK;
}

/* ---- help and dispatch ------------------------------------------------------------------ */

static int do_help(int argc, char **argv)
{
	printf("Usage: %1$s [-j|-p] [-v] prog { list | help }\n"
	       "       %1$s [-j|-p] [-v] prog show PROG\n"
	       "       %1$s [-j|-p] [-v] prog dump PROG [ translated | original | jited ] [ linum ]\n"
	       "       %1$s [-j|-p] [-v] prog lift PROG\n"
	       "\n"
	       "PROG := { id ID | pinned PATH | tag TAG | name NAME |\n"
	       "          dev IFNAME xdp | dev IFNAME tc { ingress | egress } }\n"
	       "\n"
	       "list      every XDP/TC program with its attach points in every network namespace\n"
	       "show      one program: attach points, sizes, maps, load attributes\n"
	       "dump      code: translated (default; LLVM syntax, -v adds respec's own printer),\n"
	       "          original (capture or proven lift), jited (x86-64 via capstone);\n"
	       "          linum interleaves source lines from BTF\n"
	       "lift      lift the translated program back to loadable form and prove it\n"
	       "\n"
	       "Exit: 0 ok, 1 failure (one line on stderr), 2 usage.\n", bin_name);
	return RS_EXIT_OK;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} prog_cmds[] = {
	{ "list",	do_list },
	{ "show",	do_show },
	{ "dump",	do_dump },
	{ "lift",	do_lift },
	{ "help",	do_help },
};

/*
 * Accept the global options after the command too, like bpftool ("respec prog list -j"):
 * strip them from argv, except where they are the argument of a PROG keyword.
 */
static int take_late_options(int argc, char **argv)
{
	static const char *const kw[] = { "id", "pinned", "tag", "name", "dev" };
	int i, n = 0;
	size_t k;

	for (i = 0; i < argc; i++) {
		bool arg_of_kw = false;

		for (k = 0; n > 0 && k < RS_ARRAY_SIZE(kw); k++)
			arg_of_kw |= !strcmp(argv[n - 1], kw[k]);
		if (!arg_of_kw) {
			if (!strcmp(argv[i], "-j") || !strcmp(argv[i], "--json")) {
				json_output = true;
				continue;
			}
			if (!strcmp(argv[i], "-p") || !strcmp(argv[i], "--pretty")) {
				json_output = pretty_output = true;
				continue;
			}
			if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
				verbose++;
				continue;
			}
		}
		argv[n++] = argv[i];
	}
	return n;
}

int do_prog(int argc, char **argv)
{
	size_t i;
	int rc;

	argc = take_late_options(argc, argv);
	if (argc < 1)
		return usage_err("prog", "expected a command");
	for (i = 0; i < RS_ARRAY_SIZE(prog_cmds); i++) {
		if (strcmp(argv[0], prog_cmds[i].name))
			continue;
		prev_log = rs_set_log_fn(cli_log);
		if (!prev_log) {
			rs_set_log_fn(NULL);
			return prog_cmds[i].fn(argc - 1, argv + 1);
		}
		rc = prog_cmds[i].fn(argc - 1, argv + 1);
		rs_set_log_fn(prev_log);
		finish(rc);
		return rc;
	}
	return usage_err("prog", "unknown command '%s'", argv[0]);
}
