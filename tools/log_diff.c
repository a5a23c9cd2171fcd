// SPDX-License-Identifier: BSD-2-Clause
/*
 * log_diff.c - `respec log diff`: the program before and after optimization side by side.
 *
 * Both programs come from the log's "program" records (raw instructions, resolved source
 * lines), so the view needs nothing from the live system.  The after program carries the
 * original main body as its guard fallback (ORIG); it is folded into one line, and the rest is
 * aligned with the before program by a longest common subsequence over instructions compared
 * without their branch displacements (code moved by a pass still lines up).  Text comes from
 * the LLVM BPF disassembler (tools/disasm.c); source lines are interleaved where a line record
 * starts; remarks are attached to their original instruction.  With --jited the JIT images
 * stored in the log are disassembled through capstone, source lines at their JIT addresses.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log.h"
#include "tools/main.h"

#define COLW 46

/* ---- alignment ------------------------------------------------------------------------- */

static uint64_t insn_key(const struct bpf_insn *v, size_t cnt, size_t i)
{
	struct bpf_insn x = v[i];
	uint64_t k;

	if (rs_insn_is_jmp(&x)) {
		x.off = 0;
		if (BPF_CLASS(x.code) == BPF_JMP32 && BPF_OP(x.code) == BPF_JA)
			x.imm = 0;
	}
	if (rs_insn_is_pseudo_call(&x) || rs_insn_is_pseudo_func(&x))
		x.imm = 0;
	k = (uint64_t)x.code | (uint64_t)x.dst_reg << 8 | (uint64_t)x.src_reg << 12 |
	    (uint64_t)(uint16_t)x.off << 16 | (uint64_t)(uint32_t)x.imm << 32;
	if (rs_insn_is_ldimm64(&x) && i + 1 < cnt && !rs_insn_is_pseudo_func(&x))
		k ^= (uint64_t)(uint32_t)v[i + 1].imm * 0x9e3779b97f4a7c15ULL;
	return k;
}

/* indexes of a program's instructions, second halves of ld_imm64 and [skip0, skip1) left out */
static long *seq_of(const struct bpf_insn *v, size_t cnt, long skip0, long skip1, size_t *n)
{
	long *s = calloc(cnt ? cnt : 1, sizeof(*s));
	size_t i;

	*n = 0;
	for (i = 0; s && i < cnt; i++) {
		if (i && rs_insn_is_ldimm64(&v[i - 1]))
			continue;
		if ((long)i >= skip0 && (long)i < skip1)
			continue;
		s[(*n)++] = (long)i;
	}
	return s;
}

static int push_row(struct log_listing *ls, size_t *cap, long l, long r, enum diff_tag t)
{
	if (ls->row_cnt == *cap) {
		size_t nc = *cap ? *cap * 2 : 256;
		struct diff_row *n = realloc(ls->rows, nc * sizeof(*n));

		if (!n)
			return -ENOMEM;
		ls->rows = n;
		*cap = nc;
	}
	ls->rows[ls->row_cnt++] = (struct diff_row){ .l = l, .r = r, .tag = t };
	return 0;
}

/* flush pending deletions / insertions as changed pairs, then leftovers */
static int flush(struct log_listing *ls, size_t *cap, const long *dl, size_t nd, const long *ir,
		 size_t ni, bool *folded)
{
	size_t k, m = nd > ni ? nd : ni;
	int err = 0;

	for (k = 0; k < m && !err; k++) {
		long r = k < ni ? ir[k] : -1;

		if (r >= 0 && !*folded && ls->orig_start >= 0 && r >= ls->orig_end) {
			err = push_row(ls, cap, ls->orig_end - ls->orig_start, ls->orig_start,
				       DIFF_FOLD);
			*folded = true;
		}
		if (!err)
			err = push_row(ls, cap, k < nd ? dl[k] : -1, r, k < nd && k < ni ?
				       DIFF_CHANGED : k < nd ? DIFF_LEFT : DIFF_RIGHT);
	}
	return err;
}

