"""Runs INSIDE the virtme-ng guest (cgroup v2 there, v1 on the host): CPU and memory
limits of a ``netns`` vnode through the real agent, measured; results as JSON.

Usage (guest): python tests/vm/guest_limits.py OUT.json. The host side is
test_limits_in_vm.py; not collected by pytest (no test_ prefix).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from pydistem.agent.cgroups import is_v2
from pydistem.agent.service import Agent
from pydistem.model.limits import CpuLimit, MemoryLimit
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
        finally:
            report = agent.clean()
            agent.close()
            results["clean_failed"] = report.failed
            results["left"] = [p.name for p in Path("/sys/fs/cgroup").glob("pdvml-*")]
    Path(out_path).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
