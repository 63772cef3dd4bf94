"""Disk throttling and soft memory limits on the real kernel (cgroup v1 blkio here).

lxc: a vnode writes and reads a file of its rootfs with direct I/O (``dd oflag=direct``,
``iflag=direct``: the page cache would hide the disk); with a throttle on the disk holding
its rootfs (the default device) the measured rate must land within the tolerance of the
limit, and a live change must change it. The disk must be faster than the limits (an
unthrottled run first checks it). netns: a throttle on an explicit device (a loop device
the test creates and detaches) slows a direct read of that device.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.agent.cgroups import is_v2
from pydistem.agent.service import Agent
from pydistem.coordinator import limits
from pydistem.coordinator.service import Coordinator
from pydistem.errors import NotFound, ValidationError
from pydistem.plugins.limits import blockdev

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
]
MiB = 2**20
#: measured rate / limit must fall in this range (blk-throttle lets a first slice through)
LOW, HIGH = 0.75, 1.25


@pytest.fixture
def platform(coordinator: Coordinator, kernel_unchanged: object) -> Iterator[Coordinator]:
    yield coordinator
    coordinator.quit()


def cgroup_text(c: Coordinator, name: str, file: str) -> str:
    for d in limits.limits_info(c, name)["cgroups"]:
        if (Path(d) / file).exists():
            return (Path(d) / file).read_text()
    raise AssertionError(f"no {file} in {limits.limits_info(c, name)['cgroups']}")


def timed(c: Coordinator, name: str, command: str) -> float:
    t0 = time.monotonic()
    r = c.vnode_execute(name, command)
    elapsed = time.monotonic() - t0
    assert r.exit_code == 0, r.stderr
    return elapsed


def write_rate(c: Coordinator, name: str, mib: int) -> float:
    """MiB/s of a direct-I/O write of ``mib`` MiB to /big in the vnode's rootfs."""
    cmd = f"dd if=/dev/zero of=/big bs=256k count={mib * 4} oflag=direct 2>/dev/null"
    return mib / timed(c, name, cmd)


def read_rate(c: Coordinator, name: str, mib: int) -> float:
    cmd = f"dd if=/big of=/dev/null bs=256k count={mib * 4} iflag=direct 2>/dev/null"
    return mib / timed(c, name, cmd)


@pytest.mark.lxc
@pytest.mark.skipif(shutil.which("lxc-start") is None, reason="needs lxc")
@pytest.mark.skipif(is_v2(), reason="this test reads the v1 blkio files (v2: io.max)")
def test_rootfs_disk_throttled_live_lxc(platform: Coordinator, agent: Agent, image: Path) -> None:
    c = platform
    c.vnodes_create([{"name": "d1", "runtime": "lxc", "image": f"file://{image}"}])
    assert c.vnodes_start(["d1"]) == {"d1": None}
    dev = blockdev.resolve(None, agent._workdir("d1"), "disk")  # the rootfs's disk

    free_w, free_r = write_rate(c, "d1", 32), read_rate(c, "d1", 32)
    if min(free_w, free_r) < 4 * 8:
        pytest.skip(f"this disk is too slow to tell (write {free_w:.0f}, read {free_r:.0f} MiB/s)")

    # live, from no throttle: write 4 MiB/s, read 8 MiB/s on the rootfs's disk
    limits.vdisk_set(c, "d1", {"write": "4MiB", "read": "8MiB"})
    assert re.search(
        rf"^{dev} {4 * MiB}$", cgroup_text(c, "d1", "blkio.throttle.write_bps_device"), re.M
    )
    assert re.search(
        rf"^{dev} {8 * MiB}$", cgroup_text(c, "d1", "blkio.throttle.read_bps_device"), re.M
    )
    before = limits.limits_info(c, "d1")["usage"].get("disk_write_bytes", 0)
    w = write_rate(c, "d1", 12)
    assert LOW * 4 <= w <= HIGH * 4, (
        f"write {w:.2f} MiB/s under a 4 MiB/s limit (free: {free_w:.0f})"
    )
    r = read_rate(c, "d1", 12)
    assert LOW * 8 <= r <= HIGH * 8, (
        f"read {r:.2f} MiB/s under an 8 MiB/s limit (free: {free_r:.0f})"
    )
    assert limits.limits_info(c, "d1")["usage"]["disk_write_bytes"] - before >= 12 * MiB

    # live change: write 12 MiB/s, and iops only for reads
    limits.vdisk_set(c, "d1", {"write": "12MiB", "read_iops": 256})
    w = write_rate(c, "d1", 24)
    assert LOW * 12 <= w <= HIGH * 12, f"write {w:.2f} MiB/s under a 12 MiB/s limit"
    # 4 KiB reads (one I/O each) at 256/s
    ops = 768 / timed(c, "d1", "dd if=/big of=/dev/null bs=4k count=768 iflag=direct 2>/dev/null")
    assert LOW * 256 <= ops <= HIGH * 256, f"{ops:.0f} reads/s under a 256/s limit"

    # a stop/start keeps the throttle; removing it lifts every rule
    assert c.vnodes_stop(["d1"]) == {"d1": None}
    assert c.vnodes_start(["d1"]) == {"d1": None}
    assert re.search(rf"^{dev} 256$", cgroup_text(c, "d1", "blkio.throttle.read_iops_device"), re.M)
    limits.vdisk_remove(c, "d1")
    for f in ("read_bps", "write_bps", "read_iops", "write_iops"):
        assert cgroup_text(c, "d1", f"blkio.throttle.{f}_device").strip() == ""
    with pytest.raises(NotFound):
        limits.vdisk_info(c, "d1")
    assert write_rate(c, "d1", 32) > 2 * 12


