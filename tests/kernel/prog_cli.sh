#!/usr/bin/env bash
# prog_cli.sh - `respec prog` against real attach points in a private network namespace.
#
# Sets up, inside netns rs-pcli-PID: a veth pair A/B; an XDP program on A (netlink, from a pin)
# whose PROG_ARRAY slot 0 holds a second XDP program; a tc cls_bpf filter on B ingress; a tcx
# link on B egress (raw BPF_LINK_CREATE from a small C helper, pinned); plus unattached pinned
# programs and a socket filter (not XDP/TC).  Then asserts what `respec prog list/show/dump`
# report, and that bad input gives exit 1 with one stderr line and usage errors exit 2.
# Everything (namespace, pins, temp files) is removed on any exit.
set -u
. "$(dirname "$0")/../lib.sh"
rs_require_root
# every respec call is bounded: a hang fails the test (and the trap still cleans up)
rsp() { timeout 120 "$RESPEC" "$@"; }
rs_require_cmd jq
rs_mount_bpffs
# tc/ip (iproute2) create /sys/fs/bpf/{tc,ip,xdp}: removed after unless they were there
rs_iproute2_pins_cleanup

TMP=$(mktemp -d /tmp/rs-pcli.XXXXXX)
rs_on_exit "rm -rf $TMP"
PIN=/sys/fs/bpf/rs-pcli-$$
mkdir -p "$PIN/progs" "$PIN/maps"
rs_on_exit "rm -rf $PIN"

rs_netns_setup pcli
A="pc$$a"
B="pc$$b"
$RS_NSENTER ip link add "$A" type veth peer name "$B" || fail "veth"
$RS_NSENTER ip link set "$A" up
$RS_NSENTER ip link set "$B" up

# ---- BPF objects ---------------------------------------------------------------------------
cat >"$TMP/dp.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} jmp SEC(".maps");

SEC("xdp")
int xdp_target(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int xdp_main(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;

	if (data + 14 > data_end)
		return XDP_DROP;
	if (ctx->rx_queue_index == RUN_ID)	/* per-run code: a tag of our own */
		return XDP_ABORTED;
	bpf_tail_call(ctx, &jmp, 0);
	return XDP_PASS;
}

SEC("tc")
int tc_pass(struct __sk_buff *skb)
{
	return skb->len > 60000 ? 2 : 0;
}

SEC("classifier")
int tcx_pass(struct __sk_buff *skb)
{
	return skb->mark == 7 ? 2 : 0;
}

char LICENSE[] SEC("license") = "GPL";
EOF
cat >"$TMP/sock.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int sock_prog(struct __sk_buff *skb)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
EOF
cat >"$TMP/kf.bpf.c" <<'EOF'
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

/* kfunc calls cannot be lifted: `prog lift` must refuse, naming the instruction */
SEC("xdp")
int xdp_kf(struct xdp_md *ctx)
{
	bpf_rcu_read_lock();
	bpf_rcu_read_unlock();
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
EOF
cat >"$TMP/tcx_attach.c" <<'EOF'
/*
 * tcx_attach OBJ PROG IFNAME PIN: load PROG from OBJ, tcx-egress link on IFNAME, pin the link.
 * tcx_attach OBJ PROG IFNAME: load PROG, attach it to tcx ingress of IFNAME without a link
 * (BPF_PROG_ATTACH; it goes away with the interface).
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *p, *prog = NULL;
	union bpf_attr attr;
	int lfd;

	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj)
		return 1;
	bpf_object__for_each_program(p, obj) {
		if (!strcmp(bpf_program__name(p), argv[2]))
			prog = p;
		else
			bpf_program__set_autoload(p, false);
	}
	if (!prog || bpf_object__load(obj))
		return 1;
	memset(&attr, 0, sizeof(attr));
	if (argc == 4) {
		attr.target_fd = if_nametoindex(argv[3]);	/* target_ifindex */
		attr.attach_bpf_fd = bpf_program__fd(prog);
		attr.attach_type = 46;				/* BPF_TCX_INGRESS */
		if (syscall(__NR_bpf, BPF_PROG_ATTACH, &attr, sizeof(attr))) {
			perror("tcx attach");
			return 2;
		}
		return 0;
	}
	attr.link_create.prog_fd = bpf_program__fd(prog);
	attr.link_create.target_ifindex = if_nametoindex(argv[3]);
	attr.link_create.attach_type = 47;	/* BPF_TCX_EGRESS */
	lfd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	if (lfd < 0) {
		perror("tcx link");
		return 2;
	}
	return bpf_obj_pin(lfd, argv[4]) ? 1 : 0;
}
EOF
# per-run program names, so concurrent tests never make a name ambiguous by accident
XM="xm$$"
XT="xt$$"
sed -i "s/xdp_main/$XM/; s/xdp_target/$XT/" "$TMP/dp.bpf.c"
MULTI=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
for o in dp sock kf; do
	clang -target bpf -O2 -g -DRUN_ID=$$ -I/usr/include/"$MULTI" -c "$TMP/$o.bpf.c" \
		-o "$TMP/$o.bpf.o" ||
		fail "compile $o.bpf.c"
