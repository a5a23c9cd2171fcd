// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_edit.c - edit lists and linearization: the documented semantics on small programs,
 * the range check (nothing written on -RS_ERR_RANGE), func_info/line_info fixups, and a
 * randomized property test: random valid programs, random edits, after every apply the
 * program validates and every surviving branch still reaches the same old instruction (or
 * where the documented semantics say).  RS_TEST_SEED overrides the fixed seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/ir_testlib.h"

static void prog_from(struct rs_prog *p, const struct bpf_insn *in, size_t n)
{
	rs_prog_init(p);
	assert_int_equal(rs_prog_set_insns(p, in, n), 0);
	strcpy(p->name, "t");
}

static void expect_valid(const struct rs_prog *p)
{
	char err[256];

	if (rs_prog_validate(p, err, sizeof(err)))
		fail_msg("invalid after edit: %s", err);
}

/* insert_before / insert_after / delete / replace against old indexes in one apply */
static void test_semantics(void **state)
{
	struct bpf_insn code[] = {
		JMP_IMM(BPF_JEQ, 1, 0, 2),	/* 0 -> 3 */
		MOV64_IMM(0, 1),		/* 1 (deleted) */
		JA(1),				/* 2 -> 4 */
		MOV64_IMM(0, 2),		/* 3 (insert_before) */
		MOV64_IMM(0, 3),		/* 4 (replaced by 2) */
		JMP_IMM(BPF_JNE, 0, 3, -6),	/* 5 -> 0 */
		JMP_IMM(BPF_JGT, 0, 3, -6),	/* 6 -> 1 (deleted: lands on 2) */
		EXIT(),				/* 7 */
	};
	struct bpf_insn ins[] = { MOV64_IMM(5, 5), JMP_IMM(BPF_JEQ, 5, 0, 0) };
	long ins_t[] = { RS_TARGET_LOCAL, 3 };		/* branch to old 3 itself */
	struct bpf_insn rep[] = { MOV64_IMM(0, 30), MOV64_IMM(0, 31) };
	struct bpf_insn aft[] = { MOV64_IMM(6, 6) };
	struct rs_prog p, out;
	struct rs_edit *e;
	long *o2n = NULL;
	char err[128];

	(void)state;
	prog_from(&p, code, RS_ARRAY_SIZE(code));
	rs_prog_init(&out);
	e = rs_edit_new(&p);
	assert_non_null(e);
	assert_int_equal(rs_edit_delete(e, 1, 1), 0);
	assert_int_equal(rs_edit_insert_before(e, 3, ins, ins_t, 2), 0);
	assert_int_equal(rs_edit_replace(e, 4, 1, rep, NULL, 2), 0);
	assert_int_equal(rs_edit_insert_after(e, 5, aft, NULL, 1), 0);
	assert_int_equal(rs_edit_apply(e, &out, &o2n, err, sizeof(err)), 0);
	/*
	 * new: 0 jeq->2(ins)  1 ja->4(rep)  2 r5=5  3 jeq r5->4?  no: ->old 3 = new 4
	 *      4 r0=2  5 r0=30  6 r0=31  7 jne->0  8 r6=6  9 jgt->1  10 exit
	 */
	assert_int_equal(out.insn_cnt, 11);
	assert_int_equal(o2n[0], 0);
	assert_int_equal(o2n[1], -1);
	assert_int_equal(o2n[2], 1);
	assert_int_equal(o2n[3], 4);
	assert_int_equal(o2n[4], -1);
	assert_int_equal(o2n[5], 7);
	assert_int_equal(o2n[6], 9);
	assert_int_equal(o2n[7], 10);
	assert_int_equal(rs_insn_target(out.insns, 0), 2);	/* onto the inserted code */
	assert_int_equal(rs_insn_target(out.insns, 1), 5);	/* onto the replacement */
	assert_int_equal(rs_insn_target(out.insns, 3), 4);	/* new code: old 3 itself */
	assert_int_equal(rs_insn_target(out.insns, 7), 0);
	assert_int_equal(rs_insn_target(out.insns, 9), 1);	/* deleted 1 -> next survivor */
	assert_int_equal(out.insns[8].imm, 6);			/* after old 5 */
	expect_valid(&out);
	free(o2n);
	rs_edit_free(e);

	/* overlapping edits are refused at apply time, out untouched */
	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_delete(e, 1, 3), 0);
	assert_int_equal(rs_edit_replace(e, 3, 1, rep, NULL, 2), 0);
	assert_int_equal(rs_edit_apply(e, &out, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "insn 3"));
	assert_int_equal(out.insn_cnt, 11);
	rs_edit_free(e);

	/* a branch into the middle of a replaced range */
	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_replace(e, 2, 2, rep, NULL, 2), 0);	/* 0 jumps to 3 */
	assert_int_equal(rs_edit_apply(e, &out, NULL, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "insn 0:"));
	rs_edit_free(e);

	/* recording-time checks */
	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_delete(e, 7, 2), -EINVAL);
	assert_int_equal(rs_edit_insert_after(e, 8, aft, NULL, 1), -EINVAL);
	assert_int_equal(rs_edit_insert_before(e, 8, aft, NULL, 1), 0);	/* append */
	rs_edit_free(e);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/* ld_imm64 halves, pseudo calls, pseudo funcs, func_info, line_info, edit in place */
