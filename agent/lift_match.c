// SPDX-License-Identifier: BSD-2-Clause
/*
 * lift_match.c - find the verifier's rewrites in a translated program and turn them back.
 *
 * 1. One-to-one fixes in a working copy: pseudo calls (the dump has off = relative target and
 *    imm = subprogram index; the original has imm = relative target, off = 0), pseudo funcs
 *    (second half imm = subprogram index -> 0), helper calls (kernel function offset -> helper
 *    id, from probes, else from the /proc/kallsyms name of the function as a candidate).
 * 2. A may-be-ctx data flow over the translated code (registers and 8-byte stack slots, through
 *    moves, spills, fills and bpf-to-bpf call arguments) tells which loads and stores go to the
 *    context, so that ctx patterns are only tried there.
 * 3. Pattern matching (longest match wins; no branch from outside may land inside the matched
 *    range) and an IR edit list that replaces each expansion by its original instruction;
 *    branches into the start of an expansion are kept by the edit list semantics.
 * The result is only a candidate: lift.c proves it by reloading.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lift.h"

#define REG(n)		((uint16_t)(1u << (n)))
#define CALL_CLOBBER	(REG(0) | REG(1) | REG(2) | REG(3) | REG(4) | REG(5))
#define ARG_REGS	(REG(1) | REG(2) | REG(3) | REG(4) | REG(5))

struct ctx_state {
	uint16_t regs;		/* registers that may hold the ctx pointer */
	uint64_t slots;		/* 8-byte stack slots (fp-8 = bit 0) that may hold it */
	bool seen;
};

static bool insn_is_jmp_like(const struct bpf_insn *in)
{
	return rs_insn_is_jmp(in) || rs_insn_is_pseudo_call(in) || rs_insn_is_pseudo_func(in);
}

static int slot_of(int16_t off)
{
	if (off >= 0 || off < -512 || (-off) % 8)
		return -1;
	return -off / 8 - 1;
}

static void ctx_transfer(const struct bpf_insn *in, struct ctx_state *s)
{
	uint8_t cls = BPF_CLASS(in->code);
	int slot;

	if (rs_insn_is_call(in)) {
		s->regs &= ~CALL_CLOBBER;
		return;
	}
	if (in->code == (BPF_ALU64 | BPF_MOV | BPF_X) && in->off == 0) {
		if (s->regs & REG(in->src_reg))
			s->regs |= REG(in->dst_reg);
		else
			s->regs &= ~REG(in->dst_reg);
		return;
	}
	if ((cls == BPF_STX || cls == BPF_ST) && in->dst_reg == RS_REG_FP) {
		slot = slot_of(in->off & ~7);
		if (in->code == (BPF_STX | BPF_MEM | BPF_DW) && slot_of(in->off) >= 0) {
			if (s->regs & REG(in->src_reg))
				s->slots |= 1ull << slot;
			else
				s->slots &= ~(1ull << slot);
		} else if (slot >= 0) {
			s->slots &= ~(1ull << slot);
		}
		if (BPF_MODE(in->code) == BPF_ATOMIC)
			s->regs &= ~rs_insn_defs(in);
		return;
	}
	if (in->code == (BPF_LDX | BPF_MEM | BPF_DW) && in->src_reg == RS_REG_FP &&
	    (slot = slot_of(in->off)) >= 0) {
		if (s->slots & (1ull << slot))
			s->regs |= REG(in->dst_reg);
		else
			s->regs &= ~REG(in->dst_reg);
		return;
	}
	s->regs &= ~rs_insn_defs(in);
}

static bool ctx_join(struct ctx_state *dst, const struct ctx_state *src)
{
	struct ctx_state old = *dst;

	dst->regs |= src->regs;
	dst->slots |= src->slots;
	dst->seen = true;
	return !old.seen || old.regs != dst->regs || old.slots != dst->slots;
}

