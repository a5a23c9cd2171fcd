#!/bin/bash
# replay_cli.sh - end-to-end test of `respec replay` (docs/replay.md).
#
# Builds its own BPF object (twice: the second with one constant changed through -D) and its
# own pcaps (written byte by byte), then checks: self against self -> 0 divergences (with the
# timestamp field masked), the mutated copy -> exit 1 with the first divergent packet named,
# the map side effect caught without the mask, a head-moving program timed through the trace
# driver without driver errors, TC through single runs, and the error paths (truncated and
# garbage pcap, unknown program, program type mismatch, scenario naming an absent map).
# Everything runs in test runs (no traffic, no attachment); temp files are removed on exit.
set -u
. "$2/tests/lib.sh"
rs_require_root

TMP=$(mktemp -d /tmp/rs-replay-cli-$$-XXXX)
rs_on_exit "rm -rf $TMP"
CLANG=$(command -v clang-14 || command -v clang) || fail "clang not found"
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

# ---- the program under test --------------------------------------------------------------
cat >"$TMP/ttl.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef TTL_LIMIT
#define TTL_LIMIT 5
#endif

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} ttl_seen SEC(".maps");

struct stamp {
	__u64 count;
	__u64 last_ns;		/* differs between any two runs: mask it */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stamp);
} stamps SEC(".maps");

/* 1 drop, 0 pass, -1 not IPv4 */
static __always_inline int judge(void *data, void *end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u64 one = 1, *c;
	struct stamp *s;
	__u32 ttl, z = 0;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return -1;
	ttl = ip->ttl;
	c = bpf_map_lookup_elem(&ttl_seen, &ttl);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&ttl_seen, &ttl, &one, BPF_ANY);
	s = bpf_map_lookup_elem(&stamps, &z);
	if (s) {
		s->count++;
		s->last_ns = bpf_ktime_get_ns();
	}
	return ttl < TTL_LIMIT;
}

SEC("xdp")
int xdp_ttl(struct xdp_md *ctx)
{
	int v = judge((void *)(long)ctx->data, (void *)(long)ctx->data_end);

	return v > 0 ? XDP_DROP : XDP_PASS;
}

/* pushes a 4-byte tag in front of the frame and bounces it: moves the head every run */
SEC("xdp")
int xdp_push(struct xdp_md *ctx)
{
	void *data, *end;

	if (bpf_xdp_adjust_head(ctx, -4))
		return XDP_ABORTED;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + 4 + sizeof(struct ethhdr) > end)
		return XDP_ABORTED;
	*(__u32 *)data = bpf_htonl(0xdeadbeef);
	return judge(data + 4, end) > 0 ? XDP_DROP : XDP_TX;
}

SEC("tc")
int tc_ttl(struct __sk_buff *skb)
{
	int v = judge((void *)(long)skb->data, (void *)(long)skb->data_end);

	return v > 0 ? TC_ACT_SHOT : TC_ACT_OK;
}
EOF
for v in orig:5 mut:20; do
	"$CLANG" -target bpf -O2 -g -Wall -I/usr/include/"$MULTIARCH" -DTTL_LIMIT="${v#*:}" \
		-c "$TMP/ttl.bpf.c" -o "$TMP/${v%%:*}.o" || fail "clang ($v)"
done

