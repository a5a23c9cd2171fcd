#!/usr/bin/env bash
# trace_cli.sh - `respec trace gen` from the command line: output files, per-seed determinism,
# the truth file, progress on stderr, and the exit codes of its errors (1 failure, 2 usage).
# Needs no root and no BPF; it only writes into a temporary directory that it removes.
BUILD_DIR=${1:-build}
SRC_DIR=${2:-.}
RS_BUILD_DIR=$BUILD_DIR
source "$SRC_DIR/tests/lib.sh"

TMP=$(mktemp -d /tmp/rs-trace-cli-XXXXXX)
rs_on_exit "rm -rf $TMP"
SC=$SRC_DIR/benchmarks/scenarios/example.json
[ -f "$SC" ] || fail "missing $SC"

# expect CODE CMD...: run CMD, require exit code CODE, keep stderr in $TMP/err
expect() {
	local want=$1 rc
	shift
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	[ "$rc" -eq "$want" ] || fail "'$*' exited $rc, want $want: $(cat "$TMP/err")"
}

expect 0 "$RESPEC" trace help
grep -q "trace gen" "$TMP/out" || fail "help does not show 'trace gen'"
pass "trace help"

expect 0 "$RESPEC" trace gen --scenario "$SC" --profile high --packets 5000 --seed 3 \
	-o "$TMP/a.pcap" --truth "$TMP/a.json" --top 5
expect 0 "$RESPEC" trace gen --scenario "$SC" --profile high --packets 5000 --seed 3 -o "$TMP/b.pcap"
expect 0 "$RESPEC" trace gen --scenario "$SC" --profile high --packets 5000 --seed 4 -o "$TMP/c.pcap"
# pcap header (24) + 5000 records of at least 16 + 60 bytes
[ "$(stat -c %s "$TMP/a.pcap")" -gt $((24 + 5000 * 76)) ] || fail "pcap too small"
cmp -s "$TMP/a.pcap" "$TMP/b.pcap" || fail "same seed, different pcap"
cmp -s "$TMP/a.pcap" "$TMP/c.pcap" && fail "different seeds, same pcap"
pass "pcap written, deterministic per seed"

python3 - "$TMP/a.json" <<'PY' || fail "truth file"
import json, sys
t = json.load(open(sys.argv[1]))
assert t["packets"] == 5000 and t["profile"] == "high", t
top = t["top"]
assert len(top) == 5
assert all(top[i]["packets"] >= top[i + 1]["packets"] for i in range(4))
assert top[0]["share"] > 0.1, top[0]
assert len(t["phases"]) == 1
PY
pass "truth file: top 5 sorted, hot first flow"

expect 0 "$RESPEC" -j trace gen --scenario "$SC" --profile shift --packets 2000 -o "$TMP/s.pcap" \
	--truth "$TMP/s.json"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['packets']==2000, d" \
	"$TMP/out" || fail "-j output"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['phases'])==2" \
	"$TMP/s.json" || fail "shift truth has no two phases"
pass "json output, shift phases"

expect 0 "$RESPEC" trace gen --scenario "$SC" --profile none --packets 1000000 -o /dev/null
grep -q "100%" "$TMP/err" || fail "no progress on stderr for 1e6 packets"
pass "progress on stderr"

# failures: exactly one line on stderr, exit 1
echo '{ "program": "x", "maps": {} }' >"$TMP/notraffic.json"
for args in "--profile bogus -o $TMP/x.pcap --scenario $SC" \
	    "--profile high -o $TMP/x.pcap --scenario $TMP/notraffic.json" \
	    "--profile high -o $TMP/nodir/x.pcap --scenario $SC" \
	    "--profile high -o $TMP/x.pcap --scenario $TMP/missing.json"; do
	# shellcheck disable=SC2086
	expect 1 "$RESPEC" trace gen --packets 10 $args
	[ "$(wc -l <"$TMP/err")" -eq 1 ] || fail "'$args': not one line: $(cat "$TMP/err")"
done
[ -e "$TMP/nodir/x.pcap" ] && fail "output left behind"
pass "failures exit 1 with one line"

expect 2 "$RESPEC" trace gen --scenario "$SC" --profile high -o "$TMP/x.pcap"
expect 2 "$RESPEC" trace gen --scenario "$SC" --profile high --packets many -o "$TMP/x.pcap"
expect 2 "$RESPEC" trace frobnicate
pass "usage errors exit 2"
