"""The coordinator: owns the platform state and fans work out to pnode agents.

Every request is planned first (validation, names, address allocation, placement)
against a copy of the state, then committed in one store transaction, then built
on the pnodes in parallel. Bad input therefore changes nothing.
"""

from __future__ import annotations

import contextlib
import copy
import ipaddress
import logging
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pydistem.coordinator import networks, placement, vnode_update, vroutes, wait
from pydistem.coordinator.agents import AgentLink
from pydistem.coordinator.lifecycle import Lifecycle
from pydistem.errors import (
    AlreadyExists,
    Conflict,
    NotFound,
    PydistemError,
    ValidationError,
)
from pydistem.model.addressing import AddressPool, pool_of
from pydistem.model.platform_file import Platform, platform_from_dict
from pydistem.model.specs import PNode, Traffic, VFilesystem, VIface, VNetwork, VNode, VRoute
from pydistem.model.validate import parse
from pydistem.plugins.runtimes.base import ExecResult
from pydistem.state.store import Store

log = logging.getLogger(__name__)

LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "local"}


def _local_addresses() -> set[str]:
    """Names and addresses of this machine: hostname, FQDN, short name, every IPv4."""
    names = {socket.gethostname(), socket.getfqdn()}
    names |= {n.split(".")[0] for n in names}
    out = set(LOCAL_NAMES) | names
    for n in names:
        with contextlib.suppress(OSError):
            out.update(str(i[4][0]) for i in socket.getaddrinfo(n, None, socket.AF_INET))
    with contextlib.suppress(OSError, NetlinkError), IPRoute() as ipr:  # read-only
        out.update(str(a.get_attr("IFA_ADDRESS")) for a in ipr.get_addr(family=socket.AF_INET))
    return out


def _explicit_pnode(target: Any, field: str) -> PNode | None:
    """``{"id", "address", "port"?, "features"?}`` -> a PNode in INIT; None for a name."""
    if isinstance(target, str):
        return None
    if not isinstance(target, dict) or not {"id", "address"} <= target.keys():
        raise ValidationError(field, "a hostname, an address or {id, address[, port]}")
    keys = ("id", "address", "port", "features")
    return parse(PNode, {k: target[k] for k in keys if k in target}, field)


