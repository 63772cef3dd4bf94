"""LXC vnodes through the whole stack on the real kernel: coordinator -> agent ->
LXC runtime, with a busybox image built here."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydistem.agent import netlink
from pydistem.agent.service import Agent
from pydistem.coordinator.service import Coordinator

pytestmark = [pytest.mark.kernel, pytest.mark.lxc]


@pytest.fixture
def lxc_coordinator(coordinator: Coordinator, kernel_unchanged) -> Iterator[Coordinator]:
    yield coordinator
    coordinator.quit()  # before kernel_unchanged looks


def lxc_platform(image: Path, n: int, shared: bool = True) -> dict:
    return {
        "vnetworks": [{"name": "net0", "address": "10.144.0.0/20"}],
        "vnodes": [
            {
                "name": f"node-[1-{n}]",
                "runtime": "lxc",
                "image": f"file://{image}",
                "shared": shared,
                "vifaces": [{"name": "if0", "vnetwork": "net0"}],
                "ssh_key": {"public": "ssh-ed25519 AAAAtest test@pydistem"},
            }
        ],
    }


def full_mesh_failures(c: Coordinator, names: list[str]) -> dict[str, list[str]]:
    """Each vnode pings every other from inside the vnode; source -> unreachable peers.

    A peer counts as unreachable only if two more echoes also fail: busybox ping in
    these containers loses a few percent of single echoes on this VM (iputils ping
    in the very same namespaces does not, see test_hundred_lxc_vnodes_reach_each_other).
    """
    peers = " ".join(names)
    once = "ping -c1 -W1 $h >/dev/null 2>&1"
    script = f"for h in {peers}; do {once} || {once} || {once} || echo $h; done"
    failed = {}
    for src in names:
        r = c.vnode_execute(src, script)
        if r.stdout.strip() or r.exit_code:
            failed[src] = r.stdout.split() or [r.stderr]
    return failed


def netns_mesh_failures(agent: Agent, c: Coordinator, names: list[str]) -> dict[str, list[str]]:
    """The full mesh again with the host's iputils ping run in each vnode's network
    namespace (the very namespace its container uses), single echoes, no retry."""
    addresses = " ".join(str(c.vnodes[n].vifaces[0].address) for n in names)
    failed = {}
    for src in names:
        ns = netlink.netns_path(agent.netns_name(src))
        r = subprocess.run(
            [
                "nsenter",
                f"--net={ns}",
                "sh",
                "-c",
                f"for h in {addresses}; do ping -c1 -W2 $h >/dev/null 2>&1 || echo $h; done",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if r.stdout.strip() or r.returncode:
            failed[src] = r.stdout.split() or [r.stderr]
    return failed


@pytest.mark.parametrize("shared", [True, False])
def test_three_lxc_vnodes(lxc_coordinator: Coordinator, image: Path, shared: bool) -> None:
    c = lxc_coordinator
    _, vnodes = c.deploy(lxc_platform(image, 3, shared))
    assert [v.status for v in vnodes] == ["RUNNING"] * 3
    assert c.wait_vnodes(None, 30) == []
    names = [v.name for v in vnodes]
    assert full_mesh_failures(c, names) == {}

    r = c.vnode_execute("node-2", "hostname; cat /root/.ssh/authorized_keys; echo oops >&2; exit 4")
    assert r.stdout == "node-2\nssh-ed25519 AAAAtest test@pydistem\n"
    assert (r.stderr, r.exit_code) == ("oops\n", 4)

    # files written in one vnode stay private to it (overlay or copy)
    c.vnode_execute("node-1", "echo mine > /root/note")
    assert c.vnode_execute("node-3", "cat /root/note").exit_code != 0

    assert c.vnodes_stop(["node-3"]) == {"node-3": None}
    assert c.vnodes["node-3"].status == "DOWN"
    assert c.vnode_execute("node-1", "ping -c1 -W1 node-3").exit_code != 0
    assert c.vnodes_start(["node-3"]) == {"node-3": None}
    assert c.wait_vnodes(["node-3"], 30) == []
    assert c.vnode_execute("node-1", "ping -c1 -W2 node-3").exit_code == 0

    assert c.vnodes_freeze(["node-2"]) == {"node-2": None}
    assert c.vnodes["node-2"].status == "FROZEN"
    assert c.vnodes_unfreeze(["node-2"]) == {"node-2": None}
    assert c.vnode_execute("node-2", "true").exit_code == 0


def test_missing_image_creates_nothing(coordinator: Coordinator, tmp_path: Path) -> None:
    from pydistem.errors import ValidationError

    with pytest.raises(ValidationError) as err:
        coordinator.deploy(lxc_platform(tmp_path / "nope.tar.gz", 2))
    assert err.value.field == "vnodes[0].vfilesystem.image"
    assert "nope.tar.gz" in err.value.reason
    assert coordinator.vnodes == {} and coordinator.vnets == {}


@pytest.mark.slow
def test_hundred_lxc_vnodes_reach_each_other(
    lxc_coordinator: Coordinator, agent: Agent, image: Path
) -> None:
    c = lxc_coordinator
    _, vnodes = c.deploy(lxc_platform(image, 100))
    assert {v.status for v in vnodes} == {"RUNNING"}, c.failures
    assert c.wait_vnodes(None, 120) == []
    names = [v.name for v in vnodes]
    assert netns_mesh_failures(agent, c, names) == {}
    # and from inside the containers: each vnode reaches two others by name
    ring = {n: [names[(i + 1) % 100], names[(i + 37) % 100]] for i, n in enumerate(names)}
    once = "ping -c1 -W1 {0} >/dev/null 2>&1"
    for src, dests in ring.items():
        script = " && ".join(f"({once} || {once} || {once})".format(d) for d in dests)
        assert c.vnode_execute(src, script).exit_code == 0, (src, dests)
