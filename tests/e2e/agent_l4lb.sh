#!/usr/bin/env bash
# agent_l4lb.sh - a running `respec agent` optimizes the l4lb sample loaded by its own loader,
# under traffic through a veth pair in a private namespace:
#   - the specialized program is swapped in (0 frames lost, every verdict right);
#   - a VIP is deleted, then added back, through the loader's control plane during traffic:
#     every frame sent after the loader answered gets the new verdict (guard), and the agent
#     re-specializes within 3 s of each update;
#   - SIGTERM puts the loader's program back and closes the journal; metrics were written to
#     the file and served on a loopback HTTP endpoint; `respec log show` reads the log.
set -u
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"
. "$(dirname "$0")/agent_lib.bash"

agent_setup l4lb
loader_start l4lb "$AG_SRC/bpf/samples/l4lb/scenarios/l4lb-16x64.json"
VIP3='{"v4":"10.100.0.4","port":443,"proto":6}'
traffic_start --pps 1500 --flow vip0,tcp,10.1.0.1,10.100.0.1,1234,80 \
	--flow vip3,tcp,10.1.0.2,10.100.0.4,1235,443 --flow other,udp,10.1.0.3,10.7.7.7,1000,2000
PORT=$((20000 + $$ % 20000))
agent_start "\"metrics\": {\"listen\": \"127.0.0.1:$PORT\"}"

wait_oplog '.event == "swap" and .version == 1' 60 ||
	fail "no specialized program swapped in: $(tail -5 "$AG_TMP/agent.err")"
ours=$(xdp_prog_id)
[ "$ours" != "$AG_PROG" ] && [ "$ours" != 0 ] || fail "prog at rsv1 is $ours, not ours"
pass "l4lb prog $AG_PROG specialized: prog $ours in place"
sleep 1

respec_within() {	# VERSION: seconds from the last mark to the swap of that version
	local v=$1 mark t
	wait_oplog ".event == \"swap\" and .version == $v" 15 || fail "version $v never swapped in"
	mark=$(tail -2 "$AG_TMP/marks" | head -1)	# the command was sent then
	t=$(jq -r "select(.event == \"swap\" and .version == $v) | .time" "$AG_LOG" | head -1)
	python3 -c "import sys; d = $t - $mark; print('%.2f' % d); sys.exit(0 if d <= 3 else 1)"
}

loader_cmd delete vip_map "$VIP3"
d=$(respec_within 2) || fail "re-specialized $d s after the VIP delete (> 3 s)"
pass "VIP deleted: re-specialized in $d s"
sleep 1
loader_cmd update vip_map "$VIP3" '{"vip_idx":3,"flags":0}'
d=$(respec_within 3) || fail "re-specialized $d s after the VIP add (> 3 s)"
pass "VIP added back: re-specialized in $d s"
sleep 1
traffic_stop

for f in vip0 vip3 other; do
	sent=$(flow_count $f sent)
	drop=$(flow_count $f drop)
	[ "$sent" -gt 1000 ] || fail "$f: only $sent frames sent"
	[ "$drop" -eq 0 ] || fail "$f: $drop of $sent frames lost"
done
[ "$(flow_count vip0 tx)" -eq "$(flow_count vip0 sent)" ] || fail "vip0: not every frame balanced"
[ "$(flow_count other pass)" -eq "$(flow_count other sent)" ] || fail "other: not every frame passed"
# segments: 0 before, 1 delete in flight, 2 after the delete, 3 add in flight, 4 after the add
[ "$(flow_count vip3 tx 2)" -eq 0 ] || fail "vip3: $(flow_count vip3 tx 2) frames balanced after the delete: $(jq -c ".flows.vip3.segments" "$AG_TMP/traffic.json")"
[ "$(flow_count vip3 pass 4)" -eq 0 ] || fail "vip3: $(flow_count vip3 pass 4) frames passed after the add"
[ "$(flow_count vip3 sent 2)" -gt 100 ] && [ "$(flow_count vip3 sent 4)" -gt 100 ] ||
	fail "vip3: too few frames after the updates"
pass "$(jq .sent "$AG_TMP/traffic.json") frames: 0 lost, every verdict right across $(count_oplog '.event == "swap"') agent swaps (segments: $(jq -c '.flows.vip3.segments' "$AG_TMP/traffic.json"))"

out=$("$RESPEC" log show "$AG_TMP/optlog.jsonl" 2>&1) || fail "respec log show refused the optimization log: $out"
for k in swap verify remark measure snapshot; do
	[ "$(jq -c "select(.kind == \"$k\")" "$AG_TMP/optlog.jsonl" | wc -l)" -gt 0 ] ||
		fail "optimization log has no $k record"
done
pass "optimization log: $(wc -l < "$AG_TMP/optlog.jsonl") records, respec log show reads it"
grep -q '^respec_agent_swaps_total [1-9]' "$AG_TMP/metrics.prom" || fail "metrics file lacks swaps"
grep -q 'respec_point_specialized{.*} 1' "$AG_TMP/metrics.prom" || fail "metrics: not specialized"
m=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$PORT/metrics', timeout=5).read().decode())") ||
	fail "no metrics over HTTP on 127.0.0.1:$PORT"
echo "$m" | grep -q '^respec_agent_swaps_total [1-9]' || fail "HTTP metrics lack swaps"
pass "metrics file and HTTP endpoint (127.0.0.1:$PORT)"

agent_stop
[ "$(xdp_prog_id)" = "$AG_PROG" ] || fail "after SIGTERM prog $(xdp_prog_id) is at rsv1, not the original $AG_PROG"
[ -z "$("$RESPEC" restore list journal "$AG_JOURNAL" 2>/dev/null)" ] ||
	fail "journal not empty after SIGTERM: $("$RESPEC" restore list journal "$AG_JOURNAL")"
pass "SIGTERM: original prog $AG_PROG back, journal closed"
