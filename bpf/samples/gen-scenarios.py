#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""gen-scenarios.py - generate the sample scenarios (docs/scenario.md) with a fixed seed.

    python3 bpf/samples/gen-scenarios.py [OUTDIR]

writes l4lb/scenarios/l4lb-16x64.json, router/scenarios/router-1k.json, router-50k.json,
firewall/scenarios/firewall-100.json and firewall-2000.json below OUTDIR (default: the
directory of this script).  Output is deterministic (seeded random.Random per file).

Each scenario starts with a few fixed "anchor" entries that tests/kernel/test_samples.c aims
packets at (documented in docs/samples.md); the rest is random but never overlaps the anchors.
"""
import ipaddress
import json
import os
import random
import sys


def dump(path, obj):
    """One map entry per line: compact, diff-friendly."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("{\n")
        keys = list(obj.keys())
        for i, k in enumerate(keys):
            v = obj[k]
            f.write("  %s: " % json.dumps(k))
            if k == "maps":
                f.write("{\n")
                names = list(v.keys())
                for j, name in enumerate(names):
                    f.write("    %s: [\n" % json.dumps(name))
                    ents = v[name]
                    for n, e in enumerate(ents):
                        f.write("      %s%s\n" % (json.dumps(e, separators=(",", ":")),
                                                  "," if n + 1 < len(ents) else ""))
                    f.write("    ]%s\n" % ("," if j + 1 < len(names) else ""))
                f.write("  }")
            elif k == "updates":
                f.write("[\n")
                for n, u in enumerate(v):
                    f.write("    %s%s\n" % (json.dumps(u, separators=(",", ":")),
                                            "," if n + 1 < len(v) else ""))
                f.write("  ]")
            else:
                f.write(json.dumps(v, indent=None))
            f.write(",\n" if i + 1 < len(keys) else "\n")
        f.write("}\n")


MIX = {"ipv6": 0.25, "icmp": 0.02, "arp": 0.01, "vlan": 0.02, "miss": 0.1}

# ---- l4lb ------------------------------------------------------------------------------------

RING_SIZE = 256


def maglev(rng, nbackends, size):
    """Maglev-style consistent-hash table of `size` slots over `nbackends` backends."""
    perms = []
    for _ in range(nbackends):
        offset = rng.randrange(size)
        skip = rng.randrange(1, size, 2)        # odd: coprime with a power-of-two size
        perms.append((offset, skip))
    table = [-1] * size
    nxt = [0] * nbackends
    filled = 0
    while filled < size:
        for b in range(nbackends):
            offset, skip = perms[b]
            while True:
                slot = (offset + nxt[b] * skip) % size
                nxt[b] += 1
                if table[slot] < 0:
                    break
            table[slot] = b
            filled += 1
            if filled == size:
                break
    return table


def l4lb(out):
    rng = random.Random(0x14b)
    nvip, nbe = 16, 64
    vips, backends, ring, flows = [], [], [], []
    for v in range(nvip):
        if v < 12:
            addr = "10.100.0.%d" % (v + 1)
            # VIP 10: UDP DNS; VIP 11: wildcard port (0) UDP; others TCP 80 / 443
            proto = 17 if v >= 10 else 6
            port = 53 if v == 10 else 0 if v == 11 else (80 if v % 2 == 0 else 443)
            key = {"v4": addr, "port": port, "proto": proto}
            src = "172.16.0.0/12"
        else:
            addr = "2001:db8:100::%x" % (v - 11)
            proto, port = 6, 80 if v % 2 == 0 else 443
            key = {"v6": addr, "port": port, "proto": proto}
            src = "2001:db8:c000::/36"
        vips.append({"key": key, "value": {"vip_idx": v, "flags": 0}})
        for b in range(nbe):
            if v < 12:
                backends.append({"key": v * nbe + b,
                                 "value": {"v4": "10.200.%d.%d" % (v, b + 1), "flags": 0}})
            else:
                backends.append({"key": v * nbe + b,
                                 "value": {"v6": "2001:db8:200:%x::%x" % (v, b + 1),
                                           "flags": 1}})
        for slot, b in enumerate(maglev(rng, nbe, RING_SIZE)):
            ring.append({"key": v * RING_SIZE + slot, "value": v * nbe + b})
        flows.append({"weight": 4 if v < 4 else 1, "proto": "tcp" if proto == 6 else "udp",
                      "src": src, "dst": addr, "sport": "1024-65535",
                      "dport": port if port else "1-65535"})
    sc = {
        "program": "l4lb",
        "description": "16 VIPs (12 IPv4 incl. a UDP and a wildcard-port VIP, 4 IPv6) x 64 "
                       "backends, Maglev rings of %d slots" % RING_SIZE,
        "maps": {
            "config": [{"key": 0, "value": {"gw_mac": "02:00:00:00:00:fe",
                                            "src_v4": "10.99.0.1",
                                            "src_v6": "2001:db8:99::1"}}],
            "vip_map": vips,
            "backends": backends,
            "ring": ring,
        },
        "updates": [
            {"at": 0.5, "map": "vip_map", "op": "delete", "key": vips[3]["key"]},
            {"at": 0.75, "map": "ring", "op": "update", "key": 0, "value": 5},
        ],
        "traffic": {"flows": flows, "mix": MIX},
    }
    dump(os.path.join(out, "l4lb/scenarios/l4lb-16x64.json"), sc)


# ---- router ----------------------------------------------------------------------------------

ROUTER_ANCHORS4 = [("10.0.0.0/8", 1), ("10.1.0.0/16", 2), ("10.1.2.0/24", 3)]
ROUTER_ANCHORS6 = [("2001:db8::/32", 4), ("2001:db8:1::/48", 5)]


def router(out, n4, n6, name, seed):
    rng = random.Random(seed)
    nh = []
    for i in range(16):
        nh.append({"key": i, "value": {"dmac": "02:00:00:00:01:%02x" % i,
                                       "smac": "02:00:00:00:00:01",
                                       "ifindex": 0, "flags": 1}})
    routes4 = [{"key": p, "value": h} for p, h in ROUTER_ANCHORS4]
    seen = set(p for p, _ in ROUTER_ANCHORS4)
    while len(routes4) < n4:
        plen = rng.choice([16, 20, 22, 24, 24, 24, 28, 32])
        a = rng.randrange(20 << 24, 100 << 24)          # 20.0.0.0 - 99.255.255.255
        net = ipaddress.ip_network((a, plen), strict=False)
        if str(net) in seen:
            continue
        seen.add(str(net))
        routes4.append({"key": str(net), "value": rng.randrange(16)})
    routes6 = [{"key": p, "value": h} for p, h in ROUTER_ANCHORS6]
    seen = set(p for p, _ in ROUTER_ANCHORS6)
    while len(routes6) < n6:
        plen = rng.choice([36, 40, 48, 48, 56, 64])
        hi = (0x20010db9 + rng.randrange(7)) << 96     # 2001:db9:: - 2001:dbf::
        a = hi | rng.getrandbits(96)
        net = ipaddress.ip_network((a, plen), strict=False)
        if str(net) in seen:
            continue
        seen.add(str(net))
        routes6.append({"key": str(net), "value": rng.randrange(16)})
    flows = [
        {"weight": 4, "proto": "tcp", "src": "192.168.0.0/16", "dst": "10.0.0.0/8",
         "sport": "1024-65535", "dport": 443},
        {"weight": 2, "proto": "udp", "src": "192.168.0.0/16", "dst": "10.1.2.0/24",
         "sport": "1024-65535", "dport": 53},
        {"weight": 2, "proto": "tcp", "src": "2001:db8:ffff::/48", "dst": "2001:db8:1::/48",
         "sport": "1024-65535", "dport": 80},
    ]
    for r in rng.sample(routes4[3:], 8) + rng.sample(routes6[2:], 4):
        flows.append({"weight": 1, "proto": rng.choice(["tcp", "udp"]),
                      "src": "192.168.0.0/16" if ":" not in r["key"] else "2001:db8:ffff::/48",
                      "dst": r["key"], "sport": "1024-65535", "dport": "1-1023"})
    sc = {
        "program": "router",
        "description": "%d IPv4 + %d IPv6 routes over 16 next hops (XDP_TX), no default route"
                       % (n4, n6),
        "maps": {"nexthops": nh, "routes4": routes4, "routes6": routes6},
        "updates": [
            {"at": 0.3, "map": "routes4", "op": "update", "key": "10.1.2.128/25", "value": 7},
            {"at": 0.6, "map": "routes4", "op": "delete", "key": "10.1.0.0/16"},
            {"at": 0.8, "map": "nexthops", "op": "update", "key": 3,
             "value": {"dmac": "02:00:00:00:02:03", "smac": "02:00:00:00:00:01",
                       "ifindex": 0, "flags": 1}},
        ],
        "traffic": {"flows": flows, "mix": MIX},
    }
    dump(os.path.join(out, "router/scenarios/%s.json" % name), sc)


# ---- firewall --------------------------------------------------------------------------------

def v4rule(src, dst, proto, dport, action, sport=None):
    s = ipaddress.ip_network(src)
    d = ipaddress.ip_network(dst)
    r = {"family": 4, "proto": proto,
         "src": str(s.network_address), "src_mask": str(s.netmask),
         "dst": str(d.network_address), "dst_mask": str(d.netmask),
         "action": action}
    if dport:
        r["dport_lo"], r["dport_hi"] = dport
    if sport:
        r["sport_lo"], r["sport_hi"] = sport
    return r


def v6rule(src, dst, proto, dport, action):
    s = ipaddress.ip_network(src)
    d = ipaddress.ip_network(dst)
    r = {"family": 6, "proto": proto,
         "src": str(s.network_address), "src_mask": str(s.netmask),
         "dst": str(d.network_address), "dst_mask": str(d.netmask),
         "action": action}
    if dport:
        r["dport_lo"], r["dport_hi"] = dport
    return r


FW_ANCHORS = [
    v4rule("10.66.0.0/16", "0.0.0.0/0", 6, (22, 22), "FW_DROP"),
    v4rule("0.0.0.0/0", "10.0.0.0/8", 6, (22, 22), "FW_ALLOW"),
    v4rule("0.0.0.0/0", "10.0.0.0/8", 6, (80, 443), "FW_ALLOW"),
    v4rule("0.0.0.0/0", "10.0.0.53/32", 17, (53, 53), "FW_ALLOW"),
    v6rule("::/0", "2001:db8::/32", 6, (443, 443), "FW_ALLOW"),
]


def firewall(out, nrules, name, seed):
    rng = random.Random(seed)
    rules = list(FW_ANCHORS)
    while len(rules) < nrules:
        action = rng.choice(["FW_ALLOW", "FW_ALLOW", "FW_DROP"])
        proto = rng.choice([6, 6, 17, 0])
        lo = rng.randrange(1024, 60000)
        dport = (lo, lo + rng.choice([0, 0, 10, 100])) if proto else None
        if rng.random() < 0.75:
            src = ipaddress.ip_network((rng.randrange(100 << 24 | 64 << 16, 100 << 24 | 128 << 16),
                                        rng.choice([16, 24, 32])), strict=False)
            dst = ipaddress.ip_network((rng.randrange(172 << 24 | 16 << 16, 172 << 24 | 32 << 16),
                                        rng.choice([24, 28, 32])), strict=False)
            rules.append(v4rule(str(src), str(dst), proto, dport, action))
        else:
            src = ipaddress.ip_network(((0x20010db8c << 92) | rng.getrandbits(92),
                                        rng.choice([48, 64])), strict=False)
            dst = ipaddress.ip_network(((0x20010db8d << 92) | rng.getrandbits(92),
                                        rng.choice([64, 96, 128])), strict=False)
            rules.append(v6rule(str(src), str(dst), proto, dport, action))
    block4 = ["192.0.2.0/24"] + [str(ipaddress.ip_network((rng.randrange(200 << 24, 224 << 24),
                                                          rng.choice([16, 24, 32])),
                                                         strict=False))
                                 for _ in range(49)]
    block6 = ["2001:db8:bad::/48"] + [str(ipaddress.ip_network(((0x3fff << 112) |
                                                              rng.getrandbits(112), 48),
                                                             strict=False))
                                      for _ in range(9)]
    block4 = sorted(set(block4), key=block4.index)
    block6 = sorted(set(block6), key=block6.index)
    sc = {
        "program": "firewall",
        "description": "%d ordered rules (5 anchors, then random IPv4/IPv6), LPM source "
                       "blocklists, default drop" % nrules,
        "maps": {
            "fw_config": [{"key": 0, "value": {"rule_cnt": nrules, "default_action": "FW_DROP"}}],
            "rules": [{"key": i, "value": r} for i, r in enumerate(rules)],
            "blocklist4": [{"key": p, "value": 1} for p in block4],
            "blocklist6": [{"key": p, "value": 1} for p in block6],
        },
        "updates": [
            {"at": 0.4, "map": "blocklist4", "op": "update", "key": "10.66.0.0/16", "value": 1},
            {"at": 0.7, "map": "rules", "op": "update", "key": 2,
             "value": v4rule("0.0.0.0/0", "10.0.0.0/8", 6, (80, 80), "FW_ALLOW")},
        ],
        "traffic": {
            "flows": [
                {"weight": 6, "proto": "tcp", "src": "198.51.100.0/24", "dst": "10.0.0.0/8",
                 "sport": "1024-65535", "dport": "80-443"},
                {"weight": 1, "proto": "tcp", "src": "10.66.0.0/16", "dst": "10.0.0.0/8",
                 "sport": "1024-65535", "dport": 22},
                {"weight": 1, "proto": "udp", "src": "198.51.100.0/24", "dst": "10.0.0.53",
                 "sport": "1024-65535", "dport": 53},
                {"weight": 2, "proto": "tcp", "src": "2001:db8:c000::/36",
                 "dst": "2001:db8::/32", "sport": "1024-65535", "dport": 443},
                {"weight": 2, "proto": "tcp", "src": "100.64.0.0/10", "dst": "172.16.0.0/12",
                 "sport": "1024-65535", "dport": "1024-60100"},
                {"weight": 1, "proto": "udp", "src": "192.0.2.0/24", "dst": "10.0.0.0/8",
                 "sport": "1024-65535", "dport": 53},
            ],
            "mix": MIX,
        },
    }
    dump(os.path.join(out, "firewall/scenarios/%s.json" % name), sc)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    l4lb(out)
    router(out, 800, 200, "router-1k", 0x1000)
    router(out, 40000, 10000, "router-50k", 0x50000)
    firewall(out, 100, "firewall-100", 0xf100)
    firewall(out, 2000, "firewall-2000", 0xf2000)


if __name__ == "__main__":
    main()
