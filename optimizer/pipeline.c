// SPDX-License-Identifier: BSD-2-Clause
/*
 * pipeline.c - rs_optimize(): the specializer's driver (DESIGN.md §3, docs/optimizer.md).
 *
 * Copies the program into a working context, runs the soundness analysis (every map and
 * lookup site gets a fact and an ANALYSIS remark), runs the passes in order with per-pass
 * statistics, each pass on a backup so a failing pass costs only its own changes, and hands the
 * result to the guard composition (guard_compose.c).  When no pass relied on map contents the
 * original program is returned unchanged.  Also the pass-side API of pass.h (commit, remarks,
 * fact and profile lookups).  Pure: no system calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

/* pipeline order; constprop after the map passes folds what they exposed */
static const struct rs_pass *const pipeline[] = {
	&rs_pass_map_fold,
	&rs_pass_table_elim,
	&rs_pass_hot_keys,
	&rs_pass_constprop,
	&rs_pass_loop_unroll,
	&rs_pass_store_merge,
	&rs_pass_dce,
	&rs_pass_layout,
};

static const char *const pass_names[] = {
	"map_fold", "table_elim", "hot_keys", "constprop", "loop_unroll", "store_merge", "dce",
	"layout", NULL,
};

const char *const *rs_pass_names(void)
{
	return pass_names;
}

/* ---- pass-side API --------------------------------------------------------------------- */

int rs_pass_commit_prog(struct rs_opt_ctx *ctx, struct rs_prog *np, const long *old_to_new)
{
	size_t old_cnt = ctx->prog.insn_cnt, i, o;
	long *idx, *entry, prev = -1;

	idx = malloc((np->insn_cnt ? np->insn_cnt : 1) * sizeof(*idx));
	entry = malloc((old_cnt ? old_cnt : 1) * sizeof(*entry));
	if (!idx || !entry) {
		free(idx);
		free(entry);
		return -ENOMEM;
	}
	for (i = 0; i < np->insn_cnt; i++)
		idx[i] = -1;
	/* entry[i]: where control arriving at old i goes: itself, or what is laid out next */
	for (i = 0; i < old_cnt; i++) {
		long n = old_to_new[i];

		if (n >= 0 && (size_t)n < np->insn_cnt) {
			idx[n] = ctx->orig_idx[i];
			entry[i] = n;
			prev = n;
		} else {
			entry[i] = prev + 1 < (long)np->insn_cnt ? prev + 1 : -1;
		}
	}
	for (o = 0; ctx->orig_pos && o < ctx->orig->insn_cnt; o++) {
		long p = ctx->orig_pos[o];

		if (p >= 0)
			ctx->orig_pos[o] = (size_t)p < old_cnt ? entry[p] : -1;
	}
	free(entry);
	free(ctx->orig_idx);
	ctx->orig_idx = idx;
	rs_prog_free(&ctx->prog);
	ctx->prog = *np;
	rs_prog_init(np);
	return 0;
}

int rs_pass_commit(struct rs_opt_ctx *ctx, struct rs_edit *e)
{
	struct rs_prog np;
	long *o2n = NULL;
	char err[160] = "";
	int ret;

	rs_prog_init(&np);
	ret = rs_edit_apply(e, &np, &o2n, err, sizeof(err));
	rs_edit_free(e);
	if (ret) {
		rs_warn("prog %u (%s): pass '%s': %s: %s", ctx->orig->id, ctx->orig->name,
			ctx->pass_name ? ctx->pass_name : "?", err[0] ? err : "edit failed",
			rs_strerror(ret));
		return ret;
	}
	ret = rs_pass_commit_prog(ctx, &np, o2n);
	free(o2n);
	rs_prog_free(&np);
	return ret;
}

