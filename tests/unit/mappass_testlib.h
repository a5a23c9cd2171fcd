/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * mappass_testlib.h - shared by the map pass tests (test_map_fold.c, test_table_elim.c,
 * test_hot_keys.c): a hand-made optimizer context (program, fake snapshot, facts, profile),
 * running one pass on it, and a small BPF interpreter that executes a program against the
 * snapshot's contents (lookups answered from the snapshot: exact match, LPM longest match,
 * array index; pool values from rs_map_ref.init_value) so tests can compare what the original
 * and the rewritten program return.
 *
 * Header-only (static functions) so every test stays one translation unit.
 */
#ifndef RS_MAPPASS_TESTLIB_H
#define RS_MAPPASS_TESTLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "optimizer/pass.h"
#include "optimizer/passes/mapsite.h"
#include "tests/unit/ir_testlib.h"

#define T_MAPS	4
#define T_SITES	8

struct tctx {
	struct rs_prog orig;
	struct rs_map_snapshot ms[T_MAPS];
	struct rs_snapshot snap;
	struct rs_map_fact mf[T_MAPS];
	struct rs_site_fact sf[T_SITES];
	size_t sf_cnt;
	struct rs_site_profile sp[T_SITES];
	struct rs_profile prof;
	bool use_prof;
	struct rs_opt_opts opts;
	struct rs_remarks remarks;
	struct rs_pass_stats stats;
	bool guarded[T_MAPS];
	struct rs_opt_ctx ctx;
};

static inline void t_init(struct tctx *t)
{
	memset(t, 0, sizeof(*t));
	rs_prog_init(&t->orig);
	t->orig.type = BPF_PROG_TYPE_XDP;
	strcpy(t->orig.name, "t");
	strcpy(t->orig.license, "GPL");
	t->opts.sz = sizeof(t->opts);
	t->opts.max_hot_keys = 8;
	t->opts.min_hot_share = 0.01;
	t->opts.small_table_max = 16;
}

/* add a map with its snapshot (entries added with t_entry) and a fact */
static inline int t_map(struct tctx *t, uint32_t type, uint32_t ksz, uint32_t vsz, uint32_t max,
			enum rs_map_level level)
{
	struct rs_map_ref m = { .id = 100 + (uint32_t)t->orig.map_cnt, .type = type,
				.key_size = ksz, .value_size = vsz, .max_entries = max };
	int idx;

	snprintf(m.name, sizeof(m.name), "m%zu", t->orig.map_cnt);
	idx = rs_prog_add_map(&t->orig, &m);
	assert_true(idx >= 0 && idx < T_MAPS);
	t->ms[idx] = (struct rs_map_snapshot){ .map_idx = (uint32_t)idx, .id = m.id, .type = type,
					       .key_size = ksz, .value_size = vsz,
					       .max_entries = max, .complete = true, .ncpus = 1,
					       .value_stride = vsz, .watched = true };
	t->mf[idx] = (struct rs_map_fact){ .map_idx = (uint32_t)idx, .level = level };
	t->snap.maps = t->ms;
	t->snap.map_cnt = t->orig.map_cnt;
	return idx;
}

static inline void t_entry(struct tctx *t, int map, const void *key, const void *val)
{
	struct rs_map_snapshot *m = &t->ms[map];

	m->keys = realloc(m->keys, (m->cnt + 1) * m->key_size);
	m->values = realloc(m->values, (m->cnt + 1) * m->value_stride);
	assert_non_null(m->keys);
	assert_non_null(m->values);
	memcpy(m->keys + m->cnt * m->key_size, key, m->key_size);
	memcpy(m->values + m->cnt * m->value_stride, val, m->value_stride);
	m->cnt++;
}

static inline void t_site(struct tctx *t, uint32_t insn, uint32_t map, bool ro, bool key_known,
			  int32_t key_off)
{
	assert_true(t->sf_cnt < T_SITES);
	t->sf[t->sf_cnt++] = (struct rs_site_fact){ .insn = insn, .map_idx = map,
						    .value_read_only = ro, .key_known = key_known,
						    .key_fp_off = key_off };
}