static void test_subprogs_and_info(void **state)
{
	struct bpf_insn code[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_FUNC, 4), LD_IMM64_HI(0),	/* 0 -> 6 */
		CALL_PSEUDO(3),						/* 2 -> 6 */
		MOV64_IMM(0, 0),					/* 3 */
		LD_IMM64_LO(2, 0, 1), LD_IMM64_HI(2),			/* 4 */
		EXIT(),							/* 6 wait */
	};
	struct rs_prog p;
	struct bpf_insn fix[] = {
		LD_IMM64_LO(1, BPF_PSEUDO_FUNC, 4), LD_IMM64_HI(0),	/* 0 -> 5 */
		CALL_PSEUDO(2),						/* 2 -> 5 */
		MOV64_IMM(0, 0),					/* 3 */
		EXIT(),							/* 4 */
		MOV64_IMM(0, 7),					/* 5: subprog */
		MOV64_IMM(0, 8),					/* 6 */
		EXIT(),							/* 7 */
	};
	struct rs_func_info fi[] = { { 0, 1 }, { 5, 2 } };
	struct rs_line_info li[] = { { 0, 0, 10, 0 }, { 3, 0, 13, 0 }, { 5, 0, 15, 0 },
				     { 6, 0, 16, 0 } };
	struct bpf_insn two[] = { MOV64_IMM(3, 3), MOV64_IMM(4, 4) };
	struct rs_edit *e;
	long *o2n;
	char err[128];

	(void)state;
	(void)code;
	prog_from(&p, fix, RS_ARRAY_SIZE(fix));
	p.func_info = malloc(sizeof(fi));
	memcpy(p.func_info, fi, sizeof(fi));
	p.func_info_cnt = 2;
	p.line_info = malloc(sizeof(li));
	memcpy(p.line_info, li, sizeof(li));
	p.line_info_cnt = 4;
	expect_valid(&p);

	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_insert_before(e, 5, two, NULL, 2), 0);	/* subprog head */
	assert_int_equal(rs_edit_delete(e, 3, 1), 0);		/* carries line 13 to exit */
	assert_int_equal(rs_edit_delete(e, 6, 1), 0);		/* line 16 onto exit (own none) */
	assert_int_equal(rs_edit_insert_after(e, 0, two, NULL, 1), 0);	/* after both halves */
	/* edit in place: out is the edited program */
	assert_int_equal(rs_edit_apply(e, &p, &o2n, err, sizeof(err)), 0);
	rs_edit_free(e);
	/* new: 0-1 ld  2 r3=3  3 call  4 exit  5 r3=3  6 r4=4  7 r0=7  8 exit */
	assert_int_equal(p.insn_cnt, 9);
	assert_int_equal(o2n[1], 1);
	assert_int_equal(o2n[2], 3);
	assert_int_equal(o2n[4], 4);
	assert_int_equal(rs_insn_target(p.insns, 0), 5);
	assert_int_equal(rs_insn_target(p.insns, 3), 5);
	assert_int_equal(p.func_info_cnt, 2);
	assert_int_equal(p.func_info[1].insn_off, 5);
	assert_int_equal(p.func_info[1].type_id, 2);
	assert_int_equal(p.line_info_cnt, 4);
	assert_int_equal(p.line_info[1].insn_off, 4);
	assert_int_equal(p.line_info[1].line_off, 13);
	assert_int_equal(p.line_info[2].insn_off, 5);
	assert_int_equal(p.line_info[3].insn_off, 8);
	assert_int_equal(p.line_info[3].line_off, 16);
	expect_valid(&p);
	free(o2n);
	rs_prog_free(&p);
}

