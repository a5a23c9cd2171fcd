// SPDX-License-Identifier: BSD-2-Clause
/*
 * fetch.c - read a loaded program from the kernel: its translated ("xlated") instructions
 * with name, tag, type, maps, BTF func/line info, and its JIT image.
 *
 * The kernel reports map references in the dump as ld_imm64 with src_reg BPF_PSEUDO_MAP_FD
 * (map pointer) or BPF_PSEUDO_MAP_VALUE (address inside a value) and imm = map id; they are
 * turned into the IDX form of optimizer/ir.h (imm = index into prog->maps[]).  Everything else
 * stays exactly as the kernel dumps it; lifting (lift*.c) undoes the verifier's rewrites.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/agent.h"
#include "agent/lift.h"

static bool prog_type_supported(uint32_t type)
{
	return type == BPF_PROG_TYPE_XDP || type == BPF_PROG_TYPE_SCHED_CLS ||
	       type == BPF_PROG_TYPE_SCHED_ACT;
}

static int map_ref_from_id(uint32_t id, struct rs_map_ref *m)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	int fd, err;

	memset(m, 0, sizeof(*m));
	m->id = id;
	fd = bpf_map_get_fd_by_id(id);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (err)
		err = -errno;
	close(fd);
	if (err)
		return err;
	m->type = info.type;
	m->key_size = info.key_size;
	m->value_size = info.value_size;
	m->max_entries = info.max_entries;
	m->flags = info.map_flags;
	memcpy(m->name, info.name, sizeof(m->name));
	return 0;
}

/* ld_imm64 map references (imm = map id) -> IDX form (imm = index into p->maps). */
static int convert_map_refs(struct rs_prog *p)
{
	size_t i, k;

	for (i = 0; i + 1 < p->insn_cnt; i++) {
		struct bpf_insn *in = &p->insns[i];

		if (in->code != (BPF_LD | BPF_IMM | BPF_DW))
			continue;
		if (in->src_reg == BPF_PSEUDO_MAP_FD || in->src_reg == BPF_PSEUDO_MAP_VALUE) {
			for (k = 0; k < p->map_cnt; k++)
				if (p->maps[k].id == (uint32_t)in->imm)
					break;
			if (k == p->map_cnt) {
				rs_warn("prog %u (%s): insn %zu: map id %u not among the program's maps\n",
					p->id, p->name, i, (uint32_t)in->imm);
				return -RS_ERR_FORMAT;
			}
			in->src_reg = in->src_reg == BPF_PSEUDO_MAP_FD ? BPF_PSEUDO_MAP_IDX :
								      BPF_PSEUDO_MAP_IDX_VALUE;
			in->imm = (int32_t)k;
		}
		i++;	/* skip the second half */
	}
	return 0;
}

int rs_fetch_translated_fd(int fd, struct rs_prog *out, bool any_type)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);
	uint32_t nr_maps, nr_func, nr_line, func_rec, line_rec, xlated_len;
	uint32_t *map_ids = NULL;
	void *func_raw = NULL, *line_raw = NULL;
	struct bpf_insn *insns = NULL;
	size_t i;
	int err;

	rs_prog_init(out);
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (!any_type && !prog_type_supported(info.type)) {
		rs_info("prog %u (%s): type %u is not XDP or TC\n", info.id, info.name, info.type);
		return -RS_ERR_PROG_TYPE;
	}
	xlated_len = info.xlated_prog_len;
	nr_maps = info.nr_map_ids;
	nr_func = info.nr_func_info;
	nr_line = info.nr_line_info;
	func_rec = info.func_info_rec_size;
	line_rec = info.line_info_rec_size;
	if (!xlated_len) {
		rs_warn("prog %u (%s): kernel gives no translated instructions (no privilege?)\n",
			info.id, info.name);
		return -EPERM;
	}

	insns = calloc(1, xlated_len);
	map_ids = calloc(nr_maps + 1, sizeof(*map_ids));
	func_raw = calloc(nr_func + 1, func_rec ? func_rec : 8);
	line_raw = calloc(nr_line + 1, line_rec ? line_rec : 16);
	if (!insns || !map_ids || !func_raw || !line_raw) {
		err = -ENOMEM;
		goto out;
	}

	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = xlated_len;
	info.xlated_prog_insns = (uintptr_t)insns;
	info.nr_map_ids = nr_maps;
	info.map_ids = (uintptr_t)map_ids;
	info.nr_func_info = nr_func;
	info.func_info_rec_size = func_rec;
	info.func_info = (uintptr_t)func_raw;
	info.nr_line_info = nr_line;
	info.line_info_rec_size = line_rec;
	info.line_info = (uintptr_t)line_raw;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		err = -errno;
		goto out;
	}
	if (info.xlated_prog_len != xlated_len || info.nr_map_ids > nr_maps) {
		err = -EAGAIN;	/* changed under us: cannot happen for a loaded program */
		goto out;
	}

	memcpy(out->name, info.name, sizeof(out->name));
	out->id = info.id;
	memcpy(out->tag, info.tag, sizeof(out->tag));
	out->type = info.type;
	out->expected_attach_type = 0;	/* not reported: rs_prog_load_attrs() */
	out->prog_flags = 0;
	snprintf(out->license, sizeof(out->license), "%s",
		 info.gpl_compatible ? "GPL" : "Proprietary");
	out->source = RS_SRC_NONE;
	out->btf_id = info.btf_id;

	err = rs_prog_set_insns(out, insns, xlated_len / sizeof(*insns));
	if (err)
		goto out;
	for (i = 0; i < info.nr_map_ids; i++) {
		struct rs_map_ref m;

		err = map_ref_from_id(map_ids[i], &m);
		if (err) {
			rs_warn("prog %u (%s): map id %u: %s\n", out->id, out->name, map_ids[i],
				rs_strerror(err));
			goto out;
		}
		err = rs_prog_add_map(out, &m);
		if (err < 0)
			goto out;
	}
	err = convert_map_refs(out);
	if (err)
		goto out;

	if (nr_func && func_rec >= sizeof(struct bpf_func_info)) {
		out->func_info = calloc(nr_func, sizeof(*out->func_info));
		if (!out->func_info) {
			err = -ENOMEM;
			goto out;
		}
		for (i = 0; i < nr_func; i++) {
			const struct bpf_func_info *f = (const void *)((char *)func_raw + i * func_rec);

			out->func_info[i].insn_off = f->insn_off;
			out->func_info[i].type_id = f->type_id;
		}
		out->func_info_cnt = nr_func;
	}
	if (nr_line && line_rec >= sizeof(struct bpf_line_info)) {
		out->line_info = calloc(nr_line, sizeof(*out->line_info));
		if (!out->line_info) {
			err = -ENOMEM;
			goto out;
		}
		for (i = 0; i < nr_line; i++) {
			const struct bpf_line_info *l = (const void *)((char *)line_raw + i * line_rec);

			out->line_info[i].insn_off = l->insn_off;
			out->line_info[i].file_name_off = l->file_name_off;
			out->line_info[i].line_off = l->line_off;
			out->line_info[i].line_col = l->line_col;
		}
		out->line_info_cnt = nr_line;
	}
	err = 0;
