// SPDX-License-Identifier: BSD-2-Clause
/*
 * edit.c - edit lists: record replace / insert / delete against the old instruction indexes,
 * then linearize once.
 *
 * Linearization lays the program out gap by gap.  Gap i is the place just before old
 * instruction i; it holds, in this order, the code inserted *after* the instruction that ends
 * at i, then the code inserted *before* i.  entry[i] is where control that used to arrive at
 * old i arrives now: the first instruction inserted before i, else the replacement of a range
 * starting at i, else old i itself; for a deleted instruction, whatever comes next.  Every
 * branch of a surviving instruction to old t goes to entry[t].  New code addresses old
 * instructions by index (targets[] >= 0): it reaches the old instruction itself when it
 * survives (not code inserted before it, so a guard placed before i can jump to i), else
 * entry[t].  All displacements are range-checked in a scratch buffer before `out` is touched.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/ir.h"

enum edit_kind { ED_REPLACE, ED_INSERT_BEFORE, ED_INSERT_AFTER, ED_DELETE };

struct edit_op {
	enum edit_kind kind;
	size_t idx;		/* old index */
	size_t n_old;		/* replace / delete: old instructions removed */
	struct bpf_insn *insns;	/* new code */
	long *targets;		/* parallel to insns, NULL: all local */
	size_t n;
	long next;		/* next op in the same gap list, -1 */
	size_t new_start;	/* position of the new code after layout */
};

struct rs_edit {
	const struct rs_prog *prog;
	struct edit_op *ops;
	size_t cnt;
	size_t cap;
};

/* sentinels in entry[] */
#define E_HALF		(-1L)	/* second half of an ld_imm64 */
#define E_INTERIOR	(-2L)	/* inside a replaced range */

struct rs_edit *rs_edit_new(const struct rs_prog *prog)
{
	struct rs_edit *e = calloc(1, sizeof(*e));

	if (e)
		e->prog = prog;
	return e;
}

void rs_edit_free(struct rs_edit *e)
{
	size_t k;

	if (!e)
		return;
	for (k = 0; k < e->cnt; k++) {
		free(e->ops[k].insns);
		free(e->ops[k].targets);
	}
	free(e->ops);
	free(e);
}

/* A second half has code 0, so it never looks like the first half of another ld_imm64. */
static bool is_second_half(const struct rs_prog *p, size_t idx)
{
	return idx > 0 && idx < p->insn_cnt && rs_insn_is_ldimm64(&p->insns[idx - 1]);
}

static int add_op(struct rs_edit *e, enum edit_kind kind, size_t idx, size_t n_old,
		  const struct bpf_insn *insns, const long *targets, size_t n)
{
	struct edit_op *op;

	if (n && !insns)
		return -EINVAL;
	if (e->cnt == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 8;
		struct edit_op *ops = realloc(e->ops, cap * sizeof(*ops));

		if (!ops)
			return -ENOMEM;
		e->ops = ops;
		e->cap = cap;
	}
	op = &e->ops[e->cnt];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->idx = idx;
	op->n_old = n_old;
	op->n = n;
	if (n) {
		op->insns = malloc(n * sizeof(*insns));
		if (!op->insns)
			return -ENOMEM;
		memcpy(op->insns, insns, n * sizeof(*insns));
		if (targets) {
			op->targets = malloc(n * sizeof(*targets));
			if (!op->targets) {
				free(op->insns);
				return -ENOMEM;
			}
			memcpy(op->targets, targets, n * sizeof(*targets));
		}
	}
	e->cnt++;
	return 0;
}

