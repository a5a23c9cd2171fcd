#!/usr/bin/env bash
# discover.sh - discovery across network namespaces: an XDP bpf_link, generic (skb) XDP, a
# namespace without an ip-netns name (only a process lives in it), and the same interface name
# in two namespaces (a dev spec is then ambiguous, ids named).  Everything made here is removed
# on any exit.
set -u
. "$(dirname "$0")/../lib.sh"
rs_require_root
# every respec call is bounded: a hang fails the test (and the trap still cleans up)
rsp() { timeout 120 "$RESPEC" "$@"; }
rs_require_cmd jq unshare
rs_mount_bpffs
# tc/ip (iproute2) create /sys/fs/bpf/{tc,ip,xdp}: removed after unless they were there
rs_iproute2_pins_cleanup

TMP=$(mktemp -d /tmp/rs-disc.XXXXXX)
rs_on_exit "rm -rf $TMP"
PIN=/sys/fs/bpf/rs-disc-$$
mkdir -p "$PIN"
rs_on_exit "rm -rf $PIN"

rs_netns_setup disc
IF="dc$$"		# the same name in both namespaces
$RS_NSENTER ip link add "$IF" type veth peer name "${IF}p" || fail "veth"
$RS_NSENTER ip link set "$IF" up
$RS_NSENTER ip link set "${IF}p" up

# a namespace with no name under /run/netns: only this process lives in it
unshare --net sleep 600 &
UPID=$!
rs_on_exit "kill $UPID"
for _ in $(seq 50); do
	[ "$(readlink /proc/$UPID/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break
	sleep 0.1
done
UNS="nsenter --net=/proc/$UPID/ns/net"
$UNS ip link add "$IF" type veth peer name "${IF}q" || fail "veth in unnamed netns"
$UNS ip link set "$IF" up

cat >"$TMP/x.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int XNAME(struct xdp_md *ctx)
{
	return ctx->rx_queue_index == 77 ? XDP_DROP : XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
EOF
cat >"$TMP/xdp_link.c" <<'EOF'
/* xdp_link OBJ IFNAME PIN: load the object's program, XDP bpf_link on IFNAME, pin the link. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	struct bpf_program *p;
	struct bpf_link *l;

	if (!obj || bpf_object__load(obj))
		return 1;
	p = bpf_object__next_program(obj, NULL);
	l = bpf_program__attach_xdp(p, if_nametoindex(argv[2]));
	if (!l)
		return 1;
	return bpf_link__pin(l, argv[3]) ? 1 : 0;
}
EOF
MULTI=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
cat >"$TMP/cls.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int CNAME(struct __sk_buff *skb)
{
	return skb->priority == 99 ? 2 : 0;
}

char LICENSE[] SEC("license") = "GPL";
EOF
for n in link gen uns; do
	clang -target bpf -O2 -g -DXNAME="x${n}$$" -I/usr/include/"$MULTI" \
		-c "$TMP/x.bpf.c" -o "$TMP/$n.bpf.o" || fail "compile $n"
done
clang -target bpf -O2 -g -DCNAME="cing$$" -I/usr/include/"$MULTI" \
	-c "$TMP/cls.bpf.c" -o "$TMP/cls.bpf.o" || fail "compile cls"
gcc -O1 -o "$TMP/xdp_link" "$TMP/xdp_link.c" -lbpf || fail "compile xdp_link"

$RS_NSENTER "$TMP/xdp_link" "$TMP/link.bpf.o" "$IF" "$PIN/link" || fail "xdp link"
$RS_NSENTER ip link set dev "${IF}p" xdpgeneric obj "$TMP/gen.bpf.o" sec xdp ||
	fail "xdpgeneric"
$UNS ip link set dev "$IF" xdpgeneric obj "$TMP/uns.bpf.o" sec xdp || fail "xdp in unnamed netns"

# a cls_bpf filter under a legacy ingress qdisc (not clsact): one ingress hook only
$RS_NSENTER tc qdisc add dev "${IF}p" ingress || fail "ingress qdisc"
$RS_NSENTER tc filter add dev "${IF}p" parent ffff: bpf da obj "$TMP/cls.bpf.o" sec tc ||
	fail "filter under ingress qdisc"

rsp -j prog list >"$TMP/l.json" 2>"$TMP/l.err" || fail "list: $(cat "$TMP/l.err")"
byname() { jq -c --arg n "$1" '.[] | select(.name == $n) | .attach' "$TMP/l.json"; }

LINK=$(byname "xlink$$")
echo "xlink: $LINK"
echo "$LINK" | jq -e --arg ns "$RS_NS" --arg i "$IF" 'length == 1 and .[0].kind == "xdp_link" and
	.[0].link_id > 0 and .[0].ifname == $i and .[0].netns == $ns and .[0].mode == "drv"' \
	>/dev/null || fail "xdp link not reported as xdp_link in $RS_NS"
pass "xdp bpf_link found with its link id"

GEN=$(byname "xgen$$")
echo "xgen: $GEN"
echo "$GEN" | jq -e --arg ns "$RS_NS" '.[0].kind == "xdp" and .[0].mode == "skb" and
	.[0].netns == $ns' >/dev/null || fail "generic XDP not reported as skb mode"
pass "generic XDP reported as mode skb"

UN=$(byname "xuns$$")
echo "xuns: $UN"
INO=$(stat -L -c %i /proc/$UPID/ns/net)
echo "$UN" | jq -e --arg i "$IF" --argjson ino "$INO" '.[0].kind == "xdp" and .[0].ifname == $i and
	.[0].netns_ino == $ino and (.[0].netns | startswith("pid "))' >/dev/null ||
	fail "XDP in the unnamed namespace not found"
pass "unnamed namespace found through /proc (netns ino $INO)"

ING=$(byname "cing$$")
echo "cing: $ING"
echo "$ING" | jq -e --arg i "${IF}p" 'length == 1 and .[0].kind == "tc" and .[0].ifname == $i and
	.[0].direction == "ingress"' >/dev/null || fail "filter under legacy ingress qdisc wrong"
pass "legacy ingress qdisc: filter reported once, as ingress"

# same ifname with different programs in two namespaces: ambiguous, both ids named
rsp prog show dev "$IF" xdp >/dev/null 2>"$TMP/e"
rc=$?
[ "$rc" = 1 ] || fail "dev $IF xdp: exit $rc, want 1"
[ "$(wc -l <"$TMP/e")" = 1 ] || fail "dev $IF xdp: not one line: $(cat "$TMP/e")"
grep -q ambiguous "$TMP/e" || fail "dev $IF xdp: not ambiguous: $(cat "$TMP/e")"
for n in link uns; do
	id=$(jq --arg n "x$n$$" '.[] | select(.name == $n) | .id' "$TMP/l.json")
	grep -q "$id" "$TMP/e" || fail "ambiguous message lacks id $id"
done
pass "dev spec in two namespaces is ambiguous: $(cat "$TMP/e")"

# our own namespace is restored after discovery: the listing sees the same thing twice
rsp -j prog list >"$TMP/l2.json" || fail "second list"
[ "$(jq -c '[.[] | select(.name | endswith("'$$'"))] | sort_by(.id)' "$TMP/l.json")" = \
  "$(jq -c '[.[] | select(.name | endswith("'$$'"))] | sort_by(.id)' "$TMP/l2.json")" ] ||
	fail "listing changed between two runs"
pass "discovery is repeatable"
