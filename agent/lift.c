// SPDX-License-Identifier: BSD-2-Clause
/*
 * lift.c - lift a loaded program back to loadable original form, and prove it.
 *
 * Steps: fetch the translated program and its load attributes; learn the verifier's rewrite
 * patterns on this kernel with probe programs of the same type (lift_learn.c); undo them
 * (lift_match.c); then the proof: load the candidate, dump its translation and require it to
 * equal the running program's translation instruction by instruction (map references compared
 * by map id).  Only a proven lift is returned.  rs_fetch_original() prefers a capture taken at
 * load time (exact bytes) and falls back to the lift.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/lift.h"

#define PROOF_LOG_SIZE (1024 * 1024)

static bool same_insn(const struct rs_prog *a, size_t i, const struct rs_prog *b, size_t j)
{
	const struct bpf_insn *x = &a->insns[i], *y = &b->insns[j];

	if (rs_insn_is_map_ref(x) && rs_insn_is_map_ref(y)) {
		if (x->src_reg != y->src_reg || x->dst_reg != y->dst_reg || x->off != y->off)
			return false;
		if (x->imm < 0 || (size_t)x->imm >= a->map_cnt || y->imm < 0 ||
		    (size_t)y->imm >= b->map_cnt)
			return false;
		return a->maps[x->imm].id == b->maps[y->imm].id;
	}
	return !memcmp(x, y, sizeof(*x));
}

long rs_xlated_diff(const struct rs_prog *a, const struct rs_prog *b)
{
	size_t i, n = a->insn_cnt < b->insn_cnt ? a->insn_cnt : b->insn_cnt;

	for (i = 0; i < n; i++) {
		if (!same_insn(a, i, b, i))
			return (long)i;
		if (rs_insn_is_ldimm64(&a->insns[i]) && i + 1 < n) {
			i++;	/* second half: the value offset / upper imm */
			if (a->insns[i].imm != b->insns[i].imm || a->insns[i].code != b->insns[i].code)
				return (long)i - 1;
		}
	}
	return a->insn_cnt == b->insn_cnt ? -1 : (long)n;
}

static const char *site_at(const struct rs_lift_sites *sites, long idx)
{
	const char *best = "unchanged code";
	size_t k;

	for (k = 0; k < sites->cnt; k++) {
		const struct rs_lift_site *s = &sites->v[k];

		if ((long)s->idx <= idx && idx < (long)(s->idx + (s->n ? s->n : 1)))
			return s->pattern;
	}
	return best;
}

/* The verifier's complaint: the last log line that is not a statistics line. */
static char *verifier_complaint(char *log)
{
	char *line, *best = log;

	for (line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "processed ", 10) || !strncmp(line, "verification time", 17) ||
		    !strncmp(line, "stack depth", 11) || !strncmp(line, "mark_precise", 12))
			continue;
		best = line;
	}
	return best;
}

/* Load the candidate; its translation must equal the running one. */
static int prove(const struct rs_prog *xl, struct rs_prog *cand,
		 const struct rs_lift_sites *sites, struct rs_lift_report *rep)
{
	RS_OPTS(rs_load_opts, lo, .log_size = PROOF_LOG_SIZE, .log_level = 1);
	struct rs_prog re;
	char a[96], b[96];
	long at;
	int fd, err;

	rs_prog_init(&re);
	lo.log_buf = calloc(1, PROOF_LOG_SIZE);
	if (!lo.log_buf)
		return -ENOMEM;
	fd = rs_prog_load(cand, &lo);
	if (fd < 0 && cand->line_info_cnt) {
		/* line info is not part of the translation; try without it */
		free(cand->line_info);
		cand->line_info = NULL;
		cand->line_info_cnt = 0;
		lo.log_buf[0] = '\0';
		fd = rs_prog_load(cand, &lo);
	}
	if (fd < 0) {
		char *tail = verifier_complaint(lo.log_buf);

		rep->fail_insn = -1;
		snprintf(rep->fail_pattern, sizeof(rep->fail_pattern), "reload");
		snprintf(rep->msg, sizeof(rep->msg), "the lifted program does not load: %s: %.180s",
			 rs_strerror(fd), tail);
		rs_warn("prog %u (%s): %s\n", xl->id, xl->name, rep->msg);
		err = -RS_ERR_PROOF;
		goto out;
	}
	err = rs_fetch_translated_fd(fd, &re, true);
	close(fd);
	if (err)
		goto out;
	at = rs_xlated_diff(xl, &re);
	if (at >= 0) {
		a[0] = b[0] = '\0';
		if ((size_t)at < xl->insn_cnt)
			rs_insn_snprint(a, sizeof(a), xl->insns, xl->insn_cnt, at);
		if ((size_t)at < re.insn_cnt)
			rs_insn_snprint(b, sizeof(b), re.insns, re.insn_cnt, at);
		rep->fail_insn = at;
		snprintf(rep->fail_pattern, sizeof(rep->fail_pattern), "%s", site_at(sites, at));
		snprintf(rep->msg, sizeof(rep->msg),
			 "proof: xlated insn %ld differs: running '%s', lifted reloads as '%s' (%zu vs %zu insns)",
			 at, a, b[0] ? b : "(end)", xl->insn_cnt, re.insn_cnt);
		rs_warn("prog %u (%s): %s (near pattern %s)\n", xl->id, xl->name, rep->msg,
			rep->fail_pattern);
		err = -RS_ERR_PROOF;
		goto out;
	}
	rep->proven = true;
	rep->fail_insn = -1;
	if (!memcmp(re.tag, xl->tag, sizeof(re.tag)))
		snprintf(rep->msg, sizeof(rep->msg),
			 "proven; tag equal: the lift is the original bytecode");
	else
		snprintf(rep->msg, sizeof(rep->msg),
			 "proven; tag differs (map reference encoding or equivalent code)");
	err = 0;
out:
	free(lo.log_buf);
	rs_prog_free(&re);
	return err;
}

