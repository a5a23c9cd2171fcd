// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_store_merge.c - the store_merge pass: hand-written programs (a zero-extended 4-byte
 * store into a zeroed 8-byte word only changes size; a flow-key-like word assembled from a
 * register, re-loads of earlier narrow stores and a known constant; a map helper's key as the
 * wide reader; no rewrite without a spanning reader, with a register that may have high bits,
 * with an unknown byte, after a helper that may write the stack, or when a later store into the
 * word comes first), each replayed against its input, and an equivalence property on random
 * programs of narrow / wide stack stores and loads with branches (RS_TEST_SEED): the output
 * computes the same r0 and leaves the same stack bytes as the input under a small interpreter.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tests/unit/pass_testlib.h"

/* ---- interpreter: ALU, stack loads and stores, jumps, helper calls (clobber r1-r5) ------ */

struct vm {
	uint8_t stack[512];
	uint64_t r[RS_MAX_REG];
	size_t calls;
};

#define FP 0x100000000ULL

static int vm_run(struct vm *vm, const struct bpf_insn *p, size_t cnt)
{
	static const size_t sz[] = { 4, 2, 1, 8 };
	size_t pc = 0, steps = 0;

	vm->r[RS_REG_FP] = FP + 512;
	while (pc < cnt && ++steps < 100000) {
		const struct bpf_insn *in = &p[pc];
		uint8_t cls = BPF_CLASS(in->code);
		uint64_t *d = &vm->r[in->dst_reg], s, v = 0, a, b;

		s = BPF_SRC(in->code) == BPF_X ? vm->r[in->src_reg] : (uint64_t)(int64_t)in->imm;
		if (rs_insn_is_ldimm64(in)) {
			*d = in->src_reg ? 0xffff888000000000ULL + (uint32_t)in->imm :
			     (uint32_t)in->imm | ((uint64_t)(uint32_t)in[1].imm << 32);
			pc += 2;
			continue;
		}
		if (cls == BPF_ALU || cls == BPF_ALU64) {
			bool is64 = cls == BPF_ALU64;

			a = is64 ? *d : (uint32_t)*d;
			b = is64 ? s : (uint32_t)s;
			switch (BPF_OP(in->code)) {
			case BPF_ADD: v = a + b; break;
			case BPF_SUB: v = a - b; break;
			case BPF_OR: v = a | b; break;
			case BPF_AND: v = a & b; break;
			case BPF_XOR: v = a ^ b; break;
			case BPF_MOV: v = b; break;
			case BPF_LSH: v = a << (b & (is64 ? 63 : 31)); break;
			case BPF_RSH: v = a >> (b & (is64 ? 63 : 31)); break;
			default: return -1;
			}
			*d = is64 ? v : (uint32_t)v;
			pc++;
			continue;
		}
		if (cls == BPF_LDX || cls == BPF_STX || cls == BPF_ST) {
			size_t n = sz[BPF_SIZE(in->code) >> 3];
			uint64_t addr = (cls == BPF_LDX ? vm->r[in->src_reg] : *d) + in->off;

			if (addr < FP || addr + n > FP + 512)
				return -1;
			if (cls == BPF_LDX) {
				v = 0;
				memcpy(&v, &vm->stack[addr - FP], n);
				*d = v;
			} else {
				v = cls == BPF_STX ? vm->r[in->src_reg] : (uint64_t)(int64_t)in->imm;
				memcpy(&vm->stack[addr - FP], &v, n);
			}
			pc++;
			continue;
		}
		if (rs_insn_is_exit(in))
			return 0;
		if (rs_insn_is_helper_call(in)) {
			int r;

			vm->calls++;
			/* a helper that may write the stack (not a map helper) scribbles on it */
			if (in->imm > 3)
				vm->stack[500] ^= 0x5a;
			vm->r[0] = 1000 + vm->calls;
			for (r = 1; r <= 5; r++)
				vm->r[r] = 0xbeef0000 + (uint64_t)r;
			pc++;
			continue;
		}
		if (rs_insn_is_uncond_jmp(in)) {
			pc = (size_t)rs_insn_target(p, pc);
			continue;
		}
		if (rs_insn_is_cond_jmp(in)) {
			bool t;

			a = *d;
			b = s;
			switch (BPF_OP(in->code)) {
			case BPF_JEQ: t = a == b; break;
			case BPF_JNE: t = a != b; break;
			case BPF_JGT: t = a > b; break;
			case BPF_JSET: t = a & b; break;
			default: return -1;
			}
			pc = t ? (size_t)rs_insn_target(p, pc) : pc + 1;
			continue;
		}
		return -1;
	}
	return -1;
}

