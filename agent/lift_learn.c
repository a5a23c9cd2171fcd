// SPDX-License-Identifier: BSD-2-Clause
/*
 * lift_learn.c - learn the verifier's rewrite patterns on the running kernel.
 *
 * Nothing about the kernel's struct layouts or helper addresses is hard-coded: every pattern
 * comes from a probe program of the target's own type, expected attach type and flags:
 *   - ctx field loads / stores (every offset and size the kernel accepts for the type);
 *   - helper calls: helper id <-> translated imm (func - __bpf_call_base), or the inline
 *     expansion when the verifier inlines the helper;
 *   - map helpers for each of the target's real maps (by id, so inlined lookups carry the
 *     right max_entries / element size / index mask), tail calls with constant and variable
 *     index;
 *   - division / modulo by a register (the zero checks the verifier adds);
 *   - the TC direct-write prologue.
 * Helpers the table below does not cover are resolved at match time from /proc/kallsyms names
 * (lift_match.c); the proof decides whether the guess was right.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include "agent/lift.h"

#define STACK_ZERO	256	/* bytes of stack zeroed by helper probes */
#define BUF_A		(-128)	/* helper buffer "p" */
#define BUF_B		(-256)	/* helper buffer "q" (also map keys) */

/* ---- ctx fields ------------------------------------------------------------------------- */

struct ctx_probe {
	int off;
	int size;		/* BPF_B / BPF_H / BPF_W / BPF_DW */
	bool store;
};

static size_t build_ctx(void *c, uint8_t d, uint8_t s, struct bpf_insn *in, size_t *site,
			struct bpf_insn *orig)
{
	const struct ctx_probe *cp = c;
	size_t n = 0;

	if (!cp->store) {
		/* r_s = ctx; r_d = *(size *)(r_s + off) */
		in[n++] = RS_MOV64_REG(s, 1);
		*site = n;
		in[n++] = *orig = RS_LDX(cp->size, d, s, cp->off);
	} else {
		/* r_d = ctx; r_s = 0; *(size *)(r_d + off) = r_s */
		in[n++] = RS_MOV64_REG(d, 1);
		in[n++] = RS_MOV64_IMM(s, 0);
		*site = n;
		in[n++] = *orig = RS_STX(cp->size, d, s, cp->off);
	}
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	return n;
}

static int size_bytes(int sz)
{
	return sz == BPF_B ? 1 : sz == BPF_H ? 2 : sz == BPF_W ? 4 : 8;
}

static int learn_ctx(const struct rs_prog *t, struct rs_patterns *ps)
{
	static const int sizes[] = { BPF_W, BPF_DW, BPF_H, BPF_B };
	const uint8_t load_regs[4] = { 2, 4, 3, 5 };	/* (dst, src) pairs */
	const uint8_t store_regs[4] = { 4, 2, 5, 3 };	/* (ctx, value) pairs */
	size_t ctx_size, k;
	int off, err, n = 0;

	ctx_size = t->type == BPF_PROG_TYPE_XDP ? sizeof(struct xdp_md) : sizeof(struct __sk_buff);
	for (k = 0; k < RS_ARRAY_SIZE(sizes); k++) {
		int sz = size_bytes(sizes[k]);

		for (off = 0; off + sz <= (int)ctx_size; off += sz) {
			struct ctx_probe cp = { .off = off, .size = sizes[k] };
			char name[48];

			snprintf(name, sizeof(name), "ctx load u%d +%d", sz * 8, off);
			err = rs_probe_site(t, build_ctx, &cp, load_regs, 6, NULL, 0, RS_PAT_CTX,
					    name, ps);
			if (err == -ENOMEM)
				return err;
			if (err > 0)
				n++;
			cp.store = true;
			snprintf(name, sizeof(name), "ctx store u%d +%d", sz * 8, off);
			err = rs_probe_site(t, build_ctx, &cp, store_regs, -1, NULL, 0, RS_PAT_CTX,
					    name, ps);
			if (err == -ENOMEM)
				return err;
			if (err > 0)
				n++;
		}
	}
	rs_debug("lift: %s: %d ctx access patterns\n", rs_prog_type_name(t->type), n);
	return n ? 0 : -ENOENT;
}

