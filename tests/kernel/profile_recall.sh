#!/bin/bash
# SPDX-License-Identifier: BSD-2-Clause
#
# profile_recall.sh - hot-key recall of the profiler (docs/profile.md): on a `high` trace, the
# top-10 keys that `respec replay --instrumented` finds at every lookup site keyed by flow
# fields must equal the trace's true top-10 flows (`respec trace gen --truth`): the l4lb
# connection table and the firewall's conntrack (struct flow_key).  The instrumented variant
# must also replay with 0 divergences.  A run at rate 1 (every packet counted) first checks that
# the counts are exact against the truth and tells which flows reach the site at all.
#
#   profile_recall.sh BUILD_DIR SOURCE_DIR        (env: PACKETS=1e5, RATE=default, SEED=7)
#
# RATE=default: `replay --instrumented` as it comes (its compare pass sends every packet
# through the copy); RATE=N > 1: sampled at 1 in N (--sampled), which shows the sampling error.
set -u
B=${1:?build dir}; S=${2:?source dir}
RESPEC=${RESPEC:-$B/tools/respec}
PACKETS=${PACKETS:-1e5}; RATE=${RATE:-default}; SEED=${SEED:-7}
TMP=$(mktemp -d /tmp/rs_recall.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail=0

run() {	# NAME OBJ SCENARIO RATE OUT
	local how=()	# default: the variant's defaults; 1: every packet; N: 1 in N, sampled
	case $4 in
	default) ;;
	1) how=(--rate 1) ;;
	*) how=(--rate "$4" --sampled) ;;
	esac
	"$RESPEC" replay "$2" --scenario "$3" --pcap "$TMP/$1.pcap" --instrumented "${how[@]}" \
		--no-timing -j > "$5" 2>"$TMP/$1.err"
	local rc=$?
	[ $rc -eq 0 ] || { echo "FAIL $1: replay --rate $4 exit $rc"; cat "$TMP/$1.err"; }
	return $rc
}

check() {	# NAME OBJ SCENARIO MAP
	local name=$1 obj=$2 sc=$3 map=$4
	"$RESPEC" trace gen --scenario "$sc" --profile high --packets "$PACKETS" --seed "$SEED" \
		-o "$TMP/$name.pcap" --truth "$TMP/$name.truth.json" >/dev/null 2>&1 || return 1
	run "$name" "$obj" "$sc" 1 "$TMP/$name.r1.json" || return 1
	if [ "$RATE" != 1 ]; then
		run "$name" "$obj" "$sc" "$RATE" "$TMP/$name.json" || return 1
	else
		cp "$TMP/$name.r1.json" "$TMP/$name.json"
	fi
	python3 - "$TMP/$name.r1.json" "$TMP/$name.json" "$TMP/$name.truth.json" "$map" \
		"$name" <<'PY'
import ipaddress, json, struct, sys
ref, res, truth = (json.load(open(f)) for f in sys.argv[1:4])
mapname, name = sys.argv[4], sys.argv[5]
def key(f):
    def addr(a):
        b = ipaddress.ip_address(a).packed
        return b + bytes(16 - len(b))
    return (addr(f['src']) + addr(f['dst']) + struct.pack('>HH', f['sport'], f['dport']) +
            bytes([{'tcp': 6, 'udp': 17}[f['proto']], 4 if f['family'] == 'ipv4' else 6,
                   0, 0])).hex()
def sites(r):
    return {s['insn']: s for s in r['profile']['sites'] if s.get('map') == mapname}
for r in (ref, res):
    if r['divergences'] != 0:
        print(f"FAIL {name}: {r['divergences']} divergences"); sys.exit(1)
ok = bool(sites(ref))
if not ok:
    print(f"FAIL {name}: no lookup site of {mapname}")
for insn, s1 in sites(ref).items():
    # rate 1 counts every lookup: the flows of the truth that reach this site are those it
    # counted; a truth flow bigger than the 10th count that is absent never got here (dropped
    # earlier, e.g. a blocklisted source) and is left out of the site's truth.
    exact = {k['key']: k['count'] for k in s1['keys']}
    tenth = s1['keys'][-1]['count'] if len(s1['keys']) >= 10 else 0
    want, skipped = [], 0
    for f in truth['top']:
        k = key(f)
        if k in exact:
            # never more than the trace has (fewer: frames the program passes before the
            # lookup, e.g. VLAN-tagged ones in l4lb)
            if exact[k] > f['packets'] or exact[k] < 0.9 * f['packets']:
                print(f"FAIL {name}: insn {insn}: flow {k} counted {exact[k]}, truth {f['packets']}")
                ok = False
            want.append(k)
        elif f['packets'] > tenth:
            skipped += 1
        else:
            want.append(k)
        if len(want) == 10:
            break
    s = sites(res).get(insn)
    got = [k['key'] for k in s['keys'][:10]] if s else []
    same = set(got) == set(want)
    rank = sum(1 for a, b in zip(got, want) if a == b)
    print(f"{'ok  ' if same else 'FAIL'} {name}: {mapname} insn {insn}: "
          f"{len(set(got) & set(want))}/10 of the true top-10 flows reaching it "
          f"({skipped} bigger flows never reach it), {rank}/10 in rank order; "
          f"{s['lookups'] if s else 0} sampled lookups, {res['profile']['packets']} sampled "
          f"packets of {res['packets']} (1 in {res['profile']['sample_rate']})")
    ok &= same
sys.exit(0 if ok else 1)
PY
}

check l4lb "$B/bpf/samples/l4lb.bpf.o" "$S/bpf/samples/l4lb/scenarios/l4lb-16x64.json" \
	conn_table || fail=1
check firewall "$B/bpf/samples/firewall.bpf.o" \
	"$S/bpf/samples/firewall/scenarios/firewall-100.json" conntrack || fail=1
exit $fail