/* profile of a site: keys (key_cnt * key_size bytes) with counts, out of `lookups` */
static inline void t_prof(struct tctx *t, uint32_t insn, uint32_t map, const void *keys,
			  const uint64_t *counts, size_t n, uint64_t lookups)
{
	struct rs_site_profile *sp = &t->sp[t->prof.site_cnt++];
	uint32_t ksz = t->orig.maps[map].key_size;

	sp->insn = insn;
	sp->map_idx = map;
	sp->key_size = ksz;
	sp->lookups = lookups;
	sp->key_cnt = n;
	sp->keys = malloc(n * ksz + 1);
	sp->counts = malloc(n * sizeof(uint64_t) + 1);
	memcpy(sp->keys, keys, n * ksz);
	memcpy(sp->counts, counts, n * sizeof(uint64_t));
	t->prof.sites = t->sp;
	t->use_prof = true;
}

static inline void t_set_insns(struct tctx *t, const struct bpf_insn *in, size_t n)
{
	char err[160];

	assert_int_equal(rs_prog_set_insns(&t->orig, in, n), 0);
	if (rs_prog_validate(&t->orig, err, sizeof(err)))
		fail_msg("input invalid: %s", err);
}

/* what the test programs return when the lookup misses */
#define MISS_RET 7777

/* u32 key from r1 at fp-4; returns *(u32 *)value or MISS_RET; lookup call at insn 5 */
static inline void t_prog_u32(struct tctx *t, int map)
{
	const struct bpf_insn in[] = {
		STX_MEM(BPF_W, 10, 1, -4),
		MOV64_REG(2, 10),
		ALU64_IMM(BPF_ADD, 2, -4),
		LD_IMM64_LO(1, BPF_PSEUDO_MAP_IDX, map), LD_IMM64_HI(0),
		CALL_HELPER(BPF_FUNC_map_lookup_elem),
		JMP_IMM(BPF_JEQ, 0, 0, 2),
		LDX_MEM(BPF_W, 0, 0, 0),
		EXIT(),
		MOV64_IMM(0, MISS_RET),
		EXIT(),
	};

	t_set_insns(t, in, RS_ARRAY_SIZE(in));
}

/* run `pass` on a fresh context; returns its result, the output is in t->ctx.prog */
static inline int t_run(struct tctx *t, const struct rs_pass *pass)
{
	struct rs_opt_ctx *c = &t->ctx;
	char err[160];
	size_t i;
	int ret;

	memset(c, 0, sizeof(*c));
	rs_prog_init(&c->prog);
	assert_int_equal(rs_prog_copy(&c->prog, &t->orig), 0);
	c->orig = &t->orig;
	c->orig_idx = malloc((t->orig.insn_cnt + 1) * sizeof(long));
	c->orig_pos = malloc((t->orig.insn_cnt + 1) * sizeof(long));
	for (i = 0; i < t->orig.insn_cnt; i++)
		c->orig_idx[i] = c->orig_pos[i] = (long)i;
	c->snap = &t->snap;
	c->prof = t->use_prof ? &t->prof : NULL;
	c->opts = &t->opts;
	c->map_facts = t->mf;
	c->map_fact_cnt = t->orig.map_cnt;
	c->site_facts = t->sf;
	c->site_fact_cnt = t->sf_cnt;
	c->remarks = &t->remarks;
	c->stats = &t->stats;
	c->map_guarded = t->guarded;
	c->pass_name = pass->name;
	ret = pass->run(c);
	if (!ret && rs_prog_validate(&c->prog, err, sizeof(err)))
		fail_msg("pass %s: output invalid: %s", pass->name, err);
	return ret;
}

static inline void t_free(struct tctx *t)
{
	size_t i;

	rs_prog_free(&t->ctx.prog);
	free(t->ctx.orig_idx);
	free(t->ctx.orig_pos);
	rs_remarks_free(&t->remarks);
	for (i = 0; i < T_MAPS; i++) {
		free(t->ms[i].keys);
		free(t->ms[i].values);
	}
	for (i = 0; i < t->prof.site_cnt; i++) {
		free(t->sp[i].keys);
		free(t->sp[i].counts);
	}
	rs_prog_free(&t->orig);
}

/* number of remarks of a kind (for any pass) */
static inline size_t t_remarks(const struct tctx *t, enum rs_remark_kind kind)
{
	size_t i, n = 0;

	for (i = 0; i < t->remarks.cnt; i++)
		n += t->remarks.v[i].kind == kind;
	return n;
}

