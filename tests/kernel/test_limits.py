"""CPU and memory limits on the real kernel, for the ``netns`` and ``lxc`` runtimes.

CPU: a busy loop runs in a vnode pinned to one core; its cgroup's CPU time over wall time
(median of 0.5 s windows, each 5 CFS periods long) must land within 5% of the frequency,
changed live 0.25 -> 0.5 -> 0.75. This VM's 2 cores are shared with other sessions: the
test gives the vnode's group the highest CPU weight so that their load does not decide
the share; what caps the loop is the CFS quota under test.
Memory: a vnode over its limit gets its process OOM-killed, inside the vnode only.
"""

from __future__ import annotations

import os
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.coordinator import limits
from pydistem.coordinator.service import Coordinator
from pydistem.errors import AlreadyExists, NotFound, ValidationError

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]
RUNTIMES = [
    "netns",
    pytest.param(
        "lxc",
        marks=[
            pytest.mark.lxc,
            pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs lxc"),
        ],
    ),
]


@pytest.fixture
def platform(coordinator: Coordinator, kernel_unchanged: object) -> Iterator[Coordinator]:
    yield coordinator
    coordinator.quit()  # before kernel_unchanged looks


def start(c: Coordinator, runtime: str, image: Path, **limits_: object) -> str:
    desc: dict[str, object] = {"name": "n1", "runtime": runtime, **limits_}
    if runtime == "lxc":
        desc["image"] = f"file://{image}"
    c.vnodes_create([desc])
    assert c.vnodes_start(["n1"]) == {"n1": None}
    return "n1"


def cgroup_file(c: Coordinator, name: str, file: str) -> Path:
    for d in limits.limits_info(c, name)["cgroups"]:
        if (Path(d) / file).exists():
            return Path(d) / file
    raise AssertionError(f"no {file} in {limits.limits_info(c, name)['cgroups']}")


def top_weight(c: Coordinator, name: str) -> None:
    """Other sessions' load must not decide the share (see the module docstring)."""
    try:
        cgroup_file(c, name, "cpu.shares").write_text("262144")
    except AssertionError:
        cgroup_file(c, name, "cpu.weight").write_text("10000")


