// SPDX-License-Identifier: BSD-2-Clause
/*
 * log_html.c - `respec log html LOG -o report.html`: one self-contained page (no network:
 * CSS, JS and plots are inline) for a performance engineer: an overview of every program, and
 * per program its summary, cost plot and instruction counts per pass (inline SVG), hot keys per
 * lookup site, the remarks (filterable), and the annotated before/after listing with source
 * lines.  The page's assets are in tools/log_html_assets.c; the listing alignment is shared
 * with `log diff` (log_diff.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/log.h"
#include "tools/main.h"

extern const char rs_log_html_css[];
extern const char rs_log_html_js[];

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

/* ---- plots ----------------------------------------------------------------------------- */

/* Bars of ns/packet before and after for every measure of the program (last round first). */
static void cost_plot(FILE *f, const struct log_file *lf, const struct log_prog *p)
{
	double vmax = 0;
	size_t idx = 0, n = 0, k;
	json_t *r, *ms[16];
	const int W = 560, H = 200, L = 50, B = 40;

	while ((r = log_next(lf, p, "measure", false, &idx)) && n < RS_ARRAY_SIZE(ms)) {
		ms[n++] = r;
		if (log_real(r, "ns_before", 0) > vmax)
			vmax = log_real(r, "ns_before", 0);
		if (log_real(r, "ns_after", 0) > vmax)
			vmax = log_real(r, "ns_after", 0);
	}
	if (!n || vmax <= 0) {
		fprintf(f, "<p class=\"note\">no cost measured in this log</p>\n");
		return;
	}
	fprintf(f, "<svg class=\"plot cost-plot\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n"
		"<title>ns per packet before (grey) and after (blue)</title>\n", W, H, W, H);
	fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"axis\"/>\n", L, H - B,
		W - 10, H - B);
	fprintf(f, "<text x=\"4\" y=\"14\" class=\"lbl\">%.1f ns</text>\n", vmax);
	for (k = 0; k < n; k++) {
		double slot = (double)(W - L - 10) / (double)n;
		double x = L + k * slot + slot * 0.15, bw = slot * 0.3;
		double hb = (H - B - 20) * log_real(ms[k], "ns_before", 0) / vmax;
		double ha = (H - B - 20) * log_real(ms[k], "ns_after", 0) / vmax;

		fprintf(f, "<rect class=\"bar before\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\"><title>before %.2f ns/packet</title></rect>\n", x,
			H - B - hb, bw, hb, log_real(ms[k], "ns_before", 0));
		fprintf(f, "<rect class=\"bar after\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\"><title>after %.2f ns/packet</title></rect>\n", x + bw,
			H - B - ha, bw, ha, log_real(ms[k], "ns_after", 0));
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"lbl\">", x, H - B + 14);
		esc(f, log_str(ms[k], "what", "?"));
		if (log_str(ms[k], "pass", NULL)) {
			fputc(' ', f);
			esc(f, log_str(ms[k], "pass", ""));
		}
		fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%d\" class=\"lbl\">%.2f&#8594;%.2f</text>\n",
			x, H - B + 28, log_real(ms[k], "ns_before", 0),
			log_real(ms[k], "ns_after", 0));
	}
	fprintf(f, "</svg>\n");
}

