#!/usr/bin/env bash
# optimize_cli.sh - the offline specializer end to end on every sample data plane:
#   respec replay OBJ --optimize --train TRAIN (training trace of another seed): 0 divergences
#   over 100k evaluation packets, JSON with the interface fields (ratio, optimizer_ms, load_ms,
#   remarks, guards); --invalidate-guards (every guard stale, still 0 divergences); --updates
#   (scenario updates halfway: fallback with stale guards, then a re-specialized program);
#   respec optimize -o x.o, then x.o replayed against the original (0 divergences) and the
#   optimization log (no measure record: optimize does not time); the --updates run writes
#   its log (--log): two rounds, each verified, and one untimed measure record (method
#   "none", 0 divergences); bad input exits 1 with one line, usage errors exit 2.
# Only test runs (BPF_PROG_TEST_RUN) on private maps: no interface, no traffic.
set -u
. "$(dirname "$0")/../lib.sh"
rs_require_root
rs_require_cmd jq
rsp() { timeout 300 "$RESPEC" "$@"; }
BUILD=${1:-${RS_BUILD_DIR:-build}}
SRC=${2:-${RS_SOURCE_DIR:-.}}
TMP=$(mktemp -d /tmp/rs-opt.XXXXXX)
rs_on_exit "rm -rf $TMP"