done
gcc -O1 -o "$TMP/tcx_attach" "$TMP/tcx_attach.c" -lbpf || fail "compile tcx_attach"

# ---- attach ----------------------------------------------------------------------------------
bpftool prog loadall "$TMP/dp.bpf.o" "$PIN/progs" pinmaps "$PIN/maps" || fail "loadall"
bpftool map update pinned "$PIN/maps/jmp" key 0 0 0 0 value pinned "$PIN/progs/$XT" ||
	fail "prog array update"
$RS_NSENTER ip link set dev "$A" xdpdrv pinned "$PIN/progs/$XM" || fail "attach xdp"
$RS_NSENTER tc qdisc add dev "$B" clsact || fail "clsact"
$RS_NSENTER tc filter add dev "$B" ingress prio 7 handle 3 bpf da obj "$TMP/dp.bpf.o" sec tc ||
	fail "tc filter"
HAVE_TCX=1
$RS_NSENTER "$TMP/tcx_attach" "$TMP/dp.bpf.o" tcx_pass "$B" "$PIN/tcx_link" || HAVE_TCX=0
[ "$HAVE_TCX" = 1 ] && { $RS_NSENTER "$TMP/tcx_attach" "$TMP/dp.bpf.o" tcx_pass "$A" ||
	fail "tcx attach without link"; }
bpftool prog load "$TMP/sock.bpf.o" "$PIN/sock" || fail "load socket filter"
bpftool prog load "$TMP/kf.bpf.o" "$PIN/kf" || fail "load kfunc program"

pin_id() { bpftool -j prog show pinned "$1" | jq -r .id; }
MAIN_ID=$(pin_id "$PIN/progs/$XM")
TARGET_ID=$(pin_id "$PIN/progs/$XT")
UNATT_ID=$(pin_id "$PIN/progs/tc_pass")
SOCK_ID=$(pin_id "$PIN/sock")

show_id() { rsp -j prog show "$@" | jq -r .id; }

# ---- list ------------------------------------------------------------------------------------
rsp -j prog list >"$TMP/list.json" 2>"$TMP/list.err" || fail "prog list: $(cat "$TMP/list.err")"
jq -e . "$TMP/list.json" >/dev/null || fail "prog list -j is not JSON"
# the ids of programs attached at (kind, ifname) in our netns
at() {
	jq -r --arg k "$1" --arg i "$2" --arg ns "$RS_NS" \
		'.[] | select(any(.attach[]; .kind == $k and .ifname == $i and .netns == $ns)) | .id' \
		"$TMP/list.json"
}
[ "$(at xdp "$A")" = "$MAIN_ID" ] || fail "xdp on $A: want prog $MAIN_ID, got '$(at xdp "$A")'"
jq -e --argjson id "$MAIN_ID" --arg ns "$RS_NS" '.[] | select(.id == $id) | .attach[] |
	select(.netns == $ns) | select(.mode == "drv")' "$TMP/list.json" >/dev/null ||
	fail "xdp mode is not drv"
pass "list: xdp prog $MAIN_ID on $A (drv) in netns $RS_NS"

TC_ID=$(at tc "$B")
[ -n "$TC_ID" ] || fail "no tc filter found on $B"
jq -e --argjson id "$TC_ID" '.[] | select(.id == $id) | .type == "sched_cls" and
	.name == "tc_pass" and .attach[0].direction == "ingress" and .attach[0].handle == 3 and
	.attach[0].prio == 7' "$TMP/list.json" >/dev/null || fail "tc filter details wrong"
pass "list: tc cls_bpf prog $TC_ID on $B ingress handle 3 prio 7"

