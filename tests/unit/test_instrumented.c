// SPDX-License-Identifier: BSD-2-Clause
/*
 * test_instrumented.c - the instrumented variant as a pure rewrite (optimizer/instrumented.c):
 * the original main body survives byte for byte behind the sampling prologue, the copy (a
 * subprogram called from the sampled path, or inline behind the main body) records
 * every resolvable lookup site and counts every conditional branch, subprograms are untouched,
 * spill slots lie below the program's stack, maps are appended as described by the layout,
 * the result validates, refusals are clean; and profiles built from raw counts rank keys and
 * read branch counters correctly.  Behaviour under the kernel (0 divergences, recorded keys)
 * is tested by tests/kernel/test_profile.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/optimizer.h"
#include "tests/unit/ir_testlib.h"

#define M_HASH 0
#define M_ARR 1

/*
 * main: key on the stack at fp-16 (8 bytes), lookup in the hash (resolvable), a lookup whose
 * map comes through r6 copied from a map load (resolvable through the copy), a call to a
 * subprogram, two conditional branches; subprogram: one branch, one lookup (not recorded).
 */
static const struct bpf_insn code[] = {
	/* 0 */ MOV64_REG(6, 1),
	/* 1 */ ST_MEM(BPF_DW, 10, -16, 7),
	/* 2 */ MOV64_REG(2, 10),
	/* 3 */ ALU64_IMM(BPF_ADD, 2, -16),
	/* 4 */ LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, M_HASH),
	/* 5 */ LD_IMM64_HI(0),
	/* 6 */ CALL_HELPER(BPF_FUNC_map_lookup_elem),
	/* 7 */ JMP_IMM(BPF_JEQ, 0, 0, 9),		/* -> 17 */
	/* 8 */ LD_IMM64_LO(7, BPF_PSEUDO_MAP_IDX, M_ARR),
	/* 9 */ LD_IMM64_HI(0),
	/* 10 */ ST_MEM(BPF_W, 10, -4, 0),
	/* 11 */ MOV64_REG(2, 10),
	/* 12 */ ALU64_IMM(BPF_ADD, 2, -4),
	/* 13 */ MOV64_REG(1, 7),
	/* 14 */ CALL_HELPER(BPF_FUNC_map_lookup_elem),
	/* 15 */ MOV64_REG(1, 0),
	/* 16 */ CALL_PSEUDO(4),			/* -> 21 */
	/* 17 */ JMP_IMM(BPF_JGT, 6, 3, 1),		/* -> 19 */
	/* 18 */ MOV64_IMM(0, 2),
	/* 19 */ MOV64_IMM(0, 1),
	/* 20 */ EXIT(),
	/* sub */
	/* 21 */ JMP_IMM(BPF_JEQ, 1, 0, 4),		/* -> 26 */
	/* 22 */ MOV64_REG(2, 1),
	/* 23 */ LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, M_ARR),
	/* 24 */ LD_IMM64_HI(0),
	/* 25 */ CALL_HELPER(BPF_FUNC_map_lookup_elem),
	/* 26 */ MOV64_IMM(0, 0),
	/* 27 */ EXIT(),
};
#define MAIN_END 21

static void make_prog(struct rs_prog *p, const struct bpf_insn *in, size_t n)
{
	struct rs_map_ref h = { .type = BPF_MAP_TYPE_HASH, .key_size = 8, .value_size = 8,
				.max_entries = 16, .name = "h" };
	struct rs_map_ref a = { .type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 8,
				.max_entries = 4, .name = "a" };

	rs_prog_init(p);
	assert_int_equal(rs_prog_set_insns(p, in, n), 0);
	strcpy(p->name, "t");
	p->type = BPF_PROG_TYPE_XDP;
	assert_int_equal(rs_prog_add_map(p, &h), M_HASH);
	assert_int_equal(rs_prog_add_map(p, &a), M_ARR);
}

static void expect_valid(const struct rs_prog *p)
{
	char err[256];

	if (rs_prog_validate(p, err, sizeof(err)))
		fail_msg("invalid: %s", err);
}

/* make_prog + rs_instrument, which must succeed with a valid result. */
static void instrument_ok(struct rs_prog *p, const struct bpf_insn *in, size_t n,
			  const struct rs_instr_opts *o, struct rs_prog *out,
			  struct rs_instr_layout *l)
{
	make_prog(p, in, n);
	rs_prog_init(out);
	assert_int_equal(rs_instrument(p, o, out, l), 0);
	expect_valid(out);
}

