// SPDX-License-Identifier: BSD-2-Clause
/*
 * analysis.c - soundness facts (DESIGN.md §3): what may be assumed about each map and each
 * map_lookup_elem site of a program.
 *
 * Two abstract interpretations over the CFG of every subprogram:
 *  1. registers as { unknown, map pointer (index), frame pointer + const }, plus the set of
 *     stack bytes written on every path (a must-set): which map a helper call gets in r1,
 *     whether a lookup key is a stack buffer at a fixed offset whose bytes were written;
 *  2. per lookup site, the registers and 8-byte stack slots that may hold the value pointer
 *     returned there (a may-set: copies, pointer arithmetic, spills and fills).  A store
 *     through it is a write; passing it to a helper (other than as a key / value to read), to
 *     a subprogram, storing it to memory or returning it is an escape.  Either makes the site
 *     not read-only and the map's values unstable.
 * Map levels combine the program's own writes (update/delete/push/pop helpers, stores through
 * lookups, for_each callbacks, lookups this analysis does not follow) with the snapshot's
 * facts about the rest of the system (ext_writers, watched, frozen, mmap-able).
 * A helper call whose map argument is not a known map counts against every map.  Pure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimizer/pass.h"

#ifndef BPF_F_MMAPABLE
#define BPF_F_MMAPABLE		(1U << 10)
#endif

enum vkind { V_UNK, V_MAP, V_FP };

struct aval {
	uint8_t k;
	int32_t v;		/* map index or frame offset */
};

#define STACK_BYTES 512

struct astate {
	struct aval r[RS_MAX_REG];
	uint64_t written[STACK_BYTES / 64];	/* bit b: byte fp-512+b written on every path */
	bool reached;
};

/* per map (index map_cnt = "unknown map") what this program does to it */
struct mwrites {
	long upd_insn;		/* update/delete/push/pop helper, -1 none */
	long store_insn;	/* store / escape through a lookup value, or for_each etc. */
	char store_why[96];
	long other_insn;	/* passed to a helper we do not model */
	int other_helper;
};

struct an {
	const struct rs_prog *p;
	struct rs_cfg cfg;
	struct astate *in;		/* per block */
	struct aval (*pre)[RS_MAX_REG];	/* per instruction: registers before it */
	rs_regmask_t *live;		/* liveness (callee arguments) */
	struct mwrites *mw;		/* map_cnt + 1 */
	struct rs_site_fact *sites;
	long *site_map;			/* per site: map index or -1 unknown */
	size_t site_cnt, site_cap;
};

/* ---- helpers' arguments ------------------------------------------------------------------ */

static int helper_args(int32_t id)
{
	switch (id) {
	case BPF_FUNC_ktime_get_ns:
	case BPF_FUNC_get_prandom_u32:
	case BPF_FUNC_get_smp_processor_id:
	case BPF_FUNC_ktime_get_boot_ns:
	case BPF_FUNC_jiffies64:
	case BPF_FUNC_ktime_get_coarse_ns:
	case BPF_FUNC_get_numa_node_id:
		return 0;
	case BPF_FUNC_get_hash_recalc:
	case BPF_FUNC_get_cgroup_classid:
	case BPF_FUNC_get_route_realm:
	case BPF_FUNC_skb_vlan_pop:
		return 1;
	case BPF_FUNC_map_lookup_elem:
	case BPF_FUNC_map_delete_elem:
	case BPF_FUNC_redirect:
	case BPF_FUNC_xdp_adjust_head:
	case BPF_FUNC_xdp_adjust_tail:
	case BPF_FUNC_xdp_adjust_meta:
	case BPF_FUNC_map_pop_elem:
	case BPF_FUNC_map_peek_elem:
	case BPF_FUNC_skb_change_type:
	case BPF_FUNC_set_hash:
		return 2;
	case BPF_FUNC_tail_call:
	case BPF_FUNC_redirect_map:
	case BPF_FUNC_map_push_elem:
	case BPF_FUNC_skb_vlan_push:
	case BPF_FUNC_skb_change_proto:
	case BPF_FUNC_skb_change_tail:
	case BPF_FUNC_skb_change_head:
		return 3;
	case BPF_FUNC_map_update_elem:
	case BPF_FUNC_fib_lookup:
	case BPF_FUNC_skb_load_bytes:
	case BPF_FUNC_xdp_load_bytes:
	case BPF_FUNC_xdp_store_bytes:
	case BPF_FUNC_redirect_neigh:
	case BPF_FUNC_loop:
	case BPF_FUNC_for_each_map_elem:
		return 4;
	default:
		return 5;
	}
}

