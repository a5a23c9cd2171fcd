#!/usr/bin/env bash
# agent_router.sh - a running `respec agent` optimizes the router sample loaded by its own
# loader, under traffic through a veth pair in a private namespace:
#   - the specialized program goes in: 0 frames lost, routed frames bounced, unrouted dropped;
#   - a route is added through the loader during traffic: frames to it are forwarded from
#     the next frame on (guard), re-specialized within 3 s;
#   - someone else replaces the program at the point (ip -force link set ... xdpgeneric): the
#     agent never overwrites it, drops its state (oplog "foreign"), and `respec restore all`
#     leaves the foreign program in place.
set -u
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"
. "$(dirname "$0")/agent_lib.bash"

agent_setup router
loader_start router "$AG_SRC/bpf/samples/router/scenarios/router-1k.json"
traffic_start --pps 1500 --flow r10,udp,10.9.0.1,10.1.2.5,1000,53 \
	--flow r10b,udp,10.9.0.2,10.200.0.9,1001,53 --flow new,udp,10.9.0.3,5.5.5.5,1002,53
agent_start

wait_oplog '.event == "swap" and .version == 1' 60 ||
	fail "no specialized program swapped in: $(tail -5 "$AG_TMP/agent.err")"
ours=$(xdp_prog_id)
[ "$ours" != "$AG_PROG" ] || fail "the loader's program is still in place"
pass "router prog $AG_PROG specialized: prog $ours in place"
# 1500 pps over a 1.5 s window: far fewer than 2048 samples at the default 1 in 256, so the
# agent samples more (docs/agent.md, PROFILE)
rate=$(jq -r 'select(.event == "profile" and .instrumented_id) | .sample_rate' "$AG_LOG" | head -1)
[ -n "$rate" ] && [ "$rate" -lt 256 ] ||
	fail "profile window at 1500 pps sampled 1 in ${rate:-?}, not fewer than the default 256"
pass "profile window at 1500 pps: 1 in $rate sampled"
sleep 1

loader_cmd update routes4 '"5.0.0.0/8"' 1
wait_oplog '.event == "swap" and .version == 2' 15 || fail "never re-specialized after the route add"
t0=$(tail -2 "$AG_TMP/marks" | head -1)
t=$(jq -r 'select(.event == "swap" and .version == 2) | .time' "$AG_LOG" | head -1)
d=$(python3 -c "print('%.2f' % ($t - $t0))")
python3 -c "import sys; sys.exit(0 if $t - $t0 <= 3 else 1)" || fail "re-specialized $d s after the route add"
pass "route 5.0.0.0/8 added: re-specialized in $d s"
sleep 1
traffic_stop

for f in r10 r10b; do
	[ "$(flow_count $f sent)" -gt 1000 ] || fail "$f: too few frames"
	[ "$(flow_count $f tx)" -eq "$(flow_count $f sent)" ] ||
		fail "$f: $(flow_count $f drop) of $(flow_count $f sent) frames lost"
done
[ "$(flow_count new tx 0)" -eq 0 ] && [ "$(flow_count new pass 0)" -eq 0 ] ||
	fail "new: frames to an unrouted address were not dropped"
[ "$(flow_count new sent 2)" -gt 100 ] || fail "new: too few frames after the route add"
[ "$(flow_count new tx 2)" -eq "$(flow_count new sent 2)" ] ||
	fail "new: $(flow_count new drop 2) frames dropped after the route was added"
pass "$(jq .sent "$AG_TMP/traffic.json") frames: 0 lost, every verdict right ($(jq -c '.flows.new.segments | map({sent, tx, drop})' "$AG_TMP/traffic.json"))"

# a foreign replacement: ip replaces whatever is there (no compare-and-swap)
ours=$(xdp_prog_id)
$RS_NSENTER ip -force link set dev "$RS_VETH1" xdpgeneric obj "$AG_BUILD/benchmarks/floor.bpf.o" sec xdp ||
	fail "foreign replacement failed"
foreign=$(xdp_prog_id)
[ "$foreign" != "$ours" ] || fail "the foreign replacement did not happen"
wait_oplog ".event == \"foreign\" and .found == $foreign" 10 || fail "the agent did not notice prog $foreign"
sleep 3
[ "$(xdp_prog_id)" = "$foreign" ] || fail "the foreign prog $foreign was replaced by $(xdp_prog_id)"
pass "foreign prog $foreign in place of ours ($ours): noticed, left alone"
agent_stop
[ "$(xdp_prog_id)" = "$foreign" ] || fail "after SIGTERM prog $(xdp_prog_id) is there, not the foreign $foreign"
"$RESPEC" restore all journal "$AG_JOURNAL" >/dev/null 2>&1
[ "$(xdp_prog_id)" = "$foreign" ] || fail "respec restore all replaced the foreign prog $foreign"
pass "SIGTERM and respec restore all leave the foreign prog $foreign in place"
