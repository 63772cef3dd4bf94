"""Runs INSIDE the virtme-ng guest (a full Debian kernel, with sch_netem): netem through
HtbShaper, measured with ping between netns, results written as JSON for the host.

Usage (guest): python tests/vm/guest_netem.py OUT.json. The host side is
test_netem_in_vm.py; this file is not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

A_IP, B_IP, C_IP = "10.251.0.1", "10.251.0.2", "10.251.0.3"
MODULES = ("sch_netem", "sch_htb", "ifb", "act_mirred", "cls_u32", "sch_ingress")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=check, text=True, capture_output=True)


def ping(src_ns: str, dst: str, count: int, interval: float) -> dict[str, Any]:
    """Per-packet RTTs (ms) and the loss of ``count`` pings from netns ``src_ns``."""
    out = sh("ip", "netns", "exec", src_ns, "ping", "-n", "-c", str(count), "-i", str(interval),
             "-W", "2", dst, check=False).stdout  # fmt: skip
    rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", out)]
    sent = int(re.search(r"(\d+) packets transmitted", out)[1])
    received = int(re.search(r"(\d+) received", out)[1])
    return {
        "sent": sent,
        "received": received,
        "loss_pct": 100.0 * (sent - received) / sent,
        "median": statistics.median(rtts) if rtts else None,
        "mean": statistics.fmean(rtts) if rtts else None,
        "stdev": statistics.pstdev(rtts) if len(rtts) > 1 else None,
        "min": min(rtts, default=None),
        "max": max(rtts, default=None),
        "rtts": rtts,
    }


def build() -> dict[str, str]:
    """Bridge pdtbr with vnodes a, b, c (netns pdtna.., host ends pdtva..)."""
    sh("ip", "link", "add", "pdtbr", "type", "bridge")
    sh("ip", "link", "set", "pdtbr", "up")
    names = {}
    for n, ip in (("a", A_IP), ("b", B_IP), ("c", C_IP)):
        ns, host = f"pdtn{n}", f"pdtv{n}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", "if0", "netns", ns)
        sh("ip", "link", "set", host, "master", "pdtbr", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "if0")
        sh("ip", "-n", ns, "link", "set", "if0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        names[n] = host
    for ip in (B_IP, C_IP):  # wait for the bridge ports to forward
        for _ in range(50):
            if (
                sh("ip", "netns", "exec", "pdtna", "ping", "-c1", "-W1", ip, check=False).returncode
                == 0
            ):
                break
            time.sleep(0.2)
    return names


def main(out_path: str) -> int:
    results: dict[str, Any] = {"kernel": os.uname().release, "cases": {}, "errors": {}}
    results["modprobe"] = {m: sh("modprobe", m, check=False).returncode == 0 for m in MODULES}

    def save() -> None:
        Path(out_path).write_text(json.dumps(results, indent=1))

    t0 = time.monotonic()
    from pydistem.agent.journal import Journal
    from pydistem.model.specs import Traffic
    from pydistem.plugins.shapers.htb import HtbShaper

    results["import_s"] = time.monotonic() - t0
    shaper = HtbShaper()
    results["probe"] = shaper.probe()
    journal = Journal(Path(tempfile.mkdtemp()) / "journal")
    hosts = build()
    a = hosts["a"]
    results["base"] = ping("pdtna", B_IP, 20, 0.02)
    save()

    def case(name: str, inp: Traffic | None, outp: Traffic | None, count: int = 25,
             interval: float = 0.02, dst: str = B_IP) -> None:  # fmt: skip
        # a harness: record any failure of one case and go on with the next
        try:
            shaper.apply(a, inp, outp, journal)
            results["cases"][name] = ping("pdtna", dst, count, interval)
        except Exception:
            results["errors"][name] = traceback.format_exc()
        save()

    for ms in (10, 50, 100):
        case(f"output_{ms}ms", None, Traffic(latency=f"{ms}ms"))
    case("input_20ms_under_10mbit", Traffic(bandwidth="10mbit", latency="20ms"), None)
    case("both_50ms", Traffic(latency="50ms"), Traffic(latency="50ms"))
    case("output_loss_10pct", None, Traffic(loss="10%"), count=2000, interval=0.002)
    case("output_50ms_jitter_10ms", None, Traffic(latency="50ms", jitter="10ms"), count=100,
         interval=0.01)  # fmt: skip
    case("output_50ms_jitter_10ms_normal", None,
         Traffic(latency="50ms", jitter="10ms", jitter_distribution="normal"), count=200,
         interval=0.01)  # fmt: skip
    try:
        shaper.apply(a, None, Traffic(bandwidth="100mbit"), journal)
        shaper.apply_peer_latencies(a, {B_IP: "30ms", C_IP: "60ms"}, journal)
        results["cases"]["peer_b_30ms"] = ping("pdtna", B_IP, 25, 0.02)
        results["cases"]["peer_c_60ms"] = ping("pdtna", C_IP, 25, 0.02)
        shaper.apply_peer_latencies(a, {}, journal)
        results["cases"]["peers_removed"] = ping("pdtna", C_IP, 25, 0.02)
    except Exception:
        results["errors"]["peers"] = traceback.format_exc()
    shaper.clear(a, journal)
    results["after_clear"] = {
        "links": sh("ip", "-br", "link").stdout,
        "qdisc": sh("tc", "qdisc", "show", "dev", a).stdout,
        "journal": [e.id for e in journal.live()],
    }
    results["total_s"] = time.monotonic() - t0
    save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