/* idx must start an instruction; end (exclusive) must not split an ld_imm64 */
static int check_range(const struct rs_edit *e, size_t idx, size_t n_old)
{
	const struct rs_prog *p = e->prog;

	if (!n_old || idx >= p->insn_cnt || n_old > p->insn_cnt - idx) {
		rs_debug("prog %u (%s): insn %zu: edit range of %zu out of bounds", p->id, p->name,
			 idx, n_old);
		return -EINVAL;
	}
	if (is_second_half(p, idx) || is_second_half(p, idx + n_old)) {
		rs_debug("prog %u (%s): insn %zu: edit splits an ld_imm64", p->id, p->name, idx);
		return -EINVAL;
	}
	return 0;
}

int rs_edit_replace(struct rs_edit *e, size_t idx, size_t n_old,
		    const struct bpf_insn *insns, const long *targets, size_t n)
{
	int err = check_range(e, idx, n_old);

	if (err)
		return err;
	return add_op(e, n ? ED_REPLACE : ED_DELETE, idx, n_old, insns, targets, n);
}

int rs_edit_insert_before(struct rs_edit *e, size_t idx,
			  const struct bpf_insn *insns, const long *targets, size_t n)
{
	/* idx == insn_cnt appends at the end of the program */
	if (idx > e->prog->insn_cnt || is_second_half(e->prog, idx))
		return -EINVAL;
	if (!n)
		return 0;
	return add_op(e, ED_INSERT_BEFORE, idx, 0, insns, targets, n);
}

int rs_edit_insert_after(struct rs_edit *e, size_t idx,
			 const struct bpf_insn *insns, const long *targets, size_t n)
{
	if (idx >= e->prog->insn_cnt || is_second_half(e->prog, idx))
		return -EINVAL;
	if (!n)
		return 0;
	return add_op(e, ED_INSERT_AFTER, idx, 0, insns, targets, n);
}

int rs_edit_delete(struct rs_edit *e, size_t idx, size_t n)
{
	int err = check_range(e, idx, n);

	if (err)
		return err;
	return add_op(e, ED_DELETE, idx, n, NULL, NULL, 0);
}

/* ---- linearization --------------------------------------------------------------------- */

struct layout {
	size_t cnt;		/* old instruction count */
	long *removed_by;	/* per old insn: op removing it, -1 */
	long *a_head, *a_tail;	/* per gap: insert_after lists */
	long *b_head, *b_tail;	/* per gap: insert_before lists */
	long *o2n;		/* per old insn: new index, -1 */
	long *entry;		/* per old insn + 1: where control to it arrives */
	size_t new_cnt;
	struct bpf_insn *insns;	/* new code (scratch) */
	char *err;
	size_t errsz;
};

static void layout_free(struct layout *l)
{
	free(l->removed_by);
	free(l->a_head);
	free(l->a_tail);
	free(l->b_head);
	free(l->b_tail);
	free(l->o2n);
	free(l->entry);
	free(l->insns);
}

__attribute__((format(printf, 3, 4)))
static int fail(struct layout *l, int err, const char *fmt, ...)
{
	va_list ap;

	if (l->err && l->errsz) {
		va_start(ap, fmt);
		vsnprintf(l->err, l->errsz, fmt, ap);
		va_end(ap);
	}
	return err;
}

static void list_add(long *head, long *tail, struct edit_op *ops, size_t gap, long k)
{
	ops[k].next = -1;
	if (tail[gap] < 0)
		head[gap] = k;
	else
		ops[tail[gap]].next = k;
	tail[gap] = k;
}

static int layout_alloc(struct layout *l, size_t cnt)
{
	size_t g = cnt + 1, k;

	l->cnt = cnt;
	l->removed_by = malloc(g * sizeof(long));
	l->a_head = malloc(g * sizeof(long));
	l->a_tail = malloc(g * sizeof(long));
	l->b_head = malloc(g * sizeof(long));
	l->b_tail = malloc(g * sizeof(long));
	l->o2n = malloc(g * sizeof(long));
	l->entry = malloc(g * sizeof(long));
	if (!l->removed_by || !l->a_head || !l->a_tail || !l->b_head || !l->b_tail || !l->o2n ||
	    !l->entry)
		return -ENOMEM;
	for (k = 0; k < g; k++) {
		l->removed_by[k] = l->a_head[k] = l->a_tail[k] = -1;
		l->b_head[k] = l->b_tail[k] = l->o2n[k] = l->entry[k] = -1;
	}
	return 0;
}

