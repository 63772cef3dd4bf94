"""The kernel floor: the same kernel objects as a pydistem deploy, made by the shortest
sequence of netlink calls we know, in one process and one thread.

One bridge; per vnode a network namespace (unshare + bind mount on /run/netns, no
fork) with IPv6 disabled in it (as pydistem's agent does: vnodes are IPv4-only), a
veth pair whose peer is created directly inside it, enslaved to the bridge and up in
the same request, and inside, in one batch (one ``send``, three acks): lo up, the
address, the interface up. The requests are packed by hand
(``pydistem.agent.rtnl``, the encoder pydistem's agent uses on this path; pyroute2
0.9 spends more CPU per call than the kernel does). With ``--shaped``, the
same tc objects pydistem's htb shaper makes for a bandwidth limit on both
directions: an HTB tree on the host end (what the vnode receives), an ifb with the
same tree, and an ingress qdisc whose u32 match-all filter redirects (mirred) what
the vnode sends to the ifb. No journal, no state, no checks: nothing a real tool
could skip is left out, and nothing more is done.

    python bench/floor.py N [--shaped]   (prints one BENCH-RESULT JSON line)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import secrets
import socket
import sys
import threading
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import TC_H_INGRESS

from pydistem.agent import rtnl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    PREFIXLEN,
    Stopwatch,
    emit,
    probe_address,
    raised_sysctls,
    vnode_addresses,
    wait_links_gone,
)
from probe import ping_all

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
NETNS = Path("/run/netns")
#: per namespace: /proc/sys/net answers for the namespace of the thread that opens it
IPV6_OFF = "/proc/sys/net/ipv6/conf/all/disable_ipv6"
_libc = ctypes.CDLL(None, use_errno=True)

# the parameters pydistem's htb shaper uses for a 100mbit cap (plugins/shapers/plan.py)
HTB_CLASS = {"rate": "100mbit", "ceil": "100mbit", "burst": 14014, "cburst": 14014}
FIFO_LIMIT = 826


def _ok(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class Floor:
    """Builds and removes the platform; remembers every name it made, for cleanup."""

    def __init__(self, n: int, shaped: bool) -> None:
        self.n = n
        self.shaped = shaped
        self.tag = secrets.token_hex(2)
        self.bridge = f"fb{self.tag}"
        self.namespaces: list[Path] = []
        self.links: list[str] = []

    def veth(self, i: int) -> str:
        return f"fv{self.tag}{i:x}"

    def ifb(self, i: int) -> str:
        return f"fi{self.tag}{i:x}"

    # -------------------------------------------------------------- build
    def _shape(self, ipr: IPRoute, host: int, i: int) -> None:
        def tree(index: int) -> None:
            ipr.tc("add", "htb", index, handle=0x10000, default=2)
            ipr.tc("add-class", "htb", index, handle=0x10001, parent=0x10000, **HTB_CLASS)
            ipr.tc("add-class", "htb", index, handle=0x10002, parent=0x10001, **HTB_CLASS)
            ipr.tc("add", "pfifo", index, handle=0x200000, parent=0x10002, limit=FIFO_LIMIT)

        tree(host)
        ifb = self.ifb(i)
        self.links.append(ifb)
        ipr.link("add", ifname=ifb, kind="ifb")
        (ifb_index,) = ipr.link_lookup(ifname=ifb)
        ipr.link("set", index=ifb_index, state="up")
        tree(ifb_index)
        ipr.tc("add", "ingress", host, handle=0xFFFF0000, parent=TC_H_INGRESS)
        ipr.tc(
            "add-filter",
            "u32",
            host,
            parent=0xFFFF0000,
            protocol=3,  # ETH_P_ALL
            prio=1,
            target=0x10001,
            keys=["0x0/0x0+0"],
            action={
                "kind": "mirred",
                "direction": "egress",
                "action": "redirect",
                "ifindex": ifb_index,
            },
        )

    def build(self, addresses: list[str]) -> None:
        """Runs in one thread that moves from each new namespace to the next."""
        ipr = IPRoute()  # bound to the root namespace for good
        nl = rtnl.Rtnl()  # likewise
        try:
            self.links.append(self.bridge)
            ipr.link("add", ifname=self.bridge, kind="bridge")
            (bridge,) = ipr.link_lookup(ifname=self.bridge)
            ipr.link("set", index=bridge, state="up")
            NETNS.mkdir(exist_ok=True)
            tid = threading.get_native_id()
            for i, address in enumerate(addresses):
                path = NETNS / f"fl{self.tag}-{i}"
                path.touch()
                self.namespaces.append(path)
                _ok(_libc.unshare(CLONE_NEWNET), "unshare")
                own = f"/proc/self/task/{tid}/ns/net".encode()
                _ok(_libc.mount(own, str(path).encode(), None, MS_BIND, None), "bind netns")
                # IPv6 off in the namespace, as pydistem's agent does (vnodes are IPv4)
                with contextlib.suppress(FileNotFoundError), open(IPV6_OFF, "w") as f:
                    f.write("1")
                host_name = self.veth(i)
                self.links.append(host_name)
                fd = os.open(own, os.O_RDONLY)
                try:
                    nl.run([rtnl.newlink_veth(host_name, "if0", fd, master=bridge)], "veth")
                finally:
                    os.close(fd)
                if self.shaped:
                    # this thread is in the vnode's namespace: ask the root's socket
                    (host,) = ipr.link_lookup(ifname=host_name)
                    self._shape(ipr, host, i)
                with rtnl.Rtnl() as inside:  # opened in the new namespace
                    if0 = socket.if_nametoindex("if0")
                    inside.run(
                        [
                            rtnl.setlink(1, up=True),  # lo
                            rtnl.newaddr(if0, address, PREFIXLEN),
                            rtnl.setlink(if0, up=True),
                        ],
                        "inside",
                    )
        finally:
            nl.close()
            ipr.close()

    # -------------------------------------------------------------- teardown
    def teardown(self) -> None:
        """Delete every link made (veths take their peers along), then the namespaces."""
        with IPRoute() as ipr:
            for name in reversed(self.links):
                with contextlib.suppress(Exception):
                    ipr.link("del", ifname=name)
        for path in reversed(self.namespaces):
            with contextlib.suppress(OSError):
                _libc.umount2(str(path).encode(), MNT_DETACH)
                path.unlink()
        self.links.clear()
        self.namespaces.clear()


def in_thread(fn, *args) -> None:  # type: ignore[no-untyped-def]
    """Run ``fn`` in a fresh thread (the namespaces it enters die with it)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            failure.append(exc)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if failure:
        raise failure[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("n", type=int)
    p.add_argument("--shaped", action="store_true")
    args = p.parse_args(argv)
    floor = Floor(args.n, args.shaped)
    addresses = vnode_addresses(args.n)
    result: dict = {"tool": "floor", "runtime": "netns", "n": args.n, "shaped": args.shaped}
    with raised_sysctls(args.n + 1):
        try:
            with Stopwatch() as up:
                in_thread(floor.build, [*addresses, probe_address()])
                probe = ping_all(str(floor.namespaces[-1]), addresses)
            result.update(up_s=up.seconds, probe=probe)
        finally:
            with Stopwatch() as down:
                floor.teardown()
                wait_links_gone(f"fv{floor.tag}")
            result["teardown_s"] = down.seconds
    emit(result)
    return 0 if not result["probe"]["missing"] else 1


if __name__ == "__main__":
    sys.exit(main())
