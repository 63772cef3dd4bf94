"""pydistem across pnodes: H test hosts x P netns vnodes on one VXLAN vnetwork.

The hosts are network namespaces on one LAN, each with its own ``distemd`` agent
(tests/hostbed.py, the bed the multi-host kernel tests use). The coordinator
(``distemd -d``) runs on a host of its own that gets no vnode, so that its RSS is the
coordinator's alone (its in-process agent stays idle); the platform is one VXLAN
vnetwork with P vnodes placed on each agent host, plus the probe vnode on the first.
Up time runs from ``Client.platform_deploy`` to the last echo reply (probe.py), as
in deploy.py; every host runs on this machine's CPUs, so more hosts add work, not CPU.

    python bench/multihost.py H [--per-host 128]     (one BENCH-RESULT line)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/hostbed.py
from common import NETWORK, Stopwatch, emit, probe_address, proc_status, raised_sysctls
from deploy import disk_usage
from probe import ping_all

BIN = Path(sys.executable).parent
AGENT_PORT = 4568
COORDINATOR_PORT = 4567


def platform(addresses: list[str], per_host: int) -> dict[str, Any]:
    """One VXLAN vnetwork; ``per_host`` vnodes pinned to each agent host; the probe on
    the first."""
    vif = {"name": "if0", "vnetwork": "net"}
    groups: list[dict[str, Any]] = [
        {"name": f"h{i + 1}-[1-{per_host}]", "runtime": "netns", "host": a, "vifaces": [vif]}
        for i, a in enumerate(addresses)
    ]
    probe = {
        "name": "probe",
        "runtime": "netns",
        "host": addresses[0],
        "vifaces": [{"name": "if0", "vnetwork": "net", "address": probe_address()}],
    }
    vnet = {"name": "net", "address": str(NETWORK), "network_type": "vxlan"}
    return {"vnetworks": [vnet], "vnodes": [*groups, probe]}


class Cluster:
    """``distemd -d`` on host 0 and a ``distemd`` agent on every other host of ``bed``."""

    def __init__(self, bed: Any, workdir: Path) -> None:
        self.bed = bed
        self.workdir = workdir
        self.token = secrets.token_urlsafe(24)
        (workdir / "token").write_text(self.token + "\n")
        self.tags = [f"m{secrets.token_hex(2)}{i}"[:6] for i in range(len(bed.hosts))]
        self.states = [workdir / f"state{i}" for i in range(len(bed.hosts))]
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for i, host in enumerate(self.bed.hosts):
            log = (self.workdir / f"distemd{i}.log").open("ab")
            cmd = [
                "nsenter", f"--net=/run/netns/{host.netns}", str(BIN / "distemd"),
                "--bind", host.address, "--state-dir", str(self.states[i]),
                "--token-file", str(self.workdir / "token"), "--tag", self.tags[i],
            ]  # fmt: skip
            if i == 0:
                cmd.append("-d")
            # nsenter without --pid execs: the Popen's pid is distemd's
            self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=log))
            log.close()
        for i, host in enumerate(self.bed.hosts):
            path = "/api/v1/health" if i == 0 else "/api/v1/agent/health"
            port = COORDINATOR_PORT if i == 0 else AGENT_PORT
            self._wait(i, f"http://{host.address}:{port}{path}")

    def _wait(self, i: int, url: str) -> None:
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.procs[i].poll() is not None:
                raise RuntimeError(f"distemd on host {i} exited: see {self.workdir}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1).status_code in (200, 401):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{url} did not answer within 60 s")

    def rss(self) -> list[dict[str, int]]:
        return [proc_status(p.pid) for p in self.procs]

    def stop(self) -> list[str]:
        """SIGTERM every daemon; then each host's own journal removes what is left."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        left = []
        for i, host in enumerate(self.bed.hosts):
            if not (self.states[i] / "agent" / "journal.jsonl").exists():
                continue
            env = {**os.environ, "PYDISTEM_STATE_DIR": str(self.states[i])}
            r = subprocess.run(
                ["nsenter", f"--net=/run/netns/{host.netns}", str(BIN / "distem"),
                 "--coordinator", "127.0.0.1:1", "clean"],
                env=env, capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if r.returncode:
                left.append(f"host {i}: {r.stdout.strip()} {r.stderr.strip()}")
        return left


def run(hosts: int, per_host: int) -> dict[str, Any]:
    from pydistem.client import Client
    from tests.hostbed import HostBed

    n = hosts * per_host
    result: dict[str, Any] = {
        "tool": "multihost",
        "runtime": "netns-vxlan",
        "n": n,
        "hosts": hosts,
        "per_host": per_host,
        "shaped": False,
    }
    with (
        raised_sysctls(n + 1),
        tempfile.TemporaryDirectory(prefix="pydistem-mhbench-") as tmp,
        HostBed(hosts + 1, f"m{secrets.token_hex(2)}", sshd=False) as bed,
    ):
        cluster = Cluster(bed, Path(tmp))
        try:
            with bed.operator():
                cluster.start()
                agents = [h.address for h in bed.hosts[1:]]
                coordinator = f"http://{bed.hosts[0].address}:{COORDINATOR_PORT}"
                base = cluster.rss()
                with Client(coordinator, token=cluster.token) as cl:
                    with Stopwatch() as init:
                        cl.pnode_init(agents)
                    result["pnode_init_s"] = init.seconds
                    try:
                        with Stopwatch() as up:
                            out = cl.platform_deploy(platform(agents, per_host))
                            failed = {
                                v["name"]: v.get("error") for v in out["vnodes"] if v.get("error")
                            }
                            if failed:
                                raise RuntimeError(
                                    f"{len(failed)} vnodes failed: {list(failed.items())[:3]}"
                                )
                            deployed = time.monotonic()
                            addresses = [
                                i["address"]
                                for v in out["vnodes"]
                                if v["name"] != "probe"
                                for i in v["vifaces"]
                            ]
                            probe_ns = f"/run/netns/pd{cluster.tags[1]}-probe"
                            result["probe"] = ping_all(probe_ns, addresses)
                        result["up_s"] = up.seconds
                        result["deploy_call_s"] = deployed - up.start
                        peak = cluster.rss()
                        result["coordinator_rss_base_kib"] = base[0].get("VmRSS", 0)
                        result["coordinator_rss_peak_kib"] = peak[0].get("VmHWM", 0)
                        result["agent_rss_base_kib"] = [b.get("VmRSS", 0) for b in base[1:]]
                        result["agent_rss_peak_kib"] = [p.get("VmHWM", 0) for p in peak[1:]]
                        result["state_bytes"] = disk_usage(Path(tmp), skip={"images"})
                    finally:
                        with Stopwatch() as down:
                            cl.quit()
                        result["teardown_s"] = down.seconds
        finally:
            left = cluster.stop()
            if left:
                print(f"cleanup left: {left}", file=sys.stderr)
                result["cleanup_left"] = left
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("hosts", type=int, help="agent hosts (the coordinator gets one more)")
    p.add_argument("--per-host", type=int, default=128, help="netns vnodes per host (128)")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/multihost.py: run as root", file=sys.stderr)
        return 2
    result = run(args.hosts, args.per_host)
    emit(result)
    return 0 if not result.get("probe", {}).get("missing") else 1


if __name__ == "__main__":
    sys.exit(main())
