// SPDX-License-Identifier: BSD-2-Clause
/*
 * disasm.c - disassemblers of the command line (see disasm.h).
 *
 * BPF goes through LLVM's MC disassembler (C API, triple "bpfel"), so the text is what
 * llvm-objdump prints.  JIT images go through capstone (x86-64), and call/jump targets are named
 * from /proc/kallsyms (helpers, other BPF programs "bpf_prog_<tag>_<name>").  Source lines come
 * from the program's BTF: line_info records hold string offsets of the file and the line text.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <capstone/capstone.h>
#include <llvm-c/Disassembler.h>
#include <llvm-c/Target.h>

#include "tools/disasm.h"

/* ---- BPF through LLVM ---------------------------------------------------------------- */

struct rs_bpf_disasm {
	LLVMDisasmContextRef dc;
};

int rs_bpf_disasm_open(struct rs_bpf_disasm **out)
{
	struct rs_bpf_disasm *d;

	LLVMInitializeBPFTargetInfo();
	LLVMInitializeBPFTargetMC();
	LLVMInitializeBPFDisassembler();
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->dc = LLVMCreateDisasm("bpfel", NULL, 0, NULL, NULL);
	if (!d->dc) {
		rs_warn("disasm: LLVM has no BPF disassembler (triple bpfel)");
		free(d);
		return -EOPNOTSUPP;
	}
	LLVMSetDisasmOptions(d->dc, LLVMDisassembler_Option_PrintImmHex);
	*out = d;
	return 0;
}

void rs_bpf_disasm_close(struct rs_bpf_disasm *d)
{
	if (!d)
		return;
	LLVMDisasmDispose(d->dc);
	free(d);
}

