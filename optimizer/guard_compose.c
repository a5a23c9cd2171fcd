// SPDX-License-Identifier: BSD-2-Clause
/*
 * guard_compose.c - assemble the specialized program (DESIGN.md §3 "Guards"):
 *
 *     main:  for each distinct (slot s, generation g) of the guarded maps (the maps of a guard
 *            group share one slot: instrument/snapshot.c):
 *                r2 = map[guard][0] + s*8       direct value load, BPF_PSEUDO_MAP_IDX_VALUE
 *                r2 = *(u64 *)(r2 +0)
 *                if r2 != g goto ORIG            (ld_imm64 r3 = g when g needs 64 bits)
 *            the specialized main body (passes' output)
 *     ORIG:  the original main body, byte for byte
 *     subprograms: specialized copy (or the shared original when a pass left it unchanged),
 *            then the original copies of the changed ones; pseudo calls / pseudo funcs of
 *            specialized code reach specialized copies, those of original code the originals.
 *
 * Only r2/r3 are used before the body, r1 (ctx) is untouched.  BTF func_info gets one entry per
 * final subprogram (duplicated copies repeat the original's type id); line_info is moved with
 * every copied range, the prologue carries the first line of main.  The guard array is
 * appended to the maps.  Pure.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

struct seg {
	const struct rs_prog *src;
	size_t start, end;		/* range in src */
	size_t at;			/* final index */
	bool spec;			/* specialized code (calls go to specialized copies) */
};

/* index of the subprogram starting at t, -1 if t is no start */
static long subprog_of(const size_t *starts, size_t n, long t)
{
	size_t k;

	for (k = 0; k < n; k++)
		if ((long)starts[k] == t)
			return (long)k;
	return -1;
}

/* subprogram k of spec equals subprogram k of orig (targets compared by subprogram index) */
static bool same_subprog(const struct rs_opt_ctx *ctx, const size_t *ss, const size_t *os,
			 size_t n, size_t k)
{
	const struct rs_prog *sp = &ctx->prog, *op = ctx->orig;
	size_t slen = (k + 1 < n ? ss[k + 1] : sp->insn_cnt) - ss[k];
	size_t olen = (k + 1 < n ? os[k + 1] : op->insn_cnt) - os[k];
	size_t j;

	if (slen != olen)
		return false;
	for (j = 0; j < slen; j++) {
		const struct bpf_insn *a = &sp->insns[ss[k] + j], *b = &op->insns[os[k] + j];

		if (ctx->orig_idx[ss[k] + j] != (long)(os[k] + j))
			return false;
		if (a->code != b->code || a->dst_reg != b->dst_reg || a->src_reg != b->src_reg ||
		    a->off != b->off)
			return false;
		if (rs_insn_is_pseudo_call(a) || rs_insn_is_pseudo_func(a)) {
			if (subprog_of(ss, n, rs_insn_target(sp->insns, ss[k] + j)) !=
			    subprog_of(os, n, rs_insn_target(op->insns, os[k] + j)))
				return false;
		} else if (a->imm != b->imm) {
			return false;
		}
	}
	return true;
}

/* an earlier guarded map already checks the same slot and generation (a guard group: the
 * watcher bumps one slot for all of its maps) */
static bool same_check_before(const struct rs_opt_ctx *ctx, size_t m)
{
	const struct rs_map_snapshot *a = &ctx->snap->maps[m], *b;
	size_t k;

	for (k = 0; k < m; k++) {
		if (!ctx->map_guarded[k])
			continue;
		b = &ctx->snap->maps[k];
		if (b->guard_slot == a->guard_slot && b->generation == a->generation)
			return true;
	}
	return false;
}

/* guard prologue; ORIG's final index `orig_at` is known in advance */
static int emit_prologue(const struct rs_opt_ctx *ctx, struct bpf_insn *out, size_t *n,
			 uint32_t guard_idx, size_t orig_at, bool far)
{
	size_t m, p = 0;

	for (m = 0; m < ctx->orig->map_cnt; m++) {
		const struct rs_map_snapshot *ms;
		struct bpf_insn b[7];
		size_t c = 0, j;
		uint64_t g;

		if (!ctx->map_guarded[m] || same_check_before(ctx, m))
			continue;
		ms = &ctx->snap->maps[m];
		g = ms->generation;
		b[c++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 2,
					    .src_reg = BPF_PSEUDO_MAP_IDX_VALUE,
					    .imm = (int32_t)guard_idx };
		b[c++] = (struct bpf_insn){ .imm = (int32_t)(ms->guard_slot * 8) };
		b[c++] = (struct bpf_insn){ .code = BPF_LDX | BPF_DW | BPF_MEM, .dst_reg = 2,
					    .src_reg = 2 };
		if (g <= INT32_MAX) {
			b[c++] = (struct bpf_insn){ .code = BPF_JMP | BPF_JNE | BPF_K,
						    .dst_reg = 2, .imm = (int32_t)g };
		} else {
			b[c++] = (struct bpf_insn){ .code = BPF_LD | BPF_DW | BPF_IMM,
						    .dst_reg = 3, .imm = (int32_t)(uint32_t)g };
			b[c++] = (struct bpf_insn){ .imm = (int32_t)(uint32_t)(g >> 32) };
			b[c++] = (struct bpf_insn){ .code = BPF_JMP | BPF_JNE | BPF_X,
						    .dst_reg = 2, .src_reg = 3 };
		}
		/* long distance: if equal skip the gotol */
		if (far) {
			b[c - 1].code = (uint8_t)((b[c - 1].code & ~0xf0) | BPF_JEQ);
			b[c - 1].off = 1;
			b[c++] = (struct bpf_insn){ .code = BPF_JMP32 | BPF_JA };
		}
		for (j = 0; j < c; j++) {
			if (out) {
				out[p + j] = b[j];
				if (j == c - 1 && b[j].code == (BPF_JMP32 | BPF_JA))
					out[p + j].imm = (int32_t)(orig_at - (p + j) - 1);
				else if (j == c - 1)
					out[p + j].off = (int16_t)(orig_at - (p + j) - 1);
			}
		}
		p += c;
	}
	*n = p;
	return 0;
}