/* argument `a` (1..5) of helper `id` is only read by the kernel (key / value to copy) */
static bool helper_arg_readonly(int32_t id, int a)
{
	switch (id) {
	case BPF_FUNC_map_lookup_elem:
	case BPF_FUNC_map_delete_elem:
		return a == 2;
	case BPF_FUNC_map_update_elem:
		return a == 2 || a == 3;
	case BPF_FUNC_map_push_elem:
		return a == 2;
	default:
		return false;
	}
}

/* helpers that run BPF code with a pointer the program passes (callback context) */
static bool helper_has_callback(int32_t id)
{
	switch (id) {
	case BPF_FUNC_loop:
	case BPF_FUNC_for_each_map_elem:
	case BPF_FUNC_find_vma:
	case BPF_FUNC_user_ringbuf_drain:
	case BPF_FUNC_timer_set_callback:
		return true;
	default:
		return id > BPF_FUNC_user_ringbuf_drain;	/* newer than the table: assume so */
	}
}

/* ---- interpretation 1: map pointers, frame offsets, written stack bytes ------------------ */

static void mark_written(struct astate *s, long off, long size)
{
	long b;

	for (b = off; b < off + size; b++)
		if (b >= -STACK_BYTES && b < 0)
			s->written[(b + STACK_BYTES) / 64] |= 1ULL << ((b + STACK_BYTES) % 64);
}

static bool all_written(const struct astate *s, long off, long size)
{
	long b;

	for (b = off; b < off + size; b++) {
		if (b < -STACK_BYTES || b >= 0)
			return false;
		if (!(s->written[(b + STACK_BYTES) / 64] & (1ULL << ((b + STACK_BYTES) % 64))))
			return false;
	}
	return true;
}

static long mem_size(const struct bpf_insn *in)
{
	switch (BPF_SIZE(in->code)) {
	case BPF_B:
		return 1;
	case BPF_H:
		return 2;
	case BPF_W:
		return 4;
	default:
		return 8;
	}
}

static void transfer1(struct astate *s, const struct bpf_insn *in)
{
	uint8_t cls = BPF_CLASS(in->code), d = in->dst_reg, sr = in->src_reg;
	struct aval unk = { V_UNK, 0 };
	int r;

	if (rs_insn_is_ldimm64(in)) {
		s->r[d] = sr == BPF_PSEUDO_MAP_IDX ? (struct aval){ V_MAP, in->imm } : unk;
	} else if (cls == BPF_ALU64 && d < RS_REG_FP) {
		uint8_t op = BPF_OP(in->code);

		if (op == BPF_MOV && BPF_SRC(in->code) == BPF_X && in->off == 0)
			s->r[d] = s->r[sr];
		else if ((op == BPF_ADD || op == BPF_SUB) && BPF_SRC(in->code) == BPF_K &&
			 s->r[d].k == V_FP)
			s->r[d].v += op == BPF_ADD ? in->imm : -in->imm;
		else
			s->r[d] = unk;
	} else if (cls == BPF_ALU && d < RS_REG_FP) {
		s->r[d] = unk;
	} else if (cls == BPF_LDX && d < RS_REG_FP) {
		s->r[d] = unk;
	} else if (cls == BPF_ST || cls == BPF_STX) {
		if (s->r[d].k == V_FP && (cls == BPF_ST || BPF_MODE(in->code) == BPF_MEM))
			mark_written(s, s->r[d].v + in->off, mem_size(in));
		if (cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC) {
			if (in->imm & BPF_FETCH)
				s->r[sr] = unk;
			if (in->imm == BPF_CMPXCHG)
				s->r[0] = unk;
		}
	} else if ((cls == BPF_JMP || cls == BPF_JMP32) && BPF_OP(in->code) == BPF_CALL) {
		for (r = 0; r <= 5; r++)
			s->r[r] = unk;
	} else if (cls == BPF_LD) {		/* LD_ABS / LD_IND */
		for (r = 0; r <= 5; r++)
			s->r[r] = unk;
	}
	s->r[RS_REG_FP] = (struct aval){ V_FP, 0 };
}