/* ---- helpers ---------------------------------------------------------------------------- */

/*
 * Argument kinds: c ctx, 0 zero, p/q stack buffers (zeroed), s size 8, F size 64,
 * m the map under probe, k pointer to a zeroed key, v pointer to a zeroed value,
 * r an unknown scalar (result of bpf_get_prandom_u32, loaded before the arguments).
 */
struct helper_desc {
	int id;
	const char *args;
};

static const struct helper_desc helpers[] = {
	{ BPF_FUNC_get_prandom_u32, "" },
	{ BPF_FUNC_get_smp_processor_id, "" },
	{ BPF_FUNC_get_numa_node_id, "" },
	{ BPF_FUNC_ktime_get_ns, "" },
	{ BPF_FUNC_ktime_get_boot_ns, "" },
	{ BPF_FUNC_ktime_get_coarse_ns, "" },
	{ BPF_FUNC_jiffies64, "" },
	{ BPF_FUNC_csum_diff, "psqs0" },
	{ BPF_FUNC_redirect, "00" },
	{ BPF_FUNC_fib_lookup, "cpF0" },
	{ BPF_FUNC_check_mtu, "c0p00" },
	{ BPF_FUNC_xdp_adjust_head, "c0" },
	{ BPF_FUNC_xdp_adjust_meta, "c0" },
	{ BPF_FUNC_xdp_adjust_tail, "c0" },
	{ BPF_FUNC_xdp_get_buff_len, "c" },
	{ BPF_FUNC_xdp_load_bytes, "c0ps" },
	{ BPF_FUNC_xdp_store_bytes, "c0ps" },
	{ BPF_FUNC_skb_load_bytes, "c0ps" },
	{ BPF_FUNC_skb_load_bytes_relative, "c0ps0" },
	{ BPF_FUNC_skb_store_bytes, "c0ps0" },
	{ BPF_FUNC_l3_csum_replace, "c0000" },
	{ BPF_FUNC_l4_csum_replace, "c0000" },
	{ BPF_FUNC_clone_redirect, "c00" },
	{ BPF_FUNC_get_cgroup_classid, "c" },
	{ BPF_FUNC_skb_vlan_push, "c00" },
	{ BPF_FUNC_skb_vlan_pop, "c" },
	{ BPF_FUNC_skb_get_tunnel_key, "cps0" },
	{ BPF_FUNC_skb_set_tunnel_key, "cps0" },
	{ BPF_FUNC_skb_get_tunnel_opt, "cps" },
	{ BPF_FUNC_skb_set_tunnel_opt, "cps" },
	{ BPF_FUNC_get_route_realm, "c" },
	{ BPF_FUNC_get_hash_recalc, "c" },
	{ BPF_FUNC_set_hash_invalid, "c" },
	{ BPF_FUNC_set_hash, "c0" },
	{ BPF_FUNC_skb_change_proto, "c00" },
	{ BPF_FUNC_skb_change_type, "c0" },
	{ BPF_FUNC_skb_change_tail, "c00" },
	{ BPF_FUNC_skb_change_head, "c00" },
	{ BPF_FUNC_skb_pull_data, "c0" },
	{ BPF_FUNC_skb_adjust_room, "c000" },
	{ BPF_FUNC_csum_update, "c0" },
	{ BPF_FUNC_csum_level, "c0" },
	{ BPF_FUNC_get_socket_cookie, "c" },
	{ BPF_FUNC_get_socket_uid, "c" },
	{ BPF_FUNC_skb_cgroup_id, "c" },
	{ BPF_FUNC_skb_ancestor_cgroup_id, "c0" },
	{ BPF_FUNC_skb_ecn_set_ce, "c" },
	{ BPF_FUNC_skb_get_xfrm_state, "c0ps0" },
	{ BPF_FUNC_redirect_neigh, "0000" },
	{ BPF_FUNC_redirect_peer, "00" },
	{ BPF_FUNC_skb_set_tstamp, "c00" },
	{ BPF_FUNC_probe_read_kernel, "ps0" },
	{ BPF_FUNC_probe_read_kernel_str, "ps0" },
	{ BPF_FUNC_get_current_pid_tgid, "" },
	{ BPF_FUNC_ktime_get_tai_ns, "" },
};