static int check_guards(const struct rs_opt_ctx *ctx, uint32_t *guarded)
{
	const struct rs_opt_opts *o = ctx->opts;
	size_t m;

	*guarded = 0;
	for (m = 0; m < ctx->orig->map_cnt; m++) {
		const struct rs_map_snapshot *ms;

		if (!ctx->map_guarded[m])
			continue;
		if (m >= ctx->snap->map_cnt || !ctx->snap->maps[m].watched) {
			rs_warn("prog %u (%s): map %zu (%s): a pass relied on it but it has no "
				"guard slot (not watched)", ctx->orig->id, ctx->orig->name, m,
				ctx->orig->maps[m].name);
			return -EINVAL;
		}
		ms = &ctx->snap->maps[m];
		if (o->guard_map.value_size &&
		    ((uint64_t)ms->guard_slot + 1) * 8 > o->guard_map.value_size) {
			rs_warn("prog %u (%s): map %zu (%s): guard slot %u outside the guard "
				"array's value (%u bytes)", ctx->orig->id, ctx->orig->name, m,
				ctx->orig->maps[m].name, ms->guard_slot, o->guard_map.value_size);
			return -RS_ERR_RANGE;
		}
		(*guarded)++;
	}
	return 0;
}

static int copy_lines(struct rs_prog *out, size_t *ln, const struct seg *s)
{
	size_t i;

	for (i = 0; i < s->src->line_info_cnt; i++) {
		struct rs_line_info li = s->src->line_info[i];

		if (li.insn_off < s->start || li.insn_off >= s->end)
			continue;
		li.insn_off = (uint32_t)(s->at + li.insn_off - s->start);
		if (*ln && out->line_info[*ln - 1].insn_off >= li.insn_off)
			continue;
		out->line_info[(*ln)++] = li;
	}
	return 0;
}