static inline size_t t_count_lookups(const struct rs_prog *p)
{
	size_t i, n = 0;

	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i]))
		n += rs_insn_is_lookup(&p->insns[i]);
	return n;
}

/* print a program (debugging a failing test) */
static inline void t_dump(const struct rs_prog *p)
{
	char buf[128];
	size_t i;

	for (i = 0; i < p->insn_cnt; i += rs_insn_width(&p->insns[i])) {
		rs_insn_snprint(buf, sizeof(buf), p->insns, p->insn_cnt, i);
		fprintf(stderr, "%4zu: %s\n", i, buf);
	}
}

/* ---- interpreter ----------------------------------------------------------------------- */

/* pointer encoding: region << 40 | offset; region 1 = stack, 2 + m = map m's entry
 * (offset = entry * stride + off), 0x100 + m = map m itself, 0x200 + m = init_value of m */
#define P_STACK		1ull
#define P_VAL(m)	(2ull + (m))
#define P_MAP(m)	(0x100ull + (m))
#define P_INIT(m)	(0x200ull + (m))
#define P_MK(r, o)	((r) << 40 | (uint64_t)(o))

struct t_vm {
	const struct tctx *t;
	const struct rs_prog *p;
	uint8_t stack[512];
	uint64_t lookups;		/* helper calls made */
};

static inline uint8_t *t_vm_addr(struct t_vm *vm, uint64_t ptr, int size)
{
	uint64_t r = ptr >> 40, o = ptr & ((1ull << 40) - 1);

	if (r == P_STACK) {
		assert_true(o + (uint64_t)size <= 512);
		return vm->stack + o;
	}
	if (r >= 2 && r < 2 + T_MAPS) {
		const struct rs_map_snapshot *m = &vm->t->ms[r - 2];

		assert_true(o + (uint64_t)size <= m->cnt * m->value_stride);
		return m->values + o;
	}
	if (r >= 0x200 && r < 0x200 + 16) {
		const struct rs_map_ref *m = &vm->p->maps[r - 0x200];

		assert_non_null(m->init_value);
		assert_true(o + (uint64_t)size <= m->value_size);
		return m->init_value + o;
	}
	fail_msg("bad pointer %llx", (unsigned long long)ptr);
	return NULL;
}

static inline uint64_t t_vm_lookup(struct t_vm *vm, uint64_t map, uint64_t keyp)
{
	uint32_t mi = (uint32_t)((map >> 40) - 0x100);
	const struct rs_map_snapshot *m = &vm->t->ms[mi];
	const uint8_t *key = t_vm_addr(vm, keyp, (int)m->key_size), *v;

	vm->lookups++;
	if (m->type == BPF_MAP_TYPE_LPM_TRIE)
		v = rs_lpm_match(m, key);
	else
		v = rs_snapshot_lookup(m, key);
	if (!v)
		return 0;
	return P_MK(P_VAL(mi), (uint64_t)(v - m->values));
}

static inline uint64_t t_mask(uint64_t v, int size)
{
	return size == 8 ? v : v & ((1ull << (8 * size)) - 1);
}

