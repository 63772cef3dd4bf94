"""Netem through HtbShaper, inside a virtme-ng VM that runs a full Debian kernel.

This host's kernel has no sch_netem; the guest's has. ONE VM is booted for the session
(tests/vm/conftest.py): it runs tests/vm/guest_netem.py (the real plugin, from the host's
read-only tree and venv) which writes JSON into a --rwdir folder; the tests below assert
on it. Tools: tests/vm/setup_vm_tools.sh (qemu, linux-image-amd64, virtme-ng).
"""

from __future__ import annotations

import json
import statistics

import pytest

pytestmark = [pytest.mark.vm, pytest.mark.slow]


#: qemu without KVM (TCG) delivers a timer-delayed packet late: 0.5-1.8 ms per netem
#: hold were measured here (a wake-up of the emulated CPU), never early. The upper bound
#: allows that much per hold; the lower bound is the strict one.
TCG_LATE_MS = 2.0


def delayed(got_ms: float, base_ms: float, delay_ms: float, holds: int = 1) -> bool:
    """RTT = base + delay within 5% of the delay or 0.5 ms, plus the TCG allowance above."""
    tol = max(0.05 * delay_ms, 0.5)
    return base_ms + delay_ms - tol <= got_ms <= base_ms + delay_ms + tol + holds * TCG_LATE_MS


@pytest.fixture(scope="module")
def guest(vm_run: dict) -> dict:
    """What tests/vm/guest_netem.py measured in the session's VM (see conftest.py)."""
    data = vm_run["results"]["netem"]
    if data is None:
        pytest.fail(f"the guest wrote no results ({vm_run['log']})")
    data = {**data, "vm_s": vm_run["vm_s"]}
    print(json.dumps({k: v for k, v in data.items() if k != "after_clear"}, indent=1))
    return data


def _case(guest: dict, name: str) -> dict:
    assert name not in guest["errors"], guest["errors"][name]
    assert name in guest["cases"], f"case {name} did not run (errors: {list(guest['errors'])})"
    return guest["cases"][name]


def test_guest_kernel_has_netem(guest):
    assert all(guest["modprobe"].values()), guest["modprobe"]
    probe = guest["probe"]
    assert probe["sch_netem"] and probe["sch_htb"] and probe["ifb"] and probe["act_mirred"]


@pytest.mark.parametrize("ms", [10, 50, 100])
def test_one_way_output_delay(guest, ms):
    """output.latency delays what vnode a sends: echo requests; RTT = delay + base."""
    got = _case(guest, f"output_{ms}ms")
    assert got["received"] == got["sent"]
    assert delayed(got["median"], guest["base"]["median"], ms), (got, guest["base"])


def test_delay_on_both_directions_adds_up(guest):
    got = _case(guest, "both_50ms")
    assert delayed(got["median"], guest["base"]["median"], 100, holds=2), got


def test_input_delay_under_a_rate_cap(guest):
    """netem as the leaf of the HTB class: input delays the echo replies."""
    got = _case(guest, "input_20ms_under_10mbit")
    assert delayed(got["median"], guest["base"]["median"], 20), got


def test_loss(guest):
    got = _case(guest, "output_loss_10pct")
    assert got["sent"] >= 1000
    assert abs(got["loss_pct"] - 10) <= 2, got


def test_jitter(guest):
    """50 ms +- 10 ms, uniform: stdev ~5.8 ms, RTTs spread over [40, 60] + base. A software-
    emulated guest on a loaded host stalls now and then: at most 2 % late outliers."""
    got = _case(guest, "output_50ms_jitter_10ms")
    assert got["stdev"] > 3, got
    base = guest["base"]["median"]
    assert got["min"] >= 40 - 0.5, got
    late = [r for r in got["rtts"] if r > base + 60 + 0.5 + TCG_LATE_MS]
    assert len(late) <= 0.02 * len(got["rtts"]), (late, got)
    assert base + 47 <= statistics.median(got["rtts"]) <= base + 53 + TCG_LATE_MS, got


def test_jitter_with_a_normal_distribution(guest):
    """50 ms, sigma 10 ms from iproute2's normal table: a third of the delays fall
    outside [40, 60] ms, which uniform jitter never does."""
    got = _case(guest, "output_50ms_jitter_10ms_normal")
    base = guest["base"]["median"]
    outside = [r for r in got["rtts"] if r < 40 - 0.5 or r > base + 60 + 0.5 + TCG_LATE_MS]
    assert len(outside) >= 0.1 * len(got["rtts"]), got
    assert got["stdev"] > 7, got
    assert base + 46 <= statistics.median(got["rtts"]) <= base + 54 + TCG_LATE_MS, got


def test_peer_latencies(guest):
    base = guest["base"]["median"]
    assert delayed(_case(guest, "peer_b_30ms")["median"], base, 30)
    assert delayed(_case(guest, "peer_c_60ms")["median"], base, 60)
    assert _case(guest, "peers_removed")["median"] < 5


def test_clear_leaves_nothing(guest):
    after = guest["after_clear"]
    assert "pdi" not in after["links"], after["links"]
    assert "htb" not in after["qdisc"] and "netem" not in after["qdisc"], after["qdisc"]
    assert after["journal"] == []
    assert not guest["errors"], guest["errors"]


def test_vm_run_is_quick_enough(guest):
    """One boot for every guest script: 180 s for the netem and limits guests, 60 s more
    for the peers-matrix guest (three vnodes through a real coordinator)."""
    assert guest["vm_s"] < 240, guest["vm_s"]
