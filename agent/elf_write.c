// SPDX-License-Identifier: BSD-2-Clause
/*
 * elf_write.c - an rs_prog written as a BPF ELF object that libbpf (1.1 and later) opens and
 * loads: `respec optimize -o x.o`, docs/optimize.md.
 *
 * Layout of the object (what clang would emit for the same program):
 *   PROGSEC ("xdp", "xdp.frags", "tc")  the main program, one global FUNC symbol
 *   .text                               subprograms (static FUNC symbols), when there are any
 *   .relPROGSEC, .rel.text              relocations: ld_imm64 map references (R_BPF_64_64)
 *                                       and calls from the main program into .text (R_BPF_64_32)
 *   .maps                               BTF-defined maps: one global OBJECT per map whose BTF
 *                                       type is the usual struct of __uint(type/key_size/...)
 *   .data.NAME / .rodata.NAME / .rodata single-entry arrays used through direct value loads
 *                                       (global data, the optimizer's constant pool, the guard
 *                                       generation array), with their contents
 *   license, .BTF, .BTF.ext (func_info: callbacks need it), .strtab, .symtab
 * BTF is built with libbpf's btf__add_* API.  Func/line info is not carried (subprograms
 * become static functions).  Kfunc calls are refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "agent/agent.h"
#include "optimizer/optimizer.h"

#ifndef EM_BPF
#define EM_BPF 247
#endif
#define R_BPF_64_64	1
#define R_BPF_64_32	10

enum { SEC_STRTAB = 1, SEC_PROG, SEC_FIRST_VAR };

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static long buf_add(struct buf *b, const void *d, size_t n)
{
	size_t off = b->len;

	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		uint8_t *p;

		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	if (d)
		memcpy(b->p + b->len, d, n);
	else
		memset(b->p + b->len, 0, n);
	b->len += n;
	return (long)off;
}

static long str_add(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s) + 1);
}

struct dsec {
	char name[64];
	int map_idx;
	uint8_t *data;			/* value_size bytes */
	uint32_t size;
	int shndx, sym;
};

struct writer {
	const struct rs_prog *p;
	const struct rs_elf_write_opts *opts;
	const char *psec;
	size_t main_end;		/* first subprogram instruction (insn_cnt: none) */
	struct bpf_insn *insns;		/* relocatable copy */
	bool *is_data;			/* per map: a data section, else a .maps map */
	int *map_sym;			/* per map: symbol index */
	uint32_t *maps_off;		/* per map: offset in .maps */
	struct dsec *ds;
	size_t ds_cnt;
	struct buf strtab, syms, rel_main, rel_text, maps;
	size_t local_cnt;
	int shndx_text, shndx_maps, shndx_license, shndx_btf, shndx_symtab;
	int shndx_rel_main, shndx_rel_text, text_sym;
	struct btf *btf;
	struct buf ext;			/* .BTF.ext (func_info), empty without BTF */
	int shndx_ext;
};

static const char *sec_name_of(const struct rs_prog *p)
{
	if (p->type == BPF_PROG_TYPE_XDP)
		return p->prog_flags & BPF_F_XDP_HAS_FRAGS ? "xdp.frags" : "xdp";
	if (p->type == BPF_PROG_TYPE_SCHED_CLS)
		return "tc";
	if (p->type == BPF_PROG_TYPE_SCHED_ACT)
		return "action";
	return NULL;
}

static const char *map_name(const struct writer *w, size_t i)
{
	const char *const *names = RS_OPTS_GET(w->opts, map_names, NULL);

	return names && names[i] ? names[i] : w->p->maps[i].name;
}

/* Which maps are data sections: referenced by a direct value load, carrying contents, or
 * libbpf's own global data ("obj.rodata"). */