int rs_guard_compose(const struct rs_opt_ctx *ctx, struct rs_prog *out, uint32_t *guarded,
		     long **spec_pos)
{
	const struct rs_prog *sp = &ctx->prog, *op = ctx->orig;
	size_t *ss = NULL, *os = NULL, ns = 0, no = 0, k, i, plen, total, nseg = 0, fi = 0, ln = 0;
	size_t *spec_at = NULL, *orig_at = NULL;
	struct seg *segs = NULL;
	struct bpf_insn *insns = NULL;
	long *pos = NULL;
	bool *changed = NULL, far;
	struct rs_prog np;
	int ret, gidx;

	rs_prog_init(&np);
	ret = check_guards(ctx, guarded);
	if (ret)
		return ret;
	ret = rs_subprog_starts(sp->insns, sp->insn_cnt, sp->func_info, sp->func_info_cnt, &ss, &ns);
	if (ret)
		goto out;
	ret = rs_subprog_starts(op->insns, op->insn_cnt, op->func_info, op->func_info_cnt, &os, &no);
	if (ret)
		goto out;
	if (ns != no || sp->map_cnt < op->map_cnt) {
		rs_warn("prog %u (%s): passes changed the subprogram structure (%zu vs %zu) or "
			"the maps", op->id, op->name, ns, no);
		ret = -EINVAL;
		goto out;
	}
	ret = -ENOMEM;
	changed = calloc(ns, sizeof(*changed));
	spec_at = calloc(ns, sizeof(*spec_at));
	orig_at = calloc(ns, sizeof(*orig_at));
	segs = calloc(2 * ns + 1, sizeof(*segs));
	pos = malloc((sp->insn_cnt ? sp->insn_cnt : 1) * sizeof(*pos));
	if (!changed || !spec_at || !orig_at || !segs || !pos)
		goto out;
	for (k = 1; k < ns; k++)
		changed[k] = !same_subprog(ctx, ss, os, ns, k);

	/* layout: prologue, spec main, ORIG main, spec/shared subprogs, original copies */
	segs[nseg++] = (struct seg){ sp, 0, ns > 1 ? ss[1] : sp->insn_cnt, 0, true };
	segs[nseg++] = (struct seg){ op, 0, no > 1 ? os[1] : op->insn_cnt, 0, false };
	for (k = 1; k < ns; k++)
		segs[nseg++] = (struct seg){ sp, ss[k], k + 1 < ns ? ss[k + 1] : sp->insn_cnt,
					     0, true };
	for (k = 1; k < ns; k++)
		if (changed[k])
			segs[nseg++] = (struct seg){ op, os[k], k + 1 < no ? os[k + 1] :
						     op->insn_cnt, 0, false };
	/* prologue length depends on the distance to ORIG (gotol when far) */
	far = segs[0].end + 8 * (size_t)*guarded > 0x7000;
	emit_prologue(ctx, NULL, &plen, 0, 0, far);
	total = plen;
	for (i = 0; i < nseg; i++) {
		segs[i].at = total;
		total += segs[i].end - segs[i].start;
	}
	spec_at[0] = segs[0].at;
	orig_at[0] = segs[1].at;
	for (k = 1, i = 2; k < ns; k++, i++)
		spec_at[k] = orig_at[k] = segs[i].at;
	for (k = 1; k < ns; k++)
		if (changed[k])
			orig_at[k] = segs[i++].at;

	insns = calloc(total, sizeof(*insns));
	if (!insns)
		goto out;
	emit_prologue(ctx, insns, &plen, (uint32_t)sp->map_cnt, segs[1].at, far);
	for (i = 0; i < nseg; i++) {
		const struct seg *s = &segs[i];
		const size_t *st = s->spec ? ss : os;
		const size_t *dst = s->spec ? spec_at : orig_at;
		size_t j;

		memcpy(&insns[s->at], &s->src->insns[s->start],
		       (s->end - s->start) * sizeof(*insns));
		for (j = s->start; j < s->end; j++) {
			const struct bpf_insn *in = &s->src->insns[j];
			long sub;

			if (s->spec && s->src == sp)
				pos[j] = (long)(s->at + j - s->start);
			if (!rs_insn_is_pseudo_call(in) && !rs_insn_is_pseudo_func(in))
				continue;
			sub = subprog_of(st, ns, rs_insn_target(s->src->insns, j));
			if (sub < 0) {
				rs_warn("prog %u (%s): insn %zu: call target is no subprogram",
					op->id, op->name, j);
				ret = -EINVAL;
				goto out;
			}
			ret = rs_insn_set_target(insns, s->at + j - s->start, dst[sub]);
			if (ret)
				goto out;
		}
	}
	/* shared subprograms: positions already set through the spec segments */

	ret = -ENOMEM;
	np.insns = insns;
	np.insn_cnt = total;
	insns = NULL;
	memcpy(np.name, sp->name, sizeof(np.name));
	np.id = op->id;
	memcpy(np.tag, op->tag, sizeof(np.tag));
	np.type = sp->type;
	np.expected_attach_type = sp->expected_attach_type;
	np.prog_flags = sp->prog_flags;
	memcpy(np.license, sp->license, sizeof(np.license));
	np.source = RS_SRC_BUILD;
	np.btf_id = sp->btf_id;
	for (i = 0; i < sp->map_cnt; i++)
		if (rs_prog_add_map(&np, &sp->maps[i]) < 0)
			goto out;
	gidx = rs_prog_add_map(&np, &ctx->opts->guard_map);
	if (gidx < 0)
		goto out;
	if (op->func_info_cnt == no && no) {
		np.func_info = calloc(nseg, sizeof(*np.func_info));
		if (!np.func_info)
			goto out;
		np.func_info[fi++] = (struct rs_func_info){ 0, op->func_info[0].type_id };
		for (k = 1, i = 2; k < ns; k++, i++)
			np.func_info[fi++] = (struct rs_func_info){ (uint32_t)segs[i].at,
								    op->func_info[k].type_id };
		for (k = 1; k < ns; k++)
			if (changed[k])
				np.func_info[fi++] = (struct rs_func_info){
					(uint32_t)segs[i++].at, op->func_info[k].type_id };
		np.func_info_cnt = fi;
	}
	if (sp->line_info_cnt || op->line_info_cnt) {
		np.line_info = calloc(sp->line_info_cnt + op->line_info_cnt + 1,
				      sizeof(*np.line_info));
		if (!np.line_info)
			goto out;
		if (sp->line_info_cnt && plen) {
			np.line_info[ln] = sp->line_info[0];
			np.line_info[ln++].insn_off = 0;
		}
		for (i = 0; i < nseg; i++)
			copy_lines(&np, &ln, &segs[i]);
		np.line_info_cnt = ln;
	}
	rs_prog_free(out);
	*out = np;
	rs_prog_init(&np);
	*spec_pos = pos;
	pos = NULL;
	ret = 0;
out:
	rs_prog_free(&np);
	free(insns);
	free(pos);
	free(ss);
	free(os);
	free(changed);
	free(spec_at);
	free(orig_at);
	free(segs);
	return ret;
}