static bool join1(struct astate *dst, const struct astate *src)
{
	bool changed = false;
	size_t i;

	if (!src->reached)
		return false;
	if (!dst->reached) {
		*dst = *src;
		return true;
	}
	for (i = 0; i < RS_MAX_REG; i++) {
		if (dst->r[i].k != V_UNK &&
		    (dst->r[i].k != src->r[i].k || dst->r[i].v != src->r[i].v)) {
			dst->r[i].k = V_UNK;
			changed = true;
		}
	}
	for (i = 0; i < RS_ARRAY_SIZE(dst->written); i++) {
		uint64_t w = dst->written[i] & src->written[i];

		changed |= w != dst->written[i];
		dst->written[i] = w;
	}
	return changed;
}

/* run the block from its in-state; pre-states recorded when `pre` is set */
static void run_block1(struct an *a, int b, struct astate *s, bool record)
{
	const struct rs_bb *bb = &a->cfg.bbs[b];
	size_t i;

	*s = a->in[b];
	for (i = bb->start; i < bb->end; i += rs_insn_width(&a->p->insns[i])) {
		if (record)
			memcpy(a->pre[i], s->r, sizeof(s->r));
		transfer1(s, &a->p->insns[i]);
	}
}

static int fixpoint1(struct an *a)
{
	size_t nb = a->cfg.bb_cnt, k;
	int *work = malloc((nb + 1) * sizeof(int));
	bool *queued = calloc(nb + 1, sizeof(bool));
	size_t head = 0, cnt = 0;
	struct astate s;

	if (!work || !queued) {
		free(work);
		free(queued);
		return -ENOMEM;
	}
	for (k = 0; k < a->cfg.subprog_cnt; k++) {
		int e = a->cfg.subprogs[k].entry_bb;
		struct astate *in;
		int r;

		if (e < 0)
			continue;
		in = &a->in[e];
		memset(in, 0, sizeof(*in));
		for (r = 0; r < RS_MAX_REG; r++)
			in->r[r].k = V_UNK;
		in->r[RS_REG_FP] = (struct aval){ V_FP, 0 };
		in->reached = true;
		work[(head + cnt++) % (nb + 1)] = e;
		queued[e] = true;
	}
	while (cnt) {
		int b = work[head], j;

		head = (head + 1) % (nb + 1);
		cnt--;
		queued[b] = false;
		run_block1(a, b, &s, false);
		for (j = 0; j < 2; j++) {
			int t = a->cfg.bbs[b].succ[j];

			if (t == RS_NO_SUCC || !join1(&a->in[t], &s) || queued[t])
				continue;
			queued[t] = true;
			work[(head + cnt++) % (nb + 1)] = t;
		}
	}
	free(work);
	free(queued);
	return 0;
}

/* ---- map effects of helper calls; lookup sites --------------------------------------------- */

static struct mwrites *mw_of(struct an *a, const struct aval *v)
{
	if (v->k == V_MAP && v->v >= 0 && (size_t)v->v < a->p->map_cnt)
		return &a->mw[v->v];
	return &a->mw[a->p->map_cnt];
}

static int grow_sites(struct an *a)
{
	if (a->site_cnt == a->site_cap) {
		size_t cap = a->site_cap ? 2 * a->site_cap : 16;
		struct rs_site_fact *v = realloc(a->sites, cap * sizeof(*v));
		long *sm;

		if (!v)
			return -ENOMEM;
		a->sites = v;
		sm = realloc(a->site_map, cap * sizeof(*sm));
		if (!sm)
			return -ENOMEM;
		a->site_map = sm;
		a->site_cap = cap;
	}
	return 0;
}

/*
 * A direct value pointer (ld_imm64 BPF_PSEUDO_MAP_IDX_VALUE: global data, config arrays) is
 * tracked like a lookup's value; site_map -2 - idx marks it (no site fact of its own).
 */
static int add_direct(struct an *a, size_t i, uint32_t map_idx)
{
	struct rs_site_fact *f;

	if (map_idx >= a->p->map_cnt || grow_sites(a))
		return map_idx >= a->p->map_cnt ? 0 : -ENOMEM;
	f = &a->sites[a->site_cnt];
	memset(f, 0, sizeof(*f));
	f->insn = (uint32_t)i;
	f->map_idx = map_idx;
	f->value_read_only = true;
	a->site_map[a->site_cnt++] = -2 - (long)map_idx;
	return 0;
}

