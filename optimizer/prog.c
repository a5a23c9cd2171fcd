// SPDX-License-Identifier: BSD-2-Clause
/*
 * prog.c - life cycle of struct rs_prog (init, free, deep copy, instruction and map arrays)
 * and the names of program types and program sources.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/ir.h"

void rs_prog_init(struct rs_prog *p)
{
	memset(p, 0, sizeof(*p));
}

void rs_prog_free(struct rs_prog *p)
{
	if (!p)
		return;
	free(p->insns);
	rs_map_refs_free(p->maps, p->map_cnt);
	free(p->func_info);
	free(p->line_info);
	rs_prog_init(p);
}

/* malloc'ed copy of n elements of size sz; NULL result with n == 0 is not an error */
static int dup_array(void **dst, const void *src, size_t n, size_t sz)
{
	*dst = NULL;
	if (!n)
		return 0;
	*dst = malloc(n * sz);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * sz);
	return 0;
}

int rs_prog_copy(struct rs_prog *dst, const struct rs_prog *src)
{
	struct rs_prog tmp = *src;
	int err;

	if (dst == src)
		return 0;
	tmp.insns = NULL;
	tmp.maps = NULL;
	tmp.func_info = NULL;
	tmp.line_info = NULL;
	err = dup_array((void **)&tmp.insns, src->insns, src->insn_cnt, sizeof(*src->insns));
	if (err)
		goto fail;
	tmp.map_cnt = 0;	/* until the copy is complete (rs_prog_free on failure) */
	err = rs_map_refs_dup(&tmp.maps, src->maps, src->map_cnt);
	if (err)
		goto fail;
	tmp.map_cnt = src->map_cnt;
	err = dup_array((void **)&tmp.func_info, src->func_info, src->func_info_cnt,
			sizeof(*src->func_info));
	if (err)
		goto fail;
	err = dup_array((void **)&tmp.line_info, src->line_info, src->line_info_cnt,
			sizeof(*src->line_info));
	if (err)
		goto fail;
	rs_prog_free(dst);
	*dst = tmp;
	return 0;
fail:
	rs_prog_free(&tmp);
	return err;
}

int rs_prog_set_insns(struct rs_prog *p, const struct bpf_insn *insns, size_t cnt)
{
	struct bpf_insn *copy;
	int err;

	err = dup_array((void **)&copy, insns, cnt, sizeof(*insns));
	if (err)
		return err;
	free(p->insns);
	p->insns = copy;
	p->insn_cnt = cnt;
	return 0;
}

int rs_prog_add_map(struct rs_prog *p, const struct rs_map_ref *m)
{
	struct rs_map_ref *maps;
	uint8_t *init = NULL;

	if (p->map_cnt >= INT32_MAX)
		return -E2BIG;
	if (m->init_value) {
		init = malloc(m->value_size ? m->value_size : 1);
		if (!init)
			return -ENOMEM;
		memcpy(init, m->init_value, m->value_size);
	}
	maps = realloc(p->maps, (p->map_cnt + 1) * sizeof(*maps));
	if (!maps) {
		free(init);
		return -ENOMEM;
	}
	maps[p->map_cnt] = *m;
	maps[p->map_cnt].init_value = init;
	p->maps = maps;
	return (int)p->map_cnt++;
}

int rs_map_refs_dup(struct rs_map_ref **dst, const struct rs_map_ref *src, size_t cnt)
{
	struct rs_map_ref *maps;
	size_t i;
	int err;

	err = dup_array((void **)&maps, src, cnt, sizeof(*src));
	if (err)
		return err;
	for (i = 0; i < cnt; i++) {
		if (!src[i].init_value)
			continue;
		maps[i].init_value = malloc(src[i].value_size ? src[i].value_size : 1);
		if (!maps[i].init_value) {
			while (i < cnt)
				maps[i++].init_value = NULL;
			rs_map_refs_free(maps, cnt);
			return -ENOMEM;
		}
		memcpy(maps[i].init_value, src[i].init_value, src[i].value_size);
	}
	*dst = maps;
	return 0;
}