static int ctx_flow(const struct bpf_insn *insns, size_t cnt, struct ctx_state *st)
{
	size_t *work, nwork = 0, i;
	bool *queued;
	int err = 0;

	work = calloc(cnt + 1, sizeof(*work));
	queued = calloc(cnt + 1, sizeof(*queued));
	if (!work || !queued) {
		err = -ENOMEM;
		goto out;
	}
	memset(st, 0, cnt * sizeof(*st));
	st[0].regs = REG(1);
	st[0].seen = true;
	work[nwork++] = 0;
	queued[0] = true;
	while (nwork) {
		struct ctx_state s;
		const struct bpf_insn *in;
		long succ[2] = { -1, -1 };
		int k;

		i = work[--nwork];
		queued[i] = false;
		in = &insns[i];
		s = st[i];
		if (rs_insn_is_pseudo_call(in)) {
			long t = rs_insn_target(insns, i);
			struct ctx_state cs = { .regs = (uint16_t)(s.regs & ARG_REGS) };

			if (t >= 0 && (size_t)t < cnt && ctx_join(&st[t], &cs) && !queued[t]) {
				work[nwork++] = (size_t)t;
				queued[t] = true;
			}
		}
		ctx_transfer(in, &s);
		if (rs_insn_is_exit(in)) {
			continue;
		} else if (rs_insn_is_uncond_jmp(in)) {
			succ[0] = rs_insn_target(insns, i);
		} else if (rs_insn_is_cond_jmp(in)) {
			succ[0] = (long)i + 1;
			succ[1] = rs_insn_target(insns, i);
		} else {
			succ[0] = (long)(i + rs_insn_width(in));
		}
		for (k = 0; k < 2; k++) {
			long t = succ[k];

			if (t < 0 || (size_t)t >= cnt)
				continue;
			if (ctx_join(&st[t], &s) && !queued[t]) {
				work[nwork++] = (size_t)t;
				queued[t] = true;
			}
		}
	}
out:
	free(work);
	free(queued);
	return err;
}

/* ---- helper names from /proc/kallsyms ------------------------------------------------------ */

#define FN_NAME(x) #x
static const char *const helper_names[] = { __BPF_FUNC_MAPPER(FN_NAME) };
#undef FN_NAME

static int kallsyms_name(uint64_t addr, char *name, size_t sz)
{
	static uint64_t base;
	char line[512], sym[256], type;
	unsigned long long a;
	FILE *f;
	int ret = -ENOENT;

	f = fopen("/proc/kallsyms", "r");
	if (!f)
		return -errno;
	if (!base) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "%llx %c %255s", &a, &type, sym) == 3 &&
			    !strcmp(sym, "__bpf_call_base")) {
				base = a;
				break;
			}
		}
		rewind(f);
	}
	if (!base)
		goto out;
	addr += base;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx %c %255s", &a, &type, sym) == 3 && a == addr) {
			size_t l = strnlen(sym, sz - 1);

			memcpy(name, sym, l);
			name[l] = '\0';
			ret = 0;
			break;
		}
	}
out:
	fclose(f);
	return ret;
}

/*
 * Helper id whose name matches the kernel function at imm, or -1.  Candidates: the name
 * without "bpf_", and without a program-type prefix ("bpf_xdp_redirect_map" -> redirect_map).
 */
static int32_t helper_from_kallsyms(int32_t imm, char *fname, size_t sz)
{
	static const char *const prefixes[] = { "bpf_", "bpf_xdp_", "bpf_skb_", "bpf_sk_", "" };
	size_t k, p;

	fname[0] = '\0';
	if (kallsyms_name((uint64_t)(int64_t)imm, fname, sz))
		return -1;
	for (p = 0; p < RS_ARRAY_SIZE(prefixes); p++) {
		size_t l = strlen(prefixes[p]);

		if (strncmp(fname, prefixes[p], l))
			continue;
		for (k = 1; k < RS_ARRAY_SIZE(helper_names); k++)
			if (!strcmp(fname + l, helper_names[k]))
				return (int32_t)k;
	}
	return -1;
}

/* ---- matching ------------------------------------------------------------------------------ */