/* run p with r1 = arg; returns r0 at exit (pointers stay encoded) */
static inline uint64_t t_exec(const struct tctx *t, const struct rs_prog *p, uint64_t arg,
			      uint64_t *lookups)
{
	struct t_vm vm = { .t = t, .p = p };
	uint64_t r[11] = { 0 }, steps = 0;
	size_t pc = 0;

	r[1] = arg;
	r[10] = P_MK(P_STACK, 512);
	for (;;) {
		const struct bpf_insn *in = &p->insns[pc];
		uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
		int size = BPF_SIZE(in->code) == BPF_B ? 1 : BPF_SIZE(in->code) == BPF_H ? 2 :
			   BPF_SIZE(in->code) == BPF_W ? 4 : 8;
		uint64_t src, a;

		assert_true(pc < p->insn_cnt && ++steps < 100000);
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
			case BPF_XOR: a ^= src; break;
			case BPF_LSH: a <<= (src & 63); break;
			case BPF_RSH: a = cls == BPF_ALU ? (uint32_t)a >> (src & 31) : a >> (src & 63);
				break;
			case BPF_END:	/* to big endian on a little-endian host: swap */
				if (BPF_SRC(in->code) == BPF_TO_BE && in->imm == 32)
					a = __builtin_bswap32((uint32_t)a);
				else if (BPF_SRC(in->code) == BPF_TO_BE && in->imm == 16)
					a = __builtin_bswap16((uint16_t)a);
				else if (BPF_SRC(in->code) == BPF_TO_BE)
					a = __builtin_bswap64(a);
				else
					a = in->imm == 16 ? (uint16_t)a : in->imm == 32 ? (uint32_t)a : a;
				r[in->dst_reg] = a;
				pc++;
				continue;
			default: fail_msg("alu op %x", op);
			}
			r[in->dst_reg] = cls == BPF_ALU ? (uint32_t)a : a;
			pc++;
			break;
		case BPF_LD:
			assert_true(rs_insn_is_ldimm64(in));
			if (in->src_reg == BPF_PSEUDO_MAP_IDX)
				r[in->dst_reg] = P_MK(P_MAP((uint64_t)in->imm), 0);
			else if (in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE && p->maps[in->imm].init_value)
				r[in->dst_reg] = P_MK(P_INIT((uint64_t)in->imm), (uint32_t)in[1].imm);
			else if (in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE)
				r[in->dst_reg] = P_MK(P_VAL((uint64_t)in->imm), (uint32_t)in[1].imm);
			else
				r[in->dst_reg] = (uint64_t)(uint32_t)in->imm |
						 (uint64_t)(uint32_t)in[1].imm << 32;
			pc += 2;
			break;
		case BPF_LDX:
			a = 0;
			memcpy(&a, t_vm_addr(&vm, r[in->src_reg] + (uint64_t)(int64_t)in->off, size),
			       (size_t)size);
			r[in->dst_reg] = a;
			pc++;
			break;
		case BPF_ST:
		case BPF_STX:
			src = cls == BPF_ST ? (uint64_t)(int64_t)in->imm : r[in->src_reg];
			memcpy(t_vm_addr(&vm, r[in->dst_reg] + (uint64_t)(int64_t)in->off, size),
			       &src, (size_t)size);
			pc++;
			break;
		case BPF_JMP:
		case BPF_JMP32: {
			uint64_t x = r[in->dst_reg], y;
			bool jump;

			if (rs_insn_is_exit(in)) {
				if (lookups)
					*lookups = vm.lookups;
				return r[0];
			}
			if (rs_insn_is_call(in)) {
				assert_int_equal(in->imm, BPF_FUNC_map_lookup_elem);
				r[0] = t_vm_lookup(&vm, r[1], r[2]);
				pc++;
				break;
			}
			if (op == BPF_JA) {
				pc = (size_t)rs_insn_target(p->insns, pc);
				break;
			}
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
			case BPF_JLT: jump = x < y; break;
			case BPF_JLE: jump = x <= y; break;
			default: fail_msg("jmp op %x", op); jump = false;
			}
			pc = jump ? (size_t)rs_insn_target(p->insns, pc) : pc + 1;
			break;
		}
		default:
			fail_msg("class %x", cls);
		}
	}
}

/* the original and the rewritten program return the same for every input */
static inline void t_check_equiv(const struct tctx *t, const uint64_t *inputs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		uint64_t a = t_exec(t, &t->orig, inputs[i], NULL);
		uint64_t b = t_exec(t, &t->ctx.prog, inputs[i], NULL);

		if (a != b)
			fail_msg("input %llx: original %llx, optimized %llx",
				 (unsigned long long)inputs[i], (unsigned long long)a,
				 (unsigned long long)b);
	}
}

/* the value a pointer result designates, 0 for NULL: compare across programs */
static inline uint64_t t_deref64(const struct tctx *t, const struct rs_prog *p, uint64_t ptr,
				 uint32_t size)
{
	struct t_vm vm = { .t = t, .p = p };
	uint64_t v = 0;

	if (!ptr)
		return 0;
	memcpy(&v, t_vm_addr(&vm, ptr, (int)size), size > 8 ? 8 : size);
	return t_mask(v, size > 8 ? 8 : (int)size) | 1ull << 63;
}

#endif /* RS_MAPPASS_TESTLIB_H */