/* run input and output with the same registers; r0 and the stack must agree */
static void same(const struct rs_prog *a, const struct rs_prog *b, uint64_t seed)
{
	static struct vm x, y;
	int r;

	memset(&x, 0, sizeof(x));
	for (r = 0; r < RS_REG_FP; r++)
		x.r[r] = seed * 0x9e3779b97f4a7c15ULL * (uint64_t)(r + 1) ^ (seed >> 3);
	memset(x.stack, 0xcc, sizeof(x.stack));
	y = x;
	assert_int_equal(vm_run(&x, a->insns, a->insn_cnt), 0);
	assert_int_equal(vm_run(&y, b->insns, b->insn_cnt), 0);
	if (getenv("SM_DUMP") && x.r[0] != y.r[0]) {
		char buf[96];
		size_t i;

		for (i = 0; i < a->insn_cnt; i++) {
			rs_insn_snprint(buf, sizeof(buf), a->insns, a->insn_cnt, i);
			fprintf(stderr, "A %2zu %s\n", i, buf);
		}
		for (i = 0; i < b->insn_cnt; i++) {
			rs_insn_snprint(buf, sizeof(buf), b->insns, b->insn_cnt, i);
			fprintf(stderr, "B %2zu %s\n", i, buf);
		}
	}
	assert_true(x.r[0] == y.r[0]);
	assert_int_equal(x.calls, y.calls);
	assert_memory_equal(x.stack, y.stack, sizeof(x.stack));
}

static size_t applied(const struct tctx *t)
{
	size_t k, n = 0;

	for (k = 0; k < t->remarks.cnt; k++)
		n += t->remarks.v[k].kind == RS_REMARK_APPLIED;
	return n;
}

static void check(const struct bpf_insn *in, size_t n, const struct rs_map_ref *extra,
		  struct tctx *t, struct rs_prog *p)
{
	uint64_t s;

	mkprog_with(p, in, n, extra);
	ctx_init(t, p, NULL);
	run(t, &rs_pass_store_merge);
	for (s = 1; s < 20; s++)
		same(p, &t->ctx.prog, s);
}

/* ---- hand-written programs ---------------------------------------------------------------- */

