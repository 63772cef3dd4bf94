"""Does this pnode's uplink carry frames for MAC addresses that are not its own?

Classic mode puts vnode MAC addresses on the physical network. Virtual NICs of
Xen or KVM guests (CloudLab, Chameleon VMs) drop frames addressed to, or sent from,
a MAC the hypervisor did not assign: classic vnetworks then fail silently there.
The probe tells: every pnode listens on its uplink (promiscuous) for a few raw
frames of the local experimental EtherType 0x88B5 while every other pnode sends
them with a foreign source MAC to a foreign (never used) destination MAC, which the
physical network floods. A pnode that hears nobody, or that nobody hears, cannot
do classic mode. ``distem bootstrap`` runs one round over SSH on every machine's
uplink (core/bootstrap/uplink.py) and records the result; the coordinator runs rounds
itself for interfaces nobody probed yet (core/coordinator/networks.py).
"""

from __future__ import annotations

import hashlib
import select
import socket
import struct
import time
from collections.abc import Callable

from pyroute2 import IPRoute

from pydistem.errors import ValidationError

ETHERTYPE = 0x88B5  # IEEE 802 local experimental
DEST_MAC = bytes.fromhex("027064fffffe")  # locally administered, never a source
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
MAGIC = b"pydistem-l2probe"


def _ifindex(ifname: str) -> int:
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise ValidationError("interface", f"this pnode has no interface {ifname!r}") from None


def _listen_on(ifname: str) -> str:
    """A bridge port hands its frames to the bridge: listen on the bridge then.
    (Netlink, not /sys: sysfs shows the namespace of whoever mounted it.)"""
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=ifname)
        if not found:
            raise ValidationError("interface", f"this pnode has no interface {ifname!r}")
        master = ipr.get_links(found[0])[0].get_attr("IFLA_MASTER")
        if not master:
            return ifname
        return str(ipr.get_links(master)[0].get_attr("IFLA_IFNAME"))


def uplink_of(address: str) -> str:
    """The interface holding ``address`` (the one its peers reach this machine through)."""
    with IPRoute() as ipr:
        for a in ipr.get_addr():
            if a.get_attr("IFA_ADDRESS") == address or a.get_attr("IFA_LOCAL") == address:
                return str(ipr.get_links(a["index"])[0].get_attr("IFLA_IFNAME"))
    raise ValidationError("address", f"no interface of this machine holds {address}")


def source_mac(sender: str) -> bytes:
    """A locally administered unicast MAC derived from the sender's id."""
    return b"\x02\x70\x65" + hashlib.sha1(sender.encode()).digest()[:3]


def frame(nonce: str, sender: str) -> bytes:
    payload = MAGIC + b"\0" + nonce.encode() + b"\0" + sender.encode()
    payload = payload.ljust(46, b"\0")
    return DEST_MAC + source_mac(sender) + struct.pack("!H", ETHERTYPE) + payload


def parse(data: bytes, nonce: str) -> str | None:
    """The sender id of a probe frame of this round, or None."""
    body = data[14:]
    if not body.startswith(MAGIC + b"\0"):
        return None
    parts = body[len(MAGIC) + 1 :].rstrip(b"\0").split(b"\0")
    if len(parts) != 2 or parts[0].decode(errors="replace") != nonce:
        return None
    return parts[1].decode(errors="replace")


def listen(
    ifname: str,
    nonce: str,
    expect: int,
    timeout: float,
    *,
    ready: Callable[[], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> list[str]:
    """Senders heard on ``ifname`` (promiscuous) in this round; returns once ``expect``
    distinct senders were heard, ``stop()`` is true (polled every 0.2 s), or after
    ``timeout`` seconds. ``ready()`` is called once the socket receives."""
    where = _listen_on(ifname)
    index = _ifindex(where)
    heard: set[str] = set()
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE)) as s:
        s.bind((where, ETHERTYPE))
        mreq = struct.pack("iHH8s", index, PACKET_MR_PROMISC, 0, b"")
        s.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        if ready is not None:
            ready()
        deadline = time.monotonic() + timeout
        while len(heard) < expect:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop()):
                break
            readable, _, _ = select.select([s], [], [], min(left, 0.2))
            if not readable:
                continue
            sender = parse(s.recv(2048), nonce)
            if sender is not None:
                heard.add(sender)
    return sorted(heard)


def send(ifname: str, nonce: str, sender: str, count: int = 10, interval: float = 0.1) -> None:
    """Send ``count`` probe frames of this round out of ``ifname``."""
    where = _listen_on(ifname)
    _ifindex(where)
    data = frame(nonce, sender)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((where, 0))
        for i in range(count):
            s.send(data)
            if i + 1 < count:
                time.sleep(interval)
