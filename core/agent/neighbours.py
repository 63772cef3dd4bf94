"""Distem's global ARP table inside a vnode: permanent neighbour entries for its peers.

Entries live in the vnode's network namespace and vanish with it: nothing to journal.
"""

from __future__ import annotations

from collections.abc import Iterable

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pydistem.errors import KernelError, NotFound

#: NUD_PERMANENT: never expires, never re-resolved
NUD_PERMANENT = 0x80


def mac_of(ipr: IPRoute, ifname: str) -> str | None:
    """The MAC address of ``ifname`` in the namespace of ``ipr`` (None if absent)."""
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        return None
    (link,) = ipr.get_links(found[0])
    mac = link.get_attr("IFLA_ADDRESS")
    return str(mac) if mac else None


def fill(ipr: IPRoute, ifname: str, peers: Iterable[tuple[str, str]]) -> int:
    """Set a permanent entry ``address -> mac`` on ``ifname`` for each peer. Idempotent.

    Raises NotFound when ``ifname`` is absent, KernelError when the kernel refuses."""
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NotFound("link", ifname)
    n = 0
    for address, mac in peers:
        try:
            ipr.neigh("replace", dst=address, lladdr=mac, ifindex=found[0], state=NUD_PERMANENT)
        except NetlinkError as exc:
            raise KernelError(f"neigh replace {address} dev {ifname}", str(exc), exc.code) from exc
        n += 1
    return n
