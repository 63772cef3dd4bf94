"""CPU, memory and disk limits on cgroup v2, in the session's virtme-ng VM (this host is v1):
tests/vm/guest_limits.py runs a ``netns`` vnode through the real agent and limiter there
(in the same boot as the netem guest, see conftest.py); the tests assert on its JSON."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def guest(vm_run: dict) -> dict:
    data = vm_run["results"]["limits"]
    if data is None:
        pytest.fail(f"the limits guest wrote no results ({vm_run['log']})")
    print(data)
    assert not data["errors"], data["errors"][0]
    return data


def test_guest_runs_cgroup_v2_and_the_files_hold_the_limits(guest: dict) -> None:
    assert guest["v2"] is True
    assert guest["start"] == {"n1": None}
    assert guest["files"] == {
        "cpuset.cpus": str(guest["pcores"][0]),
        "cpu.max": "25000 100000",
        "memory.max": str(32 * 2**20),
        "memory.swap.max": "0",
    }


@pytest.mark.parametrize("fraction", ["0.25", "0.5", "0.75"])
def test_cpu_share_within_5_percent_on_v2(guest: dict, fraction: str) -> None:
    got = guest["cpu"][fraction]
    assert abs(got - float(fraction)) <= 0.05 * float(fraction), guest["cpu"]


def test_oom_inside_the_vnode_then_live_raise_on_v2(guest: dict) -> None:
    assert guest["oom"] == "rc=137" and guest["oom_kills"] >= 1
    assert guest["after_raise"] == "rc=0"
    assert guest["lifted"] == "max 100000"  # the CPU limit lifted live


def test_disk_and_soft_memory_on_v2(guest: dict) -> None:
    """io.max on a loop device (the guest's root is no block device), set live: a direct
    read runs at the 2 MiB/s throttle (within 25%); memory.low holds the soft limit;
    lifting both writes the kernel's defaults."""
    disk = guest["disk"]
    rule = disk["rule"]
    assert disk["io_max"] == f"{rule} rbps={2 * 2**20} wbps=max riops=max wiops=50"
    assert disk["memory_low"] == str(16 * 2**20)
    assert disk["dd_rc"] == 0 and 1.5 <= disk["read_rate"] <= 2.5, disk
    assert rule not in disk["io_max_lifted"] and disk["memory_low_lifted"] == "0"


def test_nothing_left_in_the_guest(guest: dict) -> None:
    assert guest["clean_failed"] == {} and guest["left"] == []
