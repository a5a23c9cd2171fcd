#!/usr/bin/env bash
# bench_runner.sh - benchmarks/run-bench end to end on a self-contained matrix: the floor
# program as "sample" (its scenario made here, traffic only), two profiles, a short trace.
# Checks the results folder (CSV, Markdown, PNG, latest link, trace cache reuse) and that a
# missing sample is reported, not fatal.  Needs root (replay loads BPF programs).
BUILD_DIR=${1:-build}
SRC_DIR=${2:-.}
RS_BUILD_DIR=$BUILD_DIR
source "$SRC_DIR/tests/lib.sh"
rs_require_root

[ -f "$BUILD_DIR/benchmarks/floor.bpf.o" ] || fail "floor.bpf.o not built"
TMP=$(mktemp -d /tmp/rs-bench-XXXXXX)
rs_on_exit "rm -rf $TMP"
mkdir -p "$TMP/src/bpf/samples/floor/scenarios"
python3 - "$SRC_DIR/benchmarks/scenarios/example.json" \
	"$TMP/src/bpf/samples/floor/scenarios/bench.json" <<'PY' || fail "scenario"
import json, sys
d = json.load(open(sys.argv[1]))
d["program"] = "floor"
json.dump(d, open(sys.argv[2], "w"))
PY

run() {
	"$SRC_DIR/benchmarks/run-bench" "$BUILD_DIR" --quick --packets 2000 --rounds 2 \
		--out "$TMP/results" --source "$TMP/src" --samples floor,nosuchsample \
		--profiles high,shift >"$TMP/out" 2>"$TMP/err"
}
run || fail "run-bench exited $?: $(cat "$TMP/err")"
L=$TMP/results/latest
[ -L "$L" ] || fail "no latest link"
for f in results.csv results.md floor.png commands.log; do
	[ -s "$L/$f" ] || fail "missing $f: $(tail -5 "$TMP/err"; grep -i "gnuplot\|plot" "$L/commands.log" 2>/dev/null | tail -5; cat "$L"/*.dat 2>/dev/null)"
done
python3 - "$L/results.csv" <<'PY' || fail "results.csv: $(cat "$L/results.csv")"
import csv, sys
rows = {(r["sample"], r["profile"]): r for r in csv.DictReader(open(sys.argv[1]))}
assert set(rows) == {("floor", "high"), ("floor", "shift"),
                     ("nosuchsample", "high"), ("nosuchsample", "shift")}, rows
for p in ("high", "shift"):
    r = rows[("floor", p)]
    assert r["original_ns"] != "" and float(r["original_ns"]) < 20, r    # empty program
    assert float(r["driver_ns"]) > 0, r
    assert r["divergences"] == "0", r
    assert r["status"] == "no ceiling object", r
    assert rows[("nosuchsample", p)]["status"].startswith("skipped"), rows
PY
grep -q "| floor | high |" "$L/results.md" || fail "results.md has no floor row"
# one evaluation trace (seed 1) and one training trace (seed 1001) per profile
[ "$(ls "$TMP/results/traces/"*-s1-*.pcap | wc -l)" -eq 2 ] &&
	[ "$(ls "$TMP/results/traces/"*-s1001-*.pcap | wc -l)" -eq 2 ] || fail "traces not cached"
pass "matrix measured, results written"

first=$(readlink "$L")
sleep 1
touch "$TMP/stamp"
run || fail "second run-bench exited $?"
[ "$(readlink "$L")" != "$first" ] || fail "latest not moved"
[ -z "$(find "$TMP/results/traces" -name '*.pcap' -newer "$TMP/stamp")" ] ||
	fail "cached traces were regenerated"
pass "second run reuses cached traces, latest moves"

"$SRC_DIR/benchmarks/run-bench" "$BUILD_DIR" --profiles bogus >/dev/null 2>&1
[ $? -eq 2 ] || fail "bad profile is not a usage error"
pass "usage error exits 2"