out:
	if (err)
		rs_prog_free(out);
	free(insns);
	free(map_ids);
	free(func_raw);
	free(line_raw);
	return err;
}

int rs_fetch_translated(uint32_t prog_id, struct rs_prog *out)
{
	int fd, err;

	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0) {
		err = errno == ENOENT ? -RS_ERR_NOT_FOUND : -errno;
		rs_info("prog %u: %s\n", prog_id, rs_strerror(err));
		rs_prog_init(out);
		return err;
	}
	err = rs_fetch_translated_fd(fd, out, false);
	close(fd);
	return err;
}

void rs_jit_image_free(struct rs_jit_image *img)
{
	if (!img)
		return;
	free(img->image);
	free(img->ksyms);
	free(img->line_addrs);
	memset(img, 0, sizeof(*img));
}

int rs_fetch_jited_fd(int fd, struct rs_jit_image *out)
{
	struct bpf_prog_info info;
	uint32_t ilen = sizeof(info), jlen, nks, nlines;
	struct rs_jit_image img = { 0 };
	int err;

	memset(out, 0, sizeof(*out));
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen))
		return -errno;
	jlen = info.jited_prog_len;
	nks = info.nr_jited_ksyms;
	/* the kernel reports one u64 address per line_info record */
	nlines = info.jited_line_info_rec_size == sizeof(uint64_t) ? info.nr_jited_line_info : 0;
	if (!jlen)
		return -ENODATA;
	img.image = malloc(jlen);
	img.ksyms = calloc(nks + 1, sizeof(*img.ksyms));
	img.line_addrs = calloc(nlines + 1, sizeof(*img.line_addrs));
	if (!img.image || !img.ksyms || !img.line_addrs) {
		err = -ENOMEM;
		goto out;
	}
	memset(&info, 0, sizeof(info));
	info.jited_prog_len = jlen;
	info.jited_prog_insns = (uintptr_t)img.image;
	info.nr_jited_ksyms = nks;
	info.jited_ksyms = (uintptr_t)img.ksyms;
	if (nlines) {
		info.nr_jited_line_info = nlines;
		info.jited_line_info_rec_size = sizeof(uint64_t);
		info.jited_line_info = (uintptr_t)img.line_addrs;
	}
	ilen = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &ilen)) {
		err = -errno;
		goto out;
	}
	if (info.jited_prog_len != jlen) {
		err = -EAGAIN;	/* changed under us: cannot happen for a loaded program */
		goto out;
	}
	img.len = jlen;
	img.ksym_cnt = nks;
	img.line_cnt = nlines;
	*out = img;
	return 0;
out:
	rs_jit_image_free(&img);
	return err;
}

int rs_fetch_jited(uint32_t prog_id, uint8_t **image, size_t *len,
		   uint64_t **ksyms, size_t *ksym_cnt)
{
	struct rs_jit_image img;
	int fd, err;

	*image = NULL;
	*len = 0;
	*ksyms = NULL;
	*ksym_cnt = 0;
	fd = bpf_prog_get_fd_by_id(prog_id);
	if (fd < 0)
		return errno == ENOENT ? -RS_ERR_NOT_FOUND : -errno;
	err = rs_fetch_jited_fd(fd, &img);
	close(fd);
	if (err == -ENODATA)
		rs_info("prog %u: no JIT image (JIT off or no privilege)\n", prog_id);
	if (err)
		return err;
	free(img.line_addrs);
	*image = img.image;
	*len = img.len;
	*ksyms = img.ksyms;
	*ksym_cnt = img.ksym_cnt;
	return 0;
}