/* a branch whose displacement no longer fits s16: -RS_ERR_RANGE, nothing written */
static void test_range(void **state)
{
	struct bpf_insn code[] = {
		JMP_IMM(BPF_JEQ, 1, 0, 2),	/* 0 -> 3 */
		GOTOL(1),			/* 1 -> 3 */
		MOV64_IMM(0, 1),		/* 2 */
		EXIT(),				/* 3 */
	};
	size_t n = 40000, k;
	struct bpf_insn *fill = calloc(n, sizeof(*fill));
	struct rs_prog p, out, before;
	struct rs_edit *e;
	long *o2n = (long *)&n;		/* must stay untouched */
	char err[128];

	(void)state;
	for (k = 0; k < n; k++)
		fill[k] = MOV64_IMM(2, (int32_t)k);
	prog_from(&p, code, RS_ARRAY_SIZE(code));
	prog_from(&out, code, 3);
	strcpy(out.name, "untouched");
	rs_prog_init(&before);
	assert_int_equal(rs_prog_copy(&before, &out), 0);

	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_insert_after(e, 2, fill, NULL, n), 0);
	assert_int_equal(rs_edit_apply(e, &out, &o2n, err, sizeof(err)), -RS_ERR_RANGE);
	assert_true(strncmp(err, "insn 0:", 7) == 0);
	assert_ptr_equal(o2n, (long *)&n);
	assert_int_equal(out.insn_cnt, before.insn_cnt);
	assert_memory_equal(out.insns, before.insns, before.insn_cnt * sizeof(*out.insns));
	assert_string_equal(out.name, "untouched");
	rs_edit_free(e);

	/* the gotol alone fits its s32 field */
	p.insns[0] = MOV64_IMM(0, 0);
	e = rs_edit_new(&p);
	assert_int_equal(rs_edit_insert_after(e, 2, fill, NULL, n), 0);
	assert_int_equal(rs_edit_apply(e, &out, NULL, err, sizeof(err)), 0);
	assert_int_equal(out.insn_cnt, n + 4);
	assert_int_equal(rs_insn_target(out.insns, 1), (long)n + 3);
	expect_valid(&out);
	rs_edit_free(e);
	rs_prog_free(&before);
	rs_prog_free(&out);
	rs_prog_free(&p);
	free(fill);
}

/* ---- randomized property test ------------------------------------------------------------ */

struct rop {
	int kind;		/* 0 delete, 1 replace, 2 insert_before, 3 insert_after */
	size_t idx, n_old, n;
	struct bpf_insn code[16];
	long targets[16];
};

struct rctx {
	const struct rs_prog *p;
	bool *half, *used, *removed, *targeted;
	int *sub;
	size_t *last;		/* per subprogram: its last instruction */
	struct rop ops[6];
	size_t nops;
};

