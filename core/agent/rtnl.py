"""Raw rtnetlink for the per-vnode hot path: requests sent as one batch, acks read after.

A vnode's veth (created on its bridge, up, its peer inside the vnode's namespace) is
one request; configuring the inside (loopback up, the address, the interface up) is
one batch of three requests in one ``send``. pyroute2 remains the agent's netlink
library everywhere else; these few messages are encoded here with ``struct`` because
pyroute2 0.9 runs an asyncio event loop for each call, which cost more CPU per vnode
than the kernel's own work (see docs/performance.md).

    with Rtnl() as nl:                      # bound to the calling thread's namespace
        nl.run([newlink_veth("pdv1", "if0", ns_fd, master=3, up=True)], "create veth pdv1")
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from pydistem.errors import KernelError

NETLINK_ROUTE = 0
RTM_NEWLINK = 16
RTM_NEWADDR = 20
RTM_GETADDR = 22
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
IFF_UP = 0x1
NLA_F_NESTED = 0x8000

IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
IFA_ADDRESS = 1
IFA_LOCAL = 2

_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTATTR = struct.Struct("=HH")  # len, type


def _align(n: int) -> int:
    return (n + 3) & ~3


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    raw = _RTATTR.pack(_RTATTR.size + len(payload), kind) + payload
    return raw + b"\0" * (_align(len(raw)) - len(raw))


def _str(value: str) -> bytes:
    return value.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _mac(value: str) -> bytes:
    return bytes(int(x, 16) for x in value.split(":"))


@dataclass(frozen=True)
class Request:
    """One netlink message without its header: type, flags and body."""

    type: int
    flags: int
    body: bytes


def ifinfo(index: int = 0, up: bool | None = None) -> bytes:
    flags = IFF_UP if up else 0
    change = IFF_UP if up is not None else 0
    return _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, change)


def newlink_veth(
    name: str,
    peer: str,
    peer_netns_fd: int,
    *,
    master: int | None = None,
    up: bool = True,
    mtu: int | None = None,
    peer_mac: str | None = None,
) -> Request:
    """Create veth ``name`` here (on bridge ``master``, up) with ``peer`` created in
    the namespace of ``peer_netns_fd``, down: a peer brought up in the same request
    fails with ENOTCONN (the kernel opens it before the pair is linked)."""
    peer_attrs = attr(IFLA_IFNAME, _str(peer)) + attr(IFLA_NET_NS_FD, _u32(peer_netns_fd))
    if mtu is not None:
        peer_attrs += attr(IFLA_MTU, _u32(mtu))
    if peer_mac:
        peer_attrs += attr(IFLA_ADDRESS, _mac(peer_mac))
    info = attr(IFLA_INFO_KIND, _str("veth")) + attr(
        IFLA_INFO_DATA | NLA_F_NESTED,
        attr(VETH_INFO_PEER | NLA_F_NESTED, ifinfo() + peer_attrs),
    )
    body = ifinfo(up=up) + attr(IFLA_IFNAME, _str(name))
    if master is not None:
        body += attr(IFLA_MASTER, _u32(master))
    if mtu is not None:
        body += attr(IFLA_MTU, _u32(mtu))
    body += attr(IFLA_LINKINFO | NLA_F_NESTED, info)
    return Request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)


def setlink(
    index: int, *, up: bool | None = None, mtu: int | None = None, master: int | None = None
) -> Request:
    """Change link ``index``: its state, MTU and/or master (bridge)."""
    body = ifinfo(index, up)
    if mtu is not None:
        body += attr(IFLA_MTU, _u32(mtu))
    if master is not None:
        body += attr(IFLA_MASTER, _u32(master))
    return Request(RTM_NEWLINK, 0, body)


def newaddr(index: int, address: str, prefixlen: int) -> Request:
    """Add (or replace: idempotent) the IPv4 ``address/prefixlen`` on link ``index``."""
    raw = socket.inet_aton(address)
    body = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, 0, index)
    body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
    return Request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, body)


class Rtnl:
    """A NETLINK_ROUTE socket in the namespace of the thread that opens it."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self._seq = 0
        self._lock = threading.Lock()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def run(self, requests: list[Request], ops: list[str] | str) -> None:
        """Send every request in one ``send`` (each asking for an ack), then read the
        acks. Raises KernelError(op, reason, errno) for the first request that failed
        (the kernel still ran the others)."""
        names = [ops] * len(requests) if isinstance(ops, str) else ops
        with self._lock:
            first = self._seq + 1
            out = bytearray()
            for req in requests:
                self._seq += 1
                flags = req.flags | NLM_F_REQUEST | NLM_F_ACK
                out += _NLMSGHDR.pack(_NLMSGHDR.size + len(req.body), req.type, flags, self._seq, 0)
                out += req.body
            self.sock.sendto(out, (0, 0))
            errors = self._acks(first, self._seq)
        if errors:
            seq, code = min(errors.items())
            op = names[seq - first]
            raise KernelError(op, os.strerror(code), code)

    def ipv4_addresses(self) -> list[str]:
        """Every IPv4 address of this namespace's interfaces (``ip -4 addr``), read by
        one dump request."""
        with self._lock:
            self._seq += 1
            seq = self._seq
            body = _IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
            flags = NLM_F_REQUEST | NLM_F_DUMP
            self.sock.sendto(
                _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETADDR, flags, seq, 0) + body,
                (0, 0),
            )
            found: list[str] = []
            while True:
                data = self.sock.recv(65536)
                for kind, got, start, end in _messages(data):
                    if got != seq:
                        continue
                    if kind == NLMSG_DONE:
                        return found
                    if kind == NLMSG_ERROR:
                        code = _error_code(data, start)
                        raise KernelError("list addresses", os.strerror(code), code)
                    if kind == RTM_NEWADDR:
                        found.extend(_ipv4_of(data, start, end))

    def _acks(self, first: int, last: int) -> dict[int, int]:
        """Read until every request numbered first..last is acked: seq -> errno of those
        that failed."""
        pending = set(range(first, last + 1))
        errors: dict[int, int] = {}
        while pending:
            data = self.sock.recv(65536)
            for kind, seq, start, _end in _messages(data):
                if kind == NLMSG_ERROR and seq in pending:
                    pending.discard(seq)
                    code = _error_code(data, start)
                    if code:
                        errors[seq] = code
        return errors


def _messages(data: bytes) -> Iterator[tuple[int, int, int, int]]:
    """(type, sequence number, payload start, payload end) of each netlink message in
    one datagram read from the socket."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return
        yield kind, seq, offset + _NLMSGHDR.size, offset + length
        offset += _align(length)


def _error_code(data: bytes, start: int) -> int:
    """The errno of an NLMSG_ERROR payload (0: an ack)."""
    (code,) = struct.unpack_from("=i", data, start)
    return -code


def _ipv4_of(data: bytes, start: int, end: int) -> list[str]:
    """The address of one RTM_NEWADDR message (IFA_LOCAL, else IFA_ADDRESS)."""
    family = data[start]
    if family != socket.AF_INET:
        return []
    values: dict[int, bytes] = {}
    offset = start + _IFADDRMSG.size
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        values[kind] = data[offset + _RTATTR.size : offset + length]
        offset += _align(length)
    raw = values.get(IFA_LOCAL) or values.get(IFA_ADDRESS)
    return [socket.inet_ntoa(raw)] if raw and len(raw) == 4 else []