/* Helpers that take the map under probe. */
static const struct helper_desc map_helpers[] = {
	{ BPF_FUNC_map_lookup_elem, "mk" },
	{ BPF_FUNC_map_update_elem, "mkv0" },
	{ BPF_FUNC_map_delete_elem, "mk" },
	{ BPF_FUNC_map_push_elem, "mv0" },
	{ BPF_FUNC_map_pop_elem, "mv" },
	{ BPF_FUNC_map_peek_elem, "mv" },
	{ BPF_FUNC_redirect_map, "m00" },
	{ BPF_FUNC_redirect_map, "mr0" },
	{ BPF_FUNC_map_lookup_percpu_elem, "mk0" },
	{ BPF_FUNC_map_lookup_percpu_elem, "mkr" },
	{ BPF_FUNC_perf_event_output, "cm0ps" },
	{ BPF_FUNC_ringbuf_output, "mps0" },
	{ BPF_FUNC_skb_under_cgroup, "cm0" },
	{ BPF_FUNC_tail_call, "cm0" },
	{ BPF_FUNC_tail_call, "cmr" },
};

/* Build a probe calling helper `id` with `args`; returns the length and sets *site. */
static size_t build_call(const char *args, int id, const struct rs_map_ref *m,
			 struct bpf_insn *in, size_t *site)
{
	size_t n = 0, a;
	int off;

	in[n++] = RS_MOV64_REG(6, 1);
	for (off = -STACK_ZERO; off < 0; off += 8)
		in[n++] = RS_ST(BPF_DW, RS_REG_FP, off, 0);
	if (strchr(args, 'r')) {
		in[n++] = RS_CALL(BPF_FUNC_get_prandom_u32);
		in[n++] = RS_MOV64_REG(7, 0);
	}
	for (a = 0; args[a]; a++) {
		uint8_t r = (uint8_t)(a + 1);

		switch (args[a]) {
		case 'c':
			in[n++] = RS_MOV64_REG(r, 6);
			break;
		case '0':
			in[n++] = RS_MOV64_IMM(r, 0);
			break;
		case 'r':
			in[n++] = RS_MOV64_REG(r, 7);
			break;
		case 'p':
		case 'v':
			in[n++] = RS_MOV64_REG(r, RS_REG_FP);
			in[n++] = RS_ALU64_IMM(BPF_ADD, r, BUF_A);
			break;
		case 'q':
		case 'k':
			in[n++] = RS_MOV64_REG(r, RS_REG_FP);
			in[n++] = RS_ALU64_IMM(BPF_ADD, r, BUF_B);
			break;
		case 's':
			in[n++] = RS_MOV64_IMM(r, 8);
			break;
		case 'F':
			in[n++] = RS_MOV64_IMM(r, 64);
			break;
		case 'm':
			in[n++] = RS_I(BPF_LD | BPF_IMM | BPF_DW, r, BPF_PSEUDO_MAP_IDX, 0, 0);
			in[n++] = RS_I(0, 0, 0, 0, 0);
			break;
		}
	}
	(void)m;
	*site = n;
	in[n++] = RS_CALL(id);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	return n;
}

/* Probe one helper call; record its imm or its inline expansion. */
static int probe_call(const struct rs_prog *t, const struct helper_desc *h,
		      const struct rs_map_ref *m, int map_fd, struct rs_patterns *ps)
{
	struct bpf_insn in[RS_MAX_PROBE], *xl = NULL;
	const char *hname = rs_helper_name(h->id);
	size_t n, site, xl_cnt;
	struct rs_pattern pat;
	int err;

	n = build_call(h->args, h->id, m, in, &site);
	err = rs_probe_expansion(t, in, n, site, 2, map_fd >= 0 ? &map_fd : NULL,
				 map_fd >= 0 ? 1 : 0, &xl, &xl_cnt);
	if (err)
		return err;
	if (xl_cnt == 1 && rs_insn_is_helper_call(&xl[0])) {
		if (xl[0].imm != h->id)
			err = rs_patterns_add_helper(ps, xl[0].imm, h->id, hname);
		free(xl);
		return err;
	}
	memset(&pat, 0, sizeof(pat));
	pat.kind = RS_PAT_EXPAND;
	if (m)
		snprintf(pat.name, sizeof(pat.name), "%s map %u (%.15s)",
			 hname ? hname : "helper", m->id, m->name);
	else
		snprintf(pat.name, sizeof(pat.name), "inlined %s", hname ? hname : "helper");
	pat.orig = RS_CALL(h->id);
	pat.xl = xl;
	pat.xl_cnt = xl_cnt;
	err = rs_patterns_add(ps, &pat);
	/* the call the expansion ends in (if any) is a plain helper call of its own */
	free(xl);
	return err;
}

