# tests/lib.sh - shared helpers for kernel and end-to-end script tests (source it).
#
# rs_netns_setup NAME: creates network namespace rs-NAME-$$ with a veth pair
#   (host side "${RS_NS}h" in the namespace too: both ends live inside it) and registers a trap
#   that removes the namespace, its interfaces, pins under $RS_PIN_DIR and background jobs on
#   any exit.  Sets RS_NS (namespace name), RS_NSENTER (command prefix that runs inside it
#   without remounting /sys: nsenter --net=/run/netns/NAME), RS_VETH0, RS_VETH1.
# rs_require_cmd CMD...: skip (exit 77) unless every CMD is installed.
# rs_iproute2_pins_cleanup: after tc/ip load objects (they create /sys/fs/bpf/{tc,ip,xdp}),
#   remove those directories on exit if they were not there before and hold no pin.
set -u
RESPEC=${RESPEC:-${RS_BUILD_DIR:-build}/tools/respec}
RS_CLEANUP_CMDS=()

rs_cleanup() {
	local i
	for ((i = ${#RS_CLEANUP_CMDS[@]} - 1; i >= 0; i--)); do
		eval "${RS_CLEANUP_CMDS[$i]}" >/dev/null 2>&1 || true
	done
	RS_CLEANUP_CMDS=()
}
trap rs_cleanup EXIT
trap 'exit 130' INT TERM

rs_on_exit() { RS_CLEANUP_CMDS+=("$*"); }

rs_require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root for BPF" >&2
		exit 77
	fi
}

rs_mount_bpffs() {
	if ! mountpoint -q /sys/fs/bpf; then
		mount -t bpf bpf /sys/fs/bpf
	fi
}

rs_require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || { echo "SKIP: $c missing" >&2; exit 77; }
	done
}

rs_iproute2_pins_cleanup() {
	if [ ! -e /sys/fs/bpf/tc ]; then
		rs_on_exit '[ -z "$(find /sys/fs/bpf/tc -type f)" ] && rm -rf /sys/fs/bpf/tc /sys/fs/bpf/ip /sys/fs/bpf/xdp'
	fi
}

rs_netns_setup() {
	local tag=$1
	RS_NS="rs-$tag-$$"
	ip netns add "$RS_NS"
	rs_on_exit "ip netns del $RS_NS"
	RS_NSENTER="nsenter --net=/run/netns/$RS_NS"
	RS_VETH0="rsv0"
	RS_VETH1="rsv1"
	$RS_NSENTER ip link add "$RS_VETH0" type veth peer name "$RS_VETH1"
	$RS_NSENTER ip link set lo up
	$RS_NSENTER ip link set "$RS_VETH0" up
	$RS_NSENTER ip link set "$RS_VETH1" up
	$RS_NSENTER ip addr add 10.250.0.1/24 dev "$RS_VETH0"
	$RS_NSENTER ip addr add 10.250.0.2/24 dev "$RS_VETH1"
}

# rs_private_bpffs "$0" "$@" (first thing after sourcing): run the rest of the script in a mount
# namespace of its own with a fresh bpffs on /sys/fs/bpf.  Pins made by what the test runs
# (xdp-filter's maps, the agent's pinned originals) are then private to the test and vanish
# with it, whatever happens, and a pin left on the host can never leak into the test.
rs_private_bpffs() {
	if [ -z "${RS_PRIVATE_BPFFS:-}" ]; then
		trap - EXIT
		RS_PRIVATE_BPFFS=1 exec unshare --mount --propagation private bash "$@"
	fi
	mount -t bpf bpf /sys/fs/bpf || { echo "FAIL: cannot mount a private bpffs" >&2; exit 1; }
}

fail() { echo "FAIL: $*" >&2; exit 1; }
pass() { echo "ok: $*"; }