static int classify_maps(struct writer *w)
{
	const struct rs_prog *p = w->p;
	size_t i;

	for (i = 0; i < p->insn_cnt; i++) {
		const struct bpf_insn *in = &p->insns[i];

		if (rs_insn_is_map_ref(in) && in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE &&
		    (uint32_t)in->imm < p->map_cnt)
			w->is_data[in->imm] = true;
		if (rs_insn_is_ldimm64(in))
			i++;
	}
	for (i = 0; i < p->map_cnt; i++) {
		const struct rs_map_ref *m = &p->maps[i];

		if (m->init_value || strchr(map_name(w, i), '.'))
			w->is_data[i] = true;
		if (w->is_data[i] && (m->type != BPF_MAP_TYPE_ARRAY || m->max_entries != 1)) {
			rs_warn("prog %s: map %zu (%s): direct value loads need a single-entry "
				"array (type %u, %u entries)", p->name, i, m->name, m->type,
				m->max_entries);
			return -EOPNOTSUPP;
		}
		if (!w->is_data[i] && (m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS ||
				       m->type == BPF_MAP_TYPE_HASH_OF_MAPS)) {
			rs_warn("prog %s: map %zu (%s): map-in-map is not written to objects",
				p->name, i, m->name);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Contents of a data-section map: explicit data, init_value, else the snapshot's key 0. */
static int data_contents(struct writer *w, size_t i, struct dsec *d)
{
	const uint8_t *const *md = RS_OPTS_GET(w->opts, map_data, NULL);
	const struct rs_snapshot *snap = RS_OPTS_GET(w->opts, snap, NULL);
	const struct rs_map_ref *m = &w->p->maps[i];
	const uint8_t *src = NULL;
	uint32_t zero = 0;

	d->size = m->value_size;
	d->data = calloc(1, d->size ?: 1);
	if (!d->data)
		return -ENOMEM;
	if (md && md[i])
		src = md[i];
	else if (m->init_value)
		src = m->init_value;
	else if (snap && i < snap->map_cnt)
		src = rs_snapshot_lookup(&snap->maps[i], &zero);
	if (src)
		memcpy(d->data, src, d->size);
	return 0;
}

static void sanitize(char *s)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
			*s = '_';
}

static int plan_data_sections(struct writer *w)
{
	bool have_rodata = false, have_data = false;
	size_t i;
	int err;

	w->ds = calloc(w->p->map_cnt + 1, sizeof(*w->ds));
	if (!w->ds)
		return -ENOMEM;
	for (i = 0; i < w->p->map_cnt; i++) {
		const struct rs_map_ref *m = &w->p->maps[i];
		const char *name = map_name(w, i), *dot = strchr(name, '.');
		bool ro = m->flags & BPF_F_RDONLY_PROG;
		struct dsec *d;

		if (!w->is_data[i])
			continue;
		d = &w->ds[w->ds_cnt++];
		d->map_idx = (int)i;
		if (dot && !strcmp(dot, ro ? ".rodata" : ".data") && !(ro ? have_rodata : have_data))
			snprintf(d->name, sizeof(d->name), "%s", dot);
		else
			snprintf(d->name, sizeof(d->name), "%s.%s", ro ? ".rodata" : ".data",
				 dot ? dot + 1 : name);
		sanitize(d->name + 1);
		have_rodata |= !strcmp(d->name, ".rodata");
		have_data |= !strcmp(d->name, ".data");
		err = data_contents(w, i, d);
		if (err)
			return err;
	}
	return 0;
}

static int add_sym(struct writer *w, const char *name, unsigned char bind, unsigned char type,
		   int shndx, uint64_t value, uint64_t size)
{
	Elf64_Sym s = {};
	long off = name ? str_add(&w->strtab, name) : 0;

	if (off < 0)
		return -ENOMEM;
	s.st_name = (uint32_t)off;
	s.st_info = ELF64_ST_INFO(bind, type);
	s.st_shndx = (uint16_t)shndx;
	s.st_value = value;
	s.st_size = size;
	if (buf_add(&w->syms, &s, sizeof(s)) < 0)
		return -ENOMEM;
	return (int)(w->syms.len / sizeof(s) - 1);
}

static int add_rel(struct buf *b, size_t insn, int sym, unsigned int type)
{
	Elf64_Rel r = { .r_offset = insn * sizeof(struct bpf_insn),
			.r_info = ELF64_R_INFO((uint64_t)sym, type) };

	return buf_add(b, &r, sizeof(r)) < 0 ? -ENOMEM : 0;
}

/* BTF of one .maps entry: struct { int (*type)[T]; int (*key_size)[K]; ... } NAME. */
static int btf_map_var(struct writer *w, size_t i, int int_id, int off)
{
	const uint32_t *kt = RS_OPTS_GET(w->opts, key_type_ids, NULL);
	const uint32_t *vt = RS_OPTS_GET(w->opts, value_type_ids, NULL);
	const struct rs_map_ref *m = &w->p->maps[i];
	uint32_t key_t = off >= 0 && kt ? kt[i] : 0, val_t = off >= 0 && vt ? vt[i] : 0;
	struct { const char *name; uint32_t v; uint32_t type; } f[] = {
		{ "type", m->type, 0 }, { "key_size", m->key_size, key_t },
		{ "value_size", m->value_size, val_t }, { "max_entries", m->max_entries, 0 },
		{ "map_flags", m->flags, 0 },
	};
	int ptr[RS_ARRAY_SIZE(f)], st, err;
	size_t k;

	/* typed keys and values (the scenario encodes through them), else plain sizes */
	if (key_t && val_t) {
		f[1].name = "key";
		f[2].name = "value";
	}
	for (k = 0; k < RS_ARRAY_SIZE(f); k++) {
		int arr;

		if (key_t && val_t && (k == 1 || k == 2)) {
			ptr[k] = btf__add_ptr(w->btf, (int)f[k].type + off);
			if (ptr[k] < 0)
				return ptr[k];
			continue;
		}
		arr = btf__add_array(w->btf, int_id, int_id, f[k].v);
		if (arr < 0)
			return arr;
		ptr[k] = btf__add_ptr(w->btf, arr);
		if (ptr[k] < 0)
			return ptr[k];
	}
	st = btf__add_struct(w->btf, NULL, 8 * RS_ARRAY_SIZE(f));
	if (st < 0)
		return st;
	for (k = 0; k < RS_ARRAY_SIZE(f); k++) {
		err = btf__add_field(w->btf, f[k].name, ptr[k], 64 * k, 0);
		if (err)
			return err;
	}
	return btf__add_var(w->btf, map_name(w, i), BTF_VAR_GLOBAL_ALLOCATED, st);
}

static int build_maps(struct writer *w)
{
	const struct btf *src = RS_OPTS_GET(w->opts, btf, NULL);
	int int_id, *vars, err = 0, off = -1;
	size_t i, n = 0;

	w->btf = btf__new_empty();
	if (libbpf_get_error(w->btf)) {
		w->btf = NULL;
		return -ENOMEM;
	}
	if (src) {
		/*
		 * The original's types with their ids, except its DATASECs (.maps would describe
		 * the original's map section): each becomes a placeholder so no id moves.
		 */
		uint32_t id, cnt = btf__type_cnt(src);

		for (id = 1; id < cnt; id++) {
			const struct btf_type *t = btf__type_by_id(src, id);
			int r = btf_is_datasec(t) ? btf__add_int(w->btf, "rs_pad", 1, 0) :
						    btf__add_type(w->btf, src, t);

			if (r != (int)id) {
				rs_warn("prog %s: copying the program's BTF: type %u: %s",
					w->p->name, id, rs_strerror(r < 0 ? r : -EINVAL));
				return r < 0 ? r : -EINVAL;
			}
		}
		off = 0;
	}
	int_id = btf__add_int(w->btf, "int", 4, BTF_INT_SIGNED);
	if (int_id < 0)
		return int_id;
	vars = calloc(w->p->map_cnt + 1, sizeof(*vars));
	if (!vars)
		return -ENOMEM;
	for (i = 0; i < w->p->map_cnt; i++) {
		if (w->is_data[i])
			continue;
		vars[i] = btf_map_var(w, i, int_id, off);
		if (vars[i] < 0) {
			err = vars[i];
			goto out;
		}
		w->maps_off[i] = (uint32_t)w->maps.len;
		if (buf_add(&w->maps, NULL, 40) < 0) {
			err = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n) {
		err = btf__add_datasec(w->btf, ".maps", (uint32_t)w->maps.len);
		if (err < 0)
			goto out;
		err = 0;
		for (i = 0; i < w->p->map_cnt && !err; i++)
			if (!w->is_data[i])
				err = btf__add_datasec_var_info(w->btf, vars[i], w->maps_off[i], 40);
	}
out:
	free(vars);
	return err;
}

/*
 * .BTF.ext with func_info only (the kernel wants it for callbacks and global functions):
 * per section a record per function, byte offsets within the section, type ids of the copied
 * BTF (the same ids as the original's).  Line info is not carried.
 */
static int build_btf_ext(struct writer *w, const char *psec)
{
	const struct rs_prog *p = w->p;
	struct btf_ext_hdr {
		uint16_t magic;
		uint8_t version, flags;
		uint32_t hdr_len, func_info_off, func_info_len, line_info_off, line_info_len;
		uint32_t core_relo_off, core_relo_len;
	} h = { .magic = 0xeB9F, .version = 1, .hdr_len = sizeof(h) };
	uint32_t rec = 8, n_main = 0, n_text = 0, v[2];
	int s_main, s_text;
	size_t i, start;

	if (!RS_OPTS_GET(w->opts, btf, NULL) || !p->func_info_cnt)
		return 0;
	s_main = btf__add_str(w->btf, psec);
	s_text = btf__add_str(w->btf, ".text");
	if (s_main < 0 || s_text < 0)
		return -ENOMEM;
	for (i = 0; i < p->func_info_cnt; i++) {
		if (p->func_info[i].insn_off < w->main_end)
			n_main++;
		else
			n_text++;
	}
	if (buf_add(&w->ext, &h, sizeof(h)) < 0 || buf_add(&w->ext, &rec, 4) < 0)
		return -ENOMEM;
	start = w->ext.len - 4;
	v[0] = (uint32_t)s_main;
	v[1] = n_main;
	if (buf_add(&w->ext, v, 8) < 0)
		return -ENOMEM;
	for (i = 0; i < p->func_info_cnt; i++) {
		if (p->func_info[i].insn_off >= w->main_end)
			continue;
		v[0] = p->func_info[i].insn_off * 8;
		v[1] = p->func_info[i].type_id;
		if (buf_add(&w->ext, v, 8) < 0)
			return -ENOMEM;
	}
	if (n_text) {
		v[0] = (uint32_t)s_text;
		v[1] = n_text;
		if (buf_add(&w->ext, v, 8) < 0)
			return -ENOMEM;
		for (i = 0; i < p->func_info_cnt; i++) {
			if (p->func_info[i].insn_off < w->main_end)
				continue;
			v[0] = (p->func_info[i].insn_off - (uint32_t)w->main_end) * 8;
			v[1] = p->func_info[i].type_id;
			if (buf_add(&w->ext, v, 8) < 0)
				return -ENOMEM;
		}
	}
	h.func_info_off = 0;
	h.func_info_len = (uint32_t)(w->ext.len - start);
	h.line_info_off = h.func_info_len;
	h.core_relo_off = h.func_info_len;
	memcpy(w->ext.p, &h, sizeof(h));
	return 0;
}

/* Relocatable instructions: map references -> relocations, calls into .text -> relocations. */
static int relocate(struct writer *w)
{
	const struct rs_prog *p = w->p;
	size_t i;
	int err;

	for (i = 0; i < p->insn_cnt; i++) {
		struct bpf_insn *in = &w->insns[i];
		bool in_text = i >= w->main_end;
		struct buf *rel = in_text ? &w->rel_text : &w->rel_main;
		size_t at = in_text ? i - w->main_end : i;

		if (rs_insn_is_kfunc_call(in)) {
			rs_warn("prog %s: insn %zu: kfunc calls are not written to objects",
				p->name, i);
			return -EOPNOTSUPP;
		}
		if (rs_insn_is_pseudo_func(in)) {
			/* callback address: byte offset into .text, relocated like clang's */
			long t = rs_insn_target(p->insns, i);

			if (t < (long)w->main_end) {
				rs_warn("prog %s: insn %zu: callback in the main program", p->name,
					i);
				return -EINVAL;
			}
			in->imm = (int32_t)((t - (long)w->main_end) * 8);
			err = add_rel(rel, at, w->text_sym, R_BPF_64_64);
			if (err)
				return err;
			i++;
			continue;
		}
		if (rs_insn_is_map_ref(in)) {
			uint32_t mi = (uint32_t)in->imm;

			if (in->src_reg != BPF_PSEUDO_MAP_IDX &&
			    in->src_reg != BPF_PSEUDO_MAP_IDX_VALUE) {
				rs_warn("prog %s: insn %zu: map reference not in IDX form", p->name, i);
				return -EINVAL;
			}
			if (in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE) {
				in->imm = in[1].imm;	/* offset into the section */
				in[1].imm = 0;
			} else {
				in->imm = 0;
			}
			in->src_reg = 0;
			err = add_rel(rel, at, w->map_sym[mi], R_BPF_64_64);
			if (err)
				return err;
		} else if (rs_insn_is_pseudo_call(in) && !in_text) {
			long t = rs_insn_target(p->insns, i);

			if (t < (long)w->main_end) {
				rs_warn("prog %s: insn %zu: call into the main program", p->name, i);
				return -EINVAL;
			}
			in->imm = (int32_t)(t - (long)w->main_end) - 1;
			err = add_rel(rel, at, w->text_sym, R_BPF_64_32);
			if (err)
				return err;
		}
		if (rs_insn_is_ldimm64(in))
			i++;
	}
	return 0;
}

static int new_section(Elf *e, const char *name, struct writer *w, uint32_t type,
		       uint64_t flags, const void *data, size_t size, uint64_t align,
		       uint32_t link, uint32_t info, uint64_t entsize)
{
	Elf_Scn *scn = elf_newscn(e);
	Elf_Data *d;
	GElf_Shdr sh;
	long off;

	if (!scn)
		return -ENOMEM;
	off = str_add(&w->strtab, name);
	if (off < 0)
		return -ENOMEM;
	d = elf_newdata(scn);
	if (!d)
		return -ENOMEM;
	d->d_buf = (void *)data;
	d->d_size = size;
	d->d_align = align;
	d->d_type = ELF_T_BYTE;
	if (!gelf_getshdr(scn, &sh))
		return -EINVAL;
	sh.sh_name = (uint32_t)off;
	sh.sh_type = type;
	sh.sh_flags = flags;
	sh.sh_addralign = align;
	sh.sh_link = link;
	sh.sh_info = info;
	sh.sh_entsize = entsize;
	if (!gelf_update_shdr(scn, &sh))
		return -EINVAL;
	return (int)elf_ndxscn(scn);
}

static int write_elf(struct writer *w, const char *path, const char *psec)
{
	const struct rs_prog *p = w->p;
	size_t isz = sizeof(struct bpf_insn), i;
	uint32_t btf_sz = 0;
	const void *btf_raw;
	GElf_Ehdr eh;
	Elf *e = NULL;
	int fd, err = -EINVAL, idx;
	Elf_Scn *strscn;

	btf_raw = btf__raw_data(w->btf, &btf_sz);
	if (!btf_raw)
		return -ENOMEM;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		err = -errno;
		rs_warn("%s: %s", path, rs_strerror(err));
		return err;
	}
	e = elf_begin(fd, ELF_C_WRITE, NULL);
	if (!e || !gelf_newehdr(e, ELFCLASS64) || !gelf_getehdr(e, &eh))
		goto out;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_type = ET_REL;
	eh.e_machine = EM_BPF;
	eh.e_version = EV_CURRENT;
	/* section indexes were planned; create them in the same order */
	strscn = elf_newscn(e);
	if (!strscn)
		goto out;
	idx = new_section(e, psec, w, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, w->insns,
			  w->main_end * isz, 8, 0, 0, 0);
	if (idx != SEC_PROG)
		goto out;
	if (w->shndx_text && new_section(e, ".text", w, SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR,
					 w->insns + w->main_end,
					 (p->insn_cnt - w->main_end) * isz, 8, 0, 0, 0) !=
			     w->shndx_text)
		goto out;
	if (w->shndx_maps && new_section(e, ".maps", w, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE,
					 w->maps.p, w->maps.len, 8, 0, 0, 0) != w->shndx_maps)
		goto out;
	for (i = 0; i < w->ds_cnt; i++) {
		struct dsec *d = &w->ds[i];
		uint64_t fl = SHF_ALLOC | (strncmp(d->name, ".rodata", 7) ? SHF_WRITE : 0);

		if (new_section(e, d->name, w, SHT_PROGBITS, fl, d->data, d->size, 8, 0, 0, 0) !=
		    d->shndx)
			goto out;
	}
	if (new_section(e, "license", w, SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, p->license,
			strlen(p->license) + 1, 1, 0, 0, 0) != w->shndx_license)
		goto out;
	if (new_section(e, ".BTF", w, SHT_PROGBITS, 0, btf_raw, btf_sz, 4, 0, 0, 0) !=
	    w->shndx_btf)
		goto out;
	if (w->shndx_ext && new_section(e, ".BTF.ext", w, SHT_PROGBITS, 0, w->ext.p, w->ext.len,
					4, 0, 0, 0) != w->shndx_ext)
		goto out;
	{
		char rn[80];

		snprintf(rn, sizeof(rn), ".rel%s", psec);
		if (new_section(e, rn, w, SHT_REL, 0, w->rel_main.p,
						   w->rel_main.len, 8, w->shndx_symtab, SEC_PROG,
						   sizeof(Elf64_Rel)) != w->shndx_rel_main)
			goto out;
	}
	if (w->shndx_text && new_section(e, ".rel.text", w, SHT_REL, 0, w->rel_text.p,
					   w->rel_text.len, 8, w->shndx_symtab, w->shndx_text,
					   sizeof(Elf64_Rel)) != w->shndx_rel_text)
		goto out;
	if (new_section(e, ".symtab", w, SHT_SYMTAB, 0, w->syms.p, w->syms.len, 8, SEC_STRTAB,
			(uint32_t)w->local_cnt, sizeof(Elf64_Sym)) != w->shndx_symtab)
		goto out;
	/* the string table last: every name is in it now */
	{
		long off = str_add(&w->strtab, ".strtab");
		Elf_Data *d = elf_newdata(strscn);
		GElf_Shdr sh;

		if (off < 0 || !d || !gelf_getshdr(strscn, &sh))
			goto out;
		d->d_buf = w->strtab.p;
		d->d_size = w->strtab.len;
		d->d_align = 1;
		d->d_type = ELF_T_BYTE;
		sh.sh_name = (uint32_t)off;
		sh.sh_type = SHT_STRTAB;
		sh.sh_addralign = 1;
		if (!gelf_update_shdr(strscn, &sh))
			goto out;
	}
	eh.e_shstrndx = SEC_STRTAB;
	if (!gelf_update_ehdr(e, &eh))
		goto out;
	if (elf_update(e, ELF_C_WRITE) < 0) {
		rs_warn("%s: writing the object: %s", path, elf_errmsg(-1));
		goto out;
	}
	err = 0;
out:
	if (err)
		rs_warn("%s: building the ELF object failed: %s", path, elf_errmsg(-1));
	if (e)
		elf_end(e);
	close(fd);
	if (err)
		unlink(path);
	return err;
}

/* Section indexes and symbols, in the order write_elf() creates them. */
static int plan(struct writer *w)
{
	const struct rs_prog *p = w->p;
	int next = SEC_FIRST_VAR, sym;
	size_t i, *starts = NULL, n = 0;

	if (rs_subprog_starts(p->insns, p->insn_cnt, p->func_info, p->func_info_cnt, &starts,
			      &n))
		return -ENOMEM;
	w->main_end = n > 1 ? starts[1] : p->insn_cnt;
	if (w->main_end < p->insn_cnt)
		w->shndx_text = next++;
	if (build_maps(w)) {
		free(starts);
		return -EINVAL;
	}
	if (w->maps.len)
		w->shndx_maps = next++;
	for (i = 0; i < w->ds_cnt; i++)
		w->ds[i].shndx = next++;
	w->shndx_license = next++;
	w->shndx_btf = next++;
	if (build_btf_ext(w, w->psec)) {
		free(starts);
		return -ENOMEM;
	}
	if (w->ext.len)
		w->shndx_ext = next++;
	/* relocation sections always exist (maybe empty) so the indexes are known now */
	w->shndx_rel_main = next++;
	w->shndx_rel_text = w->shndx_text ? next++ : 0;
	w->shndx_symtab = next++;

	/* symbols: null, locals (section symbols, static subprograms), then globals */
	if (add_sym(w, NULL, 0, 0, 0, 0, 0) < 0)
		goto nomem;
	if (w->shndx_text) {
		w->text_sym = add_sym(w, NULL, STB_LOCAL, STT_SECTION, w->shndx_text, 0, 0);
		if (w->text_sym < 0)
			goto nomem;
		for (i = 1; i < n; i++) {
			char nm[32];
			size_t end = i + 1 < n ? starts[i + 1] : p->insn_cnt;

			snprintf(nm, sizeof(nm), "rs_sub_%zu", starts[i]);
			if (add_sym(w, nm, STB_LOCAL, STT_FUNC, w->shndx_text,
				    (starts[i] - w->main_end) * 8, (end - starts[i]) * 8) < 0)
				goto nomem;
		}
	}
	for (i = 0; i < w->ds_cnt; i++) {
		sym = add_sym(w, NULL, STB_LOCAL, STT_SECTION, w->ds[i].shndx, 0, 0);
		if (sym < 0)
			goto nomem;
		w->map_sym[w->ds[i].map_idx] = sym;
	}
	w->local_cnt = w->syms.len / sizeof(Elf64_Sym);
	if (add_sym(w, p->name, STB_GLOBAL, STT_FUNC, SEC_PROG, 0, w->main_end * 8) < 0)
		goto nomem;
	for (i = 0; i < p->map_cnt; i++) {
		if (w->is_data[i])
			continue;
		sym = add_sym(w, map_name(w, i), STB_GLOBAL, STT_OBJECT, w->shndx_maps,
			      w->maps_off[i], 40);
		if (sym < 0)
			goto nomem;
		w->map_sym[i] = sym;
	}
	free(starts);
	return 0;
nomem:
	free(starts);
	return -ENOMEM;
}

int rs_elf_write(const struct rs_prog *p, const char *path, const struct rs_elf_write_opts *opts)
{
	const char *psec = RS_OPTS_GET(opts, sec_name, NULL) ?: sec_name_of(p);
	struct writer w = { .p = p, .opts = opts, .psec = psec };
	char err_msg[256];
	size_t i;
	int err;

	if (!psec) {
		rs_warn("prog %s: type %s cannot be written to an object", p->name,
			rs_prog_type_name(p->type));
		return -RS_ERR_PROG_TYPE;
	}
	err = rs_prog_validate(p, err_msg, sizeof(err_msg));
	if (err) {
		rs_warn("prog %s: %s", p->name, err_msg);
		return err;
	}
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	err = -ENOMEM;
	w.insns = malloc(p->insn_cnt * sizeof(*w.insns));
	w.is_data = calloc(p->map_cnt + 1, sizeof(*w.is_data));
	w.map_sym = calloc(p->map_cnt + 1, sizeof(*w.map_sym));
	w.maps_off = calloc(p->map_cnt + 1, sizeof(*w.maps_off));
	if (!w.insns || !w.is_data || !w.map_sym || !w.maps_off)
		goto out;
	memcpy(w.insns, p->insns, p->insn_cnt * sizeof(*w.insns));
	if (str_add(&w.strtab, "") < 0)
		goto out;
	err = classify_maps(&w);
	if (!err)
		err = plan_data_sections(&w);
	if (!err)
		err = plan(&w);
	if (!err)
		err = relocate(&w);
	if (err)
		goto out;
	err = write_elf(&w, path, psec);
out:
	for (i = 0; i < w.ds_cnt; i++)
		free(w.ds[i].data);
	free(w.ds);
	free(w.insns);
	free(w.is_data);
	free(w.map_sym);
	free(w.maps_off);
	free(w.strtab.p);
	free(w.syms.p);
	free(w.rel_main.p);
	free(w.rel_text.p);
	free(w.maps.p);
	free(w.ext.p);
	btf__free(w.btf);
	return err;
}
