/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * disasm.h - disassembly for the command line: BPF through the LLVM-C disassembler ("bpfel"),
 * x86-64 JIT images through capstone with kernel symbol names for call targets, and source
 * lines from a program's BTF line_info.
 */
#ifndef RS_TOOLS_DISASM_H
#define RS_TOOLS_DISASM_H

#include <stddef.h>
#include <stdint.h>

#include "optimizer/ir.h"

/* ---- BPF (LLVM MC) ---- */
struct rs_bpf_disasm;

int rs_bpf_disasm_open(struct rs_bpf_disasm **d);
void rs_bpf_disasm_close(struct rs_bpf_disasm *d);
/*
 * Text of the instruction at `idx` in LLVM's BPF syntax.  Returns its width in instructions
 * (1, or 2 for ld_imm64) or -EINVAL when LLVM does not know the encoding (buf then holds
 * "<unknown>" and the raw bytes).
 */
int rs_bpf_disasm_insn(struct rs_bpf_disasm *d, const struct bpf_insn *insns, size_t cnt,
		       size_t idx, char *buf, size_t sz);

/* ---- kernel symbols (/proc/kallsyms) ---- */
struct rs_ksyms;

int rs_ksyms_load(struct rs_ksyms **ks);
void rs_ksyms_free(struct rs_ksyms *ks);
/* Name of the symbol containing addr, *off the distance from its start; NULL if none. */
const char *rs_ksyms_lookup(const struct rs_ksyms *ks, uint64_t addr, uint64_t *off);
/* Address of a symbol by name, 0 when unknown. */
uint64_t rs_ksyms_addr(const struct rs_ksyms *ks, const char *name);

/* ---- x86-64 JIT image (capstone) ---- */
struct rs_jit_line {
	uint64_t addr;			/* kernel address (base + off) */
	uint32_t off;			/* offset in the image */
	uint8_t len;
	uint8_t bytes[16];
	char text[196];			/* "mov rax, qword ptr [rdi + 8]" */
	char sym[128];			/* call/jump target symbol ("bpf_map_lookup_elem+0"), "" */
};

/*
 * Disassemble a JIT image loaded at `base` (0 when unknown).  ks may be NULL.  *lines is
 * allocated; the caller frees it.
 */
int rs_jit_disasm(const uint8_t *image, size_t len, uint64_t base, const struct rs_ksyms *ks,
		  struct rs_jit_line **lines, size_t *cnt);

/* ---- source lines from BTF line_info ---- */
struct rs_linum;

/* Opens the program's BTF (kernel BTF object p->btf_id).  -ENOENT when it has none. */
int rs_linum_open(const struct rs_prog *p, struct rs_linum **l);
void rs_linum_close(struct rs_linum *l);
/*
 * When a line_info record starts at instruction `idx`: fills file/line/col and returns the
 * source text of that line (may be ""); else NULL.
 */
const char *rs_linum_at(const struct rs_linum *l, size_t idx, const char **file,
			uint32_t *line, uint32_t *col);

/* Line info record k (index into the program's line_info): like rs_linum_at. */
const char *rs_linum_rec(const struct rs_linum *l, size_t k, const char **file,
			 uint32_t *line, uint32_t *col);
/* Name of the subprogram starting at instruction `idx` (BTF func_info), else NULL. */
const char *rs_linum_func_at(const struct rs_linum *l, size_t idx);

#endif