/* random new code: plain insns, an ld_imm64, local branches and old-index branches */
static void gen_code(struct rctx *c, struct rop *op, int subprog)
{
	size_t n = 1 + rs_rand_below(10), k, t;
	bool half[17] = { false };

	for (k = 0; k < n; k++) {
		if (k + 1 < n && rs_rand_below(6) == 0) {
			op->code[k] = LD_IMM64_LO(3, 0, (int32_t)rs_rand());
			op->code[k + 1] = LD_IMM64_HI(7);
			half[++k] = true;
		} else {
			op->code[k] = rs_rand_plain_insn();
		}
	}
	for (k = 0; k < n; k++)
		op->targets[k] = RS_TARGET_LOCAL;
	for (k = 0; k < n; k++) {
		size_t r = rs_rand_below(8);

		if (half[k] || rs_insn_is_ldimm64(&op->code[k]) || r > 2)
			continue;
		if (r < 2) {		/* local, including "just after the sequence" */
			do
				t = rs_rand_below(n + 1);
			while (t < n && half[t]);
			op->code[k] = r ? JA((int16_t)((long)t - (long)k - 1)) :
					  JMP_IMM(BPF_JNE, 2, 9, (int16_t)((long)t - (long)k - 1));
		} else {		/* a surviving old instruction of the same subprogram */
			for (int tries = 0; tries < 50; tries++) {
				t = rs_rand_below(c->p->insn_cnt);
				if (c->sub[t] == subprog && !c->half[t] && !c->removed[t]) {
					op->code[k] = JMP_IMM(BPF_JLT, 4, 2, 0);
					op->targets[k] = (long)t;
					break;
				}
			}
		}
	}
	op->n = n;
}

/* can [i, i+n) be removed: same subprogram, not its last insn, no call, aligned, unused */
static bool removable(struct rctx *c, size_t i, size_t n, bool interior_free)
{
	size_t j;

	if (i + n > c->p->insn_cnt || c->half[i] || (i + n < c->p->insn_cnt && c->half[i + n]))
		return false;
	for (j = i; j < i + n; j++) {
		const struct bpf_insn *in = &c->p->insns[j];

		if (c->used[j] || c->sub[j] != c->sub[i] || j == c->last[c->sub[i]])
			return false;
		if (!c->half[j] && (rs_insn_is_pseudo_call(in) || rs_insn_is_pseudo_func(in)))
			return false;
		if (interior_free && j > i && c->targeted[j])
			return false;
	}
	return true;
}

static bool pick_op(struct rctx *c, struct rop *op)
{
	size_t cnt = c->p->insn_cnt, i = rs_rand_below(cnt), j;

	memset(op, 0, sizeof(*op));
	op->kind = (int)rs_rand_below(4);
	op->idx = i;
	if (c->used[i] || c->half[i])
		return false;
	switch (op->kind) {
	case 0:
	case 1:
		op->n_old = 1 + rs_rand_below(4);
		if (!removable(c, i, op->n_old, op->kind == 1))
			return false;
		break;
	case 3:
		if (i == c->last[c->sub[i]])
			return false;
		break;
	}
	for (j = i; j < i + (op->n_old ? op->n_old : 1); j++) {
		c->used[j] = true;
		c->removed[j] = op->kind <= 1;
	}
	return true;
}

/* entry: where a branch of surviving code to old t must land now */
static long expect_entry(struct rctx *c, const long *o2n, size_t t)
{
	size_t k;

	if (o2n[t] >= 0) {
		for (k = 0; k < c->nops; k++)
			if (c->ops[k].kind == 2 && c->ops[k].idx == t)
				return o2n[t] - (long)c->ops[k].n;
		return o2n[t];
	}
	for (k = 0; k < c->nops; k++) {
		struct rop *op = &c->ops[k];
		long after;

		if ((op->kind != 0 && op->kind != 1) || t < op->idx || t >= op->idx + op->n_old)
			continue;
		after = expect_entry(c, o2n, op->idx + op->n_old);
		if (op->kind == 1)
			return after - (long)op->n;	/* only the start can be targeted */
		return after;
	}
	fail_msg("old insn %zu vanished without an edit", t);
	return -1;
}