static int learn_helpers(const struct rs_prog *t, struct rs_patterns *ps)
{
	size_t i;
	int err, ok = 0;

	for (i = 0; i < RS_ARRAY_SIZE(helpers); i++) {
		err = probe_call(t, &helpers[i], NULL, -1, ps);
		if (err == -ENOMEM)
			return err;
		if (!err)
			ok++;
	}
	rs_debug("lift: %s: %d of %zu table helpers probed\n", rs_prog_type_name(t->type), ok,
		 RS_ARRAY_SIZE(helpers));
	return ok ? 0 : -ENOENT;
}

static int learn_inner(const struct rs_prog *t, const struct rs_map_ref *m, int fd,
		       struct rs_patterns *ps);

static int learn_map(const struct rs_prog *t, const struct rs_map_ref *m, struct rs_patterns *ps)
{
	size_t i;
	int fd, err = 0, ok = 0;

	fd = bpf_map_get_fd_by_id(m->id);
	if (fd < 0) {
		err = -errno;
		rs_warn("prog %u (%s): map id %u: %s\n", t->id, t->name, m->id, rs_strerror(err));
		return err;
	}
	for (i = 0; i < RS_ARRAY_SIZE(map_helpers); i++) {
		const struct helper_desc *h = &map_helpers[i];

		if (strchr(h->args, 'k') && m->key_size > -BUF_A)
			continue;
		if (strchr(h->args, 'v') && m->value_size > -BUF_A)
			continue;
		err = probe_call(t, h, m, fd, ps);
		if (err == -ENOMEM)
			break;
		if (!err)
			ok++;
		err = 0;
	}
	if (!err && (m->type == BPF_MAP_TYPE_ARRAY_OF_MAPS || m->type == BPF_MAP_TYPE_HASH_OF_MAPS))
		err = learn_inner(t, m, fd, ps);
	close(fd);
	rs_debug("prog %u (%s): map %u (%s, type %u): %d helper forms probed\n", t->id, t->name,
		 m->id, m->name, m->type, ok);
	return err;
}

/* ---- inner maps of map-in-map ------------------------------------------------------------ */

/*
 * Probe a helper on the inner map of an outer map-in-map: the outer lookup is part of the
 * prefix, whose translation is measured with a baseline probe that stops before the site.
 */
static size_t build_inner(const char *args, int id, bool site, struct bpf_insn *in)
{
	size_t n = 0, a;
	int off;

	for (off = -STACK_ZERO; off < 0; off += 8)
		in[n++] = RS_ST(BPF_DW, RS_REG_FP, off, 0);
	in[n++] = RS_I(BPF_LD | BPF_IMM | BPF_DW, 1, BPF_PSEUDO_MAP_IDX, 0, 0);
	in[n++] = RS_I(0, 0, 0, 0, 0);
	in[n++] = RS_MOV64_REG(2, RS_REG_FP);
	in[n++] = RS_ALU64_IMM(BPF_ADD, 2, BUF_B);
	in[n++] = RS_CALL(BPF_FUNC_map_lookup_elem);
	in[n++] = RS_I(BPF_JMP | BPF_JNE | BPF_K, 0, 0, 2, 0);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	in[n++] = RS_MOV64_REG(1, 0);
	for (a = 1; args[a]; a++) {
		uint8_t r = (uint8_t)(a + 1);

		if (args[a] == '0') {
			in[n++] = RS_MOV64_IMM(r, 0);
		} else {
			in[n++] = RS_MOV64_REG(r, RS_REG_FP);
			in[n++] = RS_ALU64_IMM(BPF_ADD, r, args[a] == 'k' ? BUF_B : BUF_A);
		}
	}
	if (site)
		in[n++] = RS_CALL(id);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	return n;
}

