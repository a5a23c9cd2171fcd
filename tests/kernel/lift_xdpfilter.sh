#!/bin/bash
# lift_xdpfilter.sh - lift and prove all 10 xdp-filter programs (xdp-tools), each loaded by
# the xdp-filter command itself into a veth of a private network namespace.
#
# The 10 objects (/usr/lib/x86_64-linux-gnu/bpf/xdpfilt_{alw,dny}_{all,eth,ip,tcp,udp}.o) are
# selected by the policy (-p allow|deny) and the feature set (-f tcp|udp|ipv4|ethernet|all;
# ipv6 selects the same "ip" object as ipv4).  On this kernel libxdp cannot build its
# dispatcher (freplace is refused with EPERM), so xdp-filter falls back to attaching the
# filter program directly: the attached program id is read from `ip link`.  Native (driver)
# mode is used for the allow policy and skb (generic) mode for deny, to cover both.
# Everything (filters, namespace, veth) is removed on exit.
RS_BUILD_DIR=${RS_BUILD_DIR:-${1:-build}}
. "$(dirname "$0")/../lib.sh"
rs_private_bpffs "$0" "$@"

rs_require_root
command -v xdp-filter >/dev/null || { echo "SKIP: xdp-filter (xdp-tools) not installed" >&2; exit 77; }
[ -x "$RESPEC" ] || fail "respec binary not found at $RESPEC"
rs_mount_bpffs
rs_netns_setup liftxf
rs_on_exit "$RS_NSENTER xdp-filter unload $RS_VETH0"

proven=0
for policy in allow deny; do
	mode=native
	[ "$policy" = deny ] && mode=skb
	pol=${policy/allow/alw}
	pol=${pol/deny/dny}
	for feat in tcp udp ipv4 ethernet all; do
		case $feat in
		ipv4) obj=ip ;;
		ethernet) obj=eth ;;
		*) obj=$feat ;;
		esac
		want="xdpfilt_${pol}_${obj}"
		$RS_NSENTER xdp-filter load -m "$mode" -p "$policy" -f "$feat" "$RS_VETH0" ||
			fail "xdp-filter load -m $mode -p $policy -f $feat"
		read -r id name < <($RS_NSENTER ip -d link show dev "$RS_VETH0" |
			sed -n 's/.*prog\/xdp id \([0-9]*\) name \([A-Za-z0-9_]*\).*/\1 \2/p' | head -1)
		[ -n "${id:-}" ] || fail "$want: no XDP program attached to $RS_VETH0"
		[ "$name" = "$want" ] || fail "-p $policy -f $feat loaded $name, expected $want"
		out=$($RESPEC -j prog lift id "$id" 2>&1) || fail "$want (id $id): lift failed: $out"
		echo "$out" | grep -Eq '"proven": *true' || fail "$want (id $id): not proven: $out"
		pass "$want (id $id, $mode mode) lifted and proven"
		proven=$((proven + 1))
		$RS_NSENTER xdp-filter unload "$RS_VETH0" || fail "xdp-filter unload after $want"
	done
done
[ "$proven" -eq 10 ] || fail "only $proven of 10 xdp-filter programs proven"
pass "10/10 xdp-filter programs proven"