@pytest.fixture
def loop_device(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "loop.img"
    with backing.open("wb") as f:
        f.write(os.urandom(MiB) * 32)
    dev = subprocess.run(
        ["losetup", "-f", "--show", "--direct-io=on", str(backing)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=True)


@pytest.mark.skipif(is_v2(), reason="this test reads the v1 blkio files (v2: io.max)")
def test_explicit_device_netns(platform: Coordinator, loop_device: str) -> None:
    c = platform
    st = os.stat(loop_device)
    rule = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    with pytest.raises(ValidationError) as err:
        c.vnodes_create(
            [{"name": "d2", "runtime": "netns", "disk": {"device": "/dev/null", "read": 1}}]
        )
    assert err.value.field == "vnodes[0].disk[0].device"
    assert "d2" not in c.vnodes
    c.vnodes_create(
        [{"name": "d2", "runtime": "netns", "disk": {"device": loop_device, "read": "4MiB"}}]
    )
    assert c.vnodes_start(["d2"]) == {"d2": None}
    assert cgroup_text(c, "d2", "blkio.throttle.read_bps_device").split() == [rule, str(4 * MiB)]
    cmd = f"dd if={loop_device} of=/dev/null bs=256k count=48 iflag=direct 2>/dev/null"
    r = 12 / timed(c, "d2", cmd)
    assert LOW * 4 <= r <= HIGH * 4, f"read {r:.2f} MiB/s of {loop_device} under a 4 MiB/s limit"
    c.vnodes_stop(["d2"])
    c.vnodes_remove(["d2"])


@pytest.mark.skipif(is_v2(), reason="this test reads the v1 memory files (v2: memory.low)")
def test_soft_memory_limit_netns(platform: Coordinator) -> None:
    c = platform
    c.vnodes_create([{"name": "m1", "runtime": "netns", "memory": {"soft": "64MiB"}}])
    assert c.vnodes_start(["m1"]) == {"m1": None}
    assert int(cgroup_text(c, "m1", "memory.soft_limit_in_bytes")) == 64 * MiB
    assert int(cgroup_text(c, "m1", "memory.limit_in_bytes")) > 2**60  # no hard limit
    limits.vmem_update(c, "m1", {"limit": "256MiB", "soft": "128MiB"})
    assert int(cgroup_text(c, "m1", "memory.soft_limit_in_bytes")) == 128 * MiB
    assert int(cgroup_text(c, "m1", "memory.limit_in_bytes")) == 256 * MiB
    limits.vmem_remove(c, "m1")
    assert int(cgroup_text(c, "m1", "memory.soft_limit_in_bytes")) > 2**60