static int learn_inner(const struct rs_prog *t, const struct rs_map_ref *m, int fd,
		       struct rs_patterns *ps)
{
	static const struct helper_desc inner_helpers[] = {
		{ BPF_FUNC_map_lookup_elem, "mk" },
		{ BPF_FUNC_map_update_elem, "mkv0" },
		{ BPF_FUNC_map_delete_elem, "mk" },
	};
	struct bpf_insn in[RS_MAX_PROBE], *xb = NULL, *xs = NULL;
	size_t i, n, nb, ns;
	int pfd, err = 0;

	for (i = 0; i < RS_ARRAY_SIZE(inner_helpers); i++) {
		const struct helper_desc *h = &inner_helpers[i];
		struct rs_pattern pat;

		n = build_inner(h->args, h->id, false, in);
		pfd = rs_probe_load(t, in, n, &fd, 1);
		if (pfd < 0)
			continue;
		err = rs_probe_xlated(pfd, &xb, &nb);
		close(pfd);
		if (err)
			break;
		n = build_inner(h->args, h->id, true, in);
		pfd = rs_probe_load(t, in, n, &fd, 1);
		if (pfd >= 0) {
			err = rs_probe_xlated(pfd, &xs, &ns);
			close(pfd);
			if (err)
				break;
			if (ns > nb && ns - nb <= RS_MAX_EXPANSION) {
				memset(&pat, 0, sizeof(pat));
				pat.kind = RS_PAT_EXPAND;
				snprintf(pat.name, sizeof(pat.name), "%s inner map of %u",
					 rs_helper_name(h->id) ? rs_helper_name(h->id) : "helper",
					 m->id);
				pat.orig = RS_CALL(h->id);
				pat.xl = xs + nb - 2;
				pat.xl_cnt = ns - nb;
				if (pat.xl_cnt == 1 && rs_insn_is_helper_call(pat.xl))
					err = rs_patterns_add_helper(ps, pat.xl->imm, h->id,
								     rs_helper_name(h->id));
				else
					err = rs_patterns_add(ps, &pat);
			}
		}
		free(xb);
		free(xs);
		xb = xs = NULL;
		if (err)
			break;
	}
	free(xb);
	free(xs);
	return err;
}

/* ---- inlined bpf_loop ------------------------------------------------------------------------ */

/* Load a probe with two functions (main at 0, callback at cb_off): callbacks need BTF. */
static int load_with_btf_funcs(const struct rs_prog *t, const struct bpf_insn *in, size_t n,
			       uint32_t cb_off, struct bpf_insn **xl, size_t *xl_cnt)
{
	LIBBPF_OPTS(bpf_prog_load_opts, lo);
	struct bpf_func_info fi[2];
	struct btf *btf;
	int int_id, proto, f0, f1, fd, err;

	*xl = NULL;
	btf = btf__new_empty();
	if (!btf)
		return -errno;
	int_id = btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	proto = btf__add_func_proto(btf, int_id);
	f0 = btf__add_func(btf, "rs_probe", BTF_FUNC_GLOBAL, proto);
	f1 = btf__add_func(btf, "rs_probe_cb", BTF_FUNC_STATIC, proto);
	if (int_id < 0 || proto < 0 || f0 < 0 || f1 < 0) {
		err = -EINVAL;
		goto out;
	}
	err = btf__load_into_kernel(btf);
	if (err)
		goto out;
	fi[0].insn_off = 0;
	fi[0].type_id = f0;
	fi[1].insn_off = cb_off;
	fi[1].type_id = f1;
	lo.expected_attach_type = t->expected_attach_type;
	lo.prog_flags = t->prog_flags;
	lo.prog_btf_fd = btf__fd(btf);
	lo.func_info = fi;
	lo.func_info_cnt = 2;
	lo.func_info_rec_size = sizeof(fi[0]);
	fd = bpf_prog_load(t->type, "rs_probe", "GPL", in, n, &lo);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = rs_probe_xlated(fd, xl, xl_cnt);
	close(fd);
out:
	btf__free(btf);
	return err;
}

