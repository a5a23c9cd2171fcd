#!/usr/bin/env bash
# agent_tc.sh - a running `respec agent` optimizes a tc cls_bpf program: the firewall sample
# loaded by its own loader on the TC ingress hook of a veth in a private namespace, under
# traffic.  The specialized program replaces the filter's program (canary: 0 divergences on
# sampled frames), every frame still reaches the interface, and SIGTERM puts the loader's
# program back on the filter.  (Frame taps run before tc ingress, so drop verdicts of a TC
# program are not visible to the traffic tool; the canary compares them.)
set -u
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"
. "$(dirname "$0")/agent_lib.bash"

agent_setup tc
mkfifo "$AG_TMP/ctl"
exec 7<>"$AG_TMP/ctl"
$RS_NSENTER "$AG_BUILD/bpf/samples/firewall/firewall-loader" --dev "$RS_VETH1" \
	--scenario "$AG_SRC/bpf/samples/firewall/scenarios/firewall-100.json" <&7 \
	>"$AG_TMP/loader.out" 2>&1 &
AG_LOADER=$!
rs_on_exit "kill $AG_LOADER; wait $AG_LOADER"
rs_on_exit "echo quit >&7"
for _ in $(seq 1 50); do
	grep -q '^ready prog' "$AG_TMP/loader.out" && break
	sleep 0.1
done
AG_PROG=$(awk '/^ready prog/ { print $3 }' "$AG_TMP/loader.out")
[ -n "$AG_PROG" ] || fail "firewall loader did not start: $(cat "$AG_TMP/loader.out")"
tc_prog_id() {
	$RS_NSENTER tc -j filter show dev "$RS_VETH1" ingress |
		jq -r '[.[] | .options.prog.id // empty][0] // 0'
}
[ "$(tc_prog_id)" = "$AG_PROG" ] || fail "the loader's prog is not on the tc ingress hook"

traffic_start --pps 1000 --flow ssh,tcp,10.9.0.1,10.1.2.5,1000,22 \
	--flow web,tcp,10.9.0.2,10.1.2.6,1001,80 --flow other,udp,10.9.0.3,10.1.2.7,1002,9
agent_start
wait_oplog '.event == "swap" and .version == 1' 60 ||
	fail "no specialized program swapped in: $(tail -5 "$AG_TMP/agent.err")"
ours=$(tc_prog_id)
[ "$ours" != "$AG_PROG" ] && [ "$ours" != 0 ] || fail "tc filter runs $ours, not ours"
c=$(jq -c 'select(.event == "canary" and .ok) | {packets, divergences}' "$AG_LOG" | head -1)
[ -n "$c" ] || fail "no successful canary"
pass "tc_firewall prog $AG_PROG specialized on the tc ingress filter: prog $ours (canary $c)"
sleep 1
traffic_stop
for f in ssh web other; do
	[ "$(flow_count $f sent)" -gt 500 ] || fail "$f: too few frames"
	[ "$(flow_count $f pass)" -eq "$(flow_count $f sent)" ] ||
		fail "$f: $(flow_count $f drop) of $(flow_count $f sent) frames lost before tc"
done
pass "$(jq .sent "$AG_TMP/traffic.json") frames, none lost"
agent_stop
[ "$(tc_prog_id)" = "$AG_PROG" ] || fail "after SIGTERM the filter runs $(tc_prog_id), not $AG_PROG"
pass "SIGTERM: the loader's prog $AG_PROG back on the filter"
