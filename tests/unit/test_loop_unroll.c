// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_loop_unroll.c - optimizer/passes/loop_unroll.c on a rule walk shaped like the firewall
 * sample: main calls bpf_loop(N, cb, &ctx, 0); the callback looks rules[i] up in a stable
 * ARRAY, compares the input under the rule's mask and, on a match, stores the rule's action
 * in ctx and stops.  The unrolled program is run against the original by a small interpreter
 * that implements bpf_loop (callback frames, early stop, iteration count in r0) for many
 * inputs, including the callee-saved register the callback clobbers; the rewrite must leave
 * no bpf_loop call and no lookup in main.  Refusals: a count that is not a constant, a
 * callback with a subprogram call, values not stable (unrolled, lookup kept).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tests/unit/mappass_testlib.h"

#define N_RULES		6
#define CB		16	/* callback's first instruction */

struct rule {
	uint32_t mask, value, action;
};

static const struct rule rules[N_RULES] = {
	{ 0xff000000, 0x0a000000, 11 },	/* 10/8 */
	{ 0xffffffff, 0xdeadbeef, 0 },
	{ 0xffff0000, 0xc0a80000, 22 },
	{ 0xffffffff, 0x01020304, 33 },
	{ 0, 0, 44 },			/* mask 0: every input that gets here */
	{ 0xff, 0x07, 55 },
};

/* main: see the header; returns result << 16 + iterations + input (r6 survives) */
static const struct bpf_insn prog[] = {
	MOV64_REG(6, 1),				/* 0 */
	STX_MEM(BPF_DW, RS_REG_FP, 6, -8),		/* 1: ctx.x */
	ST_MEM(BPF_DW, RS_REG_FP, -16, 99),		/* 2: ctx.result */
	MOV64_IMM(1, N_RULES - 1),			/* 3: rule count (the last one is dead) */
	{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = 2, .src_reg = BPF_PSEUDO_FUNC,
	  .imm = CB - 4 - 1 },				/* 4-5 */
	{ 0 },
	MOV64_REG(3, RS_REG_FP),			/* 6 */
	ALU64_IMM(BPF_ADD, 3, -16),			/* 7 */
	MOV64_IMM(4, 0),				/* 8 */
	CALL_HELPER(BPF_FUNC_loop),			/* 9 */
	MOV64_REG(7, 0),				/* 10 */
	LDX_MEM(BPF_DW, 0, RS_REG_FP, -16),		/* 11 */
	ALU64_IMM(BPF_LSH, 0, 16),			/* 12 */
	ALU64_REG(BPF_ADD, 0, 7),			/* 13 */
	ALU64_REG(BPF_ADD, 0, 6),			/* 14 */
	EXIT(),						/* 15 */
	/* callback(i, ctx) */
	MOV64_REG(6, 2),				/* 16 */
	STX_MEM(BPF_W, RS_REG_FP, 1, -4),		/* 17 */
	MOV64_REG(2, RS_REG_FP),			/* 18 */
	ALU64_IMM(BPF_ADD, 2, -4),			/* 19 */
	LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 0), LD_IMM64_HI(0),	/* 20-21 */
	CALL_HELPER(BPF_FUNC_map_lookup_elem),		/* 22 */
	JMP_IMM(BPF_JEQ, 0, 0, 7),			/* 23 -> 31 */
	LDX_MEM(BPF_DW, 2, 6, 8),			/* 24: x */
	LDX_MEM(BPF_W, 3, 0, 0),			/* 25: mask */
	ALU64_REG(BPF_AND, 2, 3),			/* 26 */
	LDX_MEM(BPF_W, 3, 0, 4),			/* 27: value */
	JMP_REG(BPF_JNE, 2, 3, 4),			/* 28 -> 33 */
	LDX_MEM(BPF_W, 3, 0, 8),			/* 29: action */
	STX_MEM(BPF_DW, 6, 3, 0),			/* 30: ctx.result */
	MOV64_IMM(0, 1),				/* 31 */
	EXIT(),						/* 32 */
	MOV64_IMM(0, 0),				/* 33 */
	EXIT(),						/* 34 */
};

/* ---- an interpreter with bpf_loop --------------------------------------------------------- */

/* pointers: region << 40 | offset; region 1 + f = stack frame f, 0x10 + m = map m's values,
 * 0x20 + m = map m's init_value (constant pool) */
