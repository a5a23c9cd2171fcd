// SPDX-License-Identifier: BSD-2-Clause
/*
 * insn_print.c - one instruction as text in the kernel verifier's syntax, and helper names.
 *
 * The syntax follows the verifier log (without the "(op)" code column): "r1 = *(u32 *)(r2 +4)",
 * "if w1 > 0x5 goto pc+3", "call bpf_map_lookup_elem#1", "gotol pc+70000", "r0 = (s8)r1".
 * Map references inside an rs_prog are printed by index: "r1 = map[idx:0]",
 * "r1 = map[idx:0][0]+16"; fd forms as "map[fd:N]".
 */
#include <stdio.h>

#include "optimizer/ir.h"

#define RS_HELPER_NAME(x) [BPF_FUNC_ ## x] = #x
static const char *const helper_names[] = {
	__BPF_FUNC_MAPPER(RS_HELPER_NAME)
};
#undef RS_HELPER_NAME

/* Helpers added after the 6.1 uapi headers, by id. */
static const struct {
	int32_t id;
	const char *name;
} late_helpers[] = {
	{ 210, "cgrp_storage_get" },
	{ 211, "cgrp_storage_delete" },
};

const char *rs_helper_name(int32_t func_id)
{
	size_t k;

	if (func_id > 0 && (size_t)func_id < RS_ARRAY_SIZE(helper_names))
		return helper_names[func_id];
	for (k = 0; k < RS_ARRAY_SIZE(late_helpers); k++)
		if (late_helpers[k].id == func_id)
			return late_helpers[k].name;
	return NULL;
}

static const char *const alu_ops[16] = {
	[BPF_ADD >> 4] = "+=", [BPF_SUB >> 4] = "-=", [BPF_MUL >> 4] = "*=",
	[BPF_DIV >> 4] = "/=", [BPF_OR >> 4] = "|=", [BPF_AND >> 4] = "&=",
	[BPF_LSH >> 4] = "<<=", [BPF_RSH >> 4] = ">>=", [BPF_MOD >> 4] = "%=",
	[BPF_XOR >> 4] = "^=", [BPF_MOV >> 4] = "=", [BPF_ARSH >> 4] = "s>>=",
};

static const char *const atomic_ops[16] = {
	[BPF_ADD >> 4] = "add", [BPF_AND >> 4] = "and", [BPF_OR >> 4] = "or",
	[BPF_XOR >> 4] = "xor",
};

static const char *const jmp_ops[16] = {
	[BPF_JEQ >> 4] = "==", [BPF_JGT >> 4] = ">", [BPF_JGE >> 4] = ">=",
	[BPF_JSET >> 4] = "&", [BPF_JNE >> 4] = "!=", [BPF_JSGT >> 4] = "s>",
	[BPF_JSGE >> 4] = "s>=", [BPF_JLT >> 4] = "<", [BPF_JLE >> 4] = "<=",
	[BPF_JSLT >> 4] = "s<", [BPF_JSLE >> 4] = "s<=",
};

static const char *size_str(uint8_t size)
{
	switch (size) {
	case BPF_B: return "u8";
	case BPF_H: return "u16";
	case BPF_W: return "u32";
	default: return "u64";
	}
}

static const char *ssize_str(uint8_t size)
{
	switch (size) {
	case BPF_B: return "s8";
	case BPF_H: return "s16";
	default: return "s32";
	}
}

#define BAD(buf, sz, i) snprintf(buf, sz, "invalid insn code 0x%02x", (i)->code)