def cpu_share(c: Coordinator, name: str, windows: int = 5, window_s: float = 0.5) -> float:
    """Median over ``windows`` of (CPU time of the vnode's cgroup) / (wall time)."""
    time.sleep(0.2)  # the new quota takes over at the next period
    shares = []
    for _ in range(windows):
        u0, t0 = limits.limits_info(c, name)["usage"]["cpu_ns"], time.monotonic_ns()
        time.sleep(window_s)
        u1, t1 = limits.limits_info(c, name)["usage"]["cpu_ns"], time.monotonic_ns()
        shares.append((u1 - u0) / (t1 - t0))
    return statistics.median(shares)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cpu_frequency_measured_by_a_busy_loop(platform: Coordinator, runtime: str, image: Path):
    c = platform
    name = start(c, runtime, image, cpu={"cores": 1, "frequency": 0.25})
    info = limits.limits_info(c, name)
    assert len(info["pcores"]) == 1 and info["pnode_cores"] >= 1
    assert cgroup_file(c, name, "cpuset.cpus").read_text().strip() == str(info["pcores"][0])
    top_weight(c, name)
    loop = c.vnode_execute(name, "sh -c 'while :; do :; done' >/dev/null 2>&1 & echo $!")
    assert loop.exit_code == 0 and loop.stdout.strip().isdigit(), loop
    measured = {}
    for fraction in (0.25, 0.5, 0.75):
        if fraction != 0.25:
            limits.vcpu_update(c, name, {"frequency": fraction})  # live, same process
        measured[fraction] = cpu_share(c, name)
    print(f"{runtime}: target -> measured CPU share {measured}")
    for fraction, got in measured.items():
        assert abs(got - fraction) <= 0.05 * fraction, measured

    # bad input changes nothing: the quota stays that of 0.75
    quota = cgroup_file(c, name, "cpu.cfs_quota_us")
    before = quota.read_text()
    with pytest.raises(ValidationError) as err:
        limits.vcpu_update(c, name, {"frequency": 1.5})
    assert err.value.field == "cpu.frequency"
    with pytest.raises(ValidationError) as err:
        limits.vcpu_update(c, name, {"cores": info["pnode_cores"] + 1})
    assert err.value.field == "cpu.cores" and "this pnode has" in err.value.reason
    with pytest.raises(AlreadyExists):
        limits.vcpu_create(c, name, {"cores": 1})
    assert quota.read_text() == before and c.vnodes[name].cpu.frequency == 0.75

    # lifted live: no quota, every core
    limits.vcpu_remove(c, name)
    assert quota.read_text().strip() == "-1"
    assert cgroup_file(c, name, "cpuset.cpus").read_text().strip() in (
        "0-1",
        "0-" + str(info["pnode_cores"] - 1),
    )
    with pytest.raises(NotFound):
        limits.vcpu_info(c, name)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_memory_limit_oom_kills_inside_the_vnode(
    platform: Coordinator, runtime: str, image: Path
) -> None:
    c = platform
    name = start(c, runtime, image, memory={"limit": "32MiB", "swap": 0})
    assert limits.limits_info(c, name)["usage"]["oom_kills"] == 0
    grab = "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo rc=$?"
    over = c.vnode_execute(name, grab)
    assert "rc=137" in over.stdout, over  # SIGKILL from the OOM killer
    assert limits.limits_info(c, name)["usage"]["oom_kills"] >= 1
    # the host is fine: this process, the agent and the vnode itself still run
    assert c.vnode_execute(name, "echo alive").stdout == "alive\n"
    small = c.vnode_execute(name, grab.replace("64M", "8M"))
    assert "rc=0" in small.stdout, small

    # raised live: the same allocation now fits
    limits.vmem_update(c, name, {"limit": "128MiB"})
    assert cgroup_file(c, name, "memory.limit_in_bytes").read_text().strip() == str(128 * 2**20)
    assert "rc=0" in c.vnode_execute(name, grab).stdout

    # bad input changes nothing
    with pytest.raises(ValidationError) as err:
        limits.vmem_update(c, name, {"limit": "12parsecs"})
    assert err.value.field == "memory.limit"
    assert c.vnodes[name].memory.limit == "128MiB"

    limits.vmem_remove(c, name)
    assert int(cgroup_file(c, name, "memory.limit_in_bytes").read_text()) > 2**60


def test_limits_survive_a_restart_and_cores_do_not_overlap(platform: Coordinator) -> None:
    c = platform
    with pytest.raises(ValidationError) as err:  # more cores than the pnode: nothing created
        c.vnodes_create([{"name": "x", "runtime": "netns", "cpu": {"cores": 999}}])
    assert err.value.field == "vnodes[0].cpu.cores" and "this pnode has" in err.value.reason
    assert "x" not in c.vnodes
    c.vnodes_create(
        [
            {"name": "a", "runtime": "netns", "cpu": {"cores": 1, "frequency": 0.5}},
            {"name": "b", "runtime": "netns", "cpu": {"cores": 1}, "memory": "64MiB"},
        ]
    )
    c.vnodes_start(["a", "b"])
    held = {n: limits.limits_info(c, n)["pcores"] for n in ("a", "b")}
    if limits.limits_info(c, "a")["pnode_cores"] >= 2:
        assert held["a"] != held["b"], held
    c.vnodes_stop(["a"])
    limits.vcpu_update(c, "a", {"frequency": 0.25})  # while down: applied at start
    c.vnodes_start(["a"])
    quota = cgroup_file(c, "a", "cpu.cfs_quota_us").read_text().strip()
    assert quota == "25000", quota
    assert limits.limits_info(c, "a")["pcores"] == held["a"]