static int add_site(struct an *a, size_t i, const struct astate *s)
{
	const struct aval *m = &s->r[1], *k = &s->r[2];
	struct rs_site_fact *f;

	if (grow_sites(a))
		return -ENOMEM;
	f = &a->sites[a->site_cnt];
	memset(f, 0, sizeof(*f));
	f->insn = (uint32_t)i;
	a->site_map[a->site_cnt] = -1;
	if (m->k == V_MAP && m->v >= 0 && (size_t)m->v < a->p->map_cnt) {
		uint32_t ks = a->p->maps[m->v].key_size;

		f->map_idx = (uint32_t)m->v;
		a->site_map[a->site_cnt] = m->v;
		if (k->k == V_FP && ks && all_written(s, k->v, ks)) {
			f->key_known = true;
			f->key_fp_off = k->v;
		}
	}
	f->value_read_only = true;
	a->site_cnt++;
	return 0;
}

static void note(struct mwrites *w, long *slot, size_t i)
{
	(void)w;
	if (*slot < 0)
		*slot = (long)i;
}

static int visit_call(struct an *a, size_t i, const struct astate *s)
{
	const struct bpf_insn *in = &a->p->insns[i];
	int32_t id = in->imm;
	struct mwrites *w;
	int r;

	if (!rs_insn_is_helper_call(in))
		return 0;
	switch (id) {
	case BPF_FUNC_map_lookup_elem:
		return add_site(a, i, s);
	case BPF_FUNC_map_update_elem:
	case BPF_FUNC_map_delete_elem:
	case BPF_FUNC_map_push_elem:
	case BPF_FUNC_map_pop_elem:
		w = mw_of(a, &s->r[1]);
		note(w, &w->upd_insn, i);
		return 0;
	case BPF_FUNC_for_each_map_elem:
	case BPF_FUNC_map_lookup_percpu_elem:
		w = mw_of(a, &s->r[1]);
		if (w->store_insn < 0) {
			w->store_insn = (long)i;
			snprintf(w->store_why, sizeof(w->store_why), "%s at insn %zu may write values",
				 rs_helper_name(id) ? rs_helper_name(id) : "helper", i);
		}
		return 0;
	case BPF_FUNC_map_peek_elem:
	case BPF_FUNC_redirect_map:
		return 0;
	case BPF_FUNC_tail_call:
		r = 2;
		break;
	default:
		r = 0;
		break;
	}
	/* any other helper getting a map pointer: its effect is not modelled */
	for (int k = 1; k <= 5; k++) {
		if (k == r || s->r[k].k != V_MAP)
			continue;
		w = mw_of(a, &s->r[k]);
		if (w->other_insn < 0) {
			w->other_insn = (long)i;
			w->other_helper = id;
		}
	}
	return 0;
}

static int walk_facts(struct an *a)
{
	struct astate s;
	size_t b, i;
	int err;

	for (b = 0; b < a->cfg.bb_cnt; b++) {
		const struct rs_bb *bb = &a->cfg.bbs[b];

		if (!a->in[b].reached)
			continue;
		s = a->in[b];
		for (i = bb->start; i < bb->end; i += rs_insn_width(&a->p->insns[i])) {
			const struct bpf_insn *in = &a->p->insns[i];

			memcpy(a->pre[i], s.r, sizeof(s.r));
			err = 0;
			if (rs_insn_is_call(in))
				err = visit_call(a, i, &s);
			else if (rs_insn_is_ldimm64(in) && in->src_reg == BPF_PSEUDO_MAP_IDX_VALUE)
				err = add_direct(a, i, (uint32_t)in->imm);
			if (err)
				return err;
			transfer1(&s, &a->p->insns[i]);
		}
	}
	return 0;
}

/* ---- interpretation 2: where the value pointer of one site goes --------------------------- */

struct taint {
	rs_regmask_t regs;
	uint64_t slots;		/* 8-byte stack slots fp-512..fp-8 */
	bool reached;
};

struct tres {
	long write_insn, escape_insn;
	const char *escape_how;
};

