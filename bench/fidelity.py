#!/usr/bin/env python3
"""How faithful is the emulation? Prints a Markdown table: target against measured.

    sudo .venv/bin/python bench/fidelity.py          # bandwidth and CPU, on this kernel
    sudo .venv/bin/python bench/fidelity.py --vm     # + latency, jitter, loss in a VM

Bandwidth: two ``netns`` vnodes on one vnetwork, the sender's ``output`` capped at 1, 10,
100 Mbit/s, one iperf3 TCP stream (as tests/kernel/test_shaper.py); the goodput is turned
into the rate on the wire (HTB counts whole frames: 1514 B per 1448 B of payload).
CPU: a busy loop in a ``netns`` vnode pinned to one core at frequency 0.25, 0.5, 0.75
(changed live); the share is the vnode cgroup's CPU time over wall time (median of 0.5 s
windows), as tests/kernel/test_limits.py. Latency/jitter/loss need ``sch_netem``, which
this host kernel lacks: ``--vm`` boots the virtme-ng VM of tests/vm (a full Debian kernel)
and runs tests/vm/guest_netem.py there. See docs/fidelity.md.

Runs as root; builds everything through a throwaway agent and removes it all at the end,
holding the kernel-test lock (tests/conftest.py) so that it never overlaps a test run.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from pydistem.agent.service import Agent
from pydistem.coordinator import limits
from pydistem.coordinator.service import Coordinator
from pydistem.state.store import Store

ROOT = Path(__file__).resolve().parents[1]
LOCK = Path("/run/lock/pydistem-kernel-tests.lock")
GOODPUT = 1448 / 1514
err = Console(stderr=True)


@dataclass
class Row:
    figure: str
    target: float
    measured: float | None
    unit: str
    how: str

    def error_pct(self) -> str:
        if self.measured is None or not self.target:
            return "—"
        return f"{100 * (self.measured - self.target) / self.target:+.1f}%"


@contextlib.contextmanager
def platform(workdir: Path) -> Iterator[Coordinator]:
    """A coordinator with this machine's agent (unique tag), everything removed after."""
    agent = Agent(workdir / "agent", tag="f" + secrets.token_hex(2))
    store = Store(workdir / "c.sqlite")
    c = Coordinator(store, connect=lambda p: None, local_agent=agent)  # type: ignore[arg-type,return-value]
    try:
        yield c
    finally:
        try:
            c.quit()
        finally:
            c.close()
            store.close()
            report = agent.clean()
            agent.close()
            if report.failed:
                err.print(f"[red]cleanup failed: {report.failed}")


