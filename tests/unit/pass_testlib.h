/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * pass_testlib.h - shared by the tests of the generic passes (test_constprop.c, test_dce.c,
 * test_layout.c): a hand-made optimizer context around one program, running one pass on it
 * without the pipeline (the output must validate), and a one-map XDP program builder.
 *
 * Header-only (static functions) so every test stays one translation unit.
 */
#ifndef RS_PASS_TESTLIB_H
#define RS_PASS_TESTLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "optimizer/pass.h"
#include "tests/unit/ir_testlib.h"

struct tctx {
	struct rs_opt_ctx ctx;
	struct rs_opt_opts opts;
	struct rs_remarks remarks;
	struct rs_pass_stats st;
	struct rs_snapshot snap;
};

/* a context over a copy of p (identity index maps, empty snapshot); prof may be NULL */
static inline void ctx_init(struct tctx *t, const struct rs_prog *p,
			    const struct rs_profile *prof)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->opts.sz = sizeof(t->opts);
	rs_prog_init(&t->ctx.prog);
	assert_int_equal(rs_prog_copy(&t->ctx.prog, p), 0);
	t->ctx.orig = p;
	t->ctx.snap = &t->snap;
	t->ctx.prof = prof;
	t->ctx.opts = &t->opts;
	t->ctx.remarks = &t->remarks;
	t->ctx.stats = &t->st;
	t->ctx.orig_idx = calloc(p->insn_cnt + 1, sizeof(long));
	t->ctx.orig_pos = calloc(p->insn_cnt + 1, sizeof(long));
	t->ctx.map_guarded = calloc(p->map_cnt + 1, sizeof(bool));
	assert_non_null(t->ctx.orig_idx);
	assert_non_null(t->ctx.orig_pos);
	assert_non_null(t->ctx.map_guarded);
	for (i = 0; i < p->insn_cnt; i++)
		t->ctx.orig_idx[i] = t->ctx.orig_pos[i] = (long)i;
}

static inline void ctx_fini(struct tctx *t)
{
	rs_prog_free(&t->ctx.prog);
	free(t->ctx.orig_idx);
	free(t->ctx.orig_pos);
	free(t->ctx.map_guarded);
	rs_remarks_free(&t->remarks);
}

/* run one pass; it must succeed and leave a valid program in t->ctx.prog */
static inline void run(struct tctx *t, const struct rs_pass *pass)
{
	char err[160] = "";

	t->ctx.pass_name = pass->name;
	assert_int_equal(pass->run(&t->ctx), 0);
	if (rs_prog_validate(&t->ctx.prog, err, sizeof(err)))
		fail_msg("%s: invalid output: %s", pass->name, err);
}

/* an XDP program of `in` referencing one 1-entry array map (index 0, id 1) */
/* An XDP program of `in` with map 0 "m" (8-byte array, id 1) and, if not NULL, `extra` as map 1. */
static inline void mkprog_with(struct rs_prog *p, const struct bpf_insn *in, size_t n,
			       const struct rs_map_ref *extra)
{
	struct rs_map_ref m = { .id = 1, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				.value_size = 8, .max_entries = 1, .name = "m" };

	rs_prog_init(p);
	p->type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_prog_set_insns(p, in, n), 0);
	assert_int_equal(rs_prog_add_map(p, &m), 0);
	if (extra)
		assert_int_equal(rs_prog_add_map(p, extra), 1);
	assert_int_equal(rs_prog_validate(p, NULL, 0), 0);
}

static inline void mkprog(struct rs_prog *p, const struct bpf_insn *in, size_t n)
{
	mkprog_with(p, in, n, NULL);
}

#endif /* RS_PASS_TESTLIB_H */
