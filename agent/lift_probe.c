// SPDX-License-Identifier: BSD-2-Clause
/*
 * lift_probe.c - the probing machinery of the lifter: load tiny raw-instruction programs of
 * the target's type, read back their translation, and turn "original site -> translated
 * expansion" pairs into patterns with register placeholders.
 *
 * A probe is written so that every instruction before the site and after it translates one to
 * one; the expansion of the site is then xlated[site, n - suffix).  Probing the same site with
 * two different register assignments tells which registers of the expansion are the original
 * instruction's dst / src and which are fixed (e.g. the verifier's scratch register AX).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "agent/lift.h"

int rs_probe_load(const struct rs_prog *like, const struct bpf_insn *insns, size_t cnt,
		  const int *fd_array, size_t fd_cnt)
{
	LIBBPF_OPTS(bpf_prog_load_opts, lo);
	int fd;

	(void)fd_cnt;
	lo.expected_attach_type = like->expected_attach_type;
	lo.prog_flags = like->prog_flags;
	lo.fd_array = fd_array;
	fd = bpf_prog_load(like->type, "rs_probe", "GPL", insns, cnt, &lo);
	return fd < 0 ? -errno : fd;
}

int rs_probe_xlated(int fd, struct bpf_insn **out, size_t *cnt)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info), xlen;
	struct bpf_insn *buf;

	*out = NULL;
	*cnt = 0;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	xlen = info.xlated_prog_len;
	if (!xlen)
		return -EPERM;
	buf = calloc(1, xlen);
	if (!buf)
		return -ENOMEM;
	memset(&info, 0, sizeof(info));
	info.xlated_prog_len = xlen;
	info.xlated_prog_insns = (uintptr_t)buf;
	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		free(buf);
		return -errno;
	}
	*out = buf;
	*cnt = info.xlated_prog_len / sizeof(*buf);
	return 0;
}

int rs_probe_expansion(const struct rs_prog *like, const struct bpf_insn *insns, size_t cnt,
		       size_t site, size_t suffix, const int *fds, size_t fd_cnt,
		       struct bpf_insn **xl, size_t *xl_cnt)
{
	struct bpf_insn *all;
	size_t n;
	int fd, err;

	*xl = NULL;
	*xl_cnt = 0;
	fd = rs_probe_load(like, insns, cnt, fds, fd_cnt);
	if (fd < 0)
		return fd;
	err = rs_probe_xlated(fd, &all, &n);
	close(fd);
	if (err)
		return err;
	if (n < site + suffix + 1 || n - suffix - site > RS_MAX_EXPANSION) {
		free(all);
		return -ERANGE;
	}
	*xl_cnt = n - suffix - site;
	*xl = malloc(*xl_cnt * sizeof(**xl));
	if (!*xl) {
		free(all);
		return -ENOMEM;
	}
	memcpy(*xl, all + site, *xl_cnt * sizeof(**xl));
	free(all);
	return 0;
}

/* ---- pattern store --------------------------------------------------------------------- */

void rs_patterns_free(struct rs_patterns *ps)
{
	size_t i;

	for (i = 0; i < ps->pat_cnt; i++)
		free(ps->pats[i].xl);
	free(ps->pats);
	free(ps->helpers);
	memset(ps, 0, sizeof(*ps));
}

static bool insn_eq(const struct bpf_insn *a, const struct bpf_insn *b)
{
	return a->code == b->code && a->dst_reg == b->dst_reg && a->src_reg == b->src_reg &&
	       a->off == b->off && a->imm == b->imm;
}

