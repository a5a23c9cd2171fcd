#!/usr/bin/env bash
# agent_xdpfilter.sh - a running `respec agent` optimizes xdp-filter (xdp-tools), loaded by the
# xdp-filter command, under traffic through a veth pair in a private namespace:
#   - the specialized program goes in, then periodic profile windows swap the instrumented
#     variant in and out again and again: >= 100 agent swaps with 0 frames lost and every
#     verdict right;
#   - `xdp-filter ip 10.1.0.1 -m src` during traffic: every frame from that address sent after
#     the command returned is dropped (the guard of the emptied-table elimination falls), and
#     the agent re-specializes (target 3 s; 6 s asserted, see below);
#   - SIGTERM puts xdp-filter's own program back.
set -u
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"
. "$(dirname "$0")/agent_lib.bash"
command -v xdp-filter >/dev/null || { echo "SKIP: xdp-filter (xdp-tools) not installed" >&2; exit 77; }

agent_setup xfilt
$RS_NSENTER xdp-filter load -m skb -p allow "$RS_VETH1" || fail "xdp-filter load"
rs_on_exit "$RS_NSENTER xdp-filter unload $RS_VETH1"
rs_on_exit "$RESPEC restore all journal $AG_JOURNAL"	# before the unload (runs first)
AG_PROG=$(xdp_prog_id)
[ "$AG_PROG" != 0 ] || fail "xdp-filter attached nothing"
traffic_start --pps 1500 --flow blk,udp,10.1.0.1,10.250.0.2,1000,80 \
	--flow p81,udp,10.1.0.2,10.250.0.2,1001,81 --flow t443,tcp,10.1.0.3,10.250.0.2,1002,443
agent_start '"profile": {"base_window_s": 0, "window_s": 0.25, "interval_s": 0.05, "drift_min_coverage": 0}'

wait_oplog '.event == "swap" and .version == 1' 60 ||
	fail "no specialized program swapped in: $(tail -5 "$AG_TMP/agent.err")"
pass "xdp-filter prog $AG_PROG ($($RS_NSENTER ip -j link show "$RS_VETH1" | jq -r '.[0].xdp.prog.name // "?"')) specialized: prog $(xdp_prog_id) in place"

# a wall-clock budget (each count runs jq: an iteration count would stretch under load)
deadline=$((SECONDS + 240))
while [ "$(count_oplog '.event == "swap"')" -lt 100 ] && [ "$SECONDS" -lt "$deadline" ]; do
	sleep 1
done
swaps=$(count_oplog '.event == "swap"')
[ "$swaps" -ge 100 ] || fail "only $swaps swaps"
pass "$swaps agent swaps under traffic (specialized <-> instrumented)"

# the agent may already have re-specialized (periodically) during the swaps above: the
# re-specialization that counts is a newer version swapped in after the update
v0=$(jq -s '[.[] | select(.event == "swap") | (.version // 0)] | max // 0' "$AG_LOG")
date +%s.%N >> "$AG_TMP/marks"
$RS_NSENTER xdp-filter ip -m src 10.1.0.1 || fail "xdp-filter ip -m src 10.1.0.1"
date +%s.%N >> "$AG_TMP/marks"
t0=$(tail -2 "$AG_TMP/marks" | head -1)
newer=".event == \"swap\" and (.version // 0) > $v0 and .time >= $t0"
wait_oplog "$newer" 15 || fail "never re-specialized after the ip update"
t=$(jq -r "select($newer) | .time" "$AG_LOG" | head -1)
d=$(python3 -c "print('%.2f' % ($t - $t0))")
# The target is 3 s.  The canary's clones are batch copies now (instrument/mapcopy.c: the
# 65536-entry port array in ~15-75 ms instead of 0.7-2 s), yet on a loaded 2-core VM the
# whole path still measured 1.4-2.6 s: not comfortably below 3 s, so the bound asserted stays
# 6 s and the time is printed (docs/agent.md, "Measured").
python3 -c "import sys; sys.exit(0 if $t - $t0 <= 6 else 1)" || fail "re-specialized $d s after the update"
pass "xdp-filter ip -m src 10.1.0.1: re-specialized in $d s (target 3 s)"
sleep 1
traffic_stop

for f in p81 t443; do
	[ "$(flow_count $f sent)" -gt 1000 ] || fail "$f: too few frames"
	[ "$(flow_count $f pass)" -eq "$(flow_count $f sent)" ] ||
		fail "$f: $(flow_count $f drop) of $(flow_count $f sent) frames lost"
done
[ "$(flow_count blk pass 0)" -eq "$(flow_count blk sent 0)" ] ||
	fail "blk: $(flow_count blk drop 0) frames lost before the update"
[ "$(flow_count blk sent 2)" -gt 100 ] || fail "blk: too few frames after the update"
[ "$(flow_count blk pass 2)" -eq 0 ] ||
	fail "blk: $(flow_count blk pass 2) frames passed after 'xdp-filter ip'"
pass "$(jq .sent "$AG_TMP/traffic.json") frames: 0 lost, every verdict right ($(jq -c '.flows.blk.segments | map({sent, pass, drop})' "$AG_TMP/traffic.json"))"

agent_stop
[ "$(xdp_prog_id)" = "$AG_PROG" ] || fail "after SIGTERM prog $(xdp_prog_id) is at $RS_VETH1, not $AG_PROG"
pass "SIGTERM: xdp-filter's prog $AG_PROG back"