static void test_size_only(void **state)
{
	struct bpf_insn in[] = {
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),	/* 0: word zeroed */
		ALU32_REG(BPF_MOV, 1, 6),		/* 1: w1 = w6: no high bits */
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),	/* 2: -> *(u64 *) = r1 */
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),	/* 3: the wide read */
		EXIT(),
	};
	struct rs_prog p;
	struct tctx t;

	(void)state;
	check(in, RS_ARRAY_SIZE(in), NULL, &t, &p);
	assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
	assert_int_equal(t.ctx.prog.insns[2].code, BPF_STX | BPF_DW | BPF_MEM);
	assert_int_equal(t.ctx.prog.insns[2].src_reg, 1);
	assert_int_equal(t.ctx.prog.insns[2].off, -8);
	assert_int_equal(applied(&t), 1);
	assert_int_equal(t.st.applied, 1);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_assemble_key_word(void **state)
{
	/* a flow-key-like word: sport | dport << 16 | proto << 32 | family << 40, pad 0 */
	struct bpf_insn in[] = {
		ST_MEM(BPF_DW, RS_REG_FP, -16, 0),	/* 0 */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),	/* 1 */
		MOV64_IMM(3, 4),			/* 2 */
		STX_MEM(BPF_B, RS_REG_FP, 3, -11),	/* 3: family = 4 (constant) */
		ALU64_IMM(BPF_AND, 7, 0xff),		/* 4 */
		STX_MEM(BPF_B, RS_REG_FP, 7, -12),	/* 5: proto (re-loaded) */
		ALU64_IMM(BPF_AND, 6, 0xffff),		/* 6 */
		STX_MEM(BPF_H, RS_REG_FP, 6, -16),	/* 7: sport (re-loaded) */
		MOV64_IMM(6, 0),			/* 8: r6 reused */
		ALU64_IMM(BPF_AND, 8, 0xffff),		/* 9 */
		STX_MEM(BPF_H, RS_REG_FP, 8, -14),	/* 10: dport: the rewritten store */
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, 1),	/* 11: map 1, 16-byte key */
		LD_IMM64_HI(0),
		MOV64_REG(2, RS_REG_FP),		/* 13 */
		ALU64_IMM(BPF_ADD, 2, -16),		/* 14 */
		CALL_HELPER(BPF_FUNC_map_lookup_elem),	/* 15: reads the key in words */
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -16),	/* 16 */
		EXIT(),
	};
	struct rs_map_ref h = { .id = 2, .type = BPF_MAP_TYPE_HASH, .key_size = 16,
				.value_size = 8, .max_entries = 64, .name = "h" };
	const struct bpf_insn *o;
	struct rs_prog p;
	struct tctx t;
	size_t i;
	bool wide = false;

	(void)state;
	check(in, RS_ARRAY_SIZE(in), &h, &t, &p);
	/* only the last store into the word (10) is rewritten: 3, 5 and 7 stay */
	assert_int_equal(applied(&t), 1);
	o = t.ctx.prog.insns;
	assert_int_equal(o[3].code, BPF_STX | BPF_B | BPF_MEM);
	assert_int_equal(o[5].code, BPF_STX | BPF_B | BPF_MEM);
	assert_int_equal(o[7].code, BPF_STX | BPF_H | BPF_MEM);
	for (i = 10; i < t.ctx.prog.insn_cnt; i++) {
		if (o[i].code == (BPF_STX | BPF_DW | BPF_MEM) && o[i].off == -16)
			wide = true;
		/* re-loads read exactly what one store wrote */
		if (BPF_CLASS(o[i].code) == BPF_LDX && o[i].off == -16 && !wide)
			assert_int_equal(BPF_SIZE(o[i].code), BPF_H);
		if (BPF_CLASS(o[i].code) == BPF_LDX && o[i].off == -12)
			assert_int_equal(BPF_SIZE(o[i].code), BPF_B);
		/* the family byte is a known constant: no re-load */
		assert_false(BPF_CLASS(o[i].code) == BPF_LDX && o[i].off == -11);
		assert_true(o[i].dst_reg != 7 && o[i].dst_reg != 8);	/* live: untouched */
	}
	assert_true(wide);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_four_byte_word(void **state)
{
	/* port (2 bytes) then proto (1 byte) of a 4-byte chunk a compare chain loads */
	struct bpf_insn in[] = {
		ST_MEM(BPF_W, RS_REG_FP, -4, 0),	/* 0 */
		ALU64_IMM(BPF_AND, 7, 0xff),		/* 1 */
		STX_MEM(BPF_B, RS_REG_FP, 7, -2),	/* 2: proto */
		ALU64_IMM(BPF_AND, 6, 0xffff),		/* 3 */
		STX_MEM(BPF_H, RS_REG_FP, 6, -4),	/* 4: port */
		LDX_MEM(BPF_W, 0, RS_REG_FP, -4),	/* 5 */
		EXIT(),
	};
	struct rs_prog p;
	struct tctx t;
	size_t i;
	bool w4 = false;

	(void)state;
	check(in, RS_ARRAY_SIZE(in), NULL, &t, &p);
	assert_int_equal(applied(&t), 1);
	for (i = 0; i < t.ctx.prog.insn_cnt; i++) {
		const struct bpf_insn *o = &t.ctx.prog.insns[i];

		w4 |= o->code == (BPF_STX | BPF_W | BPF_MEM) && o->off == -4;
		assert_false(o->code == (BPF_STX | BPF_DW | BPF_MEM));	/* 4 bytes suffice */
	}
	assert_true(w4);
	ctx_fini(&t);
	rs_prog_free(&p);
}