def bandwidth(c: Coordinator, rates_mbit: list[float]) -> list[Row]:
    c.vnetwork_create({"name": "fid", "address": "10.251.16.0/24"})
    iface = [{"name": "if0", "vnetwork": "fid"}]
    c.vnodes_create(
        [
            {"name": "src", "runtime": "netns", "vifaces": iface},
            {"name": "dst", "runtime": "netns", "vifaces": iface},
        ]
    )
    c.vnodes_start(["src", "dst"])
    dst = c.vnodes["dst"].vifaces[0].address
    c.vnode_execute("dst", "iperf3 -s -D >/dev/null 2>&1")
    time.sleep(0.5)
    rows = []
    for mbit in rates_mbit:
        c.viface_traffic("src", "if0", None, {"bandwidth": f"{mbit:g}mbit"})
        seconds = 8 if mbit < 5 else 3  # a slow link needs longer to settle
        runs = []
        for _ in range(2):
            r = c.vnode_execute("src", f"iperf3 -c {dst} -t {seconds} -O 1 -J", timeout=60)
            runs.append(json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"])
        wire = statistics.median(runs) / GOODPUT / 1e6
        rows.append(Row(f"bandwidth {mbit:g} Mbit/s", mbit, wire, "Mbit/s", "iperf3 TCP, HTB"))
        err.log(f"bandwidth {mbit:g} Mbit/s: {wire:.3f}")
    return rows


def cpu(c: Coordinator, fractions: list[float], windows: int = 5) -> list[Row]:
    c.vnodes_create([{"name": "busy", "runtime": "netns", "cpu": {"cores": 1, "frequency": 1}}])
    c.vnodes_start(["busy"])
    for d in limits.limits_info(c, "busy")["cgroups"]:
        # the machine may be busy with other work: let the cap, not the contention, decide
        for name, value in (("cpu.shares", "262144"), ("cpu.weight", "10000")):
            if (Path(d) / name).exists():
                (Path(d) / name).write_text(value)
    c.vnode_execute("busy", "sh -c 'while :; do :; done' >/dev/null 2>&1 &")
    rows = []
    for f in fractions:
        limits.vcpu_update(c, "busy", {"frequency": f})
        time.sleep(0.2)
        shares = []
        for _ in range(windows):
            u0, t0 = limits.limits_info(c, "busy")["usage"]["cpu_ns"], time.monotonic_ns()
            time.sleep(0.5)
            u1, t1 = limits.limits_info(c, "busy")["usage"]["cpu_ns"], time.monotonic_ns()
            shares.append((u1 - u0) / (t1 - t0))
        got = statistics.median(shares)
        rows.append(Row(f"CPU frequency {f:g}", f, got, "of a core", "busy loop, CFS quota"))
        err.log(f"cpu {f:g}: {got:.4f}")
    return rows


def vm_rows() -> list[Row]:
    """Boot the virtme-ng VM of tests/vm, run guest_netem.py, read its figures."""
    vng = Path(sys.executable).with_name("vng")
    kernels = sorted(glob.glob("/boot/vmlinuz-*-amd64"), key=os.path.getmtime)
    if not vng.exists() or not kernels:
        err.print(
            "[yellow]--vm: virtme-ng or a Debian kernel missing: run tests/vm/setup_vm_tools.sh"
        )
        return []
    with tempfile.TemporaryDirectory(prefix="fidelity-vm-") as out:
        results = Path(out) / "results.json"
        cmd = f"cd {ROOT} && {sys.executable} tests/vm/guest_netem.py {results}"
        argv = [str(vng), "--run", kernels[-1], "--disable-kvm", "--disable-microvm",
                "--user", "root", "--cpus", "2", "--memory", "1G", "--rwdir", out,
                "--exec", cmd]  # fmt: skip
        env = {**os.environ, "PATH": f"{vng.parent}:{os.environ['PATH']}"}
        with err.status("booting the VM (a few minutes without KVM)"):
            subprocess.run(argv, cwd=out, env=env, capture_output=True, timeout=600, check=False)
        if not results.exists():
            err.print("[red]--vm: the guest wrote no results")
            return []
        data = json.loads(results.read_text())
    cases, base = data.get("cases", {}), data.get("base", {}).get("median") or 0.0
    rows = []
    for ms in (10, 50, 100):
        got = cases.get(f"output_{ms}ms")
        measured = got["median"] - base if got else None
        rows.append(Row(f"latency {ms} ms (one way)", ms, measured, "ms", "ping RTT - base, netem"))
    jit = cases.get("output_50ms_jitter_10ms")
    rows.append(Row("jitter ±10 ms uniform (stdev)", 10 / 3**0.5,
                    jit["stdev"] if jit else None, "ms", "ping RTT stdev, netem"))  # fmt: skip
    loss = cases.get("output_loss_10pct")
    rows.append(Row("loss 10%", 10, loss["loss_pct"] if loss else None, "%",
                    f"{loss['sent'] if loss else 0} pings, netem"))  # fmt: skip
    return rows


def table(rows: list[Row]) -> str:
    lines = [
        "| figure | target | measured | error | unit | method |",
        "|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        measured = "—" if r.measured is None else f"{r.measured:.3f}"
        lines.append(
            f"| {r.figure} | {r.target:.3f} | {measured} | {r.error_pct()} | {r.unit} | {r.how} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vm", action="store_true", help="also latency/jitter/loss in a VM")
    parser.add_argument("--no-bandwidth", action="store_true")
    parser.add_argument("--no-cpu", action="store_true")
    parser.add_argument("--json", action="store_true", help="JSON rows instead of Markdown")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        err.print("[red]bench/fidelity.py needs root (netns, tc, cgroups)")
        return 2
    rows: list[Row] = []
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("a") as lock, tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        with err.status("waiting for the kernel-test lock"):
            fcntl.flock(lock, fcntl.LOCK_EX)
        with platform(Path(tmp)) as c:
            if not args.no_bandwidth:
                rows += bandwidth(c, [1, 10, 100])
            if not args.no_cpu:
                rows += cpu(c, [0.25, 0.5, 0.75])
        fcntl.flock(lock, fcntl.LOCK_UN)
    if args.vm:
        rows += vm_rows()
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=1))
    else:
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
