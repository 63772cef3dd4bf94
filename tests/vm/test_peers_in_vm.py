"""Distem's peers latency matrix end to end, inside the virtme-ng VM (this host's kernel
has no sch_netem): tests/vm/guest_peers.py builds three ``netns`` vnodes with a real
coordinator and agent, posts ``/peers_matrix_latencies`` to the compat app, and pings
every (source, destination) pair. What vnode i sends to j is delayed by matrix[i][j], so
the RTT of i -> j is the base RTT + matrix[i][j] + matrix[j][i].
"""

from __future__ import annotations

import json

import pytest
from test_netem_in_vm import delayed

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def guest(vm_run: dict) -> dict:
    data = vm_run["results"]["peers"]
    if data is None:
        pytest.fail(f"the guest wrote no results ({vm_run['log']})")
    print(json.dumps({k: v for k, v in data.items() if not k.startswith("kernel")}, indent=1))
    return data


def test_route_answers_200_empty(guest: dict) -> None:
    assert not guest["errors"], guest["errors"]
    assert guest["start"] == dict.fromkeys(guest["names"])
    assert guest["route"] == {"status": 200, "body": "", "error": None}


def test_rtt_per_destination(guest: dict) -> None:
    names, m = guest["names"], guest["matrix"]
    for i, src in enumerate(names):
        for j, dst in enumerate(names):
            if i == j:
                continue
            pair = f"{src}>{dst}"
            got, base = guest["pairs"][pair], guest["base"][pair]
            assert got["received"] == got["sent"], (pair, got)
            delay = m[i][j] + m[j][i]
            holds = (m[i][j] > 0) + (m[j][i] > 0)
            assert delayed(got["median"], base["median"], delay, holds), (pair, delay, got, base)


def test_zero_matrix_lifts_and_nothing_is_left(guest: dict) -> None:
    assert guest["zero_route"] == 200
    for pair, got in guest["zeroed"].items():
        assert got["median"] is not None and got["median"] < 5, (pair, got)
    assert guest["clean_failed"] == {}
    assert guest["kernel_after"] == guest["kernel_before"]
