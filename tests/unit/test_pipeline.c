// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_pipeline.c - rs_optimize() and the guard composition: the result validates; with no
 * map relied upon the original comes back unchanged (with analysis remarks for every map and
 * site); the guard prologue loads each slot from the guard array and jumps to an ORIG copy that
 * equals the original main body; subprograms are duplicated only when changed, with func_info
 * per copy and calls re-targeted (random programs, RS_TEST_SEED); rs_pass_commit keeps the
 * original-index maps in step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "optimizer/pass.h"
#include "tests/unit/ir_testlib.h"

#define LD_MAP(D, IDX) LD_IMM64_LO(D, BPF_PSEUDO_MAP_IDX, IDX), LD_IMM64_HI(0)

static const struct bpf_insn lookup_prog[] = {
	LD_MAP(1, 0),				/* 0-1 */
	ST_MEM(BPF_W, RS_REG_FP, -4, 0),	/* 2 */
	MOV64_REG(2, RS_REG_FP),		/* 3 */
	ALU64_IMM(BPF_ADD, 2, -4),		/* 4 */
	CALL_HELPER(BPF_FUNC_map_lookup_elem),	/* 5 */
	JMP_IMM(BPF_JEQ, 0, 0, 2),		/* 6 -> 9 */
	LDX_MEM(BPF_W, 0, 0, 0),		/* 7 */
	EXIT(),					/* 8 */
	MOV64_IMM(0, 2),			/* 9 */
	EXIT(),					/* 10 */
};

static void mkprog(struct rs_prog *p, const struct bpf_insn *in, size_t n)
{
	struct rs_map_ref m = { .id = 10, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				.value_size = 8, .max_entries = 4, .name = "vals" };

	rs_prog_init(p);
	p->type = BPF_PROG_TYPE_XDP;
	strcpy(p->name, "t");
	assert_int_equal(rs_prog_set_insns(p, in, n), 0);
	assert_int_equal(rs_prog_add_map(p, &m), 0);
}

static void mksnap(struct rs_snapshot *s, size_t n, uint32_t slot, uint64_t gen)
{
	size_t k;

	s->map_cnt = n;
	s->maps = calloc(n, sizeof(*s->maps));
	assert_non_null(s->maps);
	for (k = 0; k < n; k++) {
		s->maps[k].map_idx = (uint32_t)k;
		s->maps[k].type = BPF_MAP_TYPE_ARRAY;
		s->maps[k].key_size = 4;
		s->maps[k].value_size = 8;
		s->maps[k].value_stride = 8;
		s->maps[k].watched = true;
		s->maps[k].guard_slot = slot + (uint32_t)k;
		s->maps[k].generation = gen;
		s->maps[k].ncpus = 1;
	}
}

static void check_valid(const struct rs_prog *p)
{
	char err[160] = "";

	if (rs_prog_validate(p, err, sizeof(err)))
		fail_msg("invalid program: %s", err);
}