#define R_STACK(f)	(1ull + (f))
#define R_VAL(m)	(0x10ull + (m))
#define R_INIT(m)	(0x20ull + (m))
#define R_MAP(m)	(0x30ull + (m))
#define R_FUNC		0x40ull
#define MK(r, o)	((r) << 40 | (uint64_t)(o))

struct vm {
	const struct tctx *t;
	const struct rs_prog *p;
	uint8_t stack[4][512];
	uint64_t lookups, loops;
};

static uint8_t *addr(struct vm *vm, uint64_t ptr, int size)
{
	uint64_t r = ptr >> 40, o = ptr & ((1ull << 40) - 1);

	if (r >= 1 && r < 5) {
		assert_true(o + (uint64_t)size <= 512);
		return vm->stack[r - 1] + o;
	}
	if (r >= 0x10 && r < 0x10 + T_MAPS) {
		const struct rs_map_snapshot *m = &vm->t->ms[r - 0x10];

		assert_true(o + (uint64_t)size <= m->cnt * m->value_stride);
		return m->values + o;
	}
	if (r >= 0x20 && r < 0x30) {
		const struct rs_map_ref *m = &vm->p->maps[r - 0x20];

		assert_true(o + (uint64_t)size <= m->value_size);
		return m->init_value + o;
	}
	fail_msg("bad pointer %llx", (unsigned long long)ptr);
	return NULL;
}

static uint64_t exec(struct vm *vm, size_t pc, int frame, uint64_t a1, uint64_t a2)
{
	const struct rs_prog *p = vm->p;
	uint64_t r[11] = { 0 }, steps = 0;

	r[1] = a1;
	r[2] = a2;
	r[10] = MK(R_STACK(frame), 512);
	for (;;) {
		const struct bpf_insn *in = &p->insns[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		int size = BPF_SIZE(in->code) == BPF_B ? 1 : BPF_SIZE(in->code) == BPF_H ? 2 :
			   BPF_SIZE(in->code) == BPF_W ? 4 : 8;
		uint64_t src, a, x, y;
		bool jump;

		assert_true(pc < p->insn_cnt && ++steps < 1000000);
		switch (cls) {
		case BPF_ALU:
		case BPF_ALU64:
			src = BPF_SRC(in->code) == BPF_X ? r[in->src_reg] :
			      (uint64_t)(int64_t)in->imm;
			a = r[in->dst_reg];
			switch (op) {
			case BPF_MOV: a = src; break;
			case BPF_ADD: a += src; break;
			case BPF_SUB: a -= src; break;
			case BPF_AND: a &= src; break;
			case BPF_OR: a |= src; break;
			case BPF_MUL: a *= src; break;
			case BPF_LSH: a <<= (src & 63); break;
			case BPF_RSH: a = cls == BPF_ALU ? (uint32_t)a >> (src & 31) : a >> (src & 63);
				break;
			default: fail_msg("alu op %x", op);
			}
			r[in->dst_reg] = cls == BPF_ALU ? (uint32_t)a : a;
			pc++;
			break;
		case BPF_LD:
			assert_true(rs_insn_is_ldimm64(in));
			if (in->src_reg == BPF_PSEUDO_MAP_IDX)
				r[in->dst_reg] = MK(R_MAP((uint64_t)in->imm), 0);
			else if (in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE)
				r[in->dst_reg] = MK(R_INIT((uint64_t)in->imm), (uint32_t)in[1].imm);
			else if (in->src_reg == BPF_PSEUDO_FUNC)
				r[in->dst_reg] = MK(R_FUNC, (uint64_t)rs_insn_target(p->insns, pc));
			else
				r[in->dst_reg] = (uint64_t)(uint32_t)in->imm |
						 (uint64_t)(uint32_t)in[1].imm << 32;
			pc += 2;
			break;
		case BPF_LDX:
			a = 0;
			memcpy(&a, addr(vm, r[in->src_reg] + (uint64_t)(int64_t)in->off, size),
			       (size_t)size);
			r[in->dst_reg] = a;
			pc++;
			break;
		case BPF_ST:
		case BPF_STX:
			src = cls == BPF_ST ? (uint64_t)(int64_t)in->imm : r[in->src_reg];
			memcpy(addr(vm, r[in->dst_reg] + (uint64_t)(int64_t)in->off, size), &src,
			       (size_t)size);
			pc++;
			break;
		case BPF_JMP:
		case BPF_JMP32:
			if (rs_insn_is_exit(in))
				return r[0];
			if (rs_insn_is_call(in) && in->imm == BPF_FUNC_map_lookup_elem) {
				uint32_t mi = (uint32_t)((r[1] >> 40) - 0x30);
				const struct rs_map_snapshot *m = &vm->t->ms[mi];
				const uint8_t *v = rs_snapshot_lookup(m, addr(vm, r[2], 4));

				vm->lookups++;
				r[0] = v ? MK(R_VAL(mi), (uint64_t)(v - m->values)) : 0;
				pc++;
				break;
			}
			if (rs_insn_is_call(in) && in->imm == BPF_FUNC_loop) {
				uint64_t i, n = (uint32_t)r[1], ret = n;

				assert_int_equal(r[2] >> 40, R_FUNC);
				assert_int_equal(r[4], 0);
				vm->loops++;
				for (i = 0; i < n; i++) {
					memset(vm->stack[frame + 1], 0xa5, 512);
					if (exec(vm, r[2] & 0xffffffff, frame + 1, i, r[3])) {
						ret = i + 1;
						break;
					}
				}
				r[0] = ret;
				pc++;
				break;
			}
			assert_false(rs_insn_is_call(in));
			if (op == BPF_JA) {
				pc = (size_t)rs_insn_target(p->insns, pc);
				break;
			}
			x = r[in->dst_reg];
			y = BPF_SRC(in->code) == BPF_X ? r[in->src_reg] : (uint64_t)(int64_t)in->imm;
			if (cls == BPF_JMP32) {
				x = (uint32_t)x;
				y = (uint32_t)y;
			}
			switch (op) {
			case BPF_JEQ: jump = x == y; break;
			case BPF_JNE: jump = x != y; break;
			case BPF_JGT: jump = x > y; break;
			case BPF_JGE: jump = x >= y; break;
			default: fail_msg("jmp op %x", op); jump = false;
			}
			pc = jump ? (size_t)rs_insn_target(p->insns, pc) : pc + 1;
			break;
		default:
			fail_msg("class %x", cls);
		}
	}
}

static uint64_t run_prog(const struct tctx *t, const struct rs_prog *p, uint64_t in,
			 uint64_t *lookups, uint64_t *loops)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	uint64_t r;

	assert_non_null(vm);
	vm->t = t;
	vm->p = p;
	r = exec(vm, 0, 0, in, 0);
	if (lookups)
		*lookups = vm->lookups;
	if (loops)
		*loops = vm->loops;
	free(vm);
	return r;
}

