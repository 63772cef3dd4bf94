"""Vnetworks across pnodes, the coordinator's side: VNIs, ``auto``, uplink probes, peers.

- A ``vxlan`` vnetwork gets a VNI unique in the platform; each pnode hosting members
  gets the underlay addresses of the other member pnodes as flooding peers.
- A classic vnetwork (``bridge`` with ``root_interface``) can only use pnodes whose
  uplink carries frames for foreign MAC addresses; the probe (agent/l2probe.py)
  finds out once per pnode and interface, and the result stays in the pnode's
  ``features`` (``l2:<interface>``).
- ``auto`` becomes classic when ``root_interface`` is given and every pnode passes the
  probe, else ``vxlan`` (or a local ``bridge`` while there is a single pnode); the
  vnetwork's ``reason`` says why.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pydistem.errors import PydistemError, ValidationError
from pydistem.model.specs import PNode, VNetwork, VNode

if TYPE_CHECKING:
    from pydistem.coordinator.service import Coordinator

log = logging.getLogger(__name__)

VNI_FIRST = 100
PROBE_TIMEOUT = 2.5


def feature_key(interface: str) -> str:
    return f"l2:{interface}"


def allocate_vni(taken: Iterable[VNetwork]) -> int:
    used = {v.vni for v in taken if v.vni is not None}
    vni = VNI_FIRST
    while vni in used:
        vni += 1
    return vni


def classic_fault(pnode: PNode, interface: str) -> str | None:
    """Why ``pnode`` cannot carry a classic vnetwork on ``interface`` (None: it can)."""
    if pnode.features.get(feature_key(interface), True):
        return None
    return (
        f"pnode {pnode.id}: its uplink {interface} drops frames for MAC addresses that are "
        "not its own (no promiscuous mode, as on Xen/KVM virtual NICs), so vnodes there "
        "cannot be reached on a classic vnetwork; use network_type vxlan (or auto)"
    )


def probe_uplinks(c: Coordinator, interface: str, force: bool = False) -> dict[str, str | None]:
    """Run the foreign-MAC probe on ``interface`` of every running pnode (unless every
    one already has a result and not ``force``); record and return pnode -> fault."""
    with c._lock:
        pnodes = [p for p in c.pnodes.values() if p.status == "RUNNING"]
    key = feature_key(interface)
    if not force and all(key in p.features for p in pnodes):
        return {p.id: classic_fault(p, interface) for p in pnodes}
    if len(pnodes) < 2:
        return {p.id: None for p in pnodes}  # nothing crosses a wire: nothing to test
    nonce = secrets.token_hex(4)
    errors: dict[str, str] = {}
    # links first, in this thread: the caller may hold the coordinator's lock
    links = {p.id: c.link(p.id) for p in pnodes}

    def listen(p: PNode) -> list[str]:
        try:
            return links[p.id].l2_listen(interface, nonce, len(pnodes) - 1, PROBE_TIMEOUT)
        except PydistemError as exc:
            errors[p.id] = exc.message
            return []

    def send(p: PNode) -> None:
        try:
            links[p.id].l2_send(interface, nonce, p.id)
        except PydistemError as exc:
            errors[p.id] = exc.message

    listening = [c._fanout.submit(listen, p) for p in pnodes]
    time.sleep(0.2)  # let the listeners open their sockets; senders repeat for 1 s anyway
    list(c._fanout.map(send, pnodes))
    heard = {p.id: set(f.result()) - {p.id} for p, f in zip(pnodes, listening, strict=True)}
    faults: dict[str, str | None] = {}
    with c._lock:
        for p in pnodes:
            if p.id in errors:
                faults[p.id] = f"pnode {p.id}: the probe on {interface} failed: {errors[p.id]}"
                continue
            hears = bool(heard[p.id])
            heard_by = any(p.id in h for h in heard.values())
            ok = hears and heard_by
            live = c.pnodes.get(p.id)
            if live is not None:
                live.features = {**live.features, feature_key(interface): ok}
                c.store.put("pnode", live.id, live.model_dump())
            faults[p.id] = None if ok else classic_fault(live or p, interface)
            log.info(
                "l2 probe %s on %s: hears %s, heard by others: %s",
                interface, p.id, sorted(heard[p.id]), heard_by,
            )  # fmt: skip
    return faults


def resolve(c: Coordinator, vnet: VNetwork, taken: list[VNetwork], field: str) -> VNetwork:
    """The vnetwork as it will be built: ``auto`` decided, a VNI for ``vxlan``, and a
    classic vnetwork checked against the uplink probe. Raises ValidationError."""
    vnet = vnet.model_copy()
    running = [p for p in c.pnodes.values() if p.status == "RUNNING"]
    prefix = f"{field}." if field else ""
    if vnet.network_type == "auto":
        if vnet.root_interface:
            faults = {k: v for k, v in probe_uplinks(c, vnet.root_interface).items() if v}
            if not faults:
                vnet.network_type = "bridge"
                vnet.reason = f"auto: every pnode's {vnet.root_interface} carries foreign MACs"
            else:
                vnet.network_type = "vxlan"
                vnet.reason = "auto: " + "; ".join(faults.values())
                vnet.root_interface = None
        elif len(running) > 1:
            vnet.network_type = "vxlan"
            vnet.reason = f"auto: {len(running)} pnodes and no root_interface"
        else:
            vnet.network_type = "bridge"
            vnet.reason = "auto: a single pnode, a local bridge is enough"
    elif vnet.network_type == "bridge" and vnet.root_interface:
        faults = probe_uplinks(c, vnet.root_interface)
        if faults and all(faults.values()):
            raise ValidationError(
                f"{prefix}root_interface",
                "no pnode can carry this classic vnetwork: "
                + "; ".join(str(f) for f in faults.values()),
            )
    if vnet.network_type == "vxlan":
        if vnet.vni is None:
            vnet.vni = allocate_vni(taken)
        else:
            for other in taken:
                if other.vni == vnet.vni and other.name != vnet.name:
                    raise ValidationError(f"{prefix}vni", f"{vnet.vni} is used by {other.name}")
    return vnet


def underlay(c: Coordinator, pid: str, others: list[str]) -> str:
    """The address other pnodes reach ``pid`` at (its VXLAN endpoint)."""
    pnode = c.pnodes[pid]
    own = _ip(pnode)
    if not ipaddress.ip_address(own).is_loopback:
        return own
    cached = c._underlay.get(pid)
    if cached:
        return cached
    toward = next((_ip(c.pnodes[o]) for o in others if o in c.pnodes), None)
    if toward is None or ipaddress.ip_address(toward).is_loopback:
        return own
    addr = c.link(pid).underlay_address(toward)
    c._underlay[pid] = addr
    return addr


def _ip(pnode: PNode) -> str:
    """A pnode's address as an IP (VXLAN endpoints are IPs; bootstrap may give names)."""
    try:
        return str(ipaddress.ip_address(pnode.address))
    except ValueError:
        pass
    try:
        return socket.gethostbyname(pnode.address)
    except OSError:
        raise PydistemError(
            f"pnode {pnode.id}: cannot resolve its address {pnode.address!r} (VXLAN endpoint)"
        ) from None