void rs_map_refs_free(struct rs_map_ref *maps, size_t cnt)
{
	size_t i;

	for (i = 0; maps && i < cnt; i++)
		free(maps[i].init_value);
	free(maps);
}

static const char *const prog_type_names[] = {
	[BPF_PROG_TYPE_UNSPEC]			= "unspec",
	[BPF_PROG_TYPE_SOCKET_FILTER]		= "socket_filter",
	[BPF_PROG_TYPE_KPROBE]			= "kprobe",
	[BPF_PROG_TYPE_SCHED_CLS]		= "sched_cls",
	[BPF_PROG_TYPE_SCHED_ACT]		= "sched_act",
	[BPF_PROG_TYPE_TRACEPOINT]		= "tracepoint",
	[BPF_PROG_TYPE_XDP]			= "xdp",
	[BPF_PROG_TYPE_PERF_EVENT]		= "perf_event",
	[BPF_PROG_TYPE_CGROUP_SKB]		= "cgroup_skb",
	[BPF_PROG_TYPE_CGROUP_SOCK]		= "cgroup_sock",
	[BPF_PROG_TYPE_LWT_IN]			= "lwt_in",
	[BPF_PROG_TYPE_LWT_OUT]			= "lwt_out",
	[BPF_PROG_TYPE_LWT_XMIT]		= "lwt_xmit",
	[BPF_PROG_TYPE_SOCK_OPS]		= "sock_ops",
	[BPF_PROG_TYPE_SK_SKB]			= "sk_skb",
	[BPF_PROG_TYPE_CGROUP_DEVICE]		= "cgroup_device",
	[BPF_PROG_TYPE_SK_MSG]			= "sk_msg",
	[BPF_PROG_TYPE_RAW_TRACEPOINT]		= "raw_tracepoint",
	[BPF_PROG_TYPE_CGROUP_SOCK_ADDR]	= "cgroup_sock_addr",
	[BPF_PROG_TYPE_LWT_SEG6LOCAL]		= "lwt_seg6local",
	[BPF_PROG_TYPE_LIRC_MODE2]		= "lirc_mode2",
	[BPF_PROG_TYPE_SK_REUSEPORT]		= "sk_reuseport",
	[BPF_PROG_TYPE_FLOW_DISSECTOR]		= "flow_dissector",
	[BPF_PROG_TYPE_CGROUP_SYSCTL]		= "cgroup_sysctl",
	[BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE]	= "raw_tracepoint_writable",
	[BPF_PROG_TYPE_CGROUP_SOCKOPT]		= "cgroup_sockopt",
	[BPF_PROG_TYPE_TRACING]			= "tracing",
	[BPF_PROG_TYPE_STRUCT_OPS]		= "struct_ops",
	[BPF_PROG_TYPE_EXT]			= "ext",
	[BPF_PROG_TYPE_LSM]			= "lsm",
	[BPF_PROG_TYPE_SK_LOOKUP]		= "sk_lookup",
	[BPF_PROG_TYPE_SYSCALL]			= "syscall",
	[BPF_PROG_TYPE_SYSCALL + 1]		= "netfilter",	/* newer than the 6.1 uapi */
};

const char *rs_prog_type_name(uint32_t type)
{
	if (type < RS_ARRAY_SIZE(prog_type_names) && prog_type_names[type])
		return prog_type_names[type];
	return "unknown";
}

const char *rs_prog_source_name(enum rs_prog_source src)
{
	switch (src) {
	case RS_SRC_NONE:	return "none";
	case RS_SRC_CAPTURE:	return "capture";
	case RS_SRC_LIFT:	return "lift";
	case RS_SRC_OBJECT:	return "object";
	case RS_SRC_BUILD:	return "build";
	}
	return "unknown";
}