/* Start of the ORIG copy: target of the prologue's first conditional jump. */
static long orig_start(const struct rs_prog *out)
{
	size_t i;

	for (i = 0; i < out->insn_cnt; i++)
		if (rs_insn_is_cond_jmp(&out->insns[i]))
			return (long)i + 1;	/* the non-sampled path falls through */
	return -1;
}

static void test_shape(void **state)
{
	RS_OPTS(rs_instr_opts, o, .sample_rate = 100);
	struct rs_instr_layout l;
	struct rs_prog p, out;
	long os, t;
	size_t i, sub_new;

	(void)state;
	instrument_ok(&p, code, RS_ARRAY_SIZE(code), &o, &out, &l);

	/* the original main body survives unchanged behind the prologue */
	os = orig_start(&out);
	assert_true(os > 0);
	for (i = 0; i < MAIN_END; i++) {
		const struct bpf_insn *a = &p.insns[i], *b = &out.insns[os + i];

		if (rs_insn_is_pseudo_call(a)) {
			/* re-aimed: still reaches the subprogram, found at its new place */
			t = rs_insn_target(out.insns, os + i);
			assert_memory_equal(&out.insns[t], &p.insns[21],
					    (RS_ARRAY_SIZE(code) - 21) * sizeof(*a));
			continue;
		}
		if (rs_insn_is_jmp(a)) {
			assert_int_equal(rs_insn_target(out.insns, os + i) - os,
					 rs_insn_target(p.insns, i));
			continue;
		}
		assert_memory_equal(a, b, sizeof(*a));
	}
	/* subprogram unchanged at the end */
	sub_new = out.insn_cnt - (RS_ARRAY_SIZE(code) - MAIN_END);
	assert_memory_equal(&out.insns[sub_new], &p.insns[MAIN_END],
			    (RS_ARRAY_SIZE(code) - MAIN_END) * sizeof(struct bpf_insn));

	/* layout: two main sites (direct and through r7), two main branches */
	assert_int_equal(l.sample_rate, 100);
	assert_int_equal(l.site_cnt, 2);
	assert_int_equal(l.sites[0].insn, 6);
	assert_int_equal(l.sites[0].map_idx, M_HASH);
	assert_int_equal(l.sites[0].key_size, 8);
	assert_int_equal(l.sites[1].insn, 14);
	assert_int_equal(l.sites[1].map_idx, M_ARR);
	assert_int_equal(l.sites[1].key_size, 4);
	assert_int_equal(l.branch_cnt, 2);
	assert_int_equal(l.branches[0].insn, 7);
	assert_int_equal(l.branches[1].insn, 17);
	assert_int_equal(l.skipped_sites, 0);

	/* maps: originals, control array, one key ring per site */
	assert_int_equal(out.map_cnt, 2 + 1 + 2);
	assert_int_equal(out.maps[l.ctl_map_idx].type, BPF_MAP_TYPE_ARRAY);
	assert_int_equal(out.maps[l.ctl_map_idx].value_size, RS_PROF_BR_OFF(2) + 2 * 4);
	assert_string_equal(out.maps[l.ctl_map_idx].name, RS_PROF_CTL_NAME);
	for (i = 0; i < l.site_cnt; i++) {
		const struct rs_map_ref *m = &out.maps[l.sites[i].ring_map_idx];

		assert_int_equal(m->type, BPF_MAP_TYPE_ARRAY);
		assert_int_equal(m->max_entries, 1);
		assert_int_equal(l.sites[i].ring_len, RS_PROF_DEFAULT_KEYS);
		assert_int_equal(m->value_size, RS_PROF_DEFAULT_KEYS * l.sites[i].key_size);
		assert_int_equal(l.sites[i].pos_off, RS_PROF_BR_OFF(2) + 4 * i);
		assert_int_equal(m->id, 0);
		assert_null(m->init_value);
	}
	assert_string_equal(out.maps[l.sites[0].ring_map_idx].name, "rs_prof_k6");

	/* the random reload at the head of the copy: scaled onto 2N-1 values by a multiply,
	 * no division, no helper */
	t = rs_insn_target(out.insns, (size_t)os - 1);
	for (i = (size_t)t; i < (size_t)t + 20; i++) {
		uint8_t cls = rs_insn_class(&out.insns[i]);

		if (cls == BPF_ALU || cls == BPF_ALU64)
			assert_true(BPF_OP(out.insns[i].code) != BPF_MOD &&
				    BPF_OP(out.insns[i].code) != BPF_DIV);
		if (out.insns[i].code == (BPF_ALU64 | BPF_MUL | BPF_K))
			break;
	}
	assert_true(i < (size_t)t + 20);
	/* bursts of B: the gap to the next burst has mean G = N * B - B + 1 */
	assert_int_equal(l.burst, RS_PROF_DEFAULT_BURST);
	assert_int_equal(out.insns[i].imm, 2 * (100 * RS_PROF_DEFAULT_BURST -
						 RS_PROF_DEFAULT_BURST + 1) - 1);

	/* spill slots: r10 accesses of new code stay within [depth, depth + 24) */
	assert_int_equal(l.stack_depth, 16);
	for (i = 0; i < out.insn_cnt; i++) {
		const struct bpf_insn *in = &out.insns[i];
		uint8_t cls = rs_insn_class(in);

		if ((cls == BPF_STX || cls == BPF_ST) && in->dst_reg == 10 && in->off < -16)
			assert_true(in->off >= -(16 + 24));
		if (cls == BPF_LDX && in->src_reg == 10 && in->off < -16)
			assert_true(in->off >= -(16 + 24));
	}
	/* copy: the lookup calls of main appear 4 times (2 ORIG, 2 copies), the subprogram's
	 * once; recording calls no helper */
	{
		size_t lookups = 0, updates = 0, prandom = 0;

		for (i = 0; i < out.insn_cnt; i++) {
			if (!rs_insn_is_helper_call(&out.insns[i]))
				continue;
			lookups += out.insns[i].imm == BPF_FUNC_map_lookup_elem;
			updates += out.insns[i].imm == BPF_FUNC_map_update_elem;
			prandom += out.insns[i].imm == BPF_FUNC_get_prandom_u32;
		}
		assert_int_equal(lookups, 2 + 2 + 1);
		assert_int_equal(updates, 0);
		assert_int_equal(prandom, 0);	/* the generator is inline */
	}
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/*
 * The non-sampled path is exactly: ld_imm64 ctl, load, add -1, store, jsle -> PROF, falling
 * through into ORIG; PROF starts with the reload (burst left, next to the countdown).
 */
static void test_cheap_path(void **state)
{
	struct rs_instr_layout l;
	struct rs_prog p, out;
	long t;

	(void)state;
	instrument_ok(&p, code, RS_ARRAY_SIZE(code), NULL, &out, &l);
	assert_int_equal(l.sample_rate, RS_PROF_DEFAULT_RATE);
	assert_true(rs_insn_is_ldimm64(&out.insns[0]));
	assert_int_equal(out.insns[0].src_reg, BPF_PSEUDO_MAP_IDX_VALUE);
	assert_int_equal(out.insns[0].imm, (int32_t)l.ctl_map_idx);
	assert_int_equal(out.insns[2].code, BPF_LDX | BPF_W | BPF_MEM);
	assert_int_equal(out.insns[3].code, BPF_ALU | BPF_ADD | BPF_K);
	assert_int_equal(out.insns[3].imm, -1);
	assert_int_equal(out.insns[4].code, BPF_STX | BPF_W | BPF_MEM);
	assert_int_equal(out.insns[5].code, BPF_JMP32 | BPF_JSLE | BPF_K);
	assert_int_equal(orig_start(&out), 6);
	t = rs_insn_target(out.insns, 5);
	assert_true(t > 6 + MAIN_END - 1);
	assert_int_equal(out.insns[t].code, BPF_LDX | BPF_W | BPF_MEM);
	assert_int_equal(out.insns[t].src_reg, 2);
	assert_int_equal(out.insns[t].off, offsetof(struct rs_prof_ctl, burst_left));
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/* Per-CPU countdowns: CPU id (inlined helper) indexes 64-byte slots after the counters. */
static void test_percpu(void **state)
{
	RS_OPTS(rs_instr_opts, o, .percpu_countdown = true);
	struct rs_instr_layout l;
	struct rs_prog p, out;

	(void)state;
	instrument_ok(&p, code, RS_ARRAY_SIZE(code), &o, &out, &l);
	assert_int_equal(l.cpu_off, (RS_PROF_BR_OFF(2) + 2 * 4 + 63) & ~63u);
	assert_int_equal(out.maps[l.ctl_map_idx].value_size, l.cpu_off + RS_PROF_CPU_SLOTS * 64);
	assert_true(rs_insn_is_helper_call(&out.insns[1]));
	assert_int_equal(out.insns[1].imm, BPF_FUNC_get_smp_processor_id);
	assert_int_equal(out.insns[3].imm, RS_PROF_CPU_SLOTS - 1);
	assert_true(rs_insn_is_ldimm64(&out.insns[5]));
	assert_int_equal(out.insns[6].imm, (int32_t)l.cpu_off);	/* value offset */
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/* 8-byte stores to the frame: the spills of the branch counters in these programs. */
static size_t fp_spills(const struct rs_prog *out)
{
	size_t i, n = 0;

	for (i = 0; i < out->insn_cnt; i++)
		n += out->insns[i].code == (BPF_STX | BPF_DW | BPF_MEM) &&
		     out->insns[i].dst_reg == 10;
	return n;
}

/* Every register live across a branch: counters spill two of them and fill them back. */
static void test_all_live_spills(void **state)
{
	struct bpf_insn c[32];
	struct rs_instr_layout l;
	struct rs_prog p, out;
	size_t n = 0;
	int r;

	(void)state;
	c[n++] = MOV64_REG(6, 1);
	for (r = 0; r <= 9; r++)
		if (r != 6 && r != 1)
			c[n++] = MOV64_IMM(r, r);
	c[n++] = MOV64_IMM(1, 1);
	c[n++] = JMP_IMM(BPF_JEQ, 1, 0, 0);
	for (r = 1; r <= 9; r++)
		c[n++] = ALU64_REG(BPF_ADD, 0, r);
	c[n++] = EXIT();
	instrument_ok(&p, c, n, NULL, &out, &l);
	assert_int_equal(l.branch_cnt, 1);
	assert_int_equal(l.skipped_branches, 0);
	assert_int_equal(fp_spills(&out), 4);	/* two per edge */
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/*
 * r0-r5 live across a branch, r6-r9 never touched: the counters spill two of r0-r5 rather
 * than take a dead callee-saved register, which would make the JIT save and restore it on
 * every packet.
 */
static void test_no_new_callee_saved(void **state)
{
	struct bpf_insn c[32];
	struct rs_instr_layout l;
	struct rs_prog p, out;
	size_t n = 0, i;
	int r;

	(void)state;
	for (r = 0; r <= 5; r++)
		c[n++] = MOV64_IMM(r, r);
	c[n++] = JMP_IMM(BPF_JEQ, 1, 0, 0);
	for (r = 1; r <= 5; r++)
		c[n++] = ALU64_REG(BPF_ADD, 0, r);
	c[n++] = EXIT();
	instrument_ok(&p, c, n, NULL, &out, &l);
	assert_int_equal(l.branch_cnt, 1);
	for (i = 0; i < out.insn_cnt; i++)
		if (!rs_insn_is_call(&out.insns[i]))
			assert_int_equal((rs_insn_uses(&out.insns[i]) |
					  rs_insn_defs(&out.insns[i])) & 0x3c0, 0);	/* r6-r9 */
	assert_int_equal(fp_spills(&out), 4);	/* two per edge */
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

/*
 * A key built field by field right before the lookup (4 + 2 + 1 + 1 bytes) is read back in
 * the same pieces, so each load is forwarded from one store; a key stored whole is read in
 * one 8-byte load.
 */
static void test_key_chunks(void **state)
{
	const struct bpf_insn c[] = {
		ST_MEM(BPF_W, 10, -8, 1),
		ST_MEM(BPF_H, 10, -4, 2),
		ST_MEM(BPF_B, 10, -2, 3),
		ST_MEM(BPF_B, 10, -1, 4),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -8),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, M_HASH),
		LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		ST_MEM(BPF_DW, 10, -16, 5),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -16),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, M_HASH),
		LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		MOV64_IMM(0, 2),
		EXIT(),
	};
	static const uint8_t want[] = { BPF_W, BPF_H, BPF_B, BPF_B, BPF_DW };
	struct rs_instr_layout l;
	struct rs_prog p, out;
	size_t i, k = 0;

	(void)state;
	instrument_ok(&p, c, RS_ARRAY_SIZE(c), NULL, &out, &l);
	assert_int_equal(l.site_cnt, 2);
	/* the copies: r0 = key chunk (through r2, the key pointer); ring slot (r3) = r0 */
	for (i = 0; i + 1 < out.insn_cnt; i++) {
		const struct bpf_insn *in = &out.insns[i], *st = in + 1;

		if (rs_insn_class(in) != BPF_LDX || in->src_reg != 2 || in->dst_reg != 0 ||
		    rs_insn_class(st) != BPF_STX || st->dst_reg != 3 || st->src_reg != 0)
			continue;
		assert_true(k < RS_ARRAY_SIZE(want));
		assert_int_equal(BPF_SIZE(in->code), want[k]);
		k++;
	}
	assert_int_equal(k, RS_ARRAY_SIZE(want));
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

static void test_refusals(void **state)
{
	struct bpf_insn loop0[] = {
		MOV64_IMM(0, 0),
		JMP_IMM(BPF_JEQ, 1, 0, -2),	/* -> 0 */
		EXIT(),
	};
	struct bpf_insn deep[] = {
		ST_MEM(BPF_DW, 10, -504, 0),
		MOV64_IMM(0, 0),
		EXIT(),
	};
	RS_OPTS(rs_instr_opts, o, .stack_depth = 500);
	struct rs_instr_layout l;
	struct rs_prog p, out;

	(void)state;
	make_prog(&p, loop0, RS_ARRAY_SIZE(loop0));
	rs_prog_init(&out);
	assert_int_equal(rs_instrument(&p, NULL, &out, &l), -EOPNOTSUPP);
	assert_int_equal(out.insn_cnt, 0);
	rs_prog_free(&p);

	make_prog(&p, deep, RS_ARRAY_SIZE(deep));
	assert_int_equal(rs_prog_main_stack_depth(&p), 504);
	assert_int_equal(rs_instrument(&p, NULL, &out, &l), -E2BIG);
	assert_int_equal(rs_instrument(&p, &o, &out, &l), -E2BIG);
	rs_prog_free(&p);
	rs_prog_free(&out);
}

static void test_stack_depth(void **state)
{
	struct bpf_insn c[] = {
		MOV64_REG(3, 10),
		ALU64_IMM(BPF_ADD, 3, -40),	/* pointer handed to a helper */
		STX_MEM(BPF_W, 10, 1, -12),
		MOV64_IMM(0, 0),
		EXIT(),
	};
	struct rs_prog p;

	(void)state;
	make_prog(&p, c, RS_ARRAY_SIZE(c));
	assert_int_equal(rs_prog_main_stack_depth(&p), 40);
	c[1].imm = -44;			/* rounded up to 8 */
	assert_int_equal(rs_prog_set_insns(&p, c, RS_ARRAY_SIZE(c)), 0);
	assert_int_equal(rs_prog_main_stack_depth(&p), 48);
	rs_prog_free(&p);
}

static void test_profile_from_counts(void **state)
{
	struct rs_instr_site sites[1] = { { .insn = 6, .map_idx = 0, .key_size = 2,
					    .ring_map_idx = 3 } };
	struct rs_instr_branch brs[1] = { { .insn = 7, .slot = 1 } };
	struct rs_instr_layout l = { .ctl_map_idx = 2, .ctl_value_size = RS_PROF_BR_OFF(2),
				     .sample_rate = 8, .sites = sites, .site_cnt = 1,
				     .branches = brs, .branch_cnt = 1 };
	const uint8_t keys[] = { 1, 1, 2, 2, 3, 3, 0, 9, 4, 4 };
	const uint64_t counts[] = { 5, 50, 5, 7, 1 };
	struct rs_site_counts sc = { .keys = keys, .counts = counts, .cnt = 5 };
	uint8_t ctl[RS_PROF_BR_OFF(2)] = {};
	struct rs_prof_ctl *h = (void *)ctl;
	uint64_t t = 30, nt = 10;
	struct rs_profile prof;

	(void)state;
	h->sampled = 68;
	memcpy(ctl + RS_PROF_BR_OFF(1), &t, 8);
	memcpy(ctl + RS_PROF_BR_OFF(1) + 8, &nt, 8);
	assert_int_equal(rs_profile_from_counts(&l, &sc, ctl, 3, &prof), 0);
	assert_int_equal(prof.packets, 68);
	assert_int_equal(prof.sample_rate, 8);
	assert_int_equal(prof.site_cnt, 1);
	assert_int_equal(prof.sites[0].lookups, 68);
	assert_int_equal(prof.sites[0].key_cnt, 3);
	/* 50 (2,2), 7 (0,9), then the tie of 5s by key bytes: (1,1) before (3,3) */
	assert_memory_equal(prof.sites[0].keys, ((uint8_t[]){ 2, 2, 0, 9, 1, 1 }), 6);
	assert_int_equal(prof.sites[0].counts[0], 50);
	assert_int_equal(prof.sites[0].counts[2], 5);
	assert_true(fabs(rs_site_key_share(&prof.sites[0], 0) - 50.0 / 68) < 1e-9);
	assert_int_equal(prof.branch_cnt, 1);
	assert_int_equal(prof.branches[0].insn, 7);
	assert_int_equal(prof.branches[0].taken, 30);
	assert_int_equal(prof.branches[0].not_taken, 10);
	assert_true(fabs(rs_branch_taken_prob(&prof.branches[0]) - 0.75) < 1e-9);
	rs_profile_free(&prof);

	/* no counts at all: sites present, nothing ranked, probability undefined */
	assert_int_equal(rs_profile_from_counts(&l, NULL, NULL, 0, &prof), 0);
	assert_int_equal(prof.sites[0].key_cnt, 0);
	assert_true(isnan(rs_branch_taken_prob(&prof.branches[0])));
	rs_profile_free(&prof);
}

/*
 * The two layouts.  Call (default): the sampled path ends "call PROF; exit", PROF being a
 * subprogram of its own (own JIT image) with the main function's BTF type.  Inline: the
 * sampled path is the copy's head, inside main.
 */
static void test_layouts(void **state)
{
	RS_OPTS(rs_instr_opts, inl, .inline_copy = true);
	struct rs_func_info fi[2] = { { 0, 5 }, { 21, 6 } };
	struct rs_instr_layout l;
	struct rs_prog p, out;
	long t, c = -1;
	size_t i;

	(void)state;
	make_prog(&p, code, RS_ARRAY_SIZE(code));
	p.func_info = malloc(sizeof(fi));
	assert_non_null(p.func_info);
	memcpy(p.func_info, fi, sizeof(fi));
	p.func_info_cnt = 2;
	rs_prog_init(&out);
	assert_int_equal(rs_instrument(&p, NULL, &out, &l), 0);
	expect_valid(&out);
	assert_true(l.call);
	t = rs_insn_target(out.insns, (size_t)orig_start(&out) - 1);
	for (i = (size_t)t; i < out.insn_cnt && c < 0; i++)
		if (rs_insn_is_pseudo_call(&out.insns[i])) {
			c = rs_insn_target(out.insns, i);
			assert_true(rs_insn_is_exit(&out.insns[i + 1]));
		}
	assert_true(c > t);
	/* PROF: counts the sample first (ld_imm64 of the control value), its own function */
	assert_true(rs_insn_is_ldimm64(&out.insns[c]));
	assert_int_equal(out.insns[c].imm, (int32_t)l.ctl_map_idx);
	assert_int_equal(out.func_info_cnt, 3);
	assert_int_equal(out.func_info[1].insn_off, c);
	assert_int_equal(out.func_info[1].type_id, 5);
	assert_int_equal(out.func_info[2].type_id, 6);
	assert_memory_equal(&out.insns[out.func_info[2].insn_off], &p.insns[21],
			    (RS_ARRAY_SIZE(code) - 21) * sizeof(struct bpf_insn));
	rs_instr_layout_free(&l);

	/* inline: no call on the sampled path, no new function */
	assert_int_equal(rs_instrument(&p, &inl, &out, &l), 0);
	expect_valid(&out);
	assert_false(l.call);
	assert_int_equal(out.func_info_cnt, 2);
	t = rs_insn_target(out.insns, (size_t)orig_start(&out) - 1);
	assert_true(t < (long)out.func_info[1].insn_off);
	assert_false(rs_insn_is_pseudo_call(&out.insns[t]));
	rs_instr_layout_free(&l);
	rs_prog_free(&out);
	rs_prog_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),
		cmocka_unit_test(test_cheap_path),
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_percpu),
		cmocka_unit_test(test_all_live_spills),
		cmocka_unit_test(test_no_new_callee_saved),
		cmocka_unit_test(test_key_chunks),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_stack_depth),
		cmocka_unit_test(test_profile_from_counts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
