// SPDX-License-Identifier: BSD-2-Clause
/*
 * load.c - load an rs_prog into the kernel.
 *
 * Map references are in the IDX form of optimizer/ir.h, so the program loads with an fd_array
 * built from prog->maps[] (each map opened by id).  When the program carries BTF func_info the
 * BTF object is opened by id too, so global functions are verified as such and line info
 * survives.  The verifier log goes to the caller's buffer; without one, a failed load is
 * repeated with a private log so the message can name the verifier's complaint.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/agent.h"

#define RS_LOAD_ERR_LOG_SIZE (256 * 1024)

struct load_res {
	int *fds;
	size_t fd_cnt;
	int btf_fd;
	struct bpf_func_info *fi;
	struct bpf_line_info *li;
};

static void load_res_free(struct load_res *r)
{
	size_t i;

	for (i = 0; i < r->fd_cnt; i++)
		if (r->fds[i] >= 0)
			close(r->fds[i]);
	free(r->fds);
	if (r->btf_fd >= 0)
		close(r->btf_fd);
	free(r->fi);
	free(r->li);
}

/*
 * A map respec made itself (id 0 with initial contents, e.g. the optimizer's constant pool):
 * create it, write key 0 and freeze it, so its contents are fixed for the program's life.
 */
static int create_init_map(const struct rs_prog *p, const struct rs_map_ref *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, co, .map_flags = m->flags);
	uint32_t key = 0;
	int fd, err;

	fd = bpf_map_create(m->type, m->name, m->key_size, m->value_size, m->max_entries, &co);
	if (fd < 0) {
		err = -errno;
		rs_warn("prog %s: creating map %s: %s\n", p->name, m->name, rs_strerror(err));
		return err;
	}
	if (bpf_map_update_elem(fd, &key, m->init_value, BPF_ANY) || bpf_map_freeze(fd)) {
		err = -errno;
		rs_warn("prog %s: filling map %s: %s\n", p->name, m->name, rs_strerror(err));
		close(fd);
		return err;
	}
	return fd;
}

static int load_res_get(const struct rs_prog *p, struct load_res *r)
{
	size_t i;

	memset(r, 0, sizeof(*r));
	r->btf_fd = -1;
	if (p->map_cnt) {
		r->fds = malloc(p->map_cnt * sizeof(*r->fds));
		if (!r->fds)
			return -ENOMEM;
		for (i = 0; i < p->map_cnt; i++)
			r->fds[i] = -1;
		r->fd_cnt = p->map_cnt;
	}
	for (i = 0; i < p->map_cnt; i++) {
		if (!p->maps[i].id && p->maps[i].init_value) {
			int fd = create_init_map(p, &p->maps[i]);

			if (fd < 0)
				return fd;
			r->fds[i] = fd;
			continue;
		}
		if (!p->maps[i].id) {
			rs_warn("prog %s: map %zu (%s) has no kernel map id\n", p->name, i,
				p->maps[i].name);
			return -RS_ERR_NOT_FOUND;
		}
		r->fds[i] = bpf_map_get_fd_by_id(p->maps[i].id);
		if (r->fds[i] < 0) {
			int err = errno == ENOENT ? -RS_ERR_NOT_FOUND : -errno;

			rs_warn("prog %s: map id %u (%s): %s\n", p->name, p->maps[i].id,
				p->maps[i].name, rs_strerror(err));
			return err;
		}
	}
	if (p->btf_id && p->func_info_cnt) {
		r->btf_fd = bpf_btf_get_fd_by_id(p->btf_id);
		if (r->btf_fd < 0) {
			int err = -errno;

			rs_warn("prog %s: BTF id %u: %s\n", p->name, p->btf_id, rs_strerror(err));
			return err;
		}
		r->fi = calloc(p->func_info_cnt, sizeof(*r->fi));
		if (!r->fi)
			return -ENOMEM;
		for (i = 0; i < p->func_info_cnt; i++) {
			r->fi[i].insn_off = p->func_info[i].insn_off;
			r->fi[i].type_id = p->func_info[i].type_id;
		}
		if (p->line_info_cnt) {
			r->li = calloc(p->line_info_cnt, sizeof(*r->li));
			if (!r->li)
				return -ENOMEM;
			for (i = 0; i < p->line_info_cnt; i++) {
				r->li[i].insn_off = p->line_info[i].insn_off;
				r->li[i].file_name_off = p->line_info[i].file_name_off;
				r->li[i].line_off = p->line_info[i].line_off;
				r->li[i].line_col = p->line_info[i].line_col;
			}
		}
	}
	return 0;
}

/* The last non-empty line of a verifier log (the complaint). */
static const char *log_tail(char *log)
{
	size_t n = strlen(log);
	char *p;

	while (n && (log[n - 1] == '\n' || log[n - 1] == ' '))
		log[--n] = '\0';
	p = strrchr(log, '\n');
	return p ? p + 1 : log;
}

int rs_prog_load(const struct rs_prog *p, const struct rs_load_opts *opts)
{
	LIBBPF_OPTS(bpf_prog_load_opts, lo);
	struct load_res r;
	char *own_log = NULL;
	int fd, err;

	err = load_res_get(p, &r);
	if (err)
		goto out;

	lo.expected_attach_type = p->expected_attach_type;
	lo.prog_flags = p->prog_flags;
	lo.prog_ifindex = RS_OPTS_GET(opts, prog_ifindex, 0);
	lo.fd_array = r.fds;
	if (r.btf_fd >= 0) {
		lo.prog_btf_fd = r.btf_fd;
		lo.func_info = r.fi;
		lo.func_info_cnt = p->func_info_cnt;
		lo.func_info_rec_size = sizeof(*r.fi);
		if (r.li) {
			lo.line_info = r.li;
			lo.line_info_cnt = p->line_info_cnt;
			lo.line_info_rec_size = sizeof(*r.li);
		}
	}
	lo.log_buf = RS_OPTS_GET(opts, log_buf, NULL);
	lo.log_size = lo.log_buf ? RS_OPTS_GET(opts, log_size, 0) : 0;
	lo.log_level = lo.log_buf ? RS_OPTS_GET(opts, log_level, 0) : 0;
	if (lo.log_buf && !lo.log_level)
		lo.log_level = 1;

	fd = bpf_prog_load(p->type, p->name, p->license[0] ? p->license : "GPL",
			   p->insns, p->insn_cnt, &lo);
	if (fd >= 0) {
		err = fd;
		goto out;
	}
	err = -errno;
	if (!lo.log_buf) {
		/* repeat with a log of our own to say why */
		own_log = calloc(1, RS_LOAD_ERR_LOG_SIZE);
		if (own_log) {
			lo.log_buf = own_log;
			lo.log_size = RS_LOAD_ERR_LOG_SIZE;
			lo.log_level = 1;
			fd = bpf_prog_load(p->type, p->name, p->license[0] ? p->license : "GPL",
					   p->insns, p->insn_cnt, &lo);
			if (fd >= 0) {	/* flaky first failure (EAGAIN): keep it */
				err = fd;
				goto out;
			}
		}
	}
	rs_info("prog %s: load failed: %s%s%s\n", p->name, strerror(-err),
		lo.log_buf && lo.log_buf[0] ? ": " : "",
		lo.log_buf && lo.log_buf[0] ? log_tail(lo.log_buf) : "");
	if (err == -EACCES || err == -EINVAL)
		err = -RS_ERR_VERIFIER;
out:
	free(own_log);
	load_res_free(&r);
	return err;
}