static void test_refusals(void **state)
{
	/* each: no rewrite */
	struct bpf_insn no_reader[] = {		/* same-size read: forwards already */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),
		ALU32_REG(BPF_MOV, 1, 6),
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),
		LDX_MEM(BPF_W, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct bpf_insn high_bits[] = {		/* r6 may have bits above 32 */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),
		STX_MEM(BPF_W, RS_REG_FP, 6, -8),
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct bpf_insn unknown_byte[] = {	/* bytes -4..-1 never written */
		ALU32_REG(BPF_MOV, 1, 6),
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),
		ST_MEM(BPF_B, RS_REG_FP, -1, 0),
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct bpf_insn helper[] = {		/* a helper may have written the stack */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),
		CALL_HELPER(BPF_FUNC_ktime_get_ns),
		ALU32_REG(BPF_MOV, 1, 6),
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct bpf_insn later_store[] = {	/* the read sees a later store anyway */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),
		ALU32_REG(BPF_MOV, 1, 6),
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),
		STX_MEM(BPF_B, RS_REG_FP, 1, -2),
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct bpf_insn alias[] = {		/* a store through an unknown pointer */
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),
		STX_MEM(BPF_DW, 2, 1, 0),
		ALU32_REG(BPF_MOV, 1, 6),
		STX_MEM(BPF_W, RS_REG_FP, 1, -8),
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),
		EXIT(),
	};
	struct { const struct bpf_insn *in; size_t n; } c[] = {
		{ no_reader, RS_ARRAY_SIZE(no_reader) },
		{ high_bits, RS_ARRAY_SIZE(high_bits) },
		{ unknown_byte, RS_ARRAY_SIZE(unknown_byte) },
		{ helper, RS_ARRAY_SIZE(helper) },
		{ later_store, RS_ARRAY_SIZE(later_store) },
		{ alias, RS_ARRAY_SIZE(alias) },
	};
	size_t k;

	(void)state;
	for (k = 0; k < RS_ARRAY_SIZE(c); k++) {
		struct rs_prog p;
		struct tctx t;

		mkprog(&p, c[k].in, c[k].n);
		ctx_init(&t, &p, NULL);
		run(&t, &rs_pass_store_merge);
		if (applied(&t))
			fail_msg("case %zu rewritten", k);
		assert_int_equal(t.ctx.prog.insn_cnt, p.insn_cnt);
		assert_memory_equal(t.ctx.prog.insns, p.insns, p.insn_cnt * sizeof(*p.insns));
		ctx_fini(&t);
		rs_prog_free(&p);
	}
}

