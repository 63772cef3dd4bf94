"""Disk throttling and soft memory limits as data: the model, the cgroup plan (v1 and
v2), the device resolution against a sysfs tree, and Distem's disk_throttling and
soft_limit shapes. The kernel side is tests/kernel/test_disk_limits.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.coordinator.compat import vresources
from pydistem.errors import ValidationError
from pydistem.model.limits import DiskThrottle, MemoryLimit, parse_disk
from pydistem.model.specs import VNode
from pydistem.model.units import parse_disk_rate
from pydistem.model.validate import parse
from pydistem.plugins.limits.blockdev import resolve, whole_disk
from pydistem.plugins.limits.plan import (
    DiskRule,
    Write,
    parse_disk_rules,
    plan_disk,
    plan_memory,
)


# ---------------------------------------------------------------------------- model
def test_disk_rates_and_shorthands() -> None:
    assert parse_disk_rate("read", "10MiB/s") == 10 * 2**20
    assert parse_disk_rate("read", "512k") == 512 * 1024
    assert parse_disk_rate("read", 1048576) == 1048576  # a bare number is bytes
    with pytest.raises(ValidationError, match="read"):
        parse_disk_rate("read", "0")
    with pytest.raises(ValidationError, match="unknown unit"):
        parse_disk_rate("read", "10mbit")
    v = parse(VNode, {"name": "a", "disk": {"read": "10MiB", "write_iops": "50"}})
    assert v.disk == [DiskThrottle(read="10MiB", write_iops=50)]
    assert parse(VNode, {"name": "a", "disk": []}).disk is None


@pytest.mark.parametrize(
    ("disk", "field"),
    [
        ({"read": "fast"}, "vnodes[0].disk[0].read"),
        ({"device": "sda", "read": 1}, "vnodes[0].disk[0].device"),
        ({"device": "/dev/sda"}, "vnodes[0].disk[0].read"),  # no limit at all
        ({"read_iops": 0}, "vnodes[0].disk[0].read_iops"),
        ([{"read": 1}, {"write": 1}], "vnodes[0].disk"),  # the rootfs disk twice
    ],
)
def test_bad_disk_names_the_field(disk: object, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "a", "disk": disk}, "vnodes[0]")
    assert err.value.field == field


def test_soft_memory() -> None:
    assert MemoryLimit(soft="128MiB").limit is None
    assert MemoryLimit(limit="1g", soft="256m").soft_bytes() == 256 * 2**20
    with pytest.raises(ValidationError, match="above the memory limit"):
        parse(MemoryLimit, {"limit": "64MiB", "soft": "128MiB"})
    with pytest.raises(ValidationError, match="swap limit needs a memory limit"):
        parse(MemoryLimit, {"soft": "64MiB", "swap": 0})
    with pytest.raises(ValidationError, match="give a limit"):
        parse(MemoryLimit, {})


# ---------------------------------------------------------------------------- plan
def test_plan_soft_memory() -> None:
    v1 = plan_memory(MemoryLimit(soft="64MiB"), v2=False)
    assert v1[-1] == Write("memory.soft_limit_in_bytes", str(64 * 2**20))
    assert Write("memory.limit_in_bytes", "-1") in v1  # no hard limit
    assert plan_memory(MemoryLimit(limit="1g", soft="64MiB"), v2=True) == [
        Write("memory.max", str(2**30)),
        Write("memory.swap.max", "max", optional=True),
        Write("memory.low", str(64 * 2**20)),
    ]


def test_plan_disk_v1_sets_and_lifts() -> None:
    rules = [DiskRule("254:0", read_bps=1000, write_iops=20)]
    writes = plan_disk(rules, current=["7:3", "254:0", "7:3"], v2=False)
    assert writes == [
        Write("blkio.throttle.read_bps_device", "7:3 0"),
        Write("blkio.throttle.read_bps_device", "254:0 1000"),
        Write("blkio.throttle.write_bps_device", "7:3 0"),
        Write("blkio.throttle.write_bps_device", "254:0 0"),
        Write("blkio.throttle.read_iops_device", "7:3 0"),
        Write("blkio.throttle.read_iops_device", "254:0 0"),
        Write("blkio.throttle.write_iops_device", "7:3 0"),
        Write("blkio.throttle.write_iops_device", "254:0 20"),
    ]
    assert plan_disk([], [], v2=False) == []


def test_plan_disk_v2() -> None:
    writes = plan_disk([DiskRule("8:0", write_bps=5)], current=["8:16"], v2=True)
    assert writes == [
        Write("io.max", "8:16 rbps=max wbps=max riops=max wiops=max"),
        Write("io.max", "8:0 rbps=max wbps=5 riops=max wiops=max"),
    ]


def test_parse_disk_rules() -> None:
    assert parse_disk_rules("254:0 1048576\n7:1 10\n", v2=False) == ["254:0", "7:1"]
    v2 = "8:0 rbps=10 wbps=max riops=max wiops=max\n8:16 rbps=max wbps=max riops=max wiops=max\n"
    assert parse_disk_rules(v2, v2=True) == ["8:0"]


# ---------------------------------------------------------------------------- devices
def test_partition_resolves_to_its_disk(tmp_path: Path) -> None:
    sysfs = tmp_path / "dev" / "block"
    disk = tmp_path / "devices" / "sda"
    part = disk / "sda1"
    part.mkdir(parents=True)
    (disk / "dev").write_text("8:0\n")
    (part / "dev").write_text("8:1\n")
    (part / "partition").write_text("1\n")
    sysfs.mkdir(parents=True)
    (sysfs / "8:1").symlink_to(part)
    (sysfs / "8:0").symlink_to(disk)
    assert whole_disk(8, 1, sysfs) == "8:0"
    assert whole_disk(8, 0, sysfs) == "8:0"


def test_resolve_refuses_what_is_no_block_device(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a block device") as err:
        resolve("/dev/null", tmp_path, "disk[0].device")
    assert err.value.field == "disk[0].device"
    with pytest.raises(ValidationError, match="No such file"):
        resolve("/dev/pd-no-such-disk", tmp_path, "disk[0].device")
    with pytest.raises(ValidationError, match="no block device"):
        resolve(None, tmp_path, "disk[0].device", sysfs=tmp_path / "empty")


# ---------------------------------------------------------------------------- Distem
def test_distem_disk_throttling_both_shapes() -> None:
    new = {"hierarchy": "v1", "limits": [{"device": "/dev/sda", "read_limit": "1048576"}]}
    assert vresources.disk_from_desc(new, "fs") == [{"device": "/dev/sda", "read": "1048576"}]
    old = {"device": "/dev/sdb", "read_limit": 10, "write_limit": 20}  # Distem 1.3, flat
    assert vresources.disk_from_desc(old, "fs") == [{"device": "/dev/sdb", "read": 10, "write": 20}]
    assert vresources.disk_from_desc({"hierarchy": "v1", "limits": []}, "fs") is None
    assert vresources.disk_from_desc(None, "fs") is None
    disk = parse_disk(vresources.disk_from_desc(new, "fs"))
    assert vresources.disk_throttling(disk) == {
        "hierarchy": None,
        "limits": [{"device": "/dev/sda", "read_limit": "1048576", "write_limit": ""}],
    }
    with pytest.raises(ValidationError) as err:
        vresources.disk_from_desc({"limits": "x"}, "fs")
    assert err.value.field == "fs.limits"


def test_distem_soft_limit() -> None:
    assert vresources.memory_from_desc({"mem": 512, "soft_limit": "256"}) == {
        "soft": "256",
        "limit": "512",
    }
    assert vresources.memory_from_desc({"soft_limit": 128}) == {"soft": "128"}
    shape = vresources.vmem(MemoryLimit(limit="512", soft="256"))
    assert shape is not None and shape["soft_limit"] == "256" and shape["mem"] == "512"


# ---------------------------------------------------------------------------- events
def test_disk_events() -> None:
    from pydistem.events import distem
    from pydistem.events.model import Event

    ev = parse(Event, {"at": 1, "action": "disk", "vnode": "n1", "disk": {"write": "1MiB"}})
    assert ev.disk == [DiskThrottle(write="1MiB")] and ev.describe() == "write=1MiB"
    assert parse(Event, {"at": 1, "action": "disk", "vnode": "n1", "disk": "none"}).disk == []
    with pytest.raises(ValidationError, match="disk"):
        parse(Event, {"at": 1, "action": "disk", "vnode": "n1"})
    with pytest.raises(ValidationError, match="read"):
        parse(Event, {"at": 1, "action": "disk", "vnode": "n1", "disk": {"read": "fast"}})
    vnode = {"type": "vnode", "vnodename": "n1"}
    evs = distem.trace_events(vnode, "disk_throttling", {"2": 1048576, "5": "unlimited"})
    assert [(e.at, e.action, e.disk) for e in evs] == [
        (2.0, "disk", [DiskThrottle(read="1048576", write="1048576")]),
        (5.0, "disk", []),
    ]
    obj = {"limits": [{"device": "/dev/vda", "write_limit": "2048"}]}
    (ev,) = distem.trace_events(vnode, "disk_throttling", {"1": obj})
    assert ev.disk == [DiskThrottle(device="/dev/vda", write="2048")]
    with pytest.raises(ValidationError, match=r"resource\.type"):
        distem.trace_events({"type": "vcpu", "vnodename": "n1"}, "disk_throttling", {"1": 1})