/*
 * bpf_loop with a known callback and flags 0 is inlined as a counted loop calling the callback
 * subprogram; its spill slots depend on the frame's stack depth, so the pattern is loose
 * (see struct rs_pattern).
 */
static int learn_bpf_loop(const struct rs_prog *t, struct rs_patterns *ps)
{
	struct bpf_insn in[12], *xl = NULL;
	struct rs_pattern pat;
	size_t n = 0, xl_cnt;
	int err;

	in[n++] = RS_MOV64_IMM(1, 4);
	in[n++] = RS_I(BPF_LD | BPF_IMM | BPF_DW, 2, BPF_PSEUDO_FUNC, 0, 6);
	in[n++] = RS_I(0, 0, 0, 0, 0);
	in[n++] = RS_MOV64_IMM(3, 0);
	in[n++] = RS_MOV64_IMM(4, 0);
	in[n++] = RS_CALL(BPF_FUNC_loop);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	in[n++] = RS_MOV64_IMM(0, 0);	/* callback */
	in[n++] = RS_EXIT();
	err = load_with_btf_funcs(t, in, n, 8, &xl, &xl_cnt);
	if (!err && xl_cnt > 9) {
		/* expansion = xlated[5, end - 4) */
		memmove(xl, xl + 5, (xl_cnt - 9) * sizeof(*xl));
		xl_cnt -= 9;
	} else if (!err) {
		err = -ERANGE;
	}
	if (err) {
		rs_debug("lift: bpf_loop probe: %s\n", rs_strerror(err));
		free(xl);
		return 0;	/* no bpf_loop here */
	}
	if (xl_cnt > 1) {
		memset(&pat, 0, sizeof(pat));
		pat.kind = RS_PAT_EXPAND;
		snprintf(pat.name, sizeof(pat.name), "inlined loop");
		pat.orig = RS_CALL(BPF_FUNC_loop);
		pat.xl = xl;
		pat.xl_cnt = xl_cnt;
		pat.loose = true;
		err = rs_patterns_add(ps, &pat);
	} else if (rs_insn_is_helper_call(xl) && xl->imm != BPF_FUNC_loop) {
		err = rs_patterns_add_helper(ps, xl->imm, BPF_FUNC_loop, "loop");
	}
	free(xl);
	return err;
}

/* ---- division / modulo by register -------------------------------------------------------- */

struct alu_probe {
	uint8_t code;
	int16_t off;
};

static size_t build_alu(void *c, uint8_t d, uint8_t s, struct bpf_insn *in, size_t *site,
			struct bpf_insn *orig)
{
	const struct alu_probe *ap = c;
	size_t n = 0;

	in[n++] = RS_CALL(BPF_FUNC_get_prandom_u32);
	in[n++] = RS_MOV64_REG(d, 0);
	in[n++] = RS_CALL(BPF_FUNC_get_prandom_u32);
	in[n++] = RS_MOV64_REG(s, 0);
	*site = n;
	in[n++] = *orig = RS_I(ap->code, d, s, ap->off, 0);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	return n;
}

static int learn_divmod(const struct rs_prog *t, struct rs_patterns *ps)
{
	static const uint8_t classes[] = { BPF_ALU64, BPF_ALU };
	static const uint8_t ops[] = { BPF_DIV, BPF_MOD };
	const uint8_t regs[4] = { 6, 7, 8, 9 };
	size_t c, o;
	int16_t sgn;
	int err;

	for (c = 0; c < RS_ARRAY_SIZE(classes); c++)
		for (o = 0; o < RS_ARRAY_SIZE(ops); o++)
			for (sgn = 0; sgn <= 1; sgn++) {
				struct alu_probe ap = {
					.code = classes[c] | ops[o] | BPF_X, .off = sgn,
				};
				char name[48];

				snprintf(name, sizeof(name), "%s%s%s by register",
					 sgn ? "s" : "", ops[o] == BPF_DIV ? "div" : "mod",
					 classes[c] == BPF_ALU64 ? "64" : "32");
				err = rs_probe_site(t, build_alu, &ap, regs, 6, NULL, 0,
						    RS_PAT_EXPAND, name, ps);
				if (err == -ENOMEM)
					return err;
			}
	return 0;
}