/* Instruction count after every pass of the last round (a step line). */
static void pass_plot(FILE *f, const struct log_file *lf, const struct log_prog *p)
{
	json_t *st[32], *r;
	size_t idx = 0, n = 0, k;
	long vmax = 0;
	const int W = 560, H = 180, L = 50, B = 36;

	while ((r = log_next(lf, p, "pass_stats", true, &idx)) && n < RS_ARRAY_SIZE(st)) {
		if (!strcmp(log_str(r, "pass", ""), "*"))
			continue;
		st[n++] = r;
		if (log_int(r, "insns_before", 0) > vmax)
			vmax = log_int(r, "insns_before", 0);
		if (log_int(r, "insns_after", 0) > vmax)
			vmax = log_int(r, "insns_after", 0);
	}
	if (!n || vmax <= 0) {
		fprintf(f, "<p class=\"note\">no pass statistics in this log</p>\n");
		return;
	}
	fprintf(f, "<svg class=\"plot pass-plot\" xmlns=\"http://www.w3.org/2000/svg\" "
		"width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">\n"
		"<title>instructions after each pass</title>\n", W, H, W, H);
	fprintf(f, "<text x=\"4\" y=\"14\" class=\"lbl\">%ld insns</text>\n", vmax);
	for (k = 0; k < n; k++) {
		double slot = (double)(W - L - 10) / (double)n, x = L + k * slot + slot * 0.2;
		double h = (H - B - 20) * (double)log_int(st[k], "insns_after", 0) / (double)vmax;
		bool fired = log_int(st[k], "applied", 0) > 0;

		fprintf(f, "<rect class=\"bar %s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			"height=\"%.1f\"><title>%s: %ld -> %ld insns, applied %ld, missed %ld"
			"</title></rect>\n", fired ? "fired" : "idle", x, H - B - h, slot * 0.6, h,
			log_str(st[k], "pass", "?"), log_int(st[k], "insns_before", 0),
			log_int(st[k], "insns_after", 0), log_int(st[k], "applied", 0),
			log_int(st[k], "missed", 0));
		fprintf(f, "<text x=\"%.1f\" y=\"%d\" class=\"lbl\">", x, H - B + 14);
		esc(f, log_str(st[k], "pass", "?"));
		fprintf(f, "</text>\n");
	}
	fprintf(f, "</svg>\n");
}

/* ---- tables ---------------------------------------------------------------------------- */

static void site_src(FILE *f, const struct log_file *lf, const struct log_prog *p, long insn)
{
	size_t idx = 0;
	json_t *r;

	while ((r = log_next(lf, p, "remark", true, &idx))) {
		json_t *s = json_object_get(r, "site");

		if (log_int(s, "orig_insn", -1) == insn && log_str(s, "file", NULL)) {
			esc(f, log_str(s, "file", ""));
			fprintf(f, ":%ld", log_int(s, "line", 0));
			return;
		}
	}
}

static void hot_keys(FILE *f, const struct log_file *lf, const struct log_prog *p)
{
	json_t *prof = NULL, *r, *s, *k;
	size_t idx = 0, i, j;

	while ((r = log_next(lf, p, "profile", false, &idx)))
		prof = r;
	if (!prof || !json_array_size(json_object_get(prof, "sites"))) {
		fprintf(f, "<p class=\"note\">no profile in this log: hot keys came from the "
			"snapshot (see the remarks)</p>\n");
		return;
	}
	fprintf(f, "<p>%ld sampled packets (1 in %ld)</p>\n<table class=\"hotkeys\">"
		"<tr><th>site</th><th>map</th><th>source</th><th>lookups</th><th>key</th>"
		"<th>count</th><th>share</th></tr>\n", log_int(prof, "packets", 0),
		log_int(prof, "sample_rate", 0));
	json_array_foreach(json_object_get(prof, "sites"), i, s) {
		json_t *keys = json_object_get(s, "keys");
		size_t nk = json_array_size(keys);

		json_array_foreach(keys, j, k) {
			double sh = log_real(k, "share", 0);

			fprintf(f, "<tr class=\"hotkey\">");
			if (!j) {
				fprintf(f, "<td rowspan=\"%zu\">insn %ld</td><td rowspan=\"%zu\">",
					nk, log_int(s, "insn", 0), nk);
				esc(f, log_str(s, "map", ""));
				fprintf(f, "</td><td rowspan=\"%zu\">", nk);
				site_src(f, lf, p, log_int(s, "insn", -1));
				fprintf(f, "</td><td rowspan=\"%zu\">%ld</td>", nk,
					log_int(s, "lookups", 0));
			}
			fprintf(f, "<td class=\"mono\">");
			esc(f, log_str(k, "key", ""));
			fprintf(f, "</td><td>%ld</td><td><svg class=\"share\" width=\"80\" "
				"height=\"10\"><rect width=\"%.1f\" height=\"10\"/></svg> %.1f%%</td>"
				"</tr>\n", log_int(k, "count", 0), 80 * (isnan(sh) ? 0 : sh), 100 * sh);
		}
	}
	fprintf(f, "</table>\n");
}