static bool reg_bind(uint8_t t, uint8_t r, int *d, int *s)
{
	int *b;

	if (t != RS_PH_DST && t != RS_PH_SRC)
		return t == r;
	b = t == RS_PH_DST ? d : s;
	if (*b < 0)
		*b = r;
	return *b == r;
}

/* Match pattern p at xlated index i; on success fills *orig. */
static bool match_at(const struct rs_pattern *p, const struct bpf_insn *insns, size_t cnt,
		     size_t i, const struct ctx_state *st, const uint32_t *in_cnt,
		     struct bpf_insn *orig)
{
	int d = -1, s = -1;
	size_t k, internal = 0, external = 0;
	bool pseudo_half = false, have_delta = false;
	int delta = 0;

	if (i + p->xl_cnt > cnt)
		return false;
	for (k = 0; k < p->xl_cnt; k++) {
		const struct bpf_insn *t = &p->xl[k], *x = &insns[i + k];
		uint8_t cls = BPF_CLASS(t->code);

		if (t->code != x->code)
			return false;
		if (p->loose && rs_insn_is_pseudo_call(t)) {
			if (x->src_reg != t->src_reg)
				return false;
			continue;	/* callback target: wherever it is */
		}
		if (p->loose && ((cls == BPF_STX && t->dst_reg == RS_REG_FP) ||
				 (cls == BPF_LDX && t->src_reg == RS_REG_FP))) {
			if (!have_delta) {
				delta = x->off - t->off;
				have_delta = true;
			}
			if (x->off - t->off != delta || t->imm != x->imm)
				return false;
		} else if (t->off != x->off || t->imm != x->imm) {
			return false;
		}
		if (!reg_bind(t->dst_reg, x->dst_reg, &d, &s))
			return false;
		if (pseudo_half || rs_insn_is_ldimm64(t) || rs_insn_is_call(t)) {
			if (t->src_reg != x->src_reg)
				return false;
		} else if (!reg_bind(t->src_reg, x->src_reg, &d, &s)) {
			return false;
		}
		pseudo_half = rs_insn_is_ldimm64(t);
	}
	if (p->need_same && d != s && s >= 0)
		return false;
	if (p->need_same)
		s = d;
	if (p->need_diff && d == s)
		return false;
	*orig = p->orig;
	if (orig->dst_reg == RS_PH_DST || orig->dst_reg == RS_PH_SRC) {
		int r = orig->dst_reg == RS_PH_DST ? d : s;

		if (r < 0)
			return false;
		orig->dst_reg = (uint8_t)r;
	}
	if (orig->src_reg == RS_PH_DST || orig->src_reg == RS_PH_SRC) {
		int r = orig->src_reg == RS_PH_DST ? d : s;

		if (r < 0)
			return false;
		orig->src_reg = (uint8_t)r;
	}
	if (p->kind == RS_PAT_CTX) {
		/* loads read the ctx through src, stores write it through dst */
		uint8_t ctx_reg = BPF_CLASS(orig->code) == BPF_LDX ? orig->src_reg : orig->dst_reg;

		if (!(st[i].regs & REG(ctx_reg)))
			return false;
	}
	/* no branch from outside may land inside (i, i + n) */
	for (k = 1; k < p->xl_cnt; k++)
		external += in_cnt[i + k];
	for (k = 0; k < p->xl_cnt; k++) {
		long t;

		if (!insn_is_jmp_like(&insns[i + k]))
			continue;
		t = rs_insn_target(insns, i + k);
		if (t > (long)i && t < (long)(i + p->xl_cnt))
			internal++;
	}
	return external == internal;
}

