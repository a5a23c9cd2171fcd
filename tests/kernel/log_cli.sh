#!/usr/bin/env bash
# log_cli.sh - `respec log` on real optimization logs of the sample data planes.
#
# For each sample (l4lb, router, firewall) the log is written by the offline pipeline itself:
# `respec replay OBJ --scenario S --pcap EVAL --optimize --train TRAIN --log FILE` (training
# trace of another seed; replay-isolated object, original lifted back, profile, guarded
# snapshot, rs_optimize, kernel verifier, replay + A/B timing).
# Checks: the log has every record kind of an offline optimization (run, snapshot, profile,
# program before/after with lines, remark, pass_stats, verify, measure with ns/packet of
# original and optimized and 0 divergences); every remark with a site resolves to a source
# line (samples are built with BTF) and `log diff` shows it there; `remarks --yaml` has one
# document per remark; stats (ns/packet before/after as numbers), show, diff --jited;
# --invalidate-guards adds the guard-fallback figure; the HTML report renders in headless
# Chromium with no console message, with the program names, the remark count computed by its
# script and the cost plots with the measured numbers; a screenshot is kept in the build tree
# (tests/artifacts/log_report.png); truncated logs fail with the line.
# Timings are reported, never asserted against a threshold.
# Needs root (BPF) and /usr/bin/chromium (./run installs it; skipped when missing).
# Everything runs in BPF_PROG_TEST_RUN: no interface, no traffic; temporary files are removed.
set -u
BUILD=${1:-${RS_BUILD_DIR:-build}}
SRC=${2:-${RS_SOURCE_DIR:-.}}
. "$SRC/tests/lib.sh"
rs_require_root
if [ ! -x /usr/bin/chromium ]; then
	echo "SKIP: /usr/bin/chromium is missing (./run installs the Debian package chromium)" >&2
	exit 77
fi
command -v jq >/dev/null || fail "jq missing (./run installs it)"

T=$(mktemp -d /tmp/rs-logcli-$$.XXXX)
rs_on_exit "rm -rf $T"
ART="$BUILD/tests/artifacts"
mkdir -p "$ART"
rsp() { timeout 300 "$RESPEC" "$@"; }

