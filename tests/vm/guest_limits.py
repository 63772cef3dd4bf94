"""Runs INSIDE the virtme-ng guest (cgroup v2 there, v1 on the host): CPU, memory and
disk limits of a ``netns`` vnode through the real agent, measured; results as JSON.

Usage (guest): python tests/vm/guest_limits.py OUT.json. The host side is
test_limits_in_vm.py; not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from pydistem.agent.cgroups import is_v2
from pydistem.agent.service import Agent
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit
from pydistem.model.specs import VNode


def share(agent: Agent, name: str, windows: int = 5) -> float:
    time.sleep(0.2)
    out = []
    for _ in range(windows):
        u0, t0 = agent.vnode_limits_info(name)["usage"]["cpu_ns"], time.monotonic_ns()
        time.sleep(0.5)
        u1, t1 = agent.vnode_limits_info(name)["usage"]["cpu_ns"], time.monotonic_ns()
        out.append((u1 - u0) / (t1 - t0))
    return statistics.median(out)


def disk_case(agent: Agent, tmp: Path) -> dict[str, Any]:
    """io.max on a loop device and memory.low, live, on the running vnode n1; a direct
    read of the device under a 2 MiB/s throttle is timed."""
    backing = tmp / "loop.img"
    backing.write_bytes(os.urandom(2**20) * 16)
    subprocess.run(["modprobe", "loop"], check=False, capture_output=True)
    made = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                          text=True)  # fmt: skip
    out: dict[str, Any] = {"losetup": made.stderr.strip()}
    if made.returncode == 0:
        dev = made.stdout.strip()
        detach = ["losetup", "-d", dev]
    else:  # no loop devices in this kernel: null_blk, a memory-backed test disk
        subprocess.run(["modprobe", "null_blk", "nr_devices=1"], check=True, capture_output=True)
        dev, detach = "/dev/nullb0", ["rmmod", "null_blk"]
    out["device"] = dev
    try:
        st = os.stat(dev)
        out["rule"] = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
        throttle = DiskThrottle(device=dev, read="2MiB", write_iops=50)
        agent.vnode_limits("n1", None, MemoryLimit(soft="16MiB"), [throttle])
        group = Path(agent.vnode_limits_info("n1")["cgroups"][0])
        out["io_max"] = (group / "io.max").read_text().strip()
        out["memory_low"] = (group / "memory.low").read_text().strip()
        t0 = time.monotonic()
        r = agent.vnode_execute("n1", f"dd if={dev} of=/dev/null bs=256k count=16 iflag=direct")
        out["read_rate"] = 4 / (time.monotonic() - t0)
        out["dd_rc"] = r.exit_code
        agent.vnode_limits("n1", None, None, None)
        out["io_max_lifted"] = (group / "io.max").read_text().strip()
        out["memory_low_lifted"] = (group / "memory.low").read_text().strip()
    finally:
        subprocess.run(detach, check=False)
    return out


def main(out_path: str) -> int:
    results: dict[str, Any] = {"v2": is_v2(), "cpu": {}, "errors": []}
    with tempfile.TemporaryDirectory() as tmp:
        agent = Agent(Path(tmp) / "agent", tag="vml")
        try:
            spec = {"name": "n1", "runtime": "netns", "cpu": {"cores": 1, "frequency": 0.25}}
            spec["memory"] = {"limit": "32MiB", "swap": "0"}
            results["start"] = agent.vnodes_start([VNode.model_validate(spec)])
            info = agent.vnode_limits_info("n1")
            results["pcores"], results["cgroups"] = info["pcores"], info["cgroups"]
            files = {}
            for f in ("cpuset.cpus", "cpu.max", "memory.max", "memory.swap.max"):
                files[f] = (Path(info["cgroups"][0]) / f).read_text().strip()
            results["files"] = files
            loop = "sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!"
            pid = agent.vnode_execute("n1", loop).stdout.strip()
            for f in (0.25, 0.5, 0.75):
                agent.vnode_limits("n1", CpuLimit(cores=1, frequency=f), agent._get("n1").memory)
                results["cpu"][str(f)] = share(agent, "n1")
            agent.vnode_execute("n1", f"kill -9 {int(pid)}")
            grab = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?"
            results["oom"] = agent.vnode_execute("n1", grab).stdout.strip()
            results["oom_kills"] = agent.vnode_limits_info("n1")["usage"].get("oom_kills")
            agent.vnode_limits("n1", None, MemoryLimit(limit="128MiB"))
            results["after_raise"] = agent.vnode_execute("n1", grab).stdout.strip()
            results["lifted"] = (Path(info["cgroups"][0]) / "cpu.max").read_text().strip()
        except Exception:  # report everything to the host
            results["errors"].append(traceback.format_exc())
        try:
            results["disk"] = disk_case(agent, Path(tmp))
        except Exception:
            results["errors"].append(traceback.format_exc())
        finally:
            report = agent.clean()
            agent.close()
            results["clean_failed"] = report.failed
            results["left"] = [p.name for p in Path("/sys/fs/cgroup").glob("pdvml-*")]
    Path(out_path).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