/* ---- TC direct packet write prologue ----------------------------------------------------- */

static size_t build_pkt(struct bpf_insn *in, bool write)
{
	size_t n = 0;

	in[n++] = RS_MOV64_REG(6, 1);
	in[n++] = RS_LDX(BPF_W, 2, 6, offsetof(struct __sk_buff, data));
	in[n++] = RS_LDX(BPF_W, 3, 6, offsetof(struct __sk_buff, data_end));
	in[n++] = RS_MOV64_REG(4, 2);
	in[n++] = RS_ALU64_IMM(BPF_ADD, 4, 1);
	in[n++] = RS_I(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 1, 0);
	if (write)
		in[n++] = RS_ST(BPF_B, 2, 0, 0);
	else
		in[n++] = RS_LDX(BPF_B, 5, 2, 0);
	in[n++] = RS_MOV64_IMM(0, 0);
	in[n++] = RS_EXIT();
	return n;
}

static int learn_prologue(const struct rs_prog *t, struct rs_patterns *ps)
{
	struct bpf_insn in[16], *xw = NULL, *xr = NULL;
	size_t n, nw, nr;
	struct rs_pattern pat;
	int fd, err;

	if (t->type != BPF_PROG_TYPE_SCHED_CLS && t->type != BPF_PROG_TYPE_SCHED_ACT)
		return 0;
	n = build_pkt(in, true);
	fd = rs_probe_load(t, in, n, NULL, 0);
	if (fd < 0)
		return fd;
	err = rs_probe_xlated(fd, &xw, &nw);
	close(fd);
	if (err)
		return err;
	n = build_pkt(in, false);
	fd = rs_probe_load(t, in, n, NULL, 0);
	if (fd < 0) {
		err = fd;
		goto out;
	}
	err = rs_probe_xlated(fd, &xr, &nr);
	close(fd);
	if (err)
		goto out;
	if (nw <= nr)
		goto out;	/* no prologue on this kernel */
	memset(&pat, 0, sizeof(pat));
	pat.kind = RS_PAT_PROLOGUE;
	snprintf(pat.name, sizeof(pat.name), "direct write prologue");
	pat.xl = xw;
	pat.xl_cnt = nw - nr;
	err = rs_patterns_add(ps, &pat);
out:
	free(xw);
	free(xr);
	return err;
}

int rs_lift_learn(const struct rs_prog *target, struct rs_patterns *ps)
{
	size_t i;
	int err;

	memset(ps, 0, sizeof(*ps));
	err = learn_ctx(target, ps);
	if (err) {
		rs_warn("prog %u (%s): no ctx access probe loads (%s): cannot learn patterns\n",
			target->id, target->name, rs_strerror(err));
		goto fail;
	}
	err = learn_helpers(target, ps);
	if (err)
		goto fail;
	for (i = 0; i < target->map_cnt; i++) {
		err = learn_map(target, &target->maps[i], ps);
		if (err)
			goto fail;
	}
	err = learn_divmod(target, ps);
	if (!err)
		err = learn_bpf_loop(target, ps);
	if (err)
		goto fail;
	err = learn_prologue(target, ps);
	if (err)
		rs_info("prog %u (%s): prologue probe: %s\n", target->id, target->name,
			rs_strerror(err));
	rs_debug("prog %u (%s): %zu patterns, %zu helper imms learned\n", target->id, target->name,
		 ps->pat_cnt, ps->helper_cnt);
	for (i = 0; i < ps->pat_cnt; i++) {
		char b[96];
		size_t k;

		rs_debug("  pattern '%s'%s%s:\n", ps->pats[i].name,
			 ps->pats[i].need_same ? " (dst == src)" : "",
			 ps->pats[i].need_diff ? " (dst != src)" : "");
		for (k = 0; k < ps->pats[i].xl_cnt; k++) {
			rs_insn_snprint(b, sizeof(b), ps->pats[i].xl, ps->pats[i].xl_cnt, k);
			rs_debug("    %s\n", b);
		}
	}
	return 0;
fail:
	rs_patterns_free(ps);
	return err;
}
