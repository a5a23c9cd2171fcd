#!/usr/bin/env bash
# agent_kill.sh - `kill -9` of a running agent at random points, 20 trials, under traffic:
# the router sample (loaded by its loader) keeps giving correct verdicts throughout (0 routed
# frames lost, unrouted frames always dropped), and after each kill `respec restore all`
# brings back the loader's original program id.  The state each kill hit is reported.
# First, `respec agent --once`: one pass, exit 0, the specialized program left in place with
# its journal entry and pinned guard; `respec restore all` undoes it.
set -u
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"
. "$(dirname "$0")/agent_lib.bash"
TRIALS=${RS_KILL_TRIALS:-20}

agent_setup kill
loader_start router "$AG_SRC/bpf/samples/router/scenarios/router-1k.json"
traffic_start --pps 1000 --flow r10,udp,10.9.0.1,10.1.2.5,1000,53 \
	--flow none,udp,10.9.0.3,5.5.5.5,1002,53
agent_config
timeout 60 "$RESPEC" agent --config "$AG_TMP/agent.json" --once >>"$AG_TMP/agent.err" 2>&1 ||
	fail "respec agent --once failed: $(tail -3 "$AG_TMP/agent.err")"
once=$(xdp_prog_id)
[ "$once" != "$AG_PROG" ] || fail "--once left the original in place"
"$RESPEC" restore list journal "$AG_JOURNAL" | grep -q "ours prog $once" || fail "--once: no journal entry"
[ -e "$AG_PIN/guard_gen" ] || fail "--once: the guard is not pinned"
"$RESPEC" restore all journal "$AG_JOURNAL" >/dev/null || fail "restore after --once"
[ "$(xdp_prog_id)" = "$AG_PROG" ] || fail "restore after --once: prog $(xdp_prog_id)"
pass "--once: prog $once left in place (journal + pinned guard), respec restore all put $AG_PROG back"
: > "$AG_LOG"

agent_config '"profile": {"base_window_s": 0.2, "window_s": 0.4, "interval_s": 0.3, "drift_min_coverage": 0}'
RANDOM=$$
states=()
for ((trial = 1; trial <= TRIALS; trial++)); do
	"$RESPEC" agent --config "$AG_TMP/agent.json" >>"$AG_TMP/agent.err" 2>&1 &
	AG_AGENT=$!
	delay=$(printf '0.%03d' $((RANDOM % 1000)))
	sleep $((RANDOM % 3)).${delay#0.}
	kill -9 "$AG_AGENT"
	wait "$AG_AGENT" 2>/dev/null
	st=$(jq -r 'select(.event == "state") | .to' "$AG_LOG" | tail -1)
	states+=("${st:-start}")
	: > "$AG_LOG"
	"$RESPEC" restore all journal "$AG_JOURNAL" >/dev/null 2>&1 ||
		fail "trial $trial: respec restore all failed"
	now=$(xdp_prog_id)
	[ "$now" = "$AG_PROG" ] ||
		fail "trial $trial (killed in state ${st:-start}): prog $now at $RS_VETH1 after restore, not $AG_PROG"
done
pass "$TRIALS kill -9 trials: original prog $AG_PROG back every time (states hit: $(printf '%s\n' "${states[@]}" | sort | uniq -c | awk '{printf "%s x%s ", $2, $1}'))"
traffic_stop
[ "$(flow_count r10 sent)" -gt 1000 ] || fail "too few frames"
[ "$(flow_count r10 tx)" -eq "$(flow_count r10 sent)" ] ||
	fail "r10: $(flow_count r10 drop) of $(flow_count r10 sent) routed frames lost"
[ "$(flow_count none drop)" -eq "$(flow_count none sent)" ] ||
	fail "none: $(flow_count none tx) unrouted frames were forwarded"
pass "$(jq .sent "$AG_TMP/traffic.json") frames across the trials: 0 lost, every verdict right"
