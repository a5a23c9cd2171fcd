// SPDX-License-Identifier: BSD-2-Clause
/*
 * insn.c - facts about single BPF instructions: classifiers, branch/call targets, the
 * registers an instruction reads and writes, and opcode/field sanity.
 *
 * Everything here looks at one instruction (plus the second half of an ld_imm64); control
 * flow and whole-program rules live in cfg.c and validate.c.
 */
#include <errno.h>
#include <limits.h>

#include "optimizer/ir.h"

#define REG(n)		((rs_regmask_t)(1u << (n)))
#define CALL_USES	(REG(1) | REG(2) | REG(3) | REG(4) | REG(5))
#define CALL_DEFS	(REG(0) | CALL_USES)

bool rs_insn_is_ldimm64(const struct bpf_insn *i)
{
	return i->code == (BPF_LD | BPF_IMM | BPF_DW);
}

bool rs_insn_is_map_ref(const struct bpf_insn *i)
{
	if (!rs_insn_is_ldimm64(i))
		return false;
	switch (i->src_reg) {
	case BPF_PSEUDO_MAP_FD:
	case BPF_PSEUDO_MAP_VALUE:
	case BPF_PSEUDO_MAP_IDX:
	case BPF_PSEUDO_MAP_IDX_VALUE:
		return true;
	}
	return false;
}

static bool is_jmp_class(const struct bpf_insn *i)
{
	uint8_t c = BPF_CLASS(i->code);

	return c == BPF_JMP || c == BPF_JMP32;
}

bool rs_insn_is_jmp(const struct bpf_insn *i)
{
	uint8_t op = BPF_OP(i->code);

	return is_jmp_class(i) && op != BPF_CALL && op != BPF_EXIT;
}

bool rs_insn_is_cond_jmp(const struct bpf_insn *i)
{
	return rs_insn_is_jmp(i) && BPF_OP(i->code) != BPF_JA;
}

bool rs_insn_is_uncond_jmp(const struct bpf_insn *i)
{
	return is_jmp_class(i) && BPF_OP(i->code) == BPF_JA;
}

bool rs_insn_is_call(const struct bpf_insn *i)
{
	return is_jmp_class(i) && BPF_OP(i->code) == BPF_CALL;
}

bool rs_insn_is_helper_call(const struct bpf_insn *i)
{
	return rs_insn_is_call(i) && i->src_reg == 0;
}

bool rs_insn_is_kfunc_call(const struct bpf_insn *i)
{
	return rs_insn_is_call(i) && i->src_reg == BPF_PSEUDO_KFUNC_CALL;
}

bool rs_insn_is_pseudo_call(const struct bpf_insn *i)
{
	return rs_insn_is_call(i) && i->src_reg == BPF_PSEUDO_CALL;
}

bool rs_insn_is_pseudo_func(const struct bpf_insn *i)
{
	return rs_insn_is_ldimm64(i) && i->src_reg == BPF_PSEUDO_FUNC;
}

bool rs_insn_is_exit(const struct bpf_insn *i)
{
	return is_jmp_class(i) && BPF_OP(i->code) == BPF_EXIT;
}

bool rs_insn_is_tail_call(const struct bpf_insn *i)
{
	return rs_insn_is_helper_call(i) && i->imm == BPF_FUNC_tail_call;
}

/* gotol: JMP32 | JA keeps its displacement in imm. */
static bool is_gotol(const struct bpf_insn *i)
{
	return i->code == (BPF_JMP32 | BPF_JA);
}

int32_t rs_insn_jmp_off(const struct bpf_insn *i)
{
	return is_gotol(i) ? i->imm : i->off;
}

long rs_insn_target(const struct bpf_insn *insns, size_t idx)
{
	const struct bpf_insn *i = &insns[idx];

	if (rs_insn_is_jmp(i))
		return (long)idx + 1 + rs_insn_jmp_off(i);
	if (rs_insn_is_pseudo_call(i) || rs_insn_is_pseudo_func(i))
		return (long)idx + 1 + i->imm;
	return -1;
}

int rs_insn_set_target(struct bpf_insn *insns, size_t idx, size_t target)
{
	struct bpf_insn *i = &insns[idx];
	long disp = (long)target - (long)idx - 1;

	if (rs_insn_is_jmp(i) && !is_gotol(i)) {
		if (disp < SHRT_MIN || disp > SHRT_MAX)
			return -RS_ERR_RANGE;
		i->off = (int16_t)disp;
		return 0;
	}
	if (is_gotol(i) || rs_insn_is_pseudo_call(i) || rs_insn_is_pseudo_func(i)) {
		if (disp < INT_MIN || disp > INT_MAX)
			return -RS_ERR_RANGE;
		i->imm = (int32_t)disp;
		return 0;
	}
	return -EINVAL;
}