/* Sort the ops into gaps and check that they do not overlap. */
static int place_ops(struct rs_edit *e, struct layout *l)
{
	const struct rs_prog *p = e->prog;
	size_t k, j;

	for (k = 0; k < e->cnt; k++) {
		struct edit_op *op = &e->ops[k];

		if (op->kind != ED_REPLACE && op->kind != ED_DELETE)
			continue;
		for (j = op->idx; j < op->idx + op->n_old; j++) {
			if (l->removed_by[j] >= 0)
				return fail(l, -EINVAL, "insn %zu: overlapping replace/delete edits",
					    j);
			l->removed_by[j] = (long)k;
		}
	}
	for (k = 0; k < e->cnt; k++) {
		struct edit_op *op = &e->ops[k];
		long r;

		switch (op->kind) {
		case ED_INSERT_BEFORE:
			r = op->idx < l->cnt ? l->removed_by[op->idx] : -1;
			if (r >= 0 && e->ops[r].idx != op->idx)
				return fail(l, -EINVAL,
					    "insn %zu: insert before an instruction inside a removed range",
					    op->idx);
			list_add(l->b_head, l->b_tail, e->ops, op->idx, (long)k);
			break;
		case ED_INSERT_AFTER:
			if (l->removed_by[op->idx] >= 0)
				return fail(l, -EINVAL,
					    "insn %zu: insert after an instruction that is removed",
					    op->idx);
			list_add(l->a_head, l->a_tail, e->ops,
				 op->idx + rs_insn_width(&p->insns[op->idx]), (long)k);
			break;
		default:
			break;
		}
	}
	return 0;
}

static size_t emit_list(struct rs_edit *e, long k, size_t pos)
{
	for (; k >= 0; k = e->ops[k].next) {
		e->ops[k].new_start = pos;
		pos += e->ops[k].n;
	}
	return pos;
}

/* Compute new positions: o2n, entry, new_start of every op, new_cnt. */
static void compute_layout(struct rs_edit *e, struct layout *l)
{
	const struct rs_prog *p = e->prog;
	size_t i = 0, pos = 0, j;

	for (;;) {
		long r;

		pos = emit_list(e, l->a_head[i], pos);
		l->entry[i] = (long)pos;
		pos = emit_list(e, l->b_head[i], pos);
		if (i >= l->cnt)
			break;
		r = l->removed_by[i];
		if (r >= 0) {
			struct edit_op *op = &e->ops[r];

			op->new_start = pos;
			pos += op->n;
			for (j = i + 1; j < i + op->n_old; j++)
				l->entry[j] = op->kind == ED_REPLACE ? E_INTERIOR : -3;
			i += op->n_old;
			continue;
		}
		l->o2n[i] = (long)pos;
		if (rs_insn_is_ldimm64(&p->insns[i]) && i + 1 < l->cnt) {
			l->o2n[i + 1] = (long)pos + 1;
			l->entry[i + 1] = E_HALF;
			pos += 2;
			i += 2;
		} else {
			pos += 1;
			i += 1;
		}
	}
	/* interior of deleted ranges: where the range's end arrives (filled backwards) */
	for (j = l->cnt; j-- > 0;)
		if (l->entry[j] == -3)
			l->entry[j] = l->entry[j + 1];
	l->new_cnt = pos;
}

/* Where new code's old-index target t arrives. */
static long new_code_target(struct layout *l, long t)
{
	if (t < 0 || (size_t)t >= l->cnt || l->entry[t] == E_HALF)
		return -1;
	if (l->o2n[t] >= 0)
		return l->o2n[t];
	return l->entry[t];
}

