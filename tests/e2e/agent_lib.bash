# tests/e2e/agent_lib.bash - helpers of the agent's end-to-end tests (tests/e2e/agent_*.sh)
# and of tools/demo.sh.  Source after tests/lib.sh.  Not a test itself (*.bash is not globbed).
#
#   agent_setup TAG          root, bpffs, namespace rs-TAG-PID with veth rsv0/rsv1, $AG_TMP,
#                            private journal/pin/capture dirs; everything removed on exit
#   loader_start SAMPLE SCEN start BUILD/bpf/samples/SAMPLE/SAMPLE-loader on rsv1 (XDP, skb
#                            mode) with its stdin on a fifo; loader_cmd "delete MAP KEY" talks
#   agent_start [JSON]       respec agent with a config for this namespace (+ JSON members)
#   wait_oplog FILTER SECS   wait until the agent's event log ($AG_LOG) has a record matching
#                            a jq filter (the optimization log for `respec log` is optlog.jsonl)
#   traffic_start ARGS       tools/rs_traffic.py inside the namespace (rsv0 -> rsv1), report in
#                            $AG_TMP/traffic.json after traffic_stop; mark = a verdict boundary
set -u
AG_SRC=${RS_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
AG_BUILD=${RS_BUILD_DIR:-$AG_SRC/build}
AG_TRAFFIC="$AG_SRC/tools/rs_traffic.py"

agent_setup() {
	rs_require_root
	rs_mount_bpffs
	command -v jq >/dev/null || fail "jq missing"
	rs_netns_setup "$1"
	AG_TMP=$(mktemp -d "/tmp/rs-agent-$1-XXXXXX")
	AG_PIN=/sys/fs/bpf/rs-agent-$1-$$
	AG_JOURNAL=$AG_TMP/journal
	AG_LOG=$AG_TMP/oplog.jsonl
	: > "$AG_LOG"
	: > "$AG_TMP/marks"
	# reverse order of removal: restore, then pins, then files
	rs_on_exit "[ -n \"${RS_KEEP:-}\" ] || rm -rf $AG_TMP"
	rs_on_exit "rm -rf $AG_PIN"
	rs_on_exit "$RESPEC restore all journal $AG_JOURNAL"
	AG_DMAC=$($RS_NSENTER python3 -c "
import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
r = fcntl.ioctl(s.fileno(), 0x8927, struct.pack('256s', b'$RS_VETH1'))
print(':'.join('%02x' % b for b in r[18:24]))")
}

loader_start() {
	local sample=$1 scen=$2
	mkfifo "$AG_TMP/ctl"
	exec 7<>"$AG_TMP/ctl"
	$RS_NSENTER "$AG_BUILD/bpf/samples/$sample/$sample-loader" --dev "$RS_VETH1" \
		--xdp-mode skb --scenario "$scen" <&7 >"$AG_TMP/loader.out" 2>&1 &
	AG_LOADER=$!
	rs_on_exit "kill $AG_LOADER; wait $AG_LOADER"
	rs_on_exit "echo quit >&7"
	for _ in $(seq 1 50); do
		grep -q '^ready prog' "$AG_TMP/loader.out" && break
		sleep 0.1
	done
	AG_PROG=$(awk '/^ready prog/ { print $3 }' "$AG_TMP/loader.out")
	[ -n "$AG_PROG" ] || fail "loader did not start: $(cat "$AG_TMP/loader.out")"
}

# loader_cmd CMD...: send one stdin command and wait for its answer; marks the time before the
# command and after the answer (traffic segments 2k+1 = in flight, 2k+2 = after command k+1)
loader_cmd() {
	local n
	n=$(grep -c '^ok\|^error' "$AG_TMP/loader.out")
	date +%s.%N >> "$AG_TMP/marks"
	echo "$*" >&7
	for _ in $(seq 1 100); do
		[ "$(grep -c '^ok\|^error' "$AG_TMP/loader.out")" -gt "$n" ] && break
		sleep 0.02
	done
	tail -1 "$AG_TMP/loader.out" | grep -q '^ok' || fail "loader: '$*': $(tail -1 "$AG_TMP/loader.out")"
	date +%s.%N >> "$AG_TMP/marks"
}

# agent_config [JSON-MEMBERS]: the test config, deep-merged with the members given
agent_config() {
	local extra=${1:-}
	cat > "$AG_TMP/agent.base.json" <<JSON
{ "select": [{"netns": "$RS_NS"}],
  "tick_s": 0.05, "discover_interval_s": 1, "settle_s": 0.2, "retry_s": 2,
  "profile": {"base_window_s": 0.5, "window_s": 1.5, "interval_s": 0},
  "reoptimize_interval_s": 0,
  "revert": {"delay_s": 0.5, "window_s": 1},
  "events": "$AG_LOG", "log": "$AG_TMP/optlog.jsonl", "journal_dir": "$AG_JOURNAL", "pin_dir": "$AG_PIN",
  "capture_dir": "$AG_TMP/capture",
  "metrics": {"file": "$AG_TMP/metrics.prom", "interval_s": 1} }
JSON
	jq ". * {${extra}}" "$AG_TMP/agent.base.json" > "$AG_TMP/agent.json" ||
		fail "bad test config members: $extra"
}

agent_start() {
	agent_config "${1:-}"
	"$RESPEC" agent --config "$AG_TMP/agent.json" ${RS_AGENT_V:--v} >>"$AG_TMP/agent.err" 2>&1 &
	AG_AGENT=$!
	rs_on_exit "kill -9 $AG_AGENT"
}

agent_stop() {
	kill -TERM "$AG_AGENT" 2>/dev/null
	wait "$AG_AGENT"
}

# wait_oplog JQ-FILTER SECONDS: true once some record matches
wait_oplog() {
	local filter=$1 secs=$2 i
	for ((i = 0; i < secs * 20; i++)); do
		if [ -n "${AG_AGENT:-}" ] && ! kill -0 "$AG_AGENT" 2>/dev/null; then
			echo "agent exited: $(tail -3 "$AG_TMP/agent.err")" >&2
			return 1
		fi
		[ "$(jq -c "select($filter)" "$AG_LOG" 2>/dev/null | head -1)" ] && return 0
		sleep 0.05
	done
	return 1
}

# count_oplog JQ-FILTER: records matching
count_oplog() {
	jq -c "select($1)" "$AG_LOG" 2>/dev/null | wc -l
}

traffic_start() {
	$RS_NSENTER python3 "$AG_TRAFFIC" --tx "$RS_VETH0" --dmac "$AG_DMAC" \
		--bounce "$RS_VETH0" --pass "$RS_VETH1" --marks "$AG_TMP/marks" \
		--out "$AG_TMP/traffic.json" "$@" &
	AG_TRAFFIC_PID=$!
	rs_on_exit "kill $AG_TRAFFIC_PID; wait $AG_TRAFFIC_PID"
	sleep 0.5
}

traffic_stop() {
	kill -TERM "$AG_TRAFFIC_PID" 2>/dev/null
	wait "$AG_TRAFFIC_PID"
	[ -s "$AG_TMP/traffic.json" ] || fail "no traffic report"
}

# flow_count FLOW VERDICT [SEGMENT]: frames of a flow with a verdict (all, or one segment)
flow_count() {
	if [ $# -ge 3 ]; then
		jq ".flows[\"$1\"].segments[$3].$2" "$AG_TMP/traffic.json"
	else
		jq ".flows[\"$1\"].$2" "$AG_TMP/traffic.json"
	fi
}

# current program id at the XDP hook of rsv1
xdp_prog_id() {
	$RS_NSENTER ip -j link show "$RS_VETH1" | jq -r '.[0].xdp.prog.id // 0'
}