jq -e --argjson id "$TARGET_ID" --argjson own "$MAIN_ID" '.[] | select(.id == $id) |
	any(.attach[]; .kind == "prog_array" and .slot == 0 and .owner_prog_id == $own)' \
	"$TMP/list.json" >/dev/null || fail "prog array slot 0 -> $TARGET_ID not found"
pass "list: prog array slot 0 of prog $MAIN_ID holds prog $TARGET_ID"

jq -e --argjson id "$UNATT_ID" '.[] | select(.id == $id) | .attached == false' \
	"$TMP/list.json" >/dev/null || fail "unattached prog $UNATT_ID not listed as unattached"
jq -e --argjson id "$SOCK_ID" 'all(.[]; .id != $id)' "$TMP/list.json" >/dev/null ||
	fail "socket filter listed"
pass "list: unattached program marked, socket filter left out"

if [ "$HAVE_TCX" = 1 ]; then
	TCX_ID=$(at tcx_link "$B")
	[ -n "$TCX_ID" ] || fail "tcx link on $B not found"
	jq -e --argjson id "$TCX_ID" '.[] | select(.id == $id) | .attach[0].direction ==
		"egress" and .attach[0].link_id > 0' "$TMP/list.json" >/dev/null ||
		fail "tcx link details wrong"
	pass "list: tcx link prog $TCX_ID on $B egress"
	TCXA_ID=$(at tcx "$A")
	[ -n "$TCXA_ID" ] || fail "tcx (no link) on $A not found"
	jq -e --argjson id "$TCXA_ID" --arg i "$A" '.[] | select(.id == $id) | .attach[] |
		select(.ifname == $i) | .direction == "ingress" and (has("link_id") | not)' \
		"$TMP/list.json" >/dev/null || fail "tcx (no link) details wrong"
	[ "$(show_id dev "$A" tc ingress)" = "$TCXA_ID" ] || fail "show dev $A tc ingress (tcx)"
	pass "list: tcx prog $TCXA_ID on $A ingress without a link"
else
	echo "note: kernel refused a tcx link; tcx part not tested" >&2
fi
rsp prog list -p | jq -e --argjson id "$MAIN_ID" 'any(.[]; .id == $id)' >/dev/null ||
	fail "options after the command (prog list -p)"
rsp prog list >"$TMP/list.txt" || fail "prog list (text)"
grep -q "^$MAIN_ID: xdp  name $XM" "$TMP/list.txt" || fail "text list lacks $XM"
grep -q "^$UNATT_ID: .*(not attached)" "$TMP/list.txt" || fail "text list lacks (not attached)"

# ---- show / resolution -------------------------------------------------------------------------
[ "$(show_id id "$MAIN_ID")" = "$MAIN_ID" ] || fail "show id"
[ "$(show_id dev "$A" xdp)" = "$MAIN_ID" ] || fail "show dev $A xdp"
[ "$(show_id dev "$B" tc ingress)" = "$TC_ID" ] || fail "show dev $B tc ingress"
[ "$(show_id pinned "$PIN/progs/$XM")" = "$MAIN_ID" ] || fail "show pinned"
[ "$(show_id name "$XM")" = "$MAIN_ID" ] || fail "show name"
TAG=$(bpftool -j prog show id "$MAIN_ID" | jq -r .tag | tr -d :)
[ "$(show_id tag "$TAG")" = "$MAIN_ID" ] || fail "show tag $TAG"
rsp prog show id "$MAIN_ID" | grep -q "xdp drv dev $A netns $RS_NS" || fail "show text"
pass "show: id, dev xdp, dev tc ingress, pinned, name, tag all resolve"

# ---- dump ------------------------------------------------------------------------------------
rsp prog dump id "$MAIN_ID" >"$TMP/x.txt" || fail "dump translated"
grep -q "exit" "$TMP/x.txt" || fail "translated dump has no exit"
grep -Eq "r[0-9] = \*\(u(32|64) \*\)\(r1 \+" "$TMP/x.txt" || fail "no ctx load in dump"
rsp -j prog dump id "$MAIN_ID" translated >"$TMP/x.json" || fail "dump -j"
N=$(bpftool -j prog show id "$MAIN_ID" | jq .bytes_xlated)
jq -e --argjson n "$N" '(map(.raw | length / 16) | add) == ($n / 8)' "$TMP/x.json" \
	>/dev/null || fail "dump -j does not cover all $N bytes"
