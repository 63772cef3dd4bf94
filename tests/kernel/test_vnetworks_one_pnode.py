"""Vnetwork modes and vroutes on one pnode, real kernel, ``netns`` vnodes.

- classic: the bridge enslaves a ``root_interface`` (a dummy interface here), takes its
  address and routes, and ``quit`` gives them back;
- vxlan: the VXLAN device exists with its VNI and port, vifaces get MTU 1450;
- vroutes: a gateway vnode joins two vnetworks; ``vroute_complete`` makes them reach
  each other, with forwarding on in the gateway only.
Multi-pnode behaviour (VXLAN peers, the foreign-MAC probe) is in tests/hostbed/.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from pydistem.coordinator.service import Coordinator
from pydistem.errors import ValidationError
from pydistem.testing import unique_tag

pytestmark = pytest.mark.kernel


def ip_json(*args: str) -> list[dict]:
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout or "[]")


def in_vnode(c: Coordinator, vnode: str, cmd: str) -> str:
    res = c.vnode_execute(vnode, cmd, timeout=20)
    assert res.exit_code == 0, f"{vnode}: {cmd}: {res.stdout}{res.stderr}"
    return res.stdout


def netns(name: str, vifaces: list[dict]) -> dict:
    return {"name": name, "runtime": "netns", "vifaces": vifaces}


@pytest.fixture
def dummy_uplink(kernel_unchanged):
    """A veth end standing for a pnode's uplink, with an address and a route; its peer
    is a neighbour machine (a namespace) on the same LAN at 10.151.7.1."""
    name = "pdt" + unique_tag()
    lan = f"{name}-lan"
    subprocess.run(["ip", "netns", "add", lan], check=True)
    try:
        subprocess.run(
            ["ip", "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", lan],
            check=True,
        )
        for cmd in (
            ["ip", "addr", "add", "10.151.7.254/24", "dev", name],
            ["ip", "link", "set", name, "up"],
            ["ip", "route", "add", "10.152.0.0/24", "via", "10.151.7.1", "dev", name],
            ["ip", "-n", lan, "addr", "add", "10.151.7.1/24", "dev", "eth0"],
            ["ip", "-n", lan, "link", "set", "eth0", "up"],
        ):
            subprocess.run(cmd, check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)
        subprocess.run(["ip", "netns", "del", lan], check=False)


def uplink_state(name: str) -> tuple:
    (link,) = ip_json("addr", "show", "dev", name)
    addrs = sorted((a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet")
    routes = sorted(
        r["dst"] + ":" + r.get("gateway", "") for r in ip_json("route", "show", "dev", name)
    )
    return link.get("master"), addrs, routes


def test_classic_root_interface_enslaved_and_restored(
    dummy_uplink: str, coordinator: Coordinator
) -> None:
    before = uplink_state(dummy_uplink)
    assert before[0] is None and before[1] == [("10.151.7.254", 24)]
    vnet = coordinator.vnetwork_create(
        {"name": "lan", "address": "10.151.7.0/24", "root_interface": dummy_uplink}
    )
    assert vnet.network_type == "bridge", vnet.reason  # auto, one pnode: classic
    coordinator.vnodes_create([netns("n1", [{"name": "if0", "vnetwork": "lan"}])])
    assert coordinator.vnodes_start(["n1"]) == {"n1": None}
    master, addrs, _ = uplink_state(dummy_uplink)
    assert master is not None and master.startswith("pdu"), "the uplink is a bridge port"
    assert addrs == [], "its address moved to the bridge"
    _, bridge_addrs, bridge_routes = uplink_state(master)
    assert bridge_addrs == [("10.151.7.254", 24)]
    assert "10.152.0.0/24:10.151.7.1" in bridge_routes, "routes followed the address"
    # the vnode is on the pnode's network: it reaches the pnode's own address
    in_vnode(coordinator, "n1", "ping -c 1 -W 2 10.151.7.254")
    in_vnode(coordinator, "n1", "ping -c 1 -W 2 10.151.7.1")  # and a neighbour on its LAN
    coordinator.quit()
    assert uplink_state(dummy_uplink) == before, "quit gave address and routes back"
    assert master not in {link["ifname"] for link in ip_json("link", "show")}, "bridge gone"


def test_vxlan_device_and_mtu(kernel_unchanged, coordinator: Coordinator) -> None:
    vnet = coordinator.vnetwork_create(
        {"name": "ov", "address": "10.153.0.0/24", "network_type": "vxlan", "vxlan_port": 4790}
    )
    assert vnet.vni is not None
    coordinator.vnodes_create([netns(f"x{i}", [{"name": "if0", "vnetwork": "ov"}]) for i in (1, 2)])
    assert coordinator.vnodes_start() == {"x1": None, "x2": None}
    vx = [
        link
        for link in ip_json("-d", "link", "show", "type", "vxlan")
        if link["linkinfo"]["info_data"].get("id") == vnet.vni
        and link["linkinfo"]["info_data"].get("port") == 4790
    ]
    assert len(vx) == 1 and vx[0]["mtu"] == 1450
    assert "mtu 1450" in in_vnode(coordinator, "x1", "ip link show if0")
    # 1422 bytes of ICMP payload + 28 = 1450: fits; one more byte does not (DF set)
    in_vnode(coordinator, "x1", "ping -c 1 -W 2 -M do -s 1422 10.153.0.2")
    res = coordinator.vnode_execute("x1", "ping -c 1 -W 1 -M do -s 1423 10.153.0.2")
    assert res.exit_code != 0


def test_vroute_complete_through_a_gateway(kernel_unchanged, coordinator: Coordinator) -> None:
    c = coordinator
    c.vnetwork_create({"name": "left", "address": "10.161.0.0/24"})
    c.vnetwork_create({"name": "right", "address": "10.162.0.0/24"})
    c.vnodes_create(
        [
            netns("a", [{"name": "if0", "vnetwork": "left"}]),
            netns(
                "gw",
                [{"name": "if0", "vnetwork": "left"}, {"name": "if1", "vnetwork": "right"}],
            ),
            netns("b", [{"name": "if0", "vnetwork": "right"}]),
        ]
    )
    assert set(c.vnodes_start().values()) == {None}
    b_addr = c.vnodes["b"].vifaces[0].address
    assert c.vnode_execute("a", f"ping -c 1 -W 1 {b_addr}").exit_code != 0, "no route yet"
    with pytest.raises(ValidationError) as err:
        c.vroute_create("left", "right", "b")
    assert err.value.field == "gateway" and "not attached to vnetwork left" in err.value.reason
    new = c.vroute_complete()
    assert {(r.source, r.destination) for r in new} == {("left", "right"), ("right", "left")}
    assert c.vroute_complete() == [], "idempotent"
    in_vnode(c, "a", f"ping -c 1 -W 2 {b_addr}")
    in_vnode(c, "b", f"ping -c 1 -W 2 {c.vnodes['a'].vifaces[0].address}")
    assert in_vnode(c, "gw", "cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
    assert in_vnode(c, "a", "cat /proc/sys/net/ipv4/ip_forward").strip() == "0"
    # a vnode started later gets its routes too
    c.vnodes_create([netns("a2", [{"name": "if0", "vnetwork": "left"}])])
    assert c.vnodes_start(["a2"]) == {"a2": None}
    in_vnode(c, "a2", f"ping -c 1 -W 2 {b_addr}")
