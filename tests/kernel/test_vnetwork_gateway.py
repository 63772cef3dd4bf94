"""A vnetwork's ``gateway`` on the real kernel: the default route of its vnodes, onlink.

As on Grid'5000 (a reserved /22 whose site router sits in the site's /14), the
vnetwork is a /24 bridged (classic mode) to a "site" segment whose router namespace
has an address outside that /24. Its vnodes get ``default via ROUTER dev if0 onlink``
and reach a host behind the router. Every address that receives traffic is inside a
namespace this test creates: the vnodes, the router and the host behind it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from pydistem.coordinator.service import Coordinator
from pydistem.testing import unique_tag

pytestmark = pytest.mark.kernel

BLOCK = "10.171.4.0/24"  # the vnetwork ("reserved subnet")
ROUTER = "10.171.255.254"  # in the "site" /16, outside BLOCK
BEHIND = "10.172.0.2"  # a host on the router's other side


def run(*cmd: str) -> None:
    subprocess.run(list(cmd), check=True, capture_output=True, text=True)


@pytest.fixture
def site_router(kernel_unchanged) -> Iterator[str]:
    """A router namespace on a "site" segment, reached through a veth whose root end
    (no address) is the vnetwork's uplink, and a namespace behind the router."""
    tag = "pdg" + unique_tag()
    router, behind = f"{tag}-r", f"{tag}-b"
    run("ip", "netns", "add", router)
    try:
        run("ip", "netns", "add", behind)
        run("ip", "link", "add", tag, "type", "veth", "peer", "name", "site0", "netns", router)
        run("ip", "link", "add", "in0", "netns", router, "type", "veth",
            "peer", "name", "eth0", "netns", behind)  # fmt: skip
        for cmd in (
            ["ip", "link", "set", tag, "up"],
            ["ip", "-n", router, "addr", "add", f"{ROUTER}/16", "dev", "site0"],
            ["ip", "-n", router, "link", "set", "site0", "up"],
            ["ip", "-n", router, "addr", "add", "10.172.0.1/24", "dev", "in0"],
            ["ip", "-n", router, "link", "set", "in0", "up"],
            ["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1"],
            ["ip", "-n", behind, "addr", "add", f"{BEHIND}/24", "dev", "eth0"],
            ["ip", "-n", behind, "link", "set", "eth0", "up"],
            ["ip", "-n", behind, "route", "add", "default", "via", "10.172.0.1"],
        ):
            run(*cmd)
        yield tag
    finally:
        subprocess.run(["ip", "link", "del", tag], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", behind], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", router], check=False, capture_output=True)


def in_vnode(c: Coordinator, vnode: str, cmd: str) -> str:
    res = c.vnode_execute(vnode, cmd, timeout=20)
    assert res.exit_code == 0, f"{vnode}: {cmd}: {res.stdout}{res.stderr}"
    return res.stdout


def test_vnodes_default_route_through_an_onlink_gateway(
    site_router: str, coordinator: Coordinator
) -> None:
    c = coordinator
    vnet = c.vnetwork_create(
        {
            "name": "site",
            "address": BLOCK,
            "network_type": "bridge",
            "root_interface": site_router,
            "gateway": ROUTER,
        }
    )
    assert vnet.gateway == ROUTER and not vnet.gateway_inside
    c.vnodes_create(
        [
            {"name": f"v{i}", "runtime": "netns", "vifaces": [{"name": "if0", "vnetwork": "site"}]}
            for i in (1, 2)
        ]
    )
    assert c.vnodes_start() == {"v1": None, "v2": None}
    for v in ("v1", "v2"):
        (default,) = json.loads(in_vnode(c, v, "ip -j route show default"))
        assert (default["gateway"], default["dev"]) == (ROUTER, "if0")
        assert "onlink" in default["flags"]
    in_vnode(c, "v1", f"ping -c 1 -W 2 {c.vnodes['v2'].vifaces[0].address}")
    in_vnode(c, "v1", f"ping -c 1 -W 2 {ROUTER}")
    in_vnode(c, "v1", f"ping -c 1 -W 2 {BEHIND}")
    in_vnode(c, "v2", f"ping -c 1 -W 2 {BEHIND}")