static int align(struct log_listing *ls)
{
	size_t nl, nr, i, j, cap = 0, nd = 0, ni = 0;
	long *L, *R, *dl = NULL, *ir = NULL;
	uint16_t *dp = NULL;
	bool folded = false;
	int err = -ENOMEM;

	L = seq_of(ls->bi, ls->bcnt, -1, -1, &nl);
	R = seq_of(ls->ai, ls->acnt, ls->orig_start, ls->orig_end, &nr);
	dl = calloc(nl + 1, sizeof(*dl));
	ir = calloc(nr + 1, sizeof(*ir));
	if (!L || !R || !dl || !ir)
		goto out;
	if (nl < 65535 && nr < 65535 && (uint64_t)(nl + 1) * (nr + 1) <= (64u << 20))
		dp = calloc((nl + 1) * (nr + 1), sizeof(*dp));
	if (dp) {
		/* dp[i][j] = LCS of L[i..], R[j..] */
		for (i = nl; i-- > 0;)
			for (j = nr; j-- > 0;) {
				size_t c = i * (nr + 1) + j;

				if (insn_key(ls->bi, ls->bcnt, L[i]) ==
				    insn_key(ls->ai, ls->acnt, R[j]))
					dp[c] = dp[c + nr + 2] + 1;
				else
					dp[c] = dp[c + nr + 1] > dp[c + 1] ? dp[c + nr + 1] :
						dp[c + 1];
			}
	}
	i = j = 0;
	err = 0;
	while ((i < nl || j < nr) && !err) {
		size_t c = i * (nr + 1) + j;
		bool same = dp && i < nl && j < nr &&
			insn_key(ls->bi, ls->bcnt, L[i]) == insn_key(ls->ai, ls->acnt, R[j]);

		if (!dp) {
			/* too large to align: pair by position */
			same = false;
		}
		if (same) {
			err = flush(ls, &cap, dl, nd, ir, ni, &folded);
			nd = ni = 0;
			if (!err && !folded && ls->orig_start >= 0 && R[j] >= ls->orig_end) {
				err = push_row(ls, &cap, ls->orig_end - ls->orig_start,
					       ls->orig_start, DIFF_FOLD);
				folded = true;
			}
			if (!err)
				err = push_row(ls, &cap, L[i], R[j], DIFF_SAME);
			i++;
			j++;
		} else if (i < nl && (j >= nr || (dp && dp[c + nr + 1] >= dp[c + 1]) ||
				      (!dp && nd <= ni))) {
			dl[nd++] = L[i++];
		} else {
			ir[ni++] = R[j++];
		}
	}
	if (!err)
		err = flush(ls, &cap, dl, nd, ir, ni, &folded);
	if (!err && !folded && ls->orig_start >= 0)
		err = push_row(ls, &cap, ls->orig_end - ls->orig_start, ls->orig_start, DIFF_FOLD);
out:
	free(L);
	free(R);
	free(dl);
	free(ir);
	free(dp);
	return err;
}

int log_listing_build(const struct log_prog *p, struct log_listing *ls)
{
	json_t *reg;
	int err;

	memset(ls, 0, sizeof(*ls));
	ls->orig_start = ls->orig_end = -1;
	if (!p->before || !p->after) {
		p_err("prog %ld (%s): the log holds no before/after programs", p->id, p->name);
		return -ENOENT;
	}
	err = log_prog_insns(p->before, &ls->bi, &ls->bcnt);
	if (!err)
		err = log_prog_insns(p->after, &ls->ai, &ls->acnt);
	if (err)
		goto fail;
	ls->blines = log_line_table(p->before, ls->bcnt);
	ls->alines = log_line_table(p->after, ls->acnt);
	reg = json_object_get(p->after, "regions");
	if (json_is_object(reg)) {
		json_t *o = json_object_get(reg, "orig"), *g = json_object_get(reg, "guard");
		long o0 = (long)json_integer_value(json_array_get(o, 0));
		long o1 = (long)json_integer_value(json_array_get(o, 1));

		if (o0 >= 0 && o1 > o0 && (size_t)o1 <= ls->acnt) {
			ls->orig_start = o0;
			ls->orig_end = o1;
		}
		ls->guard_end = (long)json_integer_value(json_array_get(g, 1));
	}
	err = ls->blines && ls->alines ? align(ls) : -ENOMEM;
	if (!err)
		return 0;
fail:
	p_err("prog %ld (%s): cannot build the listing: %s", p->id, p->name, rs_strerror(err));
	log_listing_free(ls);
	return err;
}

void log_listing_free(struct log_listing *ls)
{
	free(ls->bi);
	free(ls->ai);
	free(ls->blines);
	free(ls->alines);
	free(ls->rows);
	memset(ls, 0, sizeof(*ls));
}

void log_insn_text(struct rs_bpf_disasm *d, const struct bpf_insn *insns, size_t cnt, long i,
		   char *buf, size_t sz)
{
	buf[0] = 0;
	if (i < 0 || (size_t)i >= cnt)
		return;
	if (i && rs_insn_is_ldimm64(&insns[i - 1]))
		return;
	if (d)
		rs_bpf_disasm_insn(d, insns, cnt, (size_t)i, buf, sz);
	else
		rs_insn_snprint(buf, sz, insns, cnt, (size_t)i);
}