static int add_site(struct rs_lift_sites *sites, size_t idx, size_t n, const char *name)
{
	struct rs_lift_site *ns;

	ns = realloc(sites->v, (sites->cnt + 1) * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	sites->v = ns;
	ns = &sites->v[sites->cnt++];
	ns->idx = idx;
	ns->n = n;
	snprintf(ns->pattern, sizeof(ns->pattern), "%s", name);
	return 0;
}

static void fail(struct rs_lift_report *rep, const struct rs_prog *xl, size_t i,
		 const char *pattern, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void fail(struct rs_lift_report *rep, const struct rs_prog *xl, size_t i,
		 const char *pattern, const char *fmt, ...)
{
	char text[256], insn[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	insn[0] = '\0';
	rs_insn_snprint(insn, sizeof(insn), xl->insns, xl->insn_cnt, i);
	rep->fail_insn = (long)i;
	snprintf(rep->fail_pattern, sizeof(rep->fail_pattern), "%s", pattern);
	snprintf(rep->msg, sizeof(rep->msg), "xlated insn %zu (%s): %.150s", i, insn, text);
	rs_warn("prog %u (%s): %s\n", xl->id, xl->name, rep->msg);
}

/* One-to-one fixes of pseudo calls and pseudo funcs in the working copy. */
static int fix_pseudo(struct rs_prog *w, const struct rs_prog *xl, struct rs_lift_report *rep)
{
	size_t i;

	for (i = 0; i < w->insn_cnt; i += rs_insn_width(&w->insns[i])) {
		struct bpf_insn *in = &w->insns[i];

		if (rs_insn_is_pseudo_call(in)) {
			int32_t sub = in->imm;
			int32_t rel = in->off;

			if (xl->func_info_cnt && sub >= 0 && (size_t)sub < xl->func_info_cnt)
				rel = (int32_t)xl->func_info[sub].insn_off - (int32_t)i - 1;
			in->imm = rel;
			in->off = 0;
		} else if (rs_insn_is_pseudo_func(in) && i + 1 < w->insn_cnt) {
			w->insns[i + 1].imm = 0;
			in->off = 0;
		} else if (rs_insn_is_kfunc_call(in)) {
			fail(rep, xl, i, "kfunc call", "kfunc calls cannot be lifted");
			return -RS_ERR_UNLIFTABLE;
		}
	}
	return 0;
}

/* Helper id of a translated helper call: probes first, then the kernel function's name. */
static int32_t resolve_helper(const struct rs_prog *xl, const struct rs_patterns *ps, size_t i,
			      int32_t imm, char *fname, size_t sz)
{
	int32_t id = rs_patterns_helper(ps, imm);

	fname[0] = '\0';
	if (id >= 0)
		return id;
	id = helper_from_kallsyms(imm, fname, sz);
	if (id >= 0)
		rs_info("prog %u (%s): insn %zu: helper %s guessed from kernel function name %s\n",
			xl->id, xl->name, i, helper_names[id], fname);
	return id;
}

struct decision {
	size_t idx, n;			/* n == 0: rename a call in place */
	struct bpf_insn orig;
	bool del;
};

static int push_decision(struct decision **v, size_t *cnt, const struct decision *d)
{
	struct decision *n = realloc(*v, (*cnt + 1) * sizeof(*n));

	if (!n)
		return -ENOMEM;
	*v = n;
	n[(*cnt)++] = *d;
	return 0;
}

int rs_lift_match(const struct rs_prog *xl, const struct rs_patterns *ps, struct rs_prog *out,
		  struct rs_lift_sites *sites, struct rs_lift_report *rep)
{
	struct rs_prog w;
	struct ctx_state *st = NULL;
	uint32_t *in_cnt = NULL;
	struct rs_edit *e = NULL;
	struct decision *dec = NULL;
	size_t dec_cnt = 0;
	char err_text[256] = "";
	size_t i, k;
	int err;

	rs_prog_init(out);
	rs_prog_init(&w);
	memset(sites, 0, sizeof(*sites));
	err = rs_prog_copy(&w, xl);
	if (err)
		return err;
	err = fix_pseudo(&w, xl, rep);
	if (err)
		goto out;

	st = calloc(w.insn_cnt, sizeof(*st));
	in_cnt = calloc(w.insn_cnt + 1, sizeof(*in_cnt));
	if (!st || !in_cnt) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < w.insn_cnt; i += rs_insn_width(&w.insns[i])) {
		long t;

		if (!insn_is_jmp_like(&w.insns[i]))
			continue;
		t = rs_insn_target(w.insns, i);
		if (t >= 0 && (size_t)t < w.insn_cnt)
			in_cnt[t]++;
	}
	err = ctx_flow(w.insns, w.insn_cnt, st);
	if (err)
		goto out;

	/* pass 1: decide, on the translated code as dumped */
	i = 0;
	for (k = 0; k < ps->pat_cnt; k++) {
		const struct rs_pattern *p = &ps->pats[k];
		struct decision d = { .idx = 0, .n = p->xl_cnt, .del = true };

		if (p->kind == RS_PAT_PROLOGUE &&
		    match_at(p, w.insns, w.insn_cnt, 0, st, in_cnt, &d.orig)) {
			err = push_decision(&dec, &dec_cnt, &d);
			if (!err)
				err = add_site(sites, 0, p->xl_cnt, p->name);
			if (err)
				goto out;
			i = p->xl_cnt;
			break;
		}
	}
	while (i < w.insn_cnt) {
		const struct rs_pattern *best = NULL;
		struct bpf_insn orig, best_orig;
		const struct bpf_insn *in = &w.insns[i];

		for (k = 0; k < ps->pat_cnt; k++) {
			const struct rs_pattern *p = &ps->pats[k];

			if (p->kind == RS_PAT_PROLOGUE || p->xl[0].code != in->code)
				continue;
			if (best && best->xl_cnt >= p->xl_cnt)
				continue;
			if (match_at(p, w.insns, w.insn_cnt, i, st, in_cnt, &orig)) {
				best = p;
				best_orig = orig;
			}
		}
		if (best) {
			struct decision d = { .idx = i, .n = best->xl_cnt, .orig = best_orig };

			err = push_decision(&dec, &dec_cnt, &d);
			if (!err)
				err = add_site(sites, i, best->xl_cnt, best->name);
			if (err)
				goto out;
			i += best->xl_cnt;
			continue;
		}
		if (rs_insn_is_helper_call(in) && in->imm != BPF_FUNC_tail_call) {
			struct decision d = { .idx = i, .n = 0, .orig = *in };
			char fname[128];

			d.orig.imm = resolve_helper(xl, ps, i, in->imm, fname, sizeof(fname));
			if (d.orig.imm < 0) {
				fail(rep, xl, i, "helper call",
				     "call to kernel function %s (imm %d) that no probe explains",
				     fname[0] ? fname : "?", in->imm);
				err = -RS_ERR_UNLIFTABLE;
				goto out;
			}
			if (d.orig.imm != in->imm) {
				err = push_decision(&dec, &dec_cnt, &d);
				if (!err)
					err = add_site(sites, i, 1, "helper call");
				if (err)
					goto out;
			}
		}
		i += rs_insn_width(in);
	}

	/* pass 2: renames in place, then the edit list for the expansions */
	for (k = 0; k < dec_cnt; k++)
		if (!dec[k].n)
			w.insns[dec[k].idx] = dec[k].orig;
	e = rs_edit_new(&w);
	if (!e) {
		err = -ENOMEM;
		goto out;
	}
	for (k = 0; k < dec_cnt; k++) {
		const struct decision *d = &dec[k];

		if (!d->n)
			continue;
		if (d->del)
			err = rs_edit_delete(e, d->idx, d->n);
		else
			err = rs_edit_replace(e, d->idx, d->n, &d->orig, NULL, 1);
		if (err) {
			fail(rep, xl, d->idx, "edit list", "edit failed: %s", rs_strerror(err));
			goto out;
		}
	}
	err = rs_edit_apply(e, out, NULL, err_text, sizeof(err_text));
	if (err) {
		long at = -1;

		sscanf(err_text, "insn %ld", &at);
		fail(rep, xl, at >= 0 ? (size_t)at : 0, "edit list", "%s", err_text);
		goto out;
	}
	out->source = RS_SRC_LIFT;
	rep->sites_lifted = sites->cnt;
out:
	if (err) {
		rs_prog_free(out);
		free(sites->v);
		memset(sites, 0, sizeof(*sites));
	}
	rs_edit_free(e);
	free(dec);
	free(st);
	free(in_cnt);
	rs_prog_free(&w);
	return err;
}