static void remarks_table(FILE *f, const struct log_file *lf, const struct log_prog *p)
{
	size_t idx = 0;
	json_t *r;

	fprintf(f, "<div class=\"filters\">show: <label><input type=\"checkbox\" "
		"data-type=\"passed\" checked> passed</label> <label><input type=\"checkbox\" "
		"data-type=\"missed\" checked> missed</label> <label><input type=\"checkbox\" "
		"data-type=\"analysis\"> analysis</label></div>\n<table class=\"remarks\">"
		"<tr><th>pass</th><th>type</th><th>site</th><th>source</th><th>what</th>"
		"<th>assumption / guard</th></tr>\n");
	while ((r = log_next(lf, p, "remark", true, &idx))) {
		json_t *s = json_object_get(r, "site"), *as = json_object_get(r, "assumption");
		json_t *g = json_object_get(r, "guard");
		const char *t = log_str(r, "type", "analysis");

		fprintf(f, "<tr class=\"remark %s\"><td>", t);
		esc(f, log_str(r, "pass", "?"));
		fprintf(f, "</td><td>%s</td><td>", t);
		if (log_int(s, "orig_insn", -1) >= 0) {
			fprintf(f, "<a href=\"#p%ld-l%ld\">%ld</a>&#8594;", p->id,
				log_int(s, "orig_insn", -1), log_int(s, "orig_insn", -1));
			if (log_int(s, "new_insn", -1) >= 0)
				fprintf(f, "%ld", log_int(s, "new_insn", -1));
			else
				fprintf(f, "gone");
		} else {
			fprintf(f, "program");
		}
		fprintf(f, "</td><td class=\"src\">");
		if (log_str(s, "file", NULL)) {
			esc(f, log_str(s, "file", ""));
			fprintf(f, ":%ld ", log_int(s, "line", 0));
			esc(f, log_str(s, "func", ""));
		}
		fprintf(f, "</td><td>");
		esc(f, log_str(r, "msg", ""));
		fprintf(f, "</td><td>");
		esc(f, log_str(as, "text", ""));
		if (json_is_object(g))
			fprintf(f, " <span class=\"guard\">guard slot %ld gen %ld</span>",
				log_int(g, "slot", 0), log_int(g, "generation", 0));
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n");
}

static void src_cell(FILE *f, json_t *l)
{
	const char *s = log_str(l, "src", "");

	while (*s == ' ' || *s == '\t')
		s++;
	esc(f, log_str(l, "file", "?"));
	fprintf(f, ":%ld: ", log_int(l, "line", 0));
	esc(f, s);
}

static void listing(FILE *f, const struct log_file *lf, const struct log_prog *p,
		    struct rs_bpf_disasm *d)
{
	static const char *const cls[] = { "same", "changed", "left", "right", "fold" };
	struct log_listing ls;
	char lt[160], rt[160];
	size_t i;

	if (log_listing_build(p, &ls)) {
		fprintf(f, "<p class=\"note\">no before/after programs in this log</p>\n");
		return;
	}
	fprintf(f, "<table class=\"listing\"><tr><th>#</th><th>before (%zu insns)</th><th>#</th>"
		"<th>after (%zu insns)</th></tr>\n", ls.bcnt, ls.acnt);
	for (i = 0; i < ls.row_cnt; i++) {
		const struct diff_row *row = &ls.rows[i];
		json_t *bl, *al, *r;
		size_t idx = 0;

		if (row->tag == DIFF_FOLD) {
			fprintf(f, "<tr class=\"fold\"><td></td><td></td><td>%ld</td><td>ORIG: %ld "
				"insns, the original main body unchanged (guard fallback)</td></tr>\n",
				row->r, row->l);
			continue;
		}
		bl = row->l >= 0 ? ls.blines[row->l] : NULL;
		al = row->r >= 0 ? ls.alines[row->r] : NULL;
		if (bl && !log_int(bl, "line", 0))
			bl = NULL;
		if (al && !log_int(al, "line", 0))
			al = NULL;
		if (bl || al) {
			fprintf(f, "<tr class=\"srcline\"><td></td><td>");
			if (bl)
				src_cell(f, bl);
			fprintf(f, "</td><td></td><td>");
			if (al)
				src_cell(f, al);
			fprintf(f, "</td></tr>\n");
		}
		log_insn_text(d, ls.bi, ls.bcnt, row->l, lt, sizeof(lt));
		log_insn_text(d, ls.ai, ls.acnt, row->r, rt, sizeof(rt));
		log_map_note(p->before, ls.bi, ls.bcnt, row->l, lt, sizeof(lt));
		log_map_note(p->after, ls.ai, ls.acnt, row->r, rt, sizeof(rt));
		fprintf(f, "<tr class=\"insn %s\"", cls[row->tag]);
		if (row->l >= 0)
			fprintf(f, " id=\"p%ld-l%ld\"", p->id, row->l);
		fprintf(f, "><td>");
		if (row->l >= 0)
			fprintf(f, "%ld", row->l);
		fprintf(f, "</td><td>");
		esc(f, lt);
		fprintf(f, "</td><td>");
		if (row->r >= 0)
			fprintf(f, "%ld", row->r);
		fprintf(f, "</td><td>");
		esc(f, rt);
		fprintf(f, "</td></tr>\n");
		while (row->l >= 0 && (r = log_next(lf, p, "remark", true, &idx))) {
			if (log_int(json_object_get(r, "site"), "orig_insn", -1) != row->l)
				continue;
			fprintf(f, "<tr class=\"annot %s\"><td></td><td colspan=\"3\">&#9650; [",
				log_str(r, "type", ""));
			esc(f, log_str(r, "pass", "?"));
			fprintf(f, "] ");
			esc(f, log_str(r, "msg", ""));
			fprintf(f, "</td></tr>\n");
		}
	}
	fprintf(f, "</table>\n");
	log_listing_free(&ls);
}

static void fmt_ns(char *buf, size_t sz, double v)
{
	if (v > 0)
		snprintf(buf, sz, "%.2f", v);
	else
		snprintf(buf, sz, "&#8211;");
}

static void program_section(FILE *f, const struct log_file *lf, const struct log_prog *p,
			    struct rs_bpf_disasm *d)
{
	double nb = log_real(p->measure, "ns_before", 0), na = log_real(p->measure, "ns_after", 0);
	char b[32], a[32];

	fmt_ns(b, sizeof(b), nb);
	fmt_ns(a, sizeof(a), na);
	fprintf(f, "<section class=\"program\" id=\"prog-%ld\" data-name=\"", p->id);
	esc(f, p->name);
	fprintf(f, "\" data-remarks=\"%zu\">\n<h2>prog %ld (<span class=\"pname\">", p->remarks[0] +
		p->remarks[1] + p->remarks[2], p->id);
	esc(f, p->name);
	fprintf(f, "</span>) <small class=\"js-count\"></small></h2>\n<table class=\"summary\">"
		"<tr><th>instructions</th><td>%ld &#8594; %ld</td></tr>\n"
		"<tr><th>verifier-processed</th><td>%ld &#8594; %ld</td></tr>\n"
		"<tr><th>ns/packet</th><td>%s &#8594; %s</td></tr>\n"
		"<tr><th>maps guarded</th><td>%ld</td></tr>\n"
		"<tr><th>optimizer</th><td>%.2f ms</td></tr>\n"
		"<tr><th>remarks</th><td>%zu passed, %zu missed, %zu analysis</td></tr>\n"
		"<tr><th>passes fired</th><td>",
		p->before ? log_int(p->before, "insn_cnt", -1) : log_int(p->total, "insns_before", -1),
		p->after ? log_int(p->after, "insn_cnt", -1) : log_int(p->total, "insns_after", -1),
		p->before_verified, p->after_verified, b, a, log_int(p->total, "guarded_maps", 0),
		log_real(p->total, "optimizer_ms", 0), p->remarks[0], p->remarks[1], p->remarks[2]);
	esc(f, p->passes[0] ? p->passes : "none");
	fprintf(f, "</td></tr></table>\n<h3>Cost per packet</h3>\n");
	cost_plot(f, lf, p);
	fprintf(f, "<h3>Instructions per pass</h3>\n");
	pass_plot(f, lf, p);
	fprintf(f, "<h3>Hot keys per site</h3>\n");
	hot_keys(f, lf, p);
	fprintf(f, "<h3>Remarks</h3>\n");
	remarks_table(f, lf, p);
	fprintf(f, "<h3>Before / after</h3>\n<details open><summary>annotated listing"
		"</summary>\n");
	listing(f, lf, p, d);
	fprintf(f, "</details>\n</section>\n");
}

int log_cmd_html(const struct log_file *lf, const char *sel, const char *out)
{
	struct log_prog *progs = NULL;
	struct rs_bpf_disasm *d = NULL;
	size_t i, n = 0, shown = 0, rem = 0;
	json_t *run = NULL;
	FILE *f;

	log_group(lf, &progs, &n);
	for (i = 0; i < lf->cnt && !run; i++)
		if (!strcmp(log_str(lf->recs[i], "kind", ""), "run"))
			run = lf->recs[i];
	f = fopen(out, "we");
	if (!f) {
		p_err("%s: %s", out, rs_strerror(-errno));
		free(progs);
		return RS_EXIT_FAIL;
	}
	if (rs_bpf_disasm_open(&d))
		d = NULL;
	for (i = 0; i < n; i++)
		if (log_prog_match(&progs[i], sel)) {
			shown++;
			rem += progs[i].remarks[0] + progs[i].remarks[1] + progs[i].remarks[2];
		}
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		"<title>respec optimization report</title>\n<style>\n%s</style>\n</head>\n"
		"<body>\n<h1>respec optimization report</h1>\n<p class=\"meta\">log ",
		rs_log_html_css);
	esc(f, lf->path);
	fprintf(f, ": %zu records", lf->cnt);
	if (run) {
		fprintf(f, ", written by respec ");
		esc(f, log_str(run, "version", "?"));
		fprintf(f, " on ");
		esc(f, log_str(run, "host", "?"));
		fprintf(f, " (Linux ");
		esc(f, log_str(run, "kernel", "?"));
		fprintf(f, ")");
	}
	fprintf(f, "</p>\n<div id=\"totals\" data-programs=\"%zu\" data-remarks=\"%zu\">"
		"<span id=\"js-programs\"></span> programs, <span id=\"js-remarks\"></span> "
		"remarks</div>\n<table class=\"overview\"><tr><th>program</th><th>insns</th>"
		"<th>verified</th><th>ns/packet</th><th>ratio</th><th>remarks</th>"
		"<th>passes fired</th></tr>\n", shown, rem);
	for (i = 0; i < n; i++) {
		struct log_prog *p = &progs[i];
		double nb = log_real(p->measure, "ns_before", 0);
		double na = log_real(p->measure, "ns_after", 0);

		if (!log_prog_match(p, sel))
			continue;
		fprintf(f, "<tr><td><a href=\"#prog-%ld\">", p->id);
		esc(f, p->name);
		fprintf(f, "</a></td><td>%ld &#8594; %ld</td><td>%ld &#8594; %ld</td>",
			p->before ? log_int(p->before, "insn_cnt", -1) : -1,
			p->after ? log_int(p->after, "insn_cnt", -1) : -1, p->before_verified,
			p->after_verified);
		if (nb > 0 && na > 0)
			fprintf(f, "<td>%.2f &#8594; %.2f</td><td>%.3f</td>", nb, na, na / nb);
		else
			fprintf(f, "<td>&#8211;</td><td>&#8211;</td>");
		fprintf(f, "<td>%zu</td><td>", p->remarks[0] + p->remarks[1] + p->remarks[2]);
		esc(f, p->passes[0] ? p->passes : "none");
		fprintf(f, "</td></tr>\n");
	}
	fprintf(f, "</table>\n");
	for (i = 0; i < n; i++)
		if (log_prog_match(&progs[i], sel))
			program_section(f, lf, &progs[i], d);
	fprintf(f, "<script>\n%s</script>\n</body></html>\n", rs_log_html_js);
	rs_bpf_disasm_close(d);
	free(progs);
	if (fclose(f)) {
		p_err("%s: %s", out, rs_strerror(-errno));
		return RS_EXIT_FAIL;
	}
	if (!shown) {
		p_err("%s: no program%s%s in the log", lf->path, sel ? " matching " : "",
		      sel ? sel : "");
		return RS_EXIT_FAIL;
	}
	rs_info("%s: %zu programs, %zu remarks", out, shown, rem);
	return RS_EXIT_OK;
}
