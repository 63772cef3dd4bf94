"""Agent work inside vnodes that already run: Distem's global /etc/hosts and ARP
tables, per-peer latencies, routes, the rootfs tarball and TCP port polls.

Each reaches into the vnodes' namespaces (or runtimes) on this pnode, in parallel where
it is per vnode, and reports an error per vnode instead of stopping at the first.
:class:`InsideVnodes` is a mixin of :class:`pydistem.agent.service.Agent`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyroute2 import IPRoute

from pydistem.agent import etchosts, neighbours, netlink, ports, vnode_routes
from pydistem.agent.journal import Journal
from pydistem.errors import KernelError
from pydistem.model.specs import VNode

if TYPE_CHECKING:
    from pydistem.plugins.runtimes.base import Runtime, VNodeContext


class InsideVnodes:
    """Operations on the running vnodes of this pnode, for the Agent."""

    etc_hosts_path: Path
    tag: str
    journal: Journal
    _vnodes: dict[str, VNode]
    _pool: ThreadPoolExecutor

    if TYPE_CHECKING:  # provided by the Agent

        def runtime(self, name: str, field: str = "runtime") -> Runtime: ...
        def shaper(self) -> Any: ...
        def netns_name(self, vnode: str) -> str: ...
        def veth_name(self, vnode: str, viface: str) -> str: ...
        def _ctx(self, vnode: VNode, etc_hosts: str = "") -> VNodeContext: ...
        def _get(self, name: str) -> VNode: ...
        def _parallel(
            self, items: list[Any], fn: Callable[[Any], None], key: Callable[[Any], str]
        ) -> dict[str, str | None]: ...

    def _running(self) -> list[VNode]:
        return [
            v
            for v in list(self._vnodes.values())
            if self.runtime(v.runtime).is_running(self._ctx(v))
        ]

    def etc_hosts_set(self, vnode_hosts: str, pnode_lines: list[str]) -> dict[str, str | None]:
        """Distem's global /etc/hosts: ``vnode_hosts`` becomes /etc/hosts of every running
        vnode here, ``pnode_lines`` the marked block of this pnode's own hosts file
        (journaled: ``clean`` removes the block). Idempotent. Returns vnode -> error."""
        etchosts.write_block(self.etc_hosts_path, self.tag, pnode_lines, self.journal)

        def one(v: VNode) -> None:
            argv = ["/bin/sh", "-c", "cat > /etc/hosts"]
            res = self.runtime(v.runtime).execute(self._ctx(v), argv, 30, vnode_hosts.encode())
            if res.exit_code != 0:
                raise KernelError(f"write /etc/hosts in {v.name}", res.stderr.strip())

        return self._parallel(self._running(), one, lambda v: v.name)

    def vifaces_macs(self) -> dict[str, dict[str, str]]:
        """vnode -> viface -> MAC address, for every running vnode here."""
        out: dict[str, dict[str, str]] = {}
        for v in self._running():
            names = [i.name for i in v.vifaces if i.vnetwork]

            def read(ipr: IPRoute, names: list[str] = names) -> dict[str, str]:
                macs = {n: neighbours.mac_of(ipr, n) for n in names}
                return {n: m for n, m in macs.items() if m}

            path = netlink.netns_path(self.netns_name(v.name))
            out[v.name] = netlink.run_in_netns(path, read)
        return out

    def arp_fill(self, entries: list[dict[str, str]]) -> dict[str, str | None]:
        """Distem's global ARP table: in every running vnode here, a permanent neighbour
        entry for each peer of ``entries`` (``{vnetwork, address, mac}``) on the same
        vnetwork. Idempotent. Returns vnode -> error."""

        def one(v: VNode) -> None:
            def inside(ipr: IPRoute) -> None:
                for vif in v.vifaces:
                    peers = [
                        (e["address"], e["mac"])
                        for e in entries
                        if e["vnetwork"] == vif.vnetwork and e["address"] != vif.address
                    ]
                    if vif.vnetwork:
                        neighbours.fill(ipr, vif.name, peers)

            netlink.run_in_netns(netlink.netns_path(self.netns_name(v.name)), inside)

        return self._parallel(self._running(), one, lambda v: v.name)

    def peers_latencies(self, rules: dict[str, dict[str, Any]]) -> None:
        """Distem's ``set_peers_latencies``: ``rules`` maps a vnode to ``{"viface": name,
        "latencies": {dest_ip: "10ms"}}``; what it sends to each destination gets that
        latency (an empty mapping removes them). One vnode after the other: the first
        one raises Unsupported (naming the missing kernel module) before anything is
        changed; NotFound for an unknown vnode. Idempotent."""
        for name in rules:
            self._get(name)
        for name, rule in rules.items():
            host = self.veth_name(name, str(rule["viface"]))
            self.shaper().apply_peer_latencies(host, dict(rule["latencies"]), self.journal)

    def vnodes_routes(self, plan: dict[str, dict[str, Any]]) -> dict[str, str | None]:
        """Install routes in running vnodes: ``{vnode: {"routes": [{"destination":
        CIDR, "gateway": IP}], "forward": bool | None}}``; ``forward`` turns IPv4
        forwarding in the vnode on (a gateway) or off; None or absent leaves it.
        Routes are replaced, so this is idempotent."""

        def one(name: str) -> None:
            self._get(name)
            item = plan[name]
            path = netlink.netns_path(self.netns_name(name))
            forward = item.get("forward")
            vnode_routes.install(
                path, list(item.get("routes") or []), None if forward is None else bool(forward)
            )

        return self._parallel(list(plan), one, lambda n: n)

    def vnode_rootfs_archive(self, name: str, dest: Path) -> None:
        """Write a gzip tarball of the running vnode's root filesystem to ``dest``
        (see :meth:`Runtime.rootfs_archive`). NotFound, Conflict, Unsupported."""
        v = self._get(name)
        self.runtime(v.runtime).rootfs_archive(self._ctx(v), dest)

    def vnodes_port_open(self, names: list[str], port: int) -> dict[str, bool]:
        """vnode -> whether TCP ``port`` is open on its default address (127.0.0.1 for
        a vnode with no viface), tried from inside its network namespace; a vnode
        not running here is False. Sends nothing outside the vnodes' namespaces."""

        def one(name: str) -> tuple[str, bool]:
            v = self._vnodes.get(name)
            if v is None or not self.runtime(v.runtime).is_running(self._ctx(v)):
                return name, False
            default = v.default_viface()
            address = default.address if default and default.address else "127.0.0.1"
            path = netlink.netns_path(self.netns_name(name))
            return name, ports.port_open(path, address, port)

        return dict(self._pool.map(one, names))