static int set_target(struct layout *l, size_t pos, long target, const char *who, size_t idx)
{
	int err = rs_insn_set_target(l->insns, pos, (size_t)target);

	if (err == -RS_ERR_RANGE)
		return fail(l, err, "insn %zu%s: offset to new insn %ld does not fit (at new insn %zu)",
			    idx, who, target, pos);
	if (err)
		return fail(l, err, "insn %zu%s: cannot re-encode target", idx, who);
	return 0;
}

static bool has_target(const struct bpf_insn *i)
{
	return rs_insn_is_jmp(i) || rs_insn_is_pseudo_call(i) || rs_insn_is_pseudo_func(i);
}

/* Copy code into the scratch buffer and re-encode every displacement. */
static int emit_code(struct rs_edit *e, struct layout *l)
{
	const struct rs_prog *p = e->prog;
	size_t i, k;
	int err;

	l->insns = calloc(l->new_cnt ? l->new_cnt : 1, sizeof(*l->insns));
	if (!l->insns)
		return -ENOMEM;
	for (i = 0; i < l->cnt; i++) {
		long t, nt;

		if (l->o2n[i] < 0)
			continue;
		l->insns[l->o2n[i]] = p->insns[i];
		if (l->entry[i] == E_HALF || !has_target(&p->insns[i]))
			continue;
		t = rs_insn_target(p->insns, i);
		if (t < 0 || (size_t)t >= l->cnt || l->entry[t] == E_HALF)
			return fail(l, -RS_ERR_INVALID_PROG, "insn %zu: target %ld is invalid", i, t);
		nt = l->entry[t];
		if (nt == E_INTERIOR)
			return fail(l, -EINVAL, "insn %zu: branch into the middle of replaced insn %ld",
				    i, t);
		err = set_target(l, (size_t)l->o2n[i], nt, "", i);
		if (err)
			return err;
	}
	for (k = 0; k < e->cnt; k++) {
		struct edit_op *op = &e->ops[k];
		char who[48];

		snprintf(who, sizeof(who), " (code of edit %zu)", k);
		if (op->n)
			memcpy(&l->insns[op->new_start], op->insns, op->n * sizeof(*op->insns));
		for (i = 0; i < op->n; i++) {
			long want = op->targets ? op->targets[i] : RS_TARGET_LOCAL;
			const struct bpf_insn *in = &op->insns[i];
			long nt;

			if (!has_target(in)) {
				if (want != RS_TARGET_LOCAL)
					return fail(l, -EINVAL, "insn %zu%s: new insn %zu has a target but does not branch",
						    op->idx, who, i);
				continue;
			}
			if (want == RS_TARGET_LOCAL) {
				long local = (long)i + 1 + (rs_insn_is_jmp(in) ? rs_insn_jmp_off(in) :
							    in->imm);

				if (local < 0 || local > (long)op->n)
					return fail(l, -EINVAL, "insn %zu%s: new insn %zu branches outside its sequence",
						    op->idx, who, i);
				nt = (long)op->new_start + local;
			} else {
				nt = new_code_target(l, want);
				if (nt < 0)
					return fail(l, -EINVAL, "insn %zu%s: new insn %zu: bad old target %ld",
						    op->idx, who, i, want);
			}
			err = set_target(l, op->new_start + i, nt, who, op->idx);
			if (err)
				return err;
		}
	}
	return 0;
}

/* New offset of func/line info at old `off`; -1 when it has no place any more. */
static long info_pos(struct rs_edit *e, struct layout *l, uint32_t off)
{
	long n;

	if (off >= l->cnt)
		return -1;
	n = l->entry[off];
	if (n == E_INTERIOR)
		n = e->ops[l->removed_by[off]].new_start;
	if (n < 0 || (size_t)n >= l->new_cnt)
		return -1;
	return n;
}

