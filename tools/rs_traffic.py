#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""rs_traffic.py - a tiny AF_PACKET traffic source and verdict counter for the agent's demo
and end-to-end tests (tools/demo.sh, tests/e2e/agent_*.sh).  Run it inside the test's own
network namespace; it never sends anywhere else.

  rs_traffic.py --tx IF --dmac MAC|IF [--bounce IF] [--pass IF] --flow NAME,PROTO,SRC,DST,SPORT,DPORT
                [--flow ...] [--pps N] [--seconds S] [--marks FILE] [--out FILE.json]

Frames of every flow (round robin, IPv4 TCP/UDP, payload "RSTR" + sequence number) leave
through --tx towards --dmac (the interface the program under test runs on).  Each frame's
fate is read back by sequence number:
  tx    seen arriving on --bounce (XDP_TX / redirect back out of the program's interface)
  pass  seen arriving on --pass (the program passed it to the stack: packet taps run after XDP)
  drop  seen nowhere
Timestamps (unix seconds, one per line, e.g. `date +%s.%N`) appended to --marks split the run
into segments; the report counts verdicts per flow and segment by send time, so a test can
require "every frame sent after the control-plane update got the new verdict".
Stops after --seconds or on SIGTERM/SIGINT and writes the JSON report to --out (or stdout).
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
MAGIC = b"RSTR"


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(":"))


def if_mac(ifname):
    """MAC of an interface of this namespace (SIOCGIFHWADDR: /sys may show another one)."""
    import fcntl
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        r = fcntl.ioctl(s.fileno(), 0x8927, struct.pack("256s", ifname.encode()[:15]))
    return ":".join("%02x" % b for b in r[18:24])


def frame(smac, dmac, flow, seq):
    _, proto, src, dst, sport, dport = flow
    payload = MAGIC + struct.pack("!Q", seq) + b"\0" * 18
    if proto == "udp":
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        pnum = 17
    else:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, 0, 5 << 4, 0x02,
                         65535, 0, 0) + payload
        pnum = 6
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), seq & 0xFFFF, 0, 64, pnum, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return dmac + smac + b"\x08\x00" + ip + l4


def parse_flow(s):
    f = s.split(",")
    if len(f) != 6 or f[1] not in ("tcp", "udp"):
        raise argparse.ArgumentTypeError("flow: NAME,tcp|udp,SRC,DST,SPORT,DPORT")
    return (f[0], f[1], f[2], f[3], int(f[4]), int(f[5]))


class Run:
    def __init__(self, args):
        self.args = args
        self.flows = args.flow
        self.sent = []          # (send time, flow index) by seq
        self.fate = {}          # seq -> "tx" / "pass"
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def receiver(self, ifname, verdict):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((ifname, 0))
        s.settimeout(0.2)
        while True:
            try:
                data, addr = s.recvfrom(4096)
            except socket.timeout:
                if self.stop.is_set():
                    break
                continue
            if addr[2] == PACKET_OUTGOING:
                continue
            i = data.find(MAGIC)
            if i < 0 or i + 12 > len(data):
                continue
            seq = struct.unpack("!Q", data[i + 4:i + 12])[0]
            with self.lock:
                self.fate.setdefault(seq, verdict)
        s.close()

    def send(self):
        a = self.args
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        s.bind((a.tx, 0))
        dmac = a.dmac if ":" in a.dmac else if_mac(a.dmac)
        smac, dmac = mac_bytes(if_mac(a.tx)), mac_bytes(dmac)
        t0 = time.time()
        end = t0 + a.seconds if a.seconds else None
        seq = 0
        batch = max(1, a.pps // 100)
        while not self.stop.is_set():
            now = time.time()
            if end and now >= end:
                break
            due = int((now - t0) * a.pps)
            while seq < due:
                fi = seq % len(self.flows)
                with self.lock:
                    self.sent.append((time.time(), fi))
                s.send(frame(smac, dmac, self.flows[fi], seq))
                seq += 1
                if seq % batch == 0:
                    break
            time.sleep(0.002)
        s.close()

    def report(self, marks):
        bounds = sorted(marks)
        out = {"sent": len(self.sent), "marks": bounds, "flows": {}}
        for name, *_ in self.flows:
            out["flows"][name] = {"sent": 0, "tx": 0, "pass": 0, "drop": 0,
                                  "segments": [{"sent": 0, "tx": 0, "pass": 0, "drop": 0}
                                               for _ in range(len(bounds) + 1)]}
        for seq, (t, fi) in enumerate(self.sent):
            v = self.fate.get(seq, "drop")
            seg = sum(1 for b in bounds if t >= b)
            f = out["flows"][self.flows[fi][0]]
            for d in (f, f["segments"][seg]):
                d["sent"] += 1
                d[v] += 1
            sg = f["segments"][seg]
            sg.setdefault("last_" + v, t)
            sg["last_" + v] = max(sg["last_" + v], t)
            sg.setdefault("first_" + v, t)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tx", required=True)
    ap.add_argument("--dmac", required=True)
    ap.add_argument("--bounce")
    ap.add_argument("--pass", dest="pass_if")
    ap.add_argument("--flow", type=parse_flow, action="append", required=True)
    ap.add_argument("--pps", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--marks")
    ap.add_argument("--out")
    args = ap.parse_args()

    run = Run(args)
    signal.signal(signal.SIGTERM, lambda *_: run.stop.set())
    signal.signal(signal.SIGINT, lambda *_: run.stop.set())
    rx = []
    for ifname, verdict in ((args.bounce, "tx"), (args.pass_if, "pass")):
        if ifname:
            t = threading.Thread(target=run.receiver, args=(ifname, verdict), daemon=True)
            t.start()
            rx.append(t)
    time.sleep(0.3)
    run.send()
    time.sleep(0.5)
    run.stop.set()
    for t in rx:
        t.join()
    marks = []
    if args.marks and os.path.exists(args.marks):
        with open(args.marks) as f:
            marks = [float(x) for x in f.read().split()]
    text = json.dumps(run.report(marks), indent=1)
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text + "\n")
        os.rename(args.out + ".tmp", args.out)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
