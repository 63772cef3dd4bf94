"""CPU and memory limits as data: the model, the units, core picking, the cgroup plan
(v1 and v2), Distem's vcpu/vmem shapes, and the limiter writing into a cgroup tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydistem.coordinator.compat import vresources
from pydistem.errors import Unsupported, ValidationError
from pydistem.model.limits import CpuLimit, MemoryLimit
from pydistem.model.specs import VNode
from pydistem.model.units import parse_memory, parse_mhz
from pydistem.model.validate import parse
from pydistem.plugins.limits.cgroup import CgroupLimiter
from pydistem.plugins.limits.cores import pick_cores
from pydistem.plugins.limits.host import HostCpu, format_cpu_list, parse_cpu_list, read_mhz
from pydistem.plugins.limits.plan import PERIOD_US, Write, plan_limits, quota_us

HOST = HostCpu((0, 1, 2, 3), 2000.0)


# ---------------------------------------------------------------------------- units, model
@pytest.mark.parametrize(
    ("text", "size"),
    [("512MiB", 512 * 2**20), ("1g", 2**30), ("2GB", 2 * 2**30), ("768m", 768 * 2**20),
     ("512", 512 * 2**20), (256, 256 * 2**20), ("64k", 65536), ("1.5GiB", 3 * 2**29)],
)  # fmt: skip
def test_memory_units(text, size):
    assert parse_memory("limit", text) == size


@pytest.mark.parametrize(
    ("text", "reason"),
    [("-1g", "negative"), ("12parsecs", "unknown unit"), ("0", "greater than zero"),
     (True, "not a memory size"), ("lots", "not a memory size")],
)  # fmt: skip
def test_bad_memory_is_refused_naming_the_field(text, reason):
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "n", "memory": {"limit": text}})
    assert err.value.field == "memory.limit" and reason in err.value.reason


def test_mhz_units():
    assert parse_mhz("f", "1200MHz") == 1200 and parse_mhz("f", "1.2GHz") == 1200


@pytest.mark.parametrize(
    ("given", "kept"),
    [(0.5, 0.5), ("0.25", 0.25), ("75%", 0.75), (1, 1.0), ("1200mhz", "1200MHz"),
     ("1.5GHz", "1500MHz")],
)  # fmt: skip
def test_frequency_forms(given, kept):
    assert CpuLimit(cores=1, frequency=given).frequency == kept


@pytest.mark.parametrize(
    ("cpu", "field", "reason"),
    [({"frequency": 0}, "cpu.frequency", "(0, 1]"),
     ({"frequency": 1.5}, "cpu.frequency", "(0, 1]"),
     ({"frequency": -0.5}, "cpu.frequency", "(0, 1]"),
     ({"frequency": "fast"}, "cpu.frequency", "1200MHz"),
     ({"frequency": "0MHz"}, "cpu.frequency", "greater than zero"),
     ({"cores": 0}, "cpu.cores", "at least 1"),
     ({"cores": 1.5}, "cpu.cores", "whole number"),
     ({"cores": 1, "pcores": [0, 1]}, "cpu.pcores", "2 cores"),
     ({"bogus": 1}, "cpu.bogus", "unknown key")],
)  # fmt: skip
def test_bad_cpu_is_refused_naming_the_field(cpu, field, reason):
    with pytest.raises(ValidationError) as err:
        parse(VNode, {"name": "n", "cpu": cpu}, "")
    assert err.value.field == field and reason in err.value.reason


def test_memory_shorthand_and_swap():
    v = parse(VNode, {"name": "n", "memory": "1g", "cpu": {"cores": "2", "frequency": 0.5}})
    assert v.memory == MemoryLimit(limit="1g") and v.memory.swap_bytes() is None
    assert v.cpu is not None and v.cpu.cores == 2
    assert MemoryLimit(limit="512MiB", swap=0).swap_bytes() == 0
    with pytest.raises(ValidationError, match="at least 4MiB"):
        parse(MemoryLimit, {"limit": "1k"})


def test_fraction_of_an_absolute_frequency():
    assert CpuLimit(frequency="500MHz").fraction(2000) == 0.25
    assert CpuLimit(frequency=0.3).fraction(2000) == 0.3


# ---------------------------------------------------------------------------- host, cores
def test_cpu_lists():
    assert parse_cpu_list("0-3,6\n") == [0, 1, 2, 3, 6]
    assert format_cpu_list([5, 0, 1, 2]) == "0-2,5"
    assert format_cpu_list([3]) == "3"


def test_mhz_from_cpuinfo_when_no_cpufreq(tmp_path: Path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\ncpu MHz\t\t: 2596.144\nprocessor : 1\ncpu MHz : 2400\n")
    assert read_mhz(tmp_path / "sys", str(info)) == 2596.144
    freq = tmp_path / "sys" / "cpu0" / "cpufreq"
    freq.mkdir(parents=True)
    (freq / "cpuinfo_max_freq").write_text("3200000\n")
    assert read_mhz(tmp_path / "sys", str(info)) == 3200.0


def test_cores_are_picked_without_overlap_while_free_ones_remain():
    assert pick_cores(2, [0, 1, 2, 3], []) == [0, 1]
    assert pick_cores(2, [0, 1, 2, 3], [[0, 1]]) == [2, 3]
    assert pick_cores(1, [0, 1, 2, 3], [[0, 1], [2]]) == [3]
    assert pick_cores(2, [0, 1, 2, 3], [[0, 1], [2, 3], [0]]) == [1, 2]  # least used
    with pytest.raises(ValueError):
        pick_cores(5, [0, 1, 2, 3], [])


# ---------------------------------------------------------------------------- plan
def test_plan_v1():
    cpu = CpuLimit(cores=2, frequency=0.5)
    writes = plan_limits(cpu, MemoryLimit(limit="512MiB", swap="256MiB"), HOST, [1, 2], v2=False)
    assert writes == [
        Write("cpuset.cpus", "1-2"),
        Write("cpu.cfs_period_us", str(PERIOD_US)),
        Write("cpu.cfs_quota_us", str(PERIOD_US)),  # 2 cores x 0.5
        Write("memory.memsw.limit_in_bytes", "-1", optional=True),
        Write("memory.limit_in_bytes", str(512 * 2**20)),
        Write("memory.memsw.limit_in_bytes", str(768 * 2**20)),
        Write("memory.soft_limit_in_bytes", "-1", optional=True),
    ]


def test_plan_v2_and_no_limits():
    cpu = CpuLimit(cores=1, frequency="500MHz")
    writes = plan_limits(cpu, MemoryLimit(limit="1g", swap=0), HOST, [3], v2=True)
    assert writes == [
        Write("cpuset.cpus", "3"),
        Write("cpu.max", f"{PERIOD_US // 4} {PERIOD_US}"),
        Write("memory.max", str(2**30)),
        Write("memory.swap.max", "0"),
        Write("memory.low", "0", optional=True),
    ]
    lifted = plan_limits(None, None, HOST, None, v2=True)
    assert lifted == [
        Write("cpuset.cpus", "0-3"),
        Write("cpu.max", f"max {PERIOD_US}"),
        Write("memory.max", "max"),
        Write("memory.swap.max", "max", optional=True),
        Write("memory.low", "0", optional=True),
    ]
    assert plan_limits(None, None, HOST, None, v2=False)[2] == Write("cpu.cfs_quota_us", "-1")


def test_quota_bounds():
    assert quota_us(1.0, 2) is None
    assert quota_us(0.0001, 1) == 1000  # the kernel's minimum
    assert quota_us(0.25, 4) == PERIOD_US


# ---------------------------------------------------------------------------- limiter on a tree
def _tree(root: Path, v2: bool) -> list[Path]:
    """A cgroup-like folder layout with the files the kernel would offer."""
    if v2:
        (root / "cgroup.controllers").write_text("cpuset cpu memory pids\n")
        d = root / "pdx-n1"
        d.mkdir()
        for f in ("cpuset.cpus", "cpu.max", "memory.max", "memory.swap.max"):
            (d / f).write_text("")
        (d / "cpu.stat").write_text("usage_usec 1500\nnr_throttled 3\n")
        (d / "memory.events").write_text("oom 1\noom_kill 2\n")
        (d / "memory.current").write_text("4096\n")
        return [d]
    dirs = []
    files = {
        "cpuset": ["cpuset.cpus"],
        "cpu": ["cpu.cfs_period_us", "cpu.cfs_quota_us"],
        "memory": ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"],
    }
    for ctrl, names in files.items():
        d = root / ctrl / "pdx-n1"
        d.mkdir(parents=True)
        for f in names:
            (d / f).write_text("")
            (root / ctrl / f).write_text("")
        dirs.append(d)
    return dirs


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_limiter_writes_each_file_where_it_lives(tmp_path: Path, v2: bool):
    dirs = _tree(tmp_path, v2)
    lim = CgroupLimiter(root=tmp_path)
    lim._host = HOST
    lim.apply(dirs, CpuLimit(cores=1, frequency=0.25), MemoryLimit(limit="64MiB", swap=0), [2])
    read = {p.name: p.read_text() for d in dirs for p in d.iterdir()}
    assert read["cpuset.cpus"] == "2"
    if v2:
        assert read["cpu.max"] == f"{PERIOD_US // 4} {PERIOD_US}"
        assert read["memory.max"] == str(64 * 2**20) and read["memory.swap.max"] == "0"
        assert lim.usage(dirs) == {
            "cpu_ns": 1_500_000, "throttled": 3, "oom_kills": 2, "memory_bytes": 4096,
        }  # fmt: skip
    else:
        assert read["cpu.cfs_quota_us"] == str(PERIOD_US // 4)
        assert read["memory.memsw.limit_in_bytes"] == str(64 * 2**20)


def test_limiter_refuses_what_the_pnode_cannot_give(tmp_path: Path):
    _tree(tmp_path, v2=False)
    lim = CgroupLimiter(root=tmp_path)
    lim._host = HostCpu((0, 1), 2000.0)
    with pytest.raises(ValidationError) as err:
        lim.validate(CpuLimit(cores=3), None)
    assert err.value.field == "cpu.cores" and "this pnode has 2" in err.value.reason
    with pytest.raises(ValidationError) as err:
        lim.validate(CpuLimit(frequency="2500MHz"), None)
    assert err.value.field == "cpu.frequency" and "2000MHz" in err.value.reason
    with pytest.raises(ValidationError) as err:
        lim.validate(CpuLimit(pcores=[1, 5]), None)
    assert err.value.field == "cpu.pcores"
    lim.validate(CpuLimit(cores=2, frequency="2000MHz"), MemoryLimit(limit="1g", swap="1g"))
    (tmp_path / "memory" / "memory.memsw.limit_in_bytes").unlink()
    with pytest.raises(Unsupported, match="swapaccount=1"):
        lim.validate(None, MemoryLimit(limit="1g", swap="1g"))


def test_limiter_names_a_missing_controller(tmp_path: Path):
    d = tmp_path / "cpu" / "pdx-n1"
    d.mkdir(parents=True)
    lim = CgroupLimiter(root=tmp_path)
    lim._host = HOST
    with pytest.raises(Unsupported, match=r"cpuset\.cpus missing"):
        lim.apply([d], CpuLimit(cores=1), None, [0])


# ---------------------------------------------------------------------------- Distem shapes
def test_distem_vcpu_desc_and_object():
    assert vresources.cpu_from_desc({"corenb": "2", "val": 1, "unit": "ratio"}) == {
        "cores": "2",
        "frequency": 1.0,
    }
    assert vresources.cpu_from_desc({"corenb": 1, "val": "1200", "unit": "mhz"})["frequency"] == (
        "1200MHz"
    )
    assert vresources.cpu_from_desc({"vcores": [{"frequency": 0.5}] * 3}) == {
        "cores": 3,
        "frequency": 0.5,
    }
    old = CpuLimit(cores=2, frequency=0.5)
    assert vresources.cpu_from_desc({"val": 0.25, "unit": "ratio"}, old=old) == {
        "cores": 2,
        "frequency": 0.25,
    }
    shape = vresources.vcpu(CpuLimit(cores=2, frequency=0.5), 4, 2000.0, [1, 3])
    assert shape == {
        "pcpu": "0",
        "vcores": {
            "0": {"id": "0", "pcore": "1", "frequency": "1000"},
            "1": {"id": "1", "pcore": "3", "frequency": "1000"},
        },
    }
    assert vresources.cpu_from_desc(shape)["cores"] == 2  # a saved vcpu loads back


def test_distem_vmem_desc_and_object():
    assert vresources.memory_from_desc({"mem": "512", "swap": "1024", "hierarchy": "v1"}) == {
        "limit": "512",
        "swap": "1024",
    }
    assert vresources.memory_from_desc({"mem": 512, "swap": [], "hierarchy": "v1"}) == {
        "limit": "512"
    }
    assert vresources.memory_from_desc({}) is None
    assert vresources.vmem(MemoryLimit(limit="1g", swap="256")) == {
        "mem": "1024",
        "swap": "256",
        "hierarchy": None,
        "soft_limit": "",
        "hard_limit": "",
    }


def test_the_example_platform_loads():
    from pydistem.model.platform_file import load_platform

    root = Path(__file__).resolve().parents[2]
    vnodes = {v.name: v for v in load_platform(root / "examples" / "limits.yaml").vnodes}
    assert vnodes["slow"].cpu == CpuLimit(cores=1, frequency=0.5)
    assert vnodes["small"].memory == MemoryLimit(limit="64MiB", swap="0")