/* ---- fixtures ----------------------------------------------------------------------------- */

static void setup_rules(struct tctx *t, enum rs_map_level level)
{
	int m;
	uint32_t k;

	t_init(t);
	m = t_map(t, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct rule), N_RULES, level);
	for (k = 0; k < N_RULES; k++)
		t_entry(t, m, &k, &rules[k]);
	t_set_insns(t, prog, RS_ARRAY_SIZE(prog));
	t_site(t, 22, 0, true, true, -4);
}

static const uint64_t inputs[] = {
	0x0a010203, 0x0b000000, 0xc0a80101, 0xc0a90101, 0x01020304, 0x01020305, 0x07, 0x107,
	0, 0xffffffff, 0xdeadbeef,
};

static void check_equiv(const struct tctx *t)
{
	size_t i;

	for (i = 0; i < RS_ARRAY_SIZE(inputs); i++) {
		uint64_t a = run_prog(t, &t->orig, inputs[i], NULL, NULL);
		uint64_t b = run_prog(t, &t->ctx.prog, inputs[i], NULL, NULL);

		if (a != b)
			fail_msg("input %llx: original %llx, unrolled %llx",
				 (unsigned long long)inputs[i], (unsigned long long)a,
				 (unsigned long long)b);
	}
}

static size_t main_calls(const struct rs_prog *p, int32_t helper)
{
	size_t i, n = 0, end = p->insn_cnt;

	for (i = 1; i < p->insn_cnt; i++)
		if (p->func_info_cnt > 1 && p->func_info[1].insn_off == i)
			end = i;
	for (i = 0; i < end; i += rs_insn_width(&p->insns[i])) {
		if (rs_insn_is_pseudo_func(&p->insns[i])) {
			long t = rs_insn_target(p->insns, i);

			if (t > 0 && (size_t)t < end)
				end = (size_t)t;
		}
	}
	for (i = 0; i < end; i += rs_insn_width(&p->insns[i]))
		n += rs_insn_is_helper_call(&p->insns[i]) && p->insns[i].imm == helper;
	return n;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_unrolled(void **state)
{
	struct tctx t;
	uint64_t lookups, loops, a;

	(void)state;
	setup_rules(&t, RS_MAP_STABLE_VALUES);
	/* the original: 1 loop, lookups up to the match */
	a = run_prog(&t, &t.orig, 0x01020304, &lookups, &loops);
	assert_int_equal(a, (33ull << 16) + 4 + 0x01020304);
	assert_int_equal(loops, 1);
	assert_int_equal(lookups, 4);
	assert_int_equal(t_run(&t, &rs_pass_loop_unroll), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_APPLIED) >= 1, 1);
	assert_true(t.guarded[0]);
	check_equiv(&t);
	assert_int_equal(main_calls(&t.ctx.prog, BPF_FUNC_loop), 0);
	assert_int_equal(main_calls(&t.ctx.prog, BPF_FUNC_map_lookup_elem), 0);
	a = run_prog(&t, &t.ctx.prog, 0x01020304, &lookups, &loops);
	assert_int_equal(loops, 0);
	assert_int_equal(lookups, 0);
	t_free(&t);
}