declare -A SCEN=([l4lb]=l4lb-16x64.json [router]=router-1k.json [firewall]=firewall-100.json)
ALL="$T/all.jsonl"
: >"$ALL"
total_remarks=0
names=()
for s in l4lb router firewall; do
	scen="$SRC/bpf/samples/$s/scenarios/${SCEN[$s]}"
	obj="$BUILD/bpf/samples/$s.bpf.o"
	rsp trace gen --scenario "$scen" --profile high --packets 20000 --seed 5 \
		-o "$T/$s.pcap" >/dev/null 2>&1 || fail "$s: trace gen"
	rsp trace gen --scenario "$scen" --profile high --packets 5000 --seed 6 \
		-o "$T/$s.train.pcap" >/dev/null 2>&1 || fail "$s: trace gen (train)"
	LOG="$T/$s.jsonl"
	rsp replay "$obj" --scenario "$scen" --pcap "$T/$s.pcap" --optimize \
		--train "$T/$s.train.pcap" --rounds 3 --log "$LOG" -j >"$T/$s.json" 2>"$T/err" ||
		fail "$s: replay --optimize --log: $(tail -1 "$T/err")"
	cat "$LOG" >>"$ALL"
	name=$(jq -r 'select(.kind=="program") | .prog.name' "$LOG" | head -1)
	names+=("$name")

	# the records of one offline optimization, in a log the reader accepts
	for k in run snapshot profile remark pass_stats verify measure; do
		[ "$(jq -s "[.[] | select(.kind==\"$k\")] | length" "$LOG")" -ge 1 ] ||
			fail "$s: no $k record"
	done
	jq -s -e '[.[] | select(.kind=="program" and .role=="before" and .jit != null
		and (.lines | length) > 0)] | length >= 1' "$LOG" >/dev/null ||
		fail "$s: no before program with JIT image and source lines"
	jq -s -e '[.[] | select(.kind=="program" and .role=="after" and .jit != null
		and (.lines | length) > 0)] | length >= 1' "$LOG" >/dev/null ||
		fail "$s: no after program with JIT image and source lines"
	jq -s -e '[.[] | select(.kind=="verify")] | .[-1].ok == true and .[-1].verified_insns > 0' \
		"$LOG" >/dev/null || fail "$s: verify record"
	jq -s -e --slurpfile o "$T/$s.json" '[.[] | select(.kind=="measure")] | length == 1 and
		.[0].what == "replay" and .[0].ns_before > 0 and .[0].ns_after > 0 and
		.[0].divergences == 0 and .[0].packets == 20000 and
		.[0].ns_before == $o[0].ns_per_packet.a.iqm and
		.[0].ns_after == $o[0].ns_per_packet.b.iqm' "$LOG" >/dev/null ||
		fail "$s: measure record does not carry the replay's numbers: $(grep '"measure"' "$LOG")"
	"$RESPEC" log show "$LOG" >/dev/null || fail "$s: log show refuses the log"
	pass "$s: replay --optimize --log: $(jq -r 'select(.kind=="measure") |
		"\(.ns_before * 100 | round / 100) -> \(.ns_after * 100 | round / 100) ns/packet (\(.method))"' "$LOG")"

	# every remark with a site has a source line
	sited=$(jq -s '[.[] | select(.kind=="remark" and .site.orig_insn >= 0)] | length' "$LOG")
	unres=$(jq -s '[.[] | select(.kind=="remark" and .site.orig_insn >= 0 and
		(.site.file == null or .site.line == null or .site.line == 0))] | length' "$LOG")
	[ "$sited" -gt 0 ] || fail "$s: no remark with a site"
	[ "$unres" -eq 0 ] || fail "$s: $unres of $sited remark sites without a source line"
	pass "$s: $sited remark sites, all resolve to a source line"

	# ... and the diff shows each one at its site with that line
	"$RESPEC" log diff "$LOG" >"$T/$s.diff" || fail "$s: log diff"
	missing=0
	while IFS= read -r want; do
		grep -qF -- "$want" "$T/$s.diff" || { echo "missing in diff: $want" >&2; missing=$((missing + 1)); }
	done < <(jq -r 'select(.kind=="remark" and .site.orig_insn >= 0) |
		"^ [\(.pass) \(.type)] insn \(.site.orig_insn) \(.site.file):\(.site.line)"' "$LOG")
	[ "$missing" -eq 0 ] || fail "$s: $missing remark sites not shown by log diff"
	grep -q "ORIG: .* insns, the original main body" "$T/$s.diff" ||
		fail "$s: diff does not fold the guard fallback"
	grep -q '^      ; .*\.[ch]:[0-9]*: ' "$T/$s.diff" || fail "$s: no source lines in diff"
	pass "$s: log diff shows every remark at its source line"

	# YAML: one document per remark, DebugLoc for sited ones
	nrem=$(jq -s '[.[] | select(.kind=="remark")] | length' "$LOG")
	total_remarks=$((total_remarks + nrem))
	"$RESPEC" log remarks "$LOG" --yaml >"$T/$s.yaml" || fail "$s: remarks --yaml"
	ndoc=$(grep -c '^--- !\(Passed\|Missed\|Analysis\)$' "$T/$s.yaml")
	nloc=$(grep -c '^DebugLoc:        { File: .*, Line: [1-9][0-9]*, Column: [0-9]* }$' "$T/$s.yaml")
	[ "$ndoc" -eq "$nrem" ] || fail "$s: $ndoc YAML documents for $nrem remarks"
	[ "$nloc" -eq "$sited" ] || fail "$s: $nloc DebugLoc for $sited sited remarks"
	python3 - "$T/$s.yaml" <<'EOF' || fail "$s: YAML does not parse"
import sys
try:
    import yaml
except ImportError:
    sys.exit(0)
class L(yaml.SafeLoader):
    pass
for t in ("!Passed", "!Missed", "!Analysis"):
    L.add_constructor(t, lambda l, n: l.construct_mapping(n))
docs = list(yaml.load_all(open(sys.argv[1]), Loader=L))
assert all("Pass" in d and "Name" in d and "Args" in d for d in docs)
EOF
	pass "$s: $ndoc remarks as LLVM remarks YAML"

	"$RESPEC" log stats "$LOG" >"$T/$s.stats" || fail "$s: log stats"
	grep -q "^$name " "$T/$s.stats" || fail "$s: stats has no row for $name"
	"$RESPEC" -j log stats "$LOG" | jq -e '.[0].verified_before > 0 and .[0].verified_after > 0 and
		.[0].ns_before > 0 and .[0].ns_after > 0 and .[0].ratio > 0' >/dev/null ||
		fail "$s: stats lack verifier counts or ns/packet"
	nb=$(jq -r 'select(.kind=="measure") | .ns_before' "$LOG")
	grep "^$name " "$T/$s.stats" | grep -qF " $(printf '%.2f' "$nb") " ||
		fail "$s: stats table does not show ns/packet $nb"
	"$RESPEC" log show "$LOG" --kind verify | grep -q "accepted" || fail "$s: verify not shown"
	"$RESPEC" log diff "$LOG" --jited | grep -q "after: JIT image [0-9]* bytes" ||
		fail "$s: diff --jited has no JIT listing"
	pass "$s: stats, show, diff --jited"
done

# --invalidate-guards: the fallback figure, and the guards-on figure written last (stats)
s=firewall
rsp replay "$BUILD/bpf/samples/$s.bpf.o" --scenario "$SRC/bpf/samples/$s/scenarios/${SCEN[$s]}" \
	--pcap "$T/$s.pcap" --optimize --train "$T/$s.train.pcap" --invalidate-guards --rounds 3 \
	--log "$T/inv.jsonl" -j >"$T/inv.json" 2>"$T/err" || fail "--invalidate-guards --log: $(tail -1 "$T/err")"
jq -s -e '[.[] | select(.kind=="measure")] | length == 2 and
	.[0].what == "guards_invalidated" and .[0].divergences == 0 and .[0].ns_after > 0 and
	.[1].what == "replay" and .[1].ns_after > 0 and .[1].divergences == -1' "$T/inv.jsonl" \
	>/dev/null || fail "--invalidate-guards: measure records: $(grep '"measure"' "$T/inv.jsonl")"
jq -e --slurpfile l "$T/inv.jsonl" '.ns_per_packet.b.iqm ==
	($l | map(select(.kind=="measure"))[0].ns_after)' "$T/inv.json" >/dev/null ||
	fail "--invalidate-guards: the fallback figure is not the replay's"
"$RESPEC" -j log stats "$T/inv.jsonl" | jq -e --slurpfile l "$T/inv.jsonl" '.[0].ns_after ==
	($l | map(select(.kind=="measure"))[1].ns_after)' >/dev/null ||
	fail "--invalidate-guards: log stats does not report the guards-on figure"
pass "--invalidate-guards --log: $(jq -r 'select(.kind=="measure") |
	"\(.what) \(.ns_before * 100 | round / 100) -> \(.ns_after * 100 | round / 100)"' "$T/inv.jsonl" |
	paste -sd, -) ns/packet"

