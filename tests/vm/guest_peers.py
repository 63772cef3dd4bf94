"""Runs INSIDE the virtme-ng guest (a kernel with sch_netem): Distem's
``POST /peers_matrix_latencies`` through the compat app, on three ``netns`` vnodes a real
coordinator and agent build; ping RTTs measured per (source, destination), written as JSON.

Usage (guest): python tests/vm/guest_peers.py OUT.json. The host side is
test_peers_in_vm.py; this file is not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import quote

NAMES = ["pa", "pb", "pc"]
#: what vnode i sends to vnode j is delayed by MATRIX[i][j] ms (asymmetric on purpose)
MATRIX = [[0, 10, 30], [5, 0, 20], [0, 15, 0]]
MODULES = ("sch_netem", "sch_htb", "ifb", "act_mirred", "cls_u32", "sch_ingress")


def rtts(c: Any, src: str, dst_ip: str, count: int = 15) -> dict[str, Any]:
    out = c.vnode_execute(src, f"ping -n -c {count} -i 0.02 -W 2 {dst_ip}").stdout
    times = [float(x) for x in re.findall(r"time=([0-9.]+) ms", out)]
    return {
        "received": len(times),
        "sent": count,
        "median": statistics.median(times) if times else None,
    }


def form(**fields: Any) -> str:
    return "&".join(f"{k}={quote(json.dumps(v), safe='')}" for k, v in fields.items())


def main(out_path: str) -> int:
    results: dict[str, Any] = {"matrix": MATRIX, "names": NAMES, "pairs": {}, "errors": {}}
    t0 = time.monotonic()

    def save() -> None:
        Path(out_path).write_text(json.dumps(results, indent=1))

    for m in MODULES:
        subprocess.run(["modprobe", m], check=False, capture_output=True)
    from fastapi.testclient import TestClient

    from pydistem.agent.service import Agent
    from pydistem.coordinator.app import create_app
    from pydistem.coordinator.service import Coordinator
    from pydistem.state.store import Store
    from pydistem.testing import unique_tag

    def kernel_names() -> list[str]:
        links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return sorted(
            [line.split()[0].split("@")[0] for line in links.splitlines() if line.split()]
            + [f"netns:{line.split()[0]}" for line in netns.splitlines() if line.split()]
        )

    results["kernel_before"] = kernel_names()
    work = Path(tempfile.mkdtemp())
    agent = Agent(work / "agent", tag=unique_tag())
    c = Coordinator(Store(work / "c.sqlite"), connect=None, local_agent=agent)  # type: ignore[arg-type]
    try:
        c.vnetwork_create({"name": "pnet", "address": "10.252.0.0/24"})
        c.vnodes_create(
            [
                {"name": n, "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "pnet"}]}
                for n in NAMES
            ]
        )
        results["start"] = c.vnodes_start(NAMES)
        ips = {n: c.vnodes[n].vifaces[0].address for n in NAMES}
        results["ips"] = ips
        for src in NAMES:  # the bridge ports forward before measuring
            for dst in NAMES:
                if src != dst:
                    for _ in range(50):
                        if c.vnode_execute(src, f"ping -c1 -W1 {ips[dst]}").exit_code == 0:
                            break
                        time.sleep(0.2)
        results["base"] = {f"{s}>{d}": rtts(c, s, ips[d]) for s in NAMES for d in NAMES if s != d}
        save()
        app = create_app(c, "tok", distem_compat=True)
        with TestClient(app, client=("127.0.0.1", 50000)) as client:
            r = client.post(
                "/peers_matrix_latencies",
                content=form(vnodes=NAMES, matrix=MATRIX),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            results["route"] = {
                "status": r.status_code,
                "body": r.text,
                "error": r.headers.get("X-Application-Error-Code"),
            }
            save()
            for s in NAMES:
                for d in NAMES:
                    if s != d:
                        results["pairs"][f"{s}>{d}"] = rtts(c, s, ips[d])
            save()
            # a matrix of zeros lifts every per-destination latency
            r = client.post(
                "/peers_matrix_latencies",
                content=form(vnodes=NAMES, matrix=[[0] * 3] * 3),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            results["zero_route"] = r.status_code
            results["zeroed"] = {
                f"{s}>{d}": rtts(c, s, ips[d], 5) for s in NAMES for d in NAMES if s != d
            }
    except Exception:
        results["errors"]["run"] = traceback.format_exc()
    finally:
        try:
            c.quit()
            report = agent.clean()
            results["clean_failed"] = report.failed
            results["kernel_after"] = kernel_names()
            results["total_s"] = time.monotonic() - t0
        except Exception:
            results["errors"]["clean"] = traceback.format_exc()
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