void log_map_note(json_t *prog_rec, const struct bpf_insn *insns, size_t cnt, long i,
		  char *buf, size_t sz)
{
	json_t *m;
	size_t l = strlen(buf);

	if (i < 0 || (size_t)i + 1 >= cnt || !rs_insn_is_map_ref(&insns[i]))
		return;
	m = json_array_get(json_object_get(prog_rec, "maps"), (size_t)insns[i].imm);
	if (!m)
		return;
	if (insns[i].src_reg == BPF_PSEUDO_MAP_IDX_VALUE)
		snprintf(buf + l, sz - l, "  ; &%s[0]+%d", log_str(m, "name", "?"),
			 insns[i + 1].imm);
	else
		snprintf(buf + l, sz - l, "  ; map %s", log_str(m, "name", "?"));
}

/* ---- text rendering -------------------------------------------------------------------- */

static void src_line(json_t *l, char *buf, size_t sz)
{
	const char *s = log_str(l, "src", "");

	while (*s == ' ' || *s == '\t')
		s++;
	snprintf(buf, sz, "; %s:%ld: %s", log_str(l, "file", "?"), log_int(l, "line", 0), s);
}

static bool same_line(json_t *a, json_t *b)
{
	return a && b && log_int(a, "line", -1) == log_int(b, "line", -2) &&
	       !strcmp(log_str(a, "file", ""), log_str(b, "file", ""));
}

static void print_remarks_at(const struct log_file *lf, const struct log_prog *p, long l)
{
	size_t idx = 0;
	json_t *r;

	while ((r = log_next(lf, p, "remark", true, &idx))) {
		json_t *s = json_object_get(r, "site");

		if (log_int(s, "orig_insn", -1) != l)
			continue;
		printf("      ^ [%s %s] insn %ld", log_str(r, "pass", "?"), log_str(r, "type", "?"),
		       l);
		if (log_str(s, "file", NULL))
			printf(" %s:%ld", log_str(s, "file", ""), log_int(s, "line", 0));
		printf(": %.160s\n", log_str(r, "msg", ""));
	}
}

static int diff_prog(const struct log_file *lf, const struct log_prog *p,
		     struct rs_bpf_disasm *d)
{
	struct log_listing ls;
	char lt[160], rt[160], ls_[512], rs_[512];
	json_t *r, *lastb = NULL, *lasta = NULL;
	size_t i, idx = 0;
	int err;

	err = log_listing_build(p, &ls);
	if (err)
		return err;
	printf("prog %ld (%s) round %ld: before %zu insns, after %zu insns", p->id, p->name,
	       p->round, ls.bcnt, ls.acnt);
	if (ls.orig_start >= 0)
		printf(" (guard prologue %ld, specialized %ld, ORIG fallback %ld, rest %ld)",
		       ls.guard_end, ls.orig_start - ls.guard_end, ls.orig_end - ls.orig_start,
		       (long)ls.acnt - ls.orig_end);
	printf("\n");
	while ((r = log_next(lf, p, "remark", true, &idx)))
		if (log_int(json_object_get(r, "site"), "orig_insn", -1) < 0)
			printf("  * [%s %s] %.200s\n", log_str(r, "pass", "?"),
			       log_str(r, "type", "?"), log_str(r, "msg", ""));
	printf("%5s %-*s   %5s %s\n", "", COLW, "before", "", "after");
	for (i = 0; i < ls.row_cnt; i++) {
		const struct diff_row *row = &ls.rows[i];
		json_t *bl = row->l >= 0 && row->tag != DIFF_FOLD ? ls.blines[row->l] : NULL;
		json_t *al = row->r >= 0 && row->tag != DIFF_FOLD ? ls.alines[row->r] : NULL;
		char mark;

		if (row->tag == DIFF_FOLD) {
			lasta = NULL;
			printf("%5s %-*s   %5ld ... ORIG: %ld insns, the original main body "
			       "unchanged (guard fallback)\n", "", COLW, "", row->r, row->l);
			continue;
		}
		/* a source line is shown once per run of instructions on it; line 0
		 * (compiler-made code) not at all */
		if (bl && (!log_int(bl, "line", 0) || same_line(bl, lastb)))
			bl = NULL;
		else if (bl)
			lastb = bl;
		if (al && (!log_int(al, "line", 0) || same_line(al, lasta)))
			al = NULL;
		else if (al)
			lasta = al;
		if (bl || al) {
			ls_[0] = rs_[0] = 0;
			if (bl)
				src_line(bl, ls_, sizeof(ls_));
			if (al)
				src_line(al, rs_, sizeof(rs_));
			if (bl && al && !strcmp(ls_, rs_))
				printf("      %s\n", ls_);
			else if (bl && al)
				printf("      %-*.*s     %s\n", COLW, COLW, ls_, rs_);
			else if (bl)
				printf("      %s\n", ls_);
			else
				printf("      %-*s     %s\n", COLW, "", rs_);
		}
		log_insn_text(d, ls.bi, ls.bcnt, row->l, lt, sizeof(lt));
		log_insn_text(d, ls.ai, ls.acnt, row->r, rt, sizeof(rt));
		log_map_note(p->before, ls.bi, ls.bcnt, row->l, lt, sizeof(lt));
		log_map_note(p->after, ls.ai, ls.acnt, row->r, rt, sizeof(rt));
		mark = row->tag == DIFF_SAME ? ' ' : row->tag == DIFF_CHANGED ? '|' :
			row->tag == DIFF_LEFT ? '<' : '>';
		if (row->l >= 0)
			printf("%5ld %-*.*s", row->l, COLW, COLW, lt);
		else
			printf("%5s %-*s", "", COLW, "");
		if (row->r >= 0)
			printf(" %c %5ld %s\n", mark, row->r, rt);
		else
			printf(" %c\n", mark);
		if (row->l >= 0)
			print_remarks_at(lf, p, row->l);
	}
	log_listing_free(&ls);
	return 0;
}