static void test_join(void **state)
{
	/* both arms store a different constant family byte: re-loaded, not a constant */
	struct bpf_insn in[] = {
		ST_MEM(BPF_DW, RS_REG_FP, -8, 0),	/* 0 */
		JMP_IMM(BPF_JSET, 6, 1, 2),		/* 1 */
		ST_MEM(BPF_B, RS_REG_FP, -7, 4),	/* 2 */
		JA(1),					/* 3 */
		ST_MEM(BPF_B, RS_REG_FP, -7, 6),	/* 4 */
		ALU64_IMM(BPF_AND, 7, 0xff),		/* 5 */
		STX_MEM(BPF_B, RS_REG_FP, 7, -8),	/* 6: rewritten */
		LDX_MEM(BPF_DW, 0, RS_REG_FP, -8),	/* 7 */
		EXIT(),
	};
	struct rs_prog p;
	struct tctx t;
	size_t i;
	bool reload = false;

	(void)state;
	check(in, RS_ARRAY_SIZE(in), NULL, &t, &p);
	assert_int_equal(applied(&t), 1);
	for (i = 0; i < t.ctx.prog.insn_cnt; i++)
		reload |= t.ctx.prog.insns[i].code == (BPF_LDX | BPF_B | BPF_MEM) &&
			  t.ctx.prog.insns[i].off == -7;
	assert_true(reload);
	ctx_fini(&t);
	rs_prog_free(&p);
}

/* ---- random programs ---------------------------------------------------------------------- */

static struct bpf_insn rand_insn(size_t pos, size_t n)
{
	static const int sizes[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
	static const int nb[] = { 1, 2, 4, 8 };
	int k = (int)rs_rand_below(4), r = (int)rs_rand_below(6), off;

	off = -8 * (1 + (int)rs_rand_below(3));
	off += (int)(rs_rand_below((unsigned)(8 / nb[k]))) * nb[k];
	switch (rs_rand_below(10)) {
	case 0: case 1:
		return ST_MEM(sizes[k], RS_REG_FP, off, (int32_t)rs_rand_below(600) - 100);
	case 2: case 3: case 4:
		return STX_MEM(sizes[k], RS_REG_FP, r, off);
	case 5: case 6:
		return LDX_MEM(sizes[k], r, RS_REG_FP, off);
	case 7:
		return ALU64_IMM(BPF_AND, r, (int32_t)(rs_rand_below(2) ? 0xff : 0xffff));
	case 8:
		return ALU32_REG(BPF_MOV, r, (int)rs_rand_below(6));
	default:
		if (pos + 2 < n)
			return JMP_IMM(BPF_JSET, r, 1 << rs_rand_below(8),
				       (int16_t)rs_rand_below((unsigned)(n - pos - 2)));
		return MOV64_IMM(r, (int32_t)rs_rand_below(1000));
	}
}

static void test_random_equivalence(void **state)
{
	size_t iter, total = 0;

	(void)state;
	rs_test_seed(20261122);
	for (iter = 0; iter < 800; iter++) {
		struct bpf_insn in[64];
		size_t n = 8 + rs_rand_below(40), i;
		struct rs_prog p;
		struct tctx t;
		uint64_t s;

		/* the words start initialized (the verifier would refuse reads otherwise) */
		in[0] = ST_MEM(BPF_DW, RS_REG_FP, -8, 0);
		in[1] = ST_MEM(BPF_DW, RS_REG_FP, -16, 0);
		in[2] = ST_MEM(BPF_DW, RS_REG_FP, -24, 0);
		for (i = 3; i < n - 5; i++)
			in[i] = rand_insn(i, n - 5);
		in[n - 5] = LDX_MEM(BPF_DW, 0, RS_REG_FP, -8);
		in[n - 4] = LDX_MEM(BPF_DW, 1, RS_REG_FP, -16);
		in[n - 3] = ALU64_REG(BPF_XOR, 0, 1);
		in[n - 2] = ALU64_REG(BPF_ADD, 0, 6);
		in[n - 1] = EXIT();
		mkprog(&p, in, n);
		ctx_init(&t, &p, NULL);
		run(&t, &rs_pass_store_merge);
		total += applied(&t);
		for (s = 1; s < 8; s++)
			same(&p, &t.ctx.prog, s + iter * 8);
		ctx_fini(&t);
		rs_prog_free(&p);
	}
	assert_true(total > 100);	/* the property is not vacuous */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_only),
		cmocka_unit_test(test_assemble_key_word),
		cmocka_unit_test(test_four_byte_word),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_join),
		cmocka_unit_test(test_random_equivalence),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