static int print_alu(char *buf, size_t sz, const struct bpf_insn *i)
{
	bool is64 = BPF_CLASS(i->code) == BPF_ALU64;
	char r = is64 ? 'r' : 'w';
	uint8_t op = BPF_OP(i->code);
	bool x = BPF_SRC(i->code) == BPF_X;
	const char *ops;

	if (op == BPF_NEG)
		return snprintf(buf, sz, "%c%d = -%c%d", r, i->dst_reg, r, i->dst_reg);
	if (op == BPF_END) {
		const char *kind = is64 ? "bswap" : x ? "be" : "le";

		return snprintf(buf, sz, "r%d = %s%d r%d", i->dst_reg, kind, i->imm,
				i->dst_reg);
	}
	if (op == BPF_MOV && x && i->off == BPF_ADDR_SPACE_CAST && is64 && i->imm)
		return snprintf(buf, sz, "r%d = addr_space_cast(r%d, %d, %d)", i->dst_reg,
				i->src_reg, (uint32_t)i->imm >> 16, i->imm & 0xffff);
	if (op == BPF_MOV && x && i->off == BPF_ADDR_PERCPU && is64)
		return snprintf(buf, sz, "r%d = &(void __percpu *)(r%d)", i->dst_reg, i->src_reg);
	if (op == BPF_MOV && x && i->off)
		return snprintf(buf, sz, "%c%d = (s%d)%c%d", r, i->dst_reg, i->off, r,
				i->src_reg);
	ops = alu_ops[op >> 4];
	if (!ops)
		return BAD(buf, sz, i);
	if ((op == BPF_DIV || op == BPF_MOD) && i->off == 1)
		ops = op == BPF_DIV ? "s/=" : "s%=";
	if (x)
		return snprintf(buf, sz, "%c%d %s %c%d", r, i->dst_reg, ops, r, i->src_reg);
	return snprintf(buf, sz, "%c%d %s %d", r, i->dst_reg, ops, i->imm);
}

static int print_atomic(char *buf, size_t sz, const struct bpf_insn *i)
{
	const char *w = BPF_SIZE(i->code) == BPF_DW ? "64" : "";
	const char *s = size_str(BPF_SIZE(i->code));
	int op = i->imm & ~BPF_FETCH;

	if (i->imm == BPF_LOAD_ACQ)
		return snprintf(buf, sz, "r%d = load_acquire((%s *)(r%d %+d))", i->dst_reg, s,
				i->src_reg, i->off);
	if (i->imm == BPF_STORE_REL)
		return snprintf(buf, sz, "store_release((%s *)(r%d %+d), r%d)", s, i->dst_reg,
				i->off, i->src_reg);
	if (i->imm == BPF_CMPXCHG)
		return snprintf(buf, sz, "r0 = atomic%s_cmpxchg((%s *)(r%d %+d), r0, r%d)", w, s,
				i->dst_reg, i->off, i->src_reg);
	if (i->imm == BPF_XCHG)
		return snprintf(buf, sz, "r%d = atomic%s_xchg((%s *)(r%d %+d), r%d)", i->src_reg,
				w, s, i->dst_reg, i->off, i->src_reg);
	if (op < 0 || op > 0xf0 || !atomic_ops[op >> 4])
		return BAD(buf, sz, i);
	if (i->imm & BPF_FETCH)
		return snprintf(buf, sz, "r%d = atomic%s_fetch_%s((%s *)(r%d %+d), r%d)",
				i->src_reg, w, atomic_ops[op >> 4], s, i->dst_reg, i->off,
				i->src_reg);
	return snprintf(buf, sz, "lock *(%s *)(r%d %+d) %s r%d", s, i->dst_reg, i->off,
			alu_ops[op >> 4], i->src_reg);
}

static int print_ldimm64(char *buf, size_t sz, const struct bpf_insn *insns, size_t cnt,
			 size_t idx)
{
	const struct bpf_insn *i = &insns[idx];
	int32_t hi = idx + 1 < cnt ? insns[idx + 1].imm : 0;
	uint64_t v = (uint64_t)(uint32_t)i->imm | ((uint64_t)(uint32_t)hi << 32);

	switch (i->src_reg) {
	case BPF_PSEUDO_MAP_FD:
		return snprintf(buf, sz, "r%d = map[fd:%d]", i->dst_reg, i->imm);
	case BPF_PSEUDO_MAP_VALUE:
		return snprintf(buf, sz, "r%d = map[fd:%d][0]+%u", i->dst_reg, i->imm,
				(uint32_t)hi);
	case BPF_PSEUDO_MAP_IDX:
		return snprintf(buf, sz, "r%d = map[idx:%d]", i->dst_reg, i->imm);
	case BPF_PSEUDO_MAP_IDX_VALUE:
		return snprintf(buf, sz, "r%d = map[idx:%d][0]+%u", i->dst_reg, i->imm,
				(uint32_t)hi);
	case BPF_PSEUDO_BTF_ID:
		return snprintf(buf, sz, "r%d = btf_id[%d]", i->dst_reg, i->imm);
	case BPF_PSEUDO_FUNC:
		return snprintf(buf, sz, "r%d = func pc%+d", i->dst_reg, i->imm);
	}
	return snprintf(buf, sz, "r%d = 0x%llx", i->dst_reg, (unsigned long long)v);
}