static int jit_listing(const struct log_prog *p, const char *role, json_t *prec, json_t *jit,
		       const struct rs_ksyms *ks)
{
	const char *hex = log_str(jit, "image", "");
	size_t len = strlen(hex) / 2, i, k, nlines;
	json_t *addrs = json_object_get(jit, "line_addrs"), *lines = json_object_get(prec, "lines");
	uint64_t base = strtoull(log_str(jit, "base", "0"), NULL, 0);
	struct rs_jit_line *jl = NULL;
	uint8_t *img;
	size_t cnt = 0;
	int err;

	img = malloc(len ? len : 1);
	if (!img)
		return -ENOMEM;
	if (rs_hex_decode(hex, img, len, 0) != (long)len) {
		free(img);
		p_err("prog %ld (%s): %s JIT image: bad hex", p->id, p->name, role);
		return -RS_ERR_FORMAT;
	}
	err = rs_jit_disasm(img, len, base, ks, &jl, &cnt);
	free(img);
	if (err)
		return err;
	printf("prog %ld (%s) %s: JIT image %zu bytes at 0x%llx, %zu x86-64 instructions\n",
	       p->id, p->name, role, len, (unsigned long long)base, cnt);
	nlines = json_array_size(addrs);
	for (i = 0; i < cnt; i++) {
		for (k = 0; k < nlines; k++) {
			uint64_t a = strtoull(json_string_value(json_array_get(addrs, k)), NULL, 0);
			char s[512];

			if (a == jl[i].addr && json_array_get(lines, k)) {
				src_line(json_array_get(lines, k), s, sizeof(s));
				printf("      %s\n", s);
				break;
			}
		}
		printf("  %5x: %-44s%s%s\n", jl[i].off, jl[i].text, jl[i].sym[0] ? " ; " : "",
		       jl[i].sym);
	}
	free(jl);
	return 0;
}

int log_cmd_diff(const struct log_file *lf, const char *sel, bool jited)
{
	struct log_prog *progs = NULL;
	struct rs_bpf_disasm *d = NULL;
	struct rs_ksyms *ks = NULL;
	size_t i, n = 0, done = 0;
	int ret = RS_EXIT_OK;

	log_group(lf, &progs, &n);
	if (rs_bpf_disasm_open(&d))
		d = NULL;	/* verifier syntax instead */
	if (jited && rs_ksyms_load(&ks))
		ks = NULL;
	for (i = 0; i < n; i++) {
		struct log_prog *p = &progs[i];

		if (!log_prog_match(p, sel) || !p->before || !p->after)
			continue;
		if (done++)
			printf("\n");
		if (diff_prog(lf, p, d))
			ret = RS_EXIT_FAIL;
		if (!jited)
			continue;
		if (!p->before_jit && !p->after_jit)
			printf("prog %ld (%s): the log holds no JIT image\n", p->id, p->name);
		if (p->before_jit && jit_listing(p, "before", p->before, p->before_jit, ks))
			ret = RS_EXIT_FAIL;
		if (p->after_jit && jit_listing(p, "after", p->after, p->after_jit, ks))
			ret = RS_EXIT_FAIL;
	}
	if (!done) {
		p_err("%s: no program%s%s with before/after instructions", lf->path,
		      sel ? " matching " : "", sel ? sel : "");
		ret = RS_EXIT_FAIL;
	}
	rs_ksyms_free(ks);
	rs_bpf_disasm_close(d);
	free(progs);
	return ret;
}