static long code_start(struct rctx *c, const struct rs_prog *old, const long *o2n,
		       const struct rop *op)
{
	switch (op->kind) {
	case 1:
		return expect_entry(c, o2n, op->idx + op->n_old) - (long)op->n;
	case 2:
		return o2n[op->idx] - (long)op->n;
	default:
		return o2n[op->idx] + (long)rs_insn_width(&old->insns[op->idx]);
	}
}

static void check_round(struct rctx *c, const struct rs_prog *old, const struct rs_prog *new,
			const long *o2n, uint64_t seed, int round)
{
	size_t i, k, j, removed = 0, added = 0;
	long prev = -1;

	/* sizes add up, survivors keep their order */
	for (k = 0; k < c->nops; k++) {
		removed += c->ops[k].n_old;
		added += c->ops[k].kind ? c->ops[k].n : 0;
	}
	if (new->insn_cnt != old->insn_cnt - removed + added)
		fail_msg("seed %llu round %d: %zu insns, want %zu", (unsigned long long)seed, round,
			 new->insn_cnt, old->insn_cnt - removed + added);
	for (i = 0; i < old->insn_cnt; i++) {
		if (o2n[i] < 0)
			continue;
		assert_true(o2n[i] > prev);
		prev = o2n[i];
	}
	/* func_info follows the subprogram heads */
	assert_int_equal(new->func_info_cnt, old->func_info_cnt);
	for (k = 0; k < old->func_info_cnt; k++)
		if ((long)new->func_info[k].insn_off !=
		    expect_entry(c, o2n, old->func_info[k].insn_off))
			fail_msg("seed %llu round %d: func_info[%zu] at %u, want %ld",
				 (unsigned long long)seed, round, k, new->func_info[k].insn_off,
				 expect_entry(c, o2n, old->func_info[k].insn_off));
	for (i = 0; i < old->insn_cnt; i++) {
		long t;

		if (o2n[i] < 0 || c->half[i])
			continue;
		if (!rs_insn_is_jmp(&old->insns[i]) && !rs_insn_is_pseudo_call(&old->insns[i]) &&
		    !rs_insn_is_pseudo_func(&old->insns[i])) {
			size_t w = rs_insn_width(&old->insns[i]);

			if (memcmp(&new->insns[o2n[i]], &old->insns[i], w * sizeof(*old->insns)))
				fail_msg("seed %llu round %d: old insn %zu changed",
					 (unsigned long long)seed, round, i);
			continue;
		}
		t = rs_insn_target(old->insns, i);
		if (rs_insn_target(new->insns, (size_t)o2n[i]) != expect_entry(c, o2n, (size_t)t))
			fail_msg("seed %llu round %d: old insn %zu (new %ld) -> old %ld: lands on %ld, want %ld",
				 (unsigned long long)seed, round, i, o2n[i], t,
				 rs_insn_target(new->insns, (size_t)o2n[i]),
				 expect_entry(c, o2n, (size_t)t));
	}
	for (k = 0; k < c->nops; k++) {
		struct rop *op = &c->ops[k];
		long s;

		if (op->kind == 0)
			continue;
		s = code_start(c, old, o2n, op);
		for (j = 0; j < op->n; j++) {
			const struct bpf_insn *in = &new->insns[s + (long)j];
			long want;

			if (in->code != op->code[j].code || in->dst_reg != op->code[j].dst_reg)
				fail_msg("seed %llu round %d: edit %zu: new insn %zu not in place",
					 (unsigned long long)seed, round, k, j);
			if (!rs_insn_is_jmp(in))
				continue;
			if (op->targets[j] == RS_TARGET_LOCAL)
				want = s + (long)j + 1 + op->code[j].off;
			else
				want = o2n[op->targets[j]] >= 0 ? o2n[op->targets[j]] :
					expect_entry(c, o2n, (size_t)op->targets[j]);
			if (rs_insn_target(new->insns, (size_t)(s + (long)j)) != want)
				fail_msg("seed %llu round %d: edit %zu insn %zu: lands on %ld, want %ld",
					 (unsigned long long)seed, round, k, j,
					 rs_insn_target(new->insns, (size_t)(s + (long)j)), want);
		}
	}
}

