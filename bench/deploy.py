"""pydistem: deploy N vnodes on one vnetwork on this pnode, as a user would.

Starts its own ``distemd -d`` (coordinator with this machine's agent in-process:
the one-machine setup) with a private state dir, port and tag; deploys the platform
through ``pydistem.Client.platform_deploy`` (``POST /api/v1/platform``); waits until
every vnode answers an ICMP echo from the probe vnode (probe.py); reads the daemon's
peak RSS and the size of its state on disk; then ``quit`` and measures teardown.

    python bench/deploy.py N [--runtime netns|lxc] [--shaped]   (one BENCH-RESULT line)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    BANDWIDTH,
    NETWORK,
    Stopwatch,
    emit,
    probe_address,
    proc_status,
    vnode_addresses,
)
from probe import ping_all

BENCH_DIR = Path("/var/lib/pydistem/bench")
IMAGE = BENCH_DIR / "busybox.tar.gz"


def ensure_image() -> Path:
    """The busybox image the lxc runs use (built once, ~1 s)."""
    if not IMAGE.exists():
        from pydistem.images.build import build_busybox

        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        build_busybox(IMAGE)
    return IMAGE


def image_on_pnode(state_dir: Path) -> None:
    """Extract the image into the daemon's image cache before it starts, as a pnode that
    has run the image before has it: the deploy is then timed without the one-time
    extraction (~0.1-0.3 s here), which a Mininet host has no equivalent of. The agent
    journal records the folder, so that ``quit`` removes it as usual."""
    from pydistem.agent.journal import Journal
    from pydistem.images.cache import ImageCache

    agent_dir = state_dir / "agent"
    agent_dir.mkdir(parents=True, exist_ok=True)
    ImageCache(agent_dir).ensure(f"file://{ensure_image()}", Journal(agent_dir / "journal.jsonl"))


def platform(n: int, runtime: str, shaped: bool) -> dict[str, Any]:
    vif: dict[str, Any] = {"name": "if0", "vnetwork": "net"}
    if shaped:
        vif["input"] = {"bandwidth": BANDWIDTH}
        vif["output"] = {"bandwidth": BANDWIDTH}
    group: dict[str, Any] = {"name": f"n-[1-{n}]", "runtime": runtime, "vifaces": [vif]}
    if runtime == "lxc":
        group["vfilesystem"] = {"image": f"file://{ensure_image()}", "shared": True}
    probe = {
        "name": "probe",
        "runtime": "netns",
        "vifaces": [{"name": "if0", "vnetwork": "net", "address": probe_address()}],
    }
    return {"vnetworks": [{"name": "net", "address": str(NETWORK)}], "vnodes": [group, probe]}


def disk_usage(root: Path, skip: set[str]) -> int:
    """Bytes on disk under ``root`` (each inode once), skipping folders named in ``skip``."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in [*filenames, *dirnames]:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A private ``distemd -d``; stopped (and its agent cleaned) on exit."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.tag = "b" + secrets.token_hex(2)
        self.port = free_port()
        distemd = Path(sys.executable).with_name("distemd")
        argv = [str(distemd), "-d", "--port", str(self.port)]
        argv += ["--state-dir", str(state_dir), "--tag", self.tag]
        self.log = (state_dir / "distemd.log").open("w")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        from pydistem.client import Client

        deadline = time.monotonic() + 60
        while True:
            token_path = self.state_dir / "token"
            if token_path.exists() and token_path.read_text().strip():
                cl = Client(self.url, token=token_path.read_text().strip())
                if cl.health():
                    return cl
                cl.close()
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"distemd did not start: see {self.log.name}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        # whatever quit could not remove (a crash mid-run): the agent's own clean
        from pydistem.agent.service import Agent

        agent = Agent(self.state_dir / "agent", tag=self.tag)
        try:
            report = agent.clean()
            if report.failed:
                print(f"cleanup left: {report.failed}", file=sys.stderr)
        finally:
            agent.close()


def run(n: int, runtime: str, shaped: bool) -> dict[str, Any]:
    doc = platform(n, runtime, shaped)
    addresses = vnode_addresses(n)
    result: dict[str, Any] = {"tool": "pydistem", "runtime": runtime, "n": n, "shaped": shaped}
    with tempfile.TemporaryDirectory(prefix="pydistem-bench-") as tmp:
        if runtime == "lxc":
            image_on_pnode(Path(tmp))
        daemon = Daemon(Path(tmp))
        try:
            cl = daemon.client()
            base = proc_status(daemon.proc.pid)
            result["rss_base_kib"] = base.get("VmRSS", 0)
            try:
                with Stopwatch() as up:
                    out = cl.platform_deploy(doc)
                    failed = {v["name"]: v.get("error") for v in out["vnodes"] if v.get("error")}
                    if failed:
                        raise RuntimeError(
                            f"{len(failed)} vnodes failed: {list(failed.items())[:3]}"
                        )
                    deployed = time.monotonic()
                    netns = f"/run/netns/pd{daemon.tag}-probe"
                    result["probe"] = ping_all(netns, addresses)
                result["up_s"] = up.seconds
                result["deploy_call_s"] = deployed - up.start
                status = proc_status(daemon.proc.pid)
                result["rss_peak_kib"] = status.get("VmHWM", 0)
                result["state_bytes"] = disk_usage(Path(tmp), skip={"images"})
            finally:
                with Stopwatch() as down:
                    cl.quit()
                result["teardown_s"] = down.seconds
                result["rss_after_kib"] = proc_status(daemon.proc.pid).get("VmHWM", 0)
                cl.close()
        finally:
            daemon.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int)
    p.add_argument("--runtime", choices=("netns", "lxc"), default="netns")
    p.add_argument("--shaped", action="store_true")
    args = p.parse_args(argv)
    result = run(args.n, args.runtime, args.shaped)
    emit(result)
    return 0 if not result.get("probe", {}).get("missing") else 1


if __name__ == "__main__":
    sys.exit(main())