static int slot_of(long off)
{
	if (off < -STACK_BYTES || off >= 0 || (off & 7))
		return -1;
	return (int)((off + STACK_BYTES) / 8);
}

static void clear_slots(struct taint *t, long off, long size)
{
	long o;

	for (o = off & ~7L; o < off + size; o += 8) {
		int sl = slot_of(o);

		if (sl >= 0)
			t->slots &= ~(1ULL << sl);
	}
}

static void escape(struct tres *r, size_t i, const char *how)
{
	if (r->escape_insn < 0) {
		r->escape_insn = (long)i;
		r->escape_how = how;
	}
}

#define TB(n) ((rs_regmask_t)(1u << (n)))

static void transfer2(struct an *a, size_t site, size_t i, struct taint *t, struct tres *res)
{
	const struct bpf_insn *in = &a->p->insns[i];
	const struct aval *pre = a->pre[i];
	uint8_t cls = BPF_CLASS(in->code), d = in->dst_reg, sr = in->src_reg;
	int k;

	if (rs_insn_is_ldimm64(in)) {
		t->regs &= ~TB(d);
		if (i == site)
			t->regs |= TB(d);	/* direct value pointer */
	} else if (cls == BPF_ALU64 || cls == BPF_ALU) {
		uint8_t op = BPF_OP(in->code);
		bool x = BPF_SRC(in->code) == BPF_X;

		if (cls == BPF_ALU64 && op == BPF_MOV && x && in->off == 0)
			t->regs = (t->regs & ~TB(d)) | ((t->regs & TB(sr)) ? TB(d) : 0);
		else if (cls == BPF_ALU64 && op == BPF_ADD && x)
			t->regs |= (t->regs & TB(sr)) ? TB(d) : 0;
		else if (!(cls == BPF_ALU64 && (op == BPF_ADD || op == BPF_SUB)))
			t->regs &= ~TB(d);
	} else if (cls == BPF_LDX) {
		bool fill = false;

		if (pre[sr].k == V_FP && mem_size(in) == 8) {
			int sl = slot_of(pre[sr].v + in->off);

			fill = sl >= 0 && (t->slots & (1ULL << sl));
		}
		t->regs = (t->regs & ~TB(d)) | (fill ? TB(d) : 0);
	} else if (cls == BPF_ST || cls == BPF_STX) {
		bool atomic = cls == BPF_STX && BPF_MODE(in->code) == BPF_ATOMIC;

		if (t->regs & TB(d)) {
			if (res->write_insn < 0)
				res->write_insn = (long)i;
		}
		if (cls == BPF_STX && (t->regs & TB(sr))) {
			int sl = pre[d].k == V_FP ? slot_of(pre[d].v + in->off) : -1;

			if (!atomic && sl >= 0 && mem_size(in) == 8)
				t->slots |= 1ULL << sl;
			else
				escape(res, i, "stored to memory");
		} else if (pre[d].k == V_FP) {
			clear_slots(t, pre[d].v + in->off, mem_size(in));
		}
		if (atomic && (in->imm & BPF_FETCH))
			t->regs &= ~TB(sr);
		if (atomic && in->imm == BPF_CMPXCHG)
			t->regs &= ~TB(0);
	} else if (rs_insn_is_call(in)) {
		int n = rs_insn_is_helper_call(in) ? helper_args(in->imm) : 5;
		bool fp_arg = false;

		if (rs_insn_is_pseudo_call(in)) {
			long tgt = rs_insn_target(a->p->insns, i);

			n = 0;
			for (k = 1; k <= 5; k++)
				if (tgt >= 0 && (a->live[tgt] & TB(k)))
					n = k;
		}
		for (k = 1; k <= n; k++) {
			if (pre[k].k == V_FP)
				fp_arg = true;
			if (!(t->regs & TB(k)))
				continue;
			if (rs_insn_is_helper_call(in) && helper_arg_readonly(in->imm, k))
				continue;
			escape(res, i, rs_insn_is_pseudo_call(in) ? "passed to a subprogram" :
			       "passed to a helper");
		}
		/* helpers treat stack buffers as bytes; only code can use a spilled pointer */
		if (fp_arg && t->slots && (rs_insn_is_pseudo_call(in) ||
					   (rs_insn_is_helper_call(in) && helper_has_callback(in->imm))))
			escape(res, i, rs_insn_is_pseudo_call(in) ?
			       "spilled and its stack passed to a subprogram" :
			       "spilled and its stack passed to a callback helper");
		t->regs &= ~(rs_regmask_t)0x3f;
		if (i == site)
			t->regs |= TB(0);
	} else if (rs_insn_is_exit(in)) {
		if ((t->regs & TB(0)) && a->cfg.bbs[a->cfg.insn_bb[i]].subprog != 0)
			escape(res, i, "returned from a subprogram");
	} else if (cls == BPF_LD) {
		t->regs &= ~(rs_regmask_t)0x3f;
	}
}

