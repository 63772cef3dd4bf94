"""Classic mode: a pnode interface (``root_interface``) enslaved to a bridge, and released.

Distem's ``vnetwork_create(name, cidr, root_interface: 'eth1')`` puts the vnodes on
the pnode's physical network: the vnetwork bridge enslaves that interface. An
interface cannot keep its IP addresses once it is a bridge port (the bridge takes
its frames), so the agent moves them, and the routes through the interface, to the
bridge, which also takes the interface's MAC address (neighbours' ARP caches and a
hypervisor's MAC filter stay valid). All vnetworks on one interface share its bridge.

The journal entry (kind ``uplink``) holds the interface's addresses and routes as
they were; :func:`clean_uplink` releases the interface, deletes the bridge and puts
addresses and routes back — after a crash too.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pydistem.agent import netlink
from pydistem.agent.journal import Entry, Journal
from pydistem.errors import KernelError, ValidationError

KIND = "uplink"


def _kind(link: Any) -> str | None:
    info = link.get_attr("IFLA_LINKINFO")
    return info.get_attr("IFLA_INFO_KIND") if info is not None else None


def is_bridge(ipr: IPRoute, ifname: str) -> bool:
    """Whether ``ifname`` exists and is a bridge (netlink: /sys may show another netns)."""
    idx = netlink.link_index(ipr, ifname)
    return idx is not None and _kind(ipr.get_links(idx)[0]) == "bridge"


def _addresses(ipr: IPRoute, index: int) -> list[dict[str, Any]]:
    out = []
    for msg in ipr.get_addr(index=index):
        if msg["family"] == socket.AF_INET6 and msg["scope"] != 0:
            continue  # link-local: the kernel makes its own on the bridge
        out.append(
            {
                "family": msg["family"],
                "address": msg.get_attr("IFA_ADDRESS"),
                "local": msg.get_attr("IFA_LOCAL"),
                "prefixlen": msg["prefixlen"],
                "broadcast": msg.get_attr("IFA_BROADCAST"),
            }
        )
    return out


def _routes(ipr: IPRoute, index: int) -> list[dict[str, Any]]:
    """Routes of the main table through ``index`` that the kernel would not re-create
    from an address (those with a gateway, or added by hand)."""
    out = []
    for family in (socket.AF_INET, socket.AF_INET6):
        for msg in ipr.get_routes(family=family, table=254, oif=index):
            if msg.get_attr("RTA_OIF") != index or msg["proto"] == 2:  # 2: proto kernel
                continue
            if family == socket.AF_INET6 and msg.get_attr("RTA_DST", "").startswith("fe80"):
                continue
            out.append(
                {
                    "family": family,
                    "dst": msg.get_attr("RTA_DST"),
                    "dst_len": msg["dst_len"],
                    "gateway": msg.get_attr("RTA_GATEWAY"),
                    "priority": msg.get_attr("RTA_PRIORITY"),
                    "prefsrc": msg.get_attr("RTA_PREFSRC"),
                    "proto": msg["proto"],
                    "scope": msg["scope"],
                }
            )
    return out


def _add_addresses(ipr: IPRoute, index: int, addrs: list[dict[str, Any]]) -> None:
    for a in addrs:
        spec: dict[str, Any] = {
            "index": index,
            "address": a.get("local") or a["address"],
            "prefixlen": a["prefixlen"],
        }
        if a.get("broadcast"):
            spec["broadcast"] = a["broadcast"]
        try:
            ipr.addr("add", **spec)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise KernelError(
                    f"address {spec['address']}", os.strerror(exc.code), exc.code
                ) from None


def _add_routes(ipr: IPRoute, index: int, routes: list[dict[str, Any]]) -> None:
    for r in routes:
        spec: dict[str, Any] = {
            "family": r["family"],
            "oif": index,
            "dst_len": r["dst_len"],
            "proto": r["proto"],
            "scope": r["scope"],
        }
        for key in ("dst", "gateway", "priority", "prefsrc"):
            if r.get(key) is not None:
                spec[key] = r[key]
        try:
            ipr.route("add", **spec)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise KernelError(
                    f"route {r.get('dst') or 'default'}", os.strerror(exc.code), exc.code
                ) from None


def enslave(ipr: IPRoute, ifname: str, bridge: str, journal: Journal) -> int:
    """Make ``ifname`` a port of bridge ``bridge`` (created with the interface's MAC
    and MTU), moving its addresses and routes to the bridge; return the bridge index.

    An interface that is itself a bridge is used as it is (and never touched by
    ``clean``). Idempotent. ValidationError if the pnode has no such interface or it
    already belongs to another bridge.
    """
    idx = netlink.link_index(ipr, ifname)
    if idx is None:
        names = sorted(str(lk.get_attr("IFLA_IFNAME")) for lk in ipr.get_links())
        raise ValidationError(
            "root_interface", f"this pnode has no interface {ifname!r} (it has {', '.join(names)})"
        )
    (link,) = ipr.get_links(idx)
    if _kind(link) == "bridge":
        return idx
    bridge_idx = netlink.link_index(ipr, bridge)
    master = link.get_attr("IFLA_MASTER")
    if master and master == bridge_idx:
        return bridge_idx
    if master:
        (other,) = ipr.get_links(master)
        raise ValidationError(
            "root_interface",
            f"{ifname} is already a port of {other.get_attr('IFLA_IFNAME')} on this pnode",
        )
    mac = link.get_attr("IFLA_ADDRESS")
    mtu = link.get_attr("IFLA_MTU")
    addrs = _addresses(ipr, idx)
    routes = _routes(ipr, idx)
    journal.add(KIND, ifname, bridge=bridge, mac=mac, mtu=mtu, addresses=addrs, routes=routes)
    if bridge_idx is None:
        netlink.call(
            f"create bridge {bridge}",
            lambda: ipr.link("add", ifname=bridge, kind="bridge", address=mac, mtu=mtu),
        )
        bridge_idx = netlink.link_index(ipr, bridge)
        assert bridge_idx is not None
    b = bridge_idx
    netlink.call(f"bring up {bridge}", lambda: ipr.link("set", index=b, state="up"))
    netlink.call(f"enslave {ifname}", lambda: ipr.link("set", index=idx, master=b, state="up"))
    for a in addrs:
        try:
            address = a.get("local") or a["address"]
            ipr.addr("del", index=idx, address=address, prefixlen=a["prefixlen"])
        except NetlinkError as exc:
            if exc.code not in (errno.EADDRNOTAVAIL, errno.ENOENT):
                raise KernelError(f"move {a['address']}", os.strerror(exc.code), exc.code) from None
    _add_addresses(ipr, b, addrs)
    _add_routes(ipr, b, routes)
    return b


def release(ipr: IPRoute, ifname: str, data: dict[str, Any]) -> None:
    """Undo :func:`enslave` from its journal data: the interface leaves the bridge,
    the bridge goes, addresses and routes come back. Idempotent."""
    idx = netlink.link_index(ipr, ifname)
    bridge = str(data["bridge"])
    if idx is not None:
        netlink.call(f"release {ifname}", lambda: ipr.link("set", index=idx, master=0))
    netlink.link_delete(ipr, bridge)
    if idx is None:
        return
    if data.get("mtu"):
        netlink.call(f"mtu of {ifname}", lambda: ipr.link("set", index=idx, mtu=data["mtu"]))
    netlink.call(f"bring up {ifname}", lambda: ipr.link("set", index=idx, state="up"))
    _add_addresses(ipr, idx, list(data.get("addresses") or []))
    _add_routes(ipr, idx, list(data.get("routes") or []))


def clean_uplink(entry: Entry) -> None:
    with IPRoute() as ipr:
        release(ipr, entry.id, entry.data)