rsp prog dump id "$MAIN_ID" translated linum >"$TMP/l.txt" || fail "dump linum"
grep -q "data + 14 > data_end" "$TMP/l.txt" || fail "linum: source line missing"
grep -q "dp.bpf.c:" "$TMP/l.txt" || fail "linum: file name missing"
pass "dump translated (text, json, linum)"
rsp prog dump id "$MAIN_ID" jited >"$TMP/j.txt" || fail "dump jited"
grep -Eq "push|ret|jmp" "$TMP/j.txt" || fail "jited dump has no x86 code"
rsp -j prog dump dev "$A" xdp jited | jq -e 'length > 3' >/dev/null ||
	fail "dump jited -j"
rsp prog dump id "$MAIN_ID" jited linum | grep -q "data + 14 > data_end" ||
	fail "jited linum: source line missing"
rsp -j prog dump id "$MAIN_ID" jited linum | jq -e 'any(.[]; .src.line > 0) and
	all(.[]; .addr | startswith("0x"))' >/dev/null || fail "jited linum -j"
pass "dump jited (text, json, linum)"

# ---- lift and original ------------------------------------------------------------------------
rsp -j prog lift id "$MAIN_ID" >"$TMP/lift.json" 2>"$TMP/lift.err" ||
	fail "lift: $(cat "$TMP/lift.err")"
jq -e '.proven == true and (.insns | length) > 5' "$TMP/lift.json" >/dev/null ||
	fail "lift -j: not proven or no code"
rsp prog lift id "$MAIN_ID" | grep -q "proof: translates identically" || fail "lift text"
rsp prog dump id "$MAIN_ID" original >"$TMP/orig.txt" || fail "dump original"
grep -Eq "r[0-9] = \*\(u32 \*\)\(r1 \+ 0x4\)" "$TMP/orig.txt" ||
	fail "original lacks the u32 data_end ctx load"
pass "lift proven, dump original"

# ---- bad input: exit 1, exactly one line on stderr -------------------------------------------
one_line_fail() {
	local desc=$1 rc lines
	shift
	rsp "$@" >"$TMP/o" 2>"$TMP/e"
	rc=$?
	lines=$(wc -l <"$TMP/e")
	[ "$rc" = 1 ] || fail "$desc: exit $rc, want 1 ($(cat "$TMP/e"))"
	[ "$lines" = 1 ] || fail "$desc: $lines stderr lines, want 1: $(cat "$TMP/e")"
	echo "  $desc -> $(cat "$TMP/e")"
}
echo garbage >"$TMP/garbage"
one_line_fail "unknown id" prog show id 4000000000
one_line_fail "garbage pin" prog show pinned "$TMP/garbage"
one_line_fail "missing pin" prog dump pinned "$PIN/nothing"
one_line_fail "socket filter" prog dump id "$SOCK_ID"
one_line_fail "non-XDP pinned" prog show pinned "$PIN/sock"
one_line_fail "ambiguous name" prog show name tc_pass
grep -q "$UNATT_ID" "$TMP/e" && grep -q "$TC_ID" "$TMP/e" || fail "ambiguous: ids not named"
one_line_fail "no attach" prog show dev "$A" tc egress
one_line_fail "unknown tag" -j prog show tag 0000000000000000
one_line_fail "unliftable" prog lift pinned "$PIN/kf"
grep -q "insn [0-9]" "$TMP/e" || fail "unliftable: instruction not named"
rsp -j prog lift pinned "$PIN/kf" 2>/dev/null | jq -e '.proven == false and .fail_insn >= 0' \
	>/dev/null || fail "lift -j of unliftable code: no report on stdout"
pass "bad input: exit 1 with one stderr line"

usage() {
	local desc=$1 rc
	shift
	rsp "$@" >/dev/null 2>&1
	rc=$?
	[ "$rc" = 2 ] || fail "$desc: exit $rc, want 2"
}
usage "no command" prog
usage "unknown command" prog frob
usage "show without PROG" prog show
usage "bad id" prog show id abc
usage "bad keyword" prog show ident 3
usage "bad dump mode" prog dump id "$MAIN_ID" sideways
usage "extra word" prog show id "$MAIN_ID" extra
rsp prog help | grep -q "PROG :=" || fail "prog help"
pass "usage errors exit 2"

# nothing changed by any of the above
rsp -j prog list >"$TMP/list2.json" || fail "second list"
[ "$(at xdp "$A")" = "$MAIN_ID" ] || fail "xdp attachment changed"
pass "attachments unchanged"