def member_hosts(vnodes: Iterable[VNode], vnet: str) -> set[str]:
    return {
        str(v.host)
        for v in vnodes
        if v.host and v.status != "INIT" and any(i.vnetwork == vnet for i in v.vifaces)
    }


def build_plan(
    c: Coordinator, groups: dict[str, list[VNode]]
) -> dict[str, list[tuple[VNetwork, list[str] | None]]]:
    """What each pnode must build before vnodes start there: host -> [(vnetwork,
    VXLAN peers or None)]. Member pnodes of a vxlan vnetwork that start nothing
    now still get the new peer list."""
    plan: dict[str, list[tuple[VNetwork, list[str] | None]]] = {h: [] for h in groups}
    needed = {
        h: sorted({i.vnetwork for v in vs for i in v.vifaces if i.vnetwork})
        for h, vs in groups.items()
    }
    starting = [v for vs in groups.values() for v in vs]
    for name in sorted({n for ns in needed.values() for n in ns}):
        vnet = c.vnets[name]
        if vnet.network_type != "vxlan":
            for h, ns in needed.items():
                if name in ns:
                    plan[h].append((vnet, None))
            continue
        hosts = member_hosts([*c.vnodes.values(), *starting], name) | {
            h for h, ns in needed.items() if name in ns
        }
        addr = {h: underlay(c, h, sorted(hosts - {h})) for h in hosts}
        for h in sorted(hosts):
            plan.setdefault(h, []).append((vnet, sorted(addr[o] for o in hosts if o != h)))
    return plan