# ---- pcaps ---------------------------------------------------------------------------------
hexb() { printf "$(printf '\\x%02x' "$@")"; }	# bytes given as numbers
le32() { hexb $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# one 60-byte IPv4/UDP frame with the given TTL
frame() {
	printf '\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00'
	printf '\x45\x00\x00\x2e\x00\x01\x00\x00'
	hexb "$1"
	printf '\x11\x00\x00\x0a\xfa\x00\x01\x0a\xfa\x00\x02'
	printf '\x30\x39\x00\x35\x00\x1a\x00\x00'
	printf '\xab%.0s' $(seq 18)
}
# TTLs: the original drops < 5, the mutated copy < 20: the first TTL in 5..19 is packet 6
TTLS=(64 64 3 64 128 10 64 2 15 64)
{
	printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00'; le32 0; le32 0; le32 65535; le32 1
	for r in $(seq 30); do
		for t in "${TTLS[@]}"; do
			le32 "$r"; le32 0; le32 60; le32 60
			frame "$t"
		done
	done
} >"$TMP/t.pcap"
NPKT=$((30 * ${#TTLS[@]}))
head -c $(($(stat -c %s "$TMP/t.pcap") - 25)) "$TMP/t.pcap" >"$TMP/trunc.pcap"
echo "definitely not a capture file, only words" >"$TMP/garbage.pcap"

run() {	# run ARGS...: sets OUT, ERR, RC
	OUT=$("$RESPEC" "$@" 2>"$TMP/err") && RC=0 || RC=$?
	ERR=$(cat "$TMP/err")
}
jget() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# ---- self against self -----------------------------------------------------------------
run -j replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --against "$TMP/orig.o" --mask stamps:8:8 \
	--rounds 5
[ "$RC" -eq 0 ] || fail "self vs self: exit $RC: $ERR"
[ "$(echo "$OUT" | jget 'd["packets"]')" -eq "$NPKT" ] || fail "self: packet count: $OUT"
[ "$(echo "$OUT" | jget 'd["divergences"]')" -eq 0 ] || fail "self: divergences: $OUT"
[ "$(echo "$OUT" | jget 'd["verdicts"]["a"]["XDP_DROP"]')" -eq 60 ] || fail "self: verdicts: $OUT"
[ "$(echo "$OUT" | jget 'd["timing"]["method"]')" = driver ] || fail "self: method: $OUT"
[ "$(echo "$OUT" | jget 'd["timing"]["driver_errors"]')" -eq 0 ] || fail "self: driver errors"
echo "$OUT" | jget 'd["driver_ns"] > 0' | grep -q True || fail "self: driver_ns: $OUT"
pass "self vs self: 0 divergences; timing $(echo "$OUT" | jget \
	'"A %.1f ns, B %.1f ns, ratio %.3f [%.3f..%.3f], driver %.1f ns" % (d["ns_per_packet"]["a"]["iqm"], d["ns_per_packet"]["b"]["iqm"], d["ratio"]["iqm"], d["ratio"]["p25"], d["ratio"]["p75"], d["driver_ns"])')"

# the unmasked timestamp is a map side effect that differs between any two runs
run -j replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --against "$TMP/orig.o" --no-timing
[ "$RC" -eq 1 ] || fail "unmasked: exit $RC"
echo "$OUT" | jget 'd["divergence_list"][0]["what"]' | grep -q "map stamps" ||
	fail "unmasked: stamps not reported: $OUT"
pass "unmasked timestamp reported as a map divergence"

# ---- one constant changed ------------------------------------------------------------------
run replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --against "$TMP/mut.o" --mask stamps:8:8 \
	--max-divergences 2 --no-timing
[ "$RC" -eq 1 ] || fail "mutated: exit $RC: $OUT $ERR"
echo "$OUT" | grep -q "^  packet 6: XDP_PASS vs XDP_DROP" || fail "mutated: first divergence: $OUT"
echo "$OUT" | grep -q "^divergences: " || fail "mutated: no count: $OUT"
run -j replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --against "$TMP/mut.o" --mask stamps:8:8 \
	--no-timing --max-divergences 1000
# TTL 10 and 15 in every round of 10 packets, plus the ttl_seen counters of those TTLs
[ "$(echo "$OUT" | jget 'len([x for x in d["divergence_list"] if x["kind"] == "packet"])')" \
	-eq 60 ] || fail "mutated: packet divergences: $OUT"
echo "$OUT" | jget 'all(isinstance(x["diff"], list) and x["verdict_b"] for x in d["divergence_list"])' |
	grep -q True || fail "mutated: divergence without verdicts or byte diff: $OUT"
echo "$OUT" | jget '[x["what"] for x in d["divergence_list"] if x["kind"] == "map"]' |
	grep -q "map stamps" && fail "mutated: masked field reported"
pass "mutated copy caught at packet 6"

# ---- a program that moves the head: trace driver restores the frame -----------------------
run -j replay "$TMP/orig.o" --prog xdp_push --pcap "$TMP/t.pcap" --against "$TMP/orig.o" \
	--mask stamps:8:8 --rounds 3
[ "$RC" -eq 0 ] || fail "xdp_push: exit $RC: $ERR"
[ "$(echo "$OUT" | jget 'd["verdicts"]["a"]["XDP_TX"]')" -eq $((NPKT - 60)) ] ||
	fail "xdp_push: verdicts: $OUT"
[ "$(echo "$OUT" | jget 'd["timing"]["method"]')" = driver ] || fail "xdp_push: method: $OUT"
[ "$(echo "$OUT" | jget 'd["timing"]["driver_errors"]')" -eq 0 ] || fail "xdp_push: driver errors"
pass "head-moving program timed through the driver"

# ---- TC: single runs ----------------------------------------------------------------------
run -j replay "$TMP/orig.o" --prog tc_ttl --pcap "$TMP/t.pcap" --against "$TMP/mut.o" \
	--mask stamps:8:8 --rounds 3
[ "$RC" -eq 1 ] || fail "tc: exit $RC: $ERR"
[ "$(echo "$OUT" | jget 'd["verdicts"]["a"]["TC_ACT_SHOT"]')" -eq 60 ] || fail "tc: verdicts: $OUT"
[ "$(echo "$OUT" | jget 'd["divergence_list"][0]["packet"]')" -eq 6 ] || fail "tc: first: $OUT"
[ "$(echo "$OUT" | jget 'd["timing"]["method"]')" = single ] || fail "tc: method: $OUT"
pass "tc program compared and timed with single runs"

# ---- errors --------------------------------------------------------------------------------
run replay "$TMP/orig.o" --pcap "$TMP/trunc.pcap" --no-timing
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "trunc.pcap: packet $NPKT: truncated" ||
	fail "truncated pcap: exit $RC: $ERR"
run replay "$TMP/orig.o" --pcap "$TMP/garbage.pcap" --no-timing
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "garbage.pcap: not a readable pcap file" ||
	fail "garbage pcap: exit $RC: $ERR"
run replay "$TMP/orig.o" --prog nope --pcap "$TMP/t.pcap" --no-timing
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "no program named 'nope'" ||
	fail "unknown program: exit $RC: $ERR"
run replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --against "$TMP/orig.o" --against-prog tc_ttl \
	--no-timing
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "program type mismatch" ||
	fail "type mismatch: exit $RC: $ERR"
echo '{ "maps": { "no_such_map": [ { "key": 1, "value": 2 } ] } }' >"$TMP/sc.json"
run replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --scenario "$TMP/sc.json" --no-timing
[ "$RC" -eq 1 ] && echo "$ERR" | grep -q "no_such_map" ||
	fail "scenario with an absent map: exit $RC: $ERR"
run replay "$TMP/orig.o" --no-timing
[ "$RC" -eq 2 ] || fail "missing --pcap: exit $RC"
pass "errors: truncated, garbage, unknown program, type mismatch, bad scenario, usage"

# ---- a scenario fills the private maps ----------------------------------------------------
echo '{ "maps": { "ttl_seen": [ { "key": 64, "value": 1000 } ] } }' >"$TMP/sc.json"
run -j replay "$TMP/orig.o" --pcap "$TMP/t.pcap" --scenario "$TMP/sc.json" \
	--against "$TMP/orig.o" --mask stamps:8:8 --no-timing
[ "$RC" -eq 0 ] || fail "scenario: exit $RC: $ERR"
pass "scenario applied to both private copies"
# ---- a loaded program: its original against clones of its maps, live maps untouched --------
rs_mount_bpffs
PIN=/sys/fs/bpf/rs-replay-cli-$$
rs_on_exit "rm -rf $PIN"
bpftool prog loadall "$TMP/orig.o" "$PIN" >/dev/null 2>&1 || fail "bpftool prog loadall"
run -j replay pinned "$PIN/xdp_ttl" --pcap "$TMP/t.pcap" --against "$TMP/orig.o" \
	--mask stamps:8:8 --rounds 3
[ "$RC" -eq 0 ] || fail "pinned program: exit $RC: $ERR"
[ "$(echo "$OUT" | jget 'd["divergences"]')" -eq 0 ] || fail "pinned: divergences: $OUT"
echo "$OUT" | jget 'd["programs"]["a"]' | grep -q "^id [0-9]* (xdp_ttl)" || fail "pinned: origin"
MAP_ID=$(bpftool -j prog show pinned "$PIN/xdp_ttl" | jget 'd["map_ids"][0]')
[ "$(bpftool -j map dump id "$MAP_ID" | jget 'len(d)')" -eq 0 ] ||
	fail "pinned: the live map $MAP_ID was written"
pass "loaded program replayed against clones; live maps untouched"
exit 0