static rs_regmask_t alu_uses(const struct bpf_insn *i)
{
	uint8_t op = BPF_OP(i->code);
	rs_regmask_t src = BPF_SRC(i->code) == BPF_X ? REG(i->src_reg) : 0;

	if (op == BPF_MOV)
		return src;
	if (op == BPF_NEG || op == BPF_END)
		return REG(i->dst_reg);
	return REG(i->dst_reg) | src;
}

static rs_regmask_t atomic_uses(const struct bpf_insn *i)
{
	if (i->imm == BPF_LOAD_ACQ)
		return REG(i->src_reg);
	if (i->imm == BPF_CMPXCHG)
		return REG(i->dst_reg) | REG(i->src_reg) | REG(0);
	return REG(i->dst_reg) | REG(i->src_reg);
}

static rs_regmask_t atomic_defs(const struct bpf_insn *i)
{
	if (i->imm == BPF_LOAD_ACQ)
		return REG(i->dst_reg);
	if (i->imm == BPF_STORE_REL)
		return 0;
	if (i->imm == BPF_CMPXCHG)
		return REG(0);
	if (i->imm & BPF_FETCH)
		return REG(i->src_reg);
	return 0;
}

rs_regmask_t rs_insn_uses(const struct bpf_insn *i)
{
	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		return alu_uses(i);
	case BPF_LDX:
		return REG(i->src_reg);
	case BPF_ST:
		return REG(i->dst_reg);
	case BPF_STX:
		if (BPF_MODE(i->code) == BPF_ATOMIC)
			return atomic_uses(i);
		return REG(i->dst_reg) | REG(i->src_reg);
	case BPF_LD:
		/* legacy packet access reads the skb from r6 (and src for IND) */
		if (BPF_MODE(i->code) == BPF_ABS)
			return REG(6);
		if (BPF_MODE(i->code) == BPF_IND)
			return REG(6) | REG(i->src_reg);
		return 0;
	case BPF_JMP:
	case BPF_JMP32:
		if (rs_insn_is_call(i))
			return CALL_USES;
		if (rs_insn_is_exit(i))
			return REG(0);
		if (BPF_OP(i->code) == BPF_JA || BPF_OP(i->code) == BPF_JCOND)
			return 0;
		if (BPF_SRC(i->code) == BPF_X)
			return REG(i->dst_reg) | REG(i->src_reg);
		return REG(i->dst_reg);
	}
	return 0;
}

rs_regmask_t rs_insn_defs(const struct bpf_insn *i)
{
	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
	case BPF_LDX:
		return REG(i->dst_reg);
	case BPF_STX:
		if (BPF_MODE(i->code) == BPF_ATOMIC)
			return atomic_defs(i);
		return 0;
	case BPF_LD:
		if (rs_insn_is_ldimm64(i))
			return REG(i->dst_reg);
		if (BPF_MODE(i->code) == BPF_ABS || BPF_MODE(i->code) == BPF_IND)
			return CALL_DEFS;
		return 0;
	case BPF_JMP:
	case BPF_JMP32:
		if (rs_insn_is_call(i))
			return CALL_DEFS;
		return 0;
	}
	return 0;
}

/* ---- sanity ---------------------------------------------------------------------------- */

static int check_alu(const struct bpf_insn *i)
{
	bool is64 = BPF_CLASS(i->code) == BPF_ALU64;
	bool x = BPF_SRC(i->code) == BPF_X;
	uint8_t op = BPF_OP(i->code);

	switch (op) {
	case BPF_ADD: case BPF_SUB: case BPF_MUL: case BPF_OR: case BPF_AND:
	case BPF_XOR:
		if (i->off)
			return -EINVAL;
		break;
	case BPF_LSH: case BPF_RSH: case BPF_ARSH:
		if (i->off)
			return -EINVAL;
		if (!x && (i->imm < 0 || i->imm >= (is64 ? 64 : 32)))
			return -EINVAL;
		break;
	case BPF_DIV: case BPF_MOD:
		if (i->off != 0 && i->off != 1)		/* 1: sdiv / smod */
			return -EINVAL;
		if (!x && i->imm == 0)
			return -EINVAL;
		break;
	case BPF_NEG:
		if (x || i->off || i->imm || i->src_reg)
			return -EINVAL;
		return 0;
	case BPF_END:
		/* ALU: le (K) / be (X); ALU64: bswap, K only */
		if ((is64 && x) || i->off || i->src_reg)
			return -EINVAL;
		if (i->imm != 16 && i->imm != 32 && i->imm != 64)
			return -EINVAL;
		return 0;
	case BPF_MOV:
		if (!x) {
			if (i->off || i->src_reg)
				return -EINVAL;
			return 0;
		}
		if (i->off == 0 || i->off == 8 || i->off == 16 || (is64 && i->off == 32)) {
			if (i->imm)
				return -EINVAL;
			return 0;
		}
		if (is64 && i->off == BPF_ADDR_SPACE_CAST && i->imm)
			return 0;
		/* kernel-internal, seen in translated programs only */
		if (is64 && i->off == BPF_ADDR_PERCPU && !i->imm)
			return 0;
		return -EINVAL;
	default:
		return -EINVAL;
	}
	if (x ? i->imm != 0 : i->src_reg != 0)
		return -EINVAL;
	return 0;
}