static int fix_func_info(struct rs_edit *e, struct layout *l, struct rs_prog *tmp)
{
	const struct rs_prog *p = e->prog;
	size_t k, n = 0;

	if (!p->func_info_cnt)
		return 0;
	tmp->func_info = malloc(p->func_info_cnt * sizeof(*tmp->func_info));
	if (!tmp->func_info)
		return -ENOMEM;
	for (k = 0; k < p->func_info_cnt; k++) {
		long pos = info_pos(e, l, p->func_info[k].insn_off);

		if (pos < 0)
			continue;
		/* a subprogram removed entirely lands on the next one: the later entry wins */
		if (n && tmp->func_info[n - 1].insn_off == (uint32_t)pos)
			n--;
		tmp->func_info[n] = p->func_info[k];
		tmp->func_info[n++].insn_off = (uint32_t)pos;
	}
	tmp->func_info_cnt = n;
	return 0;
}

static int fix_line_info(struct rs_edit *e, struct layout *l, struct rs_prog *tmp)
{
	const struct rs_prog *p = e->prog;
	size_t k, n = 0;

	if (!p->line_info_cnt)
		return 0;
	tmp->line_info = malloc(p->line_info_cnt * sizeof(*tmp->line_info));
	if (!tmp->line_info)
		return -ENOMEM;
	for (k = 0; k < p->line_info_cnt; k++) {
		long pos = info_pos(e, l, p->line_info[k].insn_off);

		if (pos < 0)
			continue;
		/* info of removed code moved onto a survivor: the survivor's own wins */
		if (n && tmp->line_info[n - 1].insn_off == (uint32_t)pos)
			n--;
		tmp->line_info[n] = p->line_info[k];
		tmp->line_info[n++].insn_off = (uint32_t)pos;
	}
	tmp->line_info_cnt = n;
	return 0;
}

int rs_edit_apply(struct rs_edit *e, struct rs_prog *out, long **old_to_new,
		  char *err, size_t errsz)
{
	const struct rs_prog *p = e->prog;
	struct layout l = { .err = err, .errsz = errsz };
	struct rs_prog tmp = *p;
	long *map = NULL;
	int ret;

	if (err && errsz)
		err[0] = '\0';
	tmp.insns = NULL;
	tmp.maps = NULL;
	tmp.func_info = NULL;
	tmp.line_info = NULL;
	tmp.func_info_cnt = tmp.line_info_cnt = 0;
	ret = layout_alloc(&l, p->insn_cnt);
	if (ret)
		goto out;
	ret = place_ops(e, &l);
	if (ret)
		goto out;
	compute_layout(e, &l);
	ret = emit_code(e, &l);
	if (ret)
		goto out;
	ret = fix_func_info(e, &l, &tmp);
	if (ret)
		goto out;
	ret = fix_line_info(e, &l, &tmp);
	if (ret)
		goto out;
	ret = rs_map_refs_dup(&tmp.maps, p->maps, p->map_cnt);
	if (ret)
		goto out;
	if (old_to_new) {
		map = malloc((p->insn_cnt ? p->insn_cnt : 1) * sizeof(*map));
		if (!map) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(map, l.o2n, p->insn_cnt * sizeof(*map));
	}
	tmp.insns = l.insns;
	tmp.insn_cnt = l.new_cnt;
	l.insns = NULL;
	/* out may be the edited program itself: nothing of it is read any more */
	rs_prog_free(out);
	*out = tmp;
	tmp.insns = NULL;
	tmp.maps = NULL;
	tmp.func_info = NULL;
	tmp.line_info = NULL;
	if (old_to_new)
		*old_to_new = map;
	map = NULL;
out:
	if (ret && p->name[0])
		rs_debug("prog %u (%s): edit: %s", p->id, p->name, err ? err : rs_strerror(ret));
	free(map);
	free(tmp.insns);
	rs_map_refs_free(tmp.maps, p->map_cnt);
	free(tmp.func_info);
	free(tmp.line_info);
	layout_free(&l);
	return ret;
}