# corrupt / truncated
head -c $(($(stat -c %s "$ALL") - 30)) "$ALL" >"$T/trunc.jsonl"
lines=$(wc -l <"$T/trunc.jsonl")
"$RESPEC" log show "$T/trunc.jsonl" >/dev/null 2>"$T/trunc.err"
[ $? -eq 1 ] || fail "truncated log: exit code is not 1"
grep -q "trunc.jsonl:$((lines + 1)): truncated record" "$T/trunc.err" ||
	fail "truncated log: no line number ($(cat "$T/trunc.err"))"
pass "truncated log refused with its line number"

# HTML report in headless Chromium
"$RESPEC" log html "$ALL" -o "$T/report.html" || fail "log html"
grep -q 'src="http\|href="http\|<link ' "$T/report.html" && fail "report refers to the network"
chrome() {
	local u
	u=$(mktemp -d "$T/chrome.XXXX")
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --disable-sync --no-first-run --user-data-dir="$u" \
		--enable-logging=stderr --v=0 "$@"
}
# the console check itself: a page with an error must be caught
echo '<html><body><script>null.x;</script></body></html>' >"$T/err.html"
chrome --dump-dom "file://$T/err.html" >/dev/null 2>"$T/err.log"
grep -q ':CONSOLE' "$T/err.log" || fail "console errors are not visible in chromium's log"
chrome --dump-dom "file://$T/report.html" >"$T/dom.html" 2>"$T/chrome.log" || fail "chromium --dump-dom"
if grep ':CONSOLE' "$T/chrome.log"; then
	fail "report: console messages"
fi
grep -q 'data-js="ok"' "$T/dom.html" || fail "report: script did not run"
for n in "${names[@]}"; do
	grep -q "<span class=\"pname\">$n</span>" "$T/dom.html" || fail "report: no section for $n"
done
got=$(grep -o 'id="js-remarks">[0-9]*' "$T/dom.html" | grep -o '[0-9]*$')
[ "$got" = "$total_remarks" ] || fail "report: script counts $got remarks, log has $total_remarks"
progs=$(grep -o 'id="js-programs">[0-9]*' "$T/dom.html" | grep -o '[0-9]*$')
[ "$progs" = 3 ] || fail "report: $progs program sections"
[ "$(grep -o '<svg class="plot cost-plot"' "$T/dom.html" | wc -l)" -eq 3 ] || fail "report: cost plots"
# the cost plots carry the measured numbers of each log
for s in l4lb router firewall; do
	want=$(jq -r 'select(.kind=="measure") | "\(.ns_before) \(.ns_after)"' "$T/$s.jsonl" |
		awk '{ printf "%.2f&#8594;%.2f", $1, $2 }')
	grep -qF "$want" "$T/report.html" || fail "report: $s cost plot lacks $want"
done
[ "$(grep -o '<svg class="plot pass-plot"' "$T/dom.html" | wc -l)" -eq 3 ] || fail "report: pass plots"
grep -q '<tr class="hotkey">' "$T/dom.html" || fail "report: no hot keys"
rm -f "$ART/log_report.png"
(cd "$T" && chrome --screenshot="$ART/log_report.png" --window-size=1280,2400 \
	"file://$T/report.html" >/dev/null 2>&1)
[ -s "$ART/log_report.png" ] || fail "report: no screenshot"
cp "$T/report.html" "$ART/log_report.html"
pass "report renders in chromium: ${names[*]}, $total_remarks remarks, plots; screenshot $ART/log_report.png"