for s in l4lb:l4lb-16x64 router:router-1k firewall:firewall-100; do
	n=${s%%:*}
	sc=$SRC/bpf/samples/$n/scenarios/${s##*:}.json
	obj=$BUILD/bpf/samples/$n.bpf.o
	[ -f "$obj" ] || fail "$obj missing"
	rsp trace gen --scenario "$sc" --profile high --packets 100000 --seed 11 -o "$TMP/eval.pcap" \
		>/dev/null || fail "$n: trace gen"
	rsp trace gen --scenario "$sc" --profile high --packets 20000 --seed 12 -o "$TMP/train.pcap" \
		>/dev/null || fail "$n: trace gen (train)"

	rsp replay "$obj" --scenario "$sc" --pcap "$TMP/eval.pcap" --optimize \
		--train "$TMP/train.pcap" --no-timing -j >"$TMP/o.json" 2>"$TMP/err" ||
		fail "$n: replay --optimize: $(tail -1 "$TMP/err")"
	jq -e '.divergences == 0 and .packets == 100000 and (.optimizer_ms | type) == "number"
	       and (.load_ms | type) == "number" and .load_ms > 0 and (.remarks >= 1)
	       and .guards.guarded_maps >= 1 and .verify.accepted == true and has("ratio")
	       and (.profile_ms | type) == "number"
	       and .optimizer.insns_optimized > .optimizer.insns_original' "$TMP/o.json" >/dev/null ||
		fail "$n: replay --optimize JSON: $(head -c 600 "$TMP/o.json")"
	pass "$n: replay --optimize: 0 divergences on 100000 packets, $(jq -r '"\(.remarks) remarks, \(.guards.guarded_maps) guarded maps, optimizer \(.optimizer_ms) ms"' "$TMP/o.json")"

	rsp replay "$obj" --scenario "$sc" --pcap "$TMP/eval.pcap" --optimize \
		--train "$TMP/train.pcap" --invalidate-guards --no-timing -j >"$TMP/i.json" \
		2>"$TMP/err" || fail "$n: --invalidate-guards: $(tail -1 "$TMP/err")"
	jq -e '.divergences == 0 and .guards.invalidated == true and .guards.stale_in_timing > 0' \
		"$TMP/i.json" >/dev/null || fail "$n: --invalidate-guards JSON: $(head -c 600 "$TMP/i.json")"
	pass "$n: every guard invalidated: 0 divergences"

	rsp replay "$obj" --scenario "$sc" --pcap "$TMP/eval.pcap" --optimize \
		--train "$TMP/train.pcap" --updates --no-timing --log "$TMP/$n.u.log" -j \
		>"$TMP/u.json" 2>"$TMP/err" || fail "$n: --updates: $(tail -1 "$TMP/err")"
	jq -e '.divergences == 0 and (.phases | length) == 3 and .phases[0].stale_guards == 0
	       and .phases[1].stale_guards > 0 and .phases[2].stale_guards == 0
	       and .phases[2].program == 2 and all(.phases[]; .divergences == 0)' "$TMP/u.json" \
		>/dev/null || fail "$n: --updates JSON: $(head -c 800 "$TMP/u.json")"
	pass "$n: updates halfway: fallback then re-specialized, 0 divergences"
	jq -s -e '([.[] | select(.kind=="verify" and .ok)] | map(.round)) == [1, 2] and
		([.[] | select(.kind=="remark" and .round == 2)] | length) >= 1 and
		([.[] | select(.kind=="snapshot")] | length) == 2 and
		([.[] | select(.kind=="measure")] | length == 1 and .[0].method == "none" and
		 .[0].round == 2 and .[0].divergences == 0 and .[0].packets == 100000 and
		 .[0].ns_after == 0)' "$TMP/$n.u.log" >/dev/null ||
		fail "$n: --updates --log: $(grep -c . "$TMP/$n.u.log") records, $(grep '"measure"' "$TMP/$n.u.log")"
	rsp log stats "$TMP/$n.u.log" >/dev/null || fail "$n: log stats refuses the --updates log"
	pass "$n: --updates --log: two verified rounds, untimed measure with 0 divergences"

	rsp optimize "$obj" --scenario "$sc" --train "$TMP/train.pcap" -o "$TMP/$n.opt.o" \
		--log "$TMP/$n.log" -j >"$TMP/w.json" 2>"$TMP/err" ||
		fail "$n: optimize -o: $(tail -1 "$TMP/err")"
	jq -e '.object_loads == true and .verify.accepted == true' "$TMP/w.json" >/dev/null ||
		fail "$n: optimize JSON: $(cat "$TMP/w.json")"
	grep -q '"kind":"remark"' "$TMP/$n.log" || fail "$n: no remark in the optimization log"
	grep -q '"kind":"verify"' "$TMP/$n.log" || fail "$n: no verify record in the log"
	rsp -j log stats "$TMP/$n.log" | jq -e '.[0].verified_before > 0 and .[0].verified_after > 0
		and .[0].ns_before == null' >/dev/null ||
		fail "$n: optimize log: no verifier counts (or a measure it did not make)"
	! grep -q '"kind":"measure"' "$TMP/$n.log" || fail "$n: optimize wrote a measure record"
	rsp replay "$TMP/$n.opt.o" --scenario "$sc" --pcap "$TMP/eval.pcap" --against "$obj" \
		--no-timing -j >"$TMP/x.json" 2>"$TMP/err" ||
		fail "$n: x.o against the original: $(tail -1 "$TMP/err") $(jq -c '.divergence_list[0]' "$TMP/x.json" 2>/dev/null)"
	jq -e '.divergences == 0' "$TMP/x.json" >/dev/null || fail "$n: x.o diverges"
	pass "$n: optimize -o x.o loads with libbpf and replays with 0 divergences"
done

# one timed run: ratio is a number (never asserted against a threshold here)
n=router
sc=$SRC/bpf/samples/$n/scenarios/router-1k.json
rsp trace gen --scenario "$sc" --profile high --packets 20000 --seed 13 -o "$TMP/t.pcap" >/dev/null
rsp replay "$BUILD/bpf/samples/$n.bpf.o" --scenario "$sc" --pcap "$TMP/t.pcap" --optimize \
	--rounds 3 -j >"$TMP/t.json" 2>"$TMP/err" || fail "timed run: $(tail -1 "$TMP/err")"
jq -e '(.ratio.iqm | type) == "number" and (.ns_per_packet.a.iqm | type) == "number"' \
	"$TMP/t.json" >/dev/null || fail "timed run JSON: $(head -c 600 "$TMP/t.json")"
pass "timed run without --train: ratio $(jq .ratio.iqm "$TMP/t.json")"

# bad input: exit 1 with one line; usage errors: exit 2
echo garbage >"$TMP/bad.o"
rsp replay "$TMP/bad.o" --scenario "$sc" --pcap "$TMP/t.pcap" --optimize >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "bad object: exit $rc"
[ "$(grep -c '^respec:' "$TMP/err")" -eq 1 ] || fail "bad object: not one line: $(cat "$TMP/err")"
rsp optimize "$TMP/bad.o" --scenario "$sc" -o "$TMP/y.o" >/dev/null 2>"$TMP/err"
rc=$?
[ $rc -eq 1 ] || fail "optimize bad object: exit $rc"
[ ! -e "$TMP/y.o" ] || fail "optimize bad object wrote an output"
rsp optimize "$BUILD/bpf/samples/$n.bpf.o" --scenario /nonexistent.json >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] || fail "missing scenario: not exit 1"
rsp replay "$BUILD/bpf/samples/$n.bpf.o" --pcap "$TMP/t.pcap" --train "$TMP/t.pcap" \
	>/dev/null 2>&1
[ $? -eq 2 ] || fail "--train without --optimize: not a usage error"
rsp optimize "$BUILD/bpf/samples/$n.bpf.o" >/dev/null 2>&1
[ $? -eq 2 ] || fail "optimize OBJ without --scenario: not a usage error"
pass "bad input exits 1 with one line, usage errors exit 2"
