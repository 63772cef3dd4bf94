"""VXLAN tunnels that join one vnetwork's bridges across pnodes, without multicast.

Each pnode that hosts members of a ``vxlan`` vnetwork gets one VXLAN device (VNI of
the vnetwork, explicit UDP port) enslaved to the vnetwork's bridge. Broadcast and
unknown unicast reach the other pnodes by head-end replication: one all-zero-MAC
forwarding entry per peer pnode (``bridge fdb append 00:00:00:00:00:00 dst PEER``).
The device learns which remote VTEP holds which vnode MAC from the traffic.
"""

from __future__ import annotations

import errno
import os

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pydistem.agent import netlink
from pydistem.agent.journal import Journal
from pydistem.errors import KernelError

ZERO_MAC = "00:00:00:00:00:00"


def vxlan_ensure(
    ipr: IPRoute,
    name: str,
    vni: int,
    port: int,
    mtu: int,
    bridge_index: int,
    journal: Journal,
    underlay: str | None = None,
) -> int:
    """Create the VXLAN device ``name`` if missing, set its MTU, enslave it to the
    bridge, bring it up; return its index. Idempotent.

    Raises KernelError, e.g. EEXIST when another device already uses this VNI and port.
    """
    journal.add("link", name, type="vxlan", vni=vni, port=port)
    idx = netlink.link_index(ipr, name)
    if idx is None:
        spec: dict[str, object] = {
            "ifname": name,
            "kind": "vxlan",
            "vxlan_id": vni,
            "vxlan_port": port,
            "vxlan_learning": 1,
        }
        if underlay:
            lower = netlink.link_index(ipr, underlay)
            if lower is None:
                raise KernelError(
                    f"create vxlan {name}", f"no interface {underlay!r}", errno.ENODEV
                )
            spec["vxlan_link"] = lower
        try:
            ipr.link("add", **spec)
        except NetlinkError as exc:
            reason = os.strerror(exc.code)
            if exc.code == errno.EEXIST:
                reason += f" (VNI {vni} on UDP port {port} is taken on this pnode: set `vni`)"
            raise KernelError(f"create vxlan {name}", reason, exc.code) from None
        idx = netlink.link_index(ipr, name)
        assert idx is not None
    index = idx
    netlink.call(
        f"set up vxlan {name}",
        lambda: ipr.link("set", index=index, mtu=mtu, master=bridge_index, state="up"),
    )
    return index


def peers_of(ipr: IPRoute, index: int) -> set[str]:
    """The remote VTEPs of the all-zero (flooding) entries of a VXLAN device."""
    out = set()
    for msg in ipr.fdb("dump", ifindex=index):
        if msg["ifindex"] == index and msg.get_attr("NDA_LLADDR") == ZERO_MAC:
            dst = msg.get_attr("NDA_DST")
            if dst:
                out.add(str(dst))
    return out


def set_peers(ipr: IPRoute, index: int, peers: list[str]) -> None:
    """Make the flooding entries of device ``index`` exactly ``peers``. Idempotent."""
    have = peers_of(ipr, index)
    want = set(peers)
    for dst in sorted(want - have):
        netlink.call(
            f"fdb append {dst}",
            lambda d=dst: ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=d),
        )
    for dst in sorted(have - want):
        try:
            ipr.fdb("del", ifindex=index, lladdr=ZERO_MAC, dst=dst)
        except NetlinkError as exc:
            if exc.code != errno.ENOENT:
                raise KernelError(f"fdb del {dst}", os.strerror(exc.code), exc.code) from None