static int track_site(struct an *a, size_t site, struct tres *res, struct taint *in)
{
	size_t nb = a->cfg.bb_cnt;
	int *work = malloc((nb + 1) * sizeof(int));
	bool *queued = calloc(nb + 1, sizeof(bool));
	size_t head = 0, cnt = 0, i;
	int sb = a->cfg.insn_bb[site];

	if (!work || !queued) {
		free(work);
		free(queued);
		return -ENOMEM;
	}
	memset(in, 0, nb * sizeof(*in));
	res->write_insn = res->escape_insn = -1;
	res->escape_how = NULL;
	in[sb].reached = true;
	work[cnt++] = sb;
	queued[sb] = true;
	while (cnt) {
		int b = work[head], j;
		const struct rs_bb *bb = &a->cfg.bbs[b];
		struct taint t = in[b];

		head = (head + 1) % (nb + 1);
		cnt--;
		queued[b] = false;
		for (i = bb->start; i < bb->end; i += rs_insn_width(&a->p->insns[i]))
			transfer2(a, site, i, &t, res);
		for (j = 0; j < 2; j++) {
			int s = bb->succ[j];
			struct taint *d;

			if (s == RS_NO_SUCC)
				continue;
			d = &in[s];
			if (d->reached && (d->regs | t.regs) == d->regs &&
			    (d->slots | t.slots) == d->slots)
				continue;
			d->reached = true;
			d->regs |= t.regs;
			d->slots |= t.slots;
			if (!queued[s]) {
				queued[s] = true;
				work[(head + cnt++) % (nb + 1)] = s;
			}
		}
	}
	free(work);
	free(queued);
	return 0;
}

static int track_sites(struct an *a)
{
	struct taint *in = calloc(a->cfg.bb_cnt + 1, sizeof(*in));
	size_t k;
	int err = 0;

	if (!in)
		return -ENOMEM;
	for (k = 0; k < a->site_cnt; k++) {
		struct rs_site_fact *f = &a->sites[k];
		struct mwrites *w;
		struct tres r;

		err = track_site(a, f->insn, &r, in);
		if (err)
			break;
		if (r.write_insn >= 0) {
			snprintf(f->reason, sizeof(f->reason), "store through the value at insn %ld",
				 r.write_insn);
		} else if (r.escape_insn >= 0) {
			snprintf(f->reason, sizeof(f->reason), "value pointer %s at insn %ld",
				 r.escape_how, r.escape_insn);
		} else {
			snprintf(f->reason, sizeof(f->reason), "value only read%s",
				 a->site_map[k] < 0 ? " (map not known here)" : "");
			continue;
		}
		f->value_read_only = false;
		if (a->site_map[k] >= 0)
			w = &a->mw[a->site_map[k]];
		else if (a->site_map[k] <= -2)
			w = &a->mw[-2 - a->site_map[k]];
		else
			w = &a->mw[a->p->map_cnt];
		if (w->store_insn < 0) {
			w->store_insn = f->insn;
			snprintf(w->store_why, sizeof(w->store_why), "%s at insn %u: %.60s",
				 a->site_map[k] <= -2 ? "direct value" : "lookup", f->insn,
				 f->reason);
		}
	}
	/* direct values and sites whose map is not known are no lookup-site facts */
	for (k = 0; k < a->site_cnt;) {
		if (a->site_map[k] >= 0) {
			k++;
			continue;
		}
		memmove(&a->sites[k], &a->sites[k + 1], (a->site_cnt - k - 1) * sizeof(*a->sites));
		memmove(&a->site_map[k], &a->site_map[k + 1],
			(a->site_cnt - k - 1) * sizeof(*a->site_map));
		a->site_cnt--;
	}
	free(in);
	return err;
}