int rs_pass_remark(struct rs_opt_ctx *ctx, enum rs_remark_kind kind, long orig_insn,
		   int map_idx, const struct bpf_insn *before, size_t before_cnt,
		   const struct bpf_insn *after, size_t after_cnt,
		   const char *assumption, const char *fmt, ...)
{
	struct rs_remark rm;
	va_list ap;

	if (ctx->stats) {
		if (kind == RS_REMARK_APPLIED)
			ctx->stats->applied++;
		else if (kind == RS_REMARK_MISSED)
			ctx->stats->missed++;
	}
	if (!ctx->remarks)
		return 0;		/* a pass run inside another, quietly (loop_unroll) */
	memset(&rm, 0, sizeof(rm));
	rm.kind = kind;
	snprintf(rm.pass, sizeof(rm.pass), "%s", ctx->pass_name ? ctx->pass_name : "pipeline");
	rm.orig_insn = orig_insn;
	rm.new_insn = -1;
	rm.map_idx = map_idx;
	rm.guard_slot = -1;
	va_start(ap, fmt);
	vsnprintf(rm.msg, sizeof(rm.msg), fmt, ap);
	va_end(ap);
	if (assumption)
		snprintf(rm.assumption, sizeof(rm.assumption), "%s", assumption);
	rm.before = (struct bpf_insn *)before;
	rm.before_cnt = before_cnt;
	rm.after = (struct bpf_insn *)after;
	rm.after_cnt = after_cnt;
	return rs_remarks_add(ctx->remarks, &rm);
}

const struct rs_site_fact *rs_pass_site_fact(const struct rs_opt_ctx *ctx, long orig_insn)
{
	size_t i;

	for (i = 0; i < ctx->site_fact_cnt; i++)
		if ((long)ctx->site_facts[i].insn == orig_insn)
			return &ctx->site_facts[i];
	return NULL;
}

const struct rs_map_fact *rs_pass_map_fact(const struct rs_opt_ctx *ctx, uint32_t map_idx)
{
	return map_idx < ctx->map_fact_cnt ? &ctx->map_facts[map_idx] : NULL;
}

const struct rs_site_profile *rs_pass_site_profile(const struct rs_opt_ctx *ctx, long orig_insn)
{
	size_t i;

	if (!ctx->prof)
		return NULL;
	for (i = 0; i < ctx->prof->site_cnt; i++)
		if ((long)ctx->prof->sites[i].insn == orig_insn)
			return &ctx->prof->sites[i];
	return NULL;
}

void rs_pass_depend_on_map(struct rs_opt_ctx *ctx, uint32_t map_idx)
{
	if (map_idx < ctx->orig->map_cnt)
		ctx->map_guarded[map_idx] = true;
}

/* ---- the driver ------------------------------------------------------------------------ */

static bool pass_selected(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p = list;

	if (!list)
		return true;
	while ((p = strstr(p, name))) {
		if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return true;
		p += n;
	}
	return false;
}