int rs_bpf_disasm_insn(struct rs_bpf_disasm *d, const struct bpf_insn *insns, size_t cnt,
		       size_t idx, char *buf, size_t sz)
{
	uint8_t bytes[2 * sizeof(struct bpf_insn)];
	size_t avail = cnt - idx >= 2 ? 2 : 1, n;
	char tmp[256];
	const char *s;
	int width;

	if (idx >= cnt)
		return -EINVAL;
	memcpy(bytes, &insns[idx], avail * sizeof(struct bpf_insn));
	n = LLVMDisasmInstruction(d->dc, bytes, avail * sizeof(struct bpf_insn), idx * 8,
				  tmp, sizeof(tmp));
	if (!n || n % sizeof(struct bpf_insn)) {
		const uint8_t *b = (const uint8_t *)&insns[idx];

		snprintf(buf, sz, "<unknown: %02x %02x %02x %02x %02x %02x %02x %02x>",
			 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
		return -EINVAL;
	}
	width = n / sizeof(struct bpf_insn);
	for (s = tmp; *s == ' ' || *s == '\t'; s++)
		;
	snprintf(buf, sz, "%s", s);
	/* LLVM separates operands with tabs: make them spaces */
	for (char *p = buf; *p; p++)
		if (*p == '\t')
			*p = ' ';
	return width;
}

/* ---- kernel symbols -------------------------------------------------------------------- */

struct ksym {
	uint64_t addr;
	char *name;
};

struct rs_ksyms {
	struct ksym *v;
	size_t cnt;
	char *names;		/* one block for every name */
};

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;

	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

int rs_ksyms_load(struct rs_ksyms **out)
{
	struct rs_ksyms *ks;
	size_t cap = 0, ncap = 0, nlen = 0, i;
	char line[512], name[256], type;
	unsigned long long addr;
	FILE *f;
	int err = 0;

	f = fopen("/proc/kallsyms", "re");
	if (!f) {
		err = -errno;
		rs_warn("disasm: /proc/kallsyms: %s", rs_strerror(err));
		return err;
	}
	ks = calloc(1, sizeof(*ks));
	if (!ks) {
		err = -ENOMEM;
		goto out;
	}
	while (fgets(line, sizeof(line), f)) {
		size_t l;

		if (sscanf(line, "%llx %c %255s", &addr, &type, name) != 3 || !addr)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (ks->cnt == cap) {
			struct ksym *n;

			cap = cap ? cap * 2 : 4096;
			n = realloc(ks->v, cap * sizeof(*n));
			if (!n) {
				err = -ENOMEM;
				goto out;
			}
			ks->v = n;
		}
		l = strlen(name) + 1;
		if (nlen + l > ncap) {
			char *n;

			ncap = ncap ? ncap * 2 : 1 << 20;
			n = realloc(ks->names, ncap);
			if (!n) {
				err = -ENOMEM;
				goto out;
			}
			ks->names = n;
		}
		memcpy(ks->names + nlen, name, l);
		ks->v[ks->cnt].addr = addr;
		ks->v[ks->cnt].name = (char *)(uintptr_t)nlen;	/* offset until names settle */
		ks->cnt++;
		nlen += l;
	}
	if (!ks->cnt) {
		/* no addresses: kptr_restrict, or not root */
		rs_info("disasm: /proc/kallsyms shows no addresses; call targets stay unnamed");
	}
	for (i = 0; i < ks->cnt; i++)
		ks->v[i].name = ks->names + (uintptr_t)ks->v[i].name;
	qsort(ks->v, ks->cnt, sizeof(*ks->v), ksym_cmp);
out:
	fclose(f);
	if (err) {
		rs_ksyms_free(ks);
		return err;
	}
	*out = ks;
	return 0;
}

void rs_ksyms_free(struct rs_ksyms *ks)
{
	if (!ks)
		return;
	free(ks->v);
	free(ks->names);
	free(ks);
}

const char *rs_ksyms_lookup(const struct rs_ksyms *ks, uint64_t addr, uint64_t *off)
{
	size_t lo = 0, hi, mid;

	if (!ks || !ks->cnt || addr < ks->v[0].addr)
		return NULL;
	hi = ks->cnt;
	while (hi - lo > 1) {
		mid = (lo + hi) / 2;
		if (ks->v[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	/* far beyond the last symbol of a region: not a real match */
	if (addr - ks->v[lo].addr > (1 << 20))
		return NULL;
	*off = addr - ks->v[lo].addr;
	return ks->v[lo].name;
}

uint64_t rs_ksyms_addr(const struct rs_ksyms *ks, const char *name)
{
	size_t i;

	for (i = 0; ks && i < ks->cnt; i++)
		if (!strcmp(ks->v[i].name, name))
			return ks->v[i].addr;
	return 0;
}

/* ---- x86-64 JIT through capstone ------------------------------------------------------- */

static void name_target(const cs_insn *in, const struct rs_ksyms *ks, const char *self,
			char *sym, size_t sz)
{
	const cs_x86 *x = &in->detail->x86;
	const char *name;
	uint64_t off;
	uint8_t g;
	bool branch = false, call = false;

	sym[0] = 0;
	for (g = 0; g < in->detail->groups_count; g++) {
		if (in->detail->groups[g] == X86_GRP_CALL)
			branch = call = true;
		if (in->detail->groups[g] == X86_GRP_JUMP)
			branch = true;
	}
	if (!branch || x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
		return;
	name = rs_ksyms_lookup(ks, (uint64_t)x->operands[0].imm, &off);
	/* a jump inside the same function needs no name */
	if (name && !call && self && !strcmp(name, self))
		return;
	if (name)
		snprintf(sym, sz, off ? "%s+0x%llx" : "%s", name, (unsigned long long)off);
}

int rs_jit_disasm(const uint8_t *image, size_t len, uint64_t base, const struct rs_ksyms *ks,
		  struct rs_jit_line **lines, size_t *cnt)
{
	struct rs_jit_line *out = NULL;
	cs_insn *insn = NULL;
	size_t n, i;
	const char *self = NULL;
	uint64_t soff;
	csh h;
	int err = 0;

	*lines = NULL;
	*cnt = 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK) {
		rs_warn("disasm: capstone cannot open x86-64");
		return -EOPNOTSUPP;
	}
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_option(h, CS_OPT_SKIPDATA, CS_OPT_ON);
	n = cs_disasm(h, image, len, base, 0, &insn);
	if (!n && len) {
		rs_warn("disasm: capstone could not decode the JIT image (%zu bytes)", len);
		err = -EINVAL;
		goto out;
	}
	if (ks && base)
		self = rs_ksyms_lookup(ks, base, &soff);
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct rs_jit_line *l = &out[i];

		l->addr = insn[i].address;
		l->off = insn[i].address - base;
		l->len = insn[i].size < sizeof(l->bytes) ? insn[i].size : sizeof(l->bytes);
		memcpy(l->bytes, insn[i].bytes, l->len);
		snprintf(l->text, sizeof(l->text), "%s%s%s", insn[i].mnemonic,
			 insn[i].op_str[0] ? " " : "", insn[i].op_str);
		if (insn[i].detail && ks && base)
			name_target(&insn[i], ks, self, l->sym, sizeof(l->sym));
	}
	*lines = out;
	*cnt = n;
out:
	if (insn)
		cs_free(insn, n);
	cs_close(&h);
	return err;
}

/* ---- BTF line info --------------------------------------------------------------------- */

struct rs_linum {
	struct btf *btf;
	const struct rs_prog *p;
};

int rs_linum_open(const struct rs_prog *p, struct rs_linum **out)
{
	struct rs_linum *l;
	struct btf *btf;

	if (!p->btf_id || !p->line_info_cnt)
		return -ENOENT;
	btf = btf__load_from_kernel_by_id(p->btf_id);
	if (!btf) {
		int err = -errno;

		rs_warn("prog %u (%s): BTF %u: %s", p->id, p->name, p->btf_id, rs_strerror(err));
		return err;
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		btf__free(btf);
		return -ENOMEM;
	}
	l->btf = btf;
	l->p = p;
	*out = l;
	return 0;
}

void rs_linum_close(struct rs_linum *l)
{
	if (!l)
		return;
	btf__free(l->btf);
	free(l);
}

const char *rs_linum_at(const struct rs_linum *l, size_t idx, const char **file,
			uint32_t *line, uint32_t *col)
{
	const struct rs_prog *p = l->p;
	size_t lo = 0, hi = p->line_info_cnt, mid;

	while (lo < hi) {		/* first record with insn_off >= idx */
		mid = (lo + hi) / 2;
		if (p->line_info[mid].insn_off < idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= p->line_info_cnt || p->line_info[lo].insn_off != idx)
		return NULL;
	return rs_linum_rec(l, lo, file, line, col);
}

const char *rs_linum_rec(const struct rs_linum *l, size_t k, const char **file,
			 uint32_t *line, uint32_t *col)
{
	const struct rs_line_info *li;
	const char *s;

	if (k >= l->p->line_info_cnt)
		return NULL;
	li = &l->p->line_info[k];
	*file = btf__name_by_offset(l->btf, li->file_name_off);
	if (!*file)
		*file = "";
	*line = li->line_col >> 10;
	*col = li->line_col & 0x3ff;
	s = btf__name_by_offset(l->btf, li->line_off);
	return s ? s : "";
}

const char *rs_linum_func_at(const struct rs_linum *l, size_t idx)
{
	const struct rs_prog *p = l->p;
	const struct btf_type *t;
	size_t i;

	for (i = 0; i < p->func_info_cnt; i++) {
		if (p->func_info[i].insn_off != idx)
			continue;
		t = btf__type_by_id(l->btf, p->func_info[i].type_id);
		return t ? btf__name_by_offset(l->btf, t->name_off) : NULL;
	}
	return NULL;
}
