"""Routes inside one vnode (vroutes, and the default route through its vnetwork's
``gateway``), and IPv4 forwarding in gateways.

The coordinator computes them (core/coordinator/vroutes.py); the agent installs
them in the vnode's network namespace. Everything lives in that namespace, so
removing the vnode removes it: there is nothing to journal.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.rtmsg import RTNH_F_ONLINK

from pydistem.agent import netlink
from pydistem.errors import KernelError

IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


def install(netns: str, routes: list[dict[str, Any]], forward: bool | None) -> None:
    """In the namespace at ``netns``: ``ip route replace DEST via GATEWAY [dev DEVICE]
    [onlink]`` for each route (``device`` and ``onlink`` optional; ``onlink`` needs
    ``device``), and ``net.ipv4.ip_forward`` set to 1 (``forward`` true) or 0 (false;
    None leaves it as it is). Idempotent. KernelError names the route."""

    def inside(ipr: IPRoute) -> None:
        for r in routes:
            net = ipaddress.IPv4Network(str(r["destination"]))
            what = f"route {net} via {r['gateway']}"
            extra: dict[str, Any] = {}
            if r.get("device"):
                what += f" dev {r['device']}"
                found = ipr.link_lookup(ifname=str(r["device"]))
                if not found:
                    raise KernelError(what, "no such interface in the vnode", errno.ENODEV)
                extra["oif"] = found[0]
            if r.get("onlink"):
                what += " onlink"
                extra["flags"] = RTNH_F_ONLINK
            try:
                ipr.route(
                    "replace",
                    dst=str(net.network_address),
                    dst_len=net.prefixlen,
                    gateway=str(r["gateway"]),
                    **extra,
                )
            except NetlinkError as exc:
                reason = os.strerror(exc.code)
                if exc.code == errno.ENETUNREACH:
                    reason += f" (gateway {r['gateway']} is on no vnetwork of this vnode)"
                raise KernelError(what, reason, exc.code) from None

    netlink.run_in_netns(netns, inside)
    if forward is not None:
        # /proc/sys/net belongs to the network namespace of the thread that opens it
        with netlink.in_netns(netns):
            IP_FORWARD.write_text("1\n" if forward else "0\n")
