"""The one definition of "every vnode answers", shared by every tool the bench measures.

From inside a probe network namespace (a vnode of the platform itself), send ICMP echo
requests to every vnode address over a raw socket and wait until each one has replied
once. The same code runs against pydistem, Mininet and the kernel floor, so their
times differ only by what the tool did before the first echo.

Standard library only: the Mininet script imports it under Debian's system python3.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Sequence

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

#: echo requests in flight at once (each unresolved one costs an ARP broadcast to
#: every port of the bridge, so an unbounded burst only measures the broadcast storm)
WINDOW = 64
#: a vnode that has not answered is asked again after this long (ARP retries take 1 s)
RETRY_S = 0.25


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int) -> bytes:
    payload = b"pydistem-bench"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    csum = _checksum(header + payload)
    return struct.pack("!BBHHH", 8, 0, csum, ident, seq) + payload


def _ping_all(addresses: Sequence[str], timeout: float) -> dict[str, object]:
    ident = (os.getpid() ^ threading.get_native_id()) & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    pending = {addr: i & 0xFFFF for i, addr in enumerate(addresses)}
    sent_at: dict[str, float] = {}
    answered: dict[str, float] = {}
    start = time.monotonic()
    deadline = start + timeout
    sent = 0
    poller = select.poll()  # not select(): Mininet's process has fds past 1024
    poller.register(sock, select.POLLIN)
    try:
        while pending and time.monotonic() < deadline:
            now = time.monotonic()
            in_flight = sum(1 for a in pending if now - sent_at.get(a, -1e9) < RETRY_S)
            for addr, seq in pending.items():
                if in_flight >= WINDOW:
                    break
                if now - sent_at.get(addr, -1e9) < RETRY_S:
                    continue
                try:
                    sock.sendto(echo_request(ident, seq), (addr, 0))
                    sent += 1
                except (BlockingIOError, OSError):
                    pass  # neighbour queue full or unreachable yet: ask again later
                sent_at[addr] = now
                in_flight += 1
            ready = poller.poll(5)
            while ready:
                try:
                    packet, (src, _) = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                ihl = (packet[0] & 0x0F) * 4
                kind, _, _, rid, _ = struct.unpack("!BBHHH", packet[ihl : ihl + 8])
                if kind == 0 and rid == ident and src in pending:
                    del pending[src]
                    answered[src] = time.monotonic() - start
    finally:
        sock.close()
    return {
        "answered": len(answered),
        "missing": sorted(pending),
        "seconds": time.monotonic() - start,
        "echo_requests": sent,
    }


def ping_all(netns_path: str, addresses: Sequence[str], timeout: float = 120.0) -> dict:
    """From the network namespace at ``netns_path`` (``/run/netns/x`` or
    ``/proc/<pid>/ns/net``), wait until every address answered one ICMP echo.

    Returns ``{"answered": n, "missing": [...], "seconds": s, "echo_requests": k}``.
    Runs in a thread of its own that moves into the namespace, so the caller's
    namespace never changes.
    """
    out: dict = {}
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            fd = os.open(netns_path, os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns_path}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out.update(_ping_all(addresses, timeout))
        except BaseException as exc:  # handed to the caller's thread below
            failure.append(exc)

    t = threading.Thread(target=worker, name="bench-probe")
    t.start()
    t.join()
    if failure:
        raise failure[0]
    return out