static int print_call(char *buf, size_t sz, const struct bpf_insn *i)
{
	const char *name;

	if (i->src_reg == BPF_PSEUDO_CALL)
		return snprintf(buf, sz, "call pc%+d", i->imm);
	if (i->src_reg == BPF_PSEUDO_KFUNC_CALL)
		return snprintf(buf, sz, "call kernel-function#%d", i->imm);
	name = rs_helper_name(i->imm);
	if (name)
		return snprintf(buf, sz, "call bpf_%s#%d", name, i->imm);
	return snprintf(buf, sz, "call unknown#%d", i->imm);
}

static int print_jmp(char *buf, size_t sz, const struct bpf_insn *i)
{
	bool j32 = BPF_CLASS(i->code) == BPF_JMP32;
	char r = j32 ? 'w' : 'r';
	uint8_t op = BPF_OP(i->code);
	const char *ops;

	switch (op) {
	case BPF_CALL:
		return print_call(buf, sz, i);
	case BPF_EXIT:
		return snprintf(buf, sz, "exit");
	case BPF_JA:
		if (j32)
			return snprintf(buf, sz, "gotol pc%+d", i->imm);
		return snprintf(buf, sz, "goto pc%+d", i->off);
	case BPF_JCOND:
		return snprintf(buf, sz, "may_goto pc%+d", i->off);
	}
	ops = jmp_ops[op >> 4];
	if (!ops)
		return BAD(buf, sz, i);
	if (BPF_SRC(i->code) == BPF_X)
		return snprintf(buf, sz, "if %c%d %s %c%d goto pc%+d", r, i->dst_reg, ops, r,
				i->src_reg, i->off);
	return snprintf(buf, sz, "if %c%d %s 0x%x goto pc%+d", r, i->dst_reg, ops,
			(uint32_t)i->imm, i->off);
}

int rs_insn_snprint(char *buf, size_t sz, const struct bpf_insn *insns, size_t cnt, size_t idx)
{
	const struct bpf_insn *i;
	uint8_t mode, size;

	if (idx >= cnt)
		return snprintf(buf, sz, "insn %zu out of range", idx);
	i = &insns[idx];
	mode = BPF_MODE(i->code);
	size = BPF_SIZE(i->code);
	switch (BPF_CLASS(i->code)) {
	case BPF_ALU:
	case BPF_ALU64:
		return print_alu(buf, sz, i);
	case BPF_LDX:
		if (mode == BPF_MEMSX)
			return snprintf(buf, sz, "r%d = *(%s *)(r%d %+d)", i->dst_reg,
					ssize_str(size), i->src_reg, i->off);
		if (mode != BPF_MEM)
			return BAD(buf, sz, i);
		return snprintf(buf, sz, "r%d = *(%s *)(r%d %+d)", i->dst_reg, size_str(size),
				i->src_reg, i->off);
	case BPF_ST:
		if (mode != BPF_MEM)
			return BAD(buf, sz, i);
		return snprintf(buf, sz, "*(%s *)(r%d %+d) = %d", size_str(size), i->dst_reg,
				i->off, i->imm);
	case BPF_STX:
		if (mode == BPF_ATOMIC)
			return print_atomic(buf, sz, i);
		if (mode != BPF_MEM)
			return BAD(buf, sz, i);
		return snprintf(buf, sz, "*(%s *)(r%d %+d) = r%d", size_str(size), i->dst_reg,
				i->off, i->src_reg);
	case BPF_LD:
		if (rs_insn_is_ldimm64(i))
			return print_ldimm64(buf, sz, insns, cnt, idx);
		if (mode == BPF_ABS)
			return snprintf(buf, sz, "r0 = *(%s *)skb[%d]", size_str(size), i->imm);
		if (mode == BPF_IND)
			return snprintf(buf, sz, "r0 = *(%s *)skb[r%d + %d]", size_str(size),
					i->src_reg, i->imm);
		return BAD(buf, sz, i);
	case BPF_JMP:
	case BPF_JMP32:
		return print_jmp(buf, sz, i);
	}
	return BAD(buf, sz, i);
}