/* every name in the comma-separated list is a pass */
static int check_pass_list(const char *list)
{
	const char *p = list;

	while (p && *p) {
		size_t n = strcspn(p, ","), k;
		bool ok = false;

		for (k = 0; pass_names[k]; k++)
			if (strlen(pass_names[k]) == n && !strncmp(pass_names[k], p, n))
				ok = true;
		if (!ok && n) {
			rs_warn("optimizer: unknown pass '%.*s'", (int)n, p);
			return -EINVAL;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	return 0;
}

static const char *level_name(enum rs_map_level l)
{
	switch (l) {
	case RS_MAP_STABLE_VALUES:
		return "stable values";
	case RS_MAP_STABLE_KEYS:
		return "stable keys";
	default:
		return "unstable";
	}
}

static int analysis_remarks(struct rs_opt_ctx *ctx)
{
	size_t i;
	int err;

	ctx->pass_name = "analysis";
	for (i = 0; i < ctx->map_fact_cnt; i++) {
		const struct rs_map_fact *f = &ctx->map_facts[i];

		err = rs_pass_remark(ctx, RS_REMARK_ANALYSIS, -1, (int)f->map_idx, NULL, 0,
				     NULL, 0, NULL, "map %u (%s): %s: %s", f->map_idx,
				     ctx->orig->maps[f->map_idx].name, level_name(f->level),
				     f->reason);
		if (err)
			return err;
	}
	for (i = 0; i < ctx->site_fact_cnt; i++) {
		const struct rs_site_fact *f = &ctx->site_facts[i];

		err = rs_pass_remark(ctx, RS_REMARK_ANALYSIS, f->insn, (int)f->map_idx,
				     &ctx->orig->insns[f->insn], 1, NULL, 0, NULL,
				     "lookup site insn %u: value %s, key %s: %s", f->insn,
				     f->value_read_only ? "read-only" : "written/escapes",
				     f->key_known ? "on stack" : "unknown", f->reason);
		if (err)
			return err;
	}
	ctx->pass_name = NULL;
	return 0;
}

struct backup {
	struct rs_prog prog;
	long *orig_idx;
	long *orig_pos;
	bool *map_guarded;
	size_t remark_cnt;
};

static int backup_take(struct backup *b, const struct rs_opt_ctx *ctx)
{
	size_t n = ctx->prog.insn_cnt, m = ctx->orig->insn_cnt, k = ctx->orig->map_cnt;

	rs_prog_init(&b->prog);
	b->orig_idx = malloc((n ? n : 1) * sizeof(long));
	b->orig_pos = malloc((m ? m : 1) * sizeof(long));
	b->map_guarded = malloc(k ? k : 1);
	if (!b->orig_idx || !b->orig_pos || !b->map_guarded || rs_prog_copy(&b->prog, &ctx->prog))
		return -ENOMEM;
	memcpy(b->orig_idx, ctx->orig_idx, n * sizeof(long));
	memcpy(b->orig_pos, ctx->orig_pos, m * sizeof(long));
	memcpy(b->map_guarded, ctx->map_guarded, k);
	b->remark_cnt = ctx->remarks->cnt;
	return 0;
}

static void backup_free(struct backup *b)
{
	rs_prog_free(&b->prog);
	free(b->orig_idx);
	free(b->orig_pos);
	free(b->map_guarded);
	memset(b, 0, sizeof(*b));
}

/* put the context back as it was before the pass (its remarks dropped too) */
static void backup_restore(struct backup *b, struct rs_opt_ctx *ctx)
{
	size_t i;

	rs_prog_free(&ctx->prog);
	ctx->prog = b->prog;
	rs_prog_init(&b->prog);
	free(ctx->orig_idx);
	ctx->orig_idx = b->orig_idx;
	b->orig_idx = NULL;
	memcpy(ctx->orig_pos, b->orig_pos, ctx->orig->insn_cnt * sizeof(long));
	memcpy(ctx->map_guarded, b->map_guarded, ctx->orig->map_cnt);
	for (i = b->remark_cnt; i < ctx->remarks->cnt; i++) {
		free(ctx->remarks->v[i].before);
		free(ctx->remarks->v[i].after);
	}
	ctx->remarks->cnt = b->remark_cnt;
}

static int run_pass(struct rs_opt_ctx *ctx, const struct rs_pass *pass, struct rs_pass_stats *st)
{
	struct backup b;
	char err[160];
	int ret;

	memset(st, 0, sizeof(*st));
	snprintf(st->pass, sizeof(st->pass), "%s", pass->name);
	st->insns_before = ctx->prog.insn_cnt;
	ret = backup_take(&b, ctx);
	if (ret)
		goto out;
	ctx->stats = st;
	ctx->pass_name = pass->name;
	ret = pass->run(ctx);
	if (!ret && rs_prog_validate(&ctx->prog, err, sizeof(err))) {
		rs_warn("prog %u (%s): pass '%s': output invalid: %s (changes dropped)",
			ctx->orig->id, ctx->orig->name, pass->name, err);
		ret = -RS_ERR_INVALID_PROG;
	} else if (ret && ret != -ENOMEM) {
		snprintf(err, sizeof(err), "%s", rs_strerror(ret));
		rs_warn("prog %u (%s): pass '%s': %s (changes dropped)", ctx->orig->id,
			ctx->orig->name, pass->name, err);
	}
	if (ret && ret != -ENOMEM) {
		backup_restore(&b, ctx);
		memset(st, 0, sizeof(*st));
		snprintf(st->pass, sizeof(st->pass), "%s", pass->name);
		st->insns_before = ctx->prog.insn_cnt;
		ret = rs_pass_remark(ctx, RS_REMARK_MISSED, -1, -1, NULL, 0, NULL, 0, NULL,
				     "pass failed, its changes were dropped: %s", err);
	}
out:
	st->insns_after = ctx->prog.insn_cnt;
	ctx->stats = NULL;
	ctx->pass_name = NULL;
	backup_free(&b);
	return ret;
}

/* new_insn and guards of every remark, now that the final layout is known */
static void finish_remarks(struct rs_opt_ctx *ctx, const long *spec_pos, bool specialized)
{
	size_t i;

	for (i = 0; i < ctx->remarks->cnt; i++) {
		struct rs_remark *rm = &ctx->remarks->v[i];
		long p;

		rm->new_insn = -1;
		if (rm->orig_insn >= 0 && (size_t)rm->orig_insn < ctx->orig->insn_cnt) {
			if (!specialized) {
				rm->new_insn = rm->orig_insn;
			} else {
				p = ctx->orig_pos[rm->orig_insn];
				if (p >= 0 && (size_t)p < ctx->prog.insn_cnt)
					rm->new_insn = spec_pos[p];
			}
		}
		rm->guard_slot = -1;
		if (specialized && rm->map_idx >= 0 && (size_t)rm->map_idx < ctx->orig->map_cnt &&
		    ctx->map_guarded[rm->map_idx] && (size_t)rm->map_idx < ctx->snap->map_cnt) {
			rm->guard_slot = (int)ctx->snap->maps[rm->map_idx].guard_slot;
			rm->guard_gen = ctx->snap->maps[rm->map_idx].generation;
		}
	}
}

static int fill_opts(struct rs_opt_opts *o, const struct rs_opt_opts *in)
{
	memset(o, 0, sizeof(*o));
	o->sz = sizeof(*o);
	o->max_hot_keys = 8;
	o->min_hot_share = 0.01;
	o->small_table_max = 16;
	if (!in)
		return 0;
	if (in->sz < sizeof(size_t))
		return -EINVAL;
	if (RS_OPTS_HAS(in, guard_map))
		o->guard_map = in->guard_map;
	o->max_hot_keys = RS_OPTS_GET(in, max_hot_keys, 0) ? in->max_hot_keys : 8;
	o->min_hot_share = RS_OPTS_GET(in, min_hot_share, 0.0) > 0 ? in->min_hot_share : 0.01;
	o->small_table_max = RS_OPTS_GET(in, small_table_max, 0) ? in->small_table_max : 16;
	o->passes = RS_OPTS_GET(in, passes, NULL);
	return check_pass_list(o->passes);
}

static void ctx_free(struct rs_opt_ctx *ctx)
{
	rs_prog_free(&ctx->prog);
	free(ctx->orig_idx);
	free(ctx->orig_pos);
	free(ctx->map_guarded);
}

int rs_optimize(const struct rs_prog *prog, const struct rs_snapshot *snap,
		const struct rs_profile *prof, const struct rs_opt_opts *opts,
		struct rs_opt_result *res)
{
	struct rs_opt_ctx ctx;
	struct rs_opt_opts o;
	long *spec_pos = NULL;
	bool specialized = false;
	char err[160];
	size_t i, k;
	int ret;

	if (!res)
		return -EINVAL;
	memset(res, 0, sizeof(*res));
	rs_prog_init(&res->prog);
	memset(&ctx, 0, sizeof(ctx));
	rs_prog_init(&ctx.prog);
	if (!prog || !snap)
		return -EINVAL;
	ret = fill_opts(&o, opts);
	if (ret)
		return ret;
	if (rs_prog_validate(prog, err, sizeof(err))) {
		rs_warn("prog %u (%s): input invalid: %s", prog->id, prog->name, err);
		return -RS_ERR_INVALID_PROG;
	}
	ctx.orig = prog;
	ctx.snap = snap;
	ctx.prof = prof;
	ctx.opts = &o;
	ctx.remarks = &res->remarks;
	ret = -ENOMEM;
	ctx.orig_idx = malloc((prog->insn_cnt ? prog->insn_cnt : 1) * sizeof(long));
	ctx.orig_pos = malloc((prog->insn_cnt ? prog->insn_cnt : 1) * sizeof(long));
	ctx.map_guarded = calloc(prog->map_cnt ? prog->map_cnt : 1, sizeof(bool));
	res->stats = calloc(RS_ARRAY_SIZE(pipeline), sizeof(*res->stats));
	if (!ctx.orig_idx || !ctx.orig_pos || !ctx.map_guarded || !res->stats)
		goto fail;
	if (rs_prog_copy(&ctx.prog, prog))
		goto fail;
	for (i = 0; i < prog->insn_cnt; i++)
		ctx.orig_idx[i] = ctx.orig_pos[i] = (long)i;

	ret = rs_analyze(prog, snap, &res->map_facts, &res->map_fact_cnt, &res->site_facts,
			 &res->site_fact_cnt);
	if (ret)
		goto fail;
	ctx.map_facts = res->map_facts;
	ctx.map_fact_cnt = res->map_fact_cnt;
	ctx.site_facts = res->site_facts;
	ctx.site_fact_cnt = res->site_fact_cnt;
	ret = analysis_remarks(&ctx);
	if (ret)
		goto fail;

	for (k = 0; k < RS_ARRAY_SIZE(pipeline); k++) {
		if (!pass_selected(o.passes, pipeline[k]->name))
			continue;
		ret = run_pass(&ctx, pipeline[k], &res->stats[res->stat_cnt++]);
		if (ret)
			goto fail;
	}

	for (i = 0; i < prog->map_cnt; i++)
		specialized |= ctx.map_guarded[i];
	if (specialized) {
		ret = rs_guard_compose(&ctx, &res->prog, &res->guarded_maps, &spec_pos);
		if (ret)
			goto fail;
	} else {
		ret = rs_prog_copy(&res->prog, prog);
		if (ret)
			goto fail;
		ctx.pass_name = "pipeline";
		ret = rs_pass_remark(&ctx, RS_REMARK_MISSED, -1, -1, NULL, 0, NULL, 0, NULL,
				     "nothing depends on map contents: the original program is "
				     "kept unchanged (%zu instructions)", prog->insn_cnt);
		if (ret)
			goto fail;
	}
	finish_remarks(&ctx, spec_pos, specialized);
	if (rs_prog_validate(&res->prog, err, sizeof(err))) {
		rs_warn("prog %u (%s): optimized program invalid: %s", prog->id, prog->name, err);
		ret = -RS_ERR_INVALID_PROG;
		goto fail;
	}
	free(spec_pos);
	ctx_free(&ctx);
	return 0;
fail:
	free(spec_pos);
	ctx_free(&ctx);
	rs_opt_result_free(res);
	return ret;
}

void rs_opt_result_free(struct rs_opt_result *res)
{
	if (!res)
		return;
	rs_prog_free(&res->prog);
	rs_remarks_free(&res->remarks);
	free(res->stats);
	free(res->map_facts);
	free(res->site_facts);
	memset(res, 0, sizeof(*res));
	rs_prog_init(&res->prog);
}