class Coordinator(Lifecycle):
    """Platform state plus the operations of the API. Thread-safe.

    ``connect(pnode)`` returns the AgentLink of a pnode; ``local_agent`` is the
    agent of this machine, when the daemon runs one: the pnode ``local_id`` (default
    ``localhost``; ``distem bootstrap`` names it after how the machine is reached).
    """

    def __init__(
        self,
        store: Store,
        connect: Callable[[PNode], AgentLink],
        local_agent: AgentLink | None = None,
        local_id: str = "localhost",
    ) -> None:
        self.store = store
        self.local_id = local_id
        self._connect = connect
        self._local = local_agent
        self._links: dict[str, AgentLink] = {}
        self._lock = threading.RLock()
        self.pnodes: dict[str, PNode] = {n: PNode.model_validate(d) for n, d in store.all("pnode")}
        self.vnets: dict[str, VNetwork] = {
            n: VNetwork.model_validate(d) for n, d in store.all("vnetwork")
        }
        self.vnodes: dict[str, VNode] = {}
        self.failures: dict[str, str] = {}
        for n, d in store.all("vnode"):
            err = d.pop("error", None)
            self.vnodes[n] = VNode.model_validate(d)
            if err:
                self.failures[n] = err
        self.pools = {n: self._pool_for(v, self.vnodes.values()) for n, v in self.vnets.items()}
        self.vroutes: dict[str, VRoute] = vroutes.load(self)
        self._underlay: dict[str, str] = {}  # pnode -> its VXLAN endpoint, when not its address
        self._fanout = ThreadPoolExecutor(32, thread_name_prefix="fanout")
        from pydistem.events.engine import EventEngine

        self.events = EventEngine(self)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _pool_for(vnet: VNetwork, vnodes: Any) -> AddressPool:
        used = {
            i.address for v in vnodes for i in v.vifaces if i.vnetwork == vnet.name and i.address
        }
        return pool_of(vnet, used)

    def link(self, pnode_id: str) -> AgentLink:
        with self._lock:
            if pnode_id not in self._links:
                pnode = self.pnodes.get(pnode_id)
                if pnode is None:
                    raise NotFound("pnode", pnode_id)
                if pnode.id == self.local_id and self._local is not None:
                    self._links[pnode_id] = self._local
                else:
                    self._links[pnode_id] = self._connect(pnode)
            return self._links[pnode_id]

    def _save_vnodes(self, names: list[str]) -> None:
        items = []
        for n in names:
            v = self.vnodes.get(n)
            if v is None:
                self.store.delete("vnode", n)
                continue
            doc = v.model_dump()
            if n in self.failures:
                doc["error"] = self.failures[n]
            items.append((n, doc))
        self.store.put_many("vnode", items)

    def vnode_dict(self, v: VNode) -> dict[str, Any]:
        doc = v.model_dump()
        if v.name in self.failures:
            doc["error"] = self.failures[v.name]
        return doc

    def _get_vnode(self, name: str) -> VNode:
        try:
            return self.vnodes[name]
        except KeyError:
            raise NotFound("vnode", name) from None

    def _names(self, names: list[str] | None) -> list[str]:
        if names is None:
            return list(self.vnodes)
        for n in names:
            self._get_vnode(n)
        return list(dict.fromkeys(names))

    # ------------------------------------------------------------------ pnodes
    def resolve_pnode(self, target: str, field: str = "target") -> str:
        """The canonical id of a pnode named by hostname, FQDN or address."""
        if not isinstance(target, str) or not target:
            raise ValidationError(field, "a pnode hostname or address is required")
        if target in self.pnodes:
            return target
        # this machine's own names first: _local_addresses() asks the resolver
        if self._local is not None and (
            target in {self.local_id, *LOCAL_NAMES} or target in _local_addresses()
        ):
            return self.local_id
        for p in self.pnodes.values():  # a pnode's hostname, FQDN or short name
            if p.hostname and target.split(".")[0] == p.hostname.split(".")[0]:
                return p.id
        try:
            addr = socket.gethostbyname(target)
        except OSError:
            raise ValidationError(field, f"cannot resolve pnode {target!r}") from None
        for p in self.pnodes.values():
            if p.address == addr:
                return p.id
        if self._is_local_address(addr):
            return self.local_id
        return addr

    def _is_local_address(self, addr: str) -> bool:
        """Whether ``addr`` belongs to this machine's agent (its network namespace)."""
        if self._local is None:
            return False
        try:
            return addr in (self._local.info().get("addresses") or [])
        except PydistemError:
            return False

    def pnode_init(self, targets: list[str | dict[str, Any]]) -> list[PNode]:
        """Initialise pnodes (idempotent): contact their agent and record their facts.

        A target is a hostname or address (resolved; the pnode is keyed by its address),
        or an explicit ``{"id", "address", "port"?, "features"?}`` keyed by ``id`` as
        given (``distem bootstrap`` passes how each machine is reached, never what
        ``hostname`` prints)."""
        out = []
        for i, target in enumerate(targets):
            explicit = _explicit_pnode(target, f"targets[{i}]")
            pid = explicit.id if explicit else self.resolve_pnode(str(target), f"targets[{i}]")
            if pid in self.pnodes and self.pnodes[pid].status == "RUNNING":
                out.append(self.pnodes[pid])
                continue
            address = "127.0.0.1" if pid == "localhost" else pid
            if pid == self.local_id and explicit is None:
                # keep the address others reach this pnode at, when that is how it was named
                with contextlib.suppress(OSError):
                    given = socket.gethostbyname(str(target))
                    if not ipaddress.ip_address(given).is_loopback:
                        address = given
            pnode = explicit or PNode(id=pid, address=address, status="INIT")
            with self._lock:
                self.pnodes[pid] = pnode
                self._links.pop(pid, None)
            try:
                facts = self.link(pid).info()
            except PydistemError:
                with self._lock:
                    del self.pnodes[pid]
                raise
            pnode = PNode(
                id=pid,
                address=pnode.address,
                port=pnode.port,
                hostname=facts.get("hostname"),
                status="RUNNING",
                cores=int(facts.get("cores", 0)),
                cpu_mhz=float(facts.get("cpu_mhz", 0)),
                memory_mb=int(facts.get("memory_mb", 0)),
                runtimes=list(facts.get("runtimes", [])),
                features=pnode.features,
            )
            with self._lock:
                self.pnodes[pid] = pnode
                self.store.put("pnode", pid, pnode.model_dump())
            out.append(pnode)
        return out

    def pnode_update(self, pnode: str, cpu_algorithm: str) -> PNode:
        """Record the pnode's CPU algorithm (Distem's ``hogs``/``gov``, kept as given)."""
        with self._lock:
            pid = self.resolve_pnode(pnode, "pnode")
            if pid not in self.pnodes:
                raise NotFound("pnode", pnode)
            p = self.pnodes[pid].model_copy(update={"cpu_algorithm": cpu_algorithm})
            p = PNode.model_validate(p.model_dump())
            self.pnodes[pid] = p
            self.store.put("pnode", pid, p.model_dump())
            return p

    def pnode_quit(self, pnode: str) -> PNode:
        """Remove the vnodes of one pnode, clean it and forget it (vnetworks stay)."""
        with self._lock:
            pid = self.resolve_pnode(pnode, "pnode")
            if pid not in self.pnodes:
                raise NotFound("pnode", pnode)
            names = [n for n, v in self.vnodes.items() if v.host == pid]
        self.vnodes_remove(names)
        self.link(pid).clean()
        with self._lock:
            p = self.pnodes.pop(pid)
            self._links.pop(pid, None)
            self.store.delete("pnode", pid)
        return p

    def _ensure_default_pnode(self) -> None:
        if not self.pnodes and self._local is not None:
            self.pnode_init([self.local_id])

    # ------------------------------------------------------------------ vnetworks
    def _plan_vnetworks(self, items: list[Any], prefix: str) -> list[VNetwork]:
        planned: list[VNetwork] = []
        for i, raw in enumerate(items):
            field = f"{prefix}[{i}]" if prefix else ""
            vnet = raw if isinstance(raw, VNetwork) else parse(VNetwork, raw, field)
            name_field = f"{field}.name" if field else "name"
            addr_field = f"{field}.address" if field else "address"
            if vnet.name in self.vnets or any(p.name == vnet.name for p in planned):
                raise AlreadyExists("vnetwork", vnet.name, name_field)
            for other in [*self.vnets.values(), *planned]:
                if vnet.network.overlaps(other.network):
                    raise ValidationError(
                        addr_field,
                        f"{vnet.address} overlaps vnetwork {other.name} ({other.address})",
                    )
            taken = [*self.vnets.values(), *planned]
            planned.append(networks.resolve(self, vnet, taken, field))
        return planned

    def vnetwork_create(self, data: dict[str, Any] | VNetwork) -> VNetwork:
        """Create a vnetwork (state only; bridges appear on pnodes with its vnodes)."""
        with self._lock:
            (vnet,) = self._plan_vnetworks([data], "")
            self.vnets[vnet.name] = vnet
            self.pools[vnet.name] = pool_of(vnet)
            self.store.put("vnetwork", vnet.name, vnet.model_dump())
            return vnet

    def vnetwork_get(self, name: str) -> VNetwork:
        try:
            return self.vnets[name]
        except KeyError:
            raise NotFound("vnetwork", name) from None

    def vnetwork_remove(self, name: str) -> VNetwork:
        """Remove a vnetwork no vnode uses, and its bridges. Conflict while used."""
        with self._lock:
            vnet = self.vnetwork_get(name)
            users = [
                v.name for v in self.vnodes.values() if any(i.vnetwork == name for i in v.vifaces)
            ]
            if users:
                raise Conflict(f"vnetwork {name} is used by vnodes: {', '.join(users[:5])}")
            for pid in self.pnodes:
                self.link(pid).vnetwork_remove(name)
            vroutes.forget_vnetwork(self, name)
            del self.vnets[name]
            del self.pools[name]
            self.store.delete("vnetwork", name)
            return vnet

    # ------------------------------------------------------------------ vnode planning
    def _place(
        self, planned: list[VNode], field_of: Callable[[int], str], vnets: dict[str, VNetwork]
    ) -> None:
        """Resolve explicit hosts and spread ``host: auto`` vnodes by free capacity."""
        self._ensure_default_pnode()
        if not self.pnodes:
            raise ValidationError(field_of(0) + ".host", "no pnode is initialised (pnode init)")
        for i, v in enumerate(planned):
            if v.host is not None:
                try:
                    v.host = self.resolve_pnode(v.host, field_of(i) + ".host")
                except ValidationError:
                    v.host = None
                    raise ValidationError(
                        field_of(i) + ".host",
                        f"unknown pnode (initialised: {', '.join(self.pnodes)})",
                    ) from None
                if v.host not in self.pnodes:
                    raise ValidationError(
                        field_of(i) + ".host",
                        f"unknown pnode {v.host!r} (initialised: {', '.join(self.pnodes)})",
                    )
        ifaces = {
            n.root_interface
            for vn in planned
            for i in vn.vifaces
            if (n := vnets.get(i.vnetwork or "")) is not None
            and n.network_type == "bridge"
            and n.root_interface
        }
        faults = {
            iface: {p: f for p, f in networks.probe_uplinks(self, iface).items() if f}
            for iface in sorted(ifaces)
        }
        placement.place(planned, self.vnodes.values(), self.pnodes, vnets, faults, field_of)

    def _plan_vnodes(
        self,
        items: list[Any],
        vnets: dict[str, VNetwork],
        pools: dict[str, AddressPool],
        field_of: Callable[[int], str],
    ) -> list[VNode]:
        planned: list[VNode] = []
        seen: set[str] = set(self.vnodes)
        for i, raw in enumerate(items):
            f = field_of(i)
            v = raw.model_copy(deep=True) if isinstance(raw, VNode) else parse(VNode, raw, f)
            name_f = f"{f}.name" if f else "name"
            if v.name in seen:
                raise AlreadyExists("vnode", v.name, name_f)
            seen.add(v.name)
            v.status = "INIT"
            for j, vif in enumerate(v.vifaces):
                self._plan_viface(vif, vnets, pools, f"{f}.vifaces[{j}]" if f else f"vifaces[{j}]")
            planned.append(v)
        self._place(planned, field_of, vnets)
        by_host: dict[str, list[VNode]] = defaultdict(list)
        for v in planned:
            by_host[str(v.host)].append(v)
        # pnodes check what only they know (images present, runtime installed)
        index = {id(v): i for i, v in enumerate(planned)}
        for host, vs in by_host.items():
            try:
                self.link(host).check_vnodes(vs)
            except ValidationError as exc:
                # the agent numbers the vnodes of its batch: map back to ours
                field = exc.field
                if field.startswith("vnodes["):
                    k = int(field[7 : field.index("]")])
                    rest = field[field.index("]") + 1 :]
                    field = field_of(index[id(vs[k])]) + rest
                raise ValidationError(field.lstrip("."), exc.reason) from None
        return planned

    @staticmethod
    def _plan_viface(
        vif: VIface, vnets: dict[str, VNetwork], pools: dict[str, AddressPool], f: str
    ) -> None:
        if vif.vnetwork is None:
            if vif.address:
                found = [
                    n for n in vnets.values() if ipaddress.IPv4Address(vif.address) in n.network
                ]
                if not found:
                    raise ValidationError(f"{f}.address", f"{vif.address} is in no vnetwork")
                vif.vnetwork = found[0].name
            else:
                raise ValidationError(f"{f}.vnetwork", "a viface needs a vnetwork or an address")
        if vif.vnetwork not in vnets:
            raise ValidationError(f"{f}.vnetwork", f"unknown vnetwork {vif.vnetwork!r}")
        pool = pools[vif.vnetwork]
        if vif.address:
            pool.claim(f"{f}.address", vif.address)
        else:
            vif.address = pool.allocate(f"{f}.address")

    def vnodes_create(self, items: list[Any], prefix: str = "vnodes") -> list[VNode]:
        """Create vnodes (state INIT). All-or-nothing: any bad item changes nothing."""
        if not isinstance(items, list):
            raise ValidationError(prefix, "must be a list of vnodes")
        with self._lock:
            pools = copy.deepcopy(self.pools)
            planned = self._plan_vnodes(
                items, self.vnets, pools, lambda i: f"{prefix}[{i}]" if prefix else ""
            )
            with self.store.batch():
                for v in planned:
                    self.vnodes[v.name] = v
                self.pools = pools
                self._save_vnodes([v.name for v in planned])
            return planned

    def vnode_create(self, data: dict[str, Any]) -> VNode:
        return self.vnodes_create([data], prefix="")[0]

    def viface_create(self, vnode: str, data: dict[str, Any], attach: bool = True) -> VIface:
        """Add a viface to a vnode that is not running yet. ``attach=False`` and neither
        ``vnetwork`` nor ``address``: the viface is created unattached (Distem's empty
        desc; attach it later with :meth:`viface_attach`)."""
        with self._lock:
            v = self._get_vnode(vnode)
            if v.status not in ("INIT", "DOWN", "FAILED"):
                raise Conflict(f"vnode {vnode} is {v.status}: stop it before adding a viface")
            vif = parse(VIface, data, "")
            if any(i.name == vif.name for i in v.vifaces):
                raise AlreadyExists("viface", f"{vnode}.{vif.name}")
            pools = copy.deepcopy(self.pools)
            if attach or vif.vnetwork or vif.address:
                self._plan_viface(vif, self.vnets, pools, "")
            v.vifaces = [*v.vifaces, vif]
            self.pools = pools
            self._save_vnodes([vnode])
            return vif

    def vnode_vfilesystem(self, vnode: str, data: dict[str, Any] | None) -> VNode:
        """Set (or with None remove) the vfilesystem of a vnode not built yet (INIT)."""
        with self._lock:
            v = self._get_vnode(vnode)
            if v.status != "INIT":
                raise Conflict(f"vnode {vnode} is {v.status}: its filesystem is built already")
            new = v.model_copy(deep=True)
            new.vfilesystem = None if data is None else parse(VFilesystem, data, "vfilesystem")
            if new.host and new.vfilesystem is not None:
                self.link(new.host).check_vnodes([new])
            v.vfilesystem = new.vfilesystem
            self._save_vnodes([vnode])
            return v

    def viface_remove(self, vnode: str, viface: str) -> VIface:
        with self._lock:
            v = self._get_vnode(vnode)
            if v.status not in ("INIT", "DOWN", "FAILED"):
                raise Conflict(f"vnode {vnode} is {v.status}: stop it before removing a viface")
            vif = next((i for i in v.vifaces if i.name == viface), None)
            if vif is None:
                raise NotFound("viface", f"{vnode}.{viface}")
            v.vifaces = [i for i in v.vifaces if i.name != viface]
            if vif.vnetwork and vif.address:
                self.pools[vif.vnetwork].release(vif.address)
            self._save_vnodes([vnode])
            return vif

    def viface_traffic(self, vnode: str, viface: str, input: Any, output: Any) -> VIface:
        """Set (replace) the shaping of a viface, live when the vnode runs."""
        tin = None if input is None else parse(Traffic, input, "input")
        tout = None if output is None else parse(Traffic, output, "output")
        with self._lock:
            v = self._get_vnode(vnode)
            vif = next((i for i in v.vifaces if i.name == viface), None)
            if vif is None:
                raise NotFound("viface", f"{vnode}.{viface}")
        if v.status == "RUNNING":
            self.link(str(v.host)).viface_traffic(vnode, viface, tin, tout)
        with self._lock:
            vif.input, vif.output = tin, tout
            self._save_vnodes([vnode])
        return vif

    def viface_link(self, vnode: str, viface: str, up: bool) -> VIface:
        """Bring a viface's link down (the vnode is cut from that vnetwork) or up, live."""
        with self._lock:
            v = self._get_vnode(vnode)
            vif = next((i for i in v.vifaces if i.name == viface), None)
            if vif is None:
                raise NotFound("viface", f"{vnode}.{viface}")
            if v.status != "RUNNING":
                raise Conflict(f"vnode {vnode} is {v.status}: start it to change its links")
        self.link(str(v.host)).viface_link(vnode, viface, up)
        return vif

    def vnode_mode(self, vnode: str, mode: str) -> VNode:
        """``GATEWAY`` (IPv4 forwarding on) or ``NORMAL``, live (coordinator/vnode_update.py)."""
        return vnode_update.set_mode(self, vnode, mode)

    def vnode_host(self, vnode: str, host: str | None) -> VNode:
        """Move a vnode not built yet to another pnode (None: placed again)."""
        return vnode_update.set_host(self, vnode, host)

    def vnode_ssh_key(self, vnode: str, key: dict[str, Any] | None) -> VNode:
        """Replace the SSH keys of a vnode that does not run (installed at its next start)."""
        return vnode_update.set_ssh_key(self, vnode, key)

    def viface_attach(self, vnode: str, viface: str, data: dict[str, Any]) -> VIface:
        """Attach a viface of a vnode that does not run to a vnetwork (or move it)."""
        return vnode_update.viface_attach(self, vnode, viface, data)

    def viface_detach(self, vnode: str, viface: str) -> VIface:
        """Detach a viface of a vnode that does not run from its vnetwork (it stays)."""
        return vnode_update.viface_detach(self, vnode, viface)

    def vnode_rootfs_archive(self, vnode: str, dest: Path) -> None:
        """Write a gzip tarball of the root filesystem of a running (or frozen) vnode to
        ``dest`` on this machine. Conflict when it does not run; Unsupported for a
        runtime without a root filesystem of its own (``netns``)."""
        v = self._get_vnode(vnode)
        if v.status not in ("RUNNING", "FROZEN"):
            raise Conflict(f"vnode {vnode} is {v.status}: start it to archive its filesystem")
        self.link(str(v.host)).vnode_rootfs_archive(vnode, dest)

    def vnode_cpu_update(self, vnode: str, cpu: dict[str, Any]) -> Any:
        """Change some fields of a vnode's CPU limit, live (see coordinator/limits.py)."""
        from pydistem.coordinator import limits

        return limits.cpu_change(self, vnode, cpu)

    def vnode_memory_update(self, vnode: str, memory: dict[str, Any] | str) -> Any:
        """Change the memory limit of a vnode (``{"limit": "256MiB"}`` or ``"256MiB"``), live."""
        from pydistem.coordinator import limits

        return limits.vmem_update(self, vnode, memory)

    def vnode_cpu_check(self, vnode: str, cpu: dict[str, Any]) -> Any:
        """Validate what :meth:`vnode_cpu_update` would set; changes nothing. Fields are
        named inside ``cpu`` (``frequency``, ``cores``)."""
        from pydistem.coordinator import limits

        try:
            return limits.cpu_check(self, vnode, cpu)
        except ValidationError as exc:
            raise ValidationError(exc.field.removeprefix("cpu."), exc.reason) from None

    # ------------------------------------------------------------------ lifecycle
    def etc_hosts(self) -> str:
        """/etc/hosts for every vnode: ``<ip> <vnode>`` and ``<ip> <vnode>-<vnetwork>``."""
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
        for v in self.vnodes.values():
            default = v.default_viface()
            if default is not None:
                lines.append(f"{default.address} {v.name}")
            for vif in v.vifaces:
                if vif.address and vif.vnetwork:
                    lines.append(f"{vif.address} {v.name}-{vif.vnetwork}")
        return "\n".join(lines) + "\n"

    def vnode_execute(
        self, name: str, command: list[str] | str, timeout: float | None = None
    ) -> ExecResult:
        v = self._get_vnode(name)
        if v.status != "RUNNING":
            raise Conflict(f"vnode {name} is {v.status}, not RUNNING")
        if not command:
            raise ValidationError("command", "must not be empty")
        return self.link(str(v.host)).vnode_execute(name, command, timeout)

    def vnodes_execute(
        self, names: list[str] | None, command: list[str] | str, timeout: float | None = None
    ) -> dict[str, ExecResult]:
        """Run one command in many vnodes in parallel."""
        names = self._names(names)

        def one(n: str) -> tuple[str, ExecResult]:
            try:
                return n, self.vnode_execute(n, command, timeout)
            except PydistemError as exc:
                return n, ExecResult("", exc.message, -1)

        return dict(self._fanout.map(one, names))

    def wait_vnodes(
        self,
        names: list[str] | None = None,
        timeout: float = 600,
        port: int | None = None,
        ssh: bool = False,
    ) -> list[str]:
        """Wait until the vnodes run and answer a command; return those still pending.

        ``port``: also until TCP ``port`` is open on each vnode's default address
        (Distem's ``wait_vnodes``). ``ssh``: also until port 22 is open on the vnodes
        whose image has an SSH server. See coordinator/wait.py."""
        return wait.wait_vnodes(self, self._names(names), timeout, port, ssh)

    # ------------------------------------------------------------------ vroutes
    def vroute_create(self, source: str, destination: str, gateway: str) -> VRoute:
        """Route ``source`` -> ``destination`` through ``gateway`` (a vnode or address)."""
        return vroutes.create(self, source, destination, gateway)

    def vroute_complete(self) -> list[VRoute]:
        """Create every missing vroute (gateways chosen automatically); the new ones."""
        return vroutes.complete_all(self)

    # ------------------------------------------------------------------ platform
    def deploy(self, doc: dict[str, Any] | Platform) -> tuple[list[VNetwork], list[VNode]]:
        """Create and start a whole platform. Validation is all-or-nothing."""
        platform = doc if isinstance(doc, Platform) else platform_from_dict(doc)
        with self._lock:
            vnets = self._plan_vnetworks(platform.vnetworks, "vnetworks")
            all_vnets = {**self.vnets, **{v.name: v for v in vnets}}
            pools = copy.deepcopy(self.pools)
            pools.update({v.name: pool_of(v) for v in vnets})
            planned = self._plan_vnodes(platform.vnodes, all_vnets, pools, lambda i: f"vnodes[{i}]")
            self.events.check(platform.events, "events", planned)
            if isinstance(platform.vroutes, list):
                vroutes.check(platform.vroutes, all_vnets, [*self.vnodes.values(), *planned])
            with self.store.batch():
                for v in vnets:
                    self.vnets[v.name] = v
                    self.store.put("vnetwork", v.name, v.model_dump())
                for vn in planned:
                    self.vnodes[vn.name] = vn
                self.pools = pools
                self._save_vnodes([v.name for v in planned])
        self.vnodes_start([v.name for v in planned])
        if platform.vroutes == "complete":
            self.vroute_complete()
        elif platform.vroutes:
            for r in platform.vroutes:
                self.vroute_create(r["source"], r["destination"], r["gateway"])
        if platform.events:
            self.events.add(platform.events, source="platform")
        return vnets, [self.vnodes[v.name] for v in planned if v.name in self.vnodes]

    def platform(self) -> dict[str, Any]:
        with self._lock:
            return {
                "pnodes": [p.model_dump() for p in self.pnodes.values()],
                "vnetworks": [v.model_dump() for v in self.vnets.values()],
                "vnodes": [self.vnode_dict(v) for v in self.vnodes.values()],
            }

    def quit(self) -> dict[str, Any]:
        """Remove every vnode and vnetwork and clean every pnode. Idempotent."""
        self.events.reset()
        removed = self.vnodes_remove(None)
        report: dict[str, Any] = {"vnodes": removed, "pnodes": {}}
        with self._lock:
            pnodes = list(self.pnodes)
        for pid in pnodes:
            try:
                res = self.link(pid).clean()
                report["pnodes"][pid] = res if isinstance(res, dict) else vars(res)
            except PydistemError as exc:
                report["pnodes"][pid] = {"error": exc.message}
        with self._lock, self.store.batch():
            vroutes.forget_all(self)
            for name in list(self.vnets):
                self.store.delete("vnetwork", name)
            self.vnets.clear()
            self.pools.clear()
            for n in list(self.vnodes):
                self.store.delete("vnode", n)
            self.vnodes.clear()
            self.failures.clear()
        return report

    def close(self) -> None:
        self.events.close()
        self._fanout.shutdown(wait=False)
