#!/usr/bin/env bash
# agent_unit.sh - dist/respec-agent.service passes `systemd-analyze verify` (with ExecStart
# pointing at the built binary) and keeps the properties docs/agent.md promises: Type=notify,
# Restart=on-failure, the capability set, the hardening options.  Also checks that the
# agent's sd_notify path sends READY=1 to $NOTIFY_SOCKET (a datagram socket of ours).
set -u
. "$(dirname "$0")/../lib.sh"
SRC=${2:-${RS_SOURCE_DIR:-.}}
UNIT=$SRC/dist/respec-agent.service
command -v systemd-analyze >/dev/null || fail "systemd-analyze missing (./run installs systemd)"
[ -f "$UNIT" ] || fail "$UNIT missing"

TMP=$(mktemp -d /tmp/rs-agent-unit-XXXXXX)
rs_on_exit "rm -rf $TMP"
sed "s#/usr/local/bin/respec#$RESPEC#g" "$UNIT" > "$TMP/respec-agent.service"
out=$(systemd-analyze verify "$TMP/respec-agent.service" 2>&1) ||
	fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify printed warnings: $out"
pass "systemd-analyze verify accepts the unit"

for want in '^Type=notify$' '^Restart=on-failure$' \
	'^CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_ADMIN$' \
	'^ProtectSystem=strict$' '^ProtectHome=yes$' '^NoNewPrivileges=yes$' \
	'^PrivateTmp=yes$' '^ExecStart=/usr/local/bin/respec agent '; do
	grep -q "$want" "$UNIT" || fail "unit lacks $want"
done
pass "unit properties"

# a broken unit is refused (the check can fail)
sed 's/^Type=notify$/Type=bogus/' "$TMP/respec-agent.service" > "$TMP/bad.service"
if systemd-analyze verify "$TMP/bad.service" >/dev/null 2>&1 &&
   ! systemd-analyze verify "$TMP/bad.service" 2>&1 | grep -qi "bogus\|failed"; then
	fail "systemd-analyze accepted Type=bogus"
fi
pass "a broken unit is reported"

# READY=1 over NOTIFY_SOCKET: the agent with a config that selects nothing, --once
if [ "$(id -u)" -eq 0 ]; then
	rs_mount_bpffs
	cat > "$TMP/cfg.json" <<JSON
{ "select": [{"name": "no-such-program-$$"}], "capture": false,
  "journal_dir": "$TMP/journal", "pin_dir": "/sys/fs/bpf/rs-unit-$$" }
JSON
	rs_on_exit "rm -rf /sys/fs/bpf/rs-unit-$$"
	python3 - "$TMP/notify" "$RESPEC" "$TMP/cfg.json" <<'PY' || fail "no READY=1 from the agent"
import os, socket, subprocess, sys
path, respec, cfg = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen([respec, "agent", "--config", cfg, "--once"], env=env)
msgs = []
try:
    while True:
        m = s.recv(4096).decode()
        msgs.append(m)
        if "STOPPING=1" in m:
            break
except socket.timeout:
    pass
rc = p.wait(timeout=30)
print("notify messages:", msgs)
sys.exit(0 if rc == 0 and any("READY=1" in m for m in msgs) else 1)
PY
	pass "READY=1 and STOPPING=1 sent to NOTIFY_SOCKET"
fi