/* ---- driver ------------------------------------------------------------------------------ */

static void an_free(struct an *a)
{
	rs_cfg_free(&a->cfg);
	free(a->in);
	free(a->pre);
	free(a->live);
	free(a->mw);
	free(a->sites);
	free(a->site_map);
	memset(a, 0, sizeof(*a));
}

static int an_run(struct an *a, const struct rs_prog *p)
{
	size_t m;
	int err;

	memset(a, 0, sizeof(*a));
	a->p = p;
	err = rs_cfg_build_prog(p, &a->cfg);
	if (err)
		return err;
	err = rs_liveness(&a->cfg, p->insns, &a->live);
	if (err)
		return err;
	a->in = calloc(a->cfg.bb_cnt + 1, sizeof(*a->in));
	a->pre = calloc(p->insn_cnt + 1, sizeof(*a->pre));
	a->mw = calloc(p->map_cnt + 1, sizeof(*a->mw));
	if (!a->in || !a->pre || !a->mw)
		return -ENOMEM;
	for (m = 0; m <= p->map_cnt; m++)
		a->mw[m].upd_insn = a->mw[m].store_insn = a->mw[m].other_insn = -1;
	err = fixpoint1(a);
	if (!err)
		err = walk_facts(a);
	if (!err)
		err = track_sites(a);
	return err;
}

enum mclass { MC_ARRAY, MC_HASH, MC_OTHER };

static enum mclass map_class(uint32_t type, const char **why)
{
	switch (type) {
	case BPF_MAP_TYPE_ARRAY:
	case BPF_MAP_TYPE_PERCPU_ARRAY:
		return MC_ARRAY;
	case BPF_MAP_TYPE_HASH:
	case BPF_MAP_TYPE_LRU_HASH:
	case BPF_MAP_TYPE_LPM_TRIE:
	case BPF_MAP_TYPE_PERCPU_HASH:
	case BPF_MAP_TYPE_LRU_PERCPU_HASH:
		return MC_HASH;
	case BPF_MAP_TYPE_PROG_ARRAY:
		*why = "prog array: its values are tail-call targets, not data";
		return MC_OTHER;
	case BPF_MAP_TYPE_DEVMAP:
	case BPF_MAP_TYPE_DEVMAP_HASH:
	case BPF_MAP_TYPE_CPUMAP:
	case BPF_MAP_TYPE_XSKMAP:
		*why = "redirect map: its values are kernel objects";
		return MC_OTHER;
	case BPF_MAP_TYPE_ARRAY_OF_MAPS:
	case BPF_MAP_TYPE_HASH_OF_MAPS:
		*why = "map-in-map: inner maps change without the outer map's generation";
		return MC_OTHER;
	default:
		*why = "map type not specialized";
		return MC_OTHER;
	}
}