static void test_nothing_specialized(void **state)
{
	RS_OPTS(rs_opt_opts, o, .passes = "constprop,dce,layout");
	struct rs_opt_result res;
	struct rs_snapshot s;
	struct rs_prog p;
	size_t k, analysis = 0;

	(void)state;
	mkprog(&p, lookup_prog, RS_ARRAY_SIZE(lookup_prog));
	mksnap(&s, 1, 0, 1);
	assert_int_equal(rs_optimize(&p, &s, NULL, &o, &res), 0);
	check_valid(&res.prog);
	assert_int_equal(res.guarded_maps, 0);
	assert_int_equal(res.prog.insn_cnt, p.insn_cnt);
	assert_memory_equal(res.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
	assert_int_equal(res.prog.map_cnt, 1);
	assert_int_equal(res.stat_cnt, 3);
	assert_string_equal(res.stats[0].pass, "constprop");
	assert_int_equal(res.map_fact_cnt, 1);
	assert_int_equal(res.map_facts[0].level, RS_MAP_STABLE_VALUES);
	assert_int_equal(res.site_fact_cnt, 1);
	for (k = 0; k < res.remarks.cnt; k++) {
		const struct rs_remark *rm = &res.remarks.v[k];

		if (rm->kind != RS_REMARK_ANALYSIS)
			continue;
		analysis++;
		assert_string_equal(rm->pass, "analysis");
		if (rm->orig_insn == 5)
			assert_int_equal(rm->new_insn, 5);
	}
	assert_int_equal(analysis, 2);		/* one map, one site */
	rs_opt_result_free(&res);

	/* unknown pass names are refused */
	o.passes = "constprop,nope";
	assert_int_equal(rs_optimize(&p, &s, NULL, &o, &res), -EINVAL);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

struct tctx {
	struct rs_opt_ctx ctx;
	struct rs_opt_opts opts;
	struct rs_remarks remarks;
};

static void ctx_init(struct tctx *t, const struct rs_prog *p, const struct rs_snapshot *s)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->opts.sz = sizeof(t->opts);
	t->opts.guard_map = (struct rs_map_ref){ .id = 99, .type = BPF_MAP_TYPE_ARRAY,
						 .key_size = 4, .value_size = 64 * 8,
						 .max_entries = 1, .name = "rs_guard" };
	rs_prog_init(&t->ctx.prog);
	assert_int_equal(rs_prog_copy(&t->ctx.prog, p), 0);
	t->ctx.orig = p;
	t->ctx.snap = s;
	t->ctx.opts = &t->opts;
	t->ctx.remarks = &t->remarks;
	t->ctx.orig_idx = calloc(p->insn_cnt, sizeof(long));
	t->ctx.orig_pos = calloc(p->insn_cnt, sizeof(long));
	t->ctx.map_guarded = calloc(p->map_cnt + 1, sizeof(bool));
	assert_non_null(t->ctx.orig_idx);
	assert_non_null(t->ctx.map_guarded);
	for (i = 0; i < p->insn_cnt; i++)
		t->ctx.orig_idx[i] = t->ctx.orig_pos[i] = (long)i;
}

static void ctx_fini(struct tctx *t)
{
	rs_prog_free(&t->ctx.prog);
	free(t->ctx.orig_idx);
	free(t->ctx.orig_pos);
	free(t->ctx.map_guarded);
	rs_remarks_free(&t->remarks);
}

static void test_guard_shape(void **state)
{
	static const uint64_t gens[] = { 7, 0x123456789ULL };
	struct rs_snapshot s;
	struct rs_prog p, out;
	struct tctx t;
	uint32_t guarded;
	long *pos;
	size_t g;

	(void)state;
	mkprog(&p, lookup_prog, RS_ARRAY_SIZE(lookup_prog));
	for (g = 0; g < RS_ARRAY_SIZE(gens); g++) {
		size_t plen = gens[g] > INT32_MAX ? 6 : 4, orig_at;
		const struct bpf_insn *jne;

		mksnap(&s, 1, 3, gens[g]);
		ctx_init(&t, &p, &s);
		t.ctx.prog.insns[7] = MOV64_IMM(0, 5);	/* "folded" */
		t.ctx.orig_idx[7] = -1;
		rs_pass_depend_on_map(&t.ctx, 0);
		rs_prog_init(&out);
		assert_int_equal(rs_guard_compose(&t.ctx, &out, &guarded, &pos), 0);
		check_valid(&out);
		assert_int_equal(guarded, 1);
		assert_int_equal(out.map_cnt, 2);
		assert_string_equal(out.maps[1].name, "rs_guard");
		assert_int_equal(out.insn_cnt, plen + 2 * p.insn_cnt);
		/* r2 = guard value + slot * 8; r2 = *(u64 *)r2; if r2 != gen goto ORIG */
		assert_int_equal(out.insns[0].code, BPF_LD | BPF_DW | BPF_IMM);
		assert_int_equal(out.insns[0].src_reg, BPF_PSEUDO_MAP_IDX_VALUE);
		assert_int_equal(out.insns[0].dst_reg, 2);
		assert_int_equal(out.insns[0].imm, 1);
		assert_int_equal(out.insns[1].imm, 24);
		assert_int_equal(out.insns[2].code, BPF_LDX | BPF_DW | BPF_MEM);
		jne = &out.insns[plen - 1];
		assert_int_equal(BPF_OP(jne->code), BPF_JNE);
		if (plen == 4) {
			assert_int_equal(jne->imm, 7);
		} else {
			assert_int_equal(out.insns[3].imm, 0x23456789);
			assert_int_equal(out.insns[4].imm, 1);
			assert_int_equal(BPF_SRC(jne->code), BPF_X);
		}
		orig_at = plen + p.insn_cnt;
		assert_int_equal(rs_insn_target(out.insns, plen - 1), (long)orig_at);
		/* the specialized body follows, then ORIG = the original bytes */
		assert_int_equal(out.insns[plen + 7].imm, 5);
		assert_memory_equal(&out.insns[orig_at], p.insns, p.insn_cnt * sizeof(*p.insns));
		assert_int_equal(pos[7], (long)(plen + 7));
		/* r1 is never touched by the prologue */
		for (size_t i = 0; i < plen; i++)
			assert_int_not_equal(rs_insn_defs(&out.insns[i]) & (1u << 1), 1u << 1);
		free(pos);
		rs_prog_free(&out);
		ctx_fini(&t);

		/* unwatched map relied upon: refused */
		s.maps[0].watched = false;
		ctx_init(&t, &p, &s);
		rs_pass_depend_on_map(&t.ctx, 0);
		rs_prog_init(&out);
		assert_int_equal(rs_guard_compose(&t.ctx, &out, &guarded, &pos), -EINVAL);
		ctx_fini(&t);
		rs_snapshot_free(&s);
	}
	rs_prog_free(&p);
}

/*
 * Maps of a guard group share (slot, generation) in the snapshot (instrument/snapshot.c): the
 * prologue checks each distinct pair once.  Maps 0 and 2 in a group, map 1 on its own slot:
 * two checks; all three in the group: one check (one load, one compare).
 */
static void test_guard_group_once(void **state)
{
	struct rs_map_ref m = { .id = 11, .type = BPF_MAP_TYPE_ARRAY, .key_size = 4,
				.value_size = 8, .max_entries = 4, .name = "more" };
	struct rs_snapshot s;
	struct rs_prog p, out;
	struct tctx t;
	uint32_t guarded;
	long *pos;
	int round;

	(void)state;
	mkprog(&p, lookup_prog, RS_ARRAY_SIZE(lookup_prog));
	assert_int_equal(rs_prog_add_map(&p, &m), 1);
	m.id = 12;
	assert_int_equal(rs_prog_add_map(&p, &m), 2);
	for (round = 0; round < 2; round++) {
		size_t plen = round ? 4 : 8;

		mksnap(&s, 3, 5, 9);
		s.maps[2].guard_slot = s.maps[0].guard_slot;
		if (round)
			s.maps[1].guard_slot = s.maps[0].guard_slot;
		ctx_init(&t, &p, &s);
		rs_pass_depend_on_map(&t.ctx, 0);
		rs_pass_depend_on_map(&t.ctx, 1);
		rs_pass_depend_on_map(&t.ctx, 2);
		rs_prog_init(&out);
		assert_int_equal(rs_guard_compose(&t.ctx, &out, &guarded, &pos), 0);
		check_valid(&out);
		assert_int_equal(guarded, 3);
		assert_int_equal(out.insn_cnt, plen + 2 * p.insn_cnt);
		assert_int_equal(out.insns[1].imm, 5 * 8);
		if (!round)
			assert_int_equal(out.insns[5].imm, 6 * 8);
		assert_int_equal(rs_insn_target(out.insns, plen - 1), (long)(plen + p.insn_cnt));
		free(pos);
		rs_prog_free(&out);
		ctx_fini(&t);
		rs_snapshot_free(&s);
	}
	rs_prog_free(&p);
}

/* subprogram k's instructions in p (ranges from the subprogram starts) */
static void subprog_range(const struct rs_prog *p, size_t k, size_t *b, size_t *e)
{
	size_t *st, n;

	assert_int_equal(rs_subprog_starts(p->insns, p->insn_cnt, p->func_info,
					   p->func_info_cnt, &st, &n), 0);
	assert_true(k < n);
	*b = st[k];
	*e = k + 1 < n ? st[k + 1] : p->insn_cnt;
	free(st);
}

static void test_guard_subprogs_random(void **state)
{
	struct rs_gen_opts go = { .subprogs = 3, .body = 12, .maps = 2 };
	int round;

	(void)state;
	rs_test_seed(4242);
	for (round = 0; round < 200; round++) {
		struct rs_snapshot s;
		struct rs_prog p, out;
		struct tctx t;
		uint32_t guarded;
		size_t b, e, i, plen, main_len, changed = 1 + rs_rand_below(2);
		long *pos;

		rs_prog_init(&p);
		go.subprogs = 2 + rs_rand_below(3);
		assert_int_equal(rs_gen_prog(&p, &go), 0);
		check_valid(&p);
		mksnap(&s, p.map_cnt, 0, 1);
		ctx_init(&t, &p, &s);
		/* "specialize" one subprogram (or none when changed >= subprogs) */
		if (changed < go.subprogs) {
			subprog_range(&t.ctx.prog, changed, &b, &e);
			for (i = b; i < e; i++) {
				if (t.ctx.prog.insns[i].code == (BPF_ALU64 | BPF_ADD | BPF_K)) {
					t.ctx.prog.insns[i].imm ^= 1;
					t.ctx.orig_idx[i] = -1;
					break;
				}
			}
			if (i == e)
				changed = go.subprogs;
		}
		rs_pass_depend_on_map(&t.ctx, 1);
		rs_prog_init(&out);
		assert_int_equal(rs_guard_compose(&t.ctx, &out, &guarded, &pos), 0);
		check_valid(&out);
		assert_int_equal(out.func_info_cnt,
				 go.subprogs + (changed < go.subprogs ? 1 : 0));
		subprog_range(&p, 0, &b, &main_len);
		plen = 4;
		/* ORIG = original main; its calls reach copies equal to the originals */
		assert_memory_equal(&out.insns[plen + main_len].code, &p.insns[0].code, 1);
		for (i = 0; i < main_len; i++) {
			const struct bpf_insn *a = &out.insns[plen + main_len + i];
			size_t ob, oe, nb, ne, k;
			long tgt;

			if (!rs_insn_is_pseudo_call(a) && !rs_insn_is_pseudo_func(a)) {
				assert_memory_equal(a, &p.insns[i], sizeof(*a));
				continue;
			}
			tgt = rs_insn_target(p.insns, i);
			for (k = 1; k < go.subprogs; k++) {
				subprog_range(&p, k, &ob, &oe);
				if ((long)ob == tgt)
					break;
			}
			assert_true(k < go.subprogs);
			nb = (size_t)rs_insn_target(out.insns, plen + main_len + i);
			assert_memory_equal(&out.insns[nb].code, &p.insns[ob].code, 1);
			for (ne = 0; ne < oe - ob; ne++)
				assert_int_equal(out.insns[nb + ne].code, p.insns[ob + ne].code);
			if (k == changed) {	/* the original copy, not the specialized one */
				for (ne = 0; ne < oe - ob; ne++)
					if (!rs_insn_is_pseudo_call(&p.insns[ob + ne]) &&
					    !rs_insn_is_pseudo_func(&p.insns[ob + ne]))
						assert_int_equal(out.insns[nb + ne].imm,
								 p.insns[ob + ne].imm);
			}
		}
		free(pos);
		rs_prog_free(&out);
		ctx_fini(&t);
		rs_snapshot_free(&s);
		rs_prog_free(&p);
	}
}

static void test_commit_tracks_indexes(void **state)
{
	struct bpf_insn two[2] = { MOV64_IMM(0, 1), MOV64_IMM(0, 2) };
	struct rs_snapshot s;
	struct rs_prog p;
	struct rs_edit *e;
	struct tctx t;

	(void)state;
	mkprog(&p, lookup_prog, RS_ARRAY_SIZE(lookup_prog));
	mksnap(&s, 1, 0, 1);
	ctx_init(&t, &p, &s);
	e = rs_edit_new(&t.ctx.prog);
	assert_non_null(e);
	assert_int_equal(rs_edit_replace(e, 7, 1, two, NULL, 2), 0);	/* 7 -> two insns */
	assert_int_equal(rs_edit_delete(e, 2, 1), 0);			/* drop the key store */
	assert_int_equal(rs_pass_commit(&t.ctx, e), 0);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	assert_int_equal(t.ctx.orig_idx[0], 0);
	assert_int_equal(t.ctx.orig_idx[2], 3);
	assert_int_equal(t.ctx.orig_idx[6], -1);	/* new code */
	assert_int_equal(t.ctx.orig_idx[7], -1);
	assert_int_equal(t.ctx.orig_idx[8], 8);
	assert_int_equal(t.ctx.orig_pos[7], 6);		/* replaced: its entry */
	assert_int_equal(t.ctx.orig_pos[2], 2);		/* deleted: what follows */
	assert_int_equal(t.ctx.orig_pos[9], 9);
	ctx_fini(&t);
	rs_snapshot_free(&s);
	rs_prog_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_specialized),
		cmocka_unit_test(test_guard_shape),
		cmocka_unit_test(test_guard_group_once),
		cmocka_unit_test(test_guard_subprogs_random),
		cmocka_unit_test(test_commit_tracks_indexes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