int rs_patterns_add(struct rs_patterns *ps, const struct rs_pattern *p)
{
	struct rs_pattern *n;
	size_t i;

	/* identical duplicates (same orig, same expansion) add nothing */
	for (i = 0; i < ps->pat_cnt; i++) {
		const struct rs_pattern *q = &ps->pats[i];
		size_t k;

		if (q->xl_cnt != p->xl_cnt || !insn_eq(&q->orig, &p->orig) ||
		    q->need_same != p->need_same || q->need_diff != p->need_diff ||
		    q->kind != p->kind)
			continue;
		for (k = 0; k < q->xl_cnt; k++)
			if (!insn_eq(&q->xl[k], &p->xl[k]))
				break;
		if (k == q->xl_cnt)
			return 0;
	}
	n = realloc(ps->pats, (ps->pat_cnt + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ps->pats = n;
	n = &ps->pats[ps->pat_cnt];
	*n = *p;
	n->xl = malloc(p->xl_cnt * sizeof(*p->xl));
	if (!n->xl)
		return -ENOMEM;
	memcpy(n->xl, p->xl, p->xl_cnt * sizeof(*p->xl));
	ps->pat_cnt++;
	return 0;
}

int rs_patterns_add_helper(struct rs_patterns *ps, int32_t imm, int32_t func_id, const char *name)
{
	struct rs_helper_imm *n;
	size_t i;

	for (i = 0; i < ps->helper_cnt; i++)
		if (ps->helpers[i].imm == imm)
			return 0;	/* first one wins: both translate identically */
	n = realloc(ps->helpers, (ps->helper_cnt + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	ps->helpers = n;
	n = &ps->helpers[ps->helper_cnt++];
	n->imm = imm;
	n->func_id = func_id;
	snprintf(n->name, sizeof(n->name), "%s", name ? name : "");
	return 0;
}

int32_t rs_patterns_helper(const struct rs_patterns *ps, int32_t imm)
{
	size_t i;

	for (i = 0; i < ps->helper_cnt; i++)
		if (ps->helpers[i].imm == imm)
			return ps->helpers[i].func_id;
	return -1;
}

/* ---- templates with register placeholders ------------------------------------------------ */

static int map_reg(uint8_t ra, uint8_t rb, uint8_t da, uint8_t sa, uint8_t db, uint8_t sb,
		   uint8_t *out)
{
	if (ra == da && rb == db) {
		*out = RS_PH_DST;
		return 0;
	}
	if (ra == sa && rb == sb) {
		*out = RS_PH_SRC;
		return 0;
	}
	if (ra == rb && ra != da && ra != sa && ra != db && ra != sb) {
		*out = ra;
		return 0;
	}
	return -EINVAL;
}

int rs_template_derive(const struct bpf_insn *xa, size_t na, uint8_t da, uint8_t sa,
		       const struct bpf_insn *xb, size_t nb, uint8_t db, uint8_t sb,
		       struct bpf_insn *out)
{
	size_t i;

	if (na != nb)
		return -EINVAL;
	for (i = 0; i < na; i++) {
		uint8_t d, s;

		if (xa[i].code != xb[i].code || xa[i].off != xb[i].off || xa[i].imm != xb[i].imm)
			return -EINVAL;
		if (map_reg(xa[i].dst_reg, xb[i].dst_reg, da, sa, db, sb, &d))
			return -EINVAL;
		/* src_reg of ld_imm64 / calls is a pseudo kind, not a register */
		if (rs_insn_is_ldimm64(&xa[i]) || rs_insn_is_call(&xa[i]) ||
		    (i > 0 && rs_insn_is_ldimm64(&xa[i - 1]))) {
			if (xa[i].src_reg != xb[i].src_reg)
				return -EINVAL;
			s = xa[i].src_reg;
		} else if (map_reg(xa[i].src_reg, xb[i].src_reg, da, sa, db, sb, &s)) {
			return -EINVAL;
		}
		out[i] = xa[i];
		out[i].dst_reg = d;
		out[i].src_reg = s;
	}
	return 0;
}

static uint8_t inst_reg(uint8_t r, uint8_t d, uint8_t s)
{
	return r == RS_PH_DST ? d : r == RS_PH_SRC ? s : r;
}

void rs_template_instantiate(const struct bpf_insn *t, size_t n, uint8_t d, uint8_t s,
			     struct bpf_insn *out)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[i] = t[i];
		out[i].dst_reg = inst_reg(t[i].dst_reg, d, s);
		if (!(rs_insn_is_ldimm64(&t[i]) || rs_insn_is_call(&t[i]) ||
		      (i > 0 && rs_insn_is_ldimm64(&t[i - 1]))))
			out[i].src_reg = inst_reg(t[i].src_reg, d, s);
	}
}

/*
 * Probe one site in two register assignments (and, when `same_reg` >= 0, a third with
 * dst == src == same_reg) and store the resulting pattern(s).  `build` writes the probe for
 * registers (d, s) into insns and returns the count, with the site index and the original
 * instruction.  Returns 1 when a pattern was stored, 0 when the site translates to itself,
 * negative when the probe does not load (the kernel refuses this form).
 */
int rs_probe_site(const struct rs_prog *like, rs_probe_build_fn build, void *ctx,
		  const uint8_t regs[4], int same_reg, const int *fds, size_t fd_cnt,
		  enum rs_pat_kind kind, const char *name, struct rs_patterns *ps)
{
	struct bpf_insn pa[RS_MAX_PROBE], pb[RS_MAX_PROBE], oa, ob;
	struct bpf_insn *xa = NULL, *xb = NULL, *xc = NULL, *tmpl = NULL, *inst = NULL;
	size_t na, nb, nc, ca, cb, sa, sb;
	struct rs_pattern pat;
	int err;

	ca = build(ctx, regs[0], regs[1], pa, &sa, &oa);
	err = rs_probe_expansion(like, pa, ca, sa, ca - sa - 1, fds, fd_cnt, &xa, &na);
	if (err)
		return err;
	if (na == 1 && insn_eq(&xa[0], &oa)) {
		err = 0;
		goto out;
	}
	cb = build(ctx, regs[2], regs[3], pb, &sb, &ob);
	err = rs_probe_expansion(like, pb, cb, sb, cb - sb - 1, fds, fd_cnt, &xb, &nb);
	if (err)
		goto out;
	tmpl = malloc(na * sizeof(*tmpl));
	inst = malloc(na * sizeof(*inst));
	if (!tmpl || !inst) {
		err = -ENOMEM;
		goto out;
	}
	err = rs_template_derive(xa, na, regs[0], regs[1], xb, nb, regs[2], regs[3], tmpl);
	if (err) {
		rs_debug("lift probe %s: expansions disagree between register assignments\n", name);
		goto out;
	}
	memset(&pat, 0, sizeof(pat));
	pat.kind = kind;
	snprintf(pat.name, sizeof(pat.name), "%s", name);
	pat.orig = oa;
	pat.orig.dst_reg = oa.dst_reg == regs[0] ? RS_PH_DST : oa.dst_reg;
	pat.orig.src_reg = oa.src_reg == regs[1] ? RS_PH_SRC : oa.src_reg;
	pat.xl = tmpl;
	pat.xl_cnt = na;

	if (same_reg >= 0) {
		struct bpf_insn pc[RS_MAX_PROBE], oc;
		size_t cc, sc;

		cc = build(ctx, same_reg, same_reg, pc, &sc, &oc);
		if (!rs_probe_expansion(like, pc, cc, sc, cc - sc - 1, fds, fd_cnt, &xc, &nc)) {
			bool differs = nc != na;
			size_t k;

			rs_template_instantiate(tmpl, na, same_reg, same_reg, inst);
			for (k = 0; !differs && k < na; k++)
				differs = !insn_eq(&inst[k], &xc[k]);
			if (differs) {
				struct rs_pattern ps2 = pat;
				struct bpf_insn *t2 = malloc(nc * sizeof(*t2));

				if (!t2) {
					err = -ENOMEM;
					goto out;
				}
				for (k = 0; k < nc; k++) {
					t2[k] = xc[k];
					if (xc[k].dst_reg == same_reg)
						t2[k].dst_reg = RS_PH_DST;
					if (!(rs_insn_is_ldimm64(&xc[k]) || rs_insn_is_call(&xc[k]) ||
					      (k > 0 && rs_insn_is_ldimm64(&xc[k - 1]))) &&
					    xc[k].src_reg == same_reg)
						t2[k].src_reg = RS_PH_DST;
				}
				ps2.xl = t2;
				ps2.xl_cnt = nc;
				ps2.need_same = true;
				ps2.orig.src_reg = RS_PH_DST;
				ps2.orig.dst_reg = RS_PH_DST;
				err = rs_patterns_add(ps, &ps2);
				free(t2);
				if (err)
					goto out;
				pat.need_diff = true;
			}
		}
	}
	err = rs_patterns_add(ps, &pat);
	if (!err)
		err = 1;
out:
	free(xa);
	free(xb);
	free(xc);
	free(tmpl);
	free(inst);
	return err;
}