static bool is_percpu(uint32_t type)
{
	return type == BPF_MAP_TYPE_PERCPU_ARRAY || type == BPF_MAP_TYPE_PERCPU_HASH ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

static void decide_map(const struct an *a, const struct rs_snapshot *snap, uint32_t m,
		       struct rs_map_fact *f)
{
	const struct rs_map_ref *ref = &a->p->maps[m];
	const struct mwrites *w = &a->mw[m], *u = &a->mw[a->p->map_cnt];
	const struct rs_map_snapshot *ms;
	const char *why = "";
	enum mclass mc = map_class(ref->type, &why);
	char vwhy[200] = "";

	f->map_idx = m;
	f->level = RS_MAP_UNSTABLE;
#define SAY(...) snprintf(f->reason, sizeof(f->reason), __VA_ARGS__)
	if (mc == MC_OTHER) {
		SAY("%s", why);
		return;
	}
	if (!snap || m >= snap->map_cnt) {
		SAY("no snapshot of this map");
		return;
	}
	ms = &snap->maps[m];
	if (ms->ext_writers & RS_EXT_UNKNOWN) {
		SAY("another program references it and could not be analyzed");
		return;
	}
	if (!ms->watched) {
		SAY("user-space writes are not watched (no guard slot)");
		return;
	}
	if (w->other_insn >= 0 || u->other_insn >= 0) {
		const struct mwrites *o = w->other_insn >= 0 ? w : u;
		const char *h = rs_helper_name(o->other_helper);

		SAY("map pointer passed to %s at insn %ld (effect not modelled)",
		    h ? h : "a helper", o->other_insn);
		return;
	}
	if (mc == MC_HASH) {
		if (w->upd_insn >= 0 || u->upd_insn >= 0) {
			SAY("this program inserts/deletes: %s helper at insn %ld",
			    w->upd_insn >= 0 ? "update/delete" : "update/delete on an unknown map",
			    w->upd_insn >= 0 ? w->upd_insn : u->upd_insn);
			return;
		}
		if (ms->ext_writers & RS_EXT_UPDATES) {
			SAY("another program calls update/delete helpers on it");
			return;
		}
	} else if (w->upd_insn >= 0 || u->upd_insn >= 0) {
		snprintf(vwhy, sizeof(vwhy), "update helper at insn %ld",
			 w->upd_insn >= 0 ? w->upd_insn : u->upd_insn);
	} else if (ms->ext_writers & RS_EXT_UPDATES) {
		snprintf(vwhy, sizeof(vwhy), "another program calls update helpers on it");
	}
	if (!vwhy[0] && w->store_insn >= 0)
		snprintf(vwhy, sizeof(vwhy), "%s", w->store_why);
	if (!vwhy[0] && u->store_insn >= 0)
		snprintf(vwhy, sizeof(vwhy), "unknown map: %s", u->store_why);
	if (!vwhy[0] && (ms->ext_writers & RS_EXT_STORES))
		snprintf(vwhy, sizeof(vwhy), "another program stores through lookup values");
	if (!vwhy[0] && (ms->map_flags & BPF_F_MMAPABLE) && !ms->frozen)
		snprintf(vwhy, sizeof(vwhy), "mmap-able and not frozen (mmap writes are unseen)");
	if (vwhy[0]) {
		f->level = RS_MAP_STABLE_KEYS;
		SAY("keys stable (%s); values not: %.120s",
		    mc == MC_ARRAY ? "array" : "no inserts/deletes, writes watched", vwhy);
		return;
	}
	f->level = RS_MAP_STABLE_VALUES;
	SAY("no program writes it, user-space writes watched (slot %u)%s", ms->guard_slot,
	    is_percpu(ref->type) ? "; per-CPU: fold only where every CPU holds the same value" :
	    "");
#undef SAY
}

int rs_analyze(const struct rs_prog *prog, const struct rs_snapshot *snap,
	       struct rs_map_fact **map_facts, size_t *map_fact_cnt,
	       struct rs_site_fact **site_facts, size_t *site_fact_cnt)
{
	struct rs_map_fact *mf;
	struct an a;
	uint32_t m;
	int err;

	*map_facts = NULL;
	*site_facts = NULL;
	*map_fact_cnt = *site_fact_cnt = 0;
	err = an_run(&a, prog);
	if (err) {
		rs_warn("prog %u (%s): analysis failed: %s", prog->id, prog->name,
			rs_strerror(err));
		an_free(&a);
		return err;
	}
	mf = calloc(prog->map_cnt ? prog->map_cnt : 1, sizeof(*mf));
	if (!mf) {
		an_free(&a);
		return -ENOMEM;
	}
	for (m = 0; m < prog->map_cnt; m++)
		decide_map(&a, snap, m, &mf[m]);
	*map_facts = mf;
	*map_fact_cnt = prog->map_cnt;
	*site_facts = a.sites;
	*site_fact_cnt = a.site_cnt;
	a.sites = NULL;
	an_free(&a);
	return 0;
}

uint32_t rs_prog_map_writes(const struct rs_prog *prog, uint32_t map_idx)
{
	const struct mwrites *w, *u;
	uint32_t r = 0;
	struct an a;

	if (!prog || map_idx >= prog->map_cnt)
		return 0;
	if (an_run(&a, prog)) {
		an_free(&a);
		return RS_EXT_UNKNOWN;
	}
	w = &a.mw[map_idx];
	u = &a.mw[prog->map_cnt];
	if (w->upd_insn >= 0 || u->upd_insn >= 0)
		r |= RS_EXT_UPDATES;
	if (w->store_insn >= 0 || u->store_insn >= 0)
		r |= RS_EXT_STORES;
	if (w->other_insn >= 0 || u->other_insn >= 0)
		r |= RS_EXT_UNKNOWN;
	an_free(&a);
	return r;
}