static void rctx_init(struct rctx *c, const struct rs_prog *p)
{
	size_t *starts, n, i, k = 0;

	memset(c, 0, sizeof(*c));
	c->p = p;
	c->half = calloc(p->insn_cnt + 1, sizeof(bool));
	c->used = calloc(p->insn_cnt + 1, sizeof(bool));
	c->removed = calloc(p->insn_cnt + 1, sizeof(bool));
	c->targeted = calloc(p->insn_cnt + 1, sizeof(bool));
	c->sub = calloc(p->insn_cnt + 1, sizeof(int));
	assert_int_equal(rs_subprog_starts(p->insns, p->insn_cnt, NULL, 0, &starts, &n), 0);
	c->last = calloc(n, sizeof(size_t));
	for (i = 0; i < p->insn_cnt; i++) {
		while (k + 1 < n && starts[k + 1] <= i)
			k++;
		c->sub[i] = (int)k;
		if (rs_insn_is_ldimm64(&p->insns[i]))
			c->half[i + 1] = true;
		if (!c->half[i])
			c->last[k] = i;
		if (!c->half[i] && rs_insn_is_jmp(&p->insns[i]))
			c->targeted[rs_insn_target(p->insns, i)] = true;
	}
	free(starts);
}

static void rctx_free(struct rctx *c)
{
	free(c->half);
	free(c->used);
	free(c->removed);
	free(c->targeted);
	free(c->sub);
	free(c->last);
}

static void test_random_edits(void **state)
{
	uint64_t seed = rs_test_seed(20261121);
	size_t kinds[4] = { 0 }, old_targets = 0;
	int prog_no, round;

	(void)state;
	for (prog_no = 0; prog_no < 60; prog_no++) {
		struct rs_gen_opts o = { .subprogs = 1 + rs_rand_below(4),
					 .body = 8 + rs_rand_below(40), .maps = rs_rand_below(3) };
		struct rs_prog p, out;
		char err[256];

		rs_prog_init(&p);
		rs_prog_init(&out);
		assert_int_equal(rs_gen_prog(&p, &o), 0);
		if (rs_prog_validate(&p, err, sizeof(err)))
			fail_msg("seed %llu prog %d: generated program invalid: %s",
				 (unsigned long long)seed, prog_no, err);
		for (round = 0; round < 25; round++) {
			struct rs_edit *e = rs_edit_new(&p);
			struct rctx c;
			long *o2n = NULL;
			size_t k, want = 1 + rs_rand_below(RS_ARRAY_SIZE(c.ops)), tries;
			int ret;

			rctx_init(&c, &p);
			for (tries = 0; c.nops < want && tries < 40; tries++)
				if (pick_op(&c, &c.ops[c.nops]))
					c.nops++;
			for (k = 0; k < c.nops; k++) {
				struct rop *op = &c.ops[k];

				if (op->kind)
					gen_code(&c, op, c.sub[op->idx]);
				kinds[op->kind]++;
				for (size_t j = 0; j < op->n; j++)
					old_targets += op->targets[j] >= 0;
			}
			for (k = 0; k < c.nops; k++) {
				struct rop *op = &c.ops[k];

				switch (op->kind) {
				case 0:
					ret = rs_edit_delete(e, op->idx, op->n_old);
					break;
				case 1:
					ret = rs_edit_replace(e, op->idx, op->n_old, op->code,
							      op->targets, op->n);
					break;
				case 2:
					ret = rs_edit_insert_before(e, op->idx, op->code,
								    op->targets, op->n);
					break;
				default:
					ret = rs_edit_insert_after(e, op->idx, op->code,
								   op->targets, op->n);
				}
				if (ret)
					fail_msg("seed %llu prog %d round %d: recording edit %zu: %d",
						 (unsigned long long)seed, prog_no, round, k, ret);
			}
			ret = rs_edit_apply(e, &out, &o2n, err, sizeof(err));
			if (ret)
				fail_msg("seed %llu prog %d round %d: apply: %d %s",
					 (unsigned long long)seed, prog_no, round, ret, err);
			if (rs_prog_validate(&out, err, sizeof(err)))
				fail_msg("seed %llu prog %d round %d: invalid after edit: %s",
					 (unsigned long long)seed, prog_no, round, err);
			check_round(&c, &p, &out, o2n, seed, round);
			rctx_free(&c);
			rs_edit_free(e);
			free(o2n);
			assert_int_equal(rs_prog_copy(&p, &out), 0);
		}
		rs_prog_free(&out);
		rs_prog_free(&p);
	}
	fprintf(stderr, "edits: %zu delete, %zu replace, %zu insert_before, %zu insert_after, %zu new branches to old insns\n",
		kinds[0], kinds[1], kinds[2], kinds[3], old_targets);
	/* the generator must exercise every kind of edit */
	assert_true(kinds[0] > 100 && kinds[1] > 100 && kinds[2] > 100 && kinds[3] > 100);
	assert_true(old_targets > 100);
}

