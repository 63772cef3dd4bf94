"""The pnode agent: the only code that touches a kernel.

It builds what the coordinator asks for on this pnode — vnetwork bridges, vnode
namespaces, veth pairs, containers through runtime plugins, shaping through a
shaper plugin — journals every object first, and removes exactly those objects
on ``clean``. Work on many vnodes runs in parallel threads.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from pydistem.agent import (
    etchosts,
    l2probe,
    netlink,
    rtnl,
    sysctl,
    uplink,
    vxlan,
)
from pydistem.agent.cgroups import clean_cgroup
from pydistem.agent.inside_vnodes import InsideVnodes
from pydistem.agent.journal import Entry, Journal
from pydistem.agent.limits import LimitsKeeper, check_field
from pydistem.agent.plugins import load_limiter, load_runtime, load_shaper
from pydistem.agent.probes import ProbeSet
from pydistem.errors import Conflict, KernelError, NotFound, PydistemError, ValidationError
from pydistem.model.limits import CpuLimit, DiskThrottle, MemoryLimit
from pydistem.model.probes import Probe
from pydistem.model.specs import Traffic, VIface, VNetwork, VNode
from pydistem.plugins.runtimes.base import ExecResult, Runtime, VNodeContext
from pydistem.state.store import Store

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = Path("/var/lib/pydistem/agent")


def _h8(*parts: str) -> str:
    return hashlib.sha1("\0".join(parts).encode()).hexdigest()[:8]


@dataclass
class CleanReport:
    """What ``clean`` removed, and what it could not remove (with the reason)."""

    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


class Agent(InsideVnodes):
    """Drives this pnode's kernel for one coordinator.

    ``tag`` makes every kernel name of this agent unique on the machine, so that
    several agents (e.g. test hosts in namespaces) never touch each other's objects.
    """

    #: the pnode's hosts file, where Distem's global /etc/hosts puts its marked block
    etc_hosts_path = Path("/etc/hosts")

    def __init__(
        self,
        state_dir: str | Path = DEFAULT_STATE_DIR,
        tag: str = "a",
        runtimes: dict[str, Runtime] | None = None,
        max_workers: int = 16,
    ) -> None:
        if not tag.isalnum() or len(tag) > 6:
            raise ValidationError("tag", f"{tag!r}: 1-6 letters or digits")
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tag = tag
        self.journal = Journal(self.state_dir / "journal.jsonl")
        self._runtimes: dict[str, Runtime] = dict(runtimes or {})
        self._shaper: Any = None
        self._runtime_names: list[str] | None = None  # read once by warm_up()
        self._lock = threading.RLock()
        self._local = threading.local()
        self._sockets: list[IPRoute | rtnl.Rtnl] = []
        self._pool = ThreadPoolExecutor(max(1, max_workers), thread_name_prefix="agent")
        # starting a vnode of a kernel-bound runtime (netns) is namespace and link
        # changes, which the kernel serialises on its rtnl lock: more at once than cores
        # only contend for it and the GIL. Others (lxc-start) and removals, which wait
        # on processes and RCU grace periods, use the whole pool.
        self._kernel_slots = threading.BoundedSemaphore(os.cpu_count() or 1)
        self._vnets: dict[str, VNetwork] = {}
        self._vnodes: dict[str, VNode] = {}
        self.limits = LimitsKeeper(load_limiter)
        self.probes = ProbeSet()
        # the vnode specs: one SQLite file, one transaction per batch of starts, instead
        # of a folder and a file per vnode (file creation was a third of a netns start)
        self._specs = Store(self.state_dir / "vnodes.sqlite")
        self._load_state()

    # ------------------------------------------------------------------ naming
    def netns_name(self, vnode: str) -> str:
        return f"pd{self.tag}-{vnode}"

    def bridge_name(self, vnet: str) -> str:
        return f"pdb{_h8(self.tag, vnet)}"

    def vxlan_name(self, vnet: str) -> str:
        return f"pdx{_h8(self.tag, vnet)}"

    def uplink_bridge_name(self, ifname: str) -> str:
        return f"pdu{_h8(self.tag, ifname)}"

    def _bridge_of(self, vnet: VNetwork) -> str:
        """Classic vnetworks on one root interface share its bridge; others own one."""
        if vnet.network_type != "vxlan" and vnet.root_interface:
            if uplink.is_bridge(self._ipr(), vnet.root_interface):
                return vnet.root_interface  # already a bridge: used as it is
            return self.uplink_bridge_name(vnet.root_interface)
        return self.bridge_name(vnet.name)

    def veth_name(self, vnode: str, viface: str) -> str:
        return f"pdv{_h8(self.tag, vnode, viface)}"

    def _workdir(self, vnode: str) -> Path:
        return self.state_dir / "vnodes" / vnode

    # ------------------------------------------------------------------ state
    def _load_state(self) -> None:
        nets = self.state_dir / "vnetworks.json"
        if nets.exists():
            for raw in json.loads(nets.read_text()):
                v = VNetwork.model_validate(raw)
                self._vnets[v.name] = v
        for _name, doc in self._specs.all("vnode"):
            v = VNode.model_validate(doc)
            self._vnodes[v.name] = v
            self.limits.load(v.name, self._workdir(v.name))
        vdir = self.state_dir / "vnodes"
        if vdir.is_dir():  # specs written by versions before 2026-12-04, one file each
            for spec in vdir.glob("*/spec.json"):
                v = VNode.model_validate_json(spec.read_text())
                if v.name not in self._vnodes:
                    self._vnodes[v.name] = v
                    self._save_spec(v)
                    self.limits.load(v.name, spec.parent)
                spec.unlink()

    def _save_spec(self, *vnodes: VNode) -> None:
        """Record vnode specs (one transaction), so that a restarted agent knows them."""
        self._specs.put_many("vnode", [(v.name, v.model_dump(mode="json")) for v in vnodes])

    def _ensure_workdir(self, vnode: VNode) -> Path:
        """The vnode's folder, made now (journaled) if missing."""
        workdir = self._workdir(vnode.name)
        if not workdir.is_dir():
            self.journal.add("dir", str(workdir))
            workdir.mkdir(parents=True, exist_ok=True)
        return workdir

    def _save_vnets(self) -> None:
        tmp = self.state_dir / "vnetworks.json.tmp"
        tmp.write_text(json.dumps([v.model_dump() for v in self._vnets.values()]))
        os.replace(tmp, self.state_dir / "vnetworks.json")

    def _rtnl(self) -> rtnl.Rtnl:
        """A raw host-namespace rtnetlink socket per worker thread (the per-vnode path)."""
        nl = getattr(self._local, "rtnl", None)
        if nl is None:
            nl = rtnl.Rtnl()
            self._local.rtnl = nl
            with self._lock:
                self._sockets.append(nl)
        return nl

    def _ipr(self) -> IPRoute:
        """A host-namespace netlink socket per worker thread."""
        ipr = getattr(self._local, "ipr", None)
        if ipr is None:
            ipr = netlink.open_ipr()
            self._local.ipr = ipr
            with self._lock:
                self._sockets.append(ipr)
        return ipr

    # ------------------------------------------------------------------ plugins
    def runtime(self, name: str, field: str = "runtime") -> Runtime:
        with self._lock:
            if name not in self._runtimes:
                self._runtimes[name] = load_runtime(name, self.state_dir, self.journal, field)
            return self._runtimes[name]

    def shaper(self) -> Any:
        with self._lock:
            if self._shaper is None:
                self._shaper = load_shaper("htb")
            return self._shaper

    def warm_up(self) -> dict[str, str]:
        """Load every installed runtime, the shaper and the limiter now (``distemd``
        calls it before serving), so that the first deploy does not pay for entry-point
        scans and imports. Drivers that fail stay unloaded (loaded, and reported, when
        first needed). Returns driver -> why it failed. Idempotent."""
        from pydistem.agent.plugins import runtime_names

        failed: dict[str, str] = {}
        self._runtime_names = runtime_names()  # plugins installed later need a restart
        loaders: list[tuple[str, Callable[[], Any]]] = [
            *((f"runtime {n}", lambda n=n: self.runtime(n)) for n in self._runtime_names),
            ("shaper htb", self.shaper),
            ("limiter", lambda: self.limits.limiter),
            ("pnode facts", self.info),  # the first call reads CPU facts and imports
        ]
        for name, load in loaders:
            try:
                load()
            except PydistemError as exc:
                failed[name] = exc.message
        return failed

    # ------------------------------------------------------------------ info
    def info(self) -> dict[str, Any]:
        """Facts about this pnode: hostname, cores, memory, kernel, runtimes."""
        mem_kb = 0
        with contextlib.suppress(OSError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
        from pydistem.agent.plugins import runtime_names

        mhz = 0.0
        with contextlib.suppress(PydistemError):
            mhz = self.limits.limiter.host().mhz
        return {
            "hostname": socket.gethostname(),
            "cores": os.cpu_count() or 1,
            "cpu_mhz": mhz,
            "memory_mb": mem_kb // 1024,
            "kernel": os.uname().release,
            "runtimes": self._runtime_names or runtime_names(),
            "tag": self.tag,
            "vnodes": sorted(self._vnodes),
            "vnetworks": sorted(self._vnets),
            "addresses": self.addresses(),
        }

    def addresses(self) -> list[str]:
        """The IPv4 addresses of this pnode's interfaces (its network namespace)."""
        return sorted(set(self._rtnl().ipv4_addresses()))

    def underlay_address(self, toward: str) -> str:
        """The source address this pnode uses to reach ``toward`` (its VXLAN endpoint)."""
        try:
            (route,) = self._ipr().route("get", dst=toward)[:1]
        except (ValueError, OSError) as exc:
            reason = f"no route from this pnode to {toward}: {exc}"
            raise ValidationError("toward", reason) from None
        src = route.get_attr("RTA_PREFSRC")
        if not src:
            raise ValidationError("toward", f"no source address toward {toward}")
        return str(src)

    # ------------------------------------------------------------------ L2 probe
    def l2_listen(self, interface: str, nonce: str, expect: int, timeout: float) -> list[str]:
        """Probe frames of round ``nonce`` heard on ``interface`` (see l2probe)."""
        return l2probe.listen(interface, nonce, expect, min(timeout, 30.0))

    def l2_send(self, interface: str, nonce: str, sender: str) -> None:
        """Send probe frames of round ``nonce`` with a foreign MAC (see l2probe)."""
        l2probe.send(interface, nonce, sender)

    # ------------------------------------------------------------------ vnetworks
    def vnetwork_create(self, vnet: VNetwork, peers: list[str] | None = None) -> None:
        """Build the vnetwork on this pnode: its bridge; for ``vxlan`` the VXLAN device
        flooding to ``peers`` (the other pnodes' addresses, replacing the previous
        list); for a classic ``root_interface`` that interface enslaved. Idempotent.
        The coordinator decides ``auto``; given here, it means ``bridge``."""
        ipr = self._ipr()
        with self._lock:
            if vnet.network_type != "vxlan" and vnet.root_interface:
                uplink.enslave(ipr, vnet.root_interface, self._bridge_of(vnet), self.journal)
            else:
                bridge = netlink.bridge_ensure(ipr, self.bridge_name(vnet.name), self.journal)
                if vnet.network_type == "vxlan":
                    if vnet.vni is None:
                        raise ValidationError("vni", "a vxlan vnetwork needs its VNI")
                    mtu = vnet.viface_mtu() or 1450
                    idx = vxlan.vxlan_ensure(
                        ipr,
                        self.vxlan_name(vnet.name),
                        vnet.vni,
                        vnet.vxlan_port,
                        mtu,
                        bridge,
                        self.journal,
                        vnet.root_interface,
                    )
                    netlink.call("bridge mtu", lambda: ipr.link("set", index=bridge, mtu=mtu))
                    if peers is not None:
                        vxlan.set_peers(ipr, idx, peers)
            self._vnets[vnet.name] = vnet
            self._save_vnets()

    def vnetwork_remove(self, name: str) -> None:
        """Remove the bridge of vnetwork ``name``. Idempotent; Conflict while in use."""
        with self._lock:
            users = [
                v.name for v in self._vnodes.values() if any(i.vnetwork == name for i in v.vifaces)
            ]
            if users:
                raise Conflict(f"vnetwork {name} is used by vnodes {', '.join(users[:5])}")
            vnet = self._vnets.pop(name, None)
            ipr = self._ipr()
            if vnet is not None and vnet.network_type != "vxlan" and vnet.root_interface:
                iface = vnet.root_interface
                if not any(v.root_interface == iface for v in self._vnets.values()):
                    entry = {e.id: e for e in self.journal.live(uplink.KIND)}.get(iface)
                    if entry is not None:
                        uplink.release(ipr, iface, entry.data)
                        self.journal.remove(uplink.KIND, iface)
            else:
                for link in (self.vxlan_name(name), self.bridge_name(name)):
                    netlink.link_delete(ipr, link)
                    self.journal.remove("link", link)
            self._save_vnets()

    # ------------------------------------------------------------------ vnodes
    def check_vnodes(self, vnodes: Iterable[VNode], starting: bool = False) -> None:
        """Raise ValidationError for the first vnode this pnode cannot build; with
        ``starting``, also for one whose runtime needs an image and that has none."""
        for i, vnode in enumerate(vnodes):
            prefix = f"vnodes[{i}]"
            rt = self.runtime(vnode.runtime, f"{prefix}.runtime")
            if starting and rt.needs_image and vnode.vfilesystem is None:
                raise ValidationError(
                    f"{prefix}.vfilesystem.image",
                    f"vnode {vnode.name} has no image: the {rt.name} runtime needs one "
                    "(set its vfilesystem before starting it)",
                )
            try:
                rt.validate(vnode)
                self.limits.validate(vnode.cpu, vnode.memory, vnode.disk, self._workdir(vnode.name))
            except ValidationError as exc:
                raise check_field(prefix, exc) from None

    def _ctx(self, vnode: VNode, etc_hosts: str = "") -> VNodeContext:
        return VNodeContext(
            vnode=vnode,
            netns_path=netlink.netns_path(self.netns_name(vnode.name)),
            workdir=self._workdir(vnode.name),
            etc_hosts=etc_hosts,
            journal=self.journal,
        )

    def _get(self, name: str) -> VNode:
        try:
            return self._vnodes[name]
        except KeyError:
            raise NotFound("vnode", name) from None

    def _drop_changed_vifaces(self, old: VNode, new: VNode) -> None:
        """Delete the veths of the vifaces removed, detached or changed since ``old``
        was built: a stopped vnode's namespace keeps them, and ``new`` rebuilds the
        changed ones. Idempotent."""
        kept = {(i.name, i.vnetwork, i.address, i.macaddress) for i in new.vifaces}
        ipr = self._ipr()
        for vif in old.vifaces:
            if vif.vnetwork and (vif.name, vif.vnetwork, vif.address, vif.macaddress) not in kept:
                host = self.veth_name(old.name, vif.name)
                netlink.link_delete(ipr, host)
                self.journal.remove("link", host)
                if self._shaper is not None:
                    self._shaper.clear(host, self.journal)

    def _start_one(self, vnode: VNode, etc_hosts: str) -> None:
        bound = self.runtime(vnode.runtime).kernel_bound
        with self._kernel_slots if bound else contextlib.nullcontext():
            self._start_one_now(vnode, etc_hosts)

    def _start_one_now(self, vnode: VNode, etc_hosts: str) -> None:
        ctx = self._ctx(vnode, etc_hosts)
        if self.runtime(vnode.runtime).needs_workdir or vnode.cpu or vnode.memory or vnode.disk:
            self._ensure_workdir(vnode)
        with self._lock:
            old = self._vnodes.get(vnode.name)
            self._vnodes[vnode.name] = vnode
        if old is not None:
            self._drop_changed_vifaces(old, vnode)
        nl = self._rtnl()
        # the host side, looked up from here (an ioctl each): bridge, existing veth
        links: list[tuple[VIface, VNetwork, int, int | None]] = []
        for vif in vnode.vifaces:
            if not vif.vnetwork:
                continue
            vnet = self._vnets.get(vif.vnetwork)
            if vnet is None:
                raise NotFound("vnetwork", vif.vnetwork)
            bridge = netlink.index_here(self._bridge_of(vnet))
            if bridge is None:
                self.vnetwork_create(vnet)
                bridge = netlink.index_here(self._bridge_of(vnet))
                assert bridge is not None
            host = self.veth_name(vnode.name, vif.name)
            self.journal.add("link", host, type="veth", netns=ctx.netns_path, peer=vif.name)
            links.append((vif, vnet, bridge, netlink.index_here(host)))
        fresh: set[str] = set()  # vifaces whose veth was created just now
        # this thread moves into the vnode's namespace (creating it): each veth is one
        # request on the host's socket, the inside one batch on a socket opened there
        with netlink.netns_entered(self.netns_name(vnode.name), self.journal) as ns_fd:
            inside, ops = [rtnl.setlink(1, up=True)], ["bring up lo"]
            for vif, vnet, bridge, existing in links:
                host = self.veth_name(vnode.name, vif.name)
                mtu = vnet.viface_mtu()
                if existing is None:
                    req = rtnl.newlink_veth(
                        host, vif.name, ns_fd, master=bridge, mtu=mtu, peer_mac=vif.macaddress
                    )
                    nl.run([req], f"create veth {host}")
                    fresh.add(vif.name)
                else:
                    req = rtnl.setlink(existing, up=True, mtu=mtu, master=bridge)
                    nl.run([req], f"attach {host}")
                try:
                    idx = socket.if_nametoindex(vif.name)
                except OSError:
                    raise KernelError(
                        f"configure {vif.name}", "interface missing in the vnode", errno.ENODEV
                    ) from None
                if mtu is not None and existing is not None:
                    inside.append(rtnl.setlink(idx, mtu=mtu))
                    ops.append(f"{vif.name} mtu")
                if vif.address:
                    inside.append(rtnl.newaddr(idx, vif.address, vnet.network.prefixlen))
                    ops.append(f"address {vif.address} on {vif.name}")
                inside.append(rtnl.setlink(idx, up=True))
                ops.append(f"bring up {vif.name}")
            with rtnl.Rtnl() as here:
                here.run(inside, ops)
        rt = self.runtime(vnode.runtime)
        rt.start(ctx)
        if vnode.cpu or vnode.memory or vnode.disk or self.limits.holds(vnode.name):
            self.limits.apply(vnode, rt.cgroup_dirs(ctx), ctx.workdir)
        self._apply_traffic(vnode, fresh)

    def _apply_traffic(self, vnode: VNode, fresh: set[str] | frozenset[str] = frozenset()) -> None:
        for vif in vnode.vifaces:
            if (vif.input and not vif.input.is_empty()) or (
                vif.output and not vif.output.is_empty()
            ):
                self.shaper().apply(
                    self.veth_name(vnode.name, vif.name),
                    vif.input,
                    vif.output,
                    self.journal,
                    fresh=vif.name in fresh,
                )

    def _parallel(
        self,
        items: list[Any],
        fn: Callable[[Any], None],
        key: Callable[[Any], str],
    ) -> dict[str, str | None]:
        """Run ``fn`` on every item in threads; map key -> None or an error message."""

        def one(item: Any) -> tuple[str, str | None]:
            try:
                fn(item)
                return key(item), None
            except PydistemError as exc:
                return key(item), exc.message
            except OSError as exc:
                return key(item), f"{type(exc).__name__}: {exc}"

        if len(items) == 1:
            return dict([one(items[0])])
        return dict(self._pool.map(one, items))

    def vnodes_start(
        self,
        vnodes: list[VNode],
        etc_hosts: str = "",
        members: dict[str, int] | None = None,
    ) -> dict[str, str | None]:
        """Build (if needed) and start vnodes in parallel. Idempotent per vnode.

        ``members``: vnetwork -> its vifaces on every pnode (sizes the neighbour table).
        Returns name -> None on success or the error message; one failure does not
        stop the others.
        """
        self.check_vnodes(vnodes, starting=True)
        everyone = {**self._vnodes, **{v.name: v for v in vnodes}}.values()
        ports = [vif.vnetwork for v in everyone for vif in v.vifaces if vif.vnetwork]
        sysctl.size_for_platform(ports, self.journal, members)
        # the objects every vnode will need, journaled with one write and one fsync
        # instead of one each (the per-object adds that follow find them recorded)
        planned: list[tuple[str, str, dict[str, Any]]] = []
        for v in vnodes:
            netns = netlink.netns_path(self.netns_name(v.name))
            planned.append(("dir", str(self._workdir(v.name)), {}))
            planned.append(("netns", netns, {}))
            planned.extend(
                (
                    "link",
                    self.veth_name(v.name, i.name),
                    {"type": "veth", "netns": netns, "peer": i.name},
                )
                for i in v.vifaces
                if i.vnetwork
            )
        self.journal.add_many(planned)
        self._save_spec(*vnodes)
        return self._parallel(vnodes, lambda v: self._start_one(v, etc_hosts), lambda v: v.name)

    def vnodes_stop(self, names: list[str]) -> dict[str, str | None]:
        """Stop vnodes: processes killed, links down; namespace and files kept. Idempotent."""

        def stop(name: str) -> None:
            v = self._get(name)
            self.runtime(v.runtime).stop(self._ctx(v))
            # a stopped vnode is unreachable, as a failed machine would be
            ipr = self._ipr()
            for vif in v.vifaces:
                idx = netlink.link_index(ipr, self.veth_name(name, vif.name))
                if idx is not None:
                    ipr.link("set", index=idx, state="down")

        return self._parallel(names, stop, lambda n: n)

    def vnodes_freeze(self, names: list[str], frozen: bool = True) -> dict[str, str | None]:
        def freeze(name: str) -> None:
            v = self._get(name)
            rt = self.runtime(v.runtime)
            (rt.freeze if frozen else rt.unfreeze)(self._ctx(v))

        return self._parallel(names, freeze, lambda n: n)

    def _remove_one(self, name: str) -> None:
        v = self._vnodes.get(name)
        if v is None:
            return
        ctx = self._ctx(v)
        self.runtime(v.runtime).remove(ctx)
        ipr = self._ipr()
        for vif in v.vifaces:
            host = self.veth_name(name, vif.name)
            # the link first: its qdiscs go with it, so the shaper only removes the ifb
            # (clearing a live link reads every device's qdiscs: O(N) per vnode)
            netlink.link_delete(ipr, host)
            self.journal.remove("link", host)
            if self._shaper is not None:
                self._shaper.clear(host, self.journal)
        netlink.netns_delete(ctx.netns_path)
        self.journal.remove("netns", ctx.netns_path)
        shutil.rmtree(ctx.workdir, ignore_errors=True)
        self.journal.remove("dir", str(ctx.workdir))
        self.limits.forget(name)
        self._specs.delete("vnode", name)
        with self._lock:
            self._vnodes.pop(name, None)

    def vnodes_remove(self, names: list[str]) -> dict[str, str | None]:
        """Stop and delete vnodes and everything built for them. Idempotent."""
        return self._parallel(names, self._remove_one, lambda n: n)

    def vnodes_status(self) -> dict[str, str]:
        """name -> RUNNING or DOWN for every vnode this agent knows."""
        out = {}
        for v in list(self._vnodes.values()):
            running = self.runtime(v.runtime).is_running(self._ctx(v))
            out[v.name] = "RUNNING" if running else "DOWN"
        return out

    def vnode_execute(
        self,
        name: str,
        command: list[str] | str,
        timeout: float | None = None,
        stdin: bytes | None = None,
    ) -> ExecResult:
        """Run a command in a running vnode; a string goes through ``/bin/sh -c``."""
        v = self._get(name)
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        if not argv:
            raise ValidationError("command", "must not be empty")
        return self.runtime(v.runtime).execute(self._ctx(v), argv, timeout, stdin)

    def viface_traffic(
        self, vnode: str, viface: str, input: Traffic | None, output: Traffic | None
    ) -> None:
        """Replace the shaping of one viface, live. Unsupported if the kernel lacks it."""
        v = self._get(vnode)
        vif = next((i for i in v.vifaces if i.name == viface), None)
        if vif is None:
            raise NotFound("viface", f"{vnode}.{viface}")
        self.shaper().apply(self.veth_name(vnode, viface), input, output, self.journal)
        vif.input, vif.output = input, output
        self._save_spec(v)

    def viface_link(self, vnode: str, viface: str, up: bool) -> None:
        """Set the link of one viface down or up, live (its host end: the vnode sees
        no carrier, as with a pulled cable). Idempotent; a vnode restart brings it up."""
        v = self._get(vnode)
        if not any(i.name == viface for i in v.vifaces):
            raise NotFound("viface", f"{vnode}.{viface}")
        host = self.veth_name(vnode, viface)
        ipr = self._ipr()
        idx = netlink.link_index(ipr, host)
        if idx is None:
            raise NotFound("link", host)
        state = "up" if up else "down"
        netlink.set_state(ipr, idx, host, state)

    def vnode_limits(
        self,
        vnode: str,
        cpu: CpuLimit | None,
        memory: MemoryLimit | None,
        disk: list[DiskThrottle] | None = None,
    ) -> None:
        """Replace the CPU, memory and disk limits of a vnode (None: no limit), live when
        it runs. Bad limits raise before anything changes; a kernel refusal puts the old
        limits back and raises."""
        v = self._get(vnode)
        ctx = self._ctx(v)
        limited = bool(cpu or memory or disk or v.cpu or v.memory or v.disk)
        dirs = self.runtime(v.runtime).cgroup_dirs(ctx) if limited else []
        if limited:
            self._ensure_workdir(v)  # where the cores it holds are kept
        self.limits.change(v, cpu, memory, dirs, ctx.workdir, disk)
        self._save_spec(v)

    def vnode_limits_info(self, vnode: str) -> dict[str, Any]:
        """The vnode's limits, the cores it holds, this pnode's CPU, and what it consumed
        (``usage``: ``cpu_ns``, ``memory_bytes``, ``oom_kills``, ``throttled``)."""
        v = self._get(vnode)
        rt = self.runtime(v.runtime)
        try:
            dirs = rt.cgroup_dirs(self._ctx(v))
        except PydistemError:
            dirs = []
        return self.limits.info(v, dirs)

    # ------------------------------------------------------------------ cleanup
    def cleaners(self) -> dict[str, Callable[[Entry], None]]:
        out: dict[str, Callable[[Entry], None]] = {
            **netlink.cleaners(),
            uplink.KIND: uplink.clean_uplink,
            "cgroup": clean_cgroup,
            etchosts.KIND: etchosts.clean_etchosts,
            "sysctl": sysctl.clean_sysctl,
            "dir": lambda e: shutil.rmtree(e.id, ignore_errors=True),
        }
        from pydistem.agent.plugins import runtime_names

        for name in runtime_names():
            with contextlib.suppress(PydistemError):
                out.update(self.runtime(name).cleaners())
        return out

    # ------------------------------------------------------------------ probes
    def probes_launch(self, probes: list[Probe], ref_time: float | None = None) -> None:
        """Replace this pnode's probes and start sampling (see :class:`ProbeSet`)."""
        self.probes.launch(probes, ref_time)

    def probes_state(self, state: str) -> None:
        """``stop`` pauses the probes; ``restart`` resumes them."""
        if state == "stop":
            self.probes.stop()
        elif state == "restart":
            self.probes.restart()
        else:
            raise ValidationError("state", f"{state!r} is not stop or restart")

    def probes_delete(self) -> None:
        self.probes.delete()

    def probes_data(self) -> dict[str, list[list[Any]]]:
        return self.probes.data()

    def clean(self) -> CleanReport:
        """Remove every object this agent ever created and did not remove, newest
        first — also after a crash. Removes nothing it did not create. Idempotent.
        Stops and forgets the probes."""
        self.probes.delete()
        report = CleanReport()
        cleaners = self.cleaners()
        for entry in reversed(self.journal.live()):
            fn = cleaners.get(entry.kind)
            label = f"{entry.kind}:{entry.id}"
            if fn is None:
                report.failed[label] = f"no cleaner for kind {entry.kind!r}"
                continue
            try:
                fn(entry)
            except (PydistemError, OSError) as exc:
                report.failed[label] = str(exc)
                continue
            self.journal.remove(entry.kind, entry.id)
            report.removed.append(label)
        with self._lock:
            self._vnodes.clear()
            self._vnets.clear()
            self._save_vnets()
            self._specs.delete_kind("vnode")
        for rt in list(self._runtimes.values()):
            rt.forget_all()
        self.limits.forget()
        self.journal.compact()
        return report

    def close(self) -> None:
        self.probes.delete()
        self._pool.shutdown()
        for ipr in self._sockets:
            ipr.close()
        self.journal.close()
        self._specs.close()


def address_prefix(address: str, cidr: str) -> str:
    """``10.0.0.5`` in ``10.0.0.0/24`` -> ``10.0.0.5/24``."""
    return f"{address}/{ipaddress.IPv4Network(cidr).prefixlen}"