/* values only key-stable: unrolled, but the lookups stay */
static void test_values_unstable(void **state)
{
	struct tctx t;
	uint64_t lookups, loops;

	(void)state;
	setup_rules(&t, RS_MAP_STABLE_KEYS);
	assert_int_equal(t_run(&t, &rs_pass_loop_unroll), 0);
	check_equiv(&t);
	assert_int_equal(main_calls(&t.ctx.prog, BPF_FUNC_loop), 0);
	run_prog(&t, &t.ctx.prog, 0x01020304, &lookups, &loops);
	assert_int_equal(loops, 0);
	assert_int_equal(lookups, 4);
	assert_false(t.guarded[0]);
	t_free(&t);
}

/* the count is not a constant: nothing changes */
static void test_count_unknown(void **state)
{
	struct bpf_insn p[RS_ARRAY_SIZE(prog)];
	struct tctx t;

	(void)state;
	memcpy(p, prog, sizeof(p));
	p[3] = LDX_MEM(BPF_DW, 1, RS_REG_FP, -8);	/* r1 = input */
	t_init(&t);
	t_map(&t, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct rule), N_RULES, RS_MAP_STABLE_VALUES);
	t_set_insns(&t, p, RS_ARRAY_SIZE(p));
	assert_int_equal(t_run(&t, &rs_pass_loop_unroll), 0);
	assert_int_equal(t.ctx.prog.insn_cnt, t.orig.insn_cnt);
	assert_memory_equal(t.ctx.prog.insns, t.orig.insns, t.orig.insn_cnt * sizeof(*p));
	t_free(&t);
}

/* a callback that calls a subprogram is left alone (MISSED) */
static void test_callback_calls(void **state)
{
	struct bpf_insn p[RS_ARRAY_SIZE(prog) + 2];
	struct tctx t;

	(void)state;
	memcpy(p, prog, sizeof(prog));
	/* 33: call sub (36); 34: exit -> 33: r0 = 0 via the subprogram */
	p[33] = (struct bpf_insn){ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL,
				   .imm = 1 };		/* -> 35 */
	p[34] = EXIT();
	p[35] = MOV64_IMM(0, 0);
	p[36] = EXIT();
	t_init(&t);
	t_map(&t, BPF_MAP_TYPE_ARRAY, 4, sizeof(struct rule), N_RULES, RS_MAP_STABLE_VALUES);
	t_set_insns(&t, p, RS_ARRAY_SIZE(p));
	assert_int_equal(t_run(&t, &rs_pass_loop_unroll), 0);
	assert_int_equal(t_remarks(&t, RS_REMARK_MISSED), 1);
	assert_int_equal(t.ctx.prog.insn_cnt, t.orig.insn_cnt);
	t_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unrolled),
		cmocka_unit_test(test_values_unstable),
		cmocka_unit_test(test_count_unknown),
		cmocka_unit_test(test_callback_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