int rs_lift(uint32_t prog_id, struct rs_prog *out, struct rs_lift_report *rep)
{
	struct rs_lift_report own;
	struct rs_prog xl, cand;
	struct rs_patterns ps;
	struct rs_lift_sites sites = { 0 };
	uint32_t eat = 0, flags = 0;
	int err;

	if (!rep)
		rep = &own;
	memset(rep, 0, sizeof(*rep));
	rep->fail_insn = -1;
	memset(&ps, 0, sizeof(ps));
	rs_prog_init(out);
	rs_prog_init(&cand);
	err = rs_fetch_translated(prog_id, &xl);
	if (err) {
		snprintf(rep->msg, sizeof(rep->msg), "prog %u: %s", prog_id, rs_strerror(err));
		return err;
	}
	err = rs_prog_load_attrs(prog_id, &eat, &flags);
	if (err)
		rs_info("prog %u (%s): load attributes unknown (%s): assuming none\n", prog_id,
			xl.name, rs_strerror(err));
	else {
		xl.expected_attach_type = eat;
		xl.prog_flags = flags;
	}

	err = rs_lift_learn(&xl, &ps);
	if (err) {
		snprintf(rep->msg, sizeof(rep->msg), "probing failed: %s", rs_strerror(err));
		goto out;
	}
	rep->patterns_learned = ps.pat_cnt + ps.helper_cnt;
	err = rs_lift_match(&xl, &ps, &cand, &sites, rep);
	if (err) {
		if (err != -ENOMEM && err != -RS_ERR_UNLIFTABLE && rep->msg[0])
			err = -RS_ERR_UNLIFTABLE;
		goto out;
	}
	snprintf(cand.name, sizeof(cand.name), "%s", xl.name);
	cand.id = xl.id;
	memcpy(cand.tag, xl.tag, sizeof(cand.tag));
	cand.type = xl.type;
	cand.expected_attach_type = xl.expected_attach_type;
	cand.prog_flags = xl.prog_flags;
	snprintf(cand.license, sizeof(cand.license), "%s", xl.license);
	cand.source = RS_SRC_LIFT;

	err = prove(&xl, &cand, &sites, rep);
	if (err)
		goto out;
	rs_info("prog %u (%s): lifted %zu sites, %zu -> %zu insns: %s\n", prog_id, xl.name,
		rep->sites_lifted, xl.insn_cnt, cand.insn_cnt, rep->msg);
	*out = cand;
	rs_prog_init(&cand);
out:
	rs_prog_free(&cand);
	rs_prog_free(&xl);
	rs_patterns_free(&ps);
	free(sites.v);
	return err;
}

int rs_fetch_original(uint32_t prog_id, struct rs_prog *out, struct rs_lift_report *rep)
{
	int err;

	err = rs_capture_load_stored(NULL, prog_id, out);
	if (!err) {
		if (rep) {
			memset(rep, 0, sizeof(*rep));
			rep->fail_insn = -1;
			rep->proven = true;
			snprintf(rep->msg, sizeof(rep->msg), "captured at load");
		}
		return 0;
	}
	rs_debug("prog %u: no stored capture (%s): lifting\n", prog_id, rs_strerror(err));
	return rs_lift(prog_id, out, rep);
}