static int check_ldimm64(const struct bpf_insn *insns, size_t cnt, size_t idx)
{
	const struct bpf_insn *i = &insns[idx], *h;

	if (idx + 1 >= cnt)
		return -EINVAL;
	h = &insns[idx + 1];
	if (h->code || h->dst_reg || h->src_reg || h->off || i->off)
		return -EINVAL;
	if (i->src_reg > BPF_PSEUDO_MAP_IDX_VALUE)
		return -EINVAL;
	/*
	 * the second imm is the high half of a plain immediate, the offset into a map value, or
	 * the module BTF fd of a ksym; map pointers and pseudo funcs have none
	 */
	if (h->imm && (i->src_reg == BPF_PSEUDO_MAP_FD || i->src_reg == BPF_PSEUDO_MAP_IDX ||
		       i->src_reg == BPF_PSEUDO_FUNC))
		return -EINVAL;
	return 0;
}

static int check_atomic(const struct bpf_insn *i)
{
	uint8_t sz = BPF_SIZE(i->code);

	switch (i->imm) {
	case BPF_ADD: case BPF_AND: case BPF_OR: case BPF_XOR:
	case BPF_ADD | BPF_FETCH: case BPF_AND | BPF_FETCH: case BPF_OR | BPF_FETCH:
	case BPF_XOR | BPF_FETCH: case BPF_XCHG: case BPF_CMPXCHG:
		return sz == BPF_W || sz == BPF_DW ? 0 : -EINVAL;
	case BPF_LOAD_ACQ:
	case BPF_STORE_REL:
		return 0;
	}
	return -EINVAL;
}

static int check_jmp(const struct bpf_insn *i)
{
	bool j32 = BPF_CLASS(i->code) == BPF_JMP32;
	bool x = BPF_SRC(i->code) == BPF_X;

	switch (BPF_OP(i->code)) {
	case BPF_JA:
		if (x || i->src_reg || i->dst_reg)
			return -EINVAL;
		return (j32 ? i->off : i->imm) ? -EINVAL : 0;
	case BPF_CALL:
		if (j32 || x || i->dst_reg)
			return -EINVAL;
		if (i->src_reg == BPF_PSEUDO_KFUNC_CALL)
			return 0;		/* off: index of the module BTF fd */
		if (i->src_reg != 0 && i->src_reg != BPF_PSEUDO_CALL)
			return -EINVAL;
		return i->off ? -EINVAL : 0;
	case BPF_EXIT:
		if (j32 || x || i->src_reg || i->dst_reg || i->off || i->imm)
			return -EINVAL;
		return 0;
	case BPF_JCOND:
		if (j32 || x || i->src_reg != BPF_MAY_GOTO || i->dst_reg || i->imm)
			return -EINVAL;
		return 0;
	case BPF_JEQ: case BPF_JGT: case BPF_JGE: case BPF_JSET: case BPF_JNE:
	case BPF_JSGT: case BPF_JSGE: case BPF_JLT: case BPF_JLE: case BPF_JSLT:
	case BPF_JSLE:
		if (x ? i->imm != 0 : i->src_reg != 0)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

int rs_insn_check(const struct bpf_insn *insns, size_t cnt, size_t idx)
{
	const struct bpf_insn *i;
	uint8_t mode, sz;

	if (idx >= cnt)
		return -EINVAL;
	i = &insns[idx];
	if (i->dst_reg >= RS_MAX_REG || i->src_reg >= RS_MAX_REG)
		return -EINVAL;
	mode = BPF_MODE(i->code);
	sz = BPF_SIZE(i->code);
	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		return check_alu(i);
	case BPF_LD:
		if (rs_insn_is_ldimm64(i))
			return check_ldimm64(insns, cnt, idx);
		if ((mode != BPF_ABS && mode != BPF_IND) || sz == BPF_DW || i->dst_reg || i->off)
			return -EINVAL;
		if (mode == BPF_ABS && i->src_reg)
			return -EINVAL;
		return 0;
	case BPF_LDX:
		if (i->imm)
			return -EINVAL;
		if (mode == BPF_MEM || (mode == BPF_MEMSX && sz != BPF_DW))
			return 0;
		return -EINVAL;
	case BPF_ST:
		if (mode != BPF_MEM || i->src_reg)
			return -EINVAL;
		return 0;
	case BPF_STX:
		if (mode == BPF_ATOMIC)
			return check_atomic(i);
		if (mode != BPF_MEM || i->imm)
			return -EINVAL;
		return 0;
	case BPF_JMP:
	case BPF_JMP32:
		return check_jmp(i);
	}
	return -EINVAL;
}
