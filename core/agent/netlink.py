"""Network namespaces, bridges and links through netlink (pyroute2), nothing else.

Namespaces are created without forking: the calling thread unshares its own network
namespace, bind-mounts it under /run/netns and comes back (:func:`netns_entered`).
Work inside a vnode's namespace happens in :func:`in_netns`, which moves the calling
thread there and back. Every function that creates an object journals it first.
(The per-vnode veth and addresses are raw batched requests: rtnl.py.)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno as errno_mod
import os
import socket
import threading
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pydistem.agent.journal import Entry, Journal
from pydistem.errors import KernelError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)
T = TypeVar("T")


def _check(rc: int, op: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise KernelError(op, os.strerror(err), err)


def _setns(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    target = os.open(path, os.O_RDONLY)
    try:
        _check(_libc.setns(target, CLONE_NEWNET), f"setns {path}")
    finally:
        os.close(target)


def netns_path(name: str) -> str:
    return str(NETNS_DIR / name)


@contextlib.contextmanager
def netns_entered(name: str, journal: Journal) -> Iterator[int]:
    """Create the named namespace if missing (idempotent, journaled) and keep the calling
    thread inside it for the block; yields a descriptor of the namespace (valid in the
    block). No thread is started: this one unshares, and comes back to its own
    namespace afterwards. A new namespace gets IPv6 disabled (vnodes are IPv4-only, as
    Distem's vnetworks): no router solicitation, DAD or MLD report is flooded to every
    port of the vnetwork when its interface comes up, which made a start of N vnodes
    on one bridge O(N²) in the kernel."""
    path = NETNS_DIR / name
    journal.add("netns", str(path))
    own = f"/proc/self/task/{threading.get_native_id()}/ns/net"
    home = os.open(own, os.O_RDONLY)
    try:
        if path.exists() and os.path.ismount(path):
            _setns(str(path))
        else:
            NETNS_DIR.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            try:
                _check(_libc.unshare(CLONE_NEWNET), f"unshare netns {name}")
            except KernelError:
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
            try:
                _check(
                    _libc.mount(own.encode(), str(path).encode(), None, MS_BIND, None),
                    f"bind netns {name}",
                )
            except KernelError:
                _check(_libc.setns(home, CLONE_NEWNET), "setns back")
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
            _ipv6_off()
        try:
            fd = os.open(own, os.O_RDONLY)
            try:
                yield fd
            finally:
                os.close(fd)
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    finally:
        os.close(home)


#: per namespace: /proc/sys/net answers for the namespace of the thread that opens it
IPV6_OFF = Path("/proc/sys/net/ipv6/conf/all/disable_ipv6")


def _ipv6_off() -> None:
    """Disable IPv6 on every interface, present and future (``all`` also sets
    ``default``), of the calling thread's namespace; nothing if IPv6 is not built in."""
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(IPV6_OFF, os.O_WRONLY)
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)


def netns_delete(path: str) -> None:
    """Unmount and remove a namespace file (idempotent)."""
    if os.path.ismount(path):
        _check(_libc.umount2(path.encode(), MNT_DETACH), f"umount {path}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def clean_netns(entry: Entry) -> None:
    netns_delete(entry.id)


@contextlib.contextmanager
def in_netns(path: str) -> Iterator[None]:
    """Move the calling thread into the namespace at ``path``, and back afterwards.

    Only this thread moves; sockets opened meanwhile stay bound to that namespace.
    """
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    try:
        _setns(path)
        try:
            yield
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    finally:
        os.close(home)


#: the network namespace (inode) each socket made by open_ipr() is bound to
_SOCKET_NS: weakref.WeakKeyDictionary[IPRoute, int] = weakref.WeakKeyDictionary()


def _thread_netns() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def open_ipr() -> IPRoute:
    """An IPRoute socket in the calling thread's namespace, remembered as such so that
    :func:`link_index` can answer by ioctl instead of a netlink round trip."""
    ipr = IPRoute()
    _SOCKET_NS[ipr] = _thread_netns()
    return ipr


def run_in_netns(path: str, fn: Callable[[IPRoute], T]) -> T:
    """Call ``fn`` with an IPRoute socket opened inside the namespace at ``path``; the
    calling thread stays in that namespace while ``fn`` runs, and comes back."""
    with in_netns(path):
        ipr = open_ipr()
        try:
            return fn(ipr)
        finally:
            ipr.close()


def _nl(op: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except NetlinkError as exc:
        raise KernelError(op, os.strerror(exc.code) if exc.code else str(exc), exc.code) from None


#: public name of the wrapper: run a netlink call, raise KernelError(op, reason, errno)
call = _nl


def link_index(ipr: IPRoute, ifname: str) -> int | None:
    """The index of link ``ifname`` in the namespace of ``ipr``, or None.

    When ``ipr`` came from :func:`open_ipr` and the calling thread is in its namespace,
    one ioctl (``if_nametoindex``) answers: a netlink lookup decodes the whole link
    message, which was the agent's largest CPU cost per vnode."""
    if _SOCKET_NS.get(ipr) == _thread_netns():
        try:
            return socket.if_nametoindex(ifname)
        except OSError:
            return None
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def index_here(ifname: str) -> int | None:
    """The index of link ``ifname`` in the calling thread's namespace, or None: one
    ioctl, no netlink socket needed (the per-vnode path opens none of pyroute2's)."""
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        return None


def bridge_ensure(ipr: IPRoute, name: str, journal: Journal) -> int:
    """Create bridge ``name`` if missing, bring it up; return its index. Idempotent."""
    journal.add("link", name, type="bridge")
    idx = link_index(ipr, name)
    if idx is None:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as exc:
            if exc.code != errno_mod.EEXIST:
                raise KernelError(
                    f"create bridge {name}", os.strerror(exc.code), exc.code
                ) from None
        idx = link_index(ipr, name)
        assert idx is not None
    _nl(f"bring up bridge {name}", lambda: ipr.link("set", index=idx, state="up"))
    return idx


def link_delete(ipr: IPRoute, name: str) -> None:
    """Delete a link by name if it exists (idempotent)."""
    idx = link_index(ipr, name)
    if idx is None:
        return
    try:
        ipr.link("del", index=idx)
    except NetlinkError as exc:
        if exc.code not in (errno_mod.ENODEV, errno_mod.ENOENT):
            raise KernelError(f"delete link {name}", os.strerror(exc.code), exc.code) from None


def clean_link(entry: Entry) -> None:
    with IPRoute() as ipr:
        link_delete(ipr, entry.id)


def set_state(ipr: IPRoute, index: int, name: str, state: str) -> None:
    """Set link ``name`` (``index``) ``up`` or ``down``; KernelError on failure."""
    _nl(f"set {name} {state}", lambda: ipr.link("set", index=index, state=state))


def cleaners() -> dict[str, Callable[[Entry], None]]:
    return {"netns": clean_netns, "link": clean_link}
