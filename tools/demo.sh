#!/usr/bin/env bash
# demo.sh - the respec demo (`sudo ./run demo` execs `tools/demo.sh BUILD_DIR`), docs/demo.md.
#
# In a private network namespace with a veth pair: the l4lb sample is started by its own
# loader with the l4lb-16x64 scenario, an AF_PACKET sender (tools/rs_traffic.py) pushes TCP
# and UDP flows to four VIPs and to a non-VIP address through the veth, and `respec agent`
# is started.  The agent's optimization log is shown live: fetch, cost window, profile (hot
# keys per lookup site), snapshot, specialization, verifier, canary replay of sampled packets,
# the swap, and ns/packet before/after.  Then a VIP is deleted through the loader's control
# plane: the guard falls back at once (verdicts change with the next frame) and the agent
# re-specializes.  SIGTERM to the agent puts the loader's program back; everything the demo
# made is removed on exit, also on Ctrl-C.  Takes about a minute.
set -u
BUILD=$(cd "${1:-build}" && pwd) || { echo "demo: build dir ${1:-build} missing" >&2; exit 1; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
export RESPEC=$BUILD/tools/respec RS_BUILD_DIR=$BUILD RS_SOURCE_DIR=$SRC
. "$SRC/tests/lib.sh"
. "$SRC/tests/e2e/agent_lib.bash"

B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' Y=$'\e[33m' N=$'\e[0m'
[ -t 1 ] || { B= D= G= Y= N=; }
T0=$(date +%s.%N)
say() {
	printf '%s[%5.1fs]%s %s%s%s\n' "$D" "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN { print a - b }')" \
		"$N" "$B" "$*" "$N"
}
missing() { printf '%s        not available: %s%s\n' "$Y" "$*" "$N"; }
fail() { printf '%sdemo: %s%s\n' "$Y" "$*" "$N" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "needs root (BPF, network namespaces): sudo ./run demo"
for f in "$RESPEC" "$BUILD/bpf/samples/l4lb/l4lb-loader"; do
	[ -x "$f" ] || fail "$f missing: build first (./run build)"
done

say "1/7 private network namespace with a veth pair (rsv0 <-> rsv1)"
agent_setup demo
echo "        namespace $RS_NS, everything is removed on exit"

say "2/7 l4lb started by its own loader on rsv1 (XDP), scenario l4lb-16x64 (16 VIPs x 64 backends)"
loader_start l4lb "$SRC/bpf/samples/l4lb/scenarios/l4lb-16x64.json"
echo "        $(head -1 "$AG_TMP/loader.out")"

say "3/7 traffic through the veth: 4 VIP flows (balanced: XDP_TX) and 1 non-VIP flow (XDP_PASS)"
traffic_start --pps 2000 --flow vip1,tcp,10.1.0.1,10.100.0.1,40001,80 \
	--flow vip2,tcp,10.1.0.2,10.100.0.2,40002,443 --flow vip4,tcp,10.1.0.4,10.100.0.4,40004,443 \
	--flow dns,udp,10.1.0.5,10.100.0.11,40005,53 --flow other,udp,10.1.0.6,10.7.7.7,40006,9
echo "        2000 frames/s from rsv0, fates read back on both ends by sequence number"

say "4/7 respec agent started (optimization log shown live)"
agent_start '"profile": {"base_window_s": 2, "window_s": 3}, "revert": {"delay_s": 1, "window_s": 2}'
# live view of the optimization log
mkfifo "$AG_TMP/view"
tail -n +1 -F --pid=$$ "$AG_LOG" > "$AG_TMP/view" 2>/dev/null &
VIEW_TAIL=$!
rs_on_exit "kill $VIEW_TAIL"
jq -r --unbuffered --argjson t0 "$T0" '
	def ts: "\u001b[2m[" + ((.time - $t0) * 10 | floor / 10 | tostring) + "s]\u001b[0m";
	if .event == "fetch" or .event == "verify" or .event == "canary" or .event == "rollback"
	   or .event == "guard" or .event == "foreign" or .event == "restore"
	   or .event == "snapshot" then ts + " " + .event + ": " + .msg
	elif .event == "measure" then ts + " \u001b[32mmeasure\u001b[0m: " + .msg
	elif .event == "swap" then ts + " \u001b[32mswap\u001b[0m: " + .msg
	elif .event == "profile" and .sites then ts + " profile: " + .msg + "\n" +
		([.sites[] | select(.lookups > 0) | "            lookup at insn \(.insn) (\(.map)): \(.lookups) sampled lookups, \(.hot_keys) hot keys" +
		  (if (.top | length) > 0 then ", top: " + ([.top[] | "\(.key) \(.share * 100 | floor)%"] | join(", ")) else "" end)] | join("\n"))
	elif .event == "optimize" then ts + " optimize: " + .msg + "\n" +
		([.remarks[] | select(.kind == "applied" and .pass != "dce" and .pass != "layout") |
		  "            \(.pass): \(.msg)"] | unique | .[0:6] | join("\n"))
	else empty end' < "$AG_TMP/view" 2>/dev/null &
VIEW=$!
rs_on_exit "kill $VIEW"

if ! wait_oplog '.event == "swap" and .version == 1' 60; then
	missing "no specialized program was swapped in within 60 s (see $AG_TMP/agent.err)"
else
	wait_oplog '.event == "measure" and .what == "optimized"' 10 ||
		missing "no live cost window on the specialized program yet"
	sleep 0.5
	say "5/7 before / after"
	jq -r 'select(.event == "measure") |
		if .what == "replay" then
		  "        A/B replay of \(.packets) sampled packets: original \(.orig_ns_per_packet | floor) ns/packet, specialized \(.opt_ns_per_packet | floor) ns/packet (ratio \(.ratio * 100 | floor / 100))"
		elif .what == "original" then
		  "        live bpf_stats window, original:    \(.ns_per_packet | floor) ns/packet over \(.packets) packets"
		elif .what == "optimized" then
		  "        live bpf_stats window, specialized: \(.ns_per_packet | floor) ns/packet over \(.packets) packets"
		else empty end' "$AG_LOG"
fi

say "6/7 control plane: VIP 10.100.0.4:443 deleted through the loader during traffic"
loader_cmd delete vip_map '{"v4":"10.100.0.4","port":443,"proto":6}'
if wait_oplog '.event == "swap" and .version == 2' 15; then
	t=$(jq -r 'select(.event == "swap" and .version == 2) | .time' "$AG_LOG" | head -1)
	m=$(tail -2 "$AG_TMP/marks" | head -1)
	echo "        ${G}re-specialized $(python3 -c "print('%.2f' % ($t - $m))") s after the update${N}"
else
	missing "no re-specialization after the VIP delete within 15 s"
fi
sleep 2
traffic_stop
jq -r '"        frames of vip4 (10.100.0.4:443): before the delete \(.flows.vip4.segments[0].tx) balanced / \(.flows.vip4.segments[0].pass) passed; after it \(.flows.vip4.segments[2].tx) balanced / \(.flows.vip4.segments[2].pass) passed (guard: from the next frame on)",
	"        all flows: \(.sent) frames sent, \([.flows[].drop] | add) lost"' "$AG_TMP/traffic.json"

say "7/7 SIGTERM to the agent: every original back"
agent_stop
now=$(xdp_prog_id)
if [ "$now" = "$AG_PROG" ]; then
	echo "        ${G}the loader's prog $AG_PROG is back on rsv1${N}"
else
	echo "        ${Y}prog $now on rsv1 (loader's was $AG_PROG): running respec restore all${N}"
	"$RESPEC" restore all journal "$AG_JOURNAL"
fi
grep -E '^respec_agent_(swaps|guard_invalidations|respecializations|canary_runs)_total' \
	"$AG_TMP/metrics.prom" | sed 's/^/        metrics: /'
sleep 0.3
kill "$VIEW_TAIL" "$VIEW" 2>/dev/null
say "done: cleaning up (respec log show on the optimization log, first lines:)"
"$RESPEC" log show "$AG_TMP/optlog.jsonl" 2>/dev/null | head -5 | sed 's/^/        /'