/* random branch spans blown past s16: always -RS_ERR_RANGE with the output untouched */
static void test_random_range(void **state)
{
	uint64_t seed = rs_test_seed(777);
	size_t n = 40000, k;
	struct bpf_insn *fill = calloc(n, sizeof(*fill));
	int iter;

	(void)state;
	for (k = 0; k < n; k++)
		fill[k] = MOV64_IMM(1, 1);
	for (iter = 0; iter < 30; iter++) {
		struct rs_gen_opts o = { .subprogs = 1 + rs_rand_below(3), .body = 30, .maps = 1 };
		struct rs_prog p, out;
		struct rs_edit *e;
		size_t i, t = 0, at;
		char err[256];
		int ret;

		rs_prog_init(&p);
		assert_int_equal(rs_gen_prog(&p, &o), 0);
		/* a conditional branch with a span of at least one instruction */
		for (k = 0; k < 100000; k++) {
			i = rs_rand_below(p.insn_cnt);
			if (!rs_insn_is_cond_jmp(&p.insns[i]) || (i && rs_insn_is_ldimm64(&p.insns[i - 1])))
				continue;
			t = (size_t)rs_insn_target(p.insns, i);
			if (t != i && t != i + 1)
				break;
		}
		if (k == 100000) {	/* no such branch in this program: draw another */
			rs_prog_free(&p);
			iter--;
			continue;
		}
		/*
		 * code inserted before `at` lies inside the span: forward branches i < at < t,
		 * backward branches t < at <= i
		 */
		do {
			at = t > i ? i + 1 + rs_rand_below(t - i - 1) : t + 1 + rs_rand_below(i - t);
		} while (rs_insn_is_ldimm64(&p.insns[at - 1]));
		rs_prog_init(&out);
		assert_int_equal(rs_prog_copy(&out, &p), 0);
		e = rs_edit_new(&p);
		assert_int_equal(rs_edit_insert_before(e, at, fill, NULL, n), 0);
		ret = rs_edit_apply(e, &out, NULL, err, sizeof(err));
		if (ret != -RS_ERR_RANGE)
			fail_msg("seed %llu iter %d: branch %zu -> %zu, insert at %zu: %d (%s)",
				 (unsigned long long)seed, iter, i, t, at, ret, err);
		assert_true(strncmp(err, "insn ", 5) == 0);
		assert_int_equal(out.insn_cnt, p.insn_cnt);
		assert_memory_equal(out.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
		rs_edit_free(e);
		rs_prog_free(&out);
		rs_prog_free(&p);
	}
	free(fill);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_semantics),
		cmocka_unit_test(test_subprogs_and_info),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_random_edits),
		cmocka_unit_test(test_random_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
